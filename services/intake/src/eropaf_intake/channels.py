"""Intake's Kafka channels, declared once: the AsyncAPI document is generated from this."""

from __future__ import annotations

from typing import Any

from eropaf_contracts.cloudevents import (
    SIGNAL_FEEDBACK_TYPE,
    SIGNAL_RESOLVED_TYPE,
    SIGNAL_SUBMITTED_TYPE,
)
from eropaf_contracts.events import (
    CaseClosed,
    CreditorFeedbackRequested,
    SignalAccepted,
    SignalResolved,
    SignalUpdated,
)
from eropaf_contracts.feedback import Feedback
from eropaf_contracts.signals import PartnerSignal
from eropaf_contracts.signals import SignalResolved as PartnerSignalResolved
from eropaf_contracts.topics import CREDITOR_FEEDBACK_TOPIC, INTAKE_SIGNALS_TOPIC
from eropaf_platform.asyncapi import Channel, Message


def _ce_headers(ce_type: str, signed: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "ce_specversion": {"const": "1.0"},
        "ce_id": {"type": "string", "description": "unique per message (a UUID is fine)"},
        "ce_source": {"type": "string", "description": "the partner code (must own the topic)"},
        "ce_type": {"const": ce_type},
        "ce_time": {"type": "string", "format": "date-time"},
        "content-type": {"const": "application/json"},
    }
    required = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type"]
    if signed:
        properties["ce_signature"] = {
            "type": "string",
            "pattern": r"^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+$",
            "description": (
                "JWS (RFC 7515) compact serialisation with detached content: "
                "BASE64URL(protected) + '..' + BASE64URL(signature); protected header "
                '{"alg":"EdDSA","kid":"<kid>"}; signing input ASCII(BASE64URL(protected) + "." + '
                "BASE64URL(value)) over the exact value bytes; BASE64URL without padding; Ed25519 "
                "key registered for the partner that owns the topic"
            ),
        }
        required.append("ce_signature")
    return {"type": "object", "properties": properties, "required": required}


CHANNELS = [
    Channel(
        address="arrears.signals.{code}",
        action="receive",
        parameters={"code": "the partner code, [a-z0-9-]{2,32}"},
        key="the signal's ID, UTF-8",
        description=(
            "Arrears signals a partner publishes (one DDAS v0.9 vroegsignalen[] item per message, "
            "plus the optional contactgegevens extension). Every message gets exactly one "
            "feedback message on arrears.feedback.{code}."
        ),
        messages=(
            Message(
                "SignalSubmitted",
                PartnerSignal,
                "A new or updated signal (nl.vroegsignalering.signal.submitted.v1)",
                enveloped=False,
                headers=_ce_headers(SIGNAL_SUBMITTED_TYPE, signed=True),
            ),
            Message(
                "SignalResolvedByPartner",
                PartnerSignalResolved,
                "The arrears behind an earlier signal are paid or arranged "
                "(nl.vroegsignalering.signal.resolved.v1)",
                enveloped=False,
                headers=_ce_headers(SIGNAL_RESOLVED_TYPE, signed=True),
            ),
        ),
    ),
    Channel(
        address="arrears.feedback.{code}",
        action="send",
        parameters={"code": "the partner code"},
        key=(
            "the signal ID when it could be read, else the message's ce_id, "
            "else <topic>:<partition>:<offset>"
        ),
        description=(
            "Feedback on every partner message (accepted, duplicate, rejected with reasons), and "
            "later the lifecycle statuses a creditor may see by law (picked_up, not_picked_up)."
        ),
        messages=(
            Message(
                "Feedback",
                Feedback,
                "Feedback on one partner message, or a lifecycle status",
                enveloped=False,
                headers=_ce_headers(SIGNAL_FEEDBACK_TYPE, signed=False),
            ),
        ),
    ),
    Channel(
        address=INTAKE_SIGNALS_TOPIC,
        action="send",
        key="signal_ref (keyed pseudonym of partner code + signal ID)",
        description="Pseudonymous signal events for matching; no personal data.",
        messages=(
            Message("SignalAccepted", SignalAccepted, "A new signal was accepted"),
            Message("SignalUpdated", SignalUpdated, "A later version of an accepted signal"),
            Message("SignalResolved", SignalResolved, "The partner reported the arrears cleared"),
        ),
    ),
    Channel(
        address=CREDITOR_FEEDBACK_TOPIC,
        action="receive",
        key="household_ref (one household's events stay in order)",
        description=(
            "Matching's events for intake: tell a creditor whether its signal was picked up, "
            "and case closures (the same CaseClosed as on matching's cases topic, which intake "
            "does not read), from which the retention of personal data runs."
        ),
        messages=(
            Message("CreditorFeedbackRequested", CreditorFeedbackRequested, "Picked up or not"),
            Message("CaseClosed", CaseClosed, "A case was closed with a DDAS end result"),
        ),
    ),
]
