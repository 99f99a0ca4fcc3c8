"""Intake's subscribers: thin — parse the Kafka records, call one use case
(``service_layer.services``) in the batch's unit of work."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_contracts.cloudevents import decode_headers
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import CaseClosed, CreditorFeedbackRequested
from eropaf_contracts.topics import partner_code_from_topic
from eropaf_intake.adapters import crypto
from eropaf_intake.domain.admission import PartnerMessage
from eropaf_intake.domain.decode import header_value
from eropaf_intake.service_layer import services
from eropaf_intake.service_layer.unit_of_work import IntakeUnitOfWork
from eropaf_platform.consumer import DeadLetterHook, Incoming
from eropaf_platform.kafka_admin import DeadLetter


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


def dead_letter_feedback(config: services.IntakeConfig) -> DeadLetterHook:
    """A partner message that went to the dead-letter queue still gets its one feedback,
    queued in the dead letter's transaction."""

    async def tell_partner(session: AsyncSession, record: Incoming) -> None:
        await services.answer_dead_letter(
            IntakeUnitOfWork(session), config, partner_message(record)
        )

    return tell_partner


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


def dead_letter_unsealer() -> Callable[[DeadLetter], bytes]:
    """Opens intake's sealed dead letters for an operator's replay (``kafka_admin dlq ...
    --unseal``; entry point ``eropaf.dlq_unseal``), with the master keys of the environment
    (``EROPAF_MASTER_KEYS``, as the service reads them)."""
    keyring = crypto.parse_keyring(os.environ["EROPAF_MASTER_KEYS"])

    def open_letter(letter: DeadLetter) -> bytes:
        context = dead_letter_context(
            letter.header("dlq_original_topic"),
            int(letter.header("dlq_original_partition")),
            int(letter.header("dlq_original_offset")),
        )
        return bytes(crypto.unseal(keyring, letter.value, context))

    return open_letter


class PartnerSignalsHandler:
    """All ``arrears.signals.*`` topics: one feedback per message, events for accepted ones."""

    def __init__(self, config: services.IntakeConfig) -> None:
        self.config = config

    async def __call__(self, session: AsyncSession, messages: Sequence[Incoming]) -> None:
        await services.accept_partner_messages(
            IntakeUnitOfWork(session, self.config.keyring),
            self.config,
            [partner_message(m) for m in messages],
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
    await services.record_matching_events(IntakeUnitOfWork(session), closures, requests)
