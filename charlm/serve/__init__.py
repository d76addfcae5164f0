"""``charlm serve``: the model behind an HTTP API that streams (OpenAI's completions and chat
completions), a page to play with it, and many users at once sharing one batched generation.

Modules: :mod:`.protocol` (requests checked against the server's limits,
:class:`charlm.options.limits.Limits`; no HTTP, no TensorFlow), :mod:`.chat` (messages made a
prompt by a template), :mod:`.replies` (the replies' JSON objects, with log-probabilities),
:mod:`.service` (what the routes share: the models, their batchers, descriptions and
templates, read once at start), :mod:`.guard` (the API key and the requests counted),
:mod:`.metrics` (Prometheus), :mod:`.app` (the Starlette routes, ``create_app``; the batch all
users share is the engine's, :mod:`charlm.api.serving`), :mod:`.server` (the socket, uvicorn,
signals, ``serve``), ``static/`` (the page). Starlette, uvicorn and prometheus-client come
with the optional extra ``charlm[serve]``, so nothing here imports them until the app is
built. A face: it reaches the engine only through charlm.api.
"""
