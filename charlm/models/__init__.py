"""Models: one LanguageModel interface over Keras stacks (fast CPU cells) and scratch cells.

Imports only the ground (config, errors, fsio); never reads files of its own.
"""
