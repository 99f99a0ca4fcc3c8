"""MailSink: SMTP in, one .eml file per message out."""

from __future__ import annotations

import email
import smtplib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from eropaf_platform.local.smtp import MailSink, store_message
from eropaf_platform.testing import wait_until


@pytest.mark.integration
def test_message_sent_with_smtplib_is_stored_as_eml(tmp_path: Path) -> None:
    mail_dir = tmp_path / "mail"
    with MailSink(mail_dir) as sink:
        assert sink.port > 0
        message = EmailMessage()
        message["From"] = "eropaf@example.org"
        message["To"] = "duo@example.org"
        message["Subject"] = "Nieuwe casus"
        message["Message-ID"] = "<case-1@eropaf>"
        message.set_content("Er is een nieuwe casus.")
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as client:
            client.send_message(message)
        files = wait_until(sink.messages, timeout=5)
    assert len(files) == 1
    assert files[0].suffix == ".eml"
    stored = email.message_from_bytes(files[0].read_bytes(), policy=default)
    assert stored["Subject"] == "Nieuwe casus"
    assert "nieuwe casus" in stored.get_body().get_content()  # type: ignore[union-attr]
    assert not [p for p in mail_dir.iterdir() if p.suffix != ".eml"]  # no temp files left


@pytest.mark.integration
def test_two_sinks_side_by_side(tmp_path: Path) -> None:
    with MailSink(tmp_path / "a") as first, MailSink(tmp_path / "b") as second:
        assert first.port != second.port


@pytest.mark.unit
def test_store_message_names_by_time_and_message_id(tmp_path: Path) -> None:
    raw = b"Message-ID: <x@y>\r\nSubject: s\r\n\r\nbody\r\n"
    when = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    first = store_message(tmp_path, raw, now=when)
    second = store_message(tmp_path, raw, now=when)
    assert first.name.startswith("20260102T030405000006Z-")
    assert first != second  # same message, same instant: both kept
    assert first.read_bytes() == raw
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".eml", ".eml"]
