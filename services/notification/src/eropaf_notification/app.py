"""Wiring of the notification service.

Its domain arrives with its own issue; until then the process already has the shape every
service has: settings, its own database with migrations, the outbox relay, health and metrics.
"""

from __future__ import annotations

from eropaf_notification import handlers
from eropaf_platform.service import Service
from eropaf_platform.settings import ServiceSettings


class NotificationSettings(ServiceSettings):
    service_name: str = "notification"


def build(settings: NotificationSettings | None = None) -> Service:
    service = Service(settings or NotificationSettings())
    handlers.register(service)
    return service


def main() -> None:
    build().run()
