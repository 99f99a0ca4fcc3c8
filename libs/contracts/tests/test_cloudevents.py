from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from eropaf_contracts.cloudevents import (
    CE_ID,
    CE_SIGNATURE,
    CE_TIME,
    CE_TYPE,
    SIGNAL_RESOLVED_TYPE,
    SIGNAL_SUBMITTED_TYPE,
    CloudEventHeaderError,
    CloudEventHeaders,
    decode_headers,
    encode_headers,
    event_headers,
    format_ce_time,
    version_of_type,
)

pytestmark = pytest.mark.unit


def test_round_trip_through_kafka_headers() -> None:
    headers = CloudEventHeaders.new(
        "mitros", SIGNAL_SUBMITTED_TYPE, time=datetime(2025, 1, 5, 10, 30, tzinfo=UTC)
    ).with_signature("abc..def")
    raw = headers.to_kafka()
    assert [name for name, _ in raw] == [
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "content-type",
        "ce_signature",
    ]
    assert dict(raw)[CE_TIME] == b"2025-01-05T10:30:00Z"
    assert CloudEventHeaders.from_kafka(raw) == headers


def test_signature_is_optional_when_reading() -> None:
    raw = CloudEventHeaders.new("wil", SIGNAL_RESOLVED_TYPE).to_kafka()
    assert CE_SIGNATURE not in dict(raw)
    assert CloudEventHeaders.from_kafka(raw).signature is None


def test_problems_are_listed_and_ce_id_kept() -> None:
    raw = CloudEventHeaders.new("mitros", SIGNAL_SUBMITTED_TYPE, id="m-1").to_kafka()
    raw = [(k, v) for k, v in raw if k != "ce_source"]
    raw = [(k, b"yesterday" if k == CE_TIME else v) for k, v in raw]
    raw = [(k, b"nl.other.v1" if k == CE_TYPE else v) for k, v in raw]
    with pytest.raises(CloudEventHeaderError) as info:
        CloudEventHeaders.from_kafka(raw)
    assert {h for h, _ in info.value.problems} == {"ce_source", "ce_time", "ce_type"}
    assert info.value.ce_id == "m-1"


def test_first_header_wins_and_bad_bytes_are_skipped() -> None:
    values = decode_headers([(CE_ID, b"a"), (CE_ID, b"b"), ("ce_source", b"\xff"), ("x", None)])
    assert values == {CE_ID: "a"}


def test_content_type_parameters_are_allowed() -> None:
    raw = [
        (k, b"application/json; charset=utf-8" if k == "content-type" else v)
        for k, v in CloudEventHeaders.new("mitros", SIGNAL_SUBMITTED_TYPE).to_kafka()
    ]
    assert CloudEventHeaders.from_kafka(raw).source == "mitros"


def test_version_of_type() -> None:
    assert version_of_type(SIGNAL_SUBMITTED_TYPE) == 1
    with pytest.raises(ValueError):
        version_of_type("nl.vroegsignalering.signal.submitted")


def test_ce_time_is_utc_with_z_whatever_the_zone_given() -> None:
    amsterdam = timezone(timedelta(hours=1))
    assert format_ce_time(datetime(2025, 1, 5, 11, 30, tzinfo=amsterdam)) == "2025-01-05T10:30:00Z"
    assert (
        format_ce_time(datetime(2025, 1, 5, 10, 30, 0, 250_000, tzinfo=UTC))
        == "2025-01-05T10:30:00.250000Z"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        format_ce_time(datetime(2025, 1, 5, 10, 30))


def test_partner_headers_carry_ce_time_in_that_format() -> None:
    moment = datetime(2025, 1, 5, 11, 30, tzinfo=timezone(timedelta(hours=1)))
    headers = CloudEventHeaders.new("mitros", SIGNAL_SUBMITTED_TYPE, time=moment)
    assert dict(headers.to_text())[CE_TIME] == format_ce_time(moment)
    assert headers.to_kafka() == encode_headers(headers.to_text())


def test_internal_event_headers_mirror_the_envelope() -> None:
    assert event_headers(id="e-1", type="t.x", version=2, correlation_id="c-1") == [
        ("ce_id", "e-1"),
        ("ce_type", "t.x"),
        ("eropaf_version", "2"),
        ("content-type", "application/json"),
        ("correlation_id", "c-1"),
    ]
    assert [name for name, _ in event_headers(id="e-1", type="t.x", version=1)] == [
        "ce_id",
        "ce_type",
        "eropaf_version",
        "content-type",
    ]
