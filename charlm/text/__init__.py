"""Text: read a corpus (file, folder, .zip, .gz, stdin), its vocabulary, the id file, the samplers.

No TensorFlow here. Imports only the ground (config, errors, fsio).
"""
