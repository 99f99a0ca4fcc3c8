"""The staff step against a fake of the staff API (CONTRACT §4.2): visits in date order get
their contact attempt, a door not answered gets the next attempt, the ill counsellor's visits
move, and a missing scheduling is reported, not raised."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from eropaf_demo import staff
from eropaf_demo.stack import Done
from eropaf_demo.staff import NOT_AT_HOME, simulate_staff, weekly_capacity

pytestmark = pytest.mark.unit

TODAY = date(2026, 12, 3)
ROSTER = [
    {"code": "c1", "rol": "schuldhulpverlener", "gemeenten": "0356", "max_per_week": "10"},
    {"code": "c2", "rol": "schuldhulpverlener", "gemeenten": "0356|0321", "max_per_week": "8"},
    {"code": "m1", "rol": "medewerker", "gemeenten": "0356", "max_per_week": "5"},
    {"code": "boss", "rol": "coordinator", "gemeenten": "0356|0321", "max_per_week": "0"},
]
TOKENS = {"c1": "t-c1", "c2": "t-c2", "m1": "t-m1", "boss": "t-boss"}
DAGDELEN = ("Ochtend", "Middag", "Avond")


class FakeScheduling:
    """Just enough of the staff API: plans one visit per case, a next attempt at another part
    of day after a card, and moves the visits of an absent counsellor to the other one."""

    def __init__(self, cases: list[str]) -> None:
        self.visits: dict[str, dict[str, Any]] = {}
        self.attempts: list[tuple[str, dict[str, Any]]] = []
        for n, case in enumerate(cases):
            self._plan(case, TODAY + timedelta(days=1 + n), 1, "c1" if n % 2 else "c2", 0)

    def _plan(self, case: str, day: date, attempt: int, counsellor: str, part: int) -> None:
        visit_id = f"v-{case}-{attempt}"
        self.visits[visit_id] = {
            "visit_id": visit_id, "case_ref": case, "gemeentecode": "0356",
            "datum": day.isoformat(), "dagdeel": DAGDELEN[part % 3],
            "start": f"{day}T09:00:00+01:00", "end": f"{day}T10:00:00+01:00",
            "staff": ["m1", counsellor], "status": "planned", "sequence": 0, "attempt": attempt,
        }  # fmt: skip

    def absent(self, code: str, first: date, last: date) -> None:
        for v in self.visits.values():
            if code in v["staff"] and first <= date.fromisoformat(v["datum"]) <= last:
                v["staff"] = ["m1", "c2" if code == "c1" else "c1"]
                v["sequence"] += 1

    def handle(self, request: httpx.Request) -> httpx.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in TOKENS.values():
            return httpx.Response(401, json={"detail": "unknown token"})
        path = request.url.path
        if path == "/v1/visits":
            return httpx.Response(200, json={"visits": list(self.visits.values())})
        if path == "/v1/backlog":
            return httpx.Response(200, json={"cases": []})
        if path.endswith("/contact-attempts"):
            body = json.loads(request.content)
            case = path.split("/")[3]
            visit = self.visits[body["visit_id"]]
            if visit["status"] != "planned" or visit["case_ref"] != case:
                return httpx.Response(409, json={"detail": "visit not planned"})
            if body["bereikt"] and not body["eindresultaat"]:
                return httpx.Response(422, json={"detail": "eindresultaat required"})
            visit["status"] = "done"
            self.attempts.append((token, body))
            if not body["bereikt"] and visit["attempt"] < 3:
                day = date.fromisoformat(visit["datum"]) + timedelta(days=2)
                part = DAGDELEN.index(visit["dagdeel"]) + 1
                self._plan(case, day, visit["attempt"] + 1, visit["staff"][1], part)
            return httpx.Response(201, json=body)
        return httpx.Response(404, json={"detail": "not found"})


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeScheduling:
    api = FakeScheduling([f"case{n:02d}" for n in range(12)])

    def commands(*args: str) -> Done:
        if args[:2] == ("staff", "absent"):
            api.absent(args[2], date.fromisoformat(args[4]), date.fromisoformat(args[6]))
        return Done(0, "", "")

    monkeypatch.setattr(staff, "eropaf_here", commands)
    return api


def _run(fake: FakeScheduling, tokens: dict[str, str] | None = TOKENS) -> staff.StaffResult:
    return simulate_staff(
        data_dir=Path("/nonexistent"),
        scheduling_url="http://scheduling.test",
        tokens=tokens,
        roster=ROSTER,
        home_visit_cases=lambda: {v["case_ref"] for v in fake.visits.values()},
        seed=3,
        today=TODAY,
        timeout=10,
        transport=httpx.MockTransport(fake.handle),
    )


def test_every_visit_gets_an_attempt_in_date_order_by_its_own_staff(fake: FakeScheduling) -> None:
    result = _run(fake)
    assert result.available and not result.refused
    first_attempts = [b for _, b in fake.attempts if b["visit_id"].endswith("-1")]
    assert len(first_attempts) == 12
    dates = [b["datum"] for _, b in fake.attempts]
    assert dates[:12] == sorted(dates[:12])
    for token, body in fake.attempts:
        visit = fake.visits[body["visit_id"]]
        assert token in {TOKENS[c] for c in visit["staff"]}
        assert body["datum"] == visit["datum"] and body["contactsoort"] == "Huisbezoek"
        assert (body["eindresultaat"] is None) == (not body["bereikt"])


def test_a_door_not_answered_gets_the_next_attempt(fake: FakeScheduling) -> None:
    result = _run(fake)
    assert result.attempts[NOT_AT_HOME] >= 1
    later = [b for _, b in fake.attempts if not b["visit_id"].endswith("-1")]
    assert len(later) >= result.attempts[NOT_AT_HOME] - sum(
        1 for v in fake.visits.values() if v["attempt"] == 3
    )
    reached = {c for c, o in result.case_outcome.items() if o != NOT_AT_HOME}
    assert reached == set(result.case_outcome)


def test_the_ill_counsellors_visits_move(fake: FakeScheduling) -> None:
    result = _run(fake)
    assert result.absent is not None
    code = result.absent.split()[0]
    assert code in {"c1", "c2"} and result.moved_visits >= 1


def test_no_scheduling_is_reported_not_raised(fake: FakeScheduling) -> None:
    result = _run(fake, tokens=None)
    assert not result.available and "not available" in result.note


def test_capacity_is_shared_over_the_municipalities_served() -> None:
    assert weekly_capacity(ROSTER) == {"0356": 14.0, "0321": 4.0}


def test_without_a_coordinator_the_counsellors_tokens_watch(fake: FakeScheduling) -> None:
    result = simulate_staff(
        data_dir=Path("/nonexistent"),
        scheduling_url="http://scheduling.test",
        tokens={k: v for k, v in TOKENS.items() if k != "boss"},
        roster=[r for r in ROSTER if r["rol"] != "coordinator"],
        home_visit_cases=lambda: {v["case_ref"] for v in fake.visits.values()},
        seed=3,
        today=TODAY,
        timeout=10,
        transport=httpx.MockTransport(fake.handle),
    )
    assert result.available
    assert sum(result.attempts.values()) >= 12
