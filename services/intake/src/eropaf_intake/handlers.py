"""Intake's subscribers: thin — turn Kafka records into partner messages and call the use case."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_contracts.cloudevents import decode_headers
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import CaseClosed, CreditorFeedbackRequested
from eropaf_contracts.feedback import Feedback, FeedbackStatus
from eropaf_contracts.topics import feedback_topic, partner_code_from_topic
from eropaf_intake.adapters import crypto
from eropaf_intake.adapters.tables import signal
from eropaf_intake.domain.decode import decode_object, header_value, readable_id, unprocessable
from eropaf_intake.intake import (
    FEEDBACK_CE_TYPE,
    IntakeBatch,
    IntakeConfig,
    PartnerDirectory,
    PartnerMessage,
)
from eropaf_platform import bulk, outbox
from eropaf_platform.consumer import DeadLetterHook, Incoming


def partner_message(record: Incoming) -> PartnerMessage:
    headers = decode_headers(list(record.headers.items()))
    return PartnerMessage(
        partner_code=partner_code_from_topic(record.topic) or "",
        value=record.value,
        # Headers are the partner's too: cut and escaped before anything repeats or stores them.
        ce_type=header_value(headers.get("ce_type")) or "",
        ce_id=header_value(headers.get("ce_id")),
        ce_source=header_value(headers.get("ce_source")),
        signature=headers.get("ce_signature"),
        fallback_key=f"{record.topic}:{record.partition}:{record.offset}",
        message_id=record.message_id,
    )


def dead_letter_context(topic: str, partition: int, offset: int) -> bytes:
    """What a sealed dead letter of a partner message is bound to: where it came from (the
    DLQ record names it in its ``dlq_original_*`` headers)."""
    return crypto.record_aad(topic, str(partition), str(offset))


def partner_dead_letter_seal(keyring: crypto.Keyring) -> Callable[[Incoming], bytes]:
    """A partner message holds personal data: its dead letter carries it encrypted under the
    master keyring (:func:`crypto.unseal` with :func:`dead_letter_context` opens it)."""

    def seal(record: Incoming) -> bytes:
        context = dead_letter_context(record.topic, record.partition, record.offset)
        return crypto.seal(keyring, record.value, context)

    return seal


def dead_letter_feedback(max_value_bytes: int) -> DeadLetterHook:
    """A partner message that went to the dead-letter queue still gets its one feedback:
    rejected with a generic reason, queued in the dead letter's transaction."""

    async def tell_partner(session: AsyncSession, record: Incoming) -> None:
        message = partner_message(record)
        decoded = decode_object(record.value, max_bytes=max_value_bytes)
        signal_id = readable_id(decoded) if isinstance(decoded, dict) else None
        feedback = Feedback(
            id=signal_id,
            ce_id=message.ce_id,
            status=FeedbackStatus.REJECTED,
            reasons=unprocessable().reasons,
            time=datetime.now(UTC),
        )
        await outbox.add(
            session,
            [
                outbox.OutgoingMessage(
                    topic=feedback_topic(message.partner_code),
                    key=signal_id or message.ce_id or message.fallback_key,
                    value=feedback.model_dump_json(by_alias=True).encode(),
                    headers=[
                        ("ce_specversion", "1.0"),
                        ("ce_id", f"feedback:{message.message_id}"),
                        ("ce_source", "eropaf-intake"),
                        ("ce_type", FEEDBACK_CE_TYPE),
                        ("ce_time", feedback.time.isoformat()),
                        ("content-type", "application/json"),
                    ],
                    # The event id of the feedback the message would have had: one either way.
                    event_id=f"feedback:{message.partner_code}:{message.message_id}",
                )
            ],
        )

    return tell_partner


class PartnerSignalsHandler:
    """All ``arrears.signals.*`` topics: one feedback per message, events for accepted ones."""

    def __init__(self, config: IntakeConfig) -> None:
        self.config = config

    async def __call__(self, session: AsyncSession, messages: Sequence[Incoming]) -> None:
        directory = await PartnerDirectory.load(session)
        await IntakeBatch(self.config, directory).process(
            session, [partner_message(m) for m in messages]
        )


def of_types(*event_types: str) -> Callable[[Incoming], bool]:
    """Whether a message is of one of some event types, by the ``ce_type`` header every
    envelope carries (others are not even parsed, nor recorded as processed). A message
    without the header counts, so a malformed one still fails as a poison message."""
    wanted_types = frozenset(event_types)

    def wanted(message: Incoming) -> bool:
        event_type = message.header("ce_type")
        return event_type is None or event_type in wanted_types

    return wanted


# What intake reads of matching's topic (CREDITOR_FEEDBACK_TOPIC, matching -> intake).
MATCHING_EVENT_TYPES = (CreditorFeedbackRequested.EVENT_TYPE, CaseClosed.EVENT_TYPE)


async def handle_matching_events(session: AsyncSession, messages: Sequence[Incoming]) -> None:
    """Matching's events for intake, by envelope type, in the batch's one transaction:
    creditor feedback to pass on, and case closures to time the retention from. A closure
    is the same ``CaseClosed`` matching puts on the cases topic for scheduling and
    notification, sent here as well (under its own id) so intake need not read that topic."""
    requests: list[tuple[Envelope, CreditorFeedbackRequested]] = []
    closures: list[CaseClosed] = []
    for m in messages:
        envelope = m.envelope()
        if envelope.type == CreditorFeedbackRequested.EVENT_TYPE:
            requests.append((envelope, envelope.payload(CreditorFeedbackRequested)))
        elif envelope.type == CaseClosed.EVENT_TYPE:
            closures.append(envelope.payload(CaseClosed))
    await _record_closures(session, closures)
    await _pass_on_creditor_feedback(session, requests)


async def _record_closures(session: AsyncSession, closures: Sequence[CaseClosed]) -> None:
    """Remember when a signal's case closed: the personal-data retention runs from there."""
    for closed in closures:
        await session.execute(
            sa.update(signal)
            .where(bulk.any_of(signal.c.signal_ref, closed.signal_refs))
            .values(case_closed_at=closed.closed_at)
        )


async def _pass_on_creditor_feedback(
    session: AsyncSession, requests: Sequence[tuple[Envelope, CreditorFeedbackRequested]]
) -> None:
    """Lifecycle feedback the law lets a creditor see: picked up or not, nothing more."""
    if not requests:
        return
    # One lookup for the batch, not one per request.
    rows = await session.execute(
        sa.select(signal.c.signal_ref, signal.c.partner_code, signal.c.signal_id).where(
            bulk.any_of(signal.c.signal_ref, {r.signal_ref for _, r in requests})
        )
    )
    ours = {row.signal_ref: row for row in rows}
    queued = []
    for envelope, request in requests:
        row = ours.get(request.signal_ref)
        if row is None:
            continue  # shredded or never ours: nothing to tell
        feedback = Feedback(
            id=row.signal_id,
            ce_id=None,
            status=FeedbackStatus(request.status.value),
            reasons=[],
            time=envelope.time,
        )
        queued.append(
            outbox.OutgoingMessage(
                topic=feedback_topic(row.partner_code),
                key=row.signal_id,
                value=feedback.model_dump_json(by_alias=True).encode(),
                headers=[
                    ("ce_specversion", "1.0"),
                    ("ce_id", f"lifecycle:{envelope.id}"),
                    ("ce_source", "eropaf-intake"),
                    ("ce_type", FEEDBACK_CE_TYPE),
                    ("ce_time", envelope.time.isoformat()),
                    ("content-type", "application/json"),
                ],
                event_id=f"lifecycle:{envelope.id}",
            )
        )
    await outbox.add(session, queued)
