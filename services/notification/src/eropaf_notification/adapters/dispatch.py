"""One attempt at one claimed message: render it for its recipient and hand it to its channel.

Rendering (Jinja2, icalendar, MIME) is most of a message's CPU time. With ``render_workers``
it runs in that many worker processes, so the service uses more than one core and its event
loop stays free for the consumer and the mail connections; with 0 it runs inline.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime

from eropaf_contracts.events import DeliveryChannel
from eropaf_notification.adapters.mail import MailIdentity, compose, message_id
from eropaf_notification.adapters.rendering import Recipient, Renderer
from eropaf_notification.adapters.smtp import Mailer
from eropaf_notification.adapters.webhook import WebhookMessage, WebhookSender
from eropaf_notification.domain.delivery import SendResult, obsolete
from eropaf_notification.domain.model import MessageFacts, MessageKind, StaffMember
from eropaf_notification.service_layer.services import Job

__all__ = ["Dispatcher"]

_INVITES = {MessageKind.VISIT_REQUEST, MessageKind.VISIT_LEFT, MessageKind.VISIT_CANCELLED}


_worker: tuple[Renderer, MailIdentity] | None = None


def _start_worker(municipalities: Mapping[str, str], identity: MailIdentity) -> None:
    global _worker
    _worker = (Renderer(municipalities), identity)


def _render_in_worker(
    kind: MessageKind,
    facts: MessageFacts,
    recipient: Recipient,
    attendees: Sequence[Recipient],
    notification_id: str,
    now: datetime,
) -> bytes:
    assert _worker is not None, "worker not started"
    renderer, identity = _worker
    return compose(
        kind=kind,
        facts=facts,
        recipient=recipient,
        attendees=attendees,
        notification_id=notification_id,
        identity=identity,
        renderer=renderer,
        now=now,
    )


def _recipient(member: StaffMember) -> Recipient:
    return Recipient(member.code, member.naam, member.email, member.taal)


class Dispatcher:
    def __init__(
        self,
        *,
        renderer: Renderer,
        identity: MailIdentity,
        mailer: Mailer,
        webhooks: WebhookSender | None = None,
        webhook_urls: Mapping[str, str] | None = None,
        render_workers: int = 0,
    ) -> None:
        self.renderer = renderer
        self._pool = (
            ProcessPoolExecutor(
                max_workers=render_workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(renderer.municipalities, identity),
            )
            if render_workers > 0
            else None
        )
        self.identity = identity
        self.mailer = mailer
        self.webhooks = webhooks
        self.webhook_urls = dict(webhook_urls or {})

    def message_id(self, job: Job) -> str:
        return message_id(job.intent.notification_id, self.identity.domain)

    async def send(self, job: Job, now: datetime) -> SendResult:
        intent = job.intent
        why = obsolete(intent, job.visit)
        if why is not None:
            return SendResult.skipped(why)
        if intent.channel is DeliveryChannel.WEBHOOK:
            return await self._post(job, now)
        member = job.recipient
        if member is None:
            # StaffChanged may come after the visit event: wait for it (within the window).
            return SendResult.temporary("recipient not yet known")
        if not member.active:
            return SendResult.permanent("recipient removed from the roster")
        attendees = [job.attendees.get(code) for code in intent.facts.attendees]
        if intent.kind in _INVITES and any(a is None for a in attendees):
            return SendResult.temporary("a member of the duo is not yet known")
        to = _recipient(member)
        duo = [_recipient(a) for a in attendees if a is not None]
        message: bytes
        if self._pool is not None:
            message = await asyncio.get_running_loop().run_in_executor(
                self._pool,
                _render_in_worker,
                intent.kind,
                intent.facts,
                to,
                duo,
                intent.notification_id,
                now,
            )
        else:
            message = compose(
                kind=intent.kind,
                facts=intent.facts,
                recipient=to,
                attendees=duo,
                notification_id=intent.notification_id,
                identity=self.identity,
                renderer=self.renderer,
                now=now,
            )
        return await self.mailer.send(
            message, sender=self.identity.sender, recipients=[member.email]
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def _post(self, job: Job, now: datetime) -> SendResult:
        intent = job.intent
        url = self.webhook_urls.get(intent.recipient)
        if url is None or self.webhooks is None:
            return SendResult.permanent("no webhook configured for the recipient")
        member = job.recipient
        who = (
            _recipient(member)
            if member is not None
            else Recipient(intent.recipient, intent.recipient, "", "nl")
        )
        attendees = [job.attendees[c] for c in intent.facts.attendees if c in job.attendees]
        rendered = self.renderer.render(
            intent.kind, intent.facts, who, [_recipient(a) for a in attendees]
        )
        return await self.webhooks.post(
            url,
            WebhookMessage(
                notification_id=intent.notification_id,
                message_id=self.message_id(job),
                kind=intent.kind.value,
                case_ref=intent.case_ref,
                subject=rendered.subject,
                text=rendered.text,
                sent_at=now,
            ),
        )
