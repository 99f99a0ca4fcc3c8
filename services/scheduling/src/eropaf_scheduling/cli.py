"""Scheduling's commands for the ``eropaf`` CLI (CONTRACT §4.1).

``eropaf staff import FILE`` loads or updates the roster and prints ``token <code> <token>``
once per new staff member; ``eropaf staff absent CODE --from DATE --to DATE`` records leave
or sickness. Both write scheduling's database (``--data-dir DIR``: the stack's
``stack.json``; or ``--database-url URL``); the running service publishes the events and
replans.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

# Only the standard library at the top: `eropaf` builds its parser from this module.

__all__ = ["register", "staff_absent", "staff_import"]


class UsageError(Exception):
    pass


def _database_url(args: argparse.Namespace) -> str:
    if args.data_dir:
        path = Path(args.data_dir) / "stack.json"
        try:
            stack = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(
                f"{path} not found (is the stack running with this --data-dir?)"
            ) from None
        url = (stack.get("database_urls") or {}).get("scheduling")
        if not url:
            raise UsageError(f"{path} has no database_urls.scheduling")
        return str(url)
    url = args.database_url or os.environ.get("EROPAF_DATABASE_URL")
    if not url:
        raise UsageError("give --data-dir DIR or --database-url URL")
    return str(url)


async def _in_transaction(database_url: str, work: Any) -> Any:
    from eropaf_platform.db import make_engine, make_sessions, migrate_async, transaction
    from eropaf_scheduling.app import MIGRATIONS
    from eropaf_scheduling.service_layer.unit_of_work import SqlSchedulingUnitOfWork

    await migrate_async(database_url, MIGRATIONS, service="scheduling")
    engine = make_engine(database_url, pool_size=1)
    try:
        async with transaction(make_sessions(engine)) as session:
            return await work(SqlSchedulingUnitOfWork(session))
    finally:
        await engine.dispose()


def staff_import(args: argparse.Namespace) -> int:
    from eropaf_scheduling.domain.roster import RosterError, parse_roster
    from eropaf_scheduling.service_layer import services

    try:
        content = Path(args.file).read_bytes()
        staff = parse_roster(content)
        url = _database_url(args)
    except (OSError, UsageError) as exc:
        print(f"eropaf staff import: {exc}", file=sys.stderr)
        return 2
    except RosterError as exc:
        for problem in exc.problems:
            print(f"eropaf staff import: {args.file}: {problem}", file=sys.stderr)
        return 2

    async def work(uow: Any) -> dict[str, str]:
        return await services.import_roster(uow, staff, datetime.now(UTC))

    tokens: dict[str, str] = asyncio.run(_in_transaction(url, work))
    for code, token in sorted(tokens.items()):
        print(f"token {code} {token}")
    print(f"{len(staff)} staff in file, {len(tokens)} new", file=sys.stderr)
    return 0


def staff_absent(args: argparse.Namespace) -> int:
    from eropaf_scheduling.service_layer import services

    try:
        url = _database_url(args)
    except UsageError as exc:
        print(f"eropaf staff absent: {exc}", file=sys.stderr)
        return 2

    async def work(uow: Any) -> None:
        await services.record_absence(uow, args.code, args.start, args.end, datetime.now(UTC))

    try:
        asyncio.run(_in_transaction(url, work))
    except services.UnknownStaff:
        print(f"eropaf staff absent: no staff member {args.code!r}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"eropaf staff absent: {exc}", file=sys.stderr)
        return 2
    print(f"{args.code} absent {args.start} to {args.end}; replanning", file=sys.stderr)
    return 0


def _add_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data-dir", help="data directory of a running stack (stack.json)")
    source.add_argument("--database-url", help="scheduling's database (PostgreSQL URL)")


def register(subparsers: Any) -> None:
    """Add ``staff import`` and ``staff absent`` to the ``eropaf`` command."""
    staff = subparsers.add_parser("staff", help="staff roster and absences")
    sub = staff.add_subparsers(dest="staff_command", required=True, metavar="COMMAND")
    load = sub.add_parser("import", help="load or update staff from a roster CSV file")
    load.add_argument("file", help="roster CSV (CONTRACT §4.1)")
    _add_source(load)
    load.set_defaults(handler=staff_import)
    absent = sub.add_parser("absent", help="record leave or sickness (inclusive dates)")
    absent.add_argument("code", help="staff code")
    absent.add_argument("--from", dest="start", required=True, type=date.fromisoformat)
    absent.add_argument("--to", dest="end", required=True, type=date.fromisoformat)
    _add_source(absent)
    absent.set_defaults(handler=staff_absent)
