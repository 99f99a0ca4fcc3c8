"""The staff roster file (CONTRACT §4.1): parse, validate, and compare with what is stored.

CSV, comma or semicolon separated, UTF-8 with an optional BOM. Every bad row is reported
with its line number and column; a file with any bad row imports nothing.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from eropaf_contracts.events import StaffRole
from eropaf_scheduling.domain.model import StaffMember
from eropaf_scheduling.domain.time import WEEKDAYS, PartOfDay

__all__ = ["COLUMNS", "RosterError", "RosterProblem", "parse_availability", "parse_roster"]

COLUMNS = (
    "code",
    "naam",
    "email",
    "organisatie",
    "rol",
    "gemeenten",
    "beschikbaar",
    "max_per_dag",
    "max_per_week",
    "taal",
    "bericht",
)
_SLUG = re.compile(r"[a-z0-9-]{2,32}")
_GEMEENTE = re.compile(r"\d{4}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class RosterProblem:
    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


class RosterError(ValueError):
    def __init__(self, problems: list[RosterProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def parse_availability(text: str) -> frozenset[tuple[str, PartOfDay]]:
    """``ma-ochtend|di-middag`` -> {("ma", OCHTEND), ("di", MIDDAG)}; ValueError if bad."""
    result: set[tuple[str, PartOfDay]] = set()
    for token in (t.strip().lower() for t in text.split("|")):
        if not token:
            continue
        day, _, part = token.partition("-")
        if day not in WEEKDAYS or part not in {p.value for p in PartOfDay}:
            raise ValueError(f"{token!r} is not a weekday and part of day like 'ma-ochtend'")
        result.add((day, PartOfDay(part)))
    return frozenset(result)


def parse_roster(content: bytes | str) -> list[StaffMember]:
    """All staff of a roster file; RosterError listing every problem when any row is bad."""
    text = content.decode("utf-8") if isinstance(content, bytes) else content
    text = text.removeprefix("\ufeff")
    first_line = text.splitlines()[0] if text.strip() else ""
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise RosterError([RosterProblem(1, None, f"missing columns: {', '.join(missing)}")])
    problems: list[RosterProblem] = []
    staff: list[StaffMember] = []
    seen: set[str] = set()
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(row.values()):
            continue
        before = len(problems)

        def bad(column: str, message: str, line: int = line) -> None:
            problems.append(RosterProblem(line, column, message))

        code = row["code"]
        if not _SLUG.fullmatch(code):
            bad("code", f"{code!r} must match [a-z0-9-]{{2,32}}")
        elif code in seen:
            bad("code", f"{code!r} appears twice")
        seen.add(code)
        if not row["naam"] or len(row["naam"]) > 200:
            bad("naam", "required, at most 200 characters")
        if not _EMAIL.fullmatch(row["email"]):
            bad("email", f"{row['email']!r} is not an e-mail address")
        if not _SLUG.fullmatch(row["organisatie"]):
            bad("organisatie", f"{row['organisatie']!r} is not a partner or team code")
        try:
            rol = StaffRole(row["rol"].lower())
        except ValueError:
            bad("rol", "must be medewerker, schuldhulpverlener or coordinator")
            rol = StaffRole.COORDINATOR
        gemeenten = [g.strip() for g in row["gemeenten"].split("|") if g.strip()]
        if not gemeenten or not all(_GEMEENTE.fullmatch(g) for g in gemeenten):
            bad("gemeenten", "CBS codes (4 digits) separated by |")
        try:
            beschikbaar = parse_availability(row["beschikbaar"])
        except ValueError as exc:
            bad("beschikbaar", str(exc))
            beschikbaar = frozenset()
        if not beschikbaar and rol is not StaffRole.COORDINATOR:
            bad("beschikbaar", "required for medewerker and schuldhulpverlener")
        limits: list[int] = []
        for column in ("max_per_dag", "max_per_week"):
            try:
                value = int(row[column])
                if not 0 <= value <= 50:
                    raise ValueError
                limits.append(value)
            except ValueError:
                bad(column, f"{row[column]!r} must be a whole number from 0 to 50")
                limits.append(0)
        if row["taal"] not in ("nl", "en"):
            bad("taal", "must be nl or en")
        if row["bericht"] not in ("direct", "dagelijks"):
            bad("bericht", "must be direct or dagelijks")
        if len(problems) > before:
            continue
        staff.append(
            StaffMember(
                code=code,
                naam=row["naam"],
                email=row["email"],
                organisatie=row["organisatie"],
                rol=rol,
                gemeenten=frozenset(gemeenten),
                beschikbaar=beschikbaar,
                max_per_dag=limits[0],
                max_per_week=limits[1],
                taal=row["taal"],
                bericht=row["bericht"],
            )
        )
    if problems:
        raise RosterError(problems)
    return staff
