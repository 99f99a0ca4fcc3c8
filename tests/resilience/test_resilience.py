"""Resilience: a month of signals from the region's partners through all four services (a real
`eropaf up`, the real local broker, PostgreSQL, SMTP) while things go wrong, compared with an
undisturbed run of the same month.

The input is `eropaf simulate`'s month (seeded: the same messages every time), signed as the
partners sign, over Kafka and the HTTP channel, bad input and the partners' own resends
included. The stack runs on the machine's PostgreSQL server (`eropaf up --database-url`, a
database per service and run, dropped afterwards) and an SMTP server in this test
(`eropaf up --smtp-server`). While the month streams in, the disturbed run:

- kills each service in turn with SIGKILL in the middle of its work (the supervisor restarts it);
- makes PostgreSQL unreachable for ten seconds (the services reach it through a TCP proxy in
  this test, which drops every connection and refuses new ones; the machine's server is never
  touched);
- has the SMTP server refuse (451) for a while;
- delivers some partner messages twice (same record, same ce_id) and has a partner resend a
  whole batch;
- kills the whole stack (`eropaf up`) with SIGKILL and starts it again on the same data
  directory: the local broker comes back empty, and what it had not yet handed to intake the
  partner sends again;
- puts a message that is no event at all on every internal topic.

The undisturbed run goes on beside the disturbed one (two stacks at once, on a thread of
its own). Then both runs must agree: every partner message one feedback, every accepted
signal in one case, no visit and no e-mail twice, each poison message in its topic's DLQ with
the cause, and the same end state: cases with their signals and decisions, visits, the
unplanned cases, the DDAS export of every municipality, and the e-mail per recipient (by
Message-ID).

What makes the end state comparable:

- moments (`decided_at`, `updated_at`, ...) are left out; dates stay (both runs are on the same
  day: a run across midnight may differ);
- the disturbed run uses the undisturbed run's secrets, so the pseudonyms (signal, household
  and case refs) are the same;
- matching's cases do not depend on the order signals arrive in, but a payment does depend on
  whether the household's other signals are in yet (a fully paid case closes; a later signal
  opens a new one): resolutions are sent once every signal is handled;
- planning does depend on order (a plan keeps what earlier plans announced): the roster comes
  without debt counsellors first, so no duo exists and nothing is planned while signals come
  in, and complete once all is handled: one plan of the whole month, deterministic (CP-SAT,
  one worker, fixed seed). Each unplanned case alerts its coordinator once, whenever it is
  found unplanned, with the deadline it has then (in the alert's Message-ID too), and again
  when that deadline changed meanwhile, which depends on when a replan saw the case: compared
  is whether each case and attempt was alerted;
- two resolutions of one case come in any order (from two partners): the creditors a
  closed case last had a decision for are not compared;
- the day a case's outreach was first planned depends on when its household's signals met (a
  letter decided before the next signal made it a home visit keeps its day): compared is
  whether it was planned;
- and so does whether it was: a later-dated signal that comes in alone may get a phone call
  or a letter, a task planned the day it is decided, before the earlier-dated one joins and
  makes the case a home visit; a case's progress never goes back, so it stays planned
  without a visit, while in the other run the same case was a home visit from the start
  and waits for one. A case whose outreach ends as a home visit without any visit, and which
  scheduling told planned (from its outbox: a task), is compared as the case it is without
  that task, once checked that matching has it planned too (`superseded_task`);
- reminders and digests follow the clock: their job is off (`EROPAF_JOBS_INTERVAL_S`).

Mail accepted twice by the SMTP server with the same Message-ID (notification killed between
sending and recording it: the documented window) is counted in the table, not failed on; a
second e-mail for the same fact has another Message-ID and fails the comparison.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from psycopg import sql
from psycopg.rows import dict_row
from sqlalchemy.engine import make_url

from eropaf_cli.stack import read_stack_info, service_ready
from eropaf_cli.testing import RunningStack, start_stack, stop_stack, tail
from eropaf_contracts.envelope import Envelope as EventEnvelope
from eropaf_contracts.events import OutreachKind, OutreachPlanned
from eropaf_contracts.topics import (
    CASES_TOPIC,
    CREDITOR_FEEDBACK_TOPIC,
    INTAKE_SIGNALS_TOPIC,
    INTERNAL_TOPICS,
    NOTIFICATION_DELIVERIES_TOPIC,
    STAFF_TOPIC,
    VISITS_TOPIC,
    feedback_topic,
    signals_topic,
)
from eropaf_demo.replay import PartnerAccess, Publisher
from eropaf_demo.runner import _onboard_at_once
from eropaf_demo.simulate import Month, PartnerMessage, simulate_month
from eropaf_demo.stack import eropaf_here
from eropaf_demo.staff import read_roster, roster_path
from eropaf_platform.db import libpq_url
from eropaf_platform.local.ports import free_port
from eropaf_platform.local.process import pid_alive
from eropaf_platform.outbox import EVENT_ID_HEADER
from eropaf_platform.testing.wait import WaitTimeout, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(900 + int(os.environ.get("RESILIENCE_SIGNALS", "3000")) // 2),
]

T = TypeVar("T")
TERMINAL = ("accepted", "duplicate", "rejected")


class Background:
    """An event loop on a thread of its own: the proxy and the partners live there while the
    test (synchronous) starts, kills and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 180) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


# -- PostgreSQL behind a proxy the test can cut --------------------------------------------


class CuttableProxy:
    """TCP proxy to PostgreSQL. `cut()` drops every connection at once (both ends, so the
    server ends their transactions) and refuses new ones until `restore()`."""

    def __init__(self, background: Background, host: str, port: int) -> None:
        self.background = background
        self.target = (host, port)
        self.port = 0
        self.refusing = False
        self.connections = 0
        self.dropped = 0
        self.refused = 0
        self._live: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._server: asyncio.Server | None = None

    def start(self) -> int:
        async def serve() -> int:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            return int(self._server.sockets[0].getsockname()[1])

        self.port = self.background.run(serve())
        return self.port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._live.add(pair)
        self.connections += 1

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()

        # One side gone is both gone: a killed service's server session must end too (an
        # open transaction of it would hold back every outbox relay on the server).
        pipes = [
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        ]
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._live.discard(pair)
            writer.transport.abort()
            up_writer.transport.abort()
            for task in pipes:
                task.cancel()

    def cut(self) -> int:
        async def drop() -> int:
            self.refusing = True
            pairs = list(self._live)
            for client, server in pairs:
                client.transport.abort()
                server.transport.abort()
            self.dropped += len(pairs)
            return len(pairs)

        return self.background.run(drop())

    def restore(self) -> None:
        self.refusing = False

    def stop(self) -> None:
        async def close() -> None:
            self.refusing = True
            for client, server in list(self._live):
                client.transport.abort()
                server.transport.abort()
            if self._server is not None:
                self._server.close()

        self.background.run(close())


# -- an SMTP server that can refuse ---------------------------------------------------------


@dataclass
class Mail:
    recipient: str
    message_id: str
    subject: str


class RefusingSmtp:
    """SMTP server keeping what it accepts in memory; while `refusing`, every recipient is
    answered 451 (a temporary refusal: the sender must try again later)."""

    def __init__(self) -> None:
        self.refusing = False
        self.refused = 0
        self.mail: list[Mail] = []
        self.port = free_port("127.0.0.1")
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RefusingSmtp:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refusing:
            self.refused += 1
            return "451 4.3.2 not accepting mail right now"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        headers = BytesHeaderParser().parsebytes(content)
        for recipient in envelope.rcpt_tos:
            self.mail.append(
                Mail(recipient.lower(), str(headers["Message-ID"]), str(headers["Subject"]))
            )
        return "250 OK"


# -- the partners' side ----------------------------------------------------------------------


@dataclass
class Sent:
    seq: int
    ce_id: str | None  # None: a row of the HTTP channel
    chunk: str
    broker: int  # which incarnation of the local broker it went to


@dataclass
class PartnerSide:
    """Sends the month's messages as the partners do and reads the feedback they get."""

    month: Month
    access: dict[str, PartnerAccess]
    sent: list[Sent] = field(default_factory=list)
    http_results: dict[int, dict[str, Any]] = field(default_factory=dict)
    http_retries: int = 0
    feedback: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    lifecycle: Counter[str] = field(default_factory=Counter)
    broker: int = 0
    _publisher: Publisher | None = None
    _consumer: Any = None
    _task: asyncio.Task[None] | None = None
    _seen_events: set[str] = field(default_factory=set)

    async def connect(self, info: dict[str, Any]) -> None:
        """Connect to the stack's broker (a new incarnation after a whole-stack restart)."""
        from aiokafka import AIOKafkaConsumer

        from eropaf_platform.broker import ensure_topics
        from eropaf_platform.settings import ServiceSettings

        await self.disconnect()
        self.broker += 1
        self.feedback = defaultdict(list)
        self.lifecycle = Counter()
        self._seen_events = set()
        bootstrap = info["bootstrap_servers"]
        # A broker that forgot everything has no partner topics: the partners' side makes
        # them (as onboarding did), so that publishing does not wait for intake to.
        settings = ServiceSettings(
            service_name="partners", database_url="unused", kafka_bootstrap_servers=bootstrap
        )
        codes = sorted(self.access)
        await ensure_topics(
            settings, [t for c in codes for t in (signals_topic(c), feedback_topic(c))]
        )
        self._publisher = Publisher(bootstrap, info["intake_url"], self.access)
        await self._publisher.start()
        self._consumer = AIOKafkaConsumer(
            *[feedback_topic(c) for c in codes],
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=1000,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())

    async def disconnect(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        for client in (self._consumer, self._publisher):
            if client is not None:
                # A client of a broker that is gone may fail or hang while stopping.
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    async with asyncio.timeout(10):
                        await client.stop()
        self._consumer = self._publisher = None

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=300, max_records=5000)
            for records in batches.values():
                for record in records:
                    headers = dict(record.headers or ())
                    event_id = (headers.get(EVENT_ID_HEADER) or b"").decode()
                    # A relay that republishes its outbox to a new broker sends rows again:
                    # the event id tells a copy from a second feedback.
                    if event_id and event_id in self._seen_events:
                        continue
                    self._seen_events.add(event_id)
                    value = json.loads(record.value)
                    status = value.get("status")
                    if status in TERMINAL:
                        self.feedback[str(value.get("ce_id"))].append(status)
                    else:
                        self.lifecycle[str(status)] += 1

    async def send(
        self, messages: Sequence[PartnerMessage], chunk: str, *, twice: Iterable[int] = ()
    ) -> list[Sent]:
        """Kafka messages at once; the HTTP partner's rows as one CSV export (posted again
        until intake answers: a partner retries a failed upload). `twice`: seqs whose very
        record goes out twice (same ce_id), as a producer retry does."""
        assert self._publisher is not None
        twice = set(twice)
        out: list[Sent] = []
        pending = []
        producer = self._publisher._producer
        for m in messages:
            if m.channel != "kafka":
                continue
            key, value, headers = self._publisher._message(m)
            ce_id = dict(headers)["ce_id"].decode()
            for _ in range(2 if m.seq in twice else 1):
                pending.append(
                    await producer.send(
                        signals_topic(m.partner), value=value, key=key, headers=headers
                    )
                )
            out.append(Sent(m.seq, ce_id, chunk, self.broker))
        await asyncio.gather(*pending)
        rows = [m for m in messages if m.channel == "http"]
        if rows:
            deadline = time.monotonic() + 120
            while True:
                try:
                    await self._publisher.send_http_csv(rows[0].partner, rows)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    self.http_retries += 1
                    await asyncio.sleep(0.5)
            for m in rows:
                self.http_results[m.seq] = self._publisher.http_feedback[m.seq]
                out.append(Sent(m.seq, None, chunk, self.broker))
        self.sent.extend(out)
        return out

    def answered(self, sent: Iterable[Sent]) -> int:
        return sum(1 for s in sent if s.ce_id is None or self.feedback.get(s.ce_id))


# -- the services' databases -----------------------------------------------------------------


def direct_urls(info: dict[str, Any], server_url: str) -> dict[str, str]:
    """Each service's database on the server itself (the test reads past the proxy)."""
    server = make_url(server_url)
    return {
        name: libpq_url(
            server.set(database=make_url(url).database).render_as_string(hide_password=False)
        )
        for name, url in info["database_urls"].items()
    }


# The test's own connections, one per database, kept open: the waits poll several times a
# second, and a connection per query costs the server a process each time.
_connections: dict[str, psycopg.Connection[dict[str, Any]]] = {}
_connections_lock = threading.Lock()


def query(url: str, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with _connections_lock:
        conn = _connections.get(url)
        if conn is None or conn.closed:
            conn = psycopg.connect(url, row_factory=dict_row, autocommit=True, connect_timeout=10)
            _connections[url] = conn
    return list(conn.execute(sql, params or {}).fetchall())


def disconnect(urls: Iterable[str]) -> None:
    with _connections_lock:
        for url in urls:
            conn = _connections.pop(url, None)
            if conn is not None:
                conn.close()


def scalar(url: str, sql: str) -> Any:
    rows = query(url, sql)
    return next(iter(rows[0].values())) if rows else None


PENDING_MAIL = "SELECT count(*) FROM notification_intent WHERE status = 'pending'"


def progress(urls: dict[str, str], smtp: RefusingSmtp) -> tuple[Any, ...]:
    """What changes while the system still works; equal twice a few seconds apart (and no
    event waiting in any outbox, no mail owed) means it is done."""
    unpublished = sum(
        int(
            scalar(
                url,
                "SELECT count(*) FROM outbox_message m JOIN outbox_position p "
                "ON p.name = 'relay' AND (m.tx, m.seq) > (p.tx, p.seq)",
            )
            or 0
        )
        for url in urls.values()
    )
    return (
        unpublished,
        scalar(urls["notification"], PENDING_MAIL),
        scalar(urls["intake"], "SELECT count(*) FROM processed_message"),
        scalar(urls["matching"], "SELECT count(*) FROM processed_message"),
        scalar(urls["scheduling"], "SELECT count(*) FROM processed_message"),
        scalar(urls["notification"], "SELECT count(*) FROM processed_message"),
        scalar(urls["scheduling"], "SELECT requested - planned FROM sched_replan"),
        scalar(urls["scheduling"], "SELECT count(*) FROM sched_visit"),
        len(smtp.mail),
    )


def settled(
    urls: dict[str, str], smtp: RefusingSmtp, *, quiet_s: float = 3.0
) -> Callable[[], bool]:
    last: list[Any] = [None, 0.0]

    def check() -> bool:
        now = progress(urls, smtp)
        idle = now[0] == 0 and now[1] == 0 and now[6] in (0, None)
        if now != last[0] or not idle:
            last[0], last[1] = now, time.monotonic()
            return False
        return time.monotonic() - last[1] >= quiet_s

    return check


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# Moments, not facts: they differ between any two runs of the same input.
VOLATILE = frozenset(
    {"decided_at", "updated_at", "changed_at", "requested_at", "created_at", "aanleverdatumEnTijd"}
)


def without_moments(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_moments(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [without_moments(v) for v in value]
    return value


def outreach_told(scheduling_url: str) -> set[str]:
    """The cases (by their current ref) scheduling told OutreachPlanned for, under their ref
    or one they had before: from its outbox, where every event it told is."""
    renamed = {
        r["old_ref"]: r["case_ref"]
        for r in query(scheduling_url, "SELECT old_ref, case_ref FROM sched_case_alias")
    }
    found: set[str] = set()
    for row in query(
        scheduling_url,
        "SELECT value FROM outbox_message WHERE topic = %(topic)s",
        {"topic": VISITS_TOPIC},
    ):
        envelope = EventEnvelope.from_bytes(bytes(row["value"]))
        if envelope.type == OutreachPlanned.EVENT_TYPE:
            ref = envelope.payload(OutreachPlanned).case_ref
            found.add(renamed.get(ref, ref))
    return found


def superseded_task(case: dict[str, Any], planning: dict[str, Any] | None) -> None:
    """Compare a case planned without a visit whose outreach is now a home visit (it was
    planned as a task, a phone call or a letter, before it became one) as the case it is
    without that task, once checked that matching and scheduling both have it planned.

    A task is planned the day it is decided and a case's progress never goes back, so such
    a case stays `outreach_planned` without a visit. Whether the household's signals met a
    task decision on the way depends on the order they arrived in (a later-dated signal
    alone may get a letter; with the earlier one in first, the case is a home visit from
    the start): in the other run the same case may never have had a task."""
    if planning is None or planning["outreach"] != OutreachKind.HOME_VISIT.value:
        return
    if not case.get("outreach_planned_on"):
        case["outreach_planned_on"] = "scheduling told it planned, matching has it not"
        return
    case["outreach_planned_on"] = False
    if case["state"] == "outreach_planned":
        case["state"] = "open"
    planning["outreach_planned"] = planning["outreach_planned"] is not True and (
        "matching has outreach planned, scheduling's mark is not set"
    )


def end_state(urls: dict[str, str], smtp: RefusingSmtp, ddas: dict[str, Any]) -> dict[str, Any]:
    """Cases, visits, the DDAS export and the mail per recipient, with moments left out."""
    # When outreach was first planned depends on when a household's signals met: a letter
    # decided before its next signal made the case a home visit keeps the letter's day.
    # Compared: whether it was planned.
    cases = {
        r["case_id"]: _plain(
            without_moments(r) | {"outreach_planned_on": r["outreach_planned_on"] is not None}
        )
        for r in query(
            urls["matching"],
            "SELECT case_id, gemeentecode, state, opened_on, opgepakt_on, outreach_planned_on, "
            "resultaat, closed_on, decision, routing, herhaalde_meldingen FROM match_case",
        )
    }
    signals: dict[str, list[Any]] = defaultdict(list)
    for r in query(
        urls["matching"],
        "SELECT case_id, signal_ref, resolved_on FROM case_signal ORDER BY signal_ref",
    ):
        signals[r["case_id"]].append([r["signal_ref"], _plain(r["resolved_on"])])
    for case_id, rows in signals.items():
        cases.setdefault(case_id, {})["signals"] = rows
    visits = sorted(
        (
            _plain(r)
            for r in query(
                urls["scheduling"],
                'SELECT case_ref, attempt, datum, part, "window", staff, status, sequence '
                "FROM sched_visit",
            )
        ),
        key=lambda v: (v["case_ref"], v["attempt"], v["datum"], v["part"]),
    )
    planning = {
        r["case_ref"]: _plain(r)
        for r in query(
            urls["scheduling"],
            "SELECT case_ref, gemeentecode, team, outreach, urgency, deadline, priority, "
            "partner_codes, state, attempt, not_before, avoid_parts, resultaat, "
            "outreach_planned FROM sched_case",
        )
    }
    for plan in planning.values():
        if plan["state"] == "closed":
            # the creditors with an open signal when it was last decided: a closed case's
            # depend on the order its resolutions came in, which no partner keeps
            plan["partner_codes"] = None
    backlog = sorted(
        (
            _plain(r)
            for r in query(
                urls["scheduling"],
                "SELECT case_ref, deadline, attempt, reason FROM sched_backlog",
            )
        ),
        key=lambda b: b["case_ref"],
    )
    for ref in outreach_told(urls["scheduling"]) - {v["case_ref"] for v in visits}:
        superseded_task(cases[ref], planning.get(ref))
    # An alert about an unplanned case names its deadline when it was found unplanned (and
    # so does its Message-ID): compared is whether the case and attempt were alerted (a
    # deadline changed while the case waited gives one more alert, depending on when the
    # replan saw it).
    unplanned = {
        f"<{r['notification_id']}@eropaf.local>": r["fact"].rsplit(":", 1)[0]
        for r in query(
            urls["notification"],
            "SELECT notification_id, fact FROM notification_intent WHERE kind = 'case_unplanned'",
        )
    }
    mail: dict[str, list[str]] = defaultdict(list)
    alerted: set[tuple[str, str]] = set()
    for recipient, message_id, subject in {
        (m.recipient, m.message_id, m.subject) for m in smtp.mail
    }:
        entry = f"{unplanned.get(message_id, message_id)} {subject}"
        if message_id in unplanned:
            if (recipient, entry) in alerted:
                continue
            alerted.add((recipient, entry))
        mail[recipient].append(entry)
    return {
        "cases": cases,
        "planning": planning,
        "visits": visits,
        "backlog": backlog,
        "ddas": without_moments(ddas),
        "mail": {r: sorted(ms) for r, ms in sorted(mail.items())},
    }


def differences(expected: Any, actual: Any, path: str = "", limit: int = 12) -> list[str]:
    """Where two end states differ (the first `limit` places)."""
    out: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if len(out) >= limit or a == b:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b), key=str):
                if len(out) >= limit:
                    return
                if key not in b:
                    out.append(f"{where}/{key}: only in the undisturbed run")
                elif key not in a:
                    out.append(f"{where}/{key}: only in the disturbed run")
                else:
                    walk(a[key], b[key], f"{where}/{key}")
            return
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{where}[{i}]")
            return
        if isinstance(a, list) and isinstance(b, list) and all(isinstance(x, dict) for x in a + b):
            only_a = [x for x in a if x not in b]
            only_b = [x for x in b if x not in a]
            out.append(f"{where}: only undisturbed {only_a[:3]}, only disturbed {only_b[:3]}")
            return
        out.append(f"{where}: {str(a)[:200]} != {str(b)[:200]}")

    walk(expected, actual, path)
    return out


# -- the runs ------------------------------------------------------------------------------------

SEED = 17
# The month's size (messages: signals, resolutions, bad input), several thousand within the
# suite's time budget (about four minutes on two busy cores); RESILIENCE_SIGNALS sets another.
SIGNALS = int(os.environ.get("RESILIENCE_SIGNALS", "3000"))
# RESILIENCE_KEEP=DIR: the runs' databases are kept (not dropped) and both end states are
# written to DIR, to look into a difference.
KEEP = Path(os.environ["RESILIENCE_KEEP"]) if os.environ.get("RESILIENCE_KEEP") else None
CHUNKS = 10
# The longest a run may take to settle after the signals, the resolutions or the plan.
SETTLE_S = 180 + SIGNALS / 5
TODAY = date.today()
GEMEENTEN = ("0321", "0331", "0353", "0356", "1961")

# Settings the test gives every service through `eropaf up`'s environment: shorter waits, the
# same behaviour.
STACK_ENV = {
    # a consumer back from a database outage goes on within two seconds, not ten
    "EROPAF_RETRY_MAX_BACKOFF_S": "2",
    # mail the SMTP server refused is tried again within seconds, not after half a minute
    "EROPAF_RETRY_FIRST_S": "0.5",
    "EROPAF_RETRY_LONGEST_S": "2",
    # mail a killed notification had claimed is claimed again after 10 s, not 2 minutes
    "EROPAF_DELIVERY_LEASE_S": "10",
    # reminders and digests depend on the hour of the day: their job does not run here
    "EROPAF_JOBS_INTERVAL_S": "3600",
    # the month's one plan in seconds on a busy machine (still deterministic: a fixed budget)
    "EROPAF_SOLVER_DETERMINISTIC_TIME": "0.5",
}


@functools.cache
def the_month() -> Month:
    return simulate_month(seed=SEED, signals=SIGNALS, today=TODAY)


def rosters(directory: Path) -> tuple[Path, Path]:
    """The demo roster in two steps: without the debt counsellors (no duo can be formed, so
    nothing is planned while the signals stream in), then complete. The coordinator serves
    two municipalities only, which keeps the alerts about unplanned cases to a few hundred."""
    rows = read_roster(roster_path())
    for row in rows:
        if row["rol"] == "coordinator":
            row["gemeenten"] = "0331|1961"

    def write(name: str, chosen: list[dict[str, str]]) -> Path:
        path = directory / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=";")
            writer.writeheader()
            writer.writerows(chosen)
        return path

    first = write("roster-first.csv", [r for r in rows if r["rol"] != "schuldhulpverlener"])
    return first, write("roster-full.csv", rows)


def chunks() -> list[list[PartnerMessage]]:
    """The month's signals (bad input and the partners' own resends included) in order, in
    CHUNKS parts; resolutions come after them (see the module docstring)."""
    signals = [m for m in the_month().messages if m.kind == "signal"]
    size = -(-len(signals) // CHUNKS)
    return [signals[i : i + size] for i in range(0, len(signals), size)]


def resolutions() -> list[PartnerMessage]:
    return [m for m in the_month().messages if m.kind == "resolution"]


def eropaf_ok(*args: str) -> str:
    done = eropaf_here(*args)
    assert done.returncode == 0, f"eropaf {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


@dataclass
class Run:
    """One run of the month against its own `eropaf up` (own data dir and databases)."""

    name: str
    directory: Path
    server_url: str
    background: Background
    secrets_from: Path | None = None
    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data_dir = self.directory / "data"
        self.data_dir.mkdir(parents=True)
        if self.secrets_from is not None:
            # The same pseudonym key: signal, household and case refs come out the same.
            shutil.copy(self.secrets_from, self.data_dir / "secrets.json")
        server = make_url(self.server_url)
        if not server.host or server.host.startswith("/"):
            pytest.fail(f"the resilience suite needs PostgreSQL over TCP, not {self.server_url}")
        self.proxy = CuttableProxy(self.background, server.host, server.port or 5432)
        self.proxy.start()
        self.smtp = RefusingSmtp().start()
        self.roster_first, self.roster_full = rosters(self.directory)
        self.stack: RunningStack | None = None
        self.partners: PartnerSide | None = None
        self.urls: dict[str, str] = {}
        self.databases: set[str] = set()
        self.started = time.monotonic()

    def note(self, section: str, what: str, figure: object) -> None:
        self.rows.append((section, what, str(figure)))
        self.log(f"{what}: {figure}")

    def log(self, text: str) -> None:
        # Not to sys.stdout: an in-process `eropaf` command of the other run's thread may
        # have it redirected to take its output.
        line = f"[{time.monotonic() - self.started:6.1f} s] {self.name}: {text}"
        print(line, file=sys.__stdout__, flush=True)

    def up(self, name: str = "up") -> dict[str, Any]:
        proxied = make_url(self.server_url).set(host="127.0.0.1", port=self.proxy.port)
        self.stack = start_stack(
            self.data_dir,
            "--database-url", proxied.render_as_string(hide_password=False),
            "--smtp-server", self.smtp.address,
            name=name, env=STACK_ENV,
        )  # fmt: skip
        self.urls = direct_urls(self.stack.info, self.server_url)
        self.databases |= {
            make_url(u).database or "" for u in self.stack.info["database_urls"].values()
        }
        return self.stack.info

    def start(self) -> None:
        info = self.up()
        access = self.background.run(_onboard_at_once(self.data_dir, info))
        self.partners = PartnerSide(the_month(), access)
        eropaf_ok("staff", "import", str(self.roster_first), "--data-dir", str(self.data_dir))
        self.background.run(self.partners.connect(info))

    def send(self, messages: Sequence[PartnerMessage], chunk: str, **kw: Any) -> list[Sent]:
        assert self.partners is not None
        sent = self.background.run(self.partners.send(messages, chunk, **kw))
        self.log(f"sent batch {chunk}: {len(sent)} messages")
        return sent

    def send_later(self, messages: Sequence[PartnerMessage], chunk: str) -> Any:
        assert self.partners is not None
        return asyncio.run_coroutine_threadsafe(
            self.partners.send(messages, chunk), self.background.loop
        )

    def answered(self, sent: Sequence[Sent], expected: int | None = None) -> Callable[[], bool]:
        assert self.partners is not None
        partners = self.partners
        return lambda: partners.answered(sent) >= (len(sent) if expected is None else expected)

    def settle(self, what: str, timeout: float = SETTLE_S) -> None:
        self.log(f"settling after {what}")
        wait_until(settled(self.urls, self.smtp), timeout=timeout, interval=0.5,
                   message=f"{self.name}: not settled after {what}")  # fmt: skip
        self.log(f"settled after {what}")

    def finish(self) -> dict[str, Any]:
        """After the signals: settle, the resolutions, the complete roster and its plan; the
        end state."""
        assert self.partners is not None
        self.settle("the signals")
        sent = self.send(resolutions(), "resolutions")
        wait_until(self.answered(sent), timeout=120, interval=0.2)
        self.settle("the resolutions")
        eropaf_ok("staff", "import", str(self.roster_full), "--data-dir", str(self.data_dir))
        self.settle("the complete roster's plan")
        month = the_month()
        ddas = {}
        period = ("--from", month.start.isoformat(), "--to", (TODAY + timedelta(90)).isoformat())
        for gemeente in GEMEENTEN:
            out = eropaf_ok(
                "ddas", "export", "--gemeente", gemeente, *period, "--data-dir", str(self.data_dir)
            )
            ddas[gemeente] = json.loads(out)
        return end_state(self.urls, self.smtp, ddas)

    def answers(self) -> dict[str, Counter[str]]:
        """The answers the partners got for each signal (by signal_ref), over every copy
        they sent: Kafka feedback and HTTP results."""
        from eropaf_intake.domain.match_tokens import signal_ref

        assert self.partners is not None
        by_seq = {m.seq: m for m in the_month().messages}
        key = json.loads((self.data_dir / "secrets.json").read_text())["pseudonym_key"].encode()
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for s in self.partners.sent:
            m = by_seq[s.seq]
            if m.kind != "signal" or m.signal_id is None or m.bad is not None:
                continue
            statuses = (
                [self.partners.http_results[s.seq]["status"]]
                if s.ce_id is None
                else self.partners.feedback.get(s.ce_id, [])
            )
            out[signal_ref(key, m.partner, m.signal_id)].update(statuses)
        return out

    def accepted_refs(self) -> set[str]:
        """Signals intake took in: answered `accepted`, or `duplicate` (a copy of one taken in
        before, e.g. a retried upload whose first answer was lost)."""
        return {
            ref for ref, said in self.answers().items() if said["accepted"] or said["duplicate"]
        }

    def stop(self) -> None:
        if self.partners is not None:
            with contextlib.suppress(Exception):
                self.background.run(self.partners.disconnect(), timeout=30)
        if self.stack is not None:
            code = stop_stack(self.stack.process)
            self.stack_exit = (code, tail(self.stack.output))
        self.smtp.stop()
        self.proxy.stop()
        disconnect(self.urls.values())
        if KEEP is not None:
            self.log(f"databases kept: {sorted(self.databases)}")
            return
        with psycopg.connect(libpq_url(self.server_url), autocommit=True) as conn:
            for name in sorted(self.databases):
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


@dataclass(frozen=True)
class Undisturbed:
    state: dict[str, Any]
    accepted: int
    seconds: float


class Reference:
    """The month, undisturbed, on a thread of its own while the disturbed run goes on: the
    suite takes about as long as the longer of the two runs. Its stack is up (and so its
    secrets are there) once this is made."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.secrets = run.directory / "secrets.json"
        shutil.copy(run.data_dir / "secrets.json", self.secrets)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="undisturbed")
        self._future = self._executor.submit(self._month)

    def _month(self) -> Undisturbed:
        try:
            for i, chunk in enumerate(chunks()):
                self.run.send(chunk, str(i))
            state = self.run.finish()
            seconds = time.monotonic() - self.run.started
            return Undisturbed(state, len(self.run.accepted_refs()), seconds)
        finally:
            self.run.stop()  # its stack no longer takes a share of the machine

    def result(self) -> Undisturbed:
        return self._future.result(timeout=SETTLE_S * 3 + 300)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._future.result(timeout=SETTLE_S * 3 + 300)
        self._executor.shutdown(wait=False)


@pytest.fixture(scope="module")
def background() -> Iterator[Background]:
    loop = Background()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, postgres_server_url: str, background: Background
) -> Iterator[Reference]:
    """The month, undisturbed: the end state every disturbed run must reach."""
    the_month()  # made once, before two threads need it
    run = Run(
        "undisturbed", tmp_path_factory.mktemp("undisturbed"), postgres_server_url, background
    )
    try:
        run.start()
    except BaseException:
        run.stop()
        raise
    reference = Reference(run)
    yield reference
    reference.close()


# -- the disturbed run ---------------------------------------------------------------------------


def kill_service(run: Run, name: str, busy: Callable[[], bool], what: str) -> None:
    """SIGKILL one service once `busy()` says it is in the middle of its work; wait until the
    supervisor has it running and ready again."""
    run.log(f"waiting for {name}: {what}")
    try:
        wait_until(busy, timeout=60, interval=0.02)
        moment = what
    except WaitTimeout:
        moment = f"{what} not seen within 60 s: killed anyway"
    info = read_stack_info(run.data_dir)
    assert info is not None
    pid = int(info["services"][name]["pid"])
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    def back() -> bool:
        now = read_stack_info(run.data_dir)
        service = (now or {}).get("services", {}).get(name, {})
        return service.get("pid") not in (None, pid) and service_ready(service["url"])

    wait_until(back, timeout=120, interval=0.2, message=f"{name} was not restarted")
    run.note("injected", f"SIGKILL {name}", f"{moment}; ready again after "
             f"{time.monotonic() - killed:.1f} s")  # fmt: skip


def processed(run: Run, service: str) -> int:
    return int(scalar(run.urls[service], "SELECT count(*) FROM processed_message") or 0)


def kill_stack(run: Run) -> None:
    """SIGKILL `eropaf up` itself: its children die with it (PR_SET_PDEATHSIG), the local
    broker with everything it held."""
    assert run.stack is not None and run.partners is not None
    info = run.stack.info
    pids = {int(s["pid"]) for s in (read_stack_info(run.data_dir) or info)["services"].values()}
    pids.add(run.stack.process.pid)
    run.stack.process.send_signal(signal.SIGKILL)
    run.stack.process.wait(30)
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=30)


POISON = b"\xffpoison: not JSON, no envelope"
# Who reads each internal topic, and so must dead-letter a message that is no event at all.
POISON_READERS: dict[str, set[str]] = {
    INTAKE_SIGNALS_TOPIC: {"matching-signals"},
    CASES_TOPIC: {"scheduling-cases", "notification-events"},
    CREDITOR_FEEDBACK_TOPIC: {"intake-creditor-feedback"},
    VISITS_TOPIC: {"matching-visits", "notification-events"},
    STAFF_TOPIC: {"notification-events"},
    NOTIFICATION_DELIVERIES_TOPIC: set(),  # for operators' tools; no service reads it
}


async def inject_poison(bootstrap: str) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic in INTERNAL_TOPICS:
            await producer.send_and_wait(
                topic, POISON, key=b"poison", headers=[("ce_id", f"poison-{topic}".encode())]
            )
    finally:
        await producer.stop()


async def dead_letters(bootstrap: str) -> dict[str, dict[str, str]]:
    """topic -> consumer -> cause, of the poison messages in the dead-letter topics."""
    from eropaf_platform.kafka_admin import read_dead_letters
    from eropaf_platform.settings import ServiceSettings

    settings = ServiceSettings(
        service_name="operator", database_url="unused", kafka_bootstrap_servers=bootstrap
    )
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for topic in INTERNAL_TOPICS:
        with contextlib.suppress(SystemExit):  # no such topic: nothing was dead-lettered
            for letter in await read_dead_letters(settings, f"{topic}.dlq"):
                if letter.header("ce_id") == f"poison-{topic}":
                    found[topic][letter.header("dlq_consumer")] = (
                        f"{letter.header('dlq_error_class')}: {letter.header('dlq_error_message')}"
                    )
    return found


def test_a_disturbed_month_ends_as_the_undisturbed_one(
    reference: Reference,
    tmp_path: Path,
    postgres_server_url: str,
    background: Background,
    record_property: Callable[[str, object], None],
) -> None:
    """Every fault of the module docstring during one month of signals; then the checks."""
    run = Run("disturbed", tmp_path, postgres_server_url, background, reference.secrets)
    parts = chunks()
    unanswered: list[Sent] = []
    month = the_month()
    run.note(
        "input",
        f"month of seed {SEED}",
        f"{len(month.messages)} messages from {len(month.by_partner())} partners "
        f"({sum(m.kind == 'resolution' for m in month.messages)} resolutions, "
        f"{sum(m.bad is not None for m in month.messages)} bad, "
        f"{sum(m.channel == 'http' for m in month.messages)} over HTTP), in {len(parts)} batches",
    )
    try:
        run.start()
        assert run.partners is not None
        partners = run.partners

        sent = run.send(parts[0], "0")
        kill_service(run, "intake", lambda: 0 < partners.answered(sent) < len(sent),
                     "part of its batch answered")  # fmt: skip

        before = processed(run, "matching")
        run.send(parts[1], "1")
        kill_service(run, "matching", lambda: processed(run, "matching") > before,
                     "busy with signal events")  # fmt: skip

        before = processed(run, "scheduling")
        run.send(parts[2], "2")
        kill_service(run, "scheduling", lambda: processed(run, "scheduling") > before,
                     "busy with case events")  # fmt: skip

        run.smtp.refusing = True
        refusing_since = time.monotonic()
        before = processed(run, "notification")
        run.send(parts[3], "3")
        kill_service(run, "notification", lambda: processed(run, "notification") > before,
                     "busy with case events, its SMTP server refusing")  # fmt: skip

        sent = run.send(parts[4], "4")
        wait_until(lambda: partners.answered(sent) > 0, timeout=60, interval=0.05)
        dropped = run.proxy.cut()
        cut_at = time.monotonic()
        later = run.send_later(parts[5], "5")  # the HTTP partner's upload waits for intake
        wait_until(lambda: time.monotonic() - cut_at >= 10, timeout=15, interval=0.2)
        run.proxy.restore()
        run.note("injected", "PostgreSQL unreachable (proxy cut)",
                 f"{time.monotonic() - cut_at:.1f} s; {dropped} connections dropped, "
                 f"{run.proxy.refused} refused meanwhile")  # fmt: skip
        later.result(180)
        wait_until(lambda: run.smtp.refused > 0, timeout=90, interval=0.2)
        run.smtp.refusing = False
        run.note("injected", "SMTP server refusing (451)",
                 f"{time.monotonic() - refusing_since:.1f} s; {run.smtp.refused} recipients "
                 "refused")  # fmt: skip

        kafka_six = [m.seq for m in parts[6] if m.channel == "kafka"][:25]
        run.send(parts[6], "6", twice=kafka_six)
        run.note("injected", "same partner message delivered twice", f"{len(kafka_six)} messages")
        resent = run.send(parts[0], "0-resent")
        run.note("injected", "partner resends a whole batch", f"{len(resent)} messages")

        killed_chunk = run.send(parts[7], "7")
        wait_until(lambda: partners.answered(killed_chunk) > 0, timeout=60, interval=0.02)
        answered_at_kill = partners.answered(killed_chunk)
        # What the partners have no feedback for when the broker goes: they send it again.
        unanswered = [s for s in partners.sent if s.ce_id and not partners.feedback.get(s.ce_id)]
        background.run(partners.disconnect(), timeout=60)  # the partners lose the broker too
        kill_stack(run)
        restarted = time.monotonic()
        info = run.up("second")
        background.run(partners.connect(info))
        run.note("injected", "SIGKILL the whole stack (`eropaf up`)",
                 f"{answered_at_kill}/{len(killed_chunk)} of its batch answered; ready again "
                 f"after {time.monotonic() - restarted:.1f} s on a new, empty broker")  # fmt: skip
        by_seq = {m.seq: m for m in the_month().messages}
        run.send([by_seq[s.seq] for s in unanswered], "sent again after the broker loss")
        run.note("injected", "partner sends again what had no feedback at the broker loss",
                 f"{len(unanswered)} messages")  # fmt: skip

        background.run(inject_poison(info["bootstrap_servers"]))
        run.note("injected", "poison message per internal topic", len(INTERNAL_TOPICS))
        for i in range(8, len(parts)):
            run.send(parts[i], str(i))
        state = run.finish()
        undisturbed = reference.result()

        # -- the checks
        checks: list[tuple[str, bool, str]] = []
        # A message the lost broker had not yet handed to intake has no feedback (its copy
        # sent again has); one intake took in just before has its one feedback.
        first_copies = {s.ce_id for s in unanswered}
        counts = Counter(
            len(partners.feedback.get(s.ce_id, [])) for s in partners.sent if s.ce_id
            and s.ce_id not in first_copies
        )  # fmt: skip
        lost = sum(1 for s in unanswered if not partners.feedback.get(s.ce_id or ""))
        missing = Counter(
            s.chunk
            for s in partners.sent
            if s.ce_id and s.ce_id not in first_copies and len(partners.feedback[s.ce_id]) != 1
        )
        checks.append((
            "every partner message exactly one feedback",
            set(counts) == {1} and all(
                len(partners.feedback.get(s.ce_id or "", [])) <= 1 for s in unanswered
            ),
            f"{sum(counts.values())} Kafka messages + {len(partners.http_results)} HTTP rows; "
            f"{lost} the lost broker never delivered (sent again)"
            + (f"; not one feedback, per batch: {dict(missing)}" if missing else ""),
        ))  # fmt: skip
        answers = run.answers()
        accepted = run.accepted_refs()
        twice = [ref for ref, said in answers.items() if said["accepted"] > 1]
        only_duplicate = [
            ref for ref, said in answers.items() if said["duplicate"] and not said["accepted"]
        ]
        in_cases = {
            r["signal_ref"]
            for r in query(run.urls["matching"], "SELECT signal_ref FROM case_signal")
        }
        checks.append((
            "every accepted signal in exactly one case",
            accepted == in_cases and len(accepted) == undisturbed.accepted and not twice,
            f"{len(accepted)} accepted (undisturbed: {undisturbed.accepted}), "
            f"{len(in_cases)} in cases, {len(twice)} accepted twice, {len(only_duplicate)} "
            "answered only `duplicate` (first answer lost with a retried upload or the broker)",
        ))  # fmt: skip
        doubled_visits = query(
            run.urls["scheduling"],
            "SELECT case_ref, attempt FROM sched_visit WHERE status = 'planned' "
            "GROUP BY case_ref, attempt HAVING count(*) > 1",
        )
        checks.append((
            "no visit doubled",
            not doubled_visits,
            f"{len(state['visits'])} visits, {len(doubled_visits)} cases with two",
        ))  # fmt: skip
        deliveries = Counter((m.recipient, m.message_id) for m in run.smtp.mail)
        checks.append((
            "no e-mail doubled",
            state["mail"] == undisturbed.state["mail"],
            f"{len(deliveries)} e-mails (Message-IDs); "
            f"{sum(n - 1 for n in deliveries.values())} accepted again by SMTP with the same "
            "Message-ID (a crash between sending and recording)",
        ))  # fmt: skip
        letters = background.run(dead_letters(info["bootstrap_servers"]))
        expected = {t: c for t, c in POISON_READERS.items() if c}
        got = {t: set(c) for t, c in letters.items()}
        causes = [cause for by in letters.values() for cause in by.values()]
        checks.append((
            "every poison message in a DLQ with its cause",
            got == expected and all(c.split(": ", 1)[-1] for c in causes),
            f"{sum(len(c) for c in got.values())} dead letters over {len(got)} topics"
            f" (no service reads {NOTIFICATION_DELIVERIES_TOPIC})",
        ))  # fmt: skip
        if KEEP is not None:
            KEEP.mkdir(parents=True, exist_ok=True)
            for name, kept in (("undisturbed", undisturbed.state), ("disturbed", state)):
                (KEEP / f"{name}.json").write_text(
                    json.dumps(kept, indent=1, sort_keys=True, default=str)
                )
        diff = differences(undisturbed.state, state)
        checks.append((
            "end state = undisturbed run",
            not diff,
            f"{len(state['cases'])} cases, {len(state['visits'])} visits, "
            f"{len(state['backlog'])} unplanned, DDAS x{len(state['ddas'])}, "
            f"{sum(len(v) for v in state['mail'].values())} e-mails to "
            f"{len(state['mail'])} recipients" + (f"; differs: {diff}" if diff else ""),
        ))  # fmt: skip
        for what, ok, figure in checks:
            run.note("checked", what, f"{'ok' if ok else 'FAILED'}: {figure}")
        run.note("timing", "undisturbed run", f"{undisturbed.seconds:.0f} s")
        run.note("timing", "disturbed run", f"{time.monotonic() - run.started:.0f} s")
        failed = [f"{what}: {figure}" for what, ok, figure in checks if not ok]
        assert not failed, failed
    finally:
        for row in run.rows:
            record_property("resilience", row)
        run.stop()
