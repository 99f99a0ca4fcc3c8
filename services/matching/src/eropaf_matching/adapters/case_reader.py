"""Cases read from matching's database for the internal read API (each read its own short
transaction, no lock)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker

from eropaf_matching.adapters.case_rows import load_cases, load_cases_by_ids, resolve_case_ids
from eropaf_matching.domain.cases import Case

__all__ = ["SqlCaseReader"]


class SqlCaseReader:
    def __init__(self, sessions: async_sessionmaker[Any]) -> None:
        self.sessions = sessions

    async def case(self, case_ref: str) -> Case | None:
        async with self.sessions() as session:
            current = (await resolve_case_ids(session, [case_ref]))[case_ref]
            found = await load_cases_by_ids(session, [current])
        return found[0] if found else None

    async def cases_of(self, gemeentecode: str) -> list[Case]:
        async with self.sessions() as session:
            return await load_cases(session, gemeentecode=gemeentecode)
