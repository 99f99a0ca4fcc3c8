"""Wiring of the notification service: settings, the subscriber, the delivery loop, the
reminder and digest jobs; ``python -m eropaf_notification``."""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator

from eropaf_contracts.region import load_region
from eropaf_contracts.topics import NOTIFICATION_DELIVERIES_TOPIC
from eropaf_notification import handlers
from eropaf_notification.adapters.calendar import AMSTERDAM
from eropaf_notification.adapters.dispatch import Dispatcher
from eropaf_notification.adapters.mail import MailIdentity
from eropaf_notification.adapters.rendering import Renderer
from eropaf_notification.adapters.smtp import SmtpMailer
from eropaf_notification.adapters.webhook import WebhookSender
from eropaf_notification.delivery import DeliveryLoop
from eropaf_notification.domain.delivery import RetryPolicy
from eropaf_notification.service_layer import services
from eropaf_notification.service_layer.unit_of_work import SqlNotificationUnitOfWork
from eropaf_platform.db import transaction
from eropaf_platform.service import Service
from eropaf_platform.settings import ServiceSettings

__all__ = ["MIGRATIONS", "NotificationSettings", "build", "main"]

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"


class NotificationSettings(ServiceSettings):
    service_name: str = "notification"

    # `eropaf up` points these at its mail sink, docker compose at Mailpit.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_starttls: bool = False
    smtp_tls: bool = False  # implicit TLS (port 465)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    smtp_pool_size: int = Field(default=4, ge=1)
    # Worker processes that render messages (0: in the service's own process).
    render_workers: int = Field(default=0, ge=0)

    mail_from: str = "noreply@eropaf.local"
    # The invites' ORGANIZER: a system address, never one of the attendees.
    mail_organizer: str = "planning@eropaf.local"
    mail_domain: str = "eropaf.local"  # of Message-IDs and UIDs
    mail_sender_name: str = "Vroeg Eropaf"
    region_file: str | None = Field(default=None, description="region YAML; default Lekstroom")

    retry_first_s: float = Field(default=30.0, gt=0)
    retry_longest_s: float = Field(default=3600.0, gt=0)
    retry_window_s: float = Field(default=24 * 3600.0, gt=0)
    delivery_batch_size: int = Field(default=100, ge=1)
    delivery_lease_s: float = Field(default=120.0, gt=0)
    delivery_poll_interval_s: float = Field(default=0.1, gt=0)

    reminder_from: time = time(8, 0)  # local time on the working day before a visit
    digest_from: time = time(7, 0)  # local time of the daily digest
    jobs_interval_s: float = Field(default=60.0, gt=0)

    # Chat webhooks per staff code or team code (JSON object), signed with webhook_secret.
    webhooks: dict[str, str] = Field(default_factory=dict)
    webhook_secret: SecretStr | None = None
    consumer_group_prefix: str = Field(default="eropaf", min_length=1)

    @model_validator(mode="after")
    def _webhook_secret(self) -> Self:
        if self.webhooks and self.webhook_secret is None:
            raise ValueError("EROPAF_WEBHOOK_SECRET is required when webhooks are configured")
        return self


def build(settings: NotificationSettings | None = None) -> Service:
    settings = settings or NotificationSettings()
    service = Service(
        settings,
        migrations=MIGRATIONS,
        topics=[*handlers.TOPICS, NOTIFICATION_DELIVERIES_TOPIC],
    )
    region = load_region(settings.region_file)
    renderer = Renderer({m.code: m.name for m in region.municipalities})
    holidays = frozenset(region.holidays)
    mailer = SmtpMailer(
        settings.smtp_host,
        settings.smtp_port,
        starttls=settings.smtp_starttls,
        use_tls=settings.smtp_tls,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        timeout_s=settings.smtp_timeout_s,
        pool_size=settings.smtp_pool_size,
    )
    webhooks = (
        WebhookSender(settings.webhook_secret.get_secret_value().encode())
        if settings.webhook_secret is not None
        else None
    )
    dispatcher = Dispatcher(
        renderer=renderer,
        identity=MailIdentity(
            sender=settings.mail_from,
            organizer=settings.mail_organizer,
            domain=settings.mail_domain,
            name=settings.mail_sender_name,
        ),
        mailer=mailer,
        webhooks=webhooks,
        webhook_urls=settings.webhooks,
        render_workers=settings.render_workers,
    )
    loop = DeliveryLoop(
        service.sessions,
        dispatcher,
        policy=RetryPolicy(
            initial_backoff_s=settings.retry_first_s,
            max_backoff_s=settings.retry_longest_s,
            window_s=settings.retry_window_s,
        ),
        service=settings.service_name,
        batch_size=settings.delivery_batch_size,
        concurrency=settings.smtp_pool_size,
        lease_s=settings.delivery_lease_s,
        on_commit=service.relay.wake,
    )
    routing = services.Routing(settings.webhooks)
    handlers.register(
        service,
        handlers.NotificationEvents(routing, service=settings.service_name),
        group_prefix=settings.consumer_group_prefix,
    )

    async def reminders_and_digests() -> None:
        now_local = datetime.now(AMSTERDAM)
        async with transaction(service.sessions) as session:
            await services.create_reminders(
                SqlNotificationUnitOfWork(session),
                now_local,
                settings.reminder_from,
                routing,
                holidays,
            )
        async with transaction(service.sessions) as session:
            await services.create_digests(
                SqlNotificationUnitOfWork(session), now_local, settings.digest_from
            )

    service.every(settings.jobs_interval_s, reminders_and_digests, name="reminders-and-digests")
    # Registered last: at start-up the first rounds go to the consumer and the jobs.
    service.every(settings.delivery_poll_interval_s, loop.drain, name="delivery")
    return service


def main() -> None:
    build().run()
