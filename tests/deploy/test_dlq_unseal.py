"""Opening intake's sealed dead letters with `kafka_admin dlq ... --unseal`: the recipe of the
unsealer intake declares (entry-point group eropaf.dlq_unseal), and how it is found."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from eropaf_intake.adapters.crypto import parse_keyring
from eropaf_intake.handlers import dead_letter_unsealer as intake_dead_letter_unsealer
from eropaf_intake.handlers import partner_dead_letter_seal
from eropaf_platform import kafka_admin
from eropaf_platform.consumer import Incoming
from eropaf_platform.kafka_admin import DeadLetter

pytestmark = pytest.mark.unit

KEYS = "k1:" + base64.b64encode(b"k" * 32).decode()


def _sealed_letter(value: bytes) -> DeadLetter:
    original = Incoming(
        topic="arrears.signals.mitros",
        partition=2,
        offset=5,
        key=b"S-1",
        value=value,
        headers={"ce_id": b"ce-1"},
        timestamp_ms=0,
    )
    sealed = partner_dead_letter_seal(parse_keyring(KEYS))(original)
    return DeadLetter(
        partition=0,
        offset=0,
        timestamp_ms=0,
        key=b"S-1",
        value=sealed,
        headers={
            "ce_id": b"ce-1",
            "dlq_original_topic": b"arrears.signals.mitros",
            "dlq_original_partition": b"2",
            "dlq_original_offset": b"5",
            "dlq_sealed": b"true",
        },
    )


def test_the_unsealer_opens_a_partner_dead_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EROPAF_MASTER_KEYS", KEYS)
    letter = _sealed_letter(b'{"ID": "S-1", "Achternaam": "Jansen"}')
    assert b"Jansen" not in letter.value
    assert letter.sealed
    opened = intake_dead_letter_unsealer()(letter)
    assert opened == b'{"ID": "S-1", "Achternaam": "Jansen"}'
    # The replayed message is the original: same id, so the consumer's record of it matches.
    assert letter.original(opened).message_id == "ce-1"
    assert "dlq_sealed" not in letter.original(opened).headers


class _EntryPoint:
    name = "intake"

    def load(self) -> Any:
        return intake_dead_letter_unsealer


def test_the_unsealer_is_found_by_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    monkeypatch.setenv("EROPAF_MASTER_KEYS", KEYS)
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda group: [_EntryPoint()] if group == kafka_admin.UNSEALERS else [],
    )
    letter = _sealed_letter(b"personal")
    assert kafka_admin.installed_unsealer()(letter) == b"personal"


def test_without_an_unsealer_the_command_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [])
    with pytest.raises(SystemExit, match=r"eropaf\.dlq_unseal"):
        kafka_admin.installed_unsealer()
