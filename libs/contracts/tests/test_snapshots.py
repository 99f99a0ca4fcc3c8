from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from eropaf_contracts.snapshots import CONTRACTS, DEFAULT_DIR, Contract, check, render, update

pytestmark = pytest.mark.unit

HERE = Path(__file__).parent / "snapshots"


def test_snapshot_dir_is_this_one() -> None:
    assert DEFAULT_DIR == HERE.resolve()


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.name)
def test_contract_matches_its_snapshot(contract: Contract) -> None:
    problem = check(contract, HERE)
    assert problem is None, problem


def test_no_stale_snapshots() -> None:
    assert {p.stem for p in HERE.glob("*.json")} == {c.name for c in CONTRACTS}


class _V1(BaseModel):
    a: int


class _V1Changed(BaseModel):
    a: int
    b: str


def test_guard_fails_on_change_without_bump_and_update_refuses(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text(render(Contract("x", _V1, 1).snapshot()))
    changed = Contract("x", _V1Changed, 1)

    problem = check(changed, tmp_path)

    assert problem is not None
    assert "bump VERSION" in problem
    assert "python -m eropaf_contracts.snapshots --update" in problem


def test_guard_accepts_change_with_bump_after_regeneration(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text(render(Contract("x", _V1, 1).snapshot()))
    bumped = Contract("x", _V1Changed, 2)
    assert check(bumped, tmp_path) is not None  # bumped but not regenerated yet
    (tmp_path / "x.json").write_text(render(bumped.snapshot()))
    assert check(bumped, tmp_path) is None


def test_update_writes_all_and_refuses_unbumped_changes(tmp_path: Path) -> None:
    assert len(update(tmp_path)) == len(CONTRACTS)
    assert update(tmp_path) == []
    target = tmp_path / f"{CONTRACTS[0].name}.json"
    stored = json.loads(target.read_text())
    stored["schema"]["properties"] = {}
    target.write_text(render(stored))
    with pytest.raises(SystemExit, match="without a version bump"):
        update(tmp_path)
    assert update(tmp_path, force=True) == [CONTRACTS[0].name]
