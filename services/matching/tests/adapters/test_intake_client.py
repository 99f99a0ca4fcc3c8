"""Intake's personal-data client against a mocked intake (httpx.MockTransport)."""

from __future__ import annotations

import httpx
import pytest

from eropaf_matching.adapters.intake_client import IntakeClient, IntakeError

pytestmark = pytest.mark.unit


def client(handler: httpx.MockTransport) -> IntakeClient:
    return IntakeClient(
        "http://intake.test/", "secret-token", accessor="eropaf-cli:tester", transport=handler
    )


def test_asks_with_token_accessor_and_purpose_and_reads_nested_or_flat_answers() -> None:
    seen: list[httpx.Request] = []

    known = {
        "aa": {"ID": "SIG-1", "client": {"Achternaam": "Dijk", "Voorvoegsel": "van"}},
        "bb": {"ID": "SIG-2", "client": {"Postcode": "3431AB", "x": 1}},
        "zz": {"ID": "not asked for"},
    }

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        refs = request.url.params.get_list("signal_ref")
        return httpx.Response(
            200, json={"records": {r: known[r] for r in [*refs, "zz"] if r in known}}
        )

    with client(httpx.MockTransport(answer)) as intake:
        records = intake.personal_records(["bb", "aa", "cc"])
    assert records["aa"].signal_id == "SIG-1"
    assert dict(records["aa"].client) == {"Achternaam": "Dijk", "Voorvoegsel": "van"}
    assert dict(records["bb"].client) == {"Postcode": "3431AB"}  # non-DDAS keys dropped
    assert "cc" not in records  # shredded or unknown
    assert "zz" not in records  # only what was asked for
    [request] = seen  # one request for all refs
    assert request.url.params.get_list("signal_ref") == ["aa", "bb", "cc"]
    assert request.url.path == "/internal/v1/personal-data"
    assert request.headers["Authorization"] == "Bearer secret-token"
    assert request.headers["X-Accessor"] == "eropaf-cli:tester"
    assert request.url.params["purpose"] == "ddas-export"


@pytest.mark.parametrize("status", [401, 403, 500])
def test_a_refusal_or_failure_stops_the_export(status: int) -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(status))
    with client(transport) as intake, pytest.raises(IntakeError):
        intake.personal_record("aa")


def test_unreachable_intake_is_an_intake_error() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with client(httpx.MockTransport(fail)) as intake, pytest.raises(IntakeError):
        intake.personal_record("aa")
