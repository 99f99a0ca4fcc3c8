"""The partners' door without I/O: the decode step and validation answer every value with a
planned outcome (a normalised signal or stable reasons), whatever a partner sends.

Property tests (hypothesis, derandomised) try thousands of values; the regression tests name
each class of value that once got no answer or a 500 (issue #13)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.feedback import Feedback, FeedbackStatus
from eropaf_contracts.region import Region, load_region
from eropaf_intake.domain.csv_rows import CsvFormatError, parse_csv
from eropaf_intake.domain.decode import (
    MAX_ECHO_CHARS,
    BodyError,
    Undecodable,
    check_object,
    decode_document,
    decode_object,
    echo,
    header_value,
)
from eropaf_intake.domain.validation import (
    Limits,
    PartnerPolicy,
    Rejected,
    ValidResolution,
    ValidSignal,
    validate_resolution,
    validate_signal,
)

from ..door_strategies import (
    ANY_CHAR,
    JSON_VALUES,
    csv_bodies,
    deep,
    encode,
    fuzz_settings,
    signal_objects,
    valid_signal,
    values,
)

pytestmark = pytest.mark.unit

TODAY = date(2025, 2, 1)
MITROS = PartnerPolicy("mitros", frozenset({Signaalpartner.HUUR}))
DOOR_CODES = {"invalid_json", "invalid_schema", "too_large"}


@pytest.fixture(scope="module")
def region() -> Region:
    return load_region()


def _assert_answerable(outcome: ValidSignal | ValidResolution | Rejected) -> None:
    """What becomes feedback is bounded, printable, and PostgreSQL can store it."""
    if isinstance(outcome, Rejected):
        assert outcome.reasons
        feedback = Feedback.now(
            FeedbackStatus.REJECTED,
            signal_id=outcome.signal_id,
            ce_id=None,
            reasons=outcome.reasons,
        )
        if outcome.signal_id is not None:
            assert len(outcome.signal_id) <= MAX_ECHO_CHARS
            assert outcome.signal_id.isprintable()
        for reason in outcome.reasons:
            assert len(reason.message) <= 300, reason
            assert reason.message.isprintable(), reason
            assert reason.field is None or (len(reason.field) <= 200 and reason.field.isprintable())
    else:
        feedback = Feedback.now(FeedbackStatus.ACCEPTED, signal_id="x", ce_id=None)
    texts = [feedback.id or "", *(r.message for r in feedback.reasons)]
    texts += [r.field or "" for r in feedback.reasons]
    assert not any("\x00" in text for text in texts)  # PostgreSQL refuses NUL in text


def _record(request: pytest.FixtureRequest, channel: str, count: int) -> None:
    request.node.user_properties.append(("door_examples", (channel, count)))


def test_any_message_value_gets_a_planned_answer(
    region: Region, request: pytest.FixtureRequest
) -> None:
    tried = 0

    @fuzz_settings(1000)
    @given(values())
    def check(raw: bytes) -> None:
        nonlocal tried
        tried += 1
        decoded = decode_object(raw)
        assert isinstance(decoded, dict | Undecodable)
        if isinstance(decoded, Undecodable):
            assert {r.code.value for r in decoded.reasons} <= DOOR_CODES
        _assert_answerable(validate_signal(raw, MITROS, region, TODAY))
        _assert_answerable(validate_resolution(raw, TODAY))

    check()
    _record(request, "domain: Kafka values", tried)


def test_any_parsed_object_gets_a_planned_answer(
    region: Region, request: pytest.FixtureRequest
) -> None:
    """HTTP items and CSV rows arrive parsed; they pass the same checks."""
    tried = 0

    @fuzz_settings(500)
    @given(signal_objects())
    def check(obj: Any) -> None:
        nonlocal tried
        tried += 1
        _assert_answerable(validate_signal(obj, MITROS, region, TODAY))

    check()
    _record(request, "domain: parsed objects", tried)


def test_any_http_body_parses_or_is_refused_as_a_whole(request: pytest.FixtureRequest) -> None:
    tried = 0

    @fuzz_settings(300)
    @given(values())
    def check(raw: bytes) -> None:
        nonlocal tried
        tried += 1
        try:
            items = decode_document(raw, max_items=3)
        except BodyError as exc:
            assert len(str(exc)) <= 300
        else:
            assert 1 <= len(items) <= 3
            for item in items:
                if isinstance(item, dict):
                    check_object(item)

    check()
    _record(request, "domain: HTTP JSON bodies", tried)


def test_any_csv_body_parses_or_is_refused_as_a_whole(
    region: Region, request: pytest.FixtureRequest
) -> None:
    tried = 0

    @fuzz_settings(300)
    @given(csv_bodies())
    def check(body: bytes) -> None:
        nonlocal tried
        tried += 1
        try:
            rows = parse_csv(body, max_rows=3)
        except CsvFormatError:
            return
        for row in rows:
            _assert_answerable(validate_signal(row.values, MITROS, region, TODAY))

    check()
    _record(request, "domain: CSV bodies", tried)


@fuzz_settings(200)
@given(ANY_CHAR.flatmap(lambda c: JSON_VALUES.map(lambda v: (c, v))))
def test_echo_is_short_and_printable(pair: tuple[str, Any]) -> None:
    char, value = pair
    for text in (char, char * 100, json.dumps(value, ensure_ascii=False)):
        shown = echo(text)
        assert len(shown) <= MAX_ECHO_CHARS and shown.isprintable()
        assert (header_value(text) or "").isprintable()


# --- regressions: the classes of issue #13 and the ones found with it ------------------------


def _codes(outcome: Any) -> set[tuple[str, str | None]]:
    return {(r.code.value, r.field) for r in outcome.reasons}


def test_json_nested_thousands_of_levels_deep(region: Region) -> None:
    for raw in (deep(5000), deep(5000, "{"), deep(1000), deep(20)):
        outcome = validate_signal(raw, MITROS, region, TODAY)
        assert isinstance(outcome, Rejected)
        assert _codes(outcome) == {("invalid_json", None)}
    nested = valid_signal()
    nested["client"]["Achternaam"] = json.loads(deep(900).decode())
    assert _codes(validate_signal(nested, MITROS, region, TODAY)) == {("invalid_json", None)}


def test_number_with_thousands_of_digits(region: Region) -> None:
    for digits in (20, 400, 5000, 50_000):
        raw = json.dumps(valid_signal("N-1")).replace('"bedrag": 450', '"bedrag": ' + "9" * digits)
        outcome = validate_signal(raw.encode(), MITROS, region, TODAY)
        assert isinstance(outcome, Rejected)
        assert _codes(outcome) <= {("invalid_json", None), ("invalid_schema", "bedrag")}
    parsed = valid_signal("N-2")
    parsed["bedrag"] = int("9" * 4000)  # a CSV cell or another parser could hand over this
    assert _codes(validate_signal(parsed, MITROS, region, TODAY)) == {("invalid_schema", "bedrag")}


def test_nul_and_other_control_characters(region: Region) -> None:
    for char in ("\x00", "\x1b", "\u202e", "\u200b", "\u2028", "\x85"):
        value = valid_signal("C-1")
        value["client"]["Achternaam"] = f"Dijk{char}"
        raw = json.dumps(value).encode()
        assert _codes(validate_signal(raw, MITROS, region, TODAY)) == {
            ("invalid_schema", "client.Achternaam")
        }
        value = valid_signal(f"C-{char}")
        outcome = validate_signal(value, MITROS, region, TODAY)
        assert _codes(outcome) == {("invalid_schema", "ID")}
        assert isinstance(outcome, Rejected) and outcome.signal_id is not None
        assert "\x00" not in outcome.signal_id and outcome.signal_id.isprintable()


def test_nul_in_a_key_and_lone_surrogates(region: Region) -> None:
    assert _codes(validate_signal(b'{"ID\\u0000": "x"}', MITROS, region, TODAY)) == {
        ("invalid_schema", "ID\\u0000")
    }
    for raw in (b'{"ID": "\\ud800"}', b'{"ID": "\xed\xa0\x80"}'):
        assert _codes(validate_signal(raw, MITROS, region, TODAY)) == {("invalid_json", None)}


def test_oversized_id_is_refused_and_echoed_cut() -> None:
    value = valid_signal("I" * 5_000_000)
    outcome = validate_signal(value, MITROS, load_region(), TODAY)
    assert isinstance(outcome, Rejected)
    assert _codes(outcome) == {("invalid_schema", "ID")}
    assert outcome.signal_id is not None and len(outcome.signal_id) == MAX_ECHO_CHARS
    # Under the string limit but over the ID limit: refused by validation, echoed cut too.
    outcome = validate_signal(valid_signal("J" * 900), MITROS, load_region(), TODAY)
    assert isinstance(outcome, Rejected) and outcome.signal_id == "J" * 63 + "…"


def test_duplicate_keys_anywhere(region: Region) -> None:
    raw = json.dumps(valid_signal("D-1")).replace('"client": {', '"client": {"Postcode": "1", ')
    outcome = validate_signal(raw.encode(), MITROS, region, TODAY)
    assert _codes(outcome) == {("invalid_json", None)}
    assert isinstance(outcome, Rejected) and "Postcode" in outcome.reasons[0].message
    # Escaped quotes and spaced colons do not confuse the key count.
    tricky = b'{"ID" : "a\\":", "x\\\\" :1, "x\\\\":2}'
    assert _codes(validate_signal(tricky, MITROS, region, TODAY)) == {("invalid_json", None)}
    with pytest.raises(BodyError, match="duplicate key"):
        decode_document(b'[{"a": 1}, {"b": 1, "b": 2}]')


def test_wide_objects_and_arrays_give_one_reason_not_thousands(region: Region) -> None:
    wide = valid_signal("W-1") | {f"k{i}": i for i in range(1000)}
    outcome = validate_signal(orjson.dumps(wide), MITROS, region, TODAY)
    assert _codes(outcome) == {("invalid_schema", None)}
    many = valid_signal("W-2") | {"client": {"Postcode": ["x"] * 10_000}}
    assert len(validate_signal(many, MITROS, region, TODAY).reasons) <= 20  # type: ignore[union-attr]


def test_limits_are_settings(region: Region) -> None:
    raw = json.dumps(valid_signal("L-1")).encode()
    assert isinstance(validate_signal(raw, MITROS, region, date.today()), ValidSignal)
    small = Limits(max_value_bytes=len(raw) - 1)
    assert _codes(validate_signal(raw, MITROS, region, date.today(), small)) == {
        ("too_large", None)
    }


def test_http_bodies_refused_as_a_whole() -> None:
    for body in (deep(5000), b"[" + b"9" * 5000 + b"]", b"", b"[]", b"\xff"):
        with pytest.raises(BodyError):
            decode_document(body)
    with pytest.raises(BodyError) as too_many:
        decode_document(b"[" + b",".join([b"{}"] * 11) + b"]", max_items=10)
    assert too_many.value.too_large
    assert decode_document(b"\xef\xbb\xbf{}") == [{}]


def test_csv_with_a_nul_byte_is_answered_per_row(region: Region) -> None:
    body = b"ID,Achternaam\r\nA\x00,Dijk\r\nB,Di\x00jk\r\n"
    rows = parse_csv(body)
    outcomes = [validate_signal(r.values, MITROS, region, TODAY) for r in rows]
    assert ("invalid_schema", "ID") in _codes(outcomes[0])
    assert ("invalid_schema", "client.Achternaam") in _codes(outcomes[1])
    assert all(isinstance(o, Rejected) and o.signal_id in ("A\\u0000", "B") for o in outcomes)


def test_csv_rows_limit() -> None:
    body = b"ID;Achternaam\r\n" + b"\r\n".join(b"r%d;Dijk" % i for i in range(11))
    assert len(parse_csv(body, max_rows=11)) == 11
    with pytest.raises(CsvFormatError, match="more than 10 rows"):
        parse_csv(body, max_rows=10)


@fuzz_settings(500)
@given(signal_objects(), st.sampled_from(["ascii", "spaced"]))
def test_no_duplicate_key_is_seen_where_there_is_none(obj: Any, style: str) -> None:
    """A parsed object has unique keys: its encoding is never refused for duplicates, also
    with strings that start with ':' or hold '\\":'."""
    obj = {**obj, "x": ":", "y": '":', "z\\": '\\":'} if isinstance(obj, dict) else obj
    decoded = decode_object(encode(obj, style), max_bytes=10**7)
    if isinstance(decoded, Undecodable):
        assert not any("duplicate" in r.message for r in decoded.reasons), decoded


def test_strings_starting_with_a_colon_are_no_duplicate_keys() -> None:
    assert decode_object(b'{"a": ":b", "c": ":"}') == {"a": ":b", "c": ":"}
