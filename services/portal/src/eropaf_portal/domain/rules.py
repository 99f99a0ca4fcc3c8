"""The portal's rules, pure: which visits are whose and when, who may see a region's
figures, how an identity provider's claim names a staff member, a visit as a calendar file."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from eropaf_portal.domain.model import ContactDetails, Me, Visit

STAFF_CODE = re.compile(r"^[a-z0-9-]{2,32}$")
CASE_REF = re.compile(r"^[0-9a-f]{16,128}$")
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
# How far ahead "my visits" looks: the planning horizon is ten working days.
VISITS_AHEAD_DAYS = 21


class NotAStaffCode(ValueError):
    """The identity provider's claim names no staff code."""


class OutsideRegion(PermissionError):
    """A municipality the staff member does not coordinate."""


def week_of(day: date) -> tuple[date, date]:
    """Monday and Sunday of the ISO week of `day`."""
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def month_of(month: str | None, today: date) -> tuple[date, date]:
    """First and last day of `YYYY-MM` (this month when absent); ValueError when malformed."""
    if not month:
        first = today.replace(day=1)
    else:
        match = MONTH.fullmatch(month)
        if match is None:
            raise ValueError("month is YYYY-MM")
        first = date(int(match.group(1)), int(match.group(2)), 1)
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, following - timedelta(days=1)


@dataclass(frozen=True)
class MyVisits:
    today: list[Visit]
    this_week: list[Visit]
    later: list[Visit]


def my_visits(visits: Iterable[Visit], code: str, today: date) -> MyVisits:
    """The planned visits `code` makes, from today on: today, the rest of this week, later."""
    _, sunday = week_of(today)
    mine = sorted(
        (v for v in visits if code in v.staff and v.status == "planned" and v.datum >= today),
        key=lambda v: (v.start, v.case_ref),
    )
    return MyVisits(
        today=[v for v in mine if v.datum == today],
        this_week=[v for v in mine if today < v.datum <= sunday],
        later=[v for v in mine if v.datum > sunday],
    )


def staff_code_from_claims(claims: Mapping[str, Any], claim: str) -> str:
    """The staff code an identity provider's ID token names in `claim` (lower case)."""
    value = claims.get(claim)
    if not isinstance(value, str):
        raise NotAStaffCode(f"the ID token has no {claim!r} claim")
    code = value.strip().lower()
    if not STAFF_CODE.fullmatch(code):
        raise NotAStaffCode(f"the {claim!r} claim is not a staff code")
    return code


def check_region(me: Me, gemeentecode: str) -> None:
    """A region's figures and exports are for its coordinators only."""
    if not me.is_coordinator or gemeentecode not in me.gemeenten:
        raise OutsideRegion(gemeentecode)


# What a visit needs is who lives where and how to reach them: identity numbers and birth
# dates stay off the screen even after the staff member stated a purpose.
HIDDEN_FIELDS = frozenset({"Burgerservicenummer", "Geboortedatum"})


def contact_details(signal_ref: str, record: Mapping[str, Any]) -> ContactDetails:
    """Intake's record of one signal as (label, value) pairs: the client's name and address
    and the contact details, nested names joined with dots, DDAS names as they are."""
    fields: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key in sorted(value):
                if key not in HIDDEN_FIELDS:
                    walk(f"{prefix}.{key}" if prefix else str(key), value[key])
        elif isinstance(value, list):
            for i, item in enumerate(value, 1):
                walk(f"{prefix}[{i}]", item)
        elif value is not None and value != "":
            fields.append((prefix, str(value)))

    walk("", record.get("client") or {})
    walk("", record.get("contactgegevens") or {})
    return ContactDetails(signal_ref=signal_ref, fields=tuple(fields))


def _ics_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _ics_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def visit_calendar(visit: Visit, *, summary: str, now: datetime) -> str:
    """The visit as an iCalendar file (RFC 5545) to add to one's own calendar; its UID is the
    one of the invitations, so a calendar that has the invitation sees the same event."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Eropaf//portal//NL",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{visit.visit_id}@eropaf",
        f"SEQUENCE:{visit.sequence}",
        f"DTSTAMP:{_ics_time(now)}",
        f"DTSTART:{_ics_time(visit.start)}",
        f"DTEND:{_ics_time(visit.end)}",
        f"SUMMARY:{_ics_text(summary)}",
        "STATUS:" + ("CANCELLED" if visit.status == "cancelled" else "CONFIRMED"),
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"
