"""Two ASGI middlewares of ``charlm serve``: :class:`ApiKey` lets into the API only the
requests that carry the server's key, and :class:`Counted` counts every answer by route and
status for ``/metrics``."""

from __future__ import annotations

import hmac

from starlette.routing import Match

from .protocol import RequestError

GUARDED = ("/v1", "/metrics")  # what a key guards: the page and /health stay open


def guarded(path: str) -> bool:
    """
    >>> [guarded(p) for p in ("/v1/completions", "/v1", "/metrics", "/health", "/", "/v10")]
    [True, True, True, False, False, False]
    """
    return any(path == g or path.startswith(g + "/") for g in GUARDED)


class ApiKey:
    """Refuse, with 401 in OpenAI's shape, a request to the API without ``Authorization:
    Bearer <key>``; the key is compared in constant time (``hmac.compare_digest``).
    ``refused``: makes the response of a :class:`RequestError`."""

    def __init__(self, app, key: str, refused):
        self.app, self.key, self.refused = app, key.encode(), refused

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and guarded(scope["path"]) and not self.allowed(scope):
            error = RequestError(
                "a valid API key is needed: send the header 'Authorization: Bearer KEY' "
                "with the key this server was given (--api-key or CHARLM_API_KEY)",
                None,
                401,
                "invalid_api_key",
            )
            await self.refused(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def allowed(self, scope) -> bool:
        given = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.key)


class Counted:
    """Count each answer in ``metrics.requests`` by its route's path (``other`` for no route)
    and its status."""

    def __init__(self, app, metrics, routes):
        self.app, self.metrics, self.routes = app, metrics, routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]  # what the server error handler answers if nothing else was sent

        async def counted(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            self.metrics.requests.labels(self._route(scope), str(status[0])).inc()

    def _route(self, scope) -> str:
        for route in self.routes:
            if route.matches(scope)[0] != Match.NONE:
                return route.path
        return "other"
