"""HTTP clients of the services the portal shows: scheduling's staff API (as a staff member:
internal token + `X-Staff-Code`), matching's internal read side and intake's audited read.

Responses are parsed with pydantic into the domain's values; refusals become `ApiError`s,
an unreachable service or a 5xx `Unavailable`. Nothing here logs a response body.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from eropaf_portal.domain.model import (
    Absence,
    AbsenceRecorded,
    Attempt,
    AttemptInput,
    BacklogEntry,
    CapacityWeek,
    Case,
    DdasExport,
    Funnel,
    Language,
    Me,
    Role,
    StaffEntry,
    Task,
    Visit,
)
from eropaf_portal.service_layer.ports import (
    ApiError,
    Forbidden,
    NotFound,
    Refused,
    Unauthenticated,
    Unavailable,
)


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _MeIn(_In):
    code: str
    naam: str
    email: str
    organisatie: str
    rol: Role
    gemeenten: list[str]
    taal: str = "nl"


class _VisitIn(_In):
    visit_id: str
    case_ref: str
    gemeentecode: str
    datum: date
    dagdeel: str
    start: datetime
    end: datetime
    staff: list[str]
    status: str
    sequence: int = 0
    attempt: int = 1

    def value(self) -> Visit:
        return Visit(
            visit_id=self.visit_id,
            case_ref=self.case_ref,
            gemeentecode=self.gemeentecode,
            datum=self.datum,
            dagdeel=self.dagdeel,
            start=self.start,
            end=self.end,
            staff=tuple(self.staff),
            status=self.status,
            sequence=self.sequence,
            attempt=self.attempt,
        )


class _VisitsIn(_In):
    visits: list[_VisitIn]


class _AttemptIn(_In):
    attempt: int
    contactsoort: str
    datum: date
    dagdeel: str | None = None
    bereikt: bool
    eindresultaat: str | None = None
    recorded_by: str | None = None

    def value(self) -> Attempt:
        return Attempt(
            attempt=self.attempt,
            contactsoort=self.contactsoort,
            datum=self.datum,
            dagdeel=self.dagdeel,
            bereikt=self.bereikt,
            eindresultaat=self.eindresultaat,
            recorded_by=self.recorded_by,
        )


class _CaseIn(_In):
    case_ref: str
    gemeentecode: str
    outreach: str
    deadline: date
    state: str
    attempt: int
    visits: list[_VisitIn]
    contact_attempts: list[_AttemptIn]
    eindresultaat: str | None = None


class _BacklogIn(_In):
    class Entry(_In):
        case_ref: str
        gemeentecode: str
        deadline: date
        reason: str

    cases: list[Entry]


class _TasksIn(_In):
    class Entry(_In):
        case_ref: str
        gemeentecode: str
        outreach: str
        deadline: date

    tasks: list[Entry]


class _AbsenceIn(_In):
    first: date = Field(alias="from")
    last: date = Field(alias="to")


class _StaffIn(_In):
    class Entry(_In):
        code: str
        naam: str
        organisatie: str
        rol: Role
        gemeenten: list[str]
        absences: list[_AbsenceIn] = []

    staff: list[Entry]


class _AbsenceRecordedIn(_In):
    code: str
    first: date = Field(alias="from")
    last: date = Field(alias="to")
    visits_moved: int


class _CapacityIn(_In):
    class Week(_In):
        week: str
        gemeentecode: str
        team: str
        planned: int
        available: int

    weeks: list[Week]


class _FunnelIn(_In):
    gemeentecode: str
    first: date = Field(alias="from")
    last: date = Field(alias="to")
    signals: int
    cases: int
    outreach: int
    reached: int
    help_accepted: int


class _SignalsIn(_In):
    case_ref: str
    signal_refs: list[str]


class _PersonalDataIn(_In):
    records: dict[str, dict[str, Any]]


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else response.reason_phrase


def _check(response: httpx.Response) -> httpx.Response:
    status = response.status_code
    if status < 400:
        return response
    if status == 401:
        raise Unauthenticated(_detail(response))
    if status == 403:
        raise Forbidden(_detail(response))
    if status == 404:
        raise NotFound(_detail(response))
    if status in (400, 409, 422):
        raise Refused(status, _detail(response))
    if status >= 500:
        raise Unavailable(f"{response.request.url.path}: {status}")
    raise ApiError(status, _detail(response))


class _Client:
    def __init__(self, http: httpx.AsyncClient, base_url: str, token: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.token = token

    async def _request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        params: Any = None,
        json: Any = None,
    ) -> httpx.Response:
        try:
            response = await self.http.request(
                method,
                f"{self.base_url}{path}",
                headers={"Authorization": f"Bearer {self.token}", **(headers or {})},
                params=params,
                json=json,
            )
        except httpx.HTTPError as exc:
            raise Unavailable(f"{path}: {type(exc).__name__}") from exc
        return _check(response)


class SchedulingClient(_Client):
    """Scheduling's staff API, acting as one staff member per call."""

    async def _as(
        self, code: str, method: str, path: str, *, params: Any = None, json: Any = None
    ) -> httpx.Response:
        return await self._request(
            method, path, headers={"X-Staff-Code": code}, params=params, json=json
        )

    async def me(self, code: str) -> Me:
        m = _MeIn.model_validate_json((await self._as(code, "GET", "/v1/me")).content)
        return Me(
            code=m.code,
            naam=m.naam,
            email=m.email,
            organisatie=m.organisatie,
            rol=m.rol,
            gemeenten=tuple(m.gemeenten),
            taal=Language.of(m.taal),
        )

    async def visits(self, code: str, first: date, last: date) -> list[Visit]:
        response = await self._as(
            code, "GET", "/v1/visits", params={"from": first.isoformat(), "to": last.isoformat()}
        )
        return [v.value() for v in _VisitsIn.model_validate_json(response.content).visits]

    async def case(self, code: str, case_ref: str) -> Case:
        c = _CaseIn.model_validate_json(
            (await self._as(code, "GET", f"/v1/cases/{case_ref}")).content
        )
        return Case(
            case_ref=c.case_ref,
            gemeentecode=c.gemeentecode,
            outreach=c.outreach,
            deadline=c.deadline,
            state=c.state,
            attempt=c.attempt,
            visits=tuple(v.value() for v in c.visits),
            attempts=tuple(a.value() for a in c.contact_attempts),
            eindresultaat=c.eindresultaat,
        )

    async def record_attempt(self, code: str, case_ref: str, attempt: AttemptInput) -> Attempt:
        body = {
            "contactsoort": attempt.contactsoort,
            "datum": attempt.datum.isoformat(),
            "dagdeel": attempt.dagdeel,
            "bereikt": attempt.bereikt,
            "eindresultaat": attempt.eindresultaat,
            "visit_id": attempt.visit_id,
        }
        response = await self._as(code, "POST", f"/v1/cases/{case_ref}/contact-attempts", json=body)
        return _AttemptIn.model_validate_json(response.content).value()

    async def backlog(self, code: str) -> list[BacklogEntry]:
        parsed = _BacklogIn.model_validate_json(
            (await self._as(code, "GET", "/v1/backlog")).content
        )
        return [
            BacklogEntry(e.case_ref, e.gemeentecode, e.deadline, e.reason) for e in parsed.cases
        ]

    async def tasks(self, code: str) -> list[Task]:
        parsed = _TasksIn.model_validate_json((await self._as(code, "GET", "/v1/tasks")).content)
        return [Task(e.case_ref, e.gemeentecode, e.outreach, e.deadline) for e in parsed.tasks]

    async def staff(self, code: str) -> list[StaffEntry]:
        parsed = _StaffIn.model_validate_json((await self._as(code, "GET", "/v1/staff")).content)
        return [
            StaffEntry(
                code=s.code,
                naam=s.naam,
                organisatie=s.organisatie,
                rol=s.rol,
                gemeenten=tuple(s.gemeenten),
                absences=tuple(Absence(a.first, a.last) for a in s.absences),
            )
            for s in parsed.staff
        ]

    async def add_absence(
        self, code: str, staff_code: str, first: date, last: date
    ) -> AbsenceRecorded:
        response = await self._as(
            code,
            "POST",
            f"/v1/staff/{staff_code}/absences",
            json={"from": first.isoformat(), "to": last.isoformat()},
        )
        r = _AbsenceRecordedIn.model_validate_json(response.content)
        return AbsenceRecorded(r.code, r.first, r.last, r.visits_moved)

    async def capacity(self, code: str, first: date, last: date) -> list[CapacityWeek]:
        response = await self._as(
            code, "GET", "/v1/capacity", params={"from": first.isoformat(), "to": last.isoformat()}
        )
        return [
            CapacityWeek(w.week, w.gemeentecode, w.team, w.planned, w.available)
            for w in _CapacityIn.model_validate_json(response.content).weeks
        ]


class MatchingClient(_Client):
    async def signal_refs(self, case_ref: str) -> list[str]:
        response = await self._request("GET", f"/internal/v1/cases/{case_ref}/signals")
        return _SignalsIn.model_validate_json(response.content).signal_refs

    async def funnel(self, gemeentecode: str, first: date, last: date) -> Funnel:
        response = await self._request(
            "GET",
            "/internal/v1/funnel",
            params={"gemeente": gemeentecode, "from": first.isoformat(), "to": last.isoformat()},
        )
        f = _FunnelIn.model_validate_json(response.content)
        return Funnel(
            f.gemeentecode,
            f.first,
            f.last,
            f.signals,
            f.cases,
            f.outreach,
            f.reached,
            f.help_accepted,
        )

    async def ddas_export(self, gemeentecode: str, first: date, last: date) -> DdasExport:
        response = await self._request(
            "GET",
            "/internal/v1/ddas",
            params={"gemeente": gemeentecode, "from": first.isoformat(), "to": last.isoformat()},
        )
        media_type = response.headers.get("content-type", "application/json").split(";")[0]
        return DdasExport(response.content, media_type)


class IntakeClient(_Client):
    async def personal_data(
        self, signal_refs: list[str], *, accessor: str, purpose: str
    ) -> dict[str, dict[str, Any]]:
        response = await self._request(
            "GET",
            "/internal/v1/personal-data",
            headers={"X-Accessor": accessor},
            params=[("signal_ref", ref) for ref in signal_refs] + [("purpose", purpose)],
        )
        return _PersonalDataIn.model_validate_json(response.content).records
