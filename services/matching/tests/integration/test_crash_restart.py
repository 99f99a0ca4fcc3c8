"""Matching as a real process: kill -9 in the middle of 5,000 signals, restart, and the cases
are exactly those of an uninterrupted run -- none missing, none doubled, none opened twice.

One stream is published once to intake's signals topic (households with several signals,
tokens shared across partners, movers that merge households, repeats of the same debt,
redeliveries, corrections and resolutions). Two matching processes read it, each with its
own database and consumer groups: the first is killed with SIGKILL while it works and then
restarted; the second runs uninterrupted and is the reference.

Resolutions only ever concern a household's only signal: resolving one of several signals
before its siblings arrive would close the case early and make the outcome depend on
delivery order (a legitimate difference between two runs, not a crash effect).
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import CaseOpened, SignalAccepted, SignalUpdated
from eropaf_contracts.topics import CASES_TOPIC
from eropaf_matching.adapters.tables import case_alias, case_signal, match_case
from eropaf_platform.db import make_engine
from eropaf_platform.local.service_process import ServiceProcess
from eropaf_platform.outbox import unpublished_count
from eropaf_platform.testing.topics import read_to_end
from eropaf_platform.testing.wait import wait_until_async

from ..conftest import Household, publish

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOTAL_ACCEPTED = 5_000  # SignalAccepted/SignalUpdated envelopes in the stream
PARTNERS: tuple[tuple[str, Signaalpartner], ...] = (
    ("mitros", Signaalpartner.HUUR),
    ("eneco", Signaalpartner.ENERGIE),
    ("zilveren-kruis", Signaalpartner.ZORG),
    ("vitens", Signaalpartner.WATER),
    ("portaal", Signaalpartner.HUUR),
)
PC4 = ("3431", "3432", "3401", "3991")
D0 = date(2026, 9, 1)


# --- the stream --------------------------------------------------------------------------


@dataclass
class Stream:
    envelopes: list[Envelope] = field(default_factory=list)
    refs: set[str] = field(default_factory=set)  # distinct signal refs
    names: dict[str, str] = field(default_factory=dict)  # ref -> name, for failure messages
    resolved: set[str] = field(default_factory=set)
    revised: set[str] = field(default_factory=set)
    accepted: int = 0  # SignalAccepted/SignalUpdated envelopes, redeliveries included


def build_stream(h: Household, seed: int = 20261126) -> Stream:
    """A deterministic stream (given the household salt) of ``TOTAL_ACCEPTED`` signal events
    plus resolutions, in a shuffled but per-signal ordered sequence."""
    rng = random.Random(seed)
    per_signal: list[list[Envelope]] = []  # each signal's own events, in their order
    s = Stream()
    n = 0

    def signal(name: str, **kw: Any) -> Envelope:
        partner, kind = kw.pop("partner", rng.choice(PARTNERS))
        env = h.accepted(name, partner=partner, type=kind, **kw)
        s.refs.add(env.key)
        s.names[env.key] = name
        return env

    def count(events: list[Envelope]) -> None:
        s.accepted += sum(1 for e in events if e.type != "eropaf.intake.signal.resolved")

    hh = 0
    several: list[int] = []  # households with several signals
    while True:
        hh += 1
        shape = rng.random()
        pc4 = rng.choice(PC4)
        day = D0 + timedelta(days=rng.randrange(40))
        if shape < 0.3:  # a household with one signal; some of them get resolved
            env = signal(f"h{hh}-s", pc4=pc4, datum=day, bsn=f"p{hh}", address=f"a{hh}")
            events = [env]
            if rng.random() < 0.3:
                events.append(h.resolved(f"h{hh}-s", day + timedelta(days=10)))
                s.resolved.add(env.key)
            per_signal.append(events)
        else:  # several creditors, two persons at one address, repeats and corrections
            for i in range(rng.randint(2, 5)):
                person = f"p{hh}-{i % 2}"
                partner = PARTNERS[i % len(PARTNERS)] if i < 3 else rng.choice(PARTNERS)
                env = signal(
                    f"h{hh}-{i}",
                    partner=partner,
                    pc4=pc4,
                    datum=day + timedelta(days=rng.randrange(20)),
                    bedrag=rng.choice((150, 400, 900, 1500)),
                    bsn=person if rng.random() < 0.8 else None,
                    surname=person,
                    address=f"a{hh}",
                )
                events = [env]
                if rng.random() < 0.05:  # the same message delivered twice
                    events.append(env)
                if rng.random() < 0.05:  # the partner corrects the amount
                    events.append(revision(env, 2))
                    s.revised.add(env.key)
                per_signal.append(events)
            if rng.random() < 0.1:  # the same debt signalled again by the same creditor
                per_signal.append(
                    [
                        signal(
                            f"h{hh}-rep",
                            partner=PARTNERS[0],
                            pc4=pc4,
                            datum=day + timedelta(days=25),
                            bedrag=150,
                            bsn=f"p{hh}-0",
                            surname=f"p{hh}-0",
                            address=f"a{hh}",
                        )
                    ]
                )
            if len(several) > 10 and rng.random() < 0.05:
                # A mover: the household merges with an earlier one (never with a household
                # whose only signal may be resolved first: see the module docstring).
                other = rng.choice(several[-10:])
                per_signal.append(
                    [
                        signal(
                            f"h{hh}-move",
                            pc4=pc4,
                            datum=day + timedelta(days=30),
                            bsn=f"p{hh}-0",
                            surname=f"p{hh}-0",
                            address=f"a{other}",
                        )
                    ]
                )
            several.append(hh)
        for events in per_signal[n:]:
            count(events)
        n = len(per_signal)
        if s.accepted >= TOTAL_ACCEPTED:
            break
    # Interleave the signals' event lists at random, keeping each signal's own order.
    queues = [list(events) for events in per_signal]
    while queues:
        i = rng.randrange(len(queues))
        s.envelopes.append(queues[i].pop(0))
        if not queues[i]:
            queues[i] = queues[-1]
            queues.pop()
    return s


def revision(env: Envelope, number: int) -> Envelope:
    first = env.payload(SignalAccepted)
    data = first.model_dump()
    data.update(revision=number, bedrag=(first.bedrag or 0) + 100)
    payload = SignalUpdated(**data)
    return Envelope.wrap(payload, key=payload.signal_ref)


# --- matching as a process ---------------------------------------------------------------


def matching_process(
    bootstrap: str, database_url: str, group_prefix: str, log_path: Path
) -> ServiceProcess:
    """``python -m eropaf_matching`` with its log appended to ``log_path``."""
    return ServiceProcess(
        "eropaf_matching",
        {
            "EROPAF_DATABASE_URL": database_url,
            "EROPAF_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "EROPAF_INTERNAL_API_TOKEN": "matching-crash-test-token",
            "EROPAF_CONSUMER_GROUP_PREFIX": group_prefix,
            "EROPAF_CONSUME_VISITS": "false",
            "EROPAF_KAFKA_TOPIC_PARTITIONS": "2",
            "EROPAF_OUTBOX_POLL_INTERVAL_S": "0.1",
            "EROPAF_CONSUMER_BATCH_TIMEOUT_MS": "50",
            "EROPAF_RETRY_INITIAL_BACKOFF_S": "0.05",
            "EROPAF_RETRY_MAX_BACKOFF_S": "0.5",
            "EROPAF_LOG_LEVEL": "WARNING",
        },
        log_path,
    )


# --- looking at a matching database -------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    placed: int
    resolved: int
    revised: int


class MatchingDatabase:
    def __init__(self, url: str, stream: Stream) -> None:
        self.engine = make_engine(url)
        self.stream = stream
        self.refs = sorted(stream.refs)

    async def progress(self) -> Progress:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(
                        sa.func.count(),
                        sa.func.count(case_signal.c.resolved_on),
                        sa.func.count().filter(case_signal.c.facts["revision"].as_integer() >= 2),
                    ).where(case_signal.c.signal_ref.in_(self.refs))
                )
            ).one()
        return Progress(row[0], row[1], row[2])

    async def complete(self) -> bool:
        p = await self.progress()
        s = self.stream
        return (p.placed, p.resolved, p.revised) == (
            len(s.refs),
            len(s.resolved),
            len(s.revised),
        )

    async def drained(self) -> bool:
        async with self.engine.connect() as conn:
            return await unpublished_count(conn) == 0

    async def cases(self) -> dict[str, tuple[frozenset[str], str, str | None]]:
        """case id -> (signal refs, state, resultaat) for the cases holding the stream."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(
                        case_signal.c.case_id,
                        case_signal.c.signal_ref,
                        match_case.c.state,
                        match_case.c.resultaat,
                    )
                    .join(match_case, match_case.c.case_id == case_signal.c.case_id)
                    .where(case_signal.c.signal_ref.in_(self.refs))
                )
            ).all()
        refs: dict[str, set[str]] = {}
        status: dict[str, tuple[str, str | None]] = {}
        for r in rows:
            refs.setdefault(r.case_id, set()).add(r.signal_ref)
            status[r.case_id] = (r.state, r.resultaat)
        return {cid: (frozenset(v), *status[cid]) for cid, v in refs.items()}

    async def aliases(self) -> dict[str, str]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(case_alias.c.old_case_id, case_alias.c.case_id))
            return {r.old_case_id: r.case_id for r in rows}

    async def close(self) -> None:
        await self.engine.dispose()


async def opened_case_refs(bootstrap: str, refs: set[str]) -> Counter[str]:
    """How often each case of the stream was announced with CaseOpened on the cases topic."""
    opened: Counter[str] = Counter()
    for record in await read_to_end(bootstrap, CASES_TOPIC):
        if b'"eropaf.matching.case.opened"' not in record.value:
            continue
        event = Envelope.from_bytes(record.value).payload(CaseOpened)
        if set(event.signal_refs) <= refs:
            opened[event.case_ref] += 1
    return opened


def differences(
    got: dict[str, tuple[frozenset[str], str, str | None]],
    want: dict[str, tuple[frozenset[str], str, str | None]],
    stream: Stream,
) -> str:
    lines = []
    for side, mine, other in (("crashed", got, want), ("reference", want, got)):
        for cid in sorted(set(mine) - set(other))[:5]:
            refs, state, resultaat = mine[cid]
            names = sorted(stream.names[r] for r in refs)
            lines.append(f"only in {side}: {cid[:8]} {state} {resultaat} {names}")
    for cid in sorted(set(got) & set(want)):
        if got[cid] != want[cid]:
            a, b = got[cid], want[cid]
            lines.append(
                f"differs {cid[:8]}: {sorted(stream.names[r] for r in a[0])} {a[1:]} vs "
                f"{sorted(stream.names[r] for r in b[0])} {b[1:]}"
            )
    return "\n".join(lines[:20])


# --- the test -----------------------------------------------------------------------------


async def test_kill_9_during_5000_signals_loses_and_doubles_nothing(
    kafka_bootstrap_servers: str,
    _database_registry: Any,
    household: Household,
    tmp_path: Path,
) -> None:
    bootstrap = kafka_bootstrap_servers
    stream = build_stream(household)
    assert stream.accepted >= TOTAL_ACCEPTED
    first_part = len(stream.envelopes) * 2 // 5

    crashed_url = _database_registry.create("eropaf_matching_crash")
    reference_url = _database_registry.create("eropaf_matching_ref")
    crashed = MatchingDatabase(crashed_url, stream)
    reference = MatchingDatabase(reference_url, stream)
    run = uuid.uuid4().hex[:8]
    process = matching_process(bootstrap, crashed_url, f"crash-{run}", tmp_path / "crashed.log")
    uninterrupted = matching_process(
        bootstrap, reference_url, f"ref-{run}", tmp_path / "reference.log"
    )
    started = time.monotonic()
    try:
        # 1. Two fifths of the stream, and a kill -9 while matching works through it.
        process.start()
        await publish(bootstrap, *stream.envelopes[:first_part])
        await process.wait_ready()

        async def under_way() -> bool:
            assert process.process is not None and process.process.poll() is None, (
                process.log_tail()
            )
            return (await crashed.progress()).placed >= 300

        await wait_until_async(under_way, timeout=60, interval=0.05)
        process.kill()
        at_kill = await crashed.progress()
        assert 0 < at_kill.placed < len(stream.refs)

        # 2. The rest of the stream arrives while matching is down; then it restarts.
        await publish(bootstrap, *stream.envelopes[first_part:])
        process.start()
        await process.wait_ready()
        await wait_until_async(
            crashed.complete, timeout=90, interval=0.25, message=process.log_tail()
        )
        await wait_until_async(crashed.drained, timeout=30, interval=0.1)
        crashed_done = time.monotonic()
        opened = await opened_case_refs(bootstrap, stream.refs)

        # 3. The reference: the same stream, a fresh database and fresh consumer groups.
        uninterrupted.start()
        await uninterrupted.wait_ready()
        await wait_until_async(
            reference.complete, timeout=90, interval=0.25, message=uninterrupted.log_tail()
        )

        got, want = await crashed.cases(), await reference.cases()
        aliases = await crashed.aliases()
    finally:
        process.stop()
        uninterrupted.stop()
        await crashed.close()
        await reference.close()

    # No signal missing (each in exactly one case: case_signal's key), the same cases.
    placed = set().union(*(refs for refs, _, _ in got.values()))
    assert placed == stream.refs
    assert got == want, differences(got, want, stream)
    # Every case was opened exactly once on the topic: under its id, or under an earlier id
    # that a merge or an earlier-dated signal replaced (case_alias points from it).
    assert opened and max(opened.values()) == 1, [c for c, n in opened.items() if n > 1][:5]
    current = {aliases.get(case_ref, case_ref) for case_ref in opened}
    assert current >= set(got), sorted(set(got) - current)[:5]
    assert sum(1 for _, state, _ in got.values() if state == "closed") == len(stream.resolved)
    print(
        f"\n{stream.accepted} signal events ({len(stream.refs)} signals, "
        f"{len(stream.resolved)} resolved) in {len(got)} cases; killed at "
        f"{at_kill.placed} placed; crashed run done after {crashed_done - started:.1f}s, "
        f"all after {time.monotonic() - started:.1f}s; {sum(opened.values())} CaseOpened"
    )
