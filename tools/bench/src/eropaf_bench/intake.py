"""Intake alone: signed partner signals to accepted events, through real intake processes
(one consumer group) on a fresh database."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eropaf_bench.data import Message, partner_signal_bodies
from eropaf_bench.database import BenchDatabase, database_cpu_seconds
from eropaf_bench.report import BenchSection, Figure
from eropaf_bench.yardstick import DEFAULT_PARTITIONS, bench_producer

DEFAULT_INTAKE_SIGNALS = 50_000
DEFAULT_INTAKE_PARTNERS = 4
INTAKE_FLOOR_PER_S = 2_000
DEFAULT_INTAKE_INSTANCES = max(1, min(4, os.cpu_count() or 1))
ACCEPTED_EVENT_TYPE = b"eropaf.intake.signal.accepted"


@dataclass
class IntakeBenchResult:
    publish: Figure
    end_to_end: Figure
    notes: dict[str, Any]


async def run_intake_bench(
    bootstrap_servers: str,
    count: int,
    *,
    partner_count: int = DEFAULT_INTAKE_PARTNERS,
    database_url: str | None = None,
    profile_to: Path | None = None,
    timeout_s: float | None = None,
    instances: int = 1,
) -> IntakeBenchResult:
    """Intake as `instances` processes (one consumer group) on a fresh database: `count`
    signed signals from `partner_count` partners, timed from the first publish to the last
    accepted event."""
    import base64
    import secrets
    import tempfile

    from aiokafka import AIOKafkaConsumer, TopicPartition

    from eropaf_contracts.cloudevents import SIGNAL_SUBMITTED_TYPE, CloudEventHeaders
    from eropaf_contracts.topics import INTAKE_SIGNALS_TOPIC, signals_topic
    from eropaf_intake import partners
    from eropaf_intake.adapters import jws
    from eropaf_intake.app import MIGRATIONS
    from eropaf_platform.db import make_engine, make_sessions, migrate_async, transaction
    from eropaf_platform.local.broker import create_topics
    from eropaf_platform.local.service_process import ServiceProcess

    database = BenchDatabase(database_url)
    url = database.create()
    processes: list[ServiceProcess] = []
    try:
        await migrate_async(url, MIGRATIONS, service="intake")
        engine = make_engine(url)
        run = uuid.uuid4().hex[:6]
        keys: list[tuple[str, Any, str]] = []  # code, private key, kid
        try:
            async with transaction(make_sessions(engine)) as session:
                for i in range(partner_count):
                    onboarded = await partners.onboard(
                        session, f"bench-{run}-{i}", f"Bench {i}", ["Huur"]
                    )
                    assert onboarded.private_key_pem is not None
                    private = jws.private_key_from_pem(onboarded.private_key_pem)
                    keys.append((onboarded.code, private, onboarded.kid))
        finally:
            await engine.dispose()
        await create_topics(
            bootstrap_servers,
            [signals_topic(c) for c, _, _ in keys] + [INTAKE_SIGNALS_TOPIC],
            partitions=DEFAULT_PARTITIONS,
        )

        def signed(body: dict[str, Any], partner: tuple[str, Any, str]) -> Message:
            code, private, kid = partner
            value = json.dumps(body, separators=(",", ":")).encode()
            headers = CloudEventHeaders.new(code, SIGNAL_SUBMITTED_TYPE)
            signature = jws.sign_detached(value, private, kid)
            return Message(body["ID"].encode(), value, headers.with_signature(signature).to_kafka())

        warm_count = partner_count * 8 * 10  # up to ten rounds of warm-up
        bodies = partner_signal_bodies(count + warm_count, seed=int(run, 16))
        warm_up = [
            (keys[i % partner_count], signed(bodies[count + i], keys[i % partner_count]))
            for i in range(warm_count)
        ]
        workload = [
            (keys[n % partner_count], signed(b, keys[n % partner_count]))
            for n, b in enumerate(bodies[:count])
        ]

        env = {
            "EROPAF_DATABASE_URL": url,
            "EROPAF_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
            "EROPAF_PSEUDONYM_KEY": secrets.token_urlsafe(32),
            "EROPAF_MASTER_KEYS": "bench:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            "EROPAF_INTERNAL_API_TOKEN": secrets.token_urlsafe(16),
            "EROPAF_KAFKA_METADATA_MAX_AGE_MS": "1000",
            "EROPAF_LOG_LEVEL": "WARNING",
        }
        logs = Path(tempfile.mkdtemp(prefix="eropaf-bench-intake-"))
        # Instances of one consumer group share the partner topics' partitions (the way
        # intake scales out); only the first is profiled.
        processes = [
            ServiceProcess(
                "eropaf_intake",
                env,
                logs / f"intake-{n}.log",
                wrapper=("cProfile", "-o", str(profile_to)) if profile_to and n == 0 else (),
            )
            for n in range(instances)
        ]
        for process in processes:
            process.start()

        events = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_bytes=16 * 1024 * 1024,
        )
        await events.start()
        producer = bench_producer(bootstrap_servers)
        await producer.start()
        try:
            parts = [
                TopicPartition(INTAKE_SIGNALS_TOPIC, p)
                for p in sorted(
                    events.partitions_for_topic(INTAKE_SIGNALS_TOPIC) or range(DEFAULT_PARTITIONS)
                )
            ]
            events.assign(parts)
            await events.seek_to_end(*parts)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + (timeout_s or 120.0 + count / 100)

            async def accepted_events(expected: int) -> int:
                seen = 0
                while seen < expected:
                    if loop.time() > deadline or any(p.exited() for p in processes):
                        raise TimeoutError(f"intake bench: {seen}/{expected} accepted events")
                    for records in (
                        await events.getmany(timeout_ms=200, max_records=10_000)
                    ).values():
                        seen += sum(
                            1
                            for r in records
                            if dict(r.headers).get("ce_type") == ACCEPTED_EVENT_TYPE
                        )
                return seen

            # Warm-up: every instance up and holding partitions (it consumed something), so
            # that no group rebalance falls into the measurement.
            await asyncio.gather(*(p.wait_ready(timeout=deadline - loop.time()) for p in processes))
            warm_started = time.perf_counter()
            warmed = 0
            while True:
                if loop.time() > deadline:
                    raise TimeoutError("intake instances did not all join the group")
                for (code, _, _), m in warm_up[warmed : warmed + partner_count * 8]:
                    await producer.send_and_wait(
                        signals_topic(code), m.value, key=m.key, headers=m.headers
                    )
                warmed += await accepted_events(min(partner_count * 8, len(warm_up) - warmed))
                consumed = [await p.metric("eropaf_messages_in_total") for p in processes]
                if all(consumed) or warmed >= len(warm_up):
                    break
            warm_up_s = time.perf_counter() - warm_started

            cpu_started = sum(p.cpu_seconds() for p in processes)
            pg_started = database_cpu_seconds(url)
            started = time.perf_counter()
            pending = [
                await producer.send(signals_topic(code), m.value, key=m.key, headers=m.headers)
                for (code, _, _), m in workload
            ]
            await asyncio.gather(*pending)
            publish_s = time.perf_counter() - started
            await accepted_events(count)
            total_s = time.perf_counter() - started
            cpu_s = sum(p.cpu_seconds() for p in processes) - cpu_started
            pg_cpu_s = database_cpu_seconds(url) - pg_started
        finally:
            await producer.stop()
            await events.stop()
    finally:
        for process in processes:
            # SIGINT: a clean stop, after which cProfile (if on) still writes its stats.
            process.stop(timeout=60, sig=signal.SIGINT)
        database.drop()

    return IntakeBenchResult(
        publish=Figure("publish signed signals", count, publish_s),
        end_to_end=Figure("first publish to last accepted event", count, total_s),
        notes={
            "partners": partner_count,
            "instances": instances,
            "database": "EROPAF_BENCH_DATABASE_URL" if database_url else "fresh on 127.0.0.1:5432",
            "warm_up_s": round(warm_up_s, 2),
            # CPU of the intake processes alone (this machine's cores are shared): a figure
            # that compares runs when the wall clock depends on what else is running.
            "intake_cpu_us_per_signal": round(cpu_s * 1e6 / max(count, 1)) if cpu_s >= 0 else None,
            # The PostgreSQL backends serving intake's database (same machine only).
            "postgres_cpu_us_per_signal": round(pg_cpu_s * 1e6 / max(count, 1))
            if pg_cpu_s > 0
            else None,
            "mean_value_bytes": round(sum(len(m.value) for _, m in workload) / max(count, 1), 1),
            "profiled": str(profile_to) if profile_to else None,
        },
    )


def section_of(result: IntakeBenchResult) -> BenchSection:
    return BenchSection(
        "intake: signed partner signals -> accepted events",
        [result.publish, result.end_to_end],
        notes=result.notes,
    )
