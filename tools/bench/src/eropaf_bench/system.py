"""The whole system as `eropaf up` runs it, end to end: partner publish -> accepted feedback ->
case event -> visit planned (or backlog) -> the staff e-mail accepted by the SMTP sink.

One run, per database setting (the embedded PostgreSQL, or the server at 127.0.0.1:5432 with
``eropaf up --database-url``):

1. ``eropaf up`` on a fresh data directory: the time until ``stack.json`` (ready);
2. the raw-broker yardstick (the ratio's denominator): the run's own on a fresh local broker
   (``make bench`` passes the one it measured first), and for comparison one on the stack's
   broker with the services idle but polling it;
3. the region's partners onboarded and the demo roster imported as the demo does it
   (:mod:`eropaf_demo.runner`, :mod:`eropaf_demo.staff`); the signals come from the demo's
   month generator (:func:`eropaf_demo.simulate.simulate_month`): its valid signals of the
   ten partners that publish on Kafka, signed with their keys (``eropaf_intake.client``);
4. latency at a steady rate (100 signals/s for 60 s) on the stack settled after a warm-up
   (what partners and staff see in operation): per signal, publish -> its accepted feedback
   and -> its first case event; per case, the publish of the signal that decided its outreach
   -> its first staff e-mail; per home-visit case, that publish -> its first ``VisitPlanned``
   and -> the first invitation mail for that visit accepted by the sink (the sink's file name
   carries its UTC time of acceptance), and ``VisitPlanned`` -> that invitation;
5. throughput, once that has settled: N signals published as fast as the broker takes them;
   timed from the first publish to the last accepted feedback, the last signal's first case
   event, the moment scheduling has planned with every case event (see
   :func:`scheduling_settled`) and the last e-mail the SMTP sink accepted;
6. per process: peak resident memory (``VmHWM``) and CPU seconds per 1,000 signals of the
   burst, for each service, the broker and PostgreSQL (embedded: the postmaster with all its
   children, reaped ones included; a shared server: the backends connected to the stack's
   databases, whose background processes are not counted).

"Last visit planned": capacity runs out long before 100,000 signals are planned, so the
figure is the time at which scheduling had consumed every case event and made a plan with all
of them (its change counter equals its planned counter), its outbox empty: every home-visit
case then has a visit or a place in the backlog. That is the time of the last visits-topic
event seen at that point.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path
from typing import Any

from eropaf_bench.report import (
    DEFAULT_RESULTS_DIR,
    BenchReport,
    BenchSection,
    Figure,
    machine_info,
    percentile,
    ratio,
    until_sigterm,
)

DEFAULT_SIGNALS = 100_000
QUICK_SIGNALS = 10_000
STEADY_RATE = 100
STEADY_SECONDS = 60
QUICK_STEADY_SECONDS = 30
SETTLE_S = 300.0
QUICK_SETTLE_S = 45.0
WARM_UP = 200
YARDSTICK_MESSAGES = 50_000
QUICK_YARDSTICK_MESSAGES = 20_000
SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Floors (issue #16): end to end to the case event at least this share of the yardstick;
# p99 at the steady rate; peak resident memory of any service at 100,000 signals.
FLOOR_RATIO = 0.05
FLOOR_P99_CASE_MS = 300.0
FLOOR_P99_MAIL_MS = 2_000.0
FLOOR_RSS_MB = 300.0
SERVICES = ("intake", "matching", "scheduling", "notification")
_UID = re.compile(rb"UID:visit-([^@\s]+)@")
_STAMP = re.compile(r"^(\d{8}T\d{6}\d{6})Z-")
_CASE = re.compile(r"casus ([0-9a-f]{8,})$")


# -- pure helpers (tested) --------------------------------------------------------------------


def latency_summary(values_ms: Sequence[float], missing: int = 0) -> dict[str, Any]:
    """count, p50, p95, p99 and max of latencies in milliseconds. ``missing`` ones never
    arrived within the wait: they count as slower than any, so a percentile they reach is
    None (unknown, beyond the wait)."""
    everything = [*values_ms, *([math.inf] * missing)]

    def rounded(value: float) -> float | None:
        return None if math.isinf(value) else round(value, 1)

    return {
        "count": len(values_ms),
        "missing": missing,
        "p50_ms": rounded(percentile(everything, 50)),
        "p95_ms": rounded(percentile(everything, 95)),
        "p99_ms": rounded(percentile(everything, 99)),
        "max_ms": rounded(max(everything, default=0.0)),
    }


def accepted_at(mail_name: str) -> float | None:
    """The UTC time (epoch seconds) the local SMTP sink accepted a mail, from the name it
    stored it under (``<YYYYmmddTHHMMSSffffff>Z-<hash>.eml``); None for other names."""
    match = _STAMP.match(mail_name)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC).timestamp()


def mail_case(content: bytes) -> str | None:
    """The case a staff mail is about: every subject ends in ``casus <case ref>`` (invites,
    new cases, backlog alerts); None for a mail without one (e.g. a digest)."""
    from email.parser import BytesHeaderParser

    subject = BytesHeaderParser().parsebytes(content).get("Subject")
    found = _CASE.search(" ".join(str(subject or "").split()))
    return found.group(1) if found else None


def invited_visit(content: bytes) -> str | None:
    """The visit an invitation mail is about: the iCalendar UID ``visit-<id>@domain`` of its
    calendar part (decoded: the parts are base64); None for a mail without one."""
    found = _UID.search(content)
    if found is not None:
        return found.group(1).decode()
    if b"text/calendar" not in content:  # most mails: no invitation, no parse
        return None
    for part in message_from_bytes(content).walk():
        if part.get_content_type() in ("text/calendar", "application/ics"):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and (found := _UID.search(payload)) is not None:
                return found.group(1).decode()
    return None


def proc_status_kb(text: str, field_name: str) -> int:
    """A ``kB`` field (e.g. ``VmHWM``) of a ``/proc/<pid>/status`` text; 0 when absent."""
    for line in text.splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def cpu_delta(before: Mapping[int, float], after: Mapping[int, float]) -> float:
    """CPU seconds used between two readings of per-process totals: processes that appeared
    meanwhile count from zero; ones gone meanwhile are lost (their figure is a floor)."""
    return sum(max(0.0, seconds - before.get(pid, 0.0)) for pid, seconds in after.items())


def per_thousand(seconds: float, signals: int) -> float:
    return round(1000 * seconds / signals, 3) if signals > 0 else 0.0


def _below(value: float | None, limit: float) -> bool:
    return value is not None and 0 < value < limit


def floors_of(run: Mapping[str, Any]) -> dict[str, bool]:
    """Which of the issue's floors a run meets (the memory floor only at 100,000 signals).
    The staff e-mail floor holds for the first staff mail of a case, timed from the partner's
    publish. A visit's invitation waits for the plan, which is made for many cases at once
    (debounced); it is reported, from the publish and from the ``VisitPlanned``, without a
    floor. A latency never reached within the wait meets no floor."""
    lat = run["latency"]
    out = {
        "case_event_ratio": run["throughput"]["case_event"]["ratio_to_yardstick"] >= FLOOR_RATIO,
        "p99_case_event": _below(lat["case_event"]["p99_ms"], FLOOR_P99_CASE_MS),
        "p99_staff_mail": _below(lat["staff_mail"]["p99_ms"], FLOOR_P99_MAIL_MS),
    }
    if run["signals"] >= DEFAULT_SIGNALS:
        out["rss_per_service"] = all(
            mb <= FLOOR_RSS_MB for name, mb in run["peak_rss_mb"].items() if name in SERVICES
        )
    return out


# -- processes -----------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def peak_rss_mb(pid: int | None) -> float:
    if not pid:
        return 0.0
    return round(proc_status_kb(_read(f"/proc/{pid}/status"), "VmHWM") / 1024, 1)


def _stat_fields(pid: int) -> list[str]:
    text = _read(f"/proc/{pid}/stat")
    return text.rsplit(")", 1)[1].split() if ")" in text else []


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process, its reaped children (cutime, cstime) and its live
    children (a postmaster and its backends)."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = _stat_fields(pid)
    if not fields:
        return 0.0
    total = sum(int(f) for f in fields[11:15])
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            child = _stat_fields(int(entry))
            if child and child[1] == str(pid):
                total += int(child[11]) + int(child[12])
    return total / tick


def server_backend_cpu(server_url: str, databases: Iterable[str]) -> dict[int, float]:
    """CPU seconds per backend connected to ``databases`` on a PostgreSQL server of this
    machine."""
    import psycopg

    from eropaf_platform.db import libpq_url
    from eropaf_platform.local.process import process_cpu_seconds

    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        pids = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s) "
                "AND pid <> pg_backend_pid()",
                (list(databases),),
            )
        ]
    return {pid: process_cpu_seconds(pid) for pid in pids}


# -- workload --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    ce_id: str
    ref: str  # the signal ref intake derives


def make_workload(
    partners: Mapping[str, Any], pseudonym_key: str, count: int, *, seed: int
) -> list[Outgoing]:
    """``count`` valid, signed signals of the demo's month generator from the partners that
    publish on Kafka (the HTTP partner's rows and the month's bad input, duplicates and
    resolutions left out), in the month's order."""
    from eropaf_contracts.topics import signals_topic
    from eropaf_demo.simulate import simulate_month
    from eropaf_intake.client import kid_of, load_private_key, signed_message
    from eropaf_intake.domain.match_tokens import signal_ref

    keys = {code: load_private_key(p.key_file) for code, p in partners.items()}
    kids = {code: kid_of(k) for code, k in keys.items()}
    asked = math.ceil(count * 1.15) + 50
    while True:
        month = simulate_month(seed=seed, signals=asked)
        chosen = [
            m
            for m in month.messages
            if m.kind == "signal"
            and m.channel == "kafka"
            and m.bad is None
            and m.expected_status == "accepted"
            and m.body is not None
            and m.partner in keys
        ]
        if len(chosen) >= count:
            break
        asked = math.ceil(asked * count / max(1, len(chosen))) + 50
    out = []
    secret = pseudonym_key.encode()
    for m in chosen[:count]:
        assert m.body is not None
        key, value, headers = signed_message(m.partner, m.body, keys[m.partner], kids[m.partner])
        out.append(
            Outgoing(
                topic=signals_topic(m.partner),
                key=key,
                value=value,
                headers=headers.to_kafka(),
                ce_id=headers.id,
                ref=signal_ref(secret, m.partner, m.body["ID"]),
            )
        )
    return out


# -- watching ------------------------------------------------------------------------------


@dataclass
class Seen:
    feedback: dict[str, float] = field(default_factory=dict)  # ce_id -> accepted feedback
    case: dict[str, float] = field(default_factory=dict)  # signal ref -> first case event
    case_signals: dict[str, set[str]] = field(default_factory=dict)  # case ref -> signal refs
    decided: dict[str, set[str]] = field(default_factory=dict)  # case ref -> refs at decision
    home_visit: set[str] = field(default_factory=set)  # case refs decided on a home visit
    renamed: dict[str, str] = field(default_factory=dict)  # old case ref -> new one
    planned: dict[str, float] = field(default_factory=dict)  # case ref -> first VisitPlanned
    visit_case: dict[str, str] = field(default_factory=dict)  # visit id -> case ref
    unplanned: dict[str, float] = field(default_factory=dict)  # case ref -> to the backlog
    last_visits_event: float = 0.0
    case_records: int = 0  # records on the cases topic
    feedback_other: int = 0  # other feedback (the partners' case lifecycle, refusals)


def decided_as(seen: Seen) -> dict[str, str]:
    """A case ref (one a merge or re-key made, too) -> the ref its outreach was decided under
    (itself, or the earliest such one among the refs it absorbed)."""
    earlier: dict[str, list[str]] = {}
    for old, new in seen.renamed.items():
        earlier.setdefault(new, []).append(old)
    out = {}
    for ref in {*seen.decided, *earlier}:
        queue, visited = [ref], set()
        while queue:
            current = queue.pop(0)
            if current in visited:
                continue
            visited.add(current)
            if current in seen.decided:
                out[ref] = current
                break
            queue.extend(earlier.get(current, ()))
    return out


class Watcher:
    """Follows the partners' feedback topics, the cases topic and the visits topic."""

    def __init__(self, bootstrap: str, partner_codes: Sequence[str]) -> None:
        self.bootstrap = bootstrap
        self.codes = list(partner_codes)
        self.seen = Seen()
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        from eropaf_contracts.topics import CASES_TOPIC, VISITS_TOPIC, feedback_topic

        self._consumer = AIOKafkaConsumer(
            *[feedback_topic(c) for c in self.codes],
            CASES_TOPIC,
            VISITS_TOPIC,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=1000,
            fetch_max_wait_ms=20,  # latency is measured: do not let the fetch wait long
            fetch_max_bytes=16 * 1024 * 1024,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="system-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def check(self) -> None:
        if self._task is not None and self._task.done():
            self._task.result()  # raises what stopped the watcher

    async def _run(self) -> None:
        import orjson

        from eropaf_contracts.topics import CASES_TOPIC, VISITS_TOPIC

        s = self.seen
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=10_000)
            now = time.time()
            for tp, records in batches.items():
                for record in records:
                    try:
                        value = orjson.loads(record.value or b"")
                    except orjson.JSONDecodeError:
                        continue
                    if not isinstance(value, dict):
                        continue
                    if tp.topic == CASES_TOPIC:
                        s.case_records += 1
                        self._case_event(value, now)
                    elif tp.topic == VISITS_TOPIC:
                        self._visit_event(value, now)
                    elif value.get("status") == "accepted":
                        s.feedback.setdefault(str(value.get("ce_id")), now)
                    else:
                        s.feedback_other += 1

    def _case_event(self, event: dict[str, Any], now: float) -> None:
        s = self.seen
        kind, data = str(event.get("type", "")), event.get("data") or {}
        ref = data.get("case_ref")
        if not isinstance(ref, str):
            return
        if kind.endswith(("case.opened", "case.updated")):
            refs = set(data.get("signal_refs") or ())
            for signal in refs:
                s.case.setdefault(signal, now)
            for previous in data.get("previous_case_refs") or ():
                if previous != ref:
                    s.renamed[previous] = ref
            s.case_signals[ref] = refs
        elif kind.endswith("outreach.decided") and ref not in s.decided:
            s.decided[ref] = set(s.case_signals.get(ref, ()))
            if data.get("outreach") == "home_visit":
                s.home_visit.add(ref)

    def _visit_event(self, event: dict[str, Any], now: float) -> None:
        s = self.seen
        kind, data = str(event.get("type", "")), event.get("data") or {}
        s.last_visits_event = now
        ref = data.get("case_ref")
        if not isinstance(ref, str):
            return
        if kind.endswith("visit.planned"):
            s.planned.setdefault(ref, now)
            if isinstance(data.get("visit_id"), str):
                s.visit_case.setdefault(data["visit_id"], ref)
        elif kind.endswith("case.unplanned"):
            s.unplanned.setdefault(ref, now)

    async def until(self, done: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            self.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout:.0f} s")
            await asyncio.sleep(0.2)


# -- the stack -------------------------------------------------------------------------------


class StackProbe:
    """Metrics, database state and process figures of a running `eropaf up`."""

    def __init__(self, info: dict[str, Any], server_url: str | None) -> None:
        self.info = info
        self.server_url = server_url
        self.pids = {name: s["pid"] for name, s in info["services"].items()}
        self.broker_pid = info["broker"].get("pid")
        self.postgres_pid = info["postgres"].get("pid")

    async def metrics(self, service: str) -> str:
        import httpx

        async with httpx.AsyncClient(base_url=self.info["services"][service]["url"]) as client:
            return (await client.get("/metrics", timeout=10)).text

    async def busy(self, services: Sequence[str]) -> float:
        """Consumer lag plus unpublished outbox rows of these services, now."""
        from eropaf_platform.local.service_process import metric_sum

        total = 0.0
        for name in services:
            page = await self.metrics(name)
            total += metric_sum(page, "eropaf_consumer_lag")
            total += metric_sum(page, "eropaf_outbox_backlog")
        return total

    async def replan_counters(self) -> dict[str, int]:
        """Scheduling's change counter, the counter its current plan was made for, and its
        open home-visit cases now."""
        import psycopg

        from eropaf_platform.db import libpq_url

        url = self.info["database_urls"]["scheduling"]
        async with await psycopg.AsyncConnection.connect(libpq_url(url)) as conn:
            cursor = await conn.execute("SELECT requested, planned FROM sched_replan")
            row = await cursor.fetchone()
            cursor = await conn.execute(
                "SELECT count(*) FROM sched_case WHERE outreach = 'home_visit' AND state = 'open'"
            )
            cases = await cursor.fetchone()
        if row is None:
            return {}
        return {
            "requested": row[0],
            "planned": row[1],
            "open_home_visit_cases": cases[0] if cases else 0,
        }

    def replans(self) -> list[dict[str, Any]]:
        """Scheduling's finished replans so far (its log): visits, backlog, solve seconds."""
        import orjson

        out = []
        log = Path(self.info["logs_dir"]) / "scheduling.log"
        try:
            lines = log.read_bytes().splitlines()
        except OSError:
            return []
        for line in lines:
            if b'"replanned"' not in line:
                continue
            with contextlib.suppress(orjson.JSONDecodeError):
                event = orjson.loads(line)
                out.append({k: event.get(k) for k in ("visits", "backlog", "solve_s", "timestamp")})
        return out

    async def scheduling_settled(self, case_records: int) -> bool:
        """Scheduling has consumed as many case events as the watcher saw (its lag metric
        may not know of the newest yet) and planned with every change that asked for it."""
        from eropaf_contracts.topics import CASES_TOPIC
        from eropaf_platform.local.service_process import metric_sum

        page = await self.metrics("scheduling")
        if metric_sum(page, "eropaf_messages_in_total", topic=CASES_TOPIC) < case_records:
            return False
        counters = await self.replan_counters()
        return bool(counters) and counters["requested"] == counters["planned"]

    def cpu(self) -> dict[str, Any]:
        from eropaf_platform.local.process import process_cpu_seconds

        reading: dict[str, Any] = {n: process_cpu_seconds(p) for n, p in self.pids.items()}
        reading["broker"] = process_cpu_seconds(self.broker_pid) if self.broker_pid else 0.0
        if self.postgres_pid:
            reading["postgres"] = tree_cpu_seconds(self.postgres_pid)
        elif self.server_url:
            names = [_database_of(u) for u in self.info["database_urls"].values()]
            reading["postgres"] = server_backend_cpu(self.server_url, names)
        reading["benchmark"] = process_cpu_seconds(os.getpid())
        # `eropaf up` itself: the supervisor, with the local SMTP sink on a thread of its own
        if supervisor := self.info.get("supervisor_pid"):
            reading["eropaf up (SMTP sink)"] = process_cpu_seconds(supervisor)
        return reading

    def peak_rss(self) -> dict[str, float]:
        out = {name: peak_rss_mb(pid) for name, pid in self.pids.items()}
        out["broker"] = peak_rss_mb(self.broker_pid)
        if self.postgres_pid:
            out["postgres (postmaster)"] = peak_rss_mb(self.postgres_pid)
        return out


def _database_of(url: str) -> str:
    from sqlalchemy.engine import make_url

    return str(make_url(url).database)


def cpu_used(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for name, value in after.items():
        if isinstance(value, dict):
            out[name] = cpu_delta(before.get(name, {}), value)
        else:
            out[name] = max(0.0, value - before.get(name, 0.0))
    return out


def read_mails(mail_dir: Path, since: float) -> list[tuple[float, str | None, str | None]]:
    """(accepted at, case ref, visit id) of every mail the sink accepted at or after ``since``
    (None where the mail names none)."""
    out = []
    for path in mail_dir.glob("*.eml"):
        at = accepted_at(path.name)
        if at is None or at < since:
            continue
        try:
            content = path.read_bytes()
        except OSError:
            continue
        out.append((at, mail_case(content), invited_visit(content)))
    return out


# -- the run ------------------------------------------------------------------------------


async def _publish(producer: Any, items: Sequence[Outgoing]) -> None:
    futures = [await producer.send(o.topic, o.value, key=o.key, headers=o.headers) for o in items]
    await asyncio.gather(*futures)


async def _quiet(
    probe: StackProbe, services: Sequence[str], timeout: float, *, also: Any = None
) -> bool:
    """Until these services have no lag and empty outboxes (and ``also()``), twice running;
    False when that did not happen within ``timeout``."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 2:
        if time.monotonic() > deadline:
            return False
        idle = await probe.busy(services) == 0 and (also is None or await also())
        quiet = quiet + 1 if idle else 0
        await asyncio.sleep(0.5)
    return True


async def _mail_quiet(mail_dir: Path, probe: StackProbe, timeout: float, quiet_s: float) -> bool:
    """Until notification has no lag and no new mail arrived for ``quiet_s``; False when mail
    still came after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_count, last_change = -1, time.monotonic()
    while True:
        count = await asyncio.to_thread(_count_mails, mail_dir)
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        if time.monotonic() - last_change >= quiet_s and await probe.busy(["notification"]) == 0:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.5)


async def settle(
    probe: StackProbe, mail_dir: Path, seen: Seen, timeout: float, *, quiet_s: float = 5.0
) -> dict[str, Any]:
    """Wait (at most ``timeout`` in all) until intake and matching are idle, scheduling has
    planned with every change and its events are out, and the mail has stopped. Returns when
    each of these was reached (None: not within the wait) and scheduling's counters."""
    begun = time.monotonic()
    flowing = await _quiet(probe, SERVICES[:2], timeout)
    left = max(1.0, timeout - (time.monotonic() - begun))
    planned = flowing and await _quiet(
        probe, SERVICES[:3], left, also=lambda: probe.scheduling_settled(seen.case_records)
    )
    await asyncio.sleep(0.5)  # the relay's last events reach the watcher
    planned_at = seen.last_visits_event if planned else None
    left = max(1.0, timeout - (time.monotonic() - begun))
    mailed = planned and await _mail_quiet(mail_dir, probe, left, quiet_s)
    return {
        "intake_matching_idle": flowing,
        "scheduling_settled": planned,
        "mail_settled": mailed,
        "planned_at": planned_at,
        "waited_s": round(time.monotonic() - begun, 1),
        "scheduling_counters": await probe.replan_counters(),
    }


def _count_mails(mail_dir: Path) -> int:
    return sum(1 for _ in mail_dir.glob("*.eml"))


def _uptime_load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def run_system(
    *,
    signals: int,
    steady_rate: int = STEADY_RATE,
    steady_seconds: int = STEADY_SECONDS,
    database_url: str | None = None,
    yardstick_messages: int = YARDSTICK_MESSAGES,
    yardstick_per_s: float | None = None,
    seed: int = 1,
    settle_s: float = SETTLE_S,
    keep: bool = False,
) -> dict[str, Any]:
    """One end-to-end run on a fresh `eropaf up` (``database_url``: an existing server)."""
    from eropaf_bench.data import signal_messages
    from eropaf_bench.database import drop_database
    from eropaf_bench.yardstick import bench_producer, run_yardstick
    from eropaf_cli.testing import start_stack, stop_stack
    from eropaf_demo.runner import _onboard
    from eropaf_demo.staff import import_roster, roster_path

    if yardstick_per_s is None:
        from eropaf_platform.local.broker import LocalBroker

        async with LocalBroker() as fresh:
            measured = await run_yardstick(
                fresh.bootstrap_servers, signal_messages(yardstick_messages)
            )
        yardstick_per_s = measured.end_to_end.msgs_per_s
    tmp = Path(tempfile.mkdtemp(prefix="eropaf-bench-system-"))
    data_dir = tmp / "data"
    extra = ("--database-url", database_url) if database_url else ()
    load_at_start = _uptime_load()
    stack = start_stack(data_dir, *extra, name="system")
    info = stack.info
    probe = StackProbe(info, database_url)
    bootstrap = info["bootstrap_servers"]
    mail_dir = Path(info["mail_dir"])
    watcher: Watcher | None = None
    producer = bench_producer(bootstrap)
    try:
        on_stack = await run_yardstick(bootstrap, signal_messages(yardstick_messages))
        # The roster goes in while the partners are onboarded (as the demo does).
        importing = asyncio.create_task(asyncio.to_thread(import_roster, data_dir, roster_path()))
        partners = await asyncio.to_thread(_onboard, data_dir, info)
        tokens, roster_note = await importing
        if tokens is None:
            raise RuntimeError(roster_note)
        import orjson

        secrets = orjson.loads((data_dir / "secrets.json").read_bytes())
        kafka_partners = {c: p for c, p in partners.items() if c != _http_partner()}
        steady_count = steady_rate * steady_seconds
        prepared_at = time.monotonic()
        workload = await asyncio.to_thread(
            make_workload,
            kafka_partners,
            secrets["pseudonym_key"],
            WARM_UP + signals + steady_count,
            seed=seed,
        )
        prepare_s = time.monotonic() - prepared_at
        warm = workload[:WARM_UP]
        steady = workload[WARM_UP : WARM_UP + steady_count]
        burst = workload[WARM_UP + steady_count :]

        watcher = Watcher(bootstrap, sorted(partners))
        await watcher.start()
        await producer.start()
        seen = watcher.seen

        # Warm-up: group joins, connections, first compilations; then everything quiet.
        await _publish(producer, warm)
        await watcher.until(
            lambda: all(o.ref in seen.case for o in warm), 180, "warm-up case events"
        )
        warm_up = await settle(probe, mail_dir, seen, settle_s, quiet_s=2.0)

        # Latency at a steady rate on the settled stack (what partners and staff see in
        # operation; measured after a burst it would time the burst's backlog): each signal
        # at its slot, timed from just before its send.
        sent: dict[str, float] = {}
        sent_ce: dict[str, float] = {}
        pending = []
        steady_cpu_before, steady_machine_before = probe.cpu(), _machine_busy()
        steady_start = time.perf_counter()
        for i, o in enumerate(steady):
            delay = steady_start + i / steady_rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[o.ref] = sent_ce[o.ce_id] = time.time()
            pending.append(await producer.send(o.topic, o.value, key=o.key, headers=o.headers))
        await asyncio.gather(*pending)
        sending_s = time.perf_counter() - steady_start
        achieved = len(steady) / sending_s if steady else 0.0
        # cores each process used while the signals flowed at the steady rate
        steady_cores = {
            name: round(seconds / sending_s, 3)
            for name, seconds in cpu_used(steady_cpu_before, probe.cpu()).items()
        }
        steady_cores["machine"] = round((_machine_busy() - steady_machine_before) / sending_s, 3)
        steady_refs = list(sent)
        with contextlib.suppress(TimeoutError):  # the ones missing count as beyond the wait
            await watcher.until(
                lambda: all(r in seen.case for r in steady_refs), settle_s, "steady case events"
            )
        after_steady = await settle(probe, mail_dir, seen, settle_s)
        steady_t0 = min(sent.values(), default=time.time())
        latency = steady_latencies(seen, sent, sent_ce, read_mails(mail_dir, steady_t0))

        # Throughput: everything at once.
        outcome_before = (len(seen.home_visit), len(seen.planned), len(seen.unplanned))
        cpu_before = probe.cpu()
        machine_before = _machine_busy()
        t0 = time.time()
        await _publish(producer, burst)
        published = time.time()
        refs = [o.ref for o in burst]
        ce_ids = [o.ce_id for o in burst]
        budget = max(300.0, signals / 20)
        await watcher.until(lambda: all(r in seen.case for r in refs), budget, "burst case events")
        await watcher.until(lambda: all(c in seen.feedback for c in ce_ids), 120, "burst feedback")
        after_burst = await settle(probe, mail_dir, seen, settle_s)
        cpu_s = cpu_used(cpu_before, probe.cpu())
        cpu_s["machine"] = _machine_busy() - machine_before
        burst_mails = read_mails(mail_dir, t0)
        case_end = max(seen.case[r] for r in refs)
        feedback_end = max(seen.feedback[c] for c in ce_ids)
        mail_end = max((at for at, _, _ in burst_mails), default=0.0)
        home_cases, planned_cases, backlog_cases = (
            now - before
            for now, before in zip(
                (len(seen.home_visit), len(seen.planned), len(seen.unplanned)),
                outcome_before,
                strict=True,
            )
        )
        load_after_burst = _uptime_load()
        peak_after_burst = probe.peak_rss()
        print(  # the burst's figures at once: a later phase may still fail
            f"burst of {signals:,}: case events after {case_end - t0:.1f} s, feedback after "
            f"{feedback_end - t0:.1f} s; peak RSS MB {peak_after_burst}; CPU s {cpu_s}",
            flush=True,
        )

        matching_page = await probe.metrics("matching")
        peak = probe.peak_rss()
        replans = probe.replans()
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()
        if watcher is not None:
            with contextlib.suppress(Exception):
                await watcher.stop()
        code = stop_stack(stack.process)
        if database_url:
            for url in info["database_urls"].values():
                with contextlib.suppress(Exception):
                    drop_database(database_url, _database_of(url))
        if keep:
            print(f"kept: {tmp} (logs, mail, stack output)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    from eropaf_platform.local.service_process import metric_sum

    def figure(end: float | None, reached: bool = True) -> dict[str, Any]:
        """From the first publish to ``end``; ``reached`` False: the stage had not finished
        within the wait, so the time is a lower bound (``end`` the latest seen)."""
        seconds = (end or 0.0) - t0
        per_s = signals / seconds if seconds > 0 and reached else 0.0
        return {
            "reached": reached,
            "seconds": round(seconds, 2) if end else None,
            "signals_per_s": round(per_s, 1),
            "ratio_to_yardstick": round(ratio(per_s, yardstick_per_s), 4),
        }

    run: dict[str, Any] = {
        "database": "server 127.0.0.1:5432 (eropaf up --database-url)"
        if database_url
        else "embedded (pgserver)",
        "signals": signals,
        "partners": len(kafka_partners),
        "up_ready_s": round(stack.seconds_to_ready, 1),
        "stop_exit_code": code,
        "yardstick_msgs_per_s": round(yardstick_per_s, 1),
        "yardstick_on_stack_broker_msgs_per_s": round(on_stack.end_to_end.msgs_per_s, 1),
        "yardstick_messages": yardstick_messages,
        "workload_prepare_s": round(prepare_s, 1),
        "throughput": {
            "publish": figure(published),
            "accepted_feedback": figure(feedback_end),
            "case_event": figure(case_end),
            "scheduling_settled": figure(
                max(after_burst["planned_at"] or seen.last_visits_event, case_end),
                after_burst["scheduling_settled"],
            ),
            "last_mail": figure(max(mail_end, case_end), after_burst["mail_settled"]),
        },
        "waits": {"warm_up": warm_up, "burst": after_burst, "steady": after_steady},
        "settle_budget_s": settle_s,
        "burst_outcome": {
            "home_visit_cases": home_cases,
            "cases_with_visit": planned_cases,
            "cases_to_backlog": backlog_cases,
            "mails": len(burst_mails),
            "other_feedback": seen.feedback_other,
        },
        "steady": {"rate_per_s": round(achieved, 1), "seconds": steady_seconds},
        "latency": latency,
        "cpu_s_per_1000_signals": {n: per_thousand(s, signals) for n, s in cpu_s.items()},
        "steady_cores_used": steady_cores,
        "peak_rss_mb": peak,
        "scheduling_replans": replans,
        "matching_state": {
            "linking_signals": metric_sum(matching_page, "eropaf_matching_linking_signals"),
            "cases_held": metric_sum(matching_page, "eropaf_matching_cases_held"),
        },
        "load": {"start": load_at_start, "after_burst": load_after_burst, "end": _uptime_load()},
    }
    run["floors_met"] = floors_of(run)
    return run


def steady_latencies(
    seen: Seen,
    sent: Mapping[str, float],
    sent_ce: Mapping[str, float],
    mails: Sequence[tuple[float, str | None, str | None]],
) -> dict[str, dict[str, Any]]:
    """Per stage, latencies (ms) of the steady phase's signals, and how many never arrived.

    A case's later stages are timed from its trigger: the latest publish among the case's
    signals when matching decided its outreach (the signal that made the decision). Per case
    decided in the steady phase: its first staff mail (mostly the coordinator's "new case"
    mail); per home-visit case: its first ``VisitPlanned`` or, capacity spent, its move to the
    backlog, and the first invitation for its visit. ``mails``: (accepted at, case ref, visit
    id) of the sink's mails."""
    feedback = [seen.feedback[c] - t for c, t in sent_ce.items() if c in seen.feedback]
    case = [seen.case[r] - t for r, t in sent.items() if r in seen.case]
    trigger: dict[str, float] = {}
    for case_ref, refs in seen.decided.items():
        times = [sent[r] for r in refs if r in sent]
        if times:
            trigger[case_ref] = max(times)
    origin = decided_as(seen)
    answered: dict[str, float] = {}
    planned: dict[str, float] = {}
    for source, into in (
        (seen.planned, planned),
        (seen.planned, answered),
        (seen.unplanned, answered),
    ):
        for ref, at in source.items():
            key = origin.get(ref, ref)
            into[key] = min(at, into.get(key, math.inf))
    first_mail: dict[str, float] = {}
    first_invite: dict[str, float] = {}
    for at, mailed, visit_id in mails:
        if mailed is not None:
            about = origin.get(mailed, mailed)
            first_mail[about] = min(at, first_mail.get(about, math.inf))
        visit_of = seen.visit_case.get(visit_id or "")
        if visit_of is not None:
            about = origin.get(visit_of, visit_of)
            first_invite[about] = min(at, first_invite.get(about, math.inf))
    home = [c for c in trigger if c in seen.home_visit]
    with_visit = [c for c in home if c in planned]

    def stage(
        ends: Mapping[str, float], cases: Sequence[str], starts: Mapping[str, float] = trigger
    ) -> dict[str, Any]:
        got = [(ends[c] - starts[c]) * 1000 for c in cases if c in ends]
        return latency_summary(got, missing=len(cases) - len(got))

    return {
        "accepted_feedback": latency_summary(
            [d * 1000 for d in feedback], missing=len(sent_ce) - len(feedback)
        ),
        "case_event": latency_summary([d * 1000 for d in case], missing=len(sent) - len(case)),
        "visit_planned_or_backlog": stage(answered, home),
        "visit_planned": stage(planned, with_visit),
        "staff_mail": stage(first_mail, list(trigger)),
        "visit_invite": stage(first_invite, with_visit),
        "invite_after_planned": stage(first_invite, with_visit, planned),
    }


def _machine_busy() -> float:
    from eropaf_platform.local.process import machine_busy_seconds

    return machine_busy_seconds()


def _http_partner() -> str:
    from eropaf_demo.simulate import HTTP_PARTNER

    return HTTP_PARTNER


# -- report ------------------------------------------------------------------------------


def section_of(run: Mapping[str, Any]) -> BenchSection:
    t = run["throughput"]
    return BenchSection(
        name=f"end to end through eropaf up ({run['database']})",
        figures=[
            Figure("partner publish", run["signals"], t["publish"]["seconds"]),
            Figure("publish -> last case event", run["signals"], t["case_event"]["seconds"]),
        ],
        notes=dict(run),
    )


def _ms(value: float | None, count: int = 1) -> str:
    if count == 0 and value == 0:
        return "        -"
    return "   beyond" if value is None else f"{value:>9,.0f}"


def describe(run: Mapping[str, Any]) -> str:
    t, lat = run["throughput"], run["latency"]
    lines = [
        f"end to end, {run['signals']:,} signals from {run['partners']} partners, PostgreSQL "
        f"{run['database']}; eropaf up ready in {run['up_ready_s']} s; yardstick "
        f"{run['yardstick_msgs_per_s']:,.0f} msg/s (on the stack's busy broker "
        f"{run['yardstick_on_stack_broker_msgs_per_s']:,.0f})"
    ]
    for key, label in (
        ("publish", "published"),
        ("accepted_feedback", "last accepted feedback"),
        ("case_event", "last case event"),
        ("scheduling_settled", "scheduling planned with all"),
        ("last_mail", "last e-mail accepted"),
    ):
        f = t[key]
        if not f["reached"]:
            lines.append(
                f"  {label:<30} not within the {run['settle_budget_s']:.0f} s wait "
                f"(scheduling counters {run['waits']['burst']['scheduling_counters']})"
            )
            continue
        lines.append(
            f"  {label:<30} {f['seconds']:>8.2f} s {f['signals_per_s']:>9,.0f} signals/s "
            f"{f['ratio_to_yardstick']:.3f} x yardstick"
        )
    o = run["burst_outcome"]
    lines.append(
        f"  burst: {o['home_visit_cases']:,} home-visit cases, {o['cases_with_visit']:,} with a "
        f"visit, {o['cases_to_backlog']:,} to the backlog, {o['mails']:,} mails"
    )
    lines.append(
        f"  at a steady {run['steady']['rate_per_s']}/s for {run['steady']['seconds']} s "
        "(ms; 'beyond': not reached within the wait):"
    )
    for key, label in (
        ("accepted_feedback", "to accepted feedback"),
        ("case_event", "to case event"),
        ("staff_mail", "to first staff e-mail"),
        ("visit_planned_or_backlog", "to visit planned/backlog"),
        ("visit_planned", "to visit planned"),
        ("visit_invite", "to visit invitation mail"),
        ("invite_after_planned", "VisitPlanned to invitation"),
    ):
        s = lat[key]
        lines.append(
            f"    {label:<26} n={s['count']:>5} (+{s['missing']} missing) p50 "
            f"{_ms(s['p50_ms'], s['count'])}  p95 {_ms(s['p95_ms'], s['count'])}  p99 "
            f"{_ms(s['p99_ms'], s['count'])}"
        )
    replans = run.get("scheduling_replans", [])
    counters = run["waits"]["steady"]["scheduling_counters"]
    lines.append(
        f"  scheduling: {len(replans)} replans finished, longest solve "
        f"{max((r['solve_s'] or 0 for r in replans), default=0):.1f} s; at the end "
        f"{counters.get('open_home_visit_cases')} open home-visit cases, change counter "
        f"{counters.get('requested')}, planned for {counters.get('planned')}"
    )
    lines.append("  peak RSS MB: " + ", ".join(f"{k} {v}" for k, v in run["peak_rss_mb"].items()))
    lines.append(
        "  CPU s per 1,000 signals (burst): "
        + ", ".join(f"{k} {v}" for k, v in run["cpu_s_per_1000_signals"].items())
    )
    lines.append(
        "  cores used while the steady rate flowed: "
        + ", ".join(f"{k} {v}" for k, v in run["steady_cores_used"].items())
    )
    lines.append(
        "  floors: "
        + ", ".join(f"{k} {'met' if ok else 'NOT met'}" for k, ok in run["floors_met"].items())
        + f"; load {run['load']}"
    )
    return "\n".join(lines)


async def run_settings(
    *,
    signals: int,
    steady_seconds: int,
    databases: Sequence[str],
    yardstick_messages: int,
    settle_s: float,
    steady_rate: int = STEADY_RATE,
    keep: bool = False,
    yardstick_per_s: float | None = None,
) -> list[dict[str, Any]]:
    runs = []
    for which in databases:
        runs.append(
            await run_system(
                signals=signals,
                steady_rate=steady_rate,
                steady_seconds=steady_seconds,
                database_url=SERVER_URL if which == "server" else None,
                yardstick_messages=yardstick_messages,
                yardstick_per_s=yardstick_per_s,
                settle_s=settle_s,
                keep=keep,
            )
        )
    return runs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--system-signals",
        type=int,
        default=None,
        help=f"signals in the end-to-end burst (default {DEFAULT_SIGNALS:,}; "
        f"--quick {QUICK_SIGNALS:,}; 0: skip)",
    )
    parser.add_argument(
        "--system-steady-seconds",
        type=int,
        default=None,
        help=f"seconds at {STEADY_RATE}/s (default {STEADY_SECONDS}; --quick "
        f"{QUICK_STEADY_SECONDS})",
    )
    parser.add_argument(
        "--system-database",
        choices=("both", "embedded", "server"),
        default="both",
        help="the embedded PostgreSQL, the server at 127.0.0.1:5432, or one after the other",
    )
    parser.add_argument(
        "--system-settle-s",
        type=float,
        default=None,
        help=f"how long to wait for scheduling and the mail after each phase (default "
        f"{SETTLE_S:.0f}; --quick {QUICK_SETTLE_S:.0f})",
    )
    parser.add_argument(
        "--system-keep",
        action="store_true",
        help="keep the end-to-end run's data directory (service logs, mail)",
    )


def databases_of(choice: str) -> list[str]:
    return ["embedded", "server"] if choice == "both" else [choice]


async def _standalone(args: argparse.Namespace) -> BenchReport:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    code_commit = commit()  # the code this run runs, before anyone commits meanwhile
    signals = args.system_signals or (QUICK_SIGNALS if args.quick else DEFAULT_SIGNALS)
    steady_s = args.system_steady_seconds or (
        QUICK_STEADY_SECONDS if args.quick else STEADY_SECONDS
    )
    runs = await run_settings(
        signals=signals,
        steady_seconds=steady_s,
        databases=databases_of(args.system_database),
        yardstick_messages=QUICK_YARDSTICK_MESSAGES if args.quick else YARDSTICK_MESSAGES,
        settle_s=args.system_settle_s or (QUICK_SETTLE_S if args.quick else SETTLE_S),
        keep=args.system_keep,
    )
    first = runs[0]
    report = BenchReport(
        started_at=started_at,
        machine=machine_info(),
        settings={
            "command": " ".join(["python -m eropaf_bench.system", *sys.argv[1:]]),
            "commit": code_commit,
            "broker": "eropaf up's local Tansu broker",
        },
        yardstick=[
            Figure(
                "end-to-end",
                first["yardstick_messages"],
                first["yardstick_messages"] / first["yardstick_msgs_per_s"],
            )
        ],
    )
    for run in runs:
        report.add_section(section_of(run))
        print(describe(run))
    if not args.no_write:
        print(f"written: {report.write(args.results_dir)}")
    return report


def commit() -> str:
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m eropaf_bench.system",
        description="The whole system through eropaf up: throughput, latency, memory, CPU.",
    )
    parser.add_argument("--quick", action="store_true", help="10,000 signals, 30 s steady")
    add_arguments(parser)
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    parser.add_argument("--no-write", action="store_true", help="do not write a results file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    report = asyncio.run(until_sigterm(_standalone(parse_args(argv))))
    return 0 if all(all(s.notes["floors_met"].values()) for s in report.sections) else 1


if __name__ == "__main__":
    sys.exit(main())
