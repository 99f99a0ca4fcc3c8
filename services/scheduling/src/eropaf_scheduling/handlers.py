"""The scheduling service's subscribers (thin: parse, call the domain, persist, emit).

None yet: the scheduling issue adds them here and registers them in `register`.
"""

from __future__ import annotations

from eropaf_platform.service import Service


def register(service: Service) -> None:
    """Subscribe the service's handlers to their topics."""
