"""The learning curves of the families the budget recipe races (their
:class:`~charlm.models.families.Recipe` holds them; :mod:`charlm.training.family_choice` reads
them): ``(characters trained, final val nats/char)``, charlm's own validation at the end of whole
``charlm train CORPUS --time-budget B [--model gpt]`` runs, fewest characters first, on tiny
Shakespeare (an alphabet) and the Tang poems (a large vocabulary). BENCHMARKS.md, "The family
curves", gives each run, its machine and its date. Imports nothing.
"""

LSTM_CURVE = ((3.3e6, 1.729), (7.41e6, 1.510), (12.33e6, 1.464), (16.44e6, 1.453))
LSTM_LARGE_CURVE = ((0.774e6, 6.520), (2.84e6, 5.429), (7.28e6, 5.001))
GPT_CURVE = ((2.10e6, 1.789), (4.45e6, 1.677), (8.54e6, 1.605))
GPT_LARGE_CURVE = ((0.838e6, 5.912), (2.33e6, 5.680), (3.82e6, 5.264))
