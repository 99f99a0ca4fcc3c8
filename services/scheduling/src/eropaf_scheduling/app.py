"""Wiring of the scheduling service.

Its domain arrives with its own issue; until then the process already has the shape every
service has: settings, its own database with migrations, the outbox relay, health and metrics.
"""

from __future__ import annotations

from eropaf_platform.service import Service
from eropaf_platform.settings import ServiceSettings


class SchedulingSettings(ServiceSettings):
    service_name: str = "scheduling"


def build(settings: SchedulingSettings | None = None) -> Service:
    return Service(settings or SchedulingSettings())


def main() -> None:
    build().run()
