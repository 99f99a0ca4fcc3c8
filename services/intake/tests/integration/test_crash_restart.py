"""Intake as a real process: kill -9 in the middle of 5,000 signals, restart, and every message
still has exactly one feedback and every accepted signal exactly one event. Afterwards no
personal value that went in is found on any internal topic, the feedback topics or the log."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from eropaf_contracts.envelope import Envelope
from eropaf_contracts.topics import (
    INTAKE_SIGNALS_TOPIC,
    SIGNALS_TOPIC_RE,
    feedback_topic,
    signals_topic,
)
from eropaf_intake.adapters import jws
from eropaf_platform.db import make_engine
from eropaf_platform.outbox import unpublished_count
from eropaf_platform.testing.wait import wait_until_async

from .support import (
    Outgoing,
    Partner,
    TopicReader,
    intake_process,
    intake_settings,
    onboard,
    publish,
    ref_of,
    signal,
    signal_item,
    unique_code,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOTAL = 5_000
PERSONS = 20


def valid_bsn(rng: random.Random) -> str:
    while True:
        digits = [rng.randrange(10) for _ in range(8)]
        total = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True))
        last = total % 11
        if last < 10 and digits[0] != 0:
            return "".join(map(str, digits)) + str(last)


def person(rng: random.Random, n: int) -> dict[str, Any]:
    """Personal values that occur nowhere else, so finding one anywhere is a leak."""
    tag = uuid.uuid4().hex[:6]
    letters = "".join(rng.choice("EGHJKLNPQRTVWXZ") for _ in range(2))
    return {
        "client": {
            "Burgerservicenummer": valid_bsn(rng),
            "Voorletters": "Q.",
            "Achternaam": f"Privacytest{tag}",
            "Voorvoegsel": "van",
            "Geboortedatum": (date(1931, 1, 1) + timedelta(days=rng.randrange(12_000))).isoformat(),
            "Straatnaam": f"Geheimlaan{tag}",
            "Postcode": f"34{30 + n % 10} {letters}",
            "Huisnummer": str(rng.randrange(1, 300)),
            "Plaatsnaam": "Nieuwegein",
        },
        "contactgegevens": {
            "telefoonnummer": f"06{rng.randrange(10**7, 10**8)}",
            "email": f"priv.{tag}@example.org",
        },
    }


def personal_values(p: dict[str, Any]) -> list[str]:
    c, k = p["client"], p["contactgegevens"]
    pc = c["Postcode"]
    return [
        c["Achternaam"],
        c["Burgerservicenummer"],
        c["Geboortedatum"],
        c["Straatnaam"],
        pc,
        pc.replace(" ", ""),
        k["telefoonnummer"],
        k["email"],
    ]


@dataclass
class Workload:
    items: dict[str, list[Outgoing]]  # partner code -> messages in publish order
    ce_ids: dict[str, set[str]]  # partner code -> distinct ce_ids sent
    expected: dict[str, dict[str, str]]  # partner code -> ce_id -> feedback status
    accepted: dict[str, set[str]]  # partner code -> accepted signal IDs
    persons: list[dict[str, Any]]


def workload(partners: list[Partner], total: int, seed: int = 11) -> Workload:
    """Mostly valid signals; some duplicates (resent content, and exact message copies),
    some rejected (out of region, bad schema, forged signature, not JSON)."""
    rng = random.Random(seed)
    persons = [person(rng, n) for n in range(PERSONS)]
    forged, _ = jws.generate_key_pair()
    w = Workload({}, {}, {}, {}, persons)
    for p in partners:
        w.items[p.code], w.ce_ids[p.code], w.expected[p.code], w.accepted[p.code] = (
            [],
            set(),
            {},
            set(),
        )
    sent_valid: list[tuple[Partner, dict[str, Any]]] = []
    count = 0
    while count < total:
        p = partners[count % len(partners)]
        who = persons[rng.randrange(PERSONS)]
        base = signal(client=dict(who["client"]), contactgegevens=dict(who["contactgegevens"]))
        roll = rng.random()
        item: Outgoing
        if roll < 0.05 and sent_valid:
            p, body = rng.choice(sent_valid)
            item, status = signal_item(p, body), "duplicate"
        elif roll < 0.06 and w.items[p.code]:
            copy = rng.choice(w.items[p.code])  # the very same message again (same ce_id)
            item, status = copy, ""
        elif roll < 0.09:
            outside = {**base["client"], "Postcode": "1011 AB"}
            item, status = signal_item(p, {**base, "client": outside}), "rejected"
        elif roll < 0.11:
            item, status = signal_item(p, {**base, "bedrag": "veel"}), "rejected"
        elif roll < 0.13:
            item, status = signal_item(p, base, key=forged), "rejected"
        elif roll < 0.14:
            item, status = signal_item(p, b"{" + json.dumps(base).encode()), "rejected"
        else:
            item, status = signal_item(p, base), "accepted"
            sent_valid.append((p, base))
            w.accepted[p.code].add(base["ID"])
        ce_id = dict(item[2])["ce_id"].decode()
        w.items[p.code].append(item)
        w.ce_ids[p.code].add(ce_id)
        if status:
            w.expected[p.code][ce_id] = status
        count += 1
    return w


async def outbox_backlog(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            return await unpublished_count(conn)
    finally:
        await engine.dispose()


async def test_kill_9_mid_batch_then_restart_is_exactly_once_and_leaks_nothing(
    kafka_bootstrap_servers: str,
    module_database_url: str,
    tmp_path: Path,
) -> None:
    readers: dict[str, TopicReader] = {}
    try:
        await _kill_and_restart(kafka_bootstrap_servers, module_database_url, tmp_path, readers)
    finally:
        for reader in readers.values():
            await reader.stop()


async def _kill_and_restart(
    bootstrap: str, database_url: str, tmp_path: Path, feedback_readers: dict[str, TopicReader]
) -> None:
    settings = intake_settings(bootstrap, database_url)
    partners = [await onboard(settings, unique_code(f"crash{i}")) for i in range(2)]
    web = await onboard(settings, unique_code("web"))
    work = workload(partners, TOTAL)
    for p in partners:
        feedback_readers[p.code] = TopicReader(bootstrap, feedback_topic(p.code))
        await feedback_readers[p.code].start()
        await publish(bootstrap, signals_topic(p.code), work.items[p.code])

    async def distinct_feedback() -> int:
        seen = 0
        for reader in feedback_readers.values():
            seen += len({json.loads(r.value)["ce_id"] for r in await reader.catch_up()})
        return seen

    expected_total = sum(len(ids) for ids in work.ce_ids.values())
    log_path = tmp_path / "intake.log"
    intake = intake_process(settings, log_path)
    intake.start()
    try:
        await wait_until_async(distinct_feedback, timeout=120, interval=0.1)
        intake.kill()
        at_kill = await distinct_feedback()
        assert 0 < at_kill < expected_total, "the kill must land in the middle of the run"

        intake = intake_process(settings, log_path)
        intake.start()

        async def complete() -> bool:
            return await distinct_feedback() == expected_total

        await wait_until_async(complete, timeout=240, interval=0.5)
        await wait_until_async(lambda: _drained(database_url), timeout=60, interval=0.2)

        # The HTTP channel of the same process, for the log check below.
        await intake.wait_ready()
        who = work.persons[0]
        rows = [
            signal(client=who["client"], contactgegevens=who["contactgegevens"]),
            signal(client={**who["client"], "Postcode": "1011 AB"}),
        ]
        async with httpx.AsyncClient(base_url=intake.url, timeout=30) as client:
            response = await client.post(
                f"/v1/partners/{web.code}/signals",
                json=rows,
                headers={"Authorization": f"Bearer {web.token}"},
            )
        assert [r["status"] for r in response.json()["results"]] == ["accepted", "rejected"]
        await wait_until_async(lambda: _drained(database_url), timeout=60, interval=0.2)
    finally:
        intake.stop()

    # Exactly one feedback per partner message, with the expected status.
    for p in partners:
        bodies = [json.loads(r.value) for r in await feedback_readers[p.code].catch_up()]
        per_ce_id = Counter(b["ce_id"] for b in bodies)
        assert set(per_ce_id) == work.ce_ids[p.code]
        assert [c for c, n in per_ce_id.items() if n != 1] == []
        statuses = {b["ce_id"]: b["status"] for b in bodies}
        wrong = {c: (s, statuses[c]) for c, s in work.expected[p.code].items() if statuses[c] != s}
        assert wrong == {}
        accepted_ids = {b["ID"] for b in bodies if b["status"] == "accepted"}
        assert accepted_ids == work.accepted[p.code]

    # Exactly one accepted event per accepted signal: by event id and by signal ref.
    async with TopicReader(bootstrap, INTAKE_SIGNALS_TOPIC) as reader:
        envelopes = [Envelope.from_bytes(r.value) for r in await reader.catch_up()]
    codes = {p.code for p in partners}
    accepted = [
        e
        for e in envelopes
        if e.type == "eropaf.intake.signal.accepted" and e.data["partner_code"] in codes
    ]
    by_id = Counter(e.id for e in accepted)
    by_ref = Counter(e.data["signal_ref"] for e in accepted)
    assert [i for i, n in by_id.items() if n != 1] == []
    assert [r for r, n in by_ref.items() if n != 1] == []
    assert set(by_ref) == {ref_of(p.code, i) for p in partners for i in work.accepted[p.code]}
    others = [e for e in envelopes if e.type != "eropaf.intake.signal.accepted"]
    assert [e for e in others if e.data.get("partner_code") in codes] == []

    await assert_no_personal_values(bootstrap, log_path, work.persons, partners[0].code)


async def _drained(database_url: str) -> bool:
    return await outbox_backlog(database_url) == 0


async def assert_no_personal_values(
    bootstrap: str, log_path: Path, persons: list[dict[str, Any]], partner_code: str
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = sorted(t for t in await admin.list_topics() if not SIGNALS_TOPIC_RE.fullmatch(t))
    finally:
        await admin.close()
    assert INTAKE_SIGNALS_TOPIC in topics
    assert any(t.startswith("arrears.feedback.") for t in topics)

    haystacks: dict[str, bytes] = {"log": await asyncio.to_thread(log_path.read_bytes)}
    assert len(haystacks["log"]) > 0
    for topic in topics:
        async with TopicReader(bootstrap, topic) as reader:
            parts = []
            for r in await reader.catch_up():
                parts += [r.key or b"", r.value or b""]
                parts += [v or b"" for _, v in r.headers]
            haystacks[topic] = b"\n".join(parts)

    # The check can see: the partner's own signal topic does hold the values.
    async with TopicReader(bootstrap, signals_topic(partner_code)) as reader:
        sent = b"\n".join(r.value for r in await reader.catch_up())
    spelled_as_sent = [
        v
        for v in personal_values(persons[0])
        if v != persons[0]["client"]["Postcode"].replace(" ", "")
    ]
    assert all(occurs(v, sent) for v in spelled_as_sent)

    found = []
    for value in sorted({v for p in persons for v in personal_values(p)}):
        found += [(value, where) for where, text in haystacks.items() if occurs(value, text)]
    assert found == []


def occurs(value: str, text: bytes) -> bool:
    """`value` in `text`; a number only as a whole number (a BSN inside a timestamp is none)."""
    needle = value.encode()
    digits = needle[:1].isdigit(), needle[-1:].isdigit()
    at = text.find(needle)
    while at >= 0:
        before = text[at - 1 : at] if at else b""
        after = text[at + len(needle) : at + len(needle) + 1]
        if not (digits[0] and before.isdigit()) and not (digits[1] and after.isdigit()):
            return True
        at = text.find(needle, at + 1)
    return False
