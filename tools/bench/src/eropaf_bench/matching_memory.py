"""What matching's in-memory state costs per stored signal (its linking state and its cases).

For each N: a fresh database on the PostgreSQL server is filled through matching's own
service layer (``handle_signal_events`` in batches, with the process's copies of the linking
state and the cases, as the signal handler runs it), in a child process whose resident
memory then is that of a matching process holding N signals (less the transport's). A second
child loads both copies afresh from the tables, as a restarted matching does: its resident
memory before and after, per signal, and (``--tracemalloc``) the source lines that
allocated what the copies hold.

Signals are households of one or two persons with one to four creditors (as the pipeline
benchmark's), each with its four match tokens as intake derives them (keyed HMAC).

``python -m eropaf_bench.matching_memory --signals 30000 100000 [--tracemalloc]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from eropaf_bench.database import DEFAULT_SERVER_URL, create_database, drop_database

BATCH = 500  # signals per batch (the consumer's batches are of this order)
_KEY = b"bench-matching-memory-key-" + b"m" * 32
_PARTNERS = (("mitros", "Huur"), ("eneco", "Energie"), ("zilveren", "Zorg"), ("vitens", "Water"))


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _events(count: int, seed: int = 11) -> list[Any]:
    """``count`` SignalAccepted envelopes, households shuffled together."""
    from eropaf_contracts.envelope import Envelope
    from eropaf_contracts.events import SignalAccepted
    from eropaf_contracts.region import load_region
    from eropaf_intake.domain.match_tokens import MatchIdentity, match_tokens, pseudonym

    region = load_region(None)
    areas = sorted(
        (str(pc4), m.code)
        for m in region.municipalities
        for low, high in m.pc4
        for pc4 in range(low, high + 1)
    )
    rng = random.Random(seed)
    today = datetime.now(UTC).date()
    now = datetime.now(UTC)
    out: list[Any] = []
    n = 0
    while len(out) < count:
        n += 1
        pc4, gemeente = rng.choice(areas)
        postcode = pc4 + "".join(rng.choice("ABEGHJKLNPRTVWXZ") for _ in range(2))
        persons = [
            MatchIdentity(
                bsn=f"{rng.randrange(10**8, 10**9)}",
                birth_date=date(1940, 1, 1) + timedelta(days=rng.randrange(20_000)),
                surname=f"bench{n}x{p}",
                initials=rng.choice(("J", "AM", "K", "P")),
                postcode=postcode,
                house_number=1 + n % 300,
            )
            for p in range(rng.choice((1, 1, 2)))
        ]
        for partner, kind in rng.sample(_PARTNERS, k=rng.choice((1, 1, 2, 2, 3, 4))):
            if len(out) == count:
                break
            who = rng.choice(persons)
            ref = pseudonym(_KEY, "signal_ref", partner, f"S-{seed}-{len(out)}")
            signaaldatum = today - timedelta(days=rng.randrange(1, 60))
            payload = SignalAccepted(
                signal_ref=ref,
                partner_code=partner,
                partner_type=kind,
                gemeentecode=gemeente,
                postcode_area=pc4,
                bedrag=rng.choice((120, 350, 600, 900, 1500, 2400)),
                ontstaansdatum=signaaldatum - timedelta(days=60),
                signaaldatum=signaaldatum,
                crisissignaal=rng.random() < 0.02,
                warme_overdracht=False,
                match_tokens=match_tokens(who, _KEY),  # type: ignore[arg-type]
                received_at=now,
                revision=1,
            )
            out.append((Envelope.wrap(payload, key=ref), payload))
    rng.shuffle(out)
    return out


async def _fill(url: str, count: int) -> dict[str, Any]:
    from eropaf_contracts.region import load_region
    from eropaf_matching.adapters.case_cache import CaseCache
    from eropaf_matching.adapters.link_cache import LinkCache
    from eropaf_matching.adapters.repository import lock_matching
    from eropaf_matching.app import MIGRATIONS
    from eropaf_matching.policy import load_policy
    from eropaf_matching.service_layer import services
    from eropaf_matching.service_layer.unit_of_work import MatchingUnitOfWork
    from eropaf_platform.db import make_engine, make_sessions, migrate_async, transaction

    await migrate_async(url, MIGRATIONS, service="matching")
    region = load_region(None)
    policy = load_policy(None, region=region)
    events = _events(count)
    gc.collect()
    base = _status_mb("VmRSS")
    engine = make_engine(url)
    sessions = make_sessions(engine)
    links, cases = LinkCache(), CaseCache()
    started = time.process_time()
    for start in range(0, len(events), BATCH):
        async with transaction(sessions) as session:
            uow = MatchingUnitOfWork(session, policy, region, links=links, cases=cases)
            await services.handle_signal_events(uow, events[start : start + BATCH])
    cpu = time.process_time() - started
    async with transaction(sessions) as session:  # the last batch's changes applied
        await lock_matching(session)
        held_links = await links.index(session)
        held_cases = await cases.index(session)
        # As the service's periodic ANALYZE would have: without statistics the copies' load
        # queries take minutes.
        for table in ("match_signal", "match_case", "case_signal", "case_contact_attempt"):
            await session.execute(sa.text(f"ANALYZE {table}"))
    await engine.dispose()
    del events
    gc.collect()
    return {
        "signals": len(held_links.signals),
        "cases": len(held_cases),
        "rss_before_mb": round(base, 1),
        "rss_mb": round(_status_mb("VmRSS"), 1),
        "peak_mb": round(_status_mb("VmHWM"), 1),
        "cpu_ms_per_signal": round(1000 * cpu / count, 3),
    }


async def _load(url: str, trace: bool) -> dict[str, Any]:
    import tracemalloc

    from eropaf_matching.adapters.case_cache import CaseCache
    from eropaf_matching.adapters.link_cache import LinkCache
    from eropaf_matching.adapters.repository import lock_matching
    from eropaf_platform.db import make_engine, make_sessions, transaction

    engine = make_engine(url)
    sessions = make_sessions(engine)
    async with transaction(sessions) as session:  # connect before the baseline
        await session.execute(sa.text("SELECT 1"))
    gc.collect()
    base = _status_mb("VmRSS")
    if trace:
        tracemalloc.start(1)
    out: dict[str, Any] = {}
    links, cases = LinkCache(), CaseCache()
    async with transaction(sessions) as session:
        await lock_matching(session)  # as a batch does (which also turns JIT off)
        # The full case load's key lists of 5,000 ids get a sequential scan that evaluates
        # the array cast per row (minutes at 30,000 cases, measured): not what is measured
        # here, so the planner is kept to the indexes.
        await session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        started = time.perf_counter()
        held_links = await links.index(session)
        out["links_load_s"] = round(time.perf_counter() - started, 2)
        if trace:
            out["links_traced_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 1)
        rss_links = _status_mb("VmRSS")
        started = time.perf_counter()
        held_cases = await cases.index(session)
        out["cases_load_s"] = round(time.perf_counter() - started, 2)
    await engine.dispose()
    gc.collect()
    signals = len(held_links.signals)
    out.update(
        signals=signals,
        cases=len(held_cases),
        rss_before_mb=round(base, 1),
        rss_links_mb=round(rss_links, 1),
        rss_mb=round(_status_mb("VmRSS"), 1),
        peak_mb=round(_status_mb("VmHWM"), 1),
        links_bytes_per_signal=round((rss_links - base) * 2**20 / signals),
        bytes_per_signal=round((_status_mb("VmRSS") - base) * 2**20 / signals),
    )
    if trace:
        snapshot = tracemalloc.take_snapshot()
        total = tracemalloc.get_traced_memory()[0]
        out["traced_mb"] = round(total / 2**20, 1)
        out["traced_bytes_per_signal"] = round(total / signals)
        out["top"] = [
            f"{s.size / signals:7.0f} B/signal {s.count / signals:5.2f} obj/signal  "
            f"{s.traceback[0].filename.rsplit('/', 2)[-1]}:{s.traceback[0].lineno}"
            for s in snapshot.statistics("lineno")[:25]
        ]
    out["held"] = (id(held_links), id(held_cases))  # keep both alive until measured
    return out


def _child(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "eropaf_bench.matching_memory", *args],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args[1]} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signals", type=int, nargs="+", default=[30_000, 100_000])
    parser.add_argument("--tracemalloc", action="store_true", help="top allocating lines")
    parser.add_argument(
        "--database-url", help="an already filled database: only load it (one N, not dropped)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the filled databases")
    parser.add_argument("--child", choices=("fill", "load"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "fill":
        print(json.dumps(asyncio.run(_fill(args.database_url, args.signals[0]))))
        return
    if args.child == "load":
        print(json.dumps(asyncio.run(_load(args.database_url, args.tracemalloc))))
        return
    trace = ["--tracemalloc"] if args.tracemalloc else []
    if args.database_url:
        _report("load", _child(["--child", "load", "--database-url", args.database_url, *trace]))
        return
    for count in args.signals:
        name = f"eropaf_bench_matchmem_{count}_{uuid.uuid4().hex[:6]}"
        url = create_database(DEFAULT_SERVER_URL, name)
        try:
            print(f"N = {count:,} ({name})", flush=True)
            fill = ["--child", "fill", "--database-url", url, "--signals", str(count)]
            _report("fill (service layer, incremental)", _child(fill))
            _report("load afresh", _child(["--child", "load", "--database-url", url]))
            if trace:
                _report(
                    "load afresh, traced",
                    _child(["--child", "load", "--database-url", url, *trace]),
                )
        finally:
            if args.keep:
                print(f"kept {url}")
            else:
                drop_database(DEFAULT_SERVER_URL, name)


def _report(what: str, result: dict[str, Any]) -> None:
    result.pop("held", None)
    top = result.pop("top", None)
    print(f"  {what}: " + ", ".join(f"{k} {v}" for k, v in result.items()), flush=True)
    for line in top or ():
        print("    " + line)


if __name__ == "__main__":
    main()
