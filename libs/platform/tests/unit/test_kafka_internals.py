"""What `eropaf_platform.kafka_internals` assumes of the installed FastStream and aiokafka.

Each test names one assumption; when an upgrade breaks it, the failing test says which, and
`kafka_internals` is the one module to adapt.
"""

from __future__ import annotations

import inspect
import textwrap
from types import SimpleNamespace
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage

from eropaf_platform import kafka_internals

pytestmark = pytest.mark.unit


def _body(function: Any) -> list[str]:
    source = textwrap.dedent(inspect.getsource(function))
    return [
        line.strip() for line in source.splitlines() if line.strip().startswith(("await", "self"))
    ]


def test_starting_a_broker_is_connect_subscribers_publishers_then_running() -> None:
    # The service starts these parts itself (subscribers in parallel) and then calls
    # mark_running: FastStream's start() must do nothing else.
    assert _body(KafkaBroker.start) == ["await self.connect()", "await super().start()"]
    base = next(c for c in KafkaBroker.__mro__[1:] if "start" in vars(c))
    assert _body(vars(base)["start"]) == [
        "await sub.start()",
        "await pub.start()",
        "self.running = True",
    ]
    broker = KafkaBroker("127.0.0.1:9")
    assert broker.running is False
    kafka_internals.mark_running(broker)
    assert broker.running is True


def test_faststream_kafka_messages_carry_their_consumer() -> None:
    assert "consumer" in inspect.signature(KafkaMessage.__init__).parameters
    fetcher = SimpleNamespace(getmany=lambda **_: None)
    assert kafka_internals.message_consumer(SimpleNamespace(consumer=fetcher)) is fetcher
    # The in-memory test broker's fake consumer has no fetcher: nothing to top up from.
    assert kafka_internals.message_consumer(SimpleNamespace(consumer=object())) is None


async def test_top_up_takes_what_the_consumer_fetches_up_to_the_limit() -> None:
    fetched: list[int] = []

    class Consumer:
        async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[str, list[int]]:
            fetched.append(max_records)
            return {"tp": list(range(min(max_records, 3)))}

    records = await kafka_internals.top_up(
        SimpleNamespace(consumer=Consumer()), [9], limit=6, linger_s=5.0
    )
    assert records == [9, 0, 1, 2, 0, 1]
    assert fetched == [5, 2]
    unchanged = await kafka_internals.top_up(SimpleNamespace(consumer=None), [1], 6, 5.0)
    assert unchanged == [1]
