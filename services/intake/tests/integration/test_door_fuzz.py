"""The partners' door in process, over real PostgreSQL (no broker): hostile messages through
the real platform consumer (BatchProcessor with intake's handler, dead-letter seal and hook)
and hostile bodies through the real HTTP app. Every message gets exactly one feedback with
status accepted, duplicate or rejected; no request gets a 5xx.

The real-broker tier is test_door_fuzz_kafka.py."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eropaf_contracts.topics import feedback_topic, signals_topic
from eropaf_intake import partners
from eropaf_intake.adapters import jws
from eropaf_intake.adapters.repository import SqlSignalRepository
from eropaf_intake.app import MIGRATIONS, IntakeSettings, build
from eropaf_intake.domain import admission
from eropaf_intake.domain.decode import MAX_ECHO_CHARS, UNPROCESSABLE
from eropaf_platform.consumer import BatchProcessor, Incoming
from eropaf_platform.db import migrate_async, transaction
from eropaf_platform.service import Service
from eropaf_platform.tables import outbox_message

from ..door_strategies import (
    KafkaPlan,
    deep,
    draw_many,
    http_plans,
    kafka_plans,
    plan_headers,
    valid_signal,
)
from .support import admin_session, intake_settings

pytestmark = pytest.mark.integration

ANSWERS = {"accepted", "duplicate", "rejected"}
KAFKA_EXAMPLES = 400
HTTP_EXAMPLES = 250


@dataclass
class Door:
    settings: IntakeSettings
    service: Service
    processor: BatchProcessor
    client: httpx.AsyncClient
    code: str
    kid: str
    key: Ed25519PrivateKey
    token: str
    offset: int = 0

    def record(self, value: bytes, headers: Sequence[tuple[str, bytes]]) -> Incoming:
        self.offset += 1
        return Incoming(
            topic=signals_topic(self.code),
            partition=0,
            offset=self.offset,
            key=uuid.uuid4().bytes,  # unique: a message without ce_id is known by its bytes
            value=value,
            headers=dict(headers),
            timestamp_ms=0,
        )

    def planned(self, plan: KafkaPlan, other_key: Ed25519PrivateKey) -> Incoming:
        return self.record(plan.value, plan_headers(plan, self.code, self.kid, self.key, other_key))

    async def outbox(self, topic: str) -> dict[str, Any]:
        async with transaction(self.service.sessions) as session:
            rows = await session.execute(
                sa.select(
                    outbox_message.c.event_id, outbox_message.c.key, outbox_message.c.value
                ).where(outbox_message.c.topic == topic)
            )
            return {row.event_id: row for row in rows}

    async def feedback(self, records: Sequence[Incoming]) -> dict[str, dict[str, Any]]:
        """The feedback of each record by message id; asserts there is exactly one."""
        rows = await self.outbox(feedback_topic(self.code))
        found: dict[str, dict[str, Any]] = {}
        for record in records:
            row = rows.get(f"feedback:{self.code}:{record.message_id}")
            assert row is not None, f"no feedback for {record.value[:80]!r} {record.headers}"
            found[record.message_id] = json.loads(row.value)
        return found

    async def post(
        self, body: bytes, content_type: str, token: str | None = None
    ) -> httpx.Response:
        return await self.client.post(
            f"/v1/partners/{self.code}/signals",
            content=body,
            headers={
                b"Authorization": f"Bearer {token or self.token}".encode(),
                b"Content-Type": content_type.encode(),  # bytes: any header a client sends
            },
        )


@pytest.fixture(scope="module")
async def door(module_database_url: str) -> AsyncIterator[Door]:
    # The broker is never contacted: the consumer is driven directly, the app without lifespan.
    settings = intake_settings(
        "127.0.0.1:9", module_database_url, poison_max_attempts=2, http_rate_per_second=0
    )
    await migrate_async(settings.database_url, MIGRATIONS, service="intake")
    code = f"door-{uuid.uuid4().hex[:6]}"
    async with admin_session(settings) as session:
        onboarded = await partners.onboard(session, code, "Door", ["Huur"])
    assert onboarded.private_key_pem is not None
    service, app = build(settings)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            yield Door(
                settings,
                service,
                service.processors["intake-partner-signals"],
                client,
                code,
                onboarded.kid,
                jws.private_key_from_pem(onboarded.private_key_pem),
                onboarded.token,
            )
    finally:
        await service.engine.dispose()


def _record(request: pytest.FixtureRequest, channel: str, count: int) -> None:
    request.node.user_properties.append(("door_examples", (channel, count)))


async def test_every_kafka_message_gets_exactly_one_feedback(
    door: Door, request: pytest.FixtureRequest
) -> None:
    other_key, _ = jws.generate_key_pair()
    plans = draw_many(kafka_plans(), KAFKA_EXAMPLES)
    records = [door.planned(plan, other_key) for plan in plans]
    for start in range(0, len(records), 50):  # batches, so one bad message meets good ones
        await door.processor.process(records[start : start + 50])

    feedback = await door.feedback(records)
    assert len(feedback) == len({r.message_id for r in records})
    for record in records:
        body = feedback[record.message_id]
        assert body["status"] in ANSWERS, body
        assert body["status"] != "rejected" or body["reasons"], body
        assert body["ID"] is None or len(body["ID"]) <= MAX_ECHO_CHARS
        assert body["ce_id"] is None or len(body["ce_id"]) <= 128
    statuses = {b["status"] for b in feedback.values()}
    assert {"accepted", "rejected"} <= statuses  # the plans reach both ends
    assert await door.outbox(f"{signals_topic(door.code)}.dlq") == {}  # all answered by plan
    _record(request, "in-process: Kafka messages", len(records))


async def test_every_http_body_gets_a_4xx_or_one_result_per_item(
    door: Door, request: pytest.FixtureRequest
) -> None:
    plans = draw_many(http_plans(), HTTP_EXAMPLES)
    answered: dict[int, int] = {}
    for plan in plans:
        response = await door.post(plan.body, plan.content_type)
        answered[response.status_code] = answered.get(response.status_code, 0) + 1
        assert response.status_code in (202, 400, 413, 415), (plan, response.text)
        body = response.json()
        if response.status_code != 202:
            assert isinstance(body["detail"], str) and len(body["detail"]) <= 400
            continue
        results = body["results"]
        assert results and {r["status"] for r in results} <= ANSWERS, body
        if plan.content_type.startswith("application/json"):
            try:
                parsed = json.loads(plan.body.removeprefix(b"\xef\xbb\xbf"))
            except ValueError:
                parsed = None
            if parsed is not None:
                assert len(results) == (len(parsed) if isinstance(parsed, list) else 1)
    assert answered.get(202) and answered.get(400), answered
    _record(request, "in-process: HTTP requests", len(plans))


# --- regressions over PostgreSQL: the classes of issue #13 --------------------------------


def _signed(door: Door, value: bytes) -> Incoming:
    return door.record(
        value,
        plan_headers(
            KafkaPlan(value, "submitted", "good", ()), door.code, door.kid, door.key, None
        ),
    )


async def _answers(door: Door, values: Sequence[bytes]) -> list[dict[str, Any]]:
    records = [_signed(door, v) for v in values]
    await door.processor.process(records)
    feedback = await door.feedback(records)
    return [feedback[r.message_id] for r in records]


async def test_kafka_classes_that_went_unanswered(door: Door) -> None:
    """Deep JSON, thousands of digits, NUL: each once dead-lettered without feedback."""
    nul = valid_signal("K-nul")
    nul["client"]["Achternaam"] = "Di\x00jk"
    values = [
        deep(3000),
        deep(900, "{"),
        json.dumps(valid_signal("K-digits"))
        .replace('"bedrag": 450', '"bedrag": ' + "9" * 5000)
        .encode(),
        json.dumps(valid_signal("K-digits2"))
        .replace('"bedrag": 450', '"bedrag": ' + "9" * 30)
        .encode(),
        json.dumps(nul).encode(),
        json.dumps(valid_signal("K-\x00")).encode(),
        json.dumps(valid_signal("K-ok")).encode(),
    ]
    answers = await _answers(door, values)
    assert [a["status"] for a in answers] == ["rejected"] * 6 + ["accepted"]
    assert [{r["code"] for r in a["reasons"]} for a in answers[:4]] == [
        {"invalid_json"},
        {"invalid_json"},
        {"invalid_json"},
        {"invalid_schema"},
    ]
    assert answers[4]["reasons"][0]["field"] == "client.Achternaam"
    assert answers[5]["ID"] == "K-\\u0000"


async def test_kafka_headers_with_nul_or_megabytes_are_answered(door: Door) -> None:
    value = json.dumps(valid_signal()).encode()
    plan = KafkaPlan(value, "submitted", "good", ())
    records = []
    for name, replacement in [
        ("ce_id", b"a\x00b"),
        ("ce_id", b"x" * 300_000),
        ("ce_type", b"t" * 300_000),
    ]:
        headers = [
            (n, v) for n, v in plan_headers(plan, door.code, door.kid, door.key, None) if n != name
        ]
        records.append(door.record(value, [*headers, (name, replacement)]))
    await door.processor.process(records)
    feedback = await door.feedback(records)
    first, second, third = (feedback[r.message_id] for r in records)
    assert first["status"] == "accepted" and first["ce_id"] == "a\\u0000b"
    assert second["status"] in ("accepted", "duplicate") and len(second["ce_id"]) <= 128
    assert third["status"] == "rejected" and third["reasons"][0]["field"] == "ce_type"


async def test_an_unforeseen_validation_error_is_a_rejection_not_silence(
    door: Door, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(admission, "validate_signal", broken)
    [answer] = await _answers(door, [json.dumps(valid_signal("U-1")).encode()])
    assert answer["status"] == "rejected"
    assert answer["reasons"] == [
        {"code": "invalid_schema", "field": None, "message": UNPROCESSABLE}
    ]
    dlq = await door.outbox(f"{signals_topic(door.code)}.dlq")
    assert not any(key.endswith(answer["ce_id"]) for key in dlq)


async def test_a_dead_letter_still_answers_the_partner(
    door: Door, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after validation (here: storing) dead-letters the message for operators, and
    the partner gets its rejected feedback in the same transaction; the others go through."""
    save = SqlSignalRepository._save

    async def failing_save(self: SqlSignalRepository, signals: list[Any]) -> None:
        if any(s.signal_id == "DL-bad" for s in signals):
            raise ValueError("storage refused it")
        await save(self, signals)

    monkeypatch.setattr(SqlSignalRepository, "_save", failing_save)
    records = [_signed(door, json.dumps(valid_signal(i)).encode()) for i in ("DL-ok", "DL-bad")]
    await door.processor.process(records)
    feedback = await door.feedback(records)
    good, bad = (feedback[r.message_id] for r in records)
    assert good["status"] == "accepted"
    assert bad["status"] == "rejected" and bad["ID"] == "DL-bad"
    assert bad["reasons"][0]["message"] == UNPROCESSABLE
    dlq = await door.outbox(f"{signals_topic(door.code)}.dlq")
    assert f"dlq:intake-partner-signals:{records[1].message_id}" in dlq


async def test_http_classes_that_got_500(door: Door) -> None:
    too_deep = await door.post(deep(5000), "application/json")
    assert too_deep.status_code == 400 and "nested" in too_deep.json()["detail"]
    digits = await door.post(b'{"ID": "H-1", "bedrag": ' + b"9" * 5000 + b"}", "application/json")
    assert digits.status_code == 400 and "number" in digits.json()["detail"]
    csv_nul = await door.post(b"ID;Achternaam\r\nH\x00-2;Dijk\r\n", "text/csv")
    assert csv_nul.status_code == 202
    [result] = csv_nul.json()["results"]
    assert result["status"] == "rejected" and result["ID"] == "H\\u0000-2"
    assert ("invalid_schema", "ID") in {(r["code"], r["field"]) for r in result["reasons"]}


async def test_http_oversized_id_is_refused_and_not_echoed_whole(door: Door) -> None:
    huge = valid_signal("I" * 5_000_000)
    response = await door.post(json.dumps(huge).encode(), "application/json")
    [result] = response.json()["results"]
    assert result["status"] == "rejected" and len(result["ID"]) == MAX_ECHO_CHARS
    assert len(response.content) < 2_000


async def test_http_limits(door: Door) -> None:
    over = door.settings.max_signals_per_request + 1
    many = await door.post(b"[" + b",".join([b"{}"] * over) + b"]", "application/json")
    assert many.status_code == 413
    rows = door.settings.max_csv_rows + 1
    csv_body = b"ID;Achternaam\r\n" + b"".join(b"R%d;Dijk\r\n" % i for i in range(rows))
    assert (await door.post(csv_body, "text/csv")).status_code == 413
    assert (await door.post(b"{}", "text/plain")).status_code == 415
    assert (await door.post(b"{}", "application/json", token="wrong")).status_code == 401


async def test_http_rate_limit_per_token(module_database_url: str, door: Door) -> None:
    settings = intake_settings(
        "127.0.0.1:9", module_database_url, http_rate_per_second=0.5, http_rate_burst=2
    )
    service, app = build(settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://intake"
        ) as client:
            codes = []
            for _ in range(3):
                response = await client.post(
                    f"/v1/partners/{door.code}/signals",
                    content=json.dumps(valid_signal()).encode(),
                    headers={
                        "Authorization": f"Bearer {door.token}",
                        "Content-Type": "application/json",
                    },
                )
                codes.append(response.status_code)
            assert codes == [202, 202, 429]
            assert 1 <= int(response.headers["Retry-After"]) <= math.ceil(1 / 0.5)
    finally:
        await service.engine.dispose()
