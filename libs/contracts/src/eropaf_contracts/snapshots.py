"""Contract-versioning guard: JSON-Schema snapshots of every contract model.

Each contract has a snapshot ``<name>.json`` = ``{"version": N, "schema": ...}`` under
``libs/contracts/tests/snapshots/``. A unit test fails when a model's schema no longer equals
its snapshot while its version is unchanged: consumers would meet a changed contract under an
old version. Fix: bump ``VERSION`` (partner contracts: the ``.vN`` of the type), then run

    python -m eropaf_contracts.snapshots --update

``--update`` refuses to record a changed schema under an unchanged version unless ``--force``
is given (for changes that provably do not alter the wire format, e.g. a description).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from eropaf_contracts.events import EVENT_PAYLOADS
from eropaf_contracts.feedback import Feedback
from eropaf_contracts.signals import PartnerSignal, SignalResolved

__all__ = ["CONTRACTS", "DEFAULT_DIR", "Contract", "check", "main", "render", "update"]

# Source layout: libs/contracts/src/eropaf_contracts/snapshots.py -> libs/contracts/tests/snapshots
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "tests" / "snapshots"


@dataclass(frozen=True)
class Contract:
    name: str
    model: type[BaseModel]
    version: int

    def snapshot(self) -> dict[str, Any]:
        schema = _without_descriptions(self.model.model_json_schema(by_alias=True))
        return {"version": self.version, "schema": schema}


def _without_descriptions(node: Any) -> Any:
    # Docstrings end up as "description"; rewording one must not demand a version bump.
    # Only string values are dropped: a *property* named "description" maps to a dict.
    if isinstance(node, dict):
        return {
            k: _without_descriptions(v)
            for k, v in node.items()
            if not (k == "description" and isinstance(v, str))
        }
    if isinstance(node, list):
        return [_without_descriptions(v) for v in node]
    return node


CONTRACTS: tuple[Contract, ...] = (
    Contract("partner.signal", PartnerSignal, PartnerSignal.VERSION),
    Contract("partner.signal_resolved", SignalResolved, SignalResolved.VERSION),
    Contract("partner.feedback", Feedback, Feedback.VERSION),
    *(Contract(event_type, cls, cls.VERSION) for event_type, cls in EVENT_PAYLOADS.items()),
)


def render(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _load(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def check(contract: Contract, directory: Path = DEFAULT_DIR) -> str | None:
    """None when the snapshot matches; otherwise what is wrong and how to fix it."""
    path = directory / f"{contract.name}.json"
    stored = _load(path)
    regen = "regenerate with `python -m eropaf_contracts.snapshots --update`"
    if stored is None:
        return f"{contract.name}: no snapshot at {path}; {regen}"
    current = contract.snapshot()
    if stored == current:
        return None
    if stored.get("version") == contract.version:
        return (
            f"{contract.name}: schema changed but version is still {contract.version}; "
            f"bump VERSION and {regen}"
        )
    return (
        f"{contract.name}: version changed {stored.get('version')} -> {contract.version} "
        f"but the snapshot was not; {regen}"
    )


def update(directory: Path = DEFAULT_DIR, *, force: bool = False) -> list[str]:
    """Write changed snapshots and return their names; SystemExit on a change without a bump."""
    directory.mkdir(parents=True, exist_ok=True)
    refused: list[str] = []
    written: list[str] = []
    for contract in CONTRACTS:
        path = directory / f"{contract.name}.json"
        stored = _load(path)
        current = contract.snapshot()
        if stored == current:
            continue
        if stored is not None and stored.get("version") == contract.version and not force:
            refused.append(contract.name)
            continue
        path.write_text(render(current), encoding="utf-8")
        written.append(contract.name)
    if refused:
        raise SystemExit(
            "schema changed without a version bump (bump VERSION first, or --force): "
            + ", ".join(refused)
        )
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eropaf_contracts.snapshots")
    parser.add_argument("--update", action="store_true", help="write changed snapshots")
    parser.add_argument("--force", action="store_true", help="overwrite without a version bump")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="snapshot directory")
    args = parser.parse_args(argv)
    if args.update:
        for name in update(args.dir, force=args.force):
            print(f"wrote {name}")
        return 0
    problems = [p for c in CONTRACTS if (p := check(c, args.dir))]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
