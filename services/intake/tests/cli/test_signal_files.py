"""Reading signal files for `eropaf partner publish`, and building the signed message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eropaf_contracts.cloudevents import (
    SIGNAL_RESOLVED_TYPE,
    SIGNAL_SUBMITTED_TYPE,
    CloudEventHeaders,
)
from eropaf_intake.adapters import jws
from eropaf_intake.client import (
    SignalFileError,
    encode_value,
    kid_of,
    parse_signals,
    read_signals,
    signed_message,
)

pytestmark = pytest.mark.unit

SIGNALS = [
    {
        "ID": "S-1",
        "bedrag": 450,
        "crisissignaal": False,
        "signaaldatum": "2026-11-01",
        "signaalpartner": {"type": "Huur"},
        "client": {"Achternaam": "Dijk", "Postcode": "3431 AB", "Huisnummer": "12"},
    },
    {
        "ID": "S-2",
        "bedrag": 1200,
        "crisissignaal": True,
        "signaaldatum": "2026-11-02",
        "signaalpartner": {"type": "Huur"},
        "client": {"Achternaam": "Één", "Postcode": "3432 CD", "Huisnummer": "7"},
    },
]

CSV_SEMICOLON = (
    "\ufeffID;bedrag;crisissignaal;signaaldatum;signaalpartner.type;Achternaam;Postcode;Huisnummer\r\n"
    "S-1;450;nee;2026-11-01;Huur;Dijk;3431 AB;12\r\n"
    "S-2;1200;ja;2026-11-02;Huur;Één;3432 CD;7\r\n"
    ";;;;;;;\r\n"
)


def test_json_array() -> None:
    assert parse_signals(json.dumps(SIGNALS).encode()) == SIGNALS


def test_single_json_object_pretty_printed() -> None:
    assert parse_signals(json.dumps(SIGNALS[0], indent=2).encode()) == [SIGNALS[0]]


def test_json_lines_skip_blank_lines() -> None:
    body = "\n".join(json.dumps(s, ensure_ascii=False) for s in SIGNALS) + "\n\n"
    assert parse_signals(body.encode()) == SIGNALS


def test_csv_with_semicolons_gives_the_json_equivalent() -> None:
    assert parse_signals(CSV_SEMICOLON.encode()) == SIGNALS


def test_csv_with_commas() -> None:
    body = "ID,bedrag,signaalpartner.type\nS-9,10,Huur\n"
    assert parse_signals(body.encode()) == [
        {"ID": "S-9", "bedrag": 10, "signaalpartner": {"type": "Huur"}}
    ]


def test_csv_resolutions() -> None:
    body = b"ID;datumOpgelost\nS-1;2026-11-20\n"
    assert parse_signals(body, resolved=True) == [{"ID": "S-1", "datumOpgelost": "2026-11-20"}]
    with pytest.raises(SignalFileError, match="datumOpgelost"):
        parse_signals(b"ID;bedrag\nS-1;3\n", resolved=True)


def test_explicit_format_and_extension(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(CSV_SEMICOLON, encoding="utf-8")
    assert read_signals(path) == SIGNALS
    jsonl = tmp_path / "signals.txt"
    jsonl.write_text(json.dumps(SIGNALS[0]) + "\n", encoding="utf-8")
    assert read_signals(jsonl, "jsonl") == [SIGNALS[0]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"[1, 2]", "item 1 is not a JSON object"),
        (b"[]", "no signals"),
        (b'[{"ID": "x"}', "not JSON"),
        (b'{"ID": "a"}\n{oops}\n', "line 2 is not JSON"),
        (b"ID;Onbekend\nx;y\n", "unknown column"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_unusable_files_say_why(body: bytes, message: str) -> None:
    with pytest.raises(SignalFileError, match=message):
        parse_signals(body)


def test_signed_message_follows_the_contract() -> None:
    private, public = jws.generate_key_pair()
    kid = kid_of(private)
    assert kid == jws.jwk_thumbprint(public)
    key, value, headers = signed_message("mitros", SIGNALS[1], private, kid)
    assert key == b"S-2"
    assert value == encode_value(SIGNALS[1])
    assert b" " not in value.split(b'"Achternaam"')[0]  # compact
    assert "Één".encode() in value  # UTF-8, not \u escapes
    assert json.loads(value) == SIGNALS[1]
    assert headers.source == "mitros" and headers.type == SIGNAL_SUBMITTED_TYPE
    assert headers.signature is not None
    assert jws.parse_detached(headers.signature).kid == kid
    assert jws.verify_detached(headers.signature, value, public)
    parsed = CloudEventHeaders.from_kafka(headers.to_kafka())
    assert parsed.id == headers.id

    _, _, resolution = signed_message(
        "mitros", {"ID": "S-2", "datumOpgelost": "2026-11-20"}, private, kid, resolved=True
    )
    assert resolution.type == SIGNAL_RESOLVED_TYPE
