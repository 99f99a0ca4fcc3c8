"""Mail messages: MIME composition of a rendered message and its invite.

An invite is ``multipart/mixed`` holding a ``multipart/alternative`` (text, HTML and
``text/calendar; charset="utf-8"; method=REQUEST|CANCEL``) and the same calendar as an
``invite.ics`` attachment: Outlook reads the alternative part, Gmail and Thunderbird either.
Other messages are ``multipart/alternative`` (text, HTML). The ``Message-ID`` derives from the
notification id (fact, recipient, version), so a resend of the same message is recognisable.
"""

from __future__ import annotations

import base64
import email.policy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
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
) -> bytes:
    """The message, serialised as it goes over SMTP (CRLF lines)."""
    rendered = renderer.render(kind, facts, recipient, attendees)
    method = _CALENDAR.get(kind)
    # Boundaries of our own ("=_" never occurs in base64 bodies), so nothing has to check them.
    mixed, alternative = f"=_eropaf_0_{notification_id}", f"=_eropaf_1_{notification_id}"
    parts = [
        _part(b'text/plain; charset="utf-8"', _crlf(rendered.text).encode()),
        _part(b'text/html; charset="utf-8"', _crlf(rendered.html).encode()),
    ]
    ics = b""
    if method is not None:
        ics = _calendar(kind, method, facts, recipient, attendees, identity, renderer, now)
        parts.append(_part(b'text/calendar; charset="utf-8"; method=' + method.encode(), ics))
    body = _multipart("alternative", alternative, parts)
    if method is not None:
        attachment = _part(
            b'application/ics; name="invite.ics"',
            ics,
            b'Content-Disposition: attachment; filename="invite.ics"\r\n',
        )
        body = _multipart("mixed", mixed, [body, attachment])
    head = [
        _header("Subject", rendered.subject),
        _header("From", formataddr((identity.name, identity.sender))),
        _header("To", formataddr((recipient.naam, recipient.email))),
        _header("Date", format_datetime(now)),
        _header("Message-ID", message_id(notification_id, identity.domain)),
        b"Auto-Submitted: auto-generated\r\n",
        _header("Content-Language", recipient.taal),
        b"MIME-Version: 1.0\r\n",
    ]
    return b"".join(head) + body


# The message is built as bytes from its parts (measured: the email package's objects and
# generator took as much CPU as all the rest of sending a message). ASCII header values are
# folded at spaces here, others go through the email package's encoding.
_HEADERS = email.policy.compat32.clone(linesep="\r\n", max_line_length=78)


def _header(name: str, value: str) -> bytes:
    if "\r" in value or "\n" in value:
        raise ValueError(f"a line break in the {name} header")
    if not value.isascii():
        return _HEADERS.fold_binary(name, value)  # encoded words (RFC 2047)
    line = f"{name}:"
    lines = []
    for word in value.split(" "):
        if len(line) + 1 + len(word) > 78 and line.strip():
            lines.append(line)
            line = ""  # the space before the word starts the continuation line
        line += " " + word
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode()


def _crlf(text: str) -> str:
    """Text bodies in their canonical form: CRLF line breaks (RFC 2046 §4.1.1)."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def _part(content_type: bytes, data: bytes, extra: bytes = b"") -> bytes:
    """A leaf part, base64 (lines of 76 characters)."""
    return (
        b"Content-Type: "
        + content_type
        + b"\r\nContent-Transfer-Encoding: base64\r\n"
        + extra
        + b"\r\n"
        + base64.encodebytes(data).replace(b"\n", b"\r\n")
    )


def _multipart(subtype: str, boundary: str, parts: Sequence[bytes]) -> bytes:
    """A multipart part: its header, and each part after its delimiter (RFC 2046 §5.1.1)."""
    delimiter = f"\r\n--{boundary}\r\n".encode()
    head = f'Content-Type: multipart/{subtype};\r\n boundary="{boundary}"\r\n\r\n'.encode()
    # The first delimiter needs no CRLF before it (the header's blank line ends there).
    return (
        head
        + delimiter[2:]
        + delimiter.join(p.removesuffix(b"\r\n") for p in parts)
        + f"\r\n--{boundary}--\r\n".encode()
    )


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
