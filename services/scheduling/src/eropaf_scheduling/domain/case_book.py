"""The cases a batch of case events refers to, held in memory while the batch is applied.

Lookups, saves and re-keying behave as the repository's do one event at a time (a case is
found by its ref, else by a ref it had before, one hop); :meth:`CaseBook.written` is what to
store at the end, in bulk: the cases and visits saved (as they are at the end) and the refs
re-keyed. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from eropaf_scheduling.domain.model import BacklogEntry
from eropaf_scheduling.domain.schedule import CaseRecord, Changes, VisitRecord

__all__ = ["CaseBook", "Written", "backlog_after", "composed"]


@dataclass(frozen=True)
class Written:
    """What a batch changed. ``rekeyed``: the re-keyings (old ref, new ref) in order;
    ``aliases``: every ref re-keyed and the ref it names at the end (its case row is gone
    unless ``cases`` has it again)."""

    cases: list[CaseRecord]
    visits: list[VisitRecord]
    rekeyed: list[tuple[str, str]]
    aliases: dict[str, str]


def composed(rekeyed: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Where the records under each re-keyed ref end after the re-keyings in order (refs
    that end where they were are left out)."""
    moved: dict[str, str] = {}
    for old, _ in rekeyed:
        ref = old
        for before, after in rekeyed:
            if ref == before:
                ref = after
        if ref != old:
            moved[old] = ref
    return moved


def backlog_after(
    entries: Mapping[str, BacklogEntry], rekeyed: Sequence[tuple[str, str]]
) -> dict[str, BacklogEntry]:
    """Backlog entries by case ref after the re-keyings in order: an entry moves with its
    case, unless the ref it moves to has one (which stays; the replan the re-keying asks for
    rewrites the backlog)."""
    after = dict(entries)
    for old, new in rekeyed:
        entry = after.pop(old, None)
        if entry is not None and new not in after:
            after[new] = replace(entry, case_ref=new)
    return after


class CaseBook:
    """``cases`` by current ref, ``aliases`` (a ref a case had before -> its ref) for the refs
    the batch names, and the stored visits of those refs and cases."""

    def __init__(
        self,
        cases: Mapping[str, CaseRecord],
        aliases: Mapping[str, str],
        visits: Iterable[VisitRecord],
    ) -> None:
        self._cases = dict(cases)
        self._aliases = dict(aliases)
        self._visits: dict[str, dict[str, VisitRecord]] = {}  # case ref -> id -> visit
        self._where: dict[str, str] = {}  # visit id -> the case ref it is stored under
        for visit in visits:
            self._put(visit)
        self._saved_cases: dict[str, None] = {}  # refs, in the order first saved
        self._saved_visits: dict[str, None] = {}  # visit ids, in the order first saved
        self._rekeyed: list[tuple[str, str]] = []

    def case(self, ref: str) -> CaseRecord | None:
        """The case by its ref or by a ref it had before."""
        found = self._cases.get(ref)
        if found is None and (current := self._aliases.get(ref)) is not None:
            found = self._cases.get(current)
        return found

    def current_ref(self, ref: str) -> str:
        """The ref a case known by ``ref`` has now: ``ref`` itself unless it was re-keyed."""
        return self._aliases.get(ref, ref)

    def visits_of(self, case_ref: str) -> list[VisitRecord]:
        """The visits stored under ``case_ref``, by attempt."""
        visits = self._visits.get(case_ref, {}).values()
        return sorted(visits, key=lambda v: (v.attempt, v.visit_id))

    def save_case(self, case: CaseRecord) -> None:
        self._cases[case.case_ref] = case
        self._saved_cases[case.case_ref] = None

    def save(self, changes: Changes) -> None:
        """Save the cases and visits of ``changes`` (case events record no attempts)."""
        assert not changes.attempts, "case events record no contact attempts"
        for case in changes.cases:
            self.save_case(case)
        for visit in changes.visits:
            self._put(visit)
            self._saved_visits[visit.visit_id] = None

    def _put(self, visit: VisitRecord) -> None:
        before = self._where.get(visit.visit_id)
        if before is not None and before != visit.case_ref:
            self._visits[before].pop(visit.visit_id, None)
        self._visits.setdefault(visit.case_ref, {})[visit.visit_id] = visit
        self._where[visit.visit_id] = visit.case_ref

    def rekey(self, old_ref: str, new_ref: str) -> None:
        """Move the case's records to ``new_ref`` and remember ``old_ref`` as an alias of it;
        the case row under ``old_ref`` is gone."""
        moving = self._visits.pop(old_ref, {})
        if moving:
            target = self._visits.setdefault(new_ref, {})
            for visit_id, visit in moving.items():
                target[visit_id] = replace(visit, case_ref=new_ref)
                self._where[visit_id] = new_ref
        for alias, current in self._aliases.items():
            if current == old_ref:
                self._aliases[alias] = new_ref
        self._aliases[old_ref] = new_ref
        self._cases.pop(old_ref, None)
        self._saved_cases.pop(old_ref, None)
        self._rekeyed.append((old_ref, new_ref))

    def written(self) -> Written:
        return Written(
            cases=[self._cases[ref] for ref in self._saved_cases],
            visits=[self._visits[self._where[vid]][vid] for vid in self._saved_visits],
            rekeyed=list(self._rekeyed),
            aliases={old: self._aliases[old] for old, _ in self._rekeyed},
        )
