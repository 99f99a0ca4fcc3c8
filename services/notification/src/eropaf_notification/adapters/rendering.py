"""Messages rendered from Jinja2 templates: a subject and a text body per kind and language
(``templates/<taal>/<kind>.txt``), and the HTML body from the same paragraphs in one layout
(``templates/<taal>/layout.html``, autoescaped).

Templates only ever see :class:`~eropaf_notification.domain.model.MessageFacts` (closed: no
household data can reach them), the municipality's name, and staff names and codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import jinja2

from eropaf_notification.adapters.calendar import AMSTERDAM
from eropaf_notification.domain.model import MessageFacts, MessageKind

__all__ = ["LANGUAGES", "Recipient", "Rendered", "Renderer"]

LANGUAGES = ("nl", "en")

_WEEKDAYS = {
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_MONTHS = {
    "nl": (
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}
_LABELS: dict[str, dict[str, str]] = {
    "nl": {
        "Ochtend": "ochtend",
        "Middag": "middag",
        "Avond": "avond",
        "home_visit": "huisbezoek",
        "phone": "telefonisch contact",
        "letter": "brief",
        "crisis": "crisis",
        "high": "hoog",
        "normal": "normaal",
        "case_closed": "de casus is afgesloten",
        "staff_absent": "een medewerker is afwezig en er is geen vervanging",
        "replanned": "het bezoek maakt plaats voor een urgentere casus",
        "outreach_changed": "er is geen huisbezoek meer nodig",
        "no_counsellor_available": "geen schuldhulpverlener beschikbaar",
        "no_employee_available": "geen medewerker van de corporatie beschikbaar",
        "capacity_exhausted": "de capaciteit is op",
        "deadline_passed": "de termijn is verstreken",
        "visit_overdue": "de dag van het huisbezoek is voorbij zonder vastgelegde contactpoging",
    },
    "en": {
        "Ochtend": "morning",
        "Middag": "afternoon",
        "Avond": "evening",
        "home_visit": "home visit",
        "phone": "phone call",
        "letter": "letter",
        "crisis": "crisis",
        "high": "high",
        "normal": "normal",
        "case_closed": "the case was closed",
        "staff_absent": "a member is absent and no replacement was found",
        "replanned": "the visit made way for a more urgent case",
        "outreach_changed": "a home visit is no longer needed",
        "no_counsellor_available": "no debt counsellor available",
        "no_employee_available": "no corporation employee available",
        "capacity_exhausted": "capacity exhausted",
        "deadline_passed": "the deadline has passed",
        "visit_overdue": "the home visit's day has passed and no contact attempt was recorded",
    },
}


@dataclass(frozen=True)
class Recipient:
    code: str
    naam: str
    email: str
    taal: str = "nl"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Renderer:
    def __init__(self, municipalities: Mapping[str, str] | None = None) -> None:
        self.municipalities = dict(municipalities or {})
        self._text = jinja2.Environment(
            loader=jinja2.PackageLoader("eropaf_notification", "templates"),
            autoescape=False,  # noqa: S701 - plain text bodies; HTML goes through _html
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,  # the package's templates do not change while it runs
        )
        self._html = jinja2.Environment(
            loader=jinja2.PackageLoader("eropaf_notification", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        for env in (self._text, self._html):
            env.filters["day"] = _format_day
            env.filters["clock"] = _format_clock

    def render(
        self,
        kind: MessageKind,
        facts: MessageFacts,
        recipient: Recipient,
        attendees: Sequence[Recipient] = (),
    ) -> Rendered:
        taal = recipient.taal if recipient.taal in LANGUAGES else "nl"
        labels = _LABELS[taal]
        context: dict[str, Any] = {
            "f": facts,
            "taal": taal,
            "recipient": recipient,
            "attendees": list(attendees),
            "gemeente": self.municipality(facts.gemeentecode),
            "municipality": self.municipality,
            "label": lambda value: labels.get(str(value), str(value)) if value else "",
        }
        template = self._text.get_template(f"{taal}/{kind.value}.txt")
        subject = _one_line(_block(template, "subject", context))
        text = _block(template, "body", context).strip() + "\n"
        paragraphs = [p.splitlines() for p in text.split("\n\n") if p.strip()]
        html = self._html.get_template(f"{taal}/layout.html").render(
            subject=subject, paragraphs=paragraphs
        )
        return Rendered(subject=subject, text=text, html=html)

    def municipality(self, code: str | None) -> str:
        if not code:
            return ""
        name = self.municipalities.get(code)
        return f"{name} ({code})" if name else code


def _block(template: jinja2.Template, name: str, context: dict[str, Any]) -> str:
    return "".join(template.blocks[name](template.new_context(context)))


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _format_day(value: date | datetime | None, taal: str = "nl") -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(AMSTERDAM).date()
    weekday = _WEEKDAYS[taal][value.weekday()]
    month = _MONTHS[taal][value.month - 1]
    return f"{weekday} {value.day} {month} {value.year}"


def _format_clock(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(AMSTERDAM).strftime("%H:%M")
