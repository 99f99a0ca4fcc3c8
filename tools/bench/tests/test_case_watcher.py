"""The benchmark's case watcher: which signal refs reached a case event, and when."""

from __future__ import annotations

import json

import pytest
from aiokafka import AIOKafkaProducer

from eropaf_bench.pipeline import CaseWatcher
from eropaf_contracts.topics import CASES_TOPIC, INTAKE_SIGNALS_TOPIC
from eropaf_platform.local.broker import create_topics

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def _event(kind: str, refs: list[str]) -> bytes:
    # Compact, as the outbox writes it: the watcher looks for `"type":"..."` before parsing.
    return json.dumps({"type": kind, "data": {"signal_refs": refs}}, separators=(",", ":")).encode()


async def test_wait_for_returns_when_every_ref_was_seen(kafka_bootstrap_servers: str) -> None:
    await create_topics(kafka_bootstrap_servers, [CASES_TOPIC, INTAKE_SIGNALS_TOPIC], 3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers)
    watcher = CaseWatcher(kafka_bootstrap_servers)
    await producer.start()
    await watcher.start()
    try:
        # Only case opened/updated events count; another type naming the ref does not.
        await producer.send_and_wait(CASES_TOPIC, _event("eropaf.matching.case.closed", ["w-c"]))
        await producer.send_and_wait(CASES_TOPIC, _event("eropaf.matching.case.opened", ["w-a"]))
        await producer.send_and_wait(
            CASES_TOPIC, _event("eropaf.matching.case.updated", ["w-a", "w-b"])
        )
        last = await watcher.wait_for(["w-a", "w-b"], timeout=30)
        assert last == max(watcher.first_seen["w-a"], watcher.first_seen["w-b"])
        assert watcher.first_seen["w-a"] <= watcher.first_seen["w-b"]
        assert "w-c" not in watcher.first_seen
        # Refs already seen return at once; a ref never seen times out and says how many.
        assert await watcher.wait_for(["w-a"], timeout=0) == watcher.first_seen["w-a"]
        with pytest.raises(TimeoutError, match="1 of 2 signals"):
            await watcher.wait_for(["w-a", "w-c"], timeout=0.5)
    finally:
        await watcher.stop()
        await producer.stop()
