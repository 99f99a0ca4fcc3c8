"""What happened to matching's state: the domain operations (:class:`~.matcher.Matcher`'s
``take_*``) return these, and the service layer turns them into events (or a log line).

Each outcome carries the case as it is after the change; none knows about envelopes,
topics or JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

from eropaf_contracts.events import CaseChange, CreditorStatus
from eropaf_matching.domain.cases import Case

__all__ = [
    "CaseChanged",
    "CaseClosed",
    "CaseOpened",
    "CreditorStatusChanged",
    "DecisionChanged",
    "Outcome",
    "ReportOnClosedCaseIgnored",
    "StaleRevisionDropped",
    "UnknownSignalResolution",
]


@dataclass(frozen=True)
class StaleRevisionDropped:
    """A revision of a signal no newer than the one held: nothing changed."""

    signal_ref: str
    revision: int


@dataclass(frozen=True)
class CaseOpened:
    case: Case


@dataclass(frozen=True)
class CaseChanged:
    """An open case changed. ``about``: what changed it (a signal revision or a signal's
    resolution), which makes the change one of its own; ``previous_case_refs``: the ids the
    case had before (renamed, absorbed), sorted."""

    case: Case
    change: CaseChange
    about: str
    previous_case_refs: tuple[str, ...] = ()


@dataclass(frozen=True)
class DecisionChanged:
    """Triage decided anew for the case (the decision may be not to pick it up), or the
    creditors it concerns changed (scheduling picks who goes by them)."""

    case: Case


@dataclass(frozen=True)
class CaseClosed:
    case: Case


@dataclass(frozen=True)
class CreditorStatusChanged:
    """What the creditor of a signal may be told changed (or was settled by a closure)."""

    case: Case
    signal_ref: str
    status: CreditorStatus


@dataclass(frozen=True)
class UnknownSignalResolution:
    """A resolution of a signal no case holds (e.g. one intake never passed on)."""

    signal_ref: str


@dataclass(frozen=True)
class ReportOnClosedCaseIgnored:
    """Scheduling reported on a case that is closed already (e.g. closed by a resolution
    while the visit was under way): the report cannot change it."""

    case_id: str
    reason: str


Outcome = (
    StaleRevisionDropped
    | CaseOpened
    | CaseChanged
    | DecisionChanged
    | CaseClosed
    | CreditorStatusChanged
    | UnknownSignalResolution
    | ReportOnClosedCaseIgnored
)
