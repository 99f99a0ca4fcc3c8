"""Monitoring figures for the pilot evaluation, per municipality and month (pure).

Long format -- one row per (gemeente, maand, metric, dimension) -- so a CLI can print it as
a table or CSV without knowing the metrics. Signal counts use the month a signal was
received; case figures use the *cohort* of cases opened in that month:

* ``signalen`` (dimension: partner type) -- signals received;
* ``zaken_geopend`` -- cases opened;
* ``outreach`` (dimension: outreach kind) -- decided outreach of the cohort;
* ``bereik`` -- share of the cohort's picked-up cases with a contact attempt that reached
  the household;
* ``hulp_geaccepteerd`` -- share of the cohort's reached cases that ended in help
  ((budget)advice/quick fix or follow-up help, financial or not);
* ``eindresultaat`` (dimension: DDAS end result) -- the cohort's closed cases by result;
* ``opgelost_binnen_12_maanden`` -- share of the cohort whose arrears were all resolved
  within 12 months of opening, among cases whose 12 months have passed by ``as_of`` (or
  that were already resolved); empty while none qualify.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta

from eropaf_matching.domain.cases import HELP_ACCEPTED, Case

__all__ = ["MonitoringRow", "monitoring_rows", "rows_to_csv"]


@dataclass(frozen=True)
class MonitoringRow:
    gemeentecode: str
    maand: str  # YYYY-MM
    metric: str
    dimension: str  # "" when the metric has none
    value: float | None  # counts are whole numbers; shares 0..1; None: no denominator
    numerator: int | None = None
    denominator: int | None = None


def _month(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def _share(gemeente: str, maand: str, metric: str, num: int, den: int) -> MonitoringRow:
    return MonitoringRow(
        gemeente, maand, metric, "", round(num / den, 4) if den else None, num, den
    )


def monitoring_rows(cases: Iterable[Case], *, as_of: date) -> list[MonitoringRow]:
    """All figures, sorted by municipality, month, metric, dimension."""
    rows: list[MonitoringRow] = []
    signal_counts: Counter[tuple[str, str, str]] = Counter()
    cohorts: dict[tuple[str, str], list[Case]] = defaultdict(list)
    for case in cases:
        for signal in case.signals.values():
            key = (
                signal.gemeentecode,
                _month(signal.received_at.date()),
                signal.partner_type.value,
            )
            signal_counts[key] += 1
        cohorts[(case.gemeentecode, _month(case.opened_on))].append(case)

    for (gemeente, maand, partner_type), count in signal_counts.items():
        rows.append(MonitoringRow(gemeente, maand, "signalen", partner_type, count))

    for (gemeente, maand), cohort in cohorts.items():
        rows.append(MonitoringRow(gemeente, maand, "zaken_geopend", "", len(cohort)))
        outreach = Counter(
            c.decision.outreach.value for c in cohort if c.decision and c.decision.outreach
        )
        rows += [MonitoringRow(gemeente, maand, "outreach", k, n) for k, n in outreach.items()]
        picked = [c for c in cohort if c.opgepakt_on is not None]
        reached = [c for c in picked if c.contact_made]
        rows.append(_share(gemeente, maand, "bereik", len(reached), len(picked)))
        helped = [c for c in reached if c.resultaat in HELP_ACCEPTED]
        rows.append(_share(gemeente, maand, "hulp_geaccepteerd", len(helped), len(reached)))
        results = Counter(c.resultaat.value for c in cohort if c.resultaat is not None)
        rows += [MonitoringRow(gemeente, maand, "eindresultaat", k, n) for k, n in results.items()]
        resolved_in_time = [c for c in cohort if _resolved_within_year(c)]
        matured = [c for c in cohort if c.opened_on + timedelta(days=365) <= as_of]
        known = {c.case_id for c in matured} | {c.case_id for c in resolved_in_time}
        rows.append(
            _share(gemeente, maand, "opgelost_binnen_12_maanden", len(resolved_in_time), len(known))
        )
    return sorted(rows, key=lambda r: (r.gemeentecode, r.maand, r.metric, r.dimension))


def _resolved_within_year(case: Case) -> bool:
    limit = case.opened_on + timedelta(days=365)
    return bool(case.signals) and all(
        ref in case.resolved_on and case.resolved_on[ref] <= limit for ref in case.signals
    )


def rows_to_csv(rows: Sequence[MonitoringRow]) -> str:
    """CSV with a header row; shares as decimals, empty when undefined."""
    out = io.StringIO()
    columns = list(MonitoringRow.__dataclass_fields__)
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in asdict(row).items()})
    return out.getvalue()
