"""The demo's outcome: tables per partner and per municipality, and the checks against the
generator's ground truth (every message answered as expected, every household one case,
every home-visit case a visit or a backlog reason, no personal data in staff mail)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from eropaf_demo.replay import Observed
from eropaf_demo.simulate import Month
from eropaf_demo.staff import HELP_ACCEPTED, NOT_AT_HOME, StaffResult

__all__ = ["Check", "Summary", "build_summary", "mail_personal_data"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Summary:
    month: Month
    partners: list[dict[str, Any]]
    municipalities: list[dict[str, Any]]
    checks: list[Check]
    funnel: list[tuple[str, int]]
    signals_per_week: dict[str, Counter[str]]  # partner -> ISO week label -> count
    visits_per_week: Counter[str]  # ISO week label -> visits
    capacity_per_week: float
    staff_note: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def _week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def mail_personal_data(month: Month, mails: list[Path]) -> list[str]:
    """Mail files that contain a generated citizen service number, postcode or e-mail address."""
    needles: set[str] = set()
    for m in month.messages:
        client = (m.body or {}).get("client") or {}
        for key in ("Burgerservicenummer",):
            if client.get(key):
                needles.add(str(client[key]))
        postcode = str(client.get("Postcode") or "").replace(" ", "").upper()
        if len(postcode) == 6:
            needles.update({postcode, f"{postcode[:4]} {postcode[4:]}"})
        email = ((m.body or {}).get("contactgegevens") or {}).get("email")
        if email:
            needles.add(email)
    pattern = re.compile("|".join(re.escape(n) for n in sorted(needles))) if needles else None
    found = []
    for path in mails:
        text = path.read_text(errors="replace")
        if pattern is not None and pattern.search(text):
            found.append(path.name)
    return found


def build_summary(
    month: Month,
    feedback: dict[int, dict[str, Any]],
    observed: Observed,
    refs: dict[str, tuple[str, str]],
    staff: StaffResult,
    mails: list[Path],
    municipality_names: dict[str, str],
) -> Summary:
    by_signal = {s: h.ref for h in month.households for s in h.signal_ids}
    household_of = {ref: by_signal.get(pid) for ref, pid in refs.items()}
    cases = observed.open_cases()
    outreach, closed = observed.outreach, observed.closed
    case_households: dict[str, set[str]] = {
        ref: {h for s in c.get("signal_refs", []) if (h := household_of.get(s)) is not None}
        for ref, c in cases.items()
    }
    case_partners = {
        ref: {refs[s][0] for s in c.get("signal_refs", []) if s in refs} for ref, c in cases.items()
    }

    # -- per partner
    partners = []
    for code, messages in sorted(month.by_partner().items()):
        statuses: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        for m in messages:
            answer = feedback.get(m.seq)
            if answer is None:
                statuses["unanswered"] += 1
                continue
            statuses[str(answer.get("status"))] += 1
            for reason in answer.get("reasons") or []:
                reasons[str(reason.get("code"))] += 1
        partners.append(
            {
                "partner": code,
                "channel": messages[0].channel,
                "sent": len(messages),
                "accepted": statuses["accepted"],
                "duplicate": statuses["duplicate"],
                "rejected": statuses["rejected"],
                "reasons": dict(reasons),
                "unanswered": statuses["unanswered"],
                "cases": sum(1 for p in case_partners.values() if code in p),
            }
        )

    # -- per municipality
    mail_by_case: Counter[str] = Counter()
    for path in mails:
        text = path.read_text(errors="replace")
        for ref in cases:
            if ref[:8] in text:
                mail_by_case[ref] += 1
    visits = [v for v in staff.visits if v.get("status") != "cancelled"]
    backlog = {c["case_ref"]: c for c in staff.backlog}
    municipalities = []
    for code, name in municipality_names.items():
        in_gemeente = {r for r, c in cases.items() if c.get("gemeentecode") == code}
        kinds = Counter(str(outreach[r].get("outreach")) for r in in_gemeente if r in outreach)
        outcomes = {r: o for r, o in staff.case_outcome.items() if r in in_gemeente}
        municipalities.append(
            {
                "gemeente": f"{name} ({code})",
                "code": code,
                "cases": len(in_gemeente),
                "outreach": dict(kinds),
                "visits": sum(1 for v in visits if v.get("gemeentecode") == code),
                "capacity_week": staff.capacity.get(code, 0.0),
                "backlog": sum(1 for c in backlog.values() if c.get("gemeentecode") == code),
                "reached": len(outcomes),
                "help_accepted": sum(1 for o in outcomes.values() if o in HELP_ACCEPTED),
                "mails": sum(mail_by_case[r] for r in in_gemeente),
                "closed": sum(1 for r in in_gemeente if r in closed),
            }
        )

    # -- checks against the ground truth
    checks = []
    wrong = []
    for m in month.messages:
        answer = feedback.get(m.seq)
        if answer is None:
            wrong.append(f"#{m.seq} {m.partner} {m.signal_id}: no answer")
            continue
        codes = {str(r.get("code")) for r in answer.get("reasons") or []}
        if answer.get("status") != m.expected_status or (
            m.expected_reason is not None and m.expected_reason not in codes
        ):
            wrong.append(
                f"#{m.seq} {m.partner} {m.bad or m.kind}: {answer.get('status')} {sorted(codes)}"
                f", expected {m.expected_status} {m.expected_reason or ''}".rstrip()
            )
    checks.append(
        Check(
            "every message answered as expected",
            not wrong,
            f"{len(month.messages) - len(wrong)}/{len(month.messages)}"
            + (f"; e.g. {'; '.join(wrong[:3])}" if wrong else ""),
        )
    )
    mixed = [r for r, hs in case_households.items() if len(hs) != 1]
    expected = {h.ref for h in month.households if h.signal_ids}
    seen: Counter[str] = Counter(h for hs in case_households.values() for h in hs)
    split = sorted(h for h in expected if seen[h] != 1)
    checks.append(
        Check(
            "every household one case",
            not mixed and not split and len(cases) == len(expected),
            f"{len(cases)} cases for {len(expected)} households"
            + (f"; {len(mixed)} cases mix households" if mixed else "")
            + (
                f"; {len(split)} households not in exactly one case, e.g. {split[:3]}"
                if split
                else ""
            ),
        )
    )
    home = {r for r, d in outreach.items() if d.get("outreach") == "home_visit" and r in cases}
    if staff.available:
        with_visit = {v["case_ref"] for v in staff.visits}
        ended = set(staff.case_outcome) | set(closed)
        lacking = sorted(home - with_visit - set(backlog) - ended)
        checks.append(
            Check(
                "every home-visit case a visit or a backlog reason",
                not lacking,
                f"{len(home)} home-visit cases, {len(home & with_visit)} with a visit, "
                f"{len(home & set(backlog))} in the backlog"
                + (f"; {len(lacking)} with neither" if lacking else ""),
            )
        )
    leaked = mail_personal_data(month, mails)
    checks.append(
        Check(
            "staff mail without personal data",
            not leaked,
            f"{len(mails)} messages" + (f"; personal data in {leaked[:3]}" if leaked else ""),
        )
    )

    # -- charts' data
    accepted_signals = sum(
        1
        for m in month.messages
        if m.kind == "signal" and feedback.get(m.seq, {}).get("status") == "accepted"
    )
    funnel = [
        ("messages sent", len(month.messages)),
        ("signals accepted", accepted_signals),
        ("cases (households)", len(cases)),
        ("outreach decided", sum(1 for r in outreach if r in cases)),
        ("home visits", len(home)),
        ("visit planned", len({v["case_ref"] for v in visits} & home) if visits else 0),
        ("reached", len(staff.case_outcome)),
        ("help accepted", sum(1 for o in staff.case_outcome.values() if o in HELP_ACCEPTED)),
    ]
    per_week: dict[str, Counter[str]] = defaultdict(Counter)
    for m in month.messages:
        if m.kind == "signal":
            per_week[m.partner][_week(m.day)] += 1
    visits_per_week: Counter[str] = Counter(
        _week(date.fromisoformat(v["datum"])) for v in visits if v.get("datum")
    )
    note = staff.note
    if staff.attempts.get(NOT_AT_HOME):
        note += f"; {staff.attempts[NOT_AT_HOME]} not at home (card left)"
    if staff.absent:
        note += f"; ill: {staff.absent}, {staff.moved_visits} visits moved"
    if staff.refused:
        note += "; refused: " + ", ".join(f"{k} x{v}" for k, v in staff.refused.most_common(3))
    return Summary(
        month=month,
        partners=partners,
        municipalities=municipalities,
        checks=checks,
        funnel=funnel,
        signals_per_week=dict(per_week),
        visits_per_week=visits_per_week,
        capacity_per_week=sum(staff.capacity.values()),
        staff_note=note,
    )


def render(summary: Summary) -> Any:
    """Rich renderables: the per-partner and per-municipality tables and the checks."""
    from rich.console import Group
    from rich.table import Table

    partners = Table(title="Per partner", title_justify="left")
    for column in (
        "partner",
        "channel",
        "sent",
        "accepted",
        "dup",
        "rejected (reason)",
        "no answer",
        "cases",
    ):
        partners.add_column(
            column,
            justify="left" if column in ("partner", "channel", "rejected (reason)") else "right",
        )
    for p in summary.partners:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(p["reasons"].items()))
        partners.add_row(
            p["partner"], p["channel"], str(p["sent"]), str(p["accepted"]), str(p["duplicate"]),
            f"{p['rejected']}" + (f" ({reasons})" if reasons else ""), str(p["unanswered"]),
            str(p["cases"]),
        )  # fmt: skip
    gemeenten = Table(title="Per municipality", title_justify="left")
    for column in (
        "gemeente",
        "cases",
        "outreach",
        "visits",
        "cap/week",
        "backlog",
        "reached",
        "help",
        "mails",
    ):
        gemeenten.add_column(
            column, justify="left" if column in ("gemeente", "outreach") else "right"
        )
    for g in summary.municipalities:
        gemeenten.add_row(
            g["gemeente"], str(g["cases"]),
            ", ".join(f"{k} {v}" for k, v in sorted(g["outreach"].items())),
            str(g["visits"]), f"{g['capacity_week']:.0f}", str(g["backlog"]), str(g["reached"]),
            str(g["help_accepted"]), str(g["mails"]),
        )  # fmt: skip
    checks = Table(title="Checks against the generator's ground truth", title_justify="left")
    checks.add_column("")
    checks.add_column("check")
    checks.add_column("detail")
    for c in summary.checks:
        checks.add_row("[green]ok[/]" if c.ok else "[red]FAIL[/]", c.name, c.detail)
    return Group(partners, gemeenten, checks)
