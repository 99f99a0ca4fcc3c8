"""Key-list lookups: ``= ANY(array)`` against ``IN (SELECT unnest(array))``, per plan mode.

``python -m eropaf_bench.keylists`` fills a scratch table (default 30,000 rows, text primary
key), then times a prepared lookup of 500 keys each way under the services' connection
setting (``plan_cache_mode=force_custom_plan``, :mod:`eropaf_platform.db`), before and after
the table has planner statistics. The rule in ``docs/CONVENTIONS.md`` follows from these figures.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from collections.abc import Sequence

from eropaf_bench.database import DEFAULT_SERVER_URL, create_database, drop_database

SHAPES = {
    "= ANY": "SELECT k FROM keyed WHERE k = ANY(CAST(%s AS text[]))",
    "IN (SELECT unnest)": "SELECT k FROM keyed WHERE k IN (SELECT unnest(CAST(%s AS text[])))",
}


def _literal(keys: Sequence[str]) -> str:
    return "{" + ",".join(f'"{k}"' for k in keys) + "}"


def measure(url: str, rows: int, keys: int, repeats: int) -> dict[str, dict[str, float]]:
    """Median milliseconds per lookup: statistics state -> shape -> ms."""
    import psycopg

    from eropaf_platform.db import libpq_url

    rng = random.Random(7)
    stored = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(rows)]
    out: dict[str, dict[str, float]] = {}
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("CREATE TABLE keyed (k text PRIMARY KEY, v jsonb NOT NULL)")
        conn.execute("ALTER TABLE keyed SET (autovacuum_enabled = false)")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO keyed VALUES (%s, '{}')", [(k,) for k in stored], returning=False
            )
        conn.execute("SET plan_cache_mode = force_custom_plan")  # as eropaf_platform.db sets
        for analyzed in (False, True):
            if analyzed:
                conn.execute("ANALYZE keyed")
            mode = "with statistics" if analyzed else "no statistics yet"
            out[mode] = {}
            for shape, sql in SHAPES.items():
                timings = []
                for _ in range(repeats):
                    wanted = _literal(rng.sample(stored, keys))
                    started = time.perf_counter()
                    found = conn.execute(sql, (wanted,), prepare=True).fetchall()
                    timings.append((time.perf_counter() - started) * 1000)
                    assert len(found) == keys
                out[mode][shape] = round(statistics.median(timings), 2)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eropaf_bench.keylists", description=__doc__)
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--database-url", default=DEFAULT_SERVER_URL)
    args = parser.parse_args(argv)
    name = f"eropaf_bench_keylists_{uuid.uuid4().hex[:8]}"
    url = create_database(args.database_url, name)
    try:
        figures = measure(url, args.rows, args.keys, args.repeats)
    finally:
        drop_database(args.database_url, name)
    print(f"{args.keys} keys among {args.rows:,} rows, median of {args.repeats} prepared lookups:")
    for mode, shapes in figures.items():
        for shape, ms in shapes.items():
            print(f"  {mode:<20}{shape:<22}{ms:>8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
