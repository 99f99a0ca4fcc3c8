"""Raw broker yardstick: how fast can plain aiokafka move signal-sized messages here?

`python -m eropaf_cli.bench` produces N signal-like messages (acks=all), then
consumes them in a consumer group with commits, and reports msg/s. Pipeline
benchmarks add further `BenchSection`s to the same `BenchReport`, expressed as a
ratio to this yardstick, so figures from different machines stay comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

    from eropaf_cli.bench_pipeline import PipelineResult

T = TypeVar("T")

DEFAULT_MESSAGES = 50_000
DEFAULT_PARTITIONS = 4
DEFAULT_RESULTS_DIR = Path("bench/results")
MUNICIPALITIES = ("0321", "0353", "0331", "0356", "1961")
PARTNERS = ("mitros", "viveste", "lekstede", "provides", "portaal", "jutphaas", "wbv-lopik", "wil")


# -- report ---------------------------------------------------------------------------


def ratio(value: float, yardstick: float) -> float:
    """`value` as a fraction of the yardstick (1.0 = as fast as the raw broker)."""
    return value / yardstick if yardstick > 0 else 0.0


@dataclass
class Figure:
    """One measured throughput."""

    name: str
    messages: int
    seconds: float

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "messages": self.messages,
            "seconds": round(self.seconds, 4),
            "msgs_per_s": round(self.msgs_per_s, 1),
        }


@dataclass
class BenchSection:
    """A later benchmark (e.g. intake -> matching) reported against the yardstick."""

    name: str
    figures: list[Figure]
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def headline(self) -> Figure:
        """The figure compared with the yardstick: the last (end-to-end) one."""
        return self.figures[-1]


@dataclass
class BenchReport:
    started_at: str
    machine: dict[str, Any]
    settings: dict[str, Any]
    yardstick: list[Figure]
    sections: list[BenchSection] = field(default_factory=list)

    @property
    def yardstick_msgs_per_s(self) -> float:
        """End-to-end raw broker throughput: produce all, then consume all."""
        return next(f.msgs_per_s for f in self.yardstick if f.name == "end-to-end")

    def ratio(self, msgs_per_s: float) -> float:
        return ratio(msgs_per_s, self.yardstick_msgs_per_s)

    def add_section(self, section: BenchSection) -> None:
        self.sections.append(section)

    def to_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "machine": self.machine,
            "settings": self.settings,
            "yardstick_msgs_per_s": round(self.yardstick_msgs_per_s, 1),
            "yardstick": [f.to_dict() for f in self.yardstick],
            "sections": [
                {
                    "name": s.name,
                    "figures": [f.to_dict() for f in s.figures],
                    "ratio_to_yardstick": round(self.ratio(s.headline.msgs_per_s), 4),
                    "notes": s.notes,
                }
                for s in self.sections
            ],
        }

    def write(self, results_dir: Path) -> Path:
        """Write `<results_dir>/<UTC timestamp>.json` atomically; return its path."""
        results_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = results_dir / f"{stamp}.json"
        if target.exists():  # two runs in the same second
            target = results_dir / f"{stamp}-{uuid.uuid4().hex[:6]}.json"
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        tmp.replace(target)
        return target


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        total_kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
        info["memory_gb"] = round(total_kb / 1024 / 1024, 1)
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    try:
        import aiokafka

        info["aiokafka"] = aiokafka.__version__
    except (ImportError, AttributeError):
        pass
    return info


# -- workload -------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def signal_messages(count: int, *, seed: int = 7) -> list[Message]:
    """Pseudonymous arrears signals as they travel after intake, ~700-900 bytes each.

    Deterministic (seeded) so runs are comparable; keys are household pseudonyms
    so, as in production, one household's events share a partition.
    """
    import random

    rng = random.Random(seed)
    households = [hashlib.sha256(f"hh-{seed}-{i}".encode()).hexdigest() for i in range(5_000)]
    base_day = date(2026, 1, 1)
    messages = []
    for n in range(count):
        household = rng.choice(households)
        gemeente = rng.choice(MUNICIPALITIES)
        partner = rng.choice(PARTNERS)
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        signaaldatum = base_day + timedelta(days=rng.randrange(365))
        body = {
            "signal_id": event_id,
            "household_pseudonym": household,
            "person_pseudonym": hashlib.sha256(f"{household}-{n % 3}".encode()).hexdigest(),
            "partner": partner,
            "partner_reference": f"{partner.upper()}-{rng.randrange(10**9):09d}",
            "gemeente": gemeente,
            "postcode_area": f"{rng.randrange(3400, 4130)}",
            "vroegsignaal": {
                "signaaldatum": signaaldatum.isoformat(),
                "soort_schuldeiser": rng.choice(["woningcorporatie", "energie", "water", "zvw"]),
                "bedrag": {"waarde": rng.randrange(15_000, 450_000), "valuta": "EUR"},
                "achterstand_maanden": rng.randrange(1, 6),
                "aanmaning_verstuurd": True,
                "datum_aanmaning": (signaaldatum - timedelta(days=14)).isoformat(),
                "einde_levering_aangekondigd": rng.random() < 0.05,
                "crisis": rng.random() < 0.02,
            },
            "contract": {
                "soort": "huur",
                "ingangsdatum": (base_day - timedelta(days=rng.randrange(90, 7000))).isoformat(),
                "maandbedrag": rng.randrange(45_000, 120_000),
            },
            "triage_hints": {"eerder_signaal": rng.random() < 0.2, "aantal_schuldeisers": 1},
            "received_at": f"{signaaldatum.isoformat()}T{rng.randrange(24):02d}:"
            f"{rng.randrange(60):02d}:00Z",
            "schema_version": "1.0",
        }
        value = json.dumps(body, separators=(",", ":")).encode()
        traceparent = f"00-{rng.getrandbits(128):032x}-{rng.getrandbits(64):016x}-01".encode()
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", event_id.encode()),
            ("ce_source", f"urn:eropaf:intake:{partner}".encode()),
            ("ce_type", b"nl.eropaf.signal.accepted.v1"),
            ("ce_time", f"{signaaldatum.isoformat()}T12:00:00Z".encode()),
            ("ce_subject", household.encode()),
            ("content-type", b"application/json"),
            ("traceparent", traceparent),
        ]
        messages.append(Message(household.encode(), value, headers))
    return messages


# -- the yardstick --------------------------------------------------------------------


@dataclass
class YardstickResult:
    produce: Figure
    consume: Figure
    end_to_end: Figure
    group_join_s: float
    mean_message_bytes: float


# Every bench producer, as a partner's publisher would be set up for throughput.
BENCH_PRODUCER: dict[str, Any] = {
    "acks": "all",
    "linger_ms": 5,
    "max_batch_size": 256 * 1024,
    "max_request_size": 4 * 1024 * 1024,
}


def bench_producer(bootstrap_servers: str) -> AIOKafkaProducer:
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(bootstrap_servers=bootstrap_servers, **BENCH_PRODUCER)


async def run_yardstick(
    bootstrap_servers: str,
    messages: Sequence[Message],
    *,
    partitions: int = DEFAULT_PARTITIONS,
    topic: str | None = None,
    consume_timeout_s: float = 90.0,
) -> YardstickResult:
    """Join a group, produce all messages (acks=all) and await every ack, then consume all.

    Consumption commits after every `getmany` batch. End-to-end = produce + consume time.
    """
    from aiokafka import AIOKafkaConsumer

    from eropaf_platform.local.broker import create_topics

    topic = topic or f"bench.yardstick.{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap_servers, [topic], partitions=partitions)

    # Join the group first and pause fetching: group join time (seconds on some
    # brokers) is reported apart, and nothing is fetched while we produce.
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    join_started = time.perf_counter()
    await consumer.start()
    try:
        while len(consumer.assignment()) < partitions:
            if time.perf_counter() - join_started > consume_timeout_s:
                raise TimeoutError("consumer group join did not complete")
            await consumer.getmany(timeout_ms=100)
        group_join_s = time.perf_counter() - join_started
        consumer.pause(*consumer.assignment())

        producer = bench_producer(bootstrap_servers)
        await producer.start()
        try:
            # Warm-up: metadata and connections, so the timing measures throughput only.
            await producer.send_and_wait(topic, b"{}", key=b"warm-up")
            started = time.perf_counter()
            pending = [
                await producer.send(topic, m.value, key=m.key, headers=m.headers) for m in messages
            ]
            await asyncio.gather(*pending)
            produce_s = time.perf_counter() - started
        finally:
            await producer.stop()

        expected = len(messages) + 1  # + warm-up
        received = 0
        consume_started = time.perf_counter()
        deadline = consume_started + consume_timeout_s
        consumer.resume(*consumer.assignment())
        while received < expected:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"consumed {received}/{expected} within {consume_timeout_s}s")
            batches = await consumer.getmany(timeout_ms=500, max_records=5_000)
            count = sum(len(records) for records in batches.values())
            if count:
                received += count
                await consumer.commit()  # per batch, as the services do
        consume_s = time.perf_counter() - consume_started
    finally:
        await consumer.stop()

    n = len(messages)
    return YardstickResult(
        produce=Figure("produce", n, produce_s),
        consume=Figure("consume", n, consume_s),
        end_to_end=Figure("end-to-end", n, produce_s + consume_s),
        group_join_s=group_join_s,
        mean_message_bytes=sum(len(m.value) for m in messages) / max(n, 1),
    )


# -- intake: signed partner signals to accepted events ----------------------------------

DEFAULT_INTAKE_SIGNALS = 50_000
DEFAULT_INTAKE_PARTNERS = 4
INTAKE_FLOOR_PER_S = 2_000
DEFAULT_INTAKE_INSTANCES = max(1, min(4, os.cpu_count() or 1))
BENCH_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ACCEPTED_EVENT_TYPE = b"eropaf.intake.signal.accepted"
_PC4_IN_REGION = (*range(3400, 3405), *range(3430, 3440), *range(3990, 4000), *range(4130, 4134))
_SURNAMES = ("Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit", "Meijer", "Mulder")


def _valid_bsn(rng: Any) -> str:
    while True:
        digits = [rng.randrange(1, 10)] + [rng.randrange(10) for _ in range(7)]
        check = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True)) % 11
        if check < 10:
            return "".join(map(str, digits)) + str(check)


def partner_signal_bodies(count: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """Valid DDAS signals (client data included, as partners send them), deterministic."""
    import random

    rng = random.Random(seed)
    today = date.today()
    bodies = []
    for n in range(count):
        surname = rng.choice(_SURNAMES)
        prefix, _, last = surname.rpartition(" ")
        # No S: SA, SD and SS are never issued, and every signal here must be accepted.
        letters = "".join(rng.choice("ABCDEGHJKLNPRTVWXZ") for _ in range(2))
        bodies.append(
            {
                "ID": f"B-{seed}-{n:07d}",
                "crisissignaal": rng.random() < 0.02,
                "warmeOverdracht": False,
                "bedrag": rng.randrange(150, 4_500),
                "ontstaansdatum": (today - timedelta(days=rng.randrange(30, 200))).isoformat(),
                "signaaldatum": (today - timedelta(days=rng.randrange(0, 20))).isoformat(),
                "signaalpartner": {"type": "Huur"},
                "client": {
                    "Burgerservicenummer": _valid_bsn(rng),
                    "Voorletters": rng.choice("ABCDEFGHIJKLMNPRSTW") + ".",
                    "Voorvoegsel": prefix or None,
                    "Achternaam": last,
                    "Geboortedatum": date(1940 + rng.randrange(60), rng.randrange(1, 13), 1)
                    .replace(day=rng.randrange(1, 29))
                    .isoformat(),
                    "Straatnaam": f"{rng.choice(('Dorps', 'Kerk', 'Molen', 'Lek'))}straat",
                    "Postcode": f"{rng.choice(_PC4_IN_REGION)} {letters}",
                    "Huisnummer": str(rng.randrange(1, 250)),
                    "Plaatsnaam": "Nieuwegein",
                },
            }
        )
    return bodies


@dataclass
class IntakeBenchResult:
    publish: Figure
    end_to_end: Figure
    notes: dict[str, Any]


def create_database(server_url: str, name: str) -> str:
    """A new database ``name`` on the server; its SQLAlchemy URL."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    from eropaf_platform.db import libpq_url

    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(server_url).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    from eropaf_platform.db import libpq_url

    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


class _BenchDatabase:
    """A fresh database on the server (created and dropped), or the given URL as it is."""

    def __init__(self, url: str | None) -> None:
        self.given = url
        self.name: str | None = None

    def create(self) -> str:
        if self.given:
            return self.given
        self.name = f"eropaf_bench_{uuid.uuid4().hex[:8]}"
        return create_database(BENCH_SERVER_URL, self.name)

    def drop(self) -> None:
        if self.name is not None:
            drop_database(BENCH_SERVER_URL, self.name)


def database_cpu_seconds(url: str) -> float:
    """CPU seconds of the PostgreSQL backends now connected to ``url``'s database (a pooled
    service keeps its connections, so the difference of two readings is its database's
    share); 0 when the server is not on this machine."""
    import psycopg
    from sqlalchemy.engine import make_url

    from eropaf_platform.db import libpq_url
    from eropaf_platform.local.process import process_cpu_seconds

    name = make_url(url).database
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        pids = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        ]
    return sum(process_cpu_seconds(pid) for pid in pids)


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

    database = _BenchDatabase(database_url)
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


# -- command line ---------------------------------------------------------------------


def render(report: BenchReport, result: YardstickResult, written: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="Raw broker yardstick (aiokafka, acks=all)")
    table.add_column("phase")
    table.add_column("messages", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("msg/s", justify="right")
    table.add_column("MB/s", justify="right")
    for figure in (result.produce, result.consume, result.end_to_end):
        mb_s = figure.msgs_per_s * result.mean_message_bytes / 1_000_000
        table.add_row(
            figure.name,
            f"{figure.messages:,}",
            f"{figure.seconds:.2f}",
            f"{figure.msgs_per_s:,.0f}",
            f"{mb_s:.1f}",
        )
    console.print(table)
    for section in report.sections:
        cpu = section.notes.get("intake_cpu_us_per_signal")
        console.print(
            f"{section.name}: {section.headline.msgs_per_s:,.0f} msg/s = "
            f"{report.ratio(section.headline.msgs_per_s):.2f} x yardstick"
            + (
                f" ({section.notes.get('instances', 1)} intake process(es), "
                f"CPU {cpu:,} us/signal, PostgreSQL "
                f"{section.notes.get('postgres_cpu_us_per_signal') or '?'} us/signal; "
                "floor 2,000/s: "
                + ("met)" if section.headline.msgs_per_s >= INTAKE_FLOOR_PER_S else "NOT met)")
                if cpu
                else ""
            )
        )
        if "latency_p99_ms" in section.notes:
            notes = section.notes
            console.print(
                f"  at a steady {notes['steady_rate_per_s']}/s: latency p50 "
                f"{notes['latency_p50_ms']:,} ms, p99 {notes['latency_p99_ms']:,} ms; floors "
                f"{notes['floors']['signals_per_s']}/s and p99 < {notes['floors']['p99_ms']} ms: "
                + ("met" if notes["floors_met"] else "NOT met")
            )
    stack = report.settings.get("stack")
    if stack:
        console.print(
            f"eropaf up: ready in {stack['ready_s']} s (goal {stack['ready_goal_s']:.0f} s), "
            f"stopped in {stack['stop_s']} s, "
            f"{stack['processes_left_after_sigterm']} processes left after SIGTERM"
        )
    machine = report.machine
    console.print(
        f"{machine['cores']} cores, Python {machine['python']}, {machine['platform']}; "
        f"mean value {result.mean_message_bytes:.0f} B; group join {result.group_join_s:.2f} s; "
        f"broker {report.settings['broker']}"
    )
    if written is not None:
        console.print(f"written: {written}")


async def bench(args: argparse.Namespace) -> BenchReport:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    messages = signal_messages(args.messages)
    bootstrap = args.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()

    async def measure(
        servers: str,
    ) -> tuple[YardstickResult, IntakeBenchResult | None, PipelineResult | None]:
        result = await run_yardstick(servers, messages, partitions=args.partitions)
        intake = None
        if args.intake_signals > 0:
            intake = await run_intake_bench(
                servers,
                args.intake_signals,
                partner_count=args.intake_partners,
                database_url=os.environ.get("EROPAF_BENCH_DATABASE_URL", "").strip() or None,
                profile_to=args.intake_profile,
                instances=args.intake_instances,
            )
        pipeline = None
        if args.pipeline_signals > 0:
            # imported here: bench_pipeline builds on this module's report types
            from eropaf_cli.bench_pipeline import DEFAULT_SERVER_URL, run_pipeline

            async def pipeline_on(servers_: str) -> PipelineResult:
                return await run_pipeline(
                    bootstrap=servers_,
                    database_server_url=os.environ.get("EROPAF_BENCH_DATABASE_URL", "").strip()
                    or DEFAULT_SERVER_URL,
                    signals=args.pipeline_signals,
                    steady_rate=args.steady_rate,
                    steady_seconds=args.steady_seconds,
                    intake_instances=args.pipeline_intake_instances,
                )

            if bootstrap:
                pipeline = await pipeline_on(servers)
            else:
                # A fresh local broker: matching reads intake's topic from its start and must
                # not first chew through the intake section's signals.
                from eropaf_platform.local.broker import LocalBroker

                async with LocalBroker() as fresh:
                    pipeline = await pipeline_on(fresh.bootstrap_servers)
        return result, intake, pipeline

    if bootstrap:
        result, intake, pipeline = await measure(bootstrap)
        broker = f"external {bootstrap}"
    else:
        from eropaf_platform.local.broker import LocalBroker

        async with LocalBroker() as local:
            result, intake, pipeline = await measure(local.bootstrap_servers)
        broker = "local tansu (memory storage)"

    report = BenchReport(
        started_at=started_at,
        machine=machine_info(),
        settings={
            "messages": args.messages,
            "partitions": args.partitions,
            "broker": broker,
            "mean_message_bytes": round(result.mean_message_bytes, 1),
            "group_join_s": round(result.group_join_s, 3),
            "producer": BENCH_PRODUCER,
            "consumer": {"getmany_max_records": 5_000, "commit": "per batch"},
        },
        yardstick=[result.produce, result.consume, result.end_to_end],
    )
    if intake is not None:
        report.add_section(
            BenchSection(
                "intake: signed partner signals -> accepted events",
                [intake.publish, intake.end_to_end],
                notes=intake.notes,
            )
        )
    if pipeline is not None:
        from eropaf_cli.bench_pipeline import section_of

        report.add_section(section_of(pipeline, report))
    if args.stack:
        from eropaf_cli.bench_stack import measure_stack

        report.settings["stack"] = await asyncio.to_thread(measure_stack)
    written = None if args.no_write else report.write(args.results_dir)
    render(report, result, written)
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m eropaf_cli.bench", description="Raw Kafka broker yardstick."
    )
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES)
    parser.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS)
    parser.add_argument(
        "--bootstrap-servers",
        default=None,
        help="use this broker (default: $KAFKA_BOOTSTRAP_SERVERS, else a local Tansu broker)",
    )
    parser.add_argument(
        "--intake-signals",
        type=int,
        default=DEFAULT_INTAKE_SIGNALS,
        help="signed signals through a real intake process (0: skip the intake section)",
    )
    parser.add_argument("--intake-partners", type=int, default=DEFAULT_INTAKE_PARTNERS)
    parser.add_argument(
        "--intake-instances",
        type=int,
        default=DEFAULT_INTAKE_INSTANCES,
        help="intake processes in one consumer group (scale-out; default: one per core)",
    )
    parser.add_argument(
        "--intake-profile",
        type=Path,
        default=None,
        help="run intake under cProfile and write its stats to this file",
    )
    parser.add_argument(
        "--pipeline-signals",
        type=int,
        default=20_000,
        help="signals through intake + matching processes (0: skip the pipeline section)",
    )
    parser.add_argument(
        "--pipeline-intake-instances",
        type=int,
        default=1,
        help="intake processes in the pipeline section (matching, the bottleneck there, runs "
        "once; a second intake only takes CPU from it on two cores)",
    )
    parser.add_argument("--steady-rate", type=int, default=100, help="signals/s, latency phase")
    parser.add_argument("--steady-seconds", type=int, default=20)
    parser.add_argument(
        "--no-stack", dest="stack", action="store_false", help="skip the eropaf up timings"
    )
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    parser.add_argument("--no-write", action="store_true", help="do not write a results file")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.partitions < 1:
        parser.error("--messages and --partitions must be positive")
    if (
        args.intake_signals < 0
        or args.intake_partners < 1
        or args.intake_instances < 1
        or args.pipeline_intake_instances < 1
    ):
        parser.error(
            "--intake-signals must be >= 0, --intake-partners and the instance counts positive"
        )
    return args


async def until_sigterm(work: Awaitable[T]) -> T:
    """Await ``work`` so that SIGTERM (a job's timeout, ``kill``) cancels it as Ctrl-C does:
    its ``finally`` blocks then stop the services and brokers it started and drop its
    databases, where the default handler ended the process and left them running."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await work
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(until_sigterm(bench(parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
