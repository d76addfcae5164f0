"""The memorisation check of ``charlm sample --novelty``: how much of a sample stands word for
word in the training text. It needs no model: a suffix array of the text (build.py), saved
beside the run (file.py), and the longest-match queries over it (index.py). The run folder is
read by :mod:`charlm.api`; this package sees only text and a vocabulary.
"""
