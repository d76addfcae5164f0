"""``charlm serve``: the model behind an HTTP API that streams (OpenAI's completions), a page
to play with it, and many users at once sharing one batched generation.

Modules: :mod:`.protocol` (requests checked against the server's limits,
:class:`charlm.options.limits.Limits`, and the replies; no HTTP, no TensorFlow),
:mod:`.app` (the Starlette routes, ``create_app``; the batch all users share is the engine's,
:mod:`charlm.api.serving`), :mod:`.server` (uvicorn, signals, ``serve``), ``static/`` (the
page). Starlette and uvicorn come with the optional extra ``charlm[serve]``, so nothing here
imports them until the app is built. A face: it reaches the engine only through charlm.api.
"""
