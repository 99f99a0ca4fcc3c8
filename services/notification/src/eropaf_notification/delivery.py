"""The delivery loop: claims due messages, sends them, records what became of each.

It runs beside the consumers as a periodic task of the service (``Service.every``, a
short interval: the due-rows query is one index probe). Each round: claim up to a batch of due
intents (a short transaction that leases them, ``FOR UPDATE SKIP LOCKED``), render and send
them concurrently outside any transaction, then record every attempt, its outcome and its
``NotificationDelivered``/``NotificationFailed`` event in one transaction. A crash between
sending and recording leaves the lease to run out; the message is then sent again with the
same ``Message-ID`` (the documented window).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eropaf_notification import metrics
from eropaf_notification.adapters.dispatch import Dispatcher
from eropaf_notification.domain.delivery import Outcome, RetryPolicy, SendResult
from eropaf_notification.service_layer import services
from eropaf_notification.service_layer.unit_of_work import SqlNotificationUnitOfWork
from eropaf_platform.db import transaction
from eropaf_platform.logging import get_logger

__all__ = ["DeliveryLoop"]

log = get_logger(__name__)

_STATUS = {
    Outcome.SENT: "sent",
    Outcome.RETRY: "retried",
    Outcome.FAILED: "failed",
    Outcome.SKIPPED: "skipped",
}


class DeliveryLoop:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        dispatcher: Dispatcher,
        *,
        policy: RetryPolicy,
        service: str = "notification",
        batch_size: int = 100,
        concurrency: int = 4,
        lease_s: float = 120.0,
        on_commit: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessions = sessions
        self.dispatcher = dispatcher
        self.policy = policy
        self.service = service
        self.batch_size = batch_size
        # Rendering is CPU work between awaits: as many at a time as there are connections,
        # so that the consumer's transactions get their turns in between.
        self._slots = asyncio.Semaphore(concurrency)
        self.lease_s = lease_s
        self.on_commit = on_commit
        self.clock = clock

    async def drain(self) -> None:
        """Rounds until fewer than a batch were due."""
        while await self.run_once() >= self.batch_size:
            pass

    async def run_once(self) -> int:
        """One round; the number of messages it attempted."""
        async with transaction(self.sessions) as session:
            jobs = await services.claim_due(
                SqlNotificationUnitOfWork(session),
                self.clock(),
                limit=self.batch_size,
                lease_s=self.lease_s,
            )
        if not jobs:
            return 0
        now = self.clock()
        results = await asyncio.gather(*(self._attempt(job, now) for job in jobs))
        async with transaction(self.sessions) as session:
            decisions = await services.record_results(
                SqlNotificationUnitOfWork(session), results, self.clock(), self.policy
            )
        for (job, _, _), decision in zip(results, decisions, strict=True):
            metrics.NOTIFICATIONS.labels(
                self.service, job.intent.channel.value, _STATUS[decision.outcome]
            ).inc()
            if decision.outcome is Outcome.FAILED:
                log.warning(
                    "notification failed",
                    notification_id=job.intent.notification_id,
                    reason=decision.reason,
                )
        if self.on_commit is not None:
            self.on_commit()
        return len(jobs)

    async def _attempt(
        self, job: services.Job, now: datetime
    ) -> tuple[services.Job, SendResult, str]:
        async with self._slots:
            return await self._attempt_one(job, now)

    async def _attempt_one(
        self, job: services.Job, now: datetime
    ) -> tuple[services.Job, SendResult, str]:
        await asyncio.sleep(0)  # let others run before this message's rendering
        started = time.perf_counter()
        try:
            result = await self.dispatcher.send(job, now)
        except Exception as exc:  # a message that cannot be composed never will be
            log.error("message could not be composed", error=type(exc).__name__)
            result = SendResult.permanent(f"could not compose the message: {type(exc).__name__}")
        metrics.SEND_SECONDS.labels(self.service, job.intent.channel.value).observe(
            time.perf_counter() - started
        )
        return job, result, self.dispatcher.message_id(job)
