import io
import json
import logging

import pytest
import structlog

from eropaf_platform.logging import REDACTED, bind_correlation, configure_logging, get_logger

pytestmark = pytest.mark.unit


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    configure_logging("test-service", "DEBUG", stream=stream)
    yield stream
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_personal_fields_are_removed_also_when_nested(log_stream) -> None:
    bind_correlation("corr-1")
    get_logger("t").info(
        "signal received",
        Achternaam="Dijk",
        bsn="111222333",
        client={"Geboortedatum": "1980-04-01", "Postcode": "3431AB", "Plaatsnaam": "Nieuwegein"},
        contacts=[{"email": "a@example.org", "telefoonnummer": "0612345678"}],
        postcode_area="3431",
        partner_code="mitros",
    )
    [event] = lines(log_stream)
    text = json.dumps(event)
    for value in ("Dijk", "111222333", "1980-04-01", "3431AB", "a@example.org", "0612345678"):
        assert value not in text
    assert event["Achternaam"] == REDACTED and event["client"] == REDACTED
    assert event["contacts"][0]["email"] == REDACTED
    # what the next step needs stays readable
    assert event["postcode_area"] == "3431" and event["partner_code"] == "mitros"
    assert event["correlation_id"] == "corr-1" and event["service"] == "test-service"
    assert event["level"] == "info" and "timestamp" in event


def test_standard_library_loggers_go_through_the_same_redaction(log_stream) -> None:
    logging.getLogger("somelib").warning("plain %s", "message", extra={"email": "x@example.org"})
    [event] = lines(log_stream)
    assert event["event"] == "plain message"
    assert "x@example.org" not in json.dumps(event)
