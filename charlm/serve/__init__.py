"""``charlm serve``: the model behind an HTTP API that streams (OpenAI's completions), a page
to play with it, and many users at once sharing one batched generation.

Modules: :mod:`.protocol` (limits, requests checked, replies; no HTTP, no TensorFlow: the
CLI reads its flags from it), :mod:`.batcher` (the worker thread and its batch),
:mod:`.app` (the Starlette routes, ``create_app``), :mod:`.server` (uvicorn, signals,
``serve``). Starlette and uvicorn come with the optional extra ``charlm[serve]``, so
nothing here imports them until the app is built.
"""
