"""charlm's version: at the ground, so that the run folder's writer (charlm.api) and the
package's face (charlm.__init__) both read it from below."""

__version__ = "0.1.0"
