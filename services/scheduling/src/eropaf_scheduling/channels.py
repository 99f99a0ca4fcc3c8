"""Scheduling's Kafka channels, declared once: the AsyncAPI document is generated from this."""

from __future__ import annotations

from eropaf_contracts.events import (
    CaseClosed,
    CaseOutcomeRecorded,
    CaseUnplanned,
    CaseUpdated,
    ContactAttemptRecorded,
    OutreachDecided,
    OutreachPlanned,
    StaffChanged,
    VisitCancelled,
    VisitCompleted,
    VisitPlanned,
    VisitRescheduled,
)
from eropaf_contracts.topics import CASES_TOPIC, STAFF_TOPIC, VISITS_TOPIC
from eropaf_platform.asyncapi import Channel, Message

CHANNELS = [
    Channel(
        address=CASES_TOPIC,
        action="receive",
        key="household_ref",
        description="Outreach decisions open cases; updates re-key and re-route; closures cancel.",
        messages=(
            Message("OutreachDecided", OutreachDecided, "Who goes, how, by when, and why"),
            Message("CaseUpdated", CaseUpdated, "Routing changed or the case was re-keyed"),
            Message("CaseClosed", CaseClosed, "The case closed: its visits are cancelled"),
        ),
    ),
    Channel(
        address=VISITS_TOPIC,
        action="send",
        key="case_ref",
        description=(
            "Visits, contact attempts and outcomes, for notification (invites to the duo) and "
            "matching (the DDAS contactpogingen and eindresultaat)."
        ),
        messages=(
            Message("VisitPlanned", VisitPlanned, "A new visit with its duo"),
            Message("VisitRescheduled", VisitRescheduled, "A visit moved or changed a member"),
            Message("VisitCancelled", VisitCancelled, "A visit is off"),
            Message("VisitCompleted", VisitCompleted, "Staff recorded the visit's attempt"),
            Message("OutreachPlanned", OutreachPlanned, "The first contact got a date"),
            Message("ContactAttemptRecorded", ContactAttemptRecorded, "A DDAS contactpoging"),
            Message("CaseOutcomeRecorded", CaseOutcomeRecorded, "The outreach ended"),
            Message("CaseUnplanned", CaseUnplanned, "No visit by the deadline, and why"),
        ),
    ),
    Channel(
        address=STAFF_TOPIC,
        action="send",
        key="staff code",
        description="The roster, one full record per staff member (last one wins).",
        messages=(Message("StaffChanged", StaffChanged, "A staff member's current record"),),
    ),
]
