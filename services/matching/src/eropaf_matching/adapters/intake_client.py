"""Client for intake's internal personal-data API (the only place personal data lives).

``GET {intake_url}/internal/v1/personal-data?signal_ref=<ref>&signal_ref=...&purpose=<why>``
with ``Authorization: Bearer <internal token>`` and ``X-Accessor: <who>``; intake authorises
and audits every read. Answer: ``{"records": {<ref>: {"ID": ..., "client": {...},
"contactgegevens": ...}}}``; ``ID`` is the partner's own signal ID. A ref without a record has
nothing (any more), e.g. crypto-shredded.

Mockable: pass an ``httpx`` transport (``httpx.MockTransport`` in tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from eropaf_matching.domain.ddas_export import CLIENT_FIELDS

__all__ = ["IntakeClient", "IntakeError", "PersonalRecord"]

PERSONAL_DATA_PATH = "/internal/v1/personal-data"
CHUNK = 100  # refs per request: keeps URLs well under server limits


class IntakeError(RuntimeError):
    """Intake refused or failed; the export must not go out incomplete."""


@dataclass(frozen=True)
class PersonalRecord:
    signal_id: str | None  # the partner's signal ID, when intake gives it
    client: Mapping[str, str]  # DDAS client fields


class IntakeClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        accessor: str,
        purpose: str = "ddas-export",
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "X-Accessor": accessor},
            transport=transport,
            timeout=timeout,
        )
        self.purpose = purpose

    def __enter__(self) -> IntakeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def personal_record(self, signal_ref: str) -> PersonalRecord | None:
        return self.personal_records([signal_ref]).get(signal_ref)

    def personal_records(self, signal_refs: Iterable[str]) -> dict[str, PersonalRecord]:
        """Records per ref; a ref intake has no data for (shredded, purged) is absent."""
        refs = sorted(set(signal_refs))
        out: dict[str, PersonalRecord] = {}
        for start in range(0, len(refs), CHUNK):
            out.update(self._fetch(refs[start : start + CHUNK]))
        return out

    def ddas_records(
        self, signal_refs: Iterable[str]
    ) -> dict[str, tuple[Mapping[str, str], str | None]]:
        """As ``ddas_export.PersonalRecords``: (client fields, partner's signal ID) per ref."""
        return {
            ref: (r.client, r.signal_id) for ref, r in self.personal_records(signal_refs).items()
        }

    def _fetch(self, refs: list[str]) -> dict[str, PersonalRecord]:
        params = httpx.QueryParams(
            [*(("signal_ref", ref) for ref in refs), ("purpose", self.purpose)]
        )
        try:
            response = self._client.get(PERSONAL_DATA_PATH, params=params)
        except httpx.HTTPError as exc:
            raise IntakeError(f"intake unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code in (401, 403):
            raise IntakeError(
                f"intake refused personal data ({response.status_code}): check the internal "
                "API token and that this accessor may read it"
            )
        if response.status_code != 200:
            raise IntakeError(f"intake answered {response.status_code} for personal data")
        try:
            body: Any = response.json()
        except ValueError as exc:
            raise IntakeError("intake's personal-data answer is not JSON") from exc
        records = body.get("records") if isinstance(body, Mapping) else None
        if not isinstance(records, Mapping):
            raise IntakeError("intake's personal-data answer has no records object")
        return {ref: _record(record) for ref, record in records.items() if ref in refs}


def _record(body: Any) -> PersonalRecord:
    if not isinstance(body, Mapping):
        raise IntakeError("intake's personal-data answer is not an object")
    nested = body.get("client")
    fields = nested if isinstance(nested, Mapping) else body
    client = {k: str(v) for k, v in fields.items() if k in CLIENT_FIELDS and v not in (None, "")}
    signal_id = body.get("ID", body.get("signal_id"))
    return PersonalRecord(signal_id=str(signal_id) if signal_id else None, client=client)
