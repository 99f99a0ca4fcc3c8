"""Matching's commands for the ``eropaf`` CLI: the DDAS export, the monitoring figures and
the sweep of cases not picked up.

``eropaf ddas export --gemeente CODE --from DATE --to DATE [-o FILE] [--no-personal-data]``
``eropaf monitoring --gemeente CODE [--from DATE --to DATE] [--csv FILE]``
``eropaf matching sweep [--on DATE] [--policy-file FILE]``

All read matching's database: ``--data-dir DIR`` (the stack that ``eropaf up`` wrote:
``DIR/stack.json`` with ``database_urls.matching`` and ``intake_url``, ``DIR/secrets.json``
with ``internal_api_token``) or ``--database-url URL`` (then ``--intake-url`` and
``EROPAF_INTERNAL_API_TOKEN`` for personal data).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Only the standard library at the top: `eropaf` builds its parser from this module for every
# command. SQLAlchemy, the contracts, the repository and the intake client are imported by the
# commands that use them.
if TYPE_CHECKING:
    from eropaf_contracts.region import Region
    from eropaf_matching.adapters.intake_client import IntakeClient
    from eropaf_matching.domain.cases import Case
    from eropaf_matching.domain.monitoring import MonitoringRow
    from eropaf_matching.handlers import NotPickedUpSweep

__all__ = [
    "Connection",
    "ddas_export",
    "make_intake_client",
    "monitoring",
    "register",
    "sweep_not_picked_up",
]

DEFAULT_LEVERANCIER = "eropaf"


class UsageError(Exception):
    """A problem with the command line or the stack configuration: message, exit 2."""


@dataclass(frozen=True)
class Connection:
    database_url: str
    intake_url: str | None = None
    internal_api_token: str | None = None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path} not found (is the stack running with this --data-dir?)") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return data


def resolve_connection(args: argparse.Namespace) -> Connection:
    env_token = os.environ.get("EROPAF_INTERNAL_API_TOKEN")
    intake_url = getattr(args, "intake_url", None) or os.environ.get("EROPAF_INTAKE_URL")
    if args.data_dir:
        root = Path(args.data_dir)
        stack = _read_json(root / "stack.json")
        urls = stack.get("database_urls") or {}
        url = urls.get("matching") if isinstance(urls, dict) else None
        if not url:
            raise UsageError(f"{root / 'stack.json'} has no database_urls.matching")
        secrets_file = root / "secrets.json"
        secrets = _read_json(secrets_file) if secrets_file.exists() else {}
        token = secrets.get("internal_api_token") or env_token
        return Connection(str(url), intake_url or stack.get("intake_url"), token)
    url = args.database_url or os.environ.get("EROPAF_DATABASE_URL")
    if not url:
        raise UsageError("give --data-dir DIR or --database-url URL")
    return Connection(url, intake_url, env_token)


def make_intake_client(connection: Connection) -> IntakeClient:
    """The client for personal data (tests replace this function)."""
    from eropaf_matching.adapters.intake_client import IntakeClient

    if not connection.intake_url or not connection.internal_api_token:
        raise UsageError(
            "personal data needs intake's URL and the internal API token "
            "(--data-dir, or --intake-url and EROPAF_INTERNAL_API_TOKEN); "
            "or use --no-personal-data"
        )
    return IntakeClient(
        connection.intake_url,
        connection.internal_api_token,
        accessor=f"eropaf-cli:{getpass.getuser()}",
        purpose="ddas-export",
    )


async def _load_cases(database_url: str, gemeentecode: str) -> list[Case]:
    from eropaf_matching.adapters.repository import load_cases
    from eropaf_platform.db import make_engine, make_sessions

    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessions(engine)() as session:
            return await load_cases(session, gemeentecode=gemeentecode)
    finally:
        await engine.dispose()


def _region(args: argparse.Namespace) -> Region:
    from eropaf_contracts.region import load_region

    return load_region(args.region_file or os.environ.get("EROPAF_REGION_FILE"))


def _gemeente(region: Region, code: str) -> str:
    municipality = region.municipality(code)
    if municipality is None:
        served = ", ".join(f"{m.code} ({m.name})" for m in region.municipalities)
        raise UsageError(f"municipality {code} is not served by region {region.name}: {served}")
    return municipality.name


def _reason(exc: Exception) -> str:
    import sqlalchemy as sa

    if isinstance(exc, sa.exc.SQLAlchemyError):
        # The driver's first line says what failed without the statement or its parameters.
        return f"matching's database: {str(getattr(exc, 'orig', exc)).splitlines()[0]}"
    return str(exc)


# --- ddas export -----------------------------------------------------------------------


def ddas_export(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from eropaf_matching.adapters.intake_client import IntakeError

    try:
        return _ddas_export(args)
    except (UsageError, IntakeError, sa.exc.SQLAlchemyError) as exc:
        print(f"eropaf ddas export: {_reason(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1


def _ddas_export(args: argparse.Namespace) -> int:
    from eropaf_contracts.ddas import validate_uitwisselmodel
    from eropaf_matching.domain.ddas_export import Organisatie, delivery

    if args.end < args.start:
        raise UsageError(f"--to {args.end} is before --from {args.start}")
    region = _region(args)
    name = _gemeente(region, args.gemeente)
    connection = resolve_connection(args)
    cases = asyncio.run(_load_cases(connection.database_url, args.gemeente))
    common: dict[str, Any] = {
        "gemeentecode": args.gemeente,
        "start": args.start,
        "end": args.end,
        "organisatie": Organisatie(naam=args.organisatie or f"Gemeente {name}"),
        "code_gegevensleverancier": args.leverancier,
        "aangeleverd_op": datetime.now(UTC),
    }
    if args.no_personal_data:
        document = delivery(cases, **common)
    else:
        with make_intake_client(connection) as client:
            document = delivery(cases, **common, personal_records=client.ddas_records)
    problems = validate_uitwisselmodel(document)
    if problems:
        print("eropaf ddas export: the delivery is NOT valid DDAS v0.9:", file=sys.stderr)
        for problem in problems[:50]:
            print(f"  {problem}", file=sys.stderr)
        return 1
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    levering = document["leveringen"][0]
    summary = (
        f"{len(levering['vroegsignalen'])} vroegsignalen, "
        f"{len(levering['vroegsignaalzaken'])} vroegsignaalzaken"
    )
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        target = Path(args.output)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)  # a reader never sees half a delivery
        print(f"wrote {target} ({summary}, valid DDAS v0.9)", file=sys.stderr)
    return 0


# --- monitoring ------------------------------------------------------------------------


def monitoring(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    try:
        return _monitoring(args)
    except (UsageError, sa.exc.SQLAlchemyError) as exc:
        print(f"eropaf monitoring: {_reason(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1


def _month(d: date | None) -> str | None:
    return None if d is None else f"{d.year:04d}-{d.month:02d}"


def _monitoring(args: argparse.Namespace) -> int:
    from eropaf_matching.domain.monitoring import monitoring_rows, rows_to_csv

    region = _region(args)
    name = _gemeente(region, args.gemeente)
    connection = resolve_connection(args)
    cases = asyncio.run(_load_cases(connection.database_url, args.gemeente))
    first, last = _month(args.start), _month(args.end)
    rows = [
        r
        for r in monitoring_rows(cases, as_of=date.today())
        if r.gemeentecode == args.gemeente
        and (first is None or r.maand >= first)
        and (last is None or r.maand <= last)
    ]
    if args.csv:
        Path(args.csv).write_text(rows_to_csv(rows), encoding="utf-8")
    print(f"Monitoring {name} ({args.gemeente})")
    print(
        _plain_table(
            ("maand", "metric", "dimensie", "waarde", "teller/noemer"),
            [(r.maand, r.metric, r.dimension, _value(r), _fraction(r)) for r in rows],
        )
    )
    if not rows:
        print("no figures for this municipality and period", file=sys.stderr)
    return 0


def _plain_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell; figures right-aligned, the metric left-aligned."""
    widths = [max(len(c) for c in column) for column in zip(header, *rows, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i == 1 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])


def _value(row: MonitoringRow) -> str:
    if row.value is None:
        return "-"
    if row.denominator is not None:  # a share
        return f"{row.value:.0%}"
    return str(int(row.value))


def _fraction(row: MonitoringRow) -> str:
    return "" if row.denominator is None else f"{row.numerator}/{row.denominator}"


# --- sweep -------------------------------------------------------------------------------


def sweep_not_picked_up(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from eropaf_matching.policy import PolicyError

    try:
        return _sweep(args)
    except (UsageError, PolicyError, sa.exc.SQLAlchemyError) as exc:
        print(f"eropaf matching sweep: {_reason(exc)}", file=sys.stderr)
        return 1 if isinstance(exc, sa.exc.SQLAlchemyError) else 2


def _sweep(args: argparse.Namespace) -> int:
    # Here, not at the top: the handlers bring the messaging stack, which every other
    # command would load for nothing.
    from eropaf_matching.handlers import NotPickedUpSweep
    from eropaf_matching.policy import load_policy

    today = datetime.now(UTC).date()  # as the service's own sweep
    on: date = args.on or today
    if on > today:
        # Closing early would end cases that a further signal may still tip.
        raise UsageError(f"--on {on} is after today ({today})")
    region = _region(args)
    policy = load_policy(args.policy_file or os.environ.get("EROPAF_POLICY_FILE"), region=region)
    connection = resolve_connection(args)
    closed = asyncio.run(_run_sweep(connection.database_url, NotPickedUpSweep(policy, region), on))
    # The events wait in the outbox; the running service's relay is woken by the commit.
    print(f"{len(closed)} case(s) not picked up closed as of {on}", file=sys.stderr)
    return 0


async def _run_sweep(database_url: str, sweep: NotPickedUpSweep, on: date) -> list[str]:
    from eropaf_platform.db import make_engine, make_sessions

    engine = make_engine(database_url, pool_size=1)
    try:
        return await sweep.run(make_sessions(engine), on)
    finally:
        await engine.dispose()


# --- registration ----------------------------------------------------------------------


def _add_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data-dir", help="data directory of a running stack (stack.json)")
    source.add_argument("--database-url", help="matching's database (PostgreSQL URL)")
    parser.add_argument("--region-file", help="region YAML (default: the packaged Lekstroom)")


def register(subparsers: Any) -> None:
    """Add ``ddas export``, ``monitoring`` and ``matching sweep`` to the ``eropaf`` command."""
    ddas = subparsers.add_parser("ddas", help="DDAS (CBS) deliveries")
    ddas_sub = ddas.add_subparsers(dest="ddas_command", required=True, metavar="COMMAND")
    export = ddas_sub.add_parser(
        "export", help="write one DDAS v0.9 delivery for a municipality and period"
    )
    export.add_argument("--gemeente", required=True, help="CBS municipality code, e.g. 0356")
    export.add_argument("--from", dest="start", required=True, type=date.fromisoformat)
    export.add_argument("--to", dest="end", required=True, type=date.fromisoformat)
    export.add_argument("-o", "--output", help="file to write (default: stdout)")
    export.add_argument(
        "--no-personal-data",
        action="store_true",
        help="leave the client fields out (no call to intake)",
    )
    export.add_argument("--intake-url", help="intake's base URL (default: from the stack)")
    export.add_argument("--organisatie", help="aanleverende organisatie (default: Gemeente X)")
    export.add_argument(
        "--leverancier", default=DEFAULT_LEVERANCIER, help="codeGegevensleverancier"
    )
    _add_source(export)
    export.set_defaults(handler=ddas_export)

    figures = subparsers.add_parser("monitoring", help="evaluation figures per month")
    figures.add_argument("--gemeente", required=True, help="CBS municipality code, e.g. 0356")
    figures.add_argument("--from", dest="start", type=date.fromisoformat, help="first month")
    figures.add_argument("--to", dest="end", type=date.fromisoformat, help="last month")
    figures.add_argument("--csv", help="also write the figures as CSV to this file")
    _add_source(figures)
    figures.set_defaults(handler=monitoring)

    matching = subparsers.add_parser("matching", help="matching's operations")
    matching_sub = matching.add_subparsers(
        dest="matching_command", required=True, metavar="COMMAND"
    )
    sweep = matching_sub.add_parser(
        "sweep",
        help="close the cases not picked up whose wait is over (the service does this hourly)",
    )
    sweep.add_argument(
        "--on",
        type=date.fromisoformat,
        metavar="DATE",
        help="as of this date (default: today, UTC)",
    )
    sweep.add_argument("--policy-file", help="triage policy YAML (default: the packaged one)")
    _add_source(sweep)
    sweep.set_defaults(handler=sweep_not_picked_up)
