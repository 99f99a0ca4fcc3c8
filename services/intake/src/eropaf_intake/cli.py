"""`eropaf partner ...` and `eropaf intake ...`: partner administration, the reference partner
client, and personal-data housekeeping.

Admin commands talk to intake's database directly (and to the broker for topics), so they work
whether or not intake runs; they bring the schema to head first. Where to find things, in order:
explicit `--database-url` / `--bootstrap-servers`, then `--data-dir DIR` (the `DIR/stack.json`
that `eropaf up` writes), then `EROPAF_DATABASE_URL` / `EROPAF_KAFKA_BOOTSTRAP_SERVERS` (e.g. inside
the intake container of the deployed stack).

Exit codes: 0 done; 1 a published signal was rejected; 2 the request cannot be carried out
(bad arguments or input, unknown or duplicate partner ...); 3 no feedback within the timeout;
4 the database or broker cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

# Heavy modules (pydantic models, SQLAlchemy, FastAPI, aiokafka) are imported inside the
# commands, so that `eropaf --help` and every other area's commands start quickly.
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from eropaf_contracts.region import Region

__all__ = ["CliError", "register"]

T = TypeVar("T")

EXIT_REJECTED = 1
EXIT_ERROR = 2
EXIT_TIMEOUT = 3
EXIT_UNREACHABLE = 4

STACK_FILE = "stack.json"
DEFAULT_KEYS_SUBDIR = "partner-keys"


class CliError(Exception):
    """A request that cannot be carried out; printed as `eropaf: error: ...`."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- where the stack is --------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    database_url: str
    bootstrap_servers: str


def _stack_info(data_dir: str) -> dict[str, Any]:
    path = Path(data_dir) / STACK_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(
            f"{path} not found: start the stack with `eropaf up --data-dir {data_dir}` "
            "(and wait until it is ready), or pass --database-url/--bootstrap-servers"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc
    if not isinstance(info, dict):
        raise CliError(f"{path} is not a JSON object")
    return info


def _target(args: argparse.Namespace, *, database: bool, broker: bool) -> Target:
    info = _stack_info(args.data_dir) if getattr(args, "data_dir", None) else {}
    database_url = ""
    if database:
        database_url = (
            getattr(args, "database_url", None)
            or (info.get("database_urls") or {}).get("intake")
            or os.environ.get("EROPAF_DATABASE_URL", "")
        )
        if not database_url:
            raise CliError("no intake database: pass --data-dir DIR or --database-url URL")
        from sqlalchemy.engine import make_url

        # stack.json hides passwords of an external server; the operator must supply it.
        if make_url(database_url).password == "***":  # noqa: S105 (a mask, not a secret)
            raise CliError(
                "stack.json hides the database password; pass --database-url with the password"
            )
    bootstrap_servers = ""
    if broker:
        bootstrap_servers = (
            getattr(args, "bootstrap_servers", None)
            or info.get("bootstrap_servers")
            or os.environ.get("EROPAF_KAFKA_BOOTSTRAP_SERVERS", "")
        )
        if not bootstrap_servers:
            raise CliError("no broker: pass --data-dir DIR or --bootstrap-servers HOST:PORT")
    return Target(database_url, bootstrap_servers)


def _migrate(database_url: str) -> None:
    # Idempotent; lets admin commands run before intake ever started on this database.
    from eropaf_intake.app import MIGRATIONS
    from eropaf_platform import db

    db.migrate(database_url, MIGRATIONS, service="intake")


async def _in_transaction(database_url: str, action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from eropaf_platform import db

    engine = db.make_engine(database_url, pool_size=1)
    try:
        async with db.transaction(db.make_sessions(engine)) as session:
            return await action(session)
    finally:
        await engine.dispose()


async def _create_topics(target: Target, topics: list[str]) -> None:
    from eropaf_platform.broker import ensure_topics
    from eropaf_platform.settings import ServiceSettings

    # Kafka security settings (SASL) still come from EROPAF_* variables when set.
    settings = ServiceSettings(
        service_name="partner-admin",
        database_url=target.database_url or "unused",
        kafka_bootstrap_servers=target.bootstrap_servers,
    )
    await ensure_topics(settings, topics)


async def _onboard_on_broker(target: Target, code: str, listener: _PartnerListener) -> Any:
    """The partner's topics (with their retention), SCRAM user and ACLs, through the Kafka
    admin API as the admin user of the EROPAF_KAFKA_SASL_* settings; its connection settings."""
    from eropaf_platform import kafka_admin
    from eropaf_platform.settings import ServiceSettings

    settings = ServiceSettings(
        service_name="partner-admin",
        database_url=target.database_url or "unused",
        kafka_bootstrap_servers=target.bootstrap_servers,
    )
    try:
        return await kafka_admin.onboard_partner(
            settings,
            code,
            partner_bootstrap_servers=listener.bootstrap_servers,
            partner_security_protocol=listener.security_protocol,
        )
    except RuntimeError as exc:  # the broker answered with an error (rights, config)
        raise CliError(f"the broker refused: {exc}") from exc


def _run(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """One place that turns expected failures into a message and an exit code."""

    def run(args: argparse.Namespace) -> int:
        import sqlalchemy as sa
        from aiokafka.errors import KafkaConnectionError, KafkaError

        from eropaf_intake.partners import PartnerAdminError

        try:
            return handler(args)
        except CliError as exc:
            return _fail(str(exc), exc.exit_code)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            return _fail(f"cannot reach the database: {exc.orig or exc}", EXIT_UNREACHABLE)
        except (KafkaConnectionError, OSError) as exc:
            if isinstance(exc, OSError) and getattr(exc, "filename", None):
                return _fail(f"{exc.strerror}: {exc.filename}", EXIT_ERROR)
            return _fail(f"cannot reach the broker: {exc}", EXIT_UNREACHABLE)
        except KafkaError as exc:
            return _fail(f"broker error: {exc}", EXIT_UNREACHABLE)
        except (PartnerAdminError, ValueError) as exc:  # incl. JwsError, SignalFileError
            return _fail(str(exc), EXIT_ERROR)

    return run


def _fail(message: str, code: int) -> int:
    print(f"eropaf: error: {message}", file=sys.stderr)
    return code


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


# -- key files -----------------------------------------------------------------------------


def _read_public_key(path: str | None) -> bytes | None:
    return None if path is None else Path(path).read_bytes()


def _check_key_out(path: str | None) -> Path | None:
    """Fail before touching the database when the private key could not be written."""
    if path is None:
        return None
    out = Path(path)
    if out.exists():
        raise CliError(f"{out} exists; refusing to overwrite a private key")
    if not out.parent.is_dir():
        raise CliError(f"directory {out.parent} does not exist")
    return out


def write_private_key(path: Path, pem: bytes) -> None:
    """Create the file with mode 0600 from the start: the key is never readable by others."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask may have taken bits away, never added; make it exact
        os.write(fd, pem)
    finally:
        os.close(fd)


# -- partner administration ---------------------------------------------------------------


def _region(args: argparse.Namespace) -> Region:
    from eropaf_contracts.region import load_region

    path = args.region_file or os.environ.get("EROPAF_REGION_FILE") or None
    return load_region(path)


def _types(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


@dataclass
class _Onboarded:
    code: str
    name: str
    types: list[str]
    kid: str
    token: str
    topics: tuple[str, str]
    private_key_file: Path | None
    kafka: Any = None  # eropaf_platform.kafka_admin.PartnerConnection, with --partner-bootstrap


@dataclass(frozen=True)
class _PartnerListener:
    """The broker listener partners connect to (a deployed stack's SCRAM/ACL broker)."""

    bootstrap_servers: str
    security_protocol: str


async def _onboard_one(
    target: Target,
    code: str,
    name: str,
    types: list[str],
    public_key_pem: bytes | None,
    key_out: Path | None,
    listener: _PartnerListener | None = None,
) -> _Onboarded:
    """Register, write the key, create topics (with `listener`: also the partner's SCRAM user
    and ACLs) — and commit only when all worked, so a failure leaves nothing half done and
    the command can simply be run again."""
    from eropaf_intake import partners

    written: Path | None = None

    async def action(session: AsyncSession) -> _Onboarded:
        nonlocal written
        result = await partners.onboard(session, code, name, types, public_key_pem=public_key_pem)
        if result.private_key_pem is not None:
            assert key_out is not None
            write_private_key(key_out, result.private_key_pem)
            written = key_out
        kafka = None
        if listener is None:
            await _create_topics(target, list(result.topics))
        else:
            kafka = await _onboard_on_broker(target, code, listener)
        return _Onboarded(
            code, name, types, result.kid, result.token, result.topics, written, kafka
        )

    try:
        return await _in_transaction(target.database_url, action)
    except BaseException:
        if written is not None:
            # The partner was not registered: the key is useless.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(written)
        raise


@_run
def cmd_onboard(args: argparse.Namespace) -> int:
    if args.public_key is None and args.generate_key is None:
        raise CliError("pass --public-key FILE or --generate-key OUT.pem")
    name, types = args.name, _types(args.types)
    if args.from_region:
        entry = _region(args).partner(args.code)
        if entry is None:
            raise CliError(f"partner {args.code!r} is not in the region file")
        name = name or entry.name
        types = types or [t.value for t in entry.types]
    if not name or not types:
        raise CliError("pass --name and --types (or --from-region)")
    public_key_pem = _read_public_key(args.public_key)
    key_out = _check_key_out(args.generate_key)
    listener = (
        _PartnerListener(args.partner_bootstrap, args.partner_security_protocol)
        if args.partner_bootstrap
        else None
    )
    target = _target(args, database=True, broker=True)
    _migrate(target.database_url)
    done = asyncio.run(
        _onboard_one(target, args.code, name, types, public_key_pem, key_out, listener)
    )
    if args.json:
        _print_json(_onboarded_json(done))
        return 0
    print(f"partner: {done.code} ({done.name}; {', '.join(done.types)})")
    print(f"kid: {done.kid}")
    print(f"token: {done.token}")
    if done.private_key_file is not None:
        print(f"private key: {done.private_key_file}")
    print(f"topics: {', '.join(done.topics)}")
    if done.kafka is not None:
        print("kafka client properties:")
        for line in done.kafka.client_properties().splitlines():
            print(f"  {line}")
    secrets_shown = "token and broker password are" if done.kafka else "token is"
    print(
        f"the {secrets_shown} shown only this once; hand them to the partner securely",
        file=sys.stderr,
    )
    return 0


def _onboarded_json(done: _Onboarded) -> dict[str, Any]:
    return {
        "code": done.code,
        "name": done.name,
        "types": done.types,
        "kid": done.kid,
        "token": done.token,
        "private_key_file": str(done.private_key_file) if done.private_key_file else None,
        "topics": list(done.topics),
        "kafka": dataclasses.asdict(done.kafka) if done.kafka is not None else None,
    }


@_run
def cmd_onboard_region(args: argparse.Namespace) -> int:
    region = _region(args)
    keys_dir_arg = args.keys_dir or (
        str(Path(args.data_dir) / DEFAULT_KEYS_SUBDIR) if args.data_dir else None
    )
    if keys_dir_arg is None:
        raise CliError("pass --keys-dir DIR (or --data-dir DIR to use DIR/partner-keys)")
    keys_dir = Path(keys_dir_arg)
    target = _target(args, database=True, broker=True)
    _migrate(target.database_url)

    from eropaf_intake import partners

    async def registered(session: AsyncSession) -> set[str]:
        return {p.code for p in await partners.list_partners(session)}

    known = asyncio.run(_in_transaction(target.database_url, registered))
    todo = [p for p in region.partners if p.code not in known]
    skipped = sorted(p.code for p in region.partners if p.code in known)
    if todo:
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_files = {p.code: _check_key_out(str(keys_dir / f"{p.code}.pem")) for p in todo}

    async def run() -> list[_Onboarded]:
        # One transaction per partner: a failure keeps the ones before it (and their keys).
        return [
            await _onboard_one(
                target, p.code, p.name, [t.value for t in p.types], None, key_files[p.code]
            )
            for p in todo
        ]

    done = asyncio.run(run())
    if args.json:
        _print_json({"onboarded": [_onboarded_json(d) for d in done], "skipped": skipped})
        return 0
    for d in done:
        print(f"{d.code}: kid: {d.kid} token: {d.token} key: {d.private_key_file}")
    if skipped:
        print(f"already registered: {', '.join(skipped)}")
    if done:
        print("the tokens are shown only this once", file=sys.stderr)
    return 0


@_run
def cmd_list(args: argparse.Namespace) -> int:
    from eropaf_intake import partners

    target = _target(args, database=True, broker=False)
    _migrate(target.database_url)
    rows = asyncio.run(_in_transaction(target.database_url, partners.list_partners))
    if args.json:
        _print_json(
            [
                {
                    "code": p.code,
                    "name": p.name,
                    "types": p.types,
                    "disabled": p.disabled,
                    "active_keys": p.active_keys,
                    "revoked_keys": p.revoked_keys,
                }
                for p in rows
            ]
        )
        return 0
    if not rows:
        print("no partners registered")
        return 0
    table = [("CODE", "NAME", "TYPES", "STATUS", "ACTIVE KEYS", "REVOKED")]
    table += [
        (
            p.code,
            p.name,
            ",".join(p.types),
            "disabled" if p.disabled else "enabled",
            " ".join(p.active_keys) or "-",
            str(len(p.revoked_keys)),
        )
        for p in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


@_run
def cmd_add_key(args: argparse.Namespace) -> int:
    from eropaf_intake import partners

    if args.public_key is None and args.generate_key is None:
        raise CliError("pass --public-key FILE or --generate-key OUT.pem")
    public_key_pem = _read_public_key(args.public_key)
    key_out = _check_key_out(args.generate_key)
    target = _target(args, database=True, broker=False)
    _migrate(target.database_url)

    async def action(session: AsyncSession) -> str:
        kid, private_pem = await partners.add_key(session, args.code, public_key_pem)
        if private_pem is not None:
            assert key_out is not None
            write_private_key(key_out, private_pem)  # inside the transaction: no key, no commit
        return kid

    try:
        kid = asyncio.run(_in_transaction(target.database_url, action))
    except BaseException:
        if key_out is not None and key_out.exists():
            key_out.unlink()
        raise
    if args.json:
        _print_json({"code": args.code, "kid": kid, "private_key_file": args.generate_key})
    else:
        print(f"kid: {kid}")
        if key_out is not None:
            print(f"private key: {key_out}")
    return 0


@_run
def cmd_revoke_key(args: argparse.Namespace) -> int:
    from eropaf_intake import partners

    target = _target(args, database=True, broker=False)
    _migrate(target.database_url)

    async def action(session: AsyncSession) -> list[str]:
        await partners.revoke_key(session, args.code, args.kid)
        mine = [p for p in await partners.list_partners(session) if p.code == args.code]
        return mine[0].active_keys if mine else []

    remaining = asyncio.run(_in_transaction(target.database_url, action))
    print(f"revoked key {args.kid} of {args.code}")
    if not remaining:
        print(
            f"warning: {args.code} has no active key left; its Kafka messages will be rejected",
            file=sys.stderr,
        )
    return 0


def _set_disabled(disabled: bool) -> Callable[[argparse.Namespace], int]:
    @_run
    def handler(args: argparse.Namespace) -> int:
        from eropaf_intake import partners

        target = _target(args, database=True, broker=False)
        _migrate(target.database_url)

        async def action(session: AsyncSession) -> None:
            await partners.set_disabled(session, args.code, disabled)

        asyncio.run(_in_transaction(target.database_url, action))
        print(f"partner {args.code} {'disabled' if disabled else 'enabled'}")
        return 0

    return handler


@_run
def cmd_new_token(args: argparse.Namespace) -> int:
    from eropaf_intake import partners

    target = _target(args, database=True, broker=False)
    _migrate(target.database_url)

    async def action(session: AsyncSession) -> str:
        return await partners.new_token(session, args.code)

    token = asyncio.run(_in_transaction(target.database_url, action))
    if args.json:
        _print_json({"code": args.code, "token": token})
    else:
        print(f"token: {token}")
        print("the old token no longer works; this one is shown only once", file=sys.stderr)
    return 0


# -- reference partner client --------------------------------------------------------------


def _reasons_text(reasons: Any) -> str:
    parts = []
    for reason in reasons or []:
        if not isinstance(reason, dict):
            continue
        where = f" [{reason['field']}]" if reason.get("field") else ""
        parts.append(f"{reason.get('code')}{where}: {reason.get('message')}")
    return "; ".join(parts)


@_run
def cmd_publish(args: argparse.Namespace) -> int:
    from eropaf_intake.client import PartnerClient, load_private_key, read_signals

    signals = read_signals(args.file, args.format, resolved=args.resolved)
    client = PartnerClient(
        args.code,
        _target(args, database=False, broker=True).bootstrap_servers,
        load_private_key(args.key),
        kid=args.kid,
    )

    async def run() -> tuple[list[str], dict[str, dict[str, Any]]]:
        ce_ids = await client.publish(signals, resolved=args.resolved)
        feedback = await client.wait_feedback(ce_ids, args.timeout) if args.wait_feedback else {}
        return ce_ids, feedback

    ce_ids, feedback = asyncio.run(run())
    if not args.wait_feedback:
        if args.json:
            _print_json(
                [{"ID": s.get("ID"), "ce_id": c} for s, c in zip(signals, ce_ids, strict=True)]
            )
        else:
            print(
                f"published {len(ce_ids)} signal(s) to arrears.signals.{args.code} "
                f"(kid {client.kid})"
            )
        return 0
    results = []
    for signal, ce_id in zip(signals, ce_ids, strict=True):
        answer = feedback.get(ce_id)
        results.append(
            {
                "ID": answer.get("ID") if answer else signal.get("ID"),
                "ce_id": ce_id,
                "status": answer.get("status") if answer else None,
                "reasons": answer.get("reasons", []) if answer else [],
            }
        )
    if args.json:
        _print_json(results)
    else:
        for r in results:
            status = r["status"] or f"no feedback within {args.timeout:g}s"
            print("\t".join(filter(None, [str(r["ID"]), status, _reasons_text(r["reasons"])])))
    # A rejection is a definite answer the partner must act on; it outranks a late one.
    if any(r["status"] == "rejected" for r in results):
        return EXIT_REJECTED
    if any(r["status"] is None for r in results):
        return EXIT_TIMEOUT
    return 0


# -- personal-data housekeeping ------------------------------------------------------------


def _default_retention_days() -> int:
    from eropaf_intake.app import IntakeSettings

    default = IntakeSettings.model_fields["personal_data_retention_days"].default
    return int(os.environ.get("EROPAF_PERSONAL_DATA_RETENTION_DAYS", default))


@_run
def cmd_purge(args: argparse.Namespace) -> int:
    from eropaf_intake.adapters.personal_data import purge_expired

    days = args.retention_days if args.retention_days is not None else _default_retention_days()
    if days < 0:
        raise CliError("--retention-days must be zero or more")
    target = _target(args, database=True, broker=False)
    _migrate(target.database_url)

    async def action(session: AsyncSession) -> int:
        return await purge_expired(session, days)

    removed = asyncio.run(_in_transaction(target.database_url, action))
    print(f"purged personal data of {removed} signal(s) whose case closed over {days} days ago")
    return 0


@_run
def cmd_shred(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from eropaf_intake.adapters.personal_data import households_of, shred_household
    from eropaf_intake.adapters.tables import personal_record

    refs: list[str] = args.signal_ref
    target = _target(args, database=True, broker=False)
    _migrate(target.database_url)

    async def action(session: AsyncSession) -> tuple[int, int]:
        households = await households_of(session, refs)
        if not households:
            raise CliError(f"no signal with ref {', '.join(refs)}")
        if not args.yes:
            records = await session.scalar(
                sa.select(sa.func.count())
                .select_from(personal_record)
                .where(personal_record.c.household_key.in_(households))
            )
            return len(households), -int(records or 0)  # negative: nothing done yet
        removed = 0
        for household in sorted(households):
            removed += await shred_household(session, household)
        return len(households), removed

    households, removed = asyncio.run(_in_transaction(target.database_url, action))
    if not args.yes:
        # A household's data key covers all its signals, so shredding takes them all.
        raise CliError(
            f"this irreversibly destroys the personal data of {households} household(s) "
            f"({-removed} record(s), every signal of those households); repeat with --yes"
        )
    print(f"shredded {households} household(s): {removed} personal record(s) destroyed")
    return 0


# -- argument parsing ----------------------------------------------------------------------


def _connection_options(*, database: bool, broker: bool) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("where the stack is")
    group.add_argument(
        "--data-dir", metavar="DIR", help="data dir of `eropaf up` (reads DIR/stack.json)"
    )
    if database:
        group.add_argument(
            "--database-url", metavar="URL", help="intake's PostgreSQL database (overrides DIR)"
        )
    if broker:
        group.add_argument(
            "--bootstrap-servers", metavar="HOST:PORT", help="Kafka bootstrap servers"
        )
    return parent


def _key_options(parser: argparse.ArgumentParser) -> None:
    keys = parser.add_mutually_exclusive_group(required=True)
    keys.add_argument("--public-key", metavar="FILE", help="the partner's Ed25519 public key (PEM)")
    keys.add_argument(
        "--generate-key",
        metavar="OUT.pem",
        help="generate a key pair; write the private key (PKCS#8 PEM, mode 0600) here",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = _connection_options(database=True, broker=False)
    admin_broker = _connection_options(database=True, broker=True)
    broker_only = _connection_options(database=False, broker=True)
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="machine-readable output")
    region_flag = argparse.ArgumentParser(add_help=False)
    region_flag.add_argument(
        "--region-file",
        metavar="FILE",
        help="region YAML (default: EROPAF_REGION_FILE or packaged)",
    )

    partner = subparsers.add_parser(
        "partner", help="partner administration and the reference partner client"
    )
    sub = partner.add_subparsers(dest="partner_command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "onboard",
        parents=[admin_broker, json_flag, region_flag],
        help="register a partner, its key and its two topics; prints its token once",
    )
    p.add_argument("code", help="partner code, [a-z0-9-]{2,32}")
    p.add_argument("--name", help="display name")
    p.add_argument(
        "--types",
        metavar="TYPE[,TYPE...]",
        help="DDAS partner types (signaalpartner.type), e.g. Huur or Energie,Water",
    )
    p.add_argument(
        "--from-region", action="store_true", help="take name and types from the region file"
    )
    _key_options(p)
    deployed = p.add_argument_group(
        "a deployed broker (SCRAM users and ACLs; EROPAF_KAFKA_SASL_* name its admin user)"
    )
    deployed.add_argument(
        "--partner-bootstrap",
        metavar="HOST:PORT",
        help="the partner listener as partners reach it: also create the partner's SCRAM user "
        "and ACLs, and print its connection settings once",
    )
    deployed.add_argument(
        "--partner-security-protocol",
        default="SASL_SSL",
        choices=["SASL_SSL", "SASL_PLAINTEXT"],
        help="of the partner listener (default SASL_SSL)",
    )
    p.set_defaults(handler=cmd_onboard)

    p = sub.add_parser(
        "onboard-region",
        parents=[admin_broker, json_flag, region_flag],
        help="onboard every region partner not registered yet, generating their keys",
    )
    p.add_argument(
        "--keys-dir", metavar="DIR", help="where private keys go (default DATA_DIR/partner-keys)"
    )
    p.set_defaults(handler=cmd_onboard_region)

    p = sub.add_parser("list", parents=[admin, json_flag], help="registered partners and keys")
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser(
        "add-key", parents=[admin, json_flag], help="add a key (rotation: old one stays valid)"
    )
    p.add_argument("code")
    _key_options(p)
    p.set_defaults(handler=cmd_add_key)

    p = sub.add_parser("revoke-key", parents=[admin], help="revoke one of a partner's keys")
    p.add_argument("code")
    # A kid is a base64url thumbprint: one in 64 starts with "-", which argparse would take
    # for an option unless it comes after "--".
    p.add_argument(
        "kid", help="key id as `partner list` shows it; one that starts with - goes after --"
    )
    p.set_defaults(handler=cmd_revoke_key)

    for name, disabled in (("disable", True), ("enable", False)):
        p = sub.add_parser(name, parents=[admin], help=f"{name} a partner's signals")
        p.add_argument("code")
        p.set_defaults(handler=_set_disabled(disabled))

    p = sub.add_parser(
        "new-token", parents=[admin, json_flag], help="replace a partner's HTTP token"
    )
    p.add_argument("code")
    p.set_defaults(handler=cmd_new_token)

    p = sub.add_parser(
        "publish",
        parents=[broker_only, json_flag],
        help="sign and publish a JSON, JSON lines or CSV file of signals (reference client)",
    )
    p.add_argument("code", help="the publishing partner's code")
    p.add_argument("file", help="JSON array, JSON lines, or CSV with DDAS column names")
    p.add_argument("--key", required=True, metavar="KEY.pem", help="partner's private key")
    p.add_argument("--kid", help="key id (default: RFC 7638 thumbprint, as onboard registers)")
    p.add_argument(
        "--format", choices=["auto", "json", "jsonl", "csv"], default="auto", help="file format"
    )
    p.add_argument(
        "--resolved",
        action="store_true",
        help='publish resolutions: items are {"ID": ..., "datumOpgelost": "YYYY-MM-DD"}',
    )
    p.add_argument(
        "--wait-feedback", action="store_true", help="wait for and print each signal's feedback"
    )
    p.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="feedback wait (default 30)"
    )
    p.set_defaults(handler=cmd_publish)

    intake = subparsers.add_parser("intake", help="intake's personal-data housekeeping")
    isub = intake.add_subparsers(dest="intake_command", required=True, metavar="COMMAND")
    p = isub.add_parser(
        "purge", parents=[admin], help="remove personal data past retention after case close"
    )
    p.add_argument(
        "--retention-days",
        type=int,
        metavar="N",
        help="default EROPAF_PERSONAL_DATA_RETENTION_DAYS or 365",
    )
    p.set_defaults(handler=cmd_purge)
    p = isub.add_parser(
        "shred", parents=[admin], help="crypto-shred the household of a signal (irreversible)"
    )
    p.add_argument("--signal-ref", required=True, action="append", metavar="REF", help="repeatable")
    p.add_argument("--yes", action="store_true", help="confirm the irreversible deletion")
    p.set_defaults(handler=cmd_shred)
