"""The Kafka channel against the real broker and PostgreSQL: every reason code, the life of a
signal (duplicate, update, conflict, resolution), key rotation and revocation, spoofing.

One intake runs for the whole module; each test has partners of its own, onboarded before
intake starts (a partner topic that appears later costs a consumer-group rebalance)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest

from eropaf_contracts.cloudevents import SIGNAL_RESOLVED_TYPE
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.topics import signals_topic
from eropaf_intake import partners
from eropaf_intake.adapters import jws
from eropaf_intake.app import IntakeSettings

from .support import (
    Observer,
    Outgoing,
    Partner,
    admin_session,
    intake_settings,
    onboard,
    publish,
    reasons_of,
    ref_of,
    running_intake,
    signal,
    signal_item,
    unique_code,
    unsigned_headers,
)

pytestmark = pytest.mark.integration

ROLES = ("reasons", "life", "rotation", "victim", "spoofer", "disabled", "wil")
TODAY = date.today()


@dataclass
class KafkaEnv:
    settings: IntakeSettings
    bootstrap: str
    partners: dict[str, Partner]
    observer: Observer

    async def send(self, partner: Partner, items: list[Outgoing]) -> list[str]:
        return await publish(self.bootstrap, signals_topic(partner.code), items)

    async def events_for(self, code: str, signal_id: str, expect: int = 0) -> list[Envelope]:
        ref = ref_of(code, signal_id)
        return await self.observer.events(lambda e: e.data.get("signal_ref") == ref, expect)


@pytest.fixture(scope="module")
async def env(kafka_bootstrap_servers: str, module_database_url: str) -> AsyncIterator[KafkaEnv]:
    settings = intake_settings(kafka_bootstrap_servers, module_database_url)
    registered = {
        role: await onboard(
            settings, unique_code(role[:8]), ("Overige",) if role == "wil" else ("Huur",)
        )
        for role in ROLES
    }
    observer = Observer(kafka_bootstrap_servers)
    async with running_intake(settings):
        yield KafkaEnv(settings, kafka_bootstrap_servers, registered, observer)
    await observer.close()


def resolution(signal_id: str, on: date = TODAY) -> bytes:
    return json.dumps({"ID": signal_id, "datumOpgelost": on.isoformat()}).encode()


async def test_every_rejection_reason_code(env: KafkaEnv) -> None:
    p = env.partners["reasons"]
    forged_key, _ = jws.generate_key_pair()
    ids = {name: f"R-{name}-{uuid.uuid4().hex[:6]}" for name in ("schema", "sig", "type", "region")}
    ids |= {"large": f"R-large-{uuid.uuid4().hex[:6]}", "unknown": f"R-unk-{uuid.uuid4().hex[:6]}"}
    unsigned = signal(ids["sig"] + "-u")
    cases: dict[str, tuple[Outgoing, str, str | None, str | None]] = {
        # name: (message, reason code, field, ID in the feedback)
        "json": (signal_item(p, b'{"ID": "broken", '), "invalid_json", None, None),
        "schema": (
            signal_item(p, signal(ids["schema"], bedrag="veel")),
            "invalid_schema",
            "bedrag",
            ids["schema"],
        ),
        "missing": (
            (b"k", json.dumps(unsigned).encode(), unsigned_headers(p.code)),
            "missing_signature",
            "ce_signature",
            None,
        ),
        "forged": (
            signal_item(p, signal(ids["sig"]), key=forged_key),
            "invalid_signature",
            "ce_signature",
            None,
        ),
        "type": (
            signal_item(p, signal(ids["type"], signaalpartner={"type": "Energie"})),
            "partner_type_mismatch",
            "signaalpartner.type",
            ids["type"],
        ),
        "region": (
            signal_item(p, signal(ids["region"], client={"Postcode": "1011 AB"})),
            "out_of_region",
            "client.Postcode",
            ids["region"],
        ),
        "large": (
            signal_item(p, signal(ids["large"], client={"Straatnaam": "x" * 70_000})),
            "too_large",
            None,
            None,
        ),
        "unknown": (
            (
                ids["unknown"].encode(),
                resolution(ids["unknown"]),
                signal_item(p, resolution(ids["unknown"]), ce_type=SIGNAL_RESOLVED_TYPE)[2],
            ),
            "unknown_signal",
            "ID",
            ids["unknown"],
        ),
    }
    ce_ids = await env.send(p, [message for message, *_ in cases.values()])
    feedback = await env.observer.feedback(p, ce_ids)

    for (name, (_m, code, field, signal_id)), ce_id in zip(cases.items(), ce_ids, strict=True):
        body = feedback[ce_id]
        assert body["status"] == "rejected", (name, body)
        assert code in reasons_of(body), (name, body)
        if field is not None:
            assert field in {r["field"] for r in body["reasons"] if r["code"] == code}, body
        if signal_id is not None:
            assert body["ID"] == signal_id, (name, body)
    records = env.observer.readers[f"arrears.feedback.{p.code}"].records
    assert len(records) == len(cases)  # exactly one feedback per message
    accepted = await env.observer.events(lambda e: e.data.get("partner_code") == p.code)
    assert accepted == []


async def test_partner_type_of_another_partner_kind(env: KafkaEnv) -> None:
    """WIL may signal only `Overige`; a `Huur` signal from it is a type mismatch."""
    wil = env.partners["wil"]
    good, bad = signal(signaalpartner={"type": "Overige"}), signal()
    ce_ids = await env.send(wil, [signal_item(wil, good), signal_item(wil, bad)])
    feedback = await env.observer.feedback(wil, ce_ids)
    assert feedback[ce_ids[0]]["status"] == "accepted"
    assert reasons_of(feedback[ce_ids[1]]) == {"partner_type_mismatch"}


async def test_duplicate_update_conflict_and_resolution(env: KafkaEnv) -> None:
    p = env.partners["life"]
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    first = signal(signaaldatum=yesterday)
    sid = first["ID"]
    [first_ce] = await env.send(p, [signal_item(p, first)])
    assert (await env.observer.feedback(p, [first_ce]))[first_ce]["status"] == "accepted"

    # Same key, same partition: processed in this order.
    respelled = {**first, "client": {**first["client"], "Postcode": "3431ab"}}
    sequence: list[tuple[Outgoing, str, set[str]]] = [
        (signal_item(p, respelled), "duplicate", set()),
        (signal_item(p, {**first, "bedrag": 999}), "rejected", {"conflict"}),
        (
            signal_item(p, {**first, "bedrag": 999, "signaaldatum": TODAY.isoformat()}),
            "accepted",
            set(),
        ),
        (
            (
                sid.encode(),
                resolution(sid),
                signal_item(p, resolution(sid), ce_type=SIGNAL_RESOLVED_TYPE)[2],
            ),
            "accepted",
            set(),
        ),
        (
            (
                sid.encode(),
                resolution(sid),
                signal_item(p, resolution(sid), ce_type=SIGNAL_RESOLVED_TYPE)[2],
            ),
            "duplicate",
            set(),
        ),
    ]
    ce_ids = await env.send(p, [m for m, _, _ in sequence])
    feedback = await env.observer.feedback(p, ce_ids)
    for (_m, status, reasons), ce_id in zip(sequence, ce_ids, strict=True):
        assert feedback[ce_id]["status"] == status, feedback[ce_id]
        assert reasons_of(feedback[ce_id]) == reasons
        assert feedback[ce_id]["ID"] == sid

    events = await env.events_for(p.code, sid, expect=3)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_type.setdefault(e.type, []).append(e.data)
    assert [d["revision"] for d in by_type["eropaf.intake.signal.accepted"]] == [1]
    assert [(d["revision"], d["bedrag"]) for d in by_type["eropaf.intake.signal.updated"]] == [
        (2, 999)
    ]
    assert [d["datum_opgelost"] for d in by_type["eropaf.intake.signal.resolved"]] == [
        TODAY.isoformat()
    ]
    assert len(events) == 3


async def test_key_rotation_then_revocation(env: KafkaEnv) -> None:
    p = env.partners["rotation"]
    async with admin_session(env.settings) as session:
        new_kid, new_pem = await partners.add_key(session, p.code)
    assert new_pem is not None
    new_key = jws.private_key_from_pem(new_pem)

    both = [signal_item(p, signal()), signal_item(p, signal(), key=new_key, kid=new_kid)]
    ce_ids = await env.send(p, both)
    feedback = await env.observer.feedback(p, ce_ids)
    assert [feedback[c]["status"] for c in ce_ids] == ["accepted", "accepted"]

    async with admin_session(env.settings) as session:
        await partners.revoke_key(session, p.code, p.kid)
    after = [signal_item(p, signal()), signal_item(p, signal(), key=new_key, kid=new_kid)]
    ce_ids = await env.send(p, after)
    feedback = await env.observer.feedback(p, ce_ids)
    old, new = feedback[ce_ids[0]], feedback[ce_ids[1]]
    assert old["status"] == "rejected" and reasons_of(old) == {"invalid_signature"}
    assert "revoked" in old["reasons"][0]["message"]
    assert new["status"] == "accepted"


async def test_cross_partner_spoofing_is_rejected(env: KafkaEnv) -> None:
    victim, spoofer = env.partners["victim"], env.partners["spoofer"]
    by_spoofer_key = signal()  # signed by the spoofer, source says victim
    by_spoofer_source = signal()  # signed by the spoofer, naming itself as source
    own_source = signal()
    items = [
        signal_item(spoofer, by_spoofer_key, source=victim.code),
        signal_item(spoofer, by_spoofer_source),
        # A valid victim signature cannot be combined with another source either.
        signal_item(victim, own_source, source=spoofer.code),
    ]
    ce_ids = await env.send(victim, items)  # all on the victim's topic
    feedback = await env.observer.feedback(victim, ce_ids)
    for ce_id in ce_ids:
        assert feedback[ce_id]["status"] == "rejected", feedback[ce_id]
        assert reasons_of(feedback[ce_id]) == {"invalid_signature"}
    assert feedback[ce_ids[2]]["reasons"][0]["field"] == "ce_source"
    for body in (by_spoofer_key, by_spoofer_source, own_source):
        for code in (victim.code, spoofer.code):
            assert await env.events_for(code, body["ID"]) == []


async def test_disabled_partner_is_rejected_until_enabled(env: KafkaEnv) -> None:
    p = env.partners["disabled"]
    async with admin_session(env.settings) as session:
        await partners.set_disabled(session, p.code, True)
    blocked = signal()
    [ce_id] = await env.send(p, [signal_item(p, blocked)])
    feedback = await env.observer.feedback(p, [ce_id])
    assert feedback[ce_id]["status"] == "rejected"
    assert reasons_of(feedback[ce_id]) == {"partner_disabled"}
    assert feedback[ce_id]["ID"] == blocked["ID"]

    async with admin_session(env.settings) as session:
        await partners.set_disabled(session, p.code, False)
    [ce_id] = await env.send(p, [signal_item(p, blocked)])
    assert (await env.observer.feedback(p, [ce_id]))[ce_id]["status"] == "accepted"
    assert len(await env.events_for(p.code, blocked["ID"], expect=1)) == 1
