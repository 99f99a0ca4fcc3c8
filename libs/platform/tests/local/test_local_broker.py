"""LocalBroker: Tansu starts, carries messages, runs side by side, stops cleanly."""

from __future__ import annotations

import socket
import uuid

import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from eropaf_platform.local.broker import (
    BrokerStartError,
    LocalBroker,
    create_topics,
    probe_metadata,
)
from eropaf_platform.local.ports import free_port, port_is_open


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def _round_trip(bootstrap: str, topic: str, value: bytes) -> list[bytes]:
    await create_topics(bootstrap, [topic], partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"household-1")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        received: list[bytes] = []
        for _ in range(100):  # bounded: at most ~100 * 200 ms
            batches = await consumer.getmany(timeout_ms=200)
            received.extend(r.value for rs in batches.values() for r in rs if r.value)
            if received:
                await consumer.commit()
                break
        return received
    finally:
        await consumer.stop()


@pytest.mark.integration
async def test_message_round_trips_through_local_broker() -> None:
    async with LocalBroker() as broker:
        assert probe_metadata(broker.host, broker.port or 0) == [(broker.host, broker.port)]
        received = await _round_trip(broker.bootstrap_servers, "signals.test", b"hello")
    assert received == [b"hello"]


@pytest.mark.integration
async def test_create_topics_is_idempotent() -> None:
    async with LocalBroker() as broker:
        await create_topics(broker.bootstrap_servers, ["a", "b"], partitions=3)
        await create_topics(broker.bootstrap_servers, ["a", "b", "c"], partitions=3)


@pytest.mark.integration
async def test_two_brokers_side_by_side_are_separate() -> None:
    with LocalBroker() as first, LocalBroker() as second:
        assert first.port != second.port
        assert first.pid != second.pid
        assert await _round_trip(first.bootstrap_servers, "only-first", b"1") == [b"1"]
        assert await _round_trip(second.bootstrap_servers, "only-second", b"2") == [b"2"]


@pytest.mark.integration
def test_stop_leaves_no_process_and_frees_port(tmp_path: pytest.TempPathFactory) -> None:
    log_file = tmp_path / "broker.log"  # type: ignore[operator]
    broker = LocalBroker(log_file=log_file).start()
    pid, port = broker.pid, broker.port
    assert pid is not None and port is not None
    broker.stop()
    assert _gone(pid)
    assert not port_is_open("127.0.0.1", port)
    assert "listening on" in log_file.read_text()
    broker.stop()  # idempotent


@pytest.mark.integration
def test_restart_after_stop() -> None:
    broker = LocalBroker()
    broker.start()
    broker.stop()
    broker.start()
    try:
        assert broker.running
    finally:
        broker.stop()


@pytest.mark.integration
def test_given_port_in_use_fails_clearly() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = LocalBroker(port=port, start_timeout=10)
        with pytest.raises(BrokerStartError):
            broker.start()
        assert broker.pid is None


@pytest.mark.unit
def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


@pytest.mark.unit
def test_bootstrap_servers_requires_running_broker() -> None:
    with pytest.raises(RuntimeError):
        _ = LocalBroker().bootstrap_servers
