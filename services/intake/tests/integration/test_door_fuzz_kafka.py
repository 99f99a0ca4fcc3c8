"""The partners' door through the real broker: a few hundred hostile, correctly signed (or
deliberately mis-signed) messages on a partner's topic, published as a partner would, read
back from its feedback topic. Exactly one feedback per message, none dead-lettered, memory
bounded, and intake still accepts a good signal afterwards."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest

from eropaf_contracts.topics import feedback_topic, signals_topic
from eropaf_intake.adapters import jws
from eropaf_platform.service import Service
from eropaf_platform.testing.wait import wait_until_async

from ..door_strategies import draw_many, kafka_plans, plan_headers, valid_signal
from .support import (
    Observer,
    Outgoing,
    Partner,
    TopicReader,
    intake_settings,
    onboard,
    publish,
    running_intake,
    signal_item,
    unique_code,
)

pytestmark = pytest.mark.integration

EXAMPLES = 300
ANSWERS = {"accepted", "duplicate", "rejected"}


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@pytest.fixture(scope="module")
async def broker_door(
    kafka_bootstrap_servers: str, module_database_url: str
) -> AsyncIterator[tuple[str, Partner, Service]]:
    settings = intake_settings(kafka_bootstrap_servers, module_database_url)
    partner = await onboard(settings, unique_code("fuzz"))
    async with running_intake(settings) as service:
        yield kafka_bootstrap_servers, partner, service


async def test_every_message_on_the_broker_gets_exactly_one_feedback(
    broker_door: tuple[str, Partner, Service], request: pytest.FixtureRequest
) -> None:
    bootstrap, partner, service = broker_door
    other_key, _ = jws.generate_key_pair()
    plans = draw_many(kafka_plans(), EXAMPLES)
    messages: list[Outgoing] = [
        (
            uuid.uuid4().bytes,
            p.value,
            plan_headers(p, partner.code, partner.kid, partner.key, other_key),
        )
        for p in plans
    ]
    rss_before = _rss_bytes()
    await publish(bootstrap, signals_topic(partner.code), messages)

    async with TopicReader(bootstrap, feedback_topic(partner.code)) as reader:

        async def all_answered() -> bool:
            return len(await reader.catch_up()) >= len(messages)

        await wait_until_async(all_answered, timeout=120, interval=0.5, message="feedback")

        async def outbox_drained() -> bool:
            return await service.relay.backlog() == 0

        await wait_until_async(outbox_drained, timeout=60, interval=0.2)
        records = await reader.catch_up()
    bodies = [json.loads(r.value) for r in records]
    assert len(bodies) == len(messages)  # exactly one each: none missing, none twice
    assert {b["status"] for b in bodies} <= ANSWERS
    assert all(b["status"] != "rejected" or b["reasons"] for b in bodies)
    assert all(len(r.key) <= 256 for r in records)

    async with TopicReader(bootstrap, f"{signals_topic(partner.code)}.dlq") as dlq:
        assert await dlq.catch_up() == []  # every value was answered by plan
    growth = _rss_bytes() - rss_before
    assert growth < 300 * 1024 * 1024, f"memory grew {growth / 2**20:.0f} MiB"

    # Still up and still accepting.
    observer = Observer(bootstrap)
    try:
        [ce_id] = await publish(
            bootstrap, signals_topic(partner.code), [signal_item(partner, valid_signal())]
        )
        feedback = await observer.feedback(partner, [ce_id])
        assert feedback[ce_id]["status"] == "accepted"
    finally:
        await observer.close()
    request.node.user_properties.append(
        ("door_examples", ("real broker: Kafka messages", len(messages)))
    )
    print(f"real broker: {len(messages)} messages, memory grew {growth / 2**20:.1f} MiB")


async def test_header_bytes_that_are_not_utf8_or_absent_do_not_stop_the_batch(
    broker_door: tuple[str, Partner, Service],
) -> None:
    """faststream decoded every header value strictly: one stray byte (or a header without a
    value) failed the whole batch before intake saw it, and no message in it was answered."""
    bootstrap, partner, _service = broker_door
    good = signal_item(partner, valid_signal())
    latin1 = signal_item(partner, valid_signal())
    valueless = signal_item(partner, valid_signal())
    messages: list[Outgoing] = [
        (latin1[0], latin1[1], [*latin1[2], ("x-note", "café".encode("latin-1"))]),
        (valueless[0], valueless[1], [*valueless[2], ("x-empty", None)]),  # type: ignore[list-item]
        good,
    ]
    ce_ids = await publish(bootstrap, signals_topic(partner.code), messages)
    observer = Observer(bootstrap)
    try:
        feedback = await observer.feedback(partner, ce_ids, timeout=60)
    finally:
        await observer.close()
    assert [feedback[c]["status"] for c in ce_ids] == ["accepted"] * 3
