"""Wiring of the scheduling service.

Its domain arrives with its own issue; until then the process already has the shape every
service has: settings, its own database with migrations, the outbox relay, health and metrics.
"""

from __future__ import annotations

from eropaf_platform.service import Service
from eropaf_platform.settings import ServiceSettings
from eropaf_scheduling import handlers


class SchedulingSettings(ServiceSettings):
    service_name: str = "scheduling"


def build(settings: SchedulingSettings | None = None) -> Service:
    service = Service(settings or SchedulingSettings())
    handlers.register(service)
    return service


def main() -> None:
    build().run()
