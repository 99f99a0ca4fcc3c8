"""Intake's use case: turn partner messages (Kafka or HTTP) into feedback, stored signals,
encrypted personal data and pseudonymous events — for a whole batch in one transaction."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_contracts.cloudevents import SIGNAL_RESOLVED_TYPE, SIGNAL_SUBMITTED_TYPE
from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import SignalAccepted, SignalUpdated
from eropaf_contracts.events import SignalResolved as SignalResolvedEvent
from eropaf_contracts.feedback import Feedback, FeedbackReason, FeedbackStatus, ReasonCode
from eropaf_contracts.region import Region
from eropaf_contracts.signals import PartnerSignal, dump_ddas
from eropaf_contracts.topics import INTAKE_SIGNALS_TOPIC, feedback_topic
from eropaf_intake.adapters import crypto, jws
from eropaf_intake.adapters.tables import (
    household_key,
    partner,
    partner_key,
    personal_record,
    signal,
)
from eropaf_intake.domain.decode import unprocessable
from eropaf_intake.domain.match_tokens import match_tokens, pseudonym, signal_ref
from eropaf_intake.domain.revisions import Revision, content_fingerprint, decide_revision
from eropaf_intake.domain.validation import (
    Limits,
    PartnerPolicy,
    Rejected,
    ValidResolution,
    ValidSignal,
    validate_resolution,
    validate_signal,
)
from eropaf_platform import bulk, outbox
from eropaf_platform.logging import get_logger

FEEDBACK_CE_TYPE = "nl.vroegsignalering.signal.feedback.v1"
log = get_logger(__name__)

# One statement per table and batch. case_closed_at is never written here: a new signal has
# none, and an existing one keeps its own (it is not among the updated columns).
_SIGNAL_COLUMNS = (
    "signal_ref",
    "partner_code",
    "signal_id",
    "fingerprint",
    "signaaldatum",
    "revision",
    "household_key",
    "accepted_at",
    "resolved_on",
)
_UPSERT_SIGNAL = bulk.json_insert(
    signal,
    _SIGNAL_COLUMNS,
    conflict=["signal_ref"],
    update=(
        "fingerprint",
        "signaaldatum",
        "revision",
        "household_key",
        "accepted_at",
        "resolved_on",
    ),
)
_PERSONAL_COLUMNS = ("signal_ref", "household_key", "ciphertext", "updated_at")
_UPSERT_PERSONAL = bulk.json_insert(
    personal_record,
    _PERSONAL_COLUMNS,
    conflict=["signal_ref"],
    update=("household_key", "ciphertext", "updated_at"),
)
_HOUSEHOLD_KEY_COLUMNS = ("household_key", "wrapped_key")
_INSERT_HOUSEHOLD_KEY = bulk.json_insert(household_key, _HOUSEHOLD_KEY_COLUMNS, conflict=[])


@dataclass(frozen=True)
class PartnerKey:
    kid: str
    partner_code: str
    public_key: jws.VerifyKey  # libsodium's form: converted once per batch, used per message
    revoked: bool


@dataclass(frozen=True)
class PartnerDirectory:
    """Partners and their keys as the database has them now (read once per batch, so a
    revocation takes effect at the next batch)."""

    partners: dict[str, PartnerPolicy]
    keys: dict[str, PartnerKey]
    token_hashes: dict[str, str]

    @classmethod
    async def load(cls, session: AsyncSession) -> PartnerDirectory:
        partners: dict[str, PartnerPolicy] = {}
        tokens: dict[str, str] = {}
        for row in (await session.execute(sa.select(partner))).all():
            partners[row.code] = PartnerPolicy(
                code=row.code,
                # As the enum: validation names the allowed types in its rejection message.
                types=frozenset(Signaalpartner(t) for t in row.types),
                disabled=row.disabled,
            )
            if row.token_hash:
                tokens[row.code] = row.token_hash
        keys: dict[str, PartnerKey] = {}
        for row in (await session.execute(sa.select(partner_key))).all():
            keys[row.kid] = PartnerKey(
                kid=row.kid,
                partner_code=row.partner_code,
                public_key=jws.verify_key(jws.public_key_from_pem(row.public_key_pem.encode())),
                revoked=row.revoked_at is not None,
            )
        return cls(partners, keys, tokens)


@dataclass(frozen=True)
class PartnerMessage:
    """One message from a partner, from either channel."""

    partner_code: str
    value: bytes | dict[str, Any]
    ce_type: str = SIGNAL_SUBMITTED_TYPE
    ce_id: str | None = None
    ce_source: str | None = None
    signature: str | None = None
    require_signature: bool = True  # the HTTP channel authenticates with a token instead
    fallback_key: str = ""  # <topic>:<partition>:<offset> for unreadable messages
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class IntakeConfig:
    region: Region
    pseudonym_key: bytes
    keyring: crypto.Keyring
    limits: Limits = field(default_factory=Limits)
    today: Callable[[], date] = lambda: datetime.now(UTC).date()
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


def _rejected(reason: ReasonCode, message: str, field: str | None = None) -> Rejected:
    return Rejected([FeedbackReason(code=reason, field=field, message=message)])


class IntakeBatch:
    """Processes a batch of partner messages inside the caller's transaction."""

    def __init__(self, config: IntakeConfig, directory: PartnerDirectory) -> None:
        self.config = config
        self.directory = directory

    # --- checks that need no database ---------------------------------------------------

    def _authenticate(self, message: PartnerMessage) -> Rejected | None:
        policy = self.directory.partners.get(message.partner_code)
        if policy is None:
            return _rejected(
                ReasonCode.UNKNOWN_PARTNER, f"partner {message.partner_code!r} is not registered"
            )
        if message.ce_source is not None and message.ce_source != message.partner_code:
            return _rejected(
                ReasonCode.INVALID_SIGNATURE,
                "ce_source does not name the partner that owns this topic",
                "ce_source",
            )
        if not message.require_signature:
            return None
        if not message.signature:
            return _rejected(
                ReasonCode.MISSING_SIGNATURE, "the ce_signature header is missing", "ce_signature"
            )
        try:
            parsed = jws.parse_detached(message.signature)
        except ValueError as exc:
            return _rejected(
                ReasonCode.INVALID_SIGNATURE, f"malformed signature: {exc}", "ce_signature"
            )
        key = self.directory.keys.get(parsed.kid)
        if key is None or key.partner_code != message.partner_code:
            return _rejected(
                ReasonCode.INVALID_SIGNATURE,
                f"key {parsed.kid!r} is not a key of this partner",
                "ce_signature",
            )
        if key.revoked:
            return _rejected(
                ReasonCode.INVALID_SIGNATURE, f"key {parsed.kid!r} has been revoked", "ce_signature"
            )
        value = message.value if isinstance(message.value, bytes) else b""
        if not jws.verify_detached(parsed, value, key.public_key):
            return _rejected(
                ReasonCode.INVALID_SIGNATURE,
                "the signature does not match the message",
                "ce_signature",
            )
        return None

    def _validate(self, message: PartnerMessage) -> ValidSignal | ValidResolution | Rejected:
        policy = self.directory.partners.get(message.partner_code)
        if (
            isinstance(message.value, bytes)
            and len(message.value) > self.config.limits.max_value_bytes
        ):
            return _rejected(
                ReasonCode.TOO_LARGE, f"message exceeds {self.config.limits.max_value_bytes} bytes"
            )
        problem = self._authenticate(message)
        if problem is not None:
            return problem
        assert policy is not None
        today = self.config.today()
        if message.ce_type == SIGNAL_RESOLVED_TYPE:
            return validate_resolution(message.value, today, self.config.limits, policy)
        if message.ce_type != SIGNAL_SUBMITTED_TYPE:
            return _rejected(
                ReasonCode.INVALID_SCHEMA, f"unknown ce_type {message.ce_type!r}", "ce_type"
            )
        return validate_signal(message.value, policy, self.config.region, today, self.config.limits)

    def _validate_guarded(
        self, message: PartnerMessage
    ) -> ValidSignal | ValidResolution | Rejected:
        """Whatever validation raises ends as a rejection, never as a silent dead letter."""
        try:
            return self._validate(message)
        except Exception as exc:
            log.error("partner message failed validation unexpectedly", error=type(exc).__name__)
            return Rejected(unprocessable().reasons)

    # --- the batch ------------------------------------------------------------------------

    async def process(
        self, session: AsyncSession, messages: Sequence[PartnerMessage]
    ) -> list[Feedback]:
        outcomes = [self._validate_guarded(m) for m in messages]
        key = self.config.pseudonym_key
        refs = {
            i: signal_ref(key, m.partner_code, _signal_id(o))
            for i, (m, o) in enumerate(zip(messages, outcomes, strict=True))
            if isinstance(o, ValidSignal | ValidResolution)
        }
        known = await self._load_signals(session, set(refs.values()))
        now = self.config.now()
        feedbacks: list[Feedback] = []
        queued: list[outbox.OutgoingMessage] = []
        personal: dict[str, tuple[str, PartnerSignal]] = {}

        for i, (message, outcome) in enumerate(zip(messages, outcomes, strict=True)):
            status = FeedbackStatus.ACCEPTED
            reasons: list[FeedbackReason] = []
            signal_id: str | None
            if isinstance(outcome, Rejected):
                status, reasons, signal_id = (
                    FeedbackStatus.REJECTED,
                    outcome.reasons,
                    outcome.signal_id,
                )
            elif isinstance(outcome, ValidResolution):
                ref = refs[i]
                signal_id = outcome.resolution.id
                stored = known.get(ref)
                if stored is None:
                    status = FeedbackStatus.REJECTED
                    reasons = [
                        FeedbackReason(
                            code=ReasonCode.UNKNOWN_SIGNAL,
                            field="ID",
                            message="no signal with this ID was accepted",
                        )
                    ]
                elif stored["resolved_on"] is not None:
                    status = FeedbackStatus.DUPLICATE
                else:
                    stored["resolved_on"] = outcome.resolution.datum_opgelost
                    stored["dirty"] = True
                    event = SignalResolvedEvent(
                        signal_ref=ref, datum_opgelost=outcome.resolution.datum_opgelost
                    )
                    queued.append(
                        outbox.envelope_message(
                            INTAKE_SIGNALS_TOPIC,
                            Envelope.wrap(
                                event, key=ref, id=f"resolved:{ref}", correlation_id=message.ce_id
                            ),
                        )
                    )
            else:
                ref = refs[i]
                sig = outcome.signal
                signal_id = sig.id
                fingerprint = content_fingerprint(sig)
                stored = known.get(ref)
                revision = 1
                if stored is not None:
                    decision = decide_revision(stored["fingerprint"], stored["signaaldatum"], sig)
                    if decision is Revision.DUPLICATE:
                        status = FeedbackStatus.DUPLICATE
                    elif decision is Revision.CONFLICT:
                        status = FeedbackStatus.REJECTED
                        reasons = [
                            FeedbackReason(
                                code=ReasonCode.CONFLICT,
                                field="ID",
                                message=(
                                    "this ID was accepted before with other content"
                                    " and a signaaldatum that is not later"
                                ),
                            )
                        ]
                    revision = stored["revision"] + 1
                if status is FeedbackStatus.ACCEPTED:
                    tokens = match_tokens(sig, key)
                    household = tokens.get("address") or pseudonym(key, "household", ref)
                    known[ref] = {
                        "signal_ref": ref,
                        "partner_code": message.partner_code,
                        "signal_id": sig.id,
                        "fingerprint": fingerprint,
                        "signaaldatum": sig.signaaldatum,
                        "revision": revision,
                        "household_key": household,
                        "accepted_at": now,
                        "resolved_on": stored["resolved_on"] if stored else None,
                        "dirty": True,
                    }
                    personal[ref] = (household, sig)
                    facts: dict[str, Any] = dict(
                        signal_ref=ref,
                        partner_code=message.partner_code,
                        partner_type=sig.signaalpartner.type,
                        gemeentecode=outcome.gemeentecode,
                        postcode_area=outcome.postcode_area,
                        bedrag=sig.bedrag,
                        ontstaansdatum=sig.ontstaansdatum,
                        signaaldatum=sig.signaaldatum,
                        crisissignaal=bool(sig.crisissignaal),
                        warme_overdracht=bool(sig.warme_overdracht),
                        match_tokens=tokens,
                        received_at=now,
                        revision=revision,
                    )
                    event_model = (
                        SignalAccepted(**facts) if revision == 1 else SignalUpdated(**facts)
                    )
                    queued.append(
                        outbox.envelope_message(
                            INTAKE_SIGNALS_TOPIC,
                            Envelope.wrap(
                                event_model,
                                key=ref,
                                id=f"signal:{ref}:{revision}",
                                correlation_id=message.ce_id,
                            ),
                        )
                    )
            feedback = Feedback(
                id=signal_id, ce_id=message.ce_id, status=status, reasons=reasons, time=now
            )
            feedbacks.append(feedback)
            queued.append(self._feedback_message(message, feedback))

        await self._store(session, known, personal, now)
        await outbox.add(session, queued)
        return feedbacks

    def _feedback_message(
        self, message: PartnerMessage, feedback: Feedback
    ) -> outbox.OutgoingMessage:
        key = feedback.id or message.ce_id or message.fallback_key
        return outbox.OutgoingMessage(
            topic=feedback_topic(message.partner_code),
            key=key,
            value=feedback.model_dump_json(by_alias=True).encode(),
            headers=[
                ("ce_specversion", "1.0"),
                ("ce_id", f"feedback:{message.message_id}"),
                ("ce_source", "eropaf-intake"),
                ("ce_type", FEEDBACK_CE_TYPE),
                ("ce_time", feedback.time.isoformat()),
                ("content-type", "application/json"),
            ],
            # One feedback per partner message, however often it is redelivered.
            event_id=f"feedback:{message.partner_code}:{message.message_id}",
        )

    async def _load_signals(
        self, session: AsyncSession, refs: set[str]
    ) -> dict[str, dict[str, Any]]:
        if not refs:
            return {}
        rows = (
            (await session.execute(sa.select(signal).where(bulk.any_of(signal.c.signal_ref, refs))))
            .mappings()
            .all()
        )
        return {row["signal_ref"]: {**row, "dirty": False} for row in rows}

    async def _store(
        self,
        session: AsyncSession,
        known: dict[str, dict[str, Any]],
        personal: dict[str, tuple[str, PartnerSignal]],
        now: datetime,
    ) -> None:
        dirty = [row for row in known.values() if row["dirty"]]
        # One statement per table and batch (eropaf_platform.bulk), not one per row.
        if dirty:
            await session.execute(_UPSERT_SIGNAL, {"rows": bulk.rows_json(dirty)})
        if not personal:
            return
        data_keys = await self._data_keys(session, {h for h, _ in personal.values()})
        rows = []
        for ref, (household, sig) in personal.items():
            plaintext = json.dumps(personal_fields(sig), sort_keys=True).encode()
            aad = crypto.record_aad(household, ref)
            rows.append(
                {
                    "signal_ref": ref,
                    "household_key": household,
                    "ciphertext": crypto.encrypt(data_keys[household], plaintext, aad),
                    "updated_at": now,
                }
            )
        await session.execute(_UPSERT_PERSONAL, {"rows": bulk.rows_json(rows)})

    async def _data_keys(self, session: AsyncSession, households: set[str]) -> dict[str, bytes]:
        """The data key of each household, creating the missing ones."""
        existing = await load_wrapped_keys(session, households)
        missing = households - set(existing)
        if missing:
            new_rows = [
                {
                    "household_key": h,
                    "wrapped_key": base64.b64encode(
                        crypto.wrap(crypto.new_data_key(), self.config.keyring.current, h.encode())
                    ).decode(),
                }
                for h in sorted(missing)
            ]
            await session.execute(_INSERT_HOUSEHOLD_KEY, {"rows": bulk.rows_json(new_rows)})
            existing = await load_wrapped_keys(session, households)
        return {
            h: crypto.unwrap(base64.b64decode(w), self.config.keyring, h.encode())
            for h, w in existing.items()
        }


async def load_wrapped_keys(session: AsyncSession, households: set[str]) -> dict[str, str]:
    rows = await session.execute(
        sa.select(household_key.c.household_key, household_key.c.wrapped_key).where(
            bulk.any_of(household_key.c.household_key, households)
        )
    )
    return {h: w for h, w in rows.all()}


def personal_fields(sig: PartnerSignal) -> dict[str, Any]:
    """The personal part of a signal, as it is encrypted at rest."""
    ddas = dump_ddas(sig)
    return {
        "ID": ddas.get("ID"),
        "client": ddas.get("client", {}),
        "contactgegevens": ddas.get("contactgegevens"),
    }


def _signal_id(outcome: ValidSignal | ValidResolution | Rejected) -> str:
    if isinstance(outcome, ValidSignal):
        return outcome.signal.id
    if isinstance(outcome, ValidResolution):
        return outcome.resolution.id
    raise TypeError("rejected messages have no signal ref")
