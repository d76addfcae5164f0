"""``GET /metrics`` of ``charlm serve``, in Prometheus' text format (prometheus-client), one
registry per app: requests by route and status, samples in flight, the time a request waits
to join the batch, characters generated and the time to each request's first character."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class Metrics:
    """The server's metrics (see the module); :meth:`render` is the page Prometheus scrapes."""

    def __init__(self):
        self.registry = r = CollectorRegistry()
        self.requests = Counter(
            "charlm_requests",
            "HTTP requests answered, by route and status",
            ["route", "status"],
            registry=r,
        )
        self.rows = Gauge(
            "charlm_rows_in_flight",
            "Samples being generated now, all requests together",
            registry=r,
        )
        self.queue_seconds = Histogram(
            "charlm_queue_seconds",
            "Seconds from a request's admission to its rows joining the batch (warm-up included)",
            registry=r,
        )
        self.characters = Counter(
            "charlm_characters_generated", "Characters generated, every sample", registry=r
        )
        self.time_to_first_character = Histogram(
            "charlm_time_to_first_character_seconds",
            "Seconds from a request's arrival to its first generated character",
            registry=r,
        )

    def render(self, service) -> tuple[bytes, str]:
        """The metrics as Prometheus reads them, and their media type."""
        self.rows.set(service.in_flight)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
