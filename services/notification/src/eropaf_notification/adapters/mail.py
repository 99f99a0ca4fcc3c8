"""Mail messages: MIME composition of a rendered message and its invite.

An invite is ``multipart/mixed`` holding a ``multipart/alternative`` (text, HTML and
``text/calendar; charset="utf-8"; method=REQUEST|CANCEL``) and the same calendar as an
``invite.ics`` attachment: Outlook reads the alternative part, Gmail and Thunderbird either.
Other messages are ``multipart/alternative`` (text, HTML). The ``Message-ID`` derives from the
notification id (fact, recipient, version), so a resend of the same message is recognisable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import encoders
from email.message import EmailMessage
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr

from eropaf_notification.adapters.calendar import Attendee, CalendarMethod, build_invite, visit_uid
from eropaf_notification.adapters.rendering import Recipient, Renderer
from eropaf_notification.domain.model import MessageFacts, MessageKind

__all__ = ["MailIdentity", "compose", "message_id"]

_CALENDAR: dict[MessageKind, CalendarMethod] = {
    MessageKind.VISIT_REQUEST: CalendarMethod.REQUEST,
    MessageKind.VISIT_LEFT: CalendarMethod.CANCEL,
    MessageKind.VISIT_CANCELLED: CalendarMethod.CANCEL,
}
_DESCRIPTION = {
    "nl": "Huisbezoek Vroeg Eropaf, casus {case_ref}, {gemeente}. Details in de applicatie.",
    "en": "Vroeg Eropaf home visit, case {case_ref}, {gemeente}. Details in the application.",
}
_SUMMARY = {"nl": "Huisbezoek Vroeg Eropaf, casus {}", "en": "Vroeg Eropaf home visit, case {}"}


@dataclass(frozen=True)
class MailIdentity:
    """The system's addresses (settings): the sender and the invites' organizer."""

    sender: str
    organizer: str
    domain: str
    name: str = "Vroeg Eropaf"


def message_id(notification_id: str, domain: str) -> str:
    return f"<{notification_id}@{domain}>"


def compose(
    *,
    kind: MessageKind,
    facts: MessageFacts,
    recipient: Recipient,
    attendees: Sequence[Recipient],
    notification_id: str,
    identity: MailIdentity,
    renderer: Renderer,
    now: datetime,
) -> EmailMessage | MIMEMultipart:
    rendered = renderer.render(kind, facts, recipient, attendees)
    method = _CALENDAR.get(kind)
    body = MIMEMultipart("alternative")
    body.attach(MIMEText(rendered.text, "plain", "utf-8"))
    body.attach(MIMEText(rendered.html, "html", "utf-8"))
    message: MIMEMultipart = body
    if method is not None:
        ics = _calendar(kind, method, facts, recipient, attendees, identity, renderer, now)
        part = MIMEText(ics.decode(), "calendar", "utf-8")
        part.set_param("method", method.value, requote=False)
        body.attach(part)
        attachment = MIMEBase("application", "ics", name="invite.ics")
        attachment.set_payload(ics)
        encoders.encode_base64(attachment)
        attachment.add_header("Content-Disposition", "attachment", filename="invite.ics")
        message = MIMEMultipart("mixed")
        message.attach(body)
        message.attach(attachment)
    # Boundaries of our own ("=_" never occurs in base64 bodies): the generator would
    # otherwise make a random one per part and compile a regex to check it (measured: a
    # tenth of the time to send a message).
    containers = [m for m in message.walk() if m.is_multipart()]
    for n, container in enumerate(containers):
        container.set_boundary(f"=_eropaf_{n}_{notification_id}")
    message["Subject"] = rendered.subject
    message["From"] = formataddr((identity.name, identity.sender))
    message["To"] = formataddr((recipient.naam, recipient.email))
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id(notification_id, identity.domain)
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = recipient.taal
    return message


def _calendar(
    kind: MessageKind,
    method: CalendarMethod,
    facts: MessageFacts,
    recipient: Recipient,
    attendees: Sequence[Recipient],
    identity: MailIdentity,
    renderer: Renderer,
    now: datetime,
) -> bytes:
    if facts.visit_id is None or facts.start is None or facts.end is None:
        raise ValueError(f"a {kind} message needs a visit with start and end")
    if kind is MessageKind.VISIT_LEFT:
        named = [recipient]  # RFC 5546 §3.2.5: the cancel names only who is removed
    else:
        named = list(attendees)
    return build_invite(
        method=method,
        uid=visit_uid(facts.visit_id, identity.domain),
        sequence=facts.sequence or 0,
        start=facts.start,
        end=facts.end,
        summary=_SUMMARY.get(recipient.taal, _SUMMARY["nl"]).format(facts.case_ref),
        description=_DESCRIPTION.get(recipient.taal, _DESCRIPTION["nl"]).format(
            case_ref=facts.case_ref, gemeente=renderer.municipality(facts.gemeentecode)
        ),
        location=renderer.municipality(facts.gemeentecode),
        organizer=Attendee(identity.organizer, identity.name),
        attendees=[Attendee(a.email, a.naam) for a in named],
        stamp=now,
        cancelled=kind is MessageKind.VISIT_CANCELLED,
    )
