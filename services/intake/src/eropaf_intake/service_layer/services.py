"""Intake's use cases, one function each, every one inside a unit of work: load through the
repositories, ask the domain what happens, stage what changed, turn the outcomes into events
and feedback, commit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from eropaf_contracts.cloudevents import SIGNAL_FEEDBACK_TYPE, CloudEventHeaders
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import (
    CaseClosed,
    CreditorFeedbackRequested,
    SignalAccepted,
    SignalUpdated,
)
from eropaf_contracts.events import SignalResolved as SignalResolvedEvent
from eropaf_contracts.feedback import Feedback, FeedbackStatus
from eropaf_contracts.region import Region
from eropaf_contracts.topics import INTAKE_SIGNALS_TOPIC, feedback_topic
from eropaf_intake.adapters import crypto
from eropaf_intake.domain.admission import (
    Admitted,
    PartnerDirectory,
    PartnerMessage,
    admit,
    signal_id_of,
)
from eropaf_intake.domain.decode import decode_object, readable_id, unprocessable
from eropaf_intake.domain.match_tokens import signal_ref
from eropaf_intake.domain.signals import (
    Accepted,
    Outcome,
    Resolved,
    StoredSignal,
    Updated,
    feedback_status,
    lifecycle_feedback,
    receive,
    resolve,
)
from eropaf_intake.domain.validation import Limits, Rejected, ValidResolution
from eropaf_intake.service_layer.unit_of_work import AbstractIntakeUnitOfWork
from eropaf_platform.logging import get_logger
from eropaf_platform.outbox import OutgoingMessage

__all__ = [
    "IntakeConfig",
    "accept_partner_messages",
    "answer_dead_letter",
    "load_partner_directory",
    "read_personal_data",
    "record_matching_events",
]

log = get_logger(__name__)
_SOURCE = "eropaf-intake"


@dataclass(frozen=True)
class IntakeConfig:
    region: Region
    pseudonym_key: bytes
    keyring: crypto.Keyring
    limits: Limits = field(default_factory=Limits)
    today: Callable[[], date] = lambda: datetime.now(UTC).date()
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


async def load_partner_directory(uow: AbstractIntakeUnitOfWork) -> PartnerDirectory:
    """The partner directory as stored now (the HTTP channel checks the token with it, then
    hands it to :func:`accept_partner_messages`)."""
    async with uow:
        return await uow.partners.directory()


async def accept_partner_messages(
    uow: AbstractIntakeUnitOfWork,
    config: IntakeConfig,
    messages: Sequence[PartnerMessage],
    directory: PartnerDirectory | None = None,
) -> list[Feedback]:
    """A batch of partner messages, from either channel: exactly one feedback per message
    (returned, and queued for the partner's feedback topic), the accepted signals and their
    encrypted personal data stored, an event per accepted, updated or resolved signal. One
    lookup and one write per table for the whole batch."""
    async with uow:
        if directory is None:
            directory = await uow.partners.directory()
        today = config.today()
        admitted = [_admit_guarded(m, directory, config, today) for m in messages]
        key = config.pseudonym_key
        refs = {
            i: signal_ref(key, m.partner_code, signal_id_of(a))
            for i, (m, a) in enumerate(zip(messages, admitted, strict=True))
            if not isinstance(a, Rejected)
        }
        known = await uow.signals.get(set(refs.values()))
        now = config.now()
        feedbacks: list[Feedback] = []
        for i, (message, item) in enumerate(zip(messages, admitted, strict=True)):
            outcome: Outcome
            if isinstance(item, Rejected):
                outcome, signal_id = item, item.signal_id
            elif isinstance(item, ValidResolution):
                ref = refs[i]
                signal_id = item.resolution.id
                outcome = resolve(known.get(ref), item, signal_ref=ref)
            else:
                ref = refs[i]
                signal_id = item.signal.id
                outcome = receive(
                    known.get(ref),
                    item,
                    signal_ref=ref,
                    partner_code=message.partner_code,
                    pseudonym_key=key,
                    now=now,
                )
            _apply(uow, outcome, message, known, now)
            status, reasons = feedback_status(outcome)
            feedback = Feedback(
                id=signal_id, ce_id=message.ce_id, status=status, reasons=reasons, time=now
            )
            feedbacks.append(feedback)
            uow.queue(
                [
                    _feedback_message(
                        message.partner_code,
                        feedback.id or message.ce_id or message.fallback_key,
                        feedback,
                        # One feedback per partner message, however often it is redelivered.
                        ce_id=f"feedback:{message.message_id}",
                        event_id=f"feedback:{message.partner_code}:{message.message_id}",
                    )
                ]
            )
        await uow.commit()
        return feedbacks


def _admit_guarded(
    message: PartnerMessage, directory: PartnerDirectory, config: IntakeConfig, today: date
) -> Admitted:
    """Whatever admission raises ends as a rejection, never as a silent dead letter."""
    try:
        return admit(message, directory, region=config.region, today=today, limits=config.limits)
    except Exception as exc:
        log.error("partner message failed validation unexpectedly", error=type(exc).__name__)
        return Rejected(unprocessable().reasons)


async def answer_dead_letter(
    uow: AbstractIntakeUnitOfWork, config: IntakeConfig, message: PartnerMessage
) -> None:
    """The one feedback of a partner message that went to the dead-letter queue: rejected
    with a generic reason, under the event id its feedback would have had (so one either
    way)."""
    async with uow:
        decoded = (
            decode_object(message.value, max_bytes=config.limits.max_value_bytes)
            if isinstance(message.value, bytes)
            else None
        )
        signal_id = readable_id(decoded) if isinstance(decoded, dict) else None
        feedback = Feedback(
            id=signal_id,
            ce_id=message.ce_id,
            status=FeedbackStatus.REJECTED,
            reasons=unprocessable().reasons,
            time=config.now(),
        )
        uow.queue(
            [
                _feedback_message(
                    message.partner_code,
                    signal_id or message.ce_id or message.fallback_key,
                    feedback,
                    ce_id=f"feedback:{message.message_id}",
                    event_id=f"feedback:{message.partner_code}:{message.message_id}",
                )
            ]
        )
        await uow.commit()


def _apply(
    uow: AbstractIntakeUnitOfWork,
    outcome: Outcome,
    message: PartnerMessage,
    known: dict[str, StoredSignal],
    now: datetime,
) -> None:
    """Stage what an outcome changed and queue the event that says so. ``known`` follows the
    batch, so a later message about the same signal sees the earlier one's effect."""
    if isinstance(outcome, Accepted):
        stored, sig, valid = outcome.stored, outcome.valid.signal, outcome.valid
        ref = stored.signal_ref
        known[ref] = stored
        uow.signals.add(stored)
        uow.personal_data.add(ref, stored.household_key, sig, now)
        event_model = SignalUpdated if isinstance(outcome, Updated) else SignalAccepted
        # As keywords: pydantic reads the token kinds (plain strings here) as their enum.
        facts: dict[str, Any] = dict(
            signal_ref=ref,
            partner_code=message.partner_code,
            partner_type=sig.signaalpartner.type,
            gemeentecode=valid.gemeentecode,
            postcode_area=valid.postcode_area,
            bedrag=sig.bedrag,
            ontstaansdatum=sig.ontstaansdatum,
            signaaldatum=sig.signaaldatum,
            crisissignaal=bool(sig.crisissignaal),
            warme_overdracht=bool(sig.warme_overdracht),
            match_tokens=outcome.tokens,
            received_at=now,
            revision=stored.revision,
        )
        event = event_model(**facts)
        uow.emit(
            INTAKE_SIGNALS_TOPIC,
            Envelope.wrap(
                event,
                key=ref,
                id=f"signal:{ref}:{stored.revision}",
                correlation_id=message.ce_id,
            ),
        )
    elif isinstance(outcome, Resolved):
        ref = outcome.stored.signal_ref
        known[ref] = outcome.stored
        uow.signals.add(outcome.stored)
        resolved = SignalResolvedEvent(signal_ref=ref, datum_opgelost=outcome.datum_opgelost)
        uow.emit(
            INTAKE_SIGNALS_TOPIC,
            Envelope.wrap(resolved, key=ref, id=f"resolved:{ref}", correlation_id=message.ce_id),
        )


async def record_matching_events(
    uow: AbstractIntakeUnitOfWork,
    closures: Sequence[CaseClosed],
    requests: Sequence[tuple[Envelope, CreditorFeedbackRequested]],
) -> None:
    """Matching's events for intake, in one unit of work: case closures (the retention of
    personal data runs from there), then the lifecycle feedback to pass on to creditors."""
    async with uow:
        for closed in closures:
            await uow.signals.close_cases(closed.signal_refs, closed.closed_at)
        if requests:
            # One lookup for the batch, not one per request.
            ours = await uow.signals.get({r.signal_ref for _, r in requests})
            for envelope, request in requests:
                stored = ours.get(request.signal_ref)
                feedback = lifecycle_feedback(stored, request, envelope.time)
                if stored is None or feedback is None:
                    continue
                uow.queue(
                    [
                        _feedback_message(
                            stored.partner_code,
                            stored.signal_id,
                            feedback,
                            ce_id=f"lifecycle:{envelope.id}",
                            event_id=f"lifecycle:{envelope.id}",
                        )
                    ]
                )
        await uow.commit()


async def read_personal_data(
    uow: AbstractIntakeUnitOfWork, signal_refs: list[str], *, accessor: str, purpose: str
) -> dict[str, dict[str, Any]]:
    """An audited read of personal data (intake's internal API): who reads and why are
    required, and recorded with the read."""
    if not accessor.strip() or not purpose.strip():
        raise ValueError("a read of personal data needs an accessor and a purpose")
    async with uow:
        data = await uow.personal_data.read(signal_refs, accessor=accessor, purpose=purpose)
        await uow.commit()
        return data


def _feedback_message(
    partner_code: str, key: str, feedback: Feedback, *, ce_id: str, event_id: str
) -> OutgoingMessage:
    """Feedback on the partner's feedback topic: the contract's JSON body and CloudEvents
    headers (CONTRACT §2.2), ``ce_time`` the feedback's time."""
    headers = CloudEventHeaders(
        id=ce_id, source=_SOURCE, type=SIGNAL_FEEDBACK_TYPE, time=feedback.time
    )
    return OutgoingMessage(
        topic=feedback_topic(partner_code),
        key=key,
        value=feedback.model_dump_json(by_alias=True).encode(),
        headers=headers.to_text(),  # as text: what the outbox stores
        event_id=event_id,
    )
