"""Simulated staff: the demo roster, a counsellor who falls ill, and the doorstep.

Only through the outside contract (CONTRACT §4): `eropaf staff import` and `eropaf staff
absent`, and the staff API over HTTP (`GET /v1/visits`, `GET /v1/backlog`,
`POST /v1/cases/{case_ref}/contact-attempts`). When scheduling does not offer these (the
command or the API is missing), the step says so and the demo carries on with 0 visits.

At the door, per visit in date order and decided by the seed: not at home (a card; scheduling
plans the next attempt at another part of day), reached and help accepted, reached and no help
needed, reached and already paid. Attempts are recorded with the visit's date (`datum`), which
is in the future of the wall clock: the month is compressed, the planner's calendar is not.
"""

from __future__ import annotations

import csv
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

from eropaf_demo.stack import eropaf_here, unknown_command

__all__ = ["OUTCOMES", "StaffResult", "roster_path", "simulate_staff", "weekly_capacity"]

# What staff find at the door (reached outcomes carry an EnumEindresultaat).
NOT_AT_HOME = "not at home"
OUTCOMES: dict[str, str | None] = {
    NOT_AT_HOME: None,
    "help accepted": "Vervolghulp en/of verwijzing financieel",
    "advice (quick fix)": "(Budget)advies en/of quick fix",
    "no help needed": "Inwoner hoeft geen hulp vanuit vroegsignalering",
    "already paid": "Inwoner heeft zelf al betaald/betalingsregeling getroffen",
}
_WEIGHTS = {
    NOT_AT_HOME: 30,
    "help accepted": 32,
    "advice (quick fix)": 10,
    "no help needed": 14,
    "already paid": 14,
}
HELP_ACCEPTED = frozenset({"help accepted", "advice (quick fix)"})
_TOKEN_LINE = re.compile(r"^token\s+(\S+)\s+(\S+)\s*$")
VISIT_HORIZON_DAYS = 90


def roster_path() -> Path:
    """The region's demo roster when the contracts package ships one, else the demo's own."""
    shipped = files("eropaf_contracts") / "regions" / "lekstroom-staff.csv"
    if shipped.is_file():
        return Path(str(shipped))
    return Path(str(files("eropaf_demo") / "data" / "lekstroom-staff.csv"))


def read_roster(path: Path) -> list[dict[str, str]]:
    text = path.read_text(encoding="utf-8-sig")
    delimiter = ";" if text.splitlines()[0].count(";") > text.splitlines()[0].count(",") else ","
    return [dict(row) for row in csv.DictReader(text.splitlines(), delimiter=delimiter)]


def weekly_capacity(roster: list[dict[str, str]]) -> dict[str, float]:
    """Visits a week per municipality: each counsellor's `max_per_week` shared evenly over the
    municipalities they serve (a visit needs one counsellor of the team)."""
    capacity: dict[str, float] = {}
    for row in roster:
        if row.get("rol") != "schuldhulpverlener":
            continue
        gemeenten = [g for g in (row.get("gemeenten") or "").split("|") if g]
        for g in gemeenten:
            share = int(row.get("max_per_week") or 0) / len(gemeenten)
            capacity[g] = capacity.get(g, 0.0) + share
    return dict(capacity)


@dataclass
class StaffResult:
    available: bool = False
    note: str = ""
    imported: int = 0
    visits: list[dict[str, Any]] = field(default_factory=list)
    backlog: list[dict[str, Any]] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)  # outcome -> number recorded
    case_outcome: dict[str, str] = field(default_factory=dict)  # case_ref -> outcome name
    refused: Counter[str] = field(default_factory=Counter)  # "HTTP 422: ..." -> count
    absent: str | None = None  # "code from..to"
    moved_visits: int = 0
    capacity: dict[str, float] = field(default_factory=dict)


class _Api:
    def __init__(self, base_url: str, tokens: dict[str, str], transport: Any = None) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.client = httpx.Client(base_url=self.base_url, timeout=30, transport=transport)

    def get(self, path: str, token: str, **params: str) -> Any:
        response = self.client.get(
            path, params=params, headers={"Authorization": f"Bearer {token}"}
        )
        response.raise_for_status()
        return response.json()

    def post(self, path: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
        response = self.client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    def close(self) -> None:
        self.client.close()


def import_roster(data_dir: Path, path: Path) -> tuple[dict[str, str] | None, str]:
    """`eropaf staff import`: the staff API tokens by staff code, or None and why not."""
    result = eropaf_here("staff", "import", str(path), "--data-dir", str(data_dir))
    if unknown_command(result):
        return None, "scheduling not available (no `eropaf staff import`)"
    if result.returncode != 0:
        return None, f"staff import failed: {(result.stderr or result.stdout).strip()[:300]}"
    tokens = {}
    for line in result.stdout.splitlines():
        match = _TOKEN_LINE.match(line.strip())
        if match:
            tokens[match.group(1)] = match.group(2)
    return tokens, f"{len(tokens)} staff imported"


def simulate_staff(
    *,
    data_dir: Path,
    scheduling_url: str | None,
    tokens: dict[str, str] | None,
    roster: list[dict[str, str]],
    home_visit_cases: Callable[[], set[str]],
    seed: int,
    today: date,
    status: Callable[[str], None] = lambda _: None,
    timeout: float = 60.0,
    transport: Any = None,
    stable_key: Callable[[str], str] = lambda case_ref: case_ref,
) -> StaffResult:
    """Plan, fall ill, visit: see the module docstring. Never raises for a missing scheduling.
    `timeout` bounds the whole step (the demo has a time budget); what is not done by then is
    left planned. What staff find at a door is drawn from the seed and `stable_key(case_ref)`
    (case references derive from the stack's own secret key, so they differ per run)."""
    result = StaffResult(capacity=weekly_capacity(roster))
    if tokens is None:
        result.note = "scheduling not available"
        return result
    result.imported = len(tokens)
    coordinators = [r["code"] for r in roster if r.get("rol") == "coordinator"]
    # A coordinator sees every case of their municipalities; without one, the counsellors
    # together see their team's cases.
    counsellors = [r["code"] for r in roster if r.get("rol") == "schuldhulpverlener"]
    watcher = tuple(tokens[c] for c in coordinators if c in tokens) or tuple(
        tokens[c] for c in counsellors if c in tokens
    )
    if not scheduling_url or not watcher:
        result.note = "scheduling not available (no staff API or no staff token)"
        return result
    api = _Api(scheduling_url, tokens, transport)
    try:
        try:
            _visits(api, watcher, today)
        except Exception as exc:  # the API is not there (yet)
            result.note = f"scheduling not available (GET /v1/visits: {exc})"
            return result
        result.available = True
        status("waiting for the planner")
        end = time.monotonic() + timeout

        def left(share: float) -> float:
            return max(1.0, (end - time.monotonic()) * share)

        _wait_planned(api, watcher, today, home_visit_cases, left(0.4))
        _fall_ill(api, watcher, data_dir, today, roster, result, status, left(0.3))
        _doorstep(api, watcher, today, seed, result, status, left(1.0), stable_key)
        result.visits = _visits(api, watcher, today)
        result.backlog = _backlog(api, watcher)
        result.note = (
            f"{len(result.visits)} visits, {sum(result.attempts.values())} contact attempts"
        )
    finally:
        api.close()
    return result


def _visits(api: _Api, tokens: Sequence[str], today: date) -> list[dict[str, Any]]:
    """Every visit the given staff see (by visit id), planned ones in the whole horizon."""
    start, end = today - timedelta(days=60), today + timedelta(days=VISIT_HORIZON_DAYS)
    seen: dict[str, dict[str, Any]] = {}
    for token in tokens:
        data = api.get("/v1/visits", token, **{"from": start.isoformat(), "to": end.isoformat()})
        for visit in data.get("visits", []):
            seen.setdefault(visit["visit_id"], visit)
    return list(seen.values())


def _backlog(api: _Api, tokens: Sequence[str]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for token in tokens:
        for case in api.get("/v1/backlog", token).get("cases", []):
            seen.setdefault(case["case_ref"], case)
    return list(seen.values())


def _wait_planned(
    api: _Api,
    token: Sequence[str],
    today: date,
    home_visit_cases: Callable[[], set[str]],
    timeout: float,
) -> None:
    """Until every home-visit case has a visit or is in the backlog and that stays so 2 s."""
    deadline, stable_since, last = time.monotonic() + timeout, time.monotonic(), -1
    while time.monotonic() < deadline:
        visits = _visits(api, token, today)
        backlog = _backlog(api, token)
        covered = {v["case_ref"] for v in visits} | {c["case_ref"] for c in backlog}
        count = len(visits) + len(backlog)
        if count != last:
            stable_since, last = time.monotonic(), count
        if home_visit_cases() <= covered and time.monotonic() - stable_since > 2:
            return
        time.sleep(0.5)


def _fall_ill(
    api: _Api,
    token: Sequence[str],
    data_dir: Path,
    today: date,
    roster: list[dict[str, str]],
    result: StaffResult,
    status: Callable[[str], None],
    timeout: float,
) -> None:
    """The counsellor with the most planned visits falls ill for a week mid-planning."""
    counsellors = {r["code"] for r in roster if r.get("rol") == "schuldhulpverlener"}
    planned = [v for v in _visits(api, token, today) if v.get("status") == "planned"]
    load = Counter(code for v in planned for code in v.get("staff", []) if code in counsellors)
    if not load:
        return
    code = load.most_common(1)[0][0]
    theirs = sorted(date.fromisoformat(v["datum"]) for v in planned if code in v.get("staff", []))
    first = theirs[len(theirs) // 2]
    last = first + timedelta(days=6)
    status(f"{code} falls ill {first}..{last}")
    done = eropaf_here(
        "staff", "absent", code, "--from", first.isoformat(), "--to", last.isoformat(),
        "--data-dir", str(data_dir),
    )  # fmt: skip
    if done.returncode != 0:
        result.refused[f"staff absent: {(done.stderr or done.stdout).strip()[:120]}"] += 1
        return
    result.absent = f"{code} {first}..{last}"
    before = {v["visit_id"]: v for v in planned}
    affected = {
        v["visit_id"]
        for v in planned
        if code in v.get("staff", []) and first <= date.fromisoformat(v["datum"]) <= last
    }
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = {v["visit_id"]: v for v in _visits(api, token, today)}
        still = [
            i
            for i in affected
            if i in now
            and now[i].get("status") == "planned"
            and code in now[i].get("staff", [])
            and first <= date.fromisoformat(now[i]["datum"]) <= last
        ]
        if not still:
            break
        time.sleep(0.5)
    now = {v["visit_id"]: v for v in _visits(api, token, today)}
    result.moved_visits = sum(
        1
        for i in affected
        if i not in now
        or (now[i].get("datum"), now[i].get("dagdeel"), now[i].get("staff"))
        != (before[i].get("datum"), before[i].get("dagdeel"), before[i].get("staff"))
    )


def _doorstep(
    api: _Api,
    watcher: Sequence[str],
    today: date,
    seed: int,
    result: StaffResult,
    status: Callable[[str], None],
    timeout: float,
    stable_key: Callable[[str], str],
) -> None:
    """Every planned visit in date order gets its contact attempt; unanswered doors get the
    next attempt that scheduling plans, until no planned visit is left (or the deadline)."""
    deadline = time.monotonic() + timeout
    handled: set[str] = set()
    while time.monotonic() < deadline:
        todo = sorted(
            (
                v
                for v in _visits(api, watcher, today)
                if v.get("status") == "planned" and v["visit_id"] not in handled
            ),
            key=lambda v: (v.get("start") or v["datum"], v["visit_id"]),
        )
        if not todo:
            if not _wait_new_visits(api, watcher, today, handled, min(5.0, timeout / 4)):
                return
            continue
        for visit in todo:
            handled.add(visit["visit_id"])
            _visit(api, visit, seed, result, stable_key(visit["case_ref"]))
        status(f"{sum(result.attempts.values())} contact attempts recorded")


def _wait_new_visits(
    api: _Api, token: Sequence[str], today: date, handled: set[str], seconds: float
) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        visits = _visits(api, token, today)
        if any(v.get("status") == "planned" and v["visit_id"] not in handled for v in visits):
            return True
        time.sleep(0.5)
    return False


def _visit(api: _Api, visit: dict[str, Any], seed: int, result: StaffResult, key: str) -> None:
    rng = random.Random(f"{seed}/{key}/{visit.get('attempt', 1)}")
    outcome = rng.choices(list(_WEIGHTS), weights=list(_WEIGHTS.values()))[0]
    token = next((api.tokens[c] for c in visit.get("staff", []) if c in api.tokens), None)
    if token is None:
        result.refused["no token for the visit's staff"] += 1
        return
    body = {
        "contactsoort": "Huisbezoek",
        "datum": visit["datum"],
        "dagdeel": visit.get("dagdeel"),
        "bereikt": outcome != NOT_AT_HOME,
        "eindresultaat": OUTCOMES[outcome],
        "visit_id": visit["visit_id"],
    }
    code, answer = api.post(f"/v1/cases/{visit['case_ref']}/contact-attempts", token, body)
    if code == 201:
        result.attempts[outcome] += 1
        if outcome != NOT_AT_HOME:
            result.case_outcome[visit["case_ref"]] = outcome
        return
    detail = answer.get("detail") if isinstance(answer, dict) else answer
    result.refused[f"HTTP {code}: {str(detail)[:100]}"] += 1
