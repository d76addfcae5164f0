"""Runs: the run folder (config, vocab, weights, metrics) and the catalog of runs.

Imports text/ (the vocabulary) and the ground.
"""
