"""Intake + matching benchmark: partner publish -> case event, with PostgreSQL.

Intake and matching run as real processes (``python -m eropaf_intake`` / ``eropaf_matching``)
on fresh databases of one PostgreSQL server; a few partners are onboarded and publish signed
signals to their topics, as partners do. Measured here:

* throughput: N signals published as fast as possible; first publish -> the last signal's
  first case event (``CaseOpened``/``CaseUpdated`` on the cases topic naming its ref);
* latency: a steady rate (default 100 signals/s) for some seconds; per signal, publish ->
  the first case event naming it; p50/p99.

Signal refs are intake's keyed pseudonyms of (partner, signal ID); the benchmark holds the
pseudonym key, so it knows which ref each published signal gets.

``python -m eropaf_bench.pipeline`` runs it standalone: a short raw-broker yardstick
(:mod:`eropaf_bench.yardstick`) first, for the ratio, on a local Tansu broker unless
``--bootstrap-servers`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eropaf_bench.data import PartnerKeys, SignedSignal, make_signals, signal_messages
from eropaf_bench.database import (
    DEFAULT_SERVER_URL,
    create_database,
    database_cpu_seconds,
    drop_database,
)
from eropaf_bench.report import (
    DEFAULT_RESULTS_DIR,
    BenchReport,
    BenchSection,
    Figure,
    machine_info,
    percentile,
    until_sigterm,
)
from eropaf_bench.yardstick import bench_producer, run_yardstick

DEFAULT_SIGNALS = 20_000
DEFAULT_STEADY_RATE = 100
DEFAULT_STEADY_SECONDS = 20
FLOOR_SIGNALS_PER_S = 1_000.0
FLOOR_P99_MS = 500.0
# Partners onboarded for the run: (code prefix, DDAS signaalpartner type).
PARTNER_TYPES = (("huur", "Huur"), ("energie", "Energie"), ("zorg", "Zorg"), ("water", "Water"))
# Bench-only secrets: fresh databases, dropped afterwards; never used anywhere else.
PSEUDONYM_KEY = "bench-pipeline-pseudonym-key-" + "p" * 32
MASTER_KEYS = "bench:" + base64.b64encode(b"b" * 32).decode()
INTERNAL_TOKEN = "bench-pipeline-internal-token"  # noqa: S105 -- see above
CASE_EVENT_TYPES = ("eropaf.matching.case.opened", "eropaf.matching.case.updated")
WARM_UP_ROUND = 50


# -- watching the cases topic ------------------------------------------------------------


class CaseWatcher:
    """Follows the cases topic (and intake's signals topic, for the split between the two
    services) from their current ends; notes when each signal ref first appears."""

    def __init__(self, bootstrap: str) -> None:
        from aiokafka import AIOKafkaConsumer

        self.first_seen: dict[str, float] = {}  # ref -> time.perf_counter() at receipt
        self.accepted_at: dict[str, float] = {}  # ref -> its SignalAccepted seen
        self.events = 0
        # The refs a wait_for is waiting for: the watcher strikes each off as it arrives, so
        # waiting costs nothing per poll (it shares the two cores with what it measures).
        self._waiting: set[str] = set()
        self._all_seen = asyncio.Event()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_bytes=16 * 1024 * 1024,
            fetch_max_wait_ms=20,  # latency is measured: do not let the fetch wait long
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from aiokafka import TopicPartition

        from eropaf_contracts.topics import CASES_TOPIC, INTAKE_SIGNALS_TOPIC
        from eropaf_platform.kafka_internals import refresh_metadata

        await self._consumer.start()
        await refresh_metadata(self._consumer)
        partitions = [
            TopicPartition(topic, p)
            for topic in (CASES_TOPIC, INTAKE_SIGNALS_TOPIC)
            for p in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            raise RuntimeError(f"{CASES_TOPIC} has no partitions")
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the end offsets now: events from here on count
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._run(), name="case-watcher")

    async def _run(self) -> None:
        # orjson (a platform dependency): the watcher shares the two cores with what it
        # measures, and the stdlib parser was most of its CPU.
        import orjson

        from eropaf_contracts.topics import CASES_TOPIC

        types = tuple(f'"type":"{t}"'.encode() for t in CASE_EVENT_TYPES)
        accepted = b'"type":"eropaf.intake.signal.accepted"'
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=10_000)
            now = time.perf_counter()
            for tp, records in batches.items():
                for record in records:
                    value = record.value or b""
                    if tp.topic != CASES_TOPIC:
                        if accepted in value:
                            ref = orjson.loads(value)["data"]["signal_ref"]
                            self.accepted_at.setdefault(ref, now)
                        continue
                    if not any(t in value for t in types):
                        continue
                    self.events += 1
                    for ref in orjson.loads(value)["data"]["signal_refs"]:
                        if ref not in self.first_seen:
                            self.first_seen[ref] = now
                            self._strike_off(ref)

    def _strike_off(self, ref: str) -> None:
        if ref in self._waiting:
            self._waiting.remove(ref)
            if not self._waiting:
                self._all_seen.set()

    async def wait_for(self, refs: Sequence[str], timeout: float) -> float:
        """Wait until every ref was seen; return the latest first-seen time among them."""
        if self._task is None:
            raise RuntimeError("the watcher is not started")
        self._waiting = {r for r in refs if r not in self.first_seen}
        if self._waiting:
            self._all_seen.clear()
            seen = asyncio.ensure_future(self._all_seen.wait())
            try:
                # Returns when all were seen, the watcher stopped, or the time is up.
                await asyncio.wait(
                    {seen, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                seen.cancel()
            if self._task.done():
                self._task.result()  # raises what stopped the watcher
            if self._waiting:
                missing, self._waiting = len(self._waiting), set()
                raise TimeoutError(f"{missing} of {len(refs)} signals reached no case event")
        return max(self.first_seen[r] for r in refs)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()


# -- the pipeline run --------------------------------------------------------------------


@dataclass
class PipelineResult:
    signals: int
    publish_s: float
    end_to_end_s: float
    steady_signals: int
    steady_rate: float  # achieved publish rate in the steady phase
    latencies_ms: list[float]
    intake_latencies_ms: list[float]  # publish -> SignalAccepted on intake's topic
    accepted_s: float  # first publish -> last SignalAccepted of the burst
    case_events: int
    startup_s: float
    cpu_s: dict[str, float]  # CPU seconds each service used for the burst (all signals)
    # Messages per handled batch in the burst, per consumer: the per-batch costs (a
    # transaction, an offset commit, a relay round) are spread over this many.
    batch_sizes: dict[str, float] = field(default_factory=dict)
    intake_instances: int = 1

    def percentile(self, q: float, latencies: list[float] | None = None) -> float:
        return percentile(self.latencies_ms if latencies is None else latencies, q)


async def _onboard(settings: Any, count: int, run: str) -> list[PartnerKeys]:
    from eropaf_intake import partners
    from eropaf_intake.adapters import jws
    from eropaf_intake.app import MIGRATIONS
    from eropaf_platform.broker import ensure_topics
    from eropaf_platform.db import make_engine, make_sessions, migrate_async, transaction

    await migrate_async(settings.database_url, MIGRATIONS, service="intake")
    engine = make_engine(settings.database_url)
    out: list[PartnerKeys] = []
    topics: list[str] = []
    try:
        for prefix, kind in PARTNER_TYPES[:count]:
            code = f"bench-{prefix}-{run}"
            async with transaction(make_sessions(engine)) as session:
                result = await partners.onboard(session, code, code, [kind])
            assert result.private_key_pem is not None
            key = jws.private_key_from_pem(result.private_key_pem)
            out.append(PartnerKeys(code, kind, result.kid, key))
            topics += list(result.topics)
    finally:
        await engine.dispose()
    await ensure_topics(settings, topics)
    return out


async def _publish(producer: Any, items: Sequence[SignedSignal]) -> None:
    futures = [await producer.send(s.topic, s.value, key=s.key, headers=s.headers) for s in items]
    await asyncio.gather(*futures)


async def _drained(processes: Sequence[Any], timeout: float) -> None:
    """Until every process has no consumer lag and an empty outbox, twice in a row."""
    from eropaf_platform.local.service_process import metric_sum

    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 2:
        if time.monotonic() > deadline:
            raise TimeoutError("the services did not drain after the burst")
        busy = 0.0
        for process in processes:
            page = await process.metrics()
            busy += metric_sum(page, "eropaf_outbox_backlog")
            busy += metric_sum(page, "eropaf_consumer_lag")
        quiet = quiet + 1 if busy == 0 else 0
        await asyncio.sleep(0.5)


async def run_pipeline(
    *,
    bootstrap: str,
    database_server_url: str,
    signals: int = DEFAULT_SIGNALS,
    steady_rate: int = DEFAULT_STEADY_RATE,
    steady_seconds: int = DEFAULT_STEADY_SECONDS,
    partners: int = len(PARTNER_TYPES),
    log_dir: Path | None = None,
    warm_up: int = 400,
    intake_instances: int = 1,
) -> PipelineResult:
    from eropaf_contracts.topics import CASES_TOPIC, CREDITOR_FEEDBACK_TOPIC, INTAKE_SIGNALS_TOPIC
    from eropaf_intake.app import IntakeSettings
    from eropaf_platform.broker import ensure_topics
    from eropaf_platform.local.broker import broker_binary
    from eropaf_platform.local.process import (
        machine_busy_seconds,
        pids_running,
        process_cpu_seconds,
    )
    from eropaf_platform.local.service_process import ServiceProcess, metric_sum

    run = uuid.uuid4().hex[:8]
    logs = log_dir or Path(tempfile.mkdtemp(prefix="eropaf-bench-pipeline-"))
    logs.mkdir(parents=True, exist_ok=True)
    intake_db = f"eropaf_bench_intake_{run}"
    matching_db = f"eropaf_bench_matching_{run}"
    intake_url = create_database(database_server_url, intake_db)
    matching_url = create_database(database_server_url, matching_db)
    common = {
        "EROPAF_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "EROPAF_INTERNAL_API_TOKEN": INTERNAL_TOKEN,
        "EROPAF_LOG_LEVEL": "WARNING",
    }
    # Intake scales out as instances of one consumer group; matching runs once (linking
    # needs every signal of a household in one place).
    intakes = [
        ServiceProcess(
            "eropaf_intake",
            {
                **common,
                "EROPAF_DATABASE_URL": intake_url,
                "EROPAF_PSEUDONYM_KEY": PSEUDONYM_KEY,
                "EROPAF_MASTER_KEYS": MASTER_KEYS,
                "EROPAF_KAFKA_METADATA_MAX_AGE_MS": "1000",
            },
            logs / f"intake-{n}.log",
        )
        for n in range(intake_instances)
    ]
    matching = ServiceProcess(
        "eropaf_matching",
        {
            **common,
            "EROPAF_DATABASE_URL": matching_url,
            # Own groups: on a shared broker the bench never competes with a real matching.
            "EROPAF_CONSUMER_GROUP_PREFIX": "eropaf-bench",
        },
        logs / "matching.log",
    )
    watcher = CaseWatcher(bootstrap)
    producer = bench_producer(bootstrap)
    try:
        settings = IntakeSettings(
            database_url=intake_url,
            kafka_bootstrap_servers=bootstrap,
            pseudonym_key=PSEUDONYM_KEY,
            master_keys=MASTER_KEYS,
            internal_api_token=INTERNAL_TOKEN,
        )
        onboarded = await _onboard(settings, partners, run)
        await ensure_topics(settings, [INTAKE_SIGNALS_TOPIC, CASES_TOPIC])
        rate = max(1, steady_rate)
        steady_count = rate * steady_seconds
        workload = make_signals(
            onboarded,
            warm_up + signals + steady_count,
            seed=7,
            run=run,
            pseudonym_key=PSEUDONYM_KEY,
        )
        warm, burst, steady = (
            workload[:warm_up],
            workload[warm_up : warm_up + signals],
            workload[warm_up + signals :],
        )

        started = time.perf_counter()
        for process in (*intakes, matching):
            process.start()
        await asyncio.gather(*(p.wait_ready() for p in (*intakes, matching)))
        await watcher.start()
        await producer.start()
        # Warm-up: group joins (every intake instance holding partitions), connections, first
        # compilations -- not part of the figures.
        for round_ in range(0, len(warm), WARM_UP_ROUND):
            await _publish(producer, warm[round_ : round_ + WARM_UP_ROUND])
            await watcher.wait_for([s.ref for s in warm[: round_ + WARM_UP_ROUND]], timeout=180)
            if all([await p.metric("eropaf_messages_in_total") for p in intakes]):
                break
        startup_s = time.perf_counter() - started

        # Throughput: everything at once.
        def cpu_now() -> dict[str, float]:
            return {
                "intake": sum(p.cpu_seconds() for p in intakes),
                "matching": matching.cpu_seconds(),
                "postgres intake": database_cpu_seconds(intake_url),
                "postgres matching": database_cpu_seconds(matching_url),
                # A local broker (0 for a remote one) and the benchmark's own producer and
                # watcher share the cores with what is measured.
                "broker": sum(process_cpu_seconds(pid) for pid in pids_running(broker_binary())),
                "benchmark": process_cpu_seconds(os.getpid()),
                # Everything: the above plus PostgreSQL's own processes (WAL writer,
                # checkpointer, autovacuum) and whatever else ran.
                "machine": machine_busy_seconds(),
            }

        partner_topics = sorted({s.topic for s in burst})

        async def batches_now() -> dict[str, tuple[float, float]]:
            """(messages in, batches handled) per consumer, summed over its processes."""
            wanted = {
                "intake signals": (intakes, "intake-partner-signals", partner_topics),
                "intake feedback": (intakes, "intake-creditor-feedback", [CREDITOR_FEEDBACK_TOPIC]),
                "matching signals": ([matching], "matching-signals", [INTAKE_SIGNALS_TOPIC]),
            }
            counts = {}
            pages = {p: await p.metrics() for p in (*intakes, matching)}
            for name, (processes, consumer, topics) in wanted.items():
                messages = batches = 0.0
                for p in processes:
                    page = pages[p]
                    batches += metric_sum(page, "eropaf_handler_seconds_count", consumer=consumer)
                    for topic in topics:
                        messages += metric_sum(page, "eropaf_messages_in_total", topic=topic)
                counts[name] = (messages, batches)
            return counts

        cpu_before = cpu_now()
        batches_before = await batches_now()
        t0 = time.perf_counter()
        await _publish(producer, burst)
        published = time.perf_counter()
        last = await watcher.wait_for([s.ref for s in burst], timeout=max(120, signals / 50))
        last_accepted = max(watcher.accepted_at.get(s.ref, last) for s in burst)
        cpu_s = {name: seconds - cpu_before[name] for name, seconds in cpu_now().items()}
        batch_sizes = {
            name: (messages - batches_before[name][0]) / max(1.0, batches - batches_before[name][1])
            for name, (messages, batches) in (await batches_now()).items()
        }

        # The burst leaves work behind (intake reads matching's events about the burst, and
        # relays the partners' lifecycle feedback): the latency phase starts on an idle
        # pipeline, or it would measure that queue.
        await _drained((*intakes, matching), timeout=max(120, signals / 50))

        # Latency at a steady rate: each signal sent at its slot, timed from just before send.
        sent_at: dict[str, float] = {}
        pending = []
        steady_start = time.perf_counter()
        for i, s in enumerate(steady):
            slot = steady_start + i / rate
            delay = slot - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_at[s.ref] = time.perf_counter()
            pending.append(await producer.send(s.topic, s.value, key=s.key, headers=s.headers))
        await asyncio.gather(*pending)
        steady_end = time.perf_counter()
        await watcher.wait_for(list(sent_at), timeout=120)
        latencies = [(watcher.first_seen[r] - t) * 1000 for r, t in sent_at.items()]
        intake_latencies = [
            (watcher.accepted_at[r] - t) * 1000
            for r, t in sent_at.items()
            if r in watcher.accepted_at
        ]
        return PipelineResult(
            signals=signals,
            publish_s=published - t0,
            end_to_end_s=last - t0,
            steady_signals=len(steady),
            steady_rate=len(steady) / (steady_end - steady_start) if steady else 0.0,
            latencies_ms=latencies,
            intake_latencies_ms=intake_latencies,
            accepted_s=last_accepted - t0,
            case_events=watcher.events,
            startup_s=startup_s,
            cpu_s=cpu_s,
            batch_sizes=batch_sizes,
            intake_instances=intake_instances,
        )
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()
        with contextlib.suppress(Exception):
            await watcher.stop()
        for process in (*intakes, matching):
            process.stop()
        for name in (intake_db, matching_db):
            with contextlib.suppress(Exception):
                drop_database(database_server_url, name)


def section_of(result: PipelineResult, report: BenchReport | None = None) -> BenchSection:
    end_to_end = Figure("partner publish -> case event", result.signals, result.end_to_end_s)
    p50, p99 = result.percentile(50), result.percentile(99)
    notes: dict[str, Any] = {
        "signals": result.signals,
        "publish_msgs_per_s": round(result.signals / result.publish_s, 1)
        if result.publish_s
        else 0.0,
        "steady_rate_per_s": round(result.steady_rate, 1),
        "steady_signals": result.steady_signals,
        "latency_p50_ms": round(p50, 1),
        "latency_p99_ms": round(p99, 1),
        "latency_max_ms": round(max(result.latencies_ms, default=0.0), 1),
        "intake_accepted_per_s": round(result.signals / result.accepted_s, 1)
        if result.accepted_s > 0
        else 0.0,
        "intake_latency_p50_ms": round(result.percentile(50, result.intake_latencies_ms), 1),
        "intake_latency_p99_ms": round(result.percentile(99, result.intake_latencies_ms), 1),
        "case_events_seen": result.case_events,
        "startup_s": round(result.startup_s, 2),
        "cpu_ms_per_signal": {
            name: round(1000 * seconds / result.signals, 2)
            for name, seconds in result.cpu_s.items()
        },
        "messages_per_batch": {name: round(size, 1) for name, size in result.batch_sizes.items()},
        "floors": {"signals_per_s": FLOOR_SIGNALS_PER_S, "p99_ms": FLOOR_P99_MS},
        "floors_met": end_to_end.msgs_per_s >= FLOOR_SIGNALS_PER_S and p99 < FLOOR_P99_MS,
        "services": f"{result.intake_instances} intake + 1 matching processes, PostgreSQL, "
        "default settings",
    }
    if report is not None:
        notes["ratio_to_yardstick"] = round(report.ratio(end_to_end.msgs_per_s), 4)
    return BenchSection(
        name="intake + matching (partner publish -> case event)",
        figures=[Figure("partner publish", result.signals, result.publish_s), end_to_end],
        notes=notes,
    )


async def add_pipeline_section(
    report: BenchReport,
    *,
    bootstrap: str,
    database_server_url: str,
    signals: int = DEFAULT_SIGNALS,
    steady_rate: int = DEFAULT_STEADY_RATE,
    steady_seconds: int = DEFAULT_STEADY_SECONDS,
    intake_instances: int = 1,
) -> BenchSection:
    """Run the pipeline benchmark and add its section to ``report``."""
    result = await run_pipeline(
        bootstrap=bootstrap,
        database_server_url=database_server_url,
        signals=signals,
        steady_rate=steady_rate,
        steady_seconds=steady_seconds,
        intake_instances=intake_instances,
    )
    section = section_of(result, report)
    report.add_section(section)
    return section


# -- command line ---------------------------------------------------------------------


def describe(section: BenchSection, report: BenchReport) -> str:
    n = section.notes
    head = section.headline
    return (
        f"{section.name}\n"
        f"  throughput: {head.messages:,} signals in {head.seconds:.2f} s = "
        f"{head.msgs_per_s:,.0f} signals/s end to end "
        f"({report.ratio(head.msgs_per_s):.3f} x yardstick {report.yardstick_msgs_per_s:,.0f}"
        f" msg/s); partner publish {n['publish_msgs_per_s']:,.0f} msg/s\n"
        f"  latency at {n['steady_rate_per_s']:.0f} signals/s ({n['steady_signals']:,} signals):"
        f" p50 {n['latency_p50_ms']:.0f} ms, p99 {n['latency_p99_ms']:.0f} ms, "
        f"max {n['latency_max_ms']:.0f} ms\n"
        f"  of which intake (publish -> SignalAccepted): {n['intake_accepted_per_s']:,.0f}"
        f" signals/s; p50 {n['intake_latency_p50_ms']:.0f} ms, "
        f"p99 {n['intake_latency_p99_ms']:.0f} ms\n"
        f"  CPU per signal in the burst (ms): {n['cpu_ms_per_signal']}"
        f" ({n['services']})\n"
        f"  messages per batch in the burst: {n['messages_per_batch']}\n"
        f"  floors (>= {FLOOR_SIGNALS_PER_S:.0f} signals/s, p99 < {FLOOR_P99_MS:.0f} ms): "
        f"{'met' if n['floors_met'] else 'NOT met'}"
    )


async def _standalone(args: argparse.Namespace) -> BenchReport:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    bootstrap = args.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    stack = contextlib.AsyncExitStack()
    async with stack:
        if bootstrap:
            broker = f"external {bootstrap}"
        else:
            from eropaf_platform.local.broker import LocalBroker

            local = await stack.enter_async_context(LocalBroker())
            bootstrap = local.bootstrap_servers
            broker = "local tansu (memory storage)"
        messages = signal_messages(args.yardstick_messages)
        yardstick = await run_yardstick(bootstrap, messages)
        report = BenchReport(
            started_at=started_at,
            machine=machine_info(),
            settings={
                "messages": args.yardstick_messages,
                "broker": broker,
                "pipeline": {
                    "signals": args.signals,
                    "steady_rate": args.steady_rate,
                    "steady_seconds": args.steady_seconds,
                    "intake_instances": args.intake_instances,
                    "database": "PostgreSQL (fresh databases, dropped afterwards)",
                },
            },
            yardstick=[yardstick.produce, yardstick.consume, yardstick.end_to_end],
        )
        section = await add_pipeline_section(
            report,
            bootstrap=bootstrap,
            database_server_url=args.database_url,
            signals=args.signals,
            steady_rate=args.steady_rate,
            steady_seconds=args.steady_seconds,
            intake_instances=args.intake_instances,
        )
    print(describe(section, report))
    if not args.no_write:
        print(f"written: {report.write(args.results_dir)}")
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m eropaf_bench.pipeline",
        description="Intake + matching: partner publish -> case event (throughput, latency).",
    )
    parser.add_argument("--signals", type=int, default=DEFAULT_SIGNALS)
    parser.add_argument("--steady-rate", type=int, default=DEFAULT_STEADY_RATE)
    parser.add_argument("--steady-seconds", type=int, default=DEFAULT_STEADY_SECONDS)
    parser.add_argument(
        "--intake-instances",
        type=int,
        default=1,
        help="intake processes in one consumer group (matching runs once)",
    )
    parser.add_argument("--yardstick-messages", type=int, default=20_000)
    parser.add_argument(
        "--bootstrap-servers",
        default=None,
        help="use this broker (default: $KAFKA_BOOTSTRAP_SERVERS, else a local Tansu broker)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("EROPAF_TEST_DATABASE_URL", DEFAULT_SERVER_URL),
        help="a PostgreSQL server's maintenance database (fresh databases are made there)",
    )
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    parser.add_argument("--no-write", action="store_true", help="do not write a results file")
    args = parser.parse_args(argv)
    if args.signals < 1 or args.steady_rate < 1 or args.steady_seconds < 0:
        parser.error("--signals and --steady-rate must be positive")
    if args.intake_instances < 1:
        parser.error("--intake-instances must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    report = asyncio.run(until_sigterm(_standalone(parse_args(argv))))
    return 0 if all(s.notes.get("floors_met") for s in report.sections) else 1


if __name__ == "__main__":
    sys.exit(main())
