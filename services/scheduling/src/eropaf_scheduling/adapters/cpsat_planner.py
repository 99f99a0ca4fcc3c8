"""The planner on OR-Tools CP-SAT.

The model is built from the pure :class:`PlanningProblem` only. Per case it chooses at most
one slot (date and part of day) and a duo: one member from the employee side (a signalling
corporation's employee, or a second counsellor) and one counsellor of the team, each
available then. Hard: availability, no double booking (per visit window), max_per_dag,
max_per_week, only nearby municipalities for one person in one part of day, pinned visits
fixed while they stay valid. Objective (lexicographic by weights): cases planned on time
(crisis before high before normal, then priority), early for urgent cases, few previous
visits changed (an explicit term), little travel, a fair spread.

Deterministic: one worker, a fixed seed and a deterministic time limit (a wall-time limit
only caps it on a starved machine, where the plan may then differ). Independent parts
(cases whose candidate staff do not overlap, e.g. per team and municipality group) are
solved one after another in a fixed order. Each model starts from a greedy plan (also the
answer when the solver finds nothing better in its budget).

Bounded: the whole ``plan`` (model building, the keep-first solve and the repair solve of
every part) stays within ``max_seconds``; each part gets the share of the time left that its
size is of the cases left, and a part with no time left keeps its greedy plan. A part's
cases beyond what its counsellors have room for (a backlog much larger than capacity) are
not modelled: the greedy places them around the solved visits when room is left.
"""

from __future__ import annotations

import time as wallclock
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from ortools.sat.python import cp_model

from eropaf_contracts.events import BacklogReason, Urgency
from eropaf_scheduling.domain.model import (
    Assignment,
    BacklogEntry,
    Plan,
    PlanningCase,
    PlanningProblem,
    StaffMember,
)
from eropaf_scheduling.domain.planning import (
    counsellor_candidates,
    employee_candidates,
    is_moved,
    planning_slots,
)
from eropaf_scheduling.domain.time import PartOfDay, Slot, visit_windows

__all__ = ["CpSatPlanner"]

_REWARD = {Urgency.CRISIS: 10_000_000, Urgency.HIGH: 1_000_000, Urgency.NORMAL: 100_000}
_PER_PRIORITY = 100  # priority (<= ~900) never outweighs one urgency level
_PER_SLOT_LATER = {Urgency.CRISIS: 1_000, Urgency.HIGH: 100, Urgency.NORMAL: 10}
_LATE_SHARE = 10  # a visit after the deadline earns a tenth of an on-time one
_KEEP_SLOT = 20_000  # previous visit kept in its slot
_KEEP_MEMBER = 10_000  # per duo member kept
_TRAVEL = 500  # per extra municipality one person visits in one part of day
_FAIR = 200  # per visit of the most loaded person of an organisation
_GAP = 15_000  # stop once proven this close to the best: less than a case or a moved slot
_MIN_SOLVE_SECONDS = 0.05  # less wall time than this left: the greedy plan, no model
_BEYOND = 1.5  # cases modelled: previous visits plus this times the visits staff can make


@dataclass
class _CaseVars:
    case: PlanningCase
    side_a: list[str]
    side_b: list[str]
    slots: list[Slot]
    # every eligible person and their slots (the model uses the few picked above, except
    # for the few cases planned around a kept plan: a small model can afford them all)
    all_a: list[str] = field(default_factory=list)
    all_b: list[str] = field(default_factory=list)
    open_slots: list[Slot] = field(default_factory=list)
    y: dict[Slot, cp_model.IntVar] = field(default_factory=dict)
    a: dict[tuple[str, Slot], cp_model.IntVar] = field(default_factory=dict)
    b: dict[tuple[str, Slot], cp_model.IntVar] = field(default_factory=dict)


class CpSatPlanner:
    """``Planner`` on CP-SAT; see the module docstring for the model."""

    def __init__(
        self,
        *,
        max_deterministic_time: float = 5.0,
        max_seconds: float = 20.0,
        seed: int = 0,
        max_candidates: int = 4,
    ) -> None:
        self.max_deterministic_time = max_deterministic_time
        self.max_seconds = max_seconds
        self.seed = seed
        self.max_candidates = max_candidates

    # --- problem preparation ------------------------------------------------------------

    def plan(self, problem: PlanningProblem) -> Plan:
        started = wallclock.perf_counter()
        staff = {m.code: m for m in problem.staff}
        slots = planning_slots(problem)
        available: dict[str, set[Slot]] = {
            m.code: {s for s in slots if m.available(s, problem.absences)} for m in problem.staff
        }
        cases = sorted(problem.cases, key=PlanningCase.order_key)
        previous = {a.case_ref: a for a in problem.previous}
        reasons: dict[str, BacklogReason] = {}
        prepared: list[_CaseVars] = []
        group_index: dict[tuple[str, ...], int] = defaultdict(int)
        # Cases of one municipality, team and corporations share their candidates, cases
        # with one start and parts of day tried share their slots: one (read-only) list for
        # each, not one per case, and each worked out once (tens of thousands of open cases).
        sides: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
        starts: dict[tuple[date | None, frozenset[PartOfDay]], list[Slot]] = {}
        usables: dict[tuple[object, ...], list[Slot]] = {}
        found: dict[tuple[object, ...], BacklogReason | None] = {}
        for case in cases:
            key = (case.gemeentecode, case.team, *case.corporations)
            if key not in sides:
                sides[key] = (
                    [m.code for m in employee_candidates(problem, case)],
                    [m.code for m in counsellor_candidates(problem, case)],
                )
            side_a_all, side_b_all = sides[key]
            start = (case.not_before, case.avoid_parts)
            if start not in starts:
                starts[start] = [
                    s
                    for s in slots
                    if s.datum >= max(problem.first_day, case.not_before or problem.first_day)
                    and (s.part not in case.avoid_parts or len(case.avoid_parts) >= len(PartOfDay))
                ]
            open_slots = starts[start]
            # the reason depends on the case only through these (and its deadline)
            why = (key, start, case.deadline)
            if why not in found:
                found[why] = _reason_before_solving(
                    case, problem, side_a_all, side_b_all, open_slots, available
                )
            if (reason := found[why]) is not None:
                reasons[case.case_ref] = reason
            prev = previous.get(case.case_ref)
            index = group_index[key]
            group_index[key] += 1
            side_a = _pick(side_a_all, index, self.max_candidates, prev.staff[0] if prev else None)
            side_b = _pick(side_b_all, index, self.max_candidates, prev.staff[1] if prev else None)
            pick = (tuple(side_a), tuple(side_b), start)
            if pick not in usables:
                usables[pick] = [
                    s
                    for s in open_slots
                    if any(s in available[p] for p in side_a)
                    and any(s in available[p] for p in side_b)
                    and len({p for p in side_a + side_b if s in available[p]}) >= 2
                ]
            prepared.append(
                _CaseVars(case, side_a, side_b, usables[pick], side_a_all, side_b_all, open_slots)
            )

        assignments: list[Assignment] = []
        status_names: list[str] = []
        components = _components(prepared)
        planned_cases = sum(len(c) for c in components) or 1
        # The whole plan (model building, solves, windows) stays within max_seconds: each
        # part gets the share of the time left that its size is of the cases left.
        deadline = started + self.max_seconds
        cases_left = planned_cases
        for component in components:
            # the deterministic budget is shared by size (below ~0.1 CP-SAT may not search)
            share = len(component) / planned_cases
            budget = max(0.2, self.max_deterministic_time * share)
            now = wallclock.perf_counter()
            until = now + max(0.0, deadline - now) * len(component) / cases_left
            cases_left -= len(component)
            chosen, status = self._solve_part(
                problem, component, staff, available, previous, (budget, until), reasons
            )
            assignments += chosen
            status_names.append(status)
        lost = {a.case_ref: a.slot for a in assignments}
        assignments, dropped = _assign_windows(problem, assignments, previous, self.seed)
        if dropped:
            # a visit without a window (an odd cycle of duos in its part of day) gets another
            # part of day when the greedy finds one around the visits that stand
            retry = [
                _CaseVars(cv.case, cv.side_a, cv.side_b, [t for t in cv.slots if t != lost[ref]])
                for cv in prepared
                if (ref := cv.case.case_ref) in dropped
            ]
            where = {cv.case.case_ref: cv.case.gemeentecode for cv in prepared}
            booked = tuple((a, where[a.case_ref]) for a in assignments)
            extra = _greedy(problem, retry, staff, available, previous, booked)
            if extra:
                placed, _ = _assign_windows(problem, assignments + extra, previous, self.seed)
                refs = {a.case_ref for a in placed}
                if len(placed) > len(assignments) and all(a.case_ref in refs for a in assignments):
                    assignments = placed
                    dropped = [ref for ref in dropped if ref not in refs]
        for ref in dropped:
            reasons.setdefault(ref, BacklogReason.CAPACITY_EXHAUSTED)

        by_case = {a.case_ref: a for a in assignments}
        backlog: list[BacklogEntry] = []
        for case in cases:
            got = by_case.get(case.case_ref)
            if got is not None and got.slot.datum <= case.deadline:
                continue
            reason = reasons.get(case.case_ref, BacklogReason.CAPACITY_EXHAUSTED)
            backlog.append(
                BacklogEntry(
                    case_ref=case.case_ref,
                    gemeentecode=case.gemeentecode,
                    team=case.team,
                    deadline=case.deadline,
                    attempt=case.attempt,
                    reason=reason,
                    planned_late=got.slot if got else None,
                )
            )
        open_refs = {c.case_ref for c in cases}
        moved = sum(
            1
            for before in problem.previous
            if before.case_ref in open_refs and is_moved(before, by_case.get(before.case_ref))
        )
        status = (
            "OPTIMAL"
            if all(s in ("OPTIMAL", "KEPT") for s in status_names)
            else ("FEASIBLE" if status_names else "EMPTY")
        )
        return Plan(
            assignments=tuple(
                sorted(assignments, key=lambda a: (a.slot.sort_key(), a.window, a.case_ref))
            ),
            backlog=tuple(backlog),
            moved=moved,
            solve_seconds=wallclock.perf_counter() - started,
            status=status,
            stats={
                "components": len(status_names),
                "cases": len(cases),
                "greedy_parts": status_names.count("GREEDY"),
            },
        )

    # --- one independent part -----------------------------------------------------------

    def _solve_part(
        self,
        problem: PlanningProblem,
        component: list[_CaseVars],
        staff: dict[str, StaffMember],
        available: dict[str, set[Slot]],
        previous: dict[str, Assignment],
        budget: tuple[float, float],  # (deterministic time, wall-clock deadline)
        reasons: dict[str, BacklogReason],
    ) -> tuple[list[Assignment], str]:
        """The cases that can matter (see :func:`_beyond_capacity`) are solved; the others
        get what the greedy finds left afterwards."""
        modelled, beyond = _beyond_capacity(problem, component, staff, available, previous)
        chosen, status = self._solve_kept(
            problem, modelled, staff, available, previous, budget, reasons
        )
        if beyond:
            where = {cv.case.case_ref: cv.case.gemeentecode for cv in modelled}
            booked = tuple((a, where[a.case_ref]) for a in chosen)
            chosen = chosen + _greedy(problem, beyond, staff, available, previous, booked)
        return chosen, status

    def _solve_kept(
        self,
        problem: PlanningProblem,
        component: list[_CaseVars],
        staff: dict[str, StaffMember],
        available: dict[str, set[Slot]],
        previous: dict[str, Assignment],
        budget: tuple[float, float],  # (deterministic time, wall-clock deadline)
        reasons: dict[str, BacklogReason],
    ) -> tuple[list[Assignment], str]:
        """Minimal change first: keep every previous visit that is still valid and plan only
        the rest. When that leaves a plannable case without a visit by its deadline, solve
        again with previous visits free to move, at a cost per change (the explicit term),
        in the time left."""
        keepable = [
            cv
            for cv in component
            if (prev := previous.get(cv.case.case_ref)) is not None
            and _still_valid(prev, cv, available)
        ]
        if not keepable:
            return self._solve(problem, component, staff, available, previous, budget, None)
        if len(keepable) == len(component):
            # nothing new and nothing invalid here: the plan stands as it is
            return [previous[cv.case.case_ref] for cv in component], "KEPT"
        people = {p for cv in component for p in cv.side_a + cv.side_b}
        frozen = [
            _CaseVars(cv.case, [prev.staff[0]], [prev.staff[1]], [prev.slot])
            if (prev := previous.get(cv.case.case_ref)) is not None and cv in keepable
            else _widened(cv, people, available)
            for cv in component
        ]
        chosen, status = self._solve(problem, frozen, staff, available, previous, budget, None)
        on_time = _on_time(component, chosen)
        # Others' visits move only for a case that had a visit and lost it, or an urgent one.
        left_out = [
            cv
            for cv in component
            if cv.case.case_ref not in on_time
            and cv.case.case_ref not in reasons
            and (cv.case.case_ref in previous or cv.case.urgency is not Urgency.NORMAL)
        ]
        if not left_out or budget[1] - wallclock.perf_counter() < _MIN_SOLVE_SECONDS:
            return chosen, status
        # Free the visits of everyone who could take a left-out case (a neighbourhood), so
        # they can make room; everything else stays as it was.
        helpers = {p for cv in left_out for p in cv.side_a + cv.side_b}
        free = {
            cv.case.case_ref
            for cv in component
            if cv in left_out
            or (prev := previous.get(cv.case.case_ref)) is None
            or set(prev.staff) & helpers
        }
        opened = [
            _CaseVars(cv.case, cv.side_a, cv.side_b, cv.slots)
            if cv.case.case_ref in free or cv not in keepable
            else _CaseVars(
                cv.case,
                [previous[cv.case.case_ref].staff[0]],
                [previous[cv.case.case_ref].staff[1]],
                [previous[cv.case.case_ref].slot],
            )
            for cv in component
        ]
        again, again_status = self._solve(
            problem, opened, staff, available, previous, (2 * budget[0], budget[1]), chosen
        )
        if len(_on_time(component, again)) < len(on_time):
            return chosen, status  # the budget ran out before the solver did better
        return again, again_status

    def _solve(
        self,
        problem: PlanningProblem,
        component: list[_CaseVars],
        staff: dict[str, StaffMember],
        available: dict[str, set[Slot]],
        previous: dict[str, Assignment],
        budget: tuple[float, float],
        start: list[Assignment] | None,
    ) -> tuple[list[Assignment], str]:
        greedy = _greedy(problem, component, staff, available, previous)
        if budget[1] - wallclock.perf_counter() < _MIN_SOLVE_SECONDS:
            return greedy, "GREEDY"  # no time left for a model: the greedy plan stands
        model = cp_model.CpModel()
        slot_index = {s: i for i, s in enumerate(planning_slots(problem))}
        capacity = _capacities(problem, staff)
        load_slot: dict[tuple[str, Slot], list[cp_model.IntVar]] = defaultdict(list)
        muni_slot: dict[tuple[str, Slot, str], list[cp_model.IntVar]] = defaultdict(list)
        objective: list[cp_model.LinearExprT] = []
        hints: dict[str, Assignment] = {a.case_ref: a for a in (start or greedy)}

        for cv in component:
            case = cv.case
            prev = previous.get(case.case_ref)
            counsellors_only = set(cv.side_a) <= set(cv.side_b)
            for s in cv.slots:
                y = model.new_bool_var("")
                cv.y[s] = y
                on_time = s.datum <= case.deadline
                reward = _REWARD[case.urgency] + _PER_PRIORITY * min(case.priority, 900)
                if not on_time:
                    reward //= _LATE_SHARE
                reward -= _PER_SLOT_LATER[case.urgency] * slot_index[s]
                objective.append(reward * y)
                here_a = []
                for p in cv.side_a:
                    if s in available[p]:
                        cv.a[(p, s)] = v = model.new_bool_var("")
                        here_a.append(v)
                here_b = []
                for p in cv.side_b:
                    if s in available[p]:
                        cv.b[(p, s)] = v = model.new_bool_var("")
                        here_b.append(v)
                model.add(sum(here_a) == y)
                model.add(sum(here_b) == y)
                if counsellors_only:
                    for p in cv.side_a:
                        if (p, s) in cv.a and (p, s) in cv.b:
                            model.add(cv.a[(p, s)] + cv.b[(p, s)] <= 1)
            model.add(sum(cv.y.values()) <= 1)
            for (p, s), v in list(cv.a.items()) + list(cv.b.items()):
                load_slot[(p, s)].append(v)
                muni_slot[(p, s, case.gemeentecode)].append(v)
            if prev is not None:
                fixed = prev.pinned and _still_valid(prev, cv, available)
                keep_y = cv.y.get(prev.slot)
                keep_a = cv.a.get((prev.staff[0], prev.slot))
                keep_b = cv.b.get((prev.staff[1], prev.slot))
                if fixed and keep_a is not None and keep_b is not None:
                    model.add(keep_a == 1)
                    model.add(keep_b == 1)
                else:
                    if keep_y is not None:
                        objective.append(_KEEP_SLOT * keep_y)
                    if keep_a is not None:
                        objective.append(_KEEP_MEMBER * keep_a)
                    if keep_b is not None:
                        objective.append(_KEEP_MEMBER * keep_b)
            hint = hints.get(case.case_ref)
            for s, y in cv.y.items():
                model.add_hint(y, hint is not None and hint.slot == s)
            for (p, s), v in cv.a.items():
                model.add_hint(v, hint is not None and hint.slot == s and hint.staff[0] == p)
            for (p, s), v in cv.b.items():
                model.add_hint(v, hint is not None and hint.slot == s and hint.staff[1] == p)

        # capacity: per part of day, per day, per ISO week
        per_day: dict[tuple[str, date], list[cp_model.IntVar]] = defaultdict(list)
        per_week: dict[tuple[str, tuple[int, int]], list[cp_model.IntVar]] = defaultdict(list)
        for (p, s), vs in sorted(load_slot.items(), key=lambda kv: (kv[0][0], kv[0][1].sort_key())):
            model.add(sum(vs) <= capacity[(p, s.part)])
            per_day[(p, s.datum)] += vs
            per_week[(p, s.datum.isocalendar()[:2])] += vs
        prior_week: dict[tuple[str, tuple[int, int]], int] = defaultdict(int)
        for (code, day), n in problem.prior_load.items():
            prior_week[(code, day.isocalendar()[:2])] += n
        for (p, day), vs in per_day.items():
            model.add(sum(vs) <= staff[p].max_per_dag - problem.prior_load.get((p, day), 0))
        for (p, week), vs in per_week.items():
            model.add(sum(vs) <= staff[p].max_per_week - prior_week[(p, week)])

        # the hint is complete (every variable), so that the solver starts from it as is
        gemeente = {cv.case.case_ref: cv.case.gemeentecode for cv in component}
        hinted_at: set[tuple[str, Slot, str]] = set()
        hinted_total: dict[str, int] = defaultdict(int)
        for h in hints.values():
            for p in h.staff:
                hinted_at.add((p, h.slot, gemeente[h.case_ref]))
                hinted_total[p] += 1

        # travel: one person's municipalities in one part of day must be near each other
        munis: dict[tuple[str, Slot], dict[str, cp_model.IntVar]] = defaultdict(dict)
        for (p, s, g), vs in sorted(
            muni_slot.items(), key=lambda kv: (kv[0][0], kv[0][1].sort_key(), kv[0][2])
        ):
            munis[(p, s)][g] = model.new_bool_var("")
            model.add_hint(munis[(p, s)][g], (p, s, g) in hinted_at)
            for v in vs:
                model.add_implication(v, munis[(p, s)][g])
        for by_muni in munis.values():
            if len(by_muni) < 2:
                continue
            codes = sorted(by_muni)
            for i, here in enumerate(codes):
                for there in codes[i + 1 :]:
                    if not problem.nearby(here, there):
                        model.add(by_muni[here] + by_muni[there] <= 1)
            objective.append(-_TRAVEL * (sum(by_muni.values()) - 1))

        # fairness: the most loaded person of each organisation
        totals: dict[str, list[cp_model.IntVar]] = defaultdict(list)
        for (p, _), vs in load_slot.items():
            totals[p] += vs
        by_org: dict[str, list[str]] = defaultdict(list)
        for p in sorted(totals):
            by_org[staff[p].organisatie].append(p)
        for org, people in sorted(by_org.items()):
            top = model.new_int_var(0, 7 * 3 * 10, f"max_{org}")
            for p in people:
                model.add(sum(totals[p]) <= top)
            model.add_hint(top, max(hinted_total[p] for p in people))
            objective.append(-_FAIR * top)

        model.maximize(sum(objective))
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        solver.parameters.random_seed = self.seed
        seconds = budget[1] - wallclock.perf_counter()
        if seconds < _MIN_SOLVE_SECONDS:
            return greedy, "GREEDY"  # building the model used the time left
        solver.parameters.max_deterministic_time = budget[0]
        solver.parameters.max_time_in_seconds = seconds
        solver.parameters.absolute_gap_limit = _GAP
        solver.parameters.repair_hint = False
        solver.parameters.cp_model_presolve = False  # measured: presolve alone ate the budget
        status = solver.solve(model)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return greedy, "GREEDY"
        chosen: list[Assignment] = []
        for cv in component:
            prev = previous.get(cv.case.case_ref)
            for s, y in cv.y.items():
                if not solver.boolean_value(y):
                    continue
                first = next(
                    p
                    for (p, t), v in sorted(cv.a.items(), key=_by_code)
                    if t == s and solver.boolean_value(v)
                )
                second = next(
                    p
                    for (p, t), v in sorted(cv.b.items(), key=_by_code)
                    if t == s and solver.boolean_value(v)
                )
                pinned = (
                    prev is not None
                    and prev.pinned
                    and prev.slot == s
                    and prev.staff == (first, second)
                )
                chosen.append(Assignment(cv.case.case_ref, s, (first, second), pinned=pinned))
        return chosen, "OPTIMAL" if status == cp_model.OPTIMAL else "FEASIBLE"


def _capacities(
    problem: PlanningProblem, staff: dict[str, StaffMember]
) -> dict[tuple[str, PartOfDay], int]:
    """slot_capacity per person and part of day (computed once, not per slot)."""
    windows = {
        part: len(visit_windows(part, problem.visit_minutes, problem.travel_buffer))
        for part in PartOfDay
    }
    return {
        (code, part): min(windows[part], m.max_per_dag)
        for code, m in staff.items()
        for part in PartOfDay
    }


def _beyond_capacity(
    problem: PlanningProblem,
    component: list[_CaseVars],
    staff: dict[str, StaffMember],
    available: dict[str, set[Slot]],
    previous: dict[str, Assignment],
) -> tuple[list[_CaseVars], list[_CaseVars]]:
    """The cases worth a model, and the rest. Every visit takes one of the part's
    counsellors, so the part makes at most as many visits as they have room for (per part of
    day, day and week, prior load deducted). Cases are in planning order (urgency, deadline,
    priority): cases with a previous visit and the first ``_BEYOND`` times that many others
    are modelled; the later ones (a backlog far beyond capacity) only get what is left."""
    capacity = _capacities(problem, staff)
    counsellors = sorted({p for cv in component for p in cv.side_b})
    room = 0
    for p in counsellors:
        m = staff[p]
        per_day: dict[date, int] = defaultdict(int)
        for s in available[p]:
            per_day[s.datum] += capacity[(p, s.part)]
        per_week: dict[tuple[int, int], int] = defaultdict(int)
        for day, n in per_day.items():
            left = m.max_per_dag - problem.prior_load.get((p, day), 0)
            per_week[day.isocalendar()[:2]] += max(0, min(n, left))
        prior_week: dict[tuple[int, int], int] = defaultdict(int)
        for (code, day), n in problem.prior_load.items():
            if code == p:
                prior_week[day.isocalendar()[:2]] += n
        room += sum(
            max(0, min(n, m.max_per_week - prior_week[week])) for week, n in per_week.items()
        )
    limit = int(_BEYOND * room) + 10
    modelled: list[_CaseVars] = []
    beyond: list[_CaseVars] = []
    for cv in component:
        if cv.case.case_ref in previous or limit > 0:
            modelled.append(cv)
            if cv.case.case_ref not in previous:
                limit -= 1
        else:
            beyond.append(cv)
    return modelled, beyond


def _widened(cv: _CaseVars, people: set[str], available: dict[str, set[Slot]]) -> _CaseVars:
    """The case with every eligible person of its part (never one of another part: the
    parts are solved apart, so a person must stay in one)."""
    side_a = [p for p in cv.all_a if p in people] or cv.side_a
    side_b = [p for p in cv.all_b if p in people] or cv.side_b
    slots = [
        s
        for s in cv.open_slots
        if any(s in available[p] for p in side_a)
        and any(s in available[p] for p in side_b)
        and len({p for p in side_a + side_b if s in available[p]}) >= 2
    ]
    return _CaseVars(cv.case, side_a, side_b, slots, cv.all_a, cv.all_b, cv.open_slots)


def _on_time(component: list[_CaseVars], chosen: list[Assignment]) -> set[str]:
    deadlines = {cv.case.case_ref: cv.case.deadline for cv in component}
    return {a.case_ref for a in chosen if a.slot.datum <= deadlines[a.case_ref]}


def _by_code(item: tuple[tuple[str, Slot], cp_model.IntVar]) -> tuple[str, tuple[date, int]]:
    (p, s), _ = item
    return (p, s.sort_key())


def _pick(codes: list[str], index: int, limit: int, keep: str | None) -> list[str]:
    """At most ``limit`` candidates, rotating through the eligible ones so that load spreads;
    the member a previous visit had stays a candidate."""
    if len(codes) <= limit:
        return codes
    start = (index * limit) % len(codes)
    picked = [codes[(start + i) % len(codes)] for i in range(limit)]
    if keep is not None and keep in codes and keep not in picked:
        picked.append(keep)
    return sorted(picked)


def _still_valid(prev: Assignment, cv: _CaseVars, available: dict[str, set[Slot]]) -> bool:
    return (
        prev.slot in cv.slots
        and prev.slot in available.get(prev.staff[0], set())
        and prev.slot in available.get(prev.staff[1], set())
        and prev.staff[0] in cv.side_a
        and prev.staff[1] in cv.side_b
    )


def _reason_before_solving(
    case: PlanningCase,
    problem: PlanningProblem,
    side_a: list[str],
    side_b: list[str],
    open_slots: list[Slot],
    available: dict[str, set[Slot]],
) -> BacklogReason | None:
    """Why a case cannot have a visit by its deadline whatever else is planned, if so."""
    if case.deadline < problem.first_day:
        return BacklogReason.DEADLINE_PASSED
    on_time = [s for s in open_slots if s.datum <= case.deadline]
    counsellor = any(s in available[p] for p in side_b for s in on_time)
    employee = any(s in available[p] for p in side_a for s in on_time)
    if not counsellor:
        return BacklogReason.NO_COUNSELLOR_AVAILABLE
    if not employee:
        corporation = bool(set(case.corporations) & problem.corporation_codes)
        return (
            BacklogReason.NO_EMPLOYEE_AVAILABLE
            if corporation
            else BacklogReason.NO_COUNSELLOR_AVAILABLE
        )
    together = any(
        any(s in available[p] for p in side_a)
        and any(s in available[p] for p in side_b)
        and len({p for p in side_a + side_b if s in available[p]}) >= 2
        for s in on_time
    )
    if not together:
        return (
            BacklogReason.NO_EMPLOYEE_AVAILABLE
            if set(case.corporations) & problem.corporation_codes
            else BacklogReason.NO_COUNSELLOR_AVAILABLE
        )
    return None


def _components(prepared: list[_CaseVars]) -> list[list[_CaseVars]]:
    """Cases that share no candidate staff member are planned independently."""
    parent = list(range(len(prepared)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, cv in enumerate(prepared):
        if not cv.slots:
            continue
        for p in cv.side_a + cv.side_b:
            if p in owner:
                parent[find(i)] = find(owner[p])
            else:
                owner[p] = i
    groups: dict[int, list[_CaseVars]] = defaultdict(list)
    for i, cv in enumerate(prepared):
        if cv.slots:
            groups[find(i)].append(cv)
    return [groups[k] for k in sorted(groups)]


def _greedy(
    problem: PlanningProblem,
    component: list[_CaseVars],
    staff: dict[str, StaffMember],
    available: dict[str, set[Slot]],
    previous: dict[str, Assignment],
    booked: tuple[tuple[Assignment, str], ...] = (),  # visits made, with their municipality
) -> list[Assignment]:
    """Cases in order (urgency, deadline, priority): keep the previous visit when it still
    fits, else the earliest slot with the least loaded free pair; around ``booked`` visits."""
    capacity = _capacities(problem, staff)
    per_slot: dict[tuple[str, Slot], int] = defaultdict(int)
    per_day: dict[tuple[str, date], int] = defaultdict(int, problem.prior_load)
    per_week: dict[tuple[str, tuple[int, int]], int] = defaultdict(int)
    for (code, day), n in problem.prior_load.items():
        per_week[(code, day.isocalendar()[:2])] += n
    total: dict[str, int] = defaultdict(int)
    munis: dict[tuple[str, Slot], set[str]] = defaultdict(set)

    def free(p: str, s: Slot, g: str) -> bool:
        m = staff[p]
        return (
            s in available[p]
            and per_slot[(p, s)] < capacity[(p, s.part)]
            and per_day[(p, s.datum)] < m.max_per_dag
            and per_week[(p, s.datum.isocalendar()[:2])] < m.max_per_week
            and all(problem.nearby(g, h) for h in munis[(p, s)])
        )

    def book(p: str, s: Slot, g: str) -> None:
        per_slot[(p, s)] += 1
        per_day[(p, s.datum)] += 1
        per_week[(p, s.datum.isocalendar()[:2])] += 1
        total[p] += 1
        munis[(p, s)].add(g)

    for a, gemeente in booked:
        for p in a.staff:
            book(p, a.slot, gemeente)
    chosen: list[Assignment] = []
    ordered = sorted(
        component, key=lambda cv: (previous.get(cv.case.case_ref) is None, cv.case.order_key())
    )
    # on time first: a late visit (a tenth of the reward) must not take the room of a
    # later case's visit on time; late visits only in a second pass
    done: set[str] = set()
    for late in (False, True):
        for cv in ordered:
            if cv.case.case_ref in done:
                continue
            pick = _greedy_pick(cv, previous.get(cv.case.case_ref), late, free, total)
            if pick is None:
                continue
            s, x, y = pick
            g = cv.case.gemeentecode
            book(x, s, g)
            book(y, s, g)
            done.add(cv.case.case_ref)
            chosen.append(Assignment(cv.case.case_ref, s, (x, y)))
    return chosen


def _greedy_pick(
    cv: _CaseVars,
    prev: Assignment | None,
    late: bool,
    free: Callable[[str, Slot, str], bool],
    total: dict[str, int],
) -> tuple[Slot, str, str] | None:
    g = cv.case.gemeentecode
    if (
        not late
        and prev is not None
        and prev.slot in cv.slots
        and prev.staff[0] in cv.side_a
        and prev.staff[1] in cv.side_b
        and free(prev.staff[0], prev.slot, g)
        and free(prev.staff[1], prev.slot, g)
    ):
        return (prev.slot, prev.staff[0], prev.staff[1])
    for s in cv.slots:
        if not late and s.datum > cv.case.deadline:
            break
        firsts = sorted((p for p in cv.side_a if free(p, s, g)), key=lambda p: (total[p], p))
        seconds = sorted((p for p in cv.side_b if free(p, s, g)), key=lambda p: (total[p], p))
        pair = next(((x, y) for x in firsts for y in seconds if x != y), None)
        if pair is not None:
            return (s, pair[0], pair[1])
    return None


def _assign_windows(
    problem: PlanningProblem,
    assignments: list[Assignment],
    previous: dict[str, Assignment],
    seed: int,
) -> tuple[list[Assignment], list[str]]:
    """Give each visit a window in its part of day so that nobody is in two places at once
    (an edge colouring of the visits of one part of day), keeping previous windows where
    possible. Greedy first; a small exact model for a group of visits where greedy fails.
    Visits that cannot get one (rare: odd cycles of counsellor-only duos) are dropped."""
    by_slot: dict[Slot, list[Assignment]] = defaultdict(list)
    for a in assignments:
        by_slot[a.slot].append(a)
    result: list[Assignment] = []
    dropped: list[str] = []
    for slot in sorted(by_slot, key=Slot.sort_key):
        n = len(visit_windows(slot.part, problem.visit_minutes, problem.travel_buffer))
        for group in _linked(by_slot[slot]):
            windows = _greedy_windows(group, previous, n)
            if windows is None:
                windows = _exact_windows(group, previous, n, seed)
            for a, window in zip(group, windows, strict=True):
                if window is None:
                    dropped.append(a.case_ref)
                    continue
                prev = previous.get(a.case_ref)
                pinned = a.pinned and prev is not None and prev.window == window
                result.append(Assignment(a.case_ref, a.slot, a.staff, window=window, pinned=pinned))
    return result, dropped


def _linked(visits: list[Assignment]) -> list[list[Assignment]]:
    """Visits of one part of day grouped by shared staff (each group is coloured alone)."""
    ordered = sorted(visits, key=lambda a: a.case_ref)
    parent = list(range(len(ordered)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, a in enumerate(ordered):
        for p in a.staff:
            if p in owner:
                parent[find(i)] = find(owner[p])
            else:
                owner[p] = i
    groups: dict[int, list[Assignment]] = defaultdict(list)
    for i, a in enumerate(ordered):
        groups[find(i)].append(a)
    return [groups[k] for k in sorted(groups)]


def _greedy_windows(
    group: list[Assignment], previous: dict[str, Assignment], n: int
) -> list[int | None] | None:
    busy: set[tuple[str, int]] = set()
    windows: list[int | None] = [None] * len(group)

    def wanted(i: int) -> int | None:
        prev = previous.get(group[i].case_ref)
        return prev.window if prev is not None and prev.slot == group[i].slot else None

    order = sorted(range(len(group)), key=lambda i: (wanted(i) is None, group[i].case_ref))
    for i in order:
        first = wanted(i)
        options = ([first] if first is not None and first < n else []) + list(range(n))
        for k in options:
            if all((p, k) not in busy for p in group[i].staff):
                windows[i] = k
                busy.update((p, k) for p in group[i].staff)
                break
        else:
            return None
    return windows


def _exact_windows(
    group: list[Assignment], previous: dict[str, Assignment], n: int, seed: int
) -> list[int | None]:
    model = cp_model.CpModel()
    w = {(i, k): model.new_bool_var("") for i in range(len(group)) for k in range(n)}
    placed = []
    for i in range(len(group)):
        model.add(sum(w[(i, k)] for k in range(n)) <= 1)
        placed.append(sum(w[(i, k)] for k in range(n)))
    people: dict[str, list[int]] = defaultdict(list)
    for i, a in enumerate(group):
        for p in a.staff:
            people[p].append(i)
    for _, idx in sorted(people.items()):
        for k in range(n):
            model.add(sum(w[(i, k)] for i in idx) <= 1)
    keep = []
    for i, a in enumerate(group):
        prev = previous.get(a.case_ref)
        if prev is not None and prev.slot == a.slot and prev.window < n:
            if a.pinned and prev.staff == a.staff:
                model.add(w[(i, prev.window)] == 1)
            keep.append(w[(i, prev.window)])
    model.maximize(1000 * sum(placed) + sum(keep))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = seed
    solver.parameters.max_deterministic_time = 1.0
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return [None] * len(group)
    return [
        next((k for k in range(n) if solver.boolean_value(w[(i, k)])), None)
        for i in range(len(group))
    ]
