"""Models: one LanguageModel interface (lm) over Keras stacks (keras_rnn, fast CPU cells) and
scratch cells (scratch); which family a config's model is, the table says (families).

Imports only the ground (options, errors, fsio); never reads files of its own.
"""
