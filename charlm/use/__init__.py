"""Using a model: generation, evaluation, export, the memorisation index, interactive sampling
and the HTTP server. Imports every stage below it.
"""
