"""charlm: character-level language models with TensorFlow and Keras.

    import charlm
    run = charlm.train(["corpora/tinyshakespeare.txt"], config="configs/tiny.toml")
    print(run.generate("ROMEO:", length=200)[0])
    print(run.generate("ROMEO:", options=charlm.SamplingOptions(top_p=0.9, stop=["\n\n"]))[0])
    print(run.evaluate()["perplexity"])

TensorFlow is imported only when a model is built or loaded, so reading corpora and
configs stays fast; its C++ start-up lines (CUDA probes, oneDNN notes) are kept off stderr,
as the command line keeps them.
"""

from .errors import CharLMError
from .options.config import Config
from .options.sampling import SamplingOptions
from .version import __version__

__all__ = ["CharLMError", "Config", "Run", "SamplingOptions", "load", "train", "__version__"]


def __getattr__(name):
    if name in ("train", "load", "Run"):
        from .fsio import quiet_tensorflow

        quiet_tensorflow()  # its C++ start-up chatter kept off stderr, as the CLI keeps it
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'charlm' has no attribute {name!r}")
