"""The portal's Prometheus metrics at /metrics: requests and their time per route.

A route is its template (``/cases/{case_ref}``), never the path: paths hold case references.
"""

from __future__ import annotations

from fastapi import Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

REQUESTS = Counter(
    "eropaf_portal_requests_total", "Portal requests by route and status", ["route", "status"]
)
REQUEST_SECONDS = Histogram(
    "eropaf_portal_request_seconds",
    "Time to answer a portal request, by route",
    ["route"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# Not counted: assets, and the probes and scrapes that would drown the pages.
_NOT_COUNTED = ("/static/", "/health/", "/metrics")


def route_of(request: Request) -> str:
    """The template of the route that answered (``unmatched`` for a 404 outside every route)."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def observe(request: Request, status: int, seconds: float) -> None:
    if request.url.path.startswith(_NOT_COUNTED):
        return
    route = route_of(request)
    REQUESTS.labels(route, str(status)).inc()
    REQUEST_SECONDS.labels(route).observe(seconds)


async def endpoint() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
