"""The staff API (CONTRACT §4.2): visits, backlog, a case, and contact attempts; and for the
staff portal: who am I, the team and its absences, capacity, and phone/letter tasks.

``Authorization: Bearer <staff token>``; tokens are stored only as hashes. A service acting
for a staff member (the portal) sends ``Authorization: Bearer <internal token>`` (the
``internal_api_token`` setting) and ``X-Staff-Code: <code>``: the request then acts as that
active staff member, under the same rules (an unknown or inactive code is 401; with a staff
token ``X-Staff-Code`` is ignored). A medewerker sees and records only on cases of their own
visits; a schuldhulpverlener also on their team's cases in the municipalities they serve; a
coordinator on every case in their municipalities. Errors are ``{"detail": ...}`` with
400/401/403/404/409/422, and the OpenAPI document states which operation gives which.

Every request is answered in this order: who asks (401 without a known token), then whether
the case is theirs (404, 403; on the case endpoints), and only then whether the request is
well formed (422, 400): a caller learns nothing about the request's shape before that.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
)
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator

from eropaf_contracts.ddas import Contactsoort, Dagdeel, Eindresultaat
from eropaf_contracts.events import BacklogReason, OutreachKind, StaffRole
from eropaf_scheduling.domain.model import Absence, StaffMember
from eropaf_scheduling.domain.schedule import CaseRecord, ScheduleError, VisitRecord
from eropaf_scheduling.domain.time import PartOfDay
from eropaf_scheduling.service_layer import services
from eropaf_scheduling.service_layer.services import PlanningConfig
from eropaf_scheduling.service_layer.unit_of_work import SchedulingUnitOfWork

__all__ = ["staff_app", "staff_router"]

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[SchedulingUnitOfWork]]
ReplanNow = Callable[[], Awaitable[object]]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(_Out):
    """A refusal, in words."""

    detail: str


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description, **extra}


_UNAUTHENTICATED: dict[int | str, dict[str, Any]] = {
    401: _error(
        "No bearer token, or one that belongs to no active staff member; or the internal "
        "token without an X-Staff-Code of an active staff member",
        headers={"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    )
}
_NOT_YOURS = _error("The case is not one the staff member may see")
_NO_SUCH_CASE = _error("No case has this reference")
_CASE_REF_PATTERN = r"^[0-9a-f]{16,128}$"
_CaseRef = Annotated[str, Path(pattern=_CASE_REF_PATTERN, description="The case's reference")]
_STAFF_CODE_PATTERN = r"^[a-z0-9-]{2,32}$"
_StaffCode = Annotated[str, Path(pattern=_STAFF_CODE_PATTERN, description="A staff code")]
_COORDINATORS_ONLY = _error("Only a coordinator may do this")
# Operations only a coordinator may call: refused (403) before the request is read.
_COORDINATOR_OPERATIONS = frozenset({"staff_list", "staff_absence", "capacity"})
_MAX_DAYS = 366


class VisitOut(_Out):
    visit_id: str
    case_ref: str
    gemeentecode: str
    datum: date
    dagdeel: Dagdeel
    start: datetime
    end: datetime
    staff: list[str]
    status: str
    sequence: int
    attempt: int


class VisitsOut(_Out):
    visits: list[VisitOut]


class BacklogCaseOut(_Out):
    case_ref: str
    gemeentecode: str
    deadline: date
    reason: BacklogReason


class BacklogOut(_Out):
    cases: list[BacklogCaseOut]


class AttemptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contactsoort: Contactsoort
    datum: date
    dagdeel: Dagdeel | None = None
    bereikt: bool
    eindresultaat: Eindresultaat | None = None
    visit_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{16,64}$")

    @model_validator(mode="after")
    def _result(self) -> AttemptIn:
        if self.bereikt and self.eindresultaat is None:
            raise ValueError("eindresultaat is required when bereikt is true")
        if not self.bereikt and self.eindresultaat is not None:
            raise ValueError("eindresultaat only when bereikt is true")
        return self


class AttemptOut(_Out):
    case_ref: str
    attempt: int
    contactsoort: Contactsoort
    datum: date
    dagdeel: Dagdeel | None
    bereikt: bool
    eindresultaat: Eindresultaat | None
    visit_id: str | None
    recorded_by: str | None


class CaseOut(_Out):
    case_ref: str
    gemeentecode: str
    outreach: str
    urgency: str
    deadline: date
    state: str
    attempt: int
    visits: list[VisitOut]
    contact_attempts: list[AttemptOut]
    eindresultaat: Eindresultaat | None


class MeOut(_Out):
    code: str
    naam: str
    email: str
    organisatie: str
    rol: StaffRole
    gemeenten: list[str]
    taal: str
    bericht: str


class AbsenceOut(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    first: date = Field(alias="from")
    last: date = Field(alias="to")


class StaffMemberOut(_Out):
    code: str
    naam: str
    organisatie: str
    rol: StaffRole
    gemeenten: list[str]
    absences: list[AbsenceOut]


class StaffListOut(_Out):
    staff: list[StaffMemberOut]


class AbsenceIn(BaseModel):
    """Leave or sickness, inclusive dates."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    first: date = Field(alias="from")
    last: date = Field(alias="to")

    @model_validator(mode="after")
    def _order(self) -> AbsenceIn:
        if self.last < self.first:
            raise ValueError("'to' is before 'from'")
        return self


class AbsenceRecordedOut(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    code: str
    first: date = Field(alias="from")
    last: date = Field(alias="to")
    visits_moved: int = Field(
        description="The member's planned visits in the period that are no longer theirs "
        "after replanning (moved to another duo or slot, or to the backlog)"
    )


class CapacityWeekOut(_Out):
    week: str = Field(description="ISO week, e.g. 2026-W46")
    gemeentecode: str
    team: str
    planned: int = Field(description="Visits planned or done (not cancelled) on the asked days")
    available: int = Field(
        description="Visits the team's counsellors serving the municipality could make on the "
        "asked days: roster parts of day less absences and holidays, times the visit windows "
        "of a part of day, at most max_per_dag a day and max_per_week a week"
    )


class CapacityOut(_Out):
    weeks: list[CapacityWeekOut]


class TaskOut(_Out):
    case_ref: str
    gemeentecode: str
    outreach: OutreachKind = Field(description="phone or letter (never home_visit)")
    deadline: date


class TasksOut(_Out):
    tasks: list[TaskOut]


_bearer = HTTPBearer(
    auto_error=False,
    description="A staff token (`eropaf staff import`), or the internal token with X-Staff-Code",
)


def staff_router(
    config: PlanningConfig,
    unit_of_work: UnitOfWorkFactory,
    *,
    internal_token: str | None = None,
    replan_now: ReplanNow | None = None,
) -> APIRouter:
    """``internal_token``: a service may act for a staff member (``X-Staff-Code``); None: no
    service may. ``replan_now``: replans at once after an absence (None: the absence waits
    for the service's replan job, and ``visits_moved`` counts what moved by then)."""
    unauthenticated = {"WWW-Authenticate": "Bearer"}

    async def authenticate(request: Request) -> StaffMember:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "missing bearer token", headers=unauthenticated)
        if internal_token and hmac.compare_digest(token.encode(), internal_token.encode()):
            code = request.headers.get("x-staff-code", "").strip()
            if not re.fullmatch(_STAFF_CODE_PATTERN, code):
                raise HTTPException(
                    401, "X-Staff-Code (a staff code) is required", headers=unauthenticated
                )
            async with unit_of_work() as uow:
                member = await uow.repo.staff_member(code)
            if member is None or not member.active:
                raise HTTPException(401, "unknown staff code", headers=unauthenticated)
            return member
        async with unit_of_work() as uow:
            member = await uow.repo.staff_by_token_hash(services.hash_token(token))
        if member is None or not member.active:
            raise HTTPException(401, "unknown token", headers=unauthenticated)
        return member

    async def check_staff_member(coordinator: StaffMember, code: str) -> None:
        async with unit_of_work() as uow:
            member = await uow.repo.staff_member(code)
        if member is None:
            raise HTTPException(404, "no such staff member")
        if not member.gemeenten & coordinator.gemeenten:
            raise HTTPException(403, "not a staff member in your municipalities")

    async def check_case(member: StaffMember, case_ref: str) -> None:
        try:
            async with unit_of_work() as uow:
                visible = await services.may_see_case(uow, member, case_ref)
        except services.UnknownCase:
            raise HTTPException(404, "no such case") from None
        if not visible:
            raise HTTPException(403, "not a case of yours")

    class StaffRoute(APIRoute):
        """Authenticates, and checks the path's case, before the request is read."""

        def get_route_handler(self) -> Callable[[Request], Any]:
            handler = super().get_route_handler()
            name = self.name

            async def checked_first(request: Request) -> Response:
                member = await authenticate(request)
                if name in _COORDINATOR_OPERATIONS and member.rol is not StaffRole.COORDINATOR:
                    raise HTTPException(403, "only a coordinator may do this")
                case_ref = request.path_params.get("case_ref")
                # a malformed reference is no case: the path's validation answers it (422)
                if isinstance(case_ref, str) and re.fullmatch(_CASE_REF_PATTERN, case_ref):
                    await check_case(member, case_ref)
                code = request.path_params.get("code")
                if isinstance(code, str) and re.fullmatch(_STAFF_CODE_PATTERN, code):
                    await check_staff_member(member, code)
                request.state.staff_member = member
                return await handler(request)

            return checked_first

    router = APIRouter(prefix="/v1", tags=["staff"], route_class=StaffRoute)

    async def current_staff(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        _x_staff_code: Annotated[
            str | None,
            Header(
                alias="X-Staff-Code",
                description="With the internal token: the staff member the request acts for",
            ),
        ] = None,
    ) -> StaffMember:
        member: StaffMember = request.state.staff_member  # set by StaffRoute
        return member

    # a default, not an annotation: annotations are resolved in the module, and this is local
    staff_member = Depends(current_staff)

    def visit_out(case: CaseRecord | None, v: VisitRecord) -> VisitOut:
        start, end = v.times(config.visit_minutes, config.travel_buffer)
        return VisitOut(
            visit_id=v.visit_id,
            case_ref=v.case_ref,
            gemeentecode=case.gemeentecode if case else "",
            datum=v.datum,
            dagdeel=v.part.dagdeel,
            start=start,
            end=end,
            staff=list(v.staff),
            status=v.status,
            sequence=v.sequence,
            attempt=v.attempt,
        )

    @router.get(
        "/visits",
        response_model=VisitsOut,
        summary="The visits of the cases the staff member may see, between two dates",
        responses={**_UNAUTHENTICATED, 400: _error("'to' before 'from', or over a year")},
    )
    async def visits(
        first: Annotated[date, Query(alias="from")],
        last: Annotated[date, Query(alias="to")],
        member: StaffMember = staff_member,
    ) -> VisitsOut:
        _check_period(first, last)
        async with unit_of_work() as uow:
            seen = await services.visible_visits(uow, member, first, last)
        return VisitsOut(visits=[visit_out(case, v) for case, v in seen])

    @router.get(
        "/backlog",
        response_model=BacklogOut,
        summary="Home-visit cases with no visit by their deadline, and why",
        responses={
            **_UNAUTHENTICATED,
            403: _error("The backlog is for counsellors and coordinators"),
        },
    )
    async def backlog(member: StaffMember = staff_member) -> BacklogOut:
        if member.rol is StaffRole.MEDEWERKER:
            raise HTTPException(403, "the backlog is for counsellors and coordinators")
        async with unit_of_work() as uow:
            entries = await uow.repo.backlog()
        return BacklogOut(
            cases=[
                BacklogCaseOut(
                    case_ref=e.case_ref,
                    gemeentecode=e.gemeentecode,
                    deadline=e.deadline,
                    reason=e.reason,
                )
                for e in entries
                if e.gemeentecode in member.gemeenten
                and (member.rol is StaffRole.COORDINATOR or e.team == member.organisatie)
            ]
        )

    @router.get(
        "/cases/{case_ref}",
        response_model=CaseOut,
        summary="The case as staff may see it (no personal data)",
        responses={**_UNAUTHENTICATED, 403: _NOT_YOURS, 404: _NO_SUCH_CASE},
    )
    async def case(case_ref: _CaseRef, member: StaffMember = staff_member) -> CaseOut:
        async with unit_of_work() as uow:
            record = await uow.repo.case(case_ref)
            if record is None:  # re-keyed since it was checked
                raise HTTPException(404, "no such case")
            visits_ = await uow.repo.visits_of(record.case_ref)
            attempts = await uow.repo.attempts_of(record.case_ref)
        return CaseOut(
            case_ref=record.case_ref,
            gemeentecode=record.gemeentecode,
            outreach=record.outreach.value,
            urgency=record.urgency.value,
            deadline=record.deadline,
            state=record.state,
            attempt=record.attempt,
            visits=[visit_out(record, v) for v in visits_],
            contact_attempts=[_attempt_out(a) for a in attempts],
            eindresultaat=record.resultaat,
        )

    @router.post(
        "/cases/{case_ref}/contact-attempts",
        status_code=201,
        response_model=AttemptOut,
        summary="Record a contact attempt: not reached plans the next, reached ends it",
        responses={
            **_UNAUTHENTICATED,
            400: _error("The body cannot be read"),
            403: _NOT_YOURS,
            404: _NO_SUCH_CASE,
            409: _error("The case's state does not allow it (ended, not its planned visit)"),
        },
    )
    async def contact_attempt(
        case_ref: _CaseRef,
        body: AttemptIn,
        request: Request,
        member: StaffMember = staff_member,
    ) -> AttemptOut:
        try:
            async with unit_of_work() as uow:
                attempt = await services.record_contact_attempt(
                    uow,
                    config,
                    case_ref=case_ref,
                    recorded_by=member.code,
                    contactsoort=body.contactsoort,
                    datum=body.datum,
                    dagdeel=PartOfDay.of(body.dagdeel) if body.dagdeel else None,
                    bereikt=body.bereikt,
                    eindresultaat=body.eindresultaat,
                    visit_id=body.visit_id,
                    now=datetime.now(UTC),
                )
        except services.UnknownCase as exc:  # re-keyed since it was checked
            raise HTTPException(404, "no such case") from exc
        except ScheduleError as exc:
            raise HTTPException(409, str(exc)) from exc
        wake: Callable[[], Any] | None = getattr(request.app.state, "wake_relay", None)
        if wake is not None:
            wake()
        return _attempt_out(attempt)

    @router.get(
        "/me",
        response_model=MeOut,
        summary="The staff member the request acts for",
        responses={**_UNAUTHENTICATED},
    )
    async def me(member: StaffMember = staff_member) -> MeOut:
        return MeOut(
            code=member.code,
            naam=member.naam,
            email=member.email,
            organisatie=member.organisatie,
            rol=member.rol,
            gemeenten=sorted(member.gemeenten),
            taal=member.taal,
            bericht=member.bericht,
        )

    @router.get(
        "/staff",
        name="staff_list",
        response_model=StaffListOut,
        summary="Active staff serving any of the coordinator's municipalities, with absences",
        responses={**_UNAUTHENTICATED, 403: _COORDINATORS_ONLY},
    )
    async def staff_list(member: StaffMember = staff_member) -> StaffListOut:
        async with unit_of_work() as uow:
            rows = await services.staff_with_absences(uow, member.gemeenten)
        return StaffListOut(
            staff=[
                StaffMemberOut(
                    code=m.code,
                    naam=m.naam,
                    organisatie=m.organisatie,
                    rol=m.rol,
                    gemeenten=sorted(m.gemeenten),
                    absences=[_absence_out(a) for a in absences],
                )
                for m, absences in rows
            ]
        )

    @router.post(
        "/staff/{code}/absences",
        name="staff_absence",
        status_code=201,
        response_model=AbsenceRecordedOut,
        response_model_by_alias=True,
        summary="Record leave or sickness (inclusive dates) and replan before answering",
        responses={
            **_UNAUTHENTICATED,
            400: _error("The body cannot be read"),
            403: _error(
                "Only a coordinator may do this, for staff serving one of their municipalities"
            ),
            404: _error("No staff member has this code"),
        },
    )
    async def staff_absence(
        code: _StaffCode, body: AbsenceIn, member: StaffMember = staff_member
    ) -> AbsenceRecordedOut:
        now = datetime.now(UTC)

        async def no_replan() -> None:
            return None

        try:
            recorded = await services.record_absence_and_replan(
                unit_of_work, code, body.first, body.last, now, replan_now or no_replan
            )
        except services.UnknownStaff as exc:  # removed since it was checked
            raise HTTPException(404, "no such staff member") from exc
        return AbsenceRecordedOut(
            code=recorded.code,
            first=recorded.first,
            last=recorded.last,
            visits_moved=recorded.visits_moved,
        )

    @router.get(
        "/capacity",
        name="capacity",
        response_model=CapacityOut,
        summary="Per ISO week, municipality and team: visits planned against slots available",
        responses={
            **_UNAUTHENTICATED,
            400: _error("'to' before 'from', or over a year"),
            403: _COORDINATORS_ONLY,
        },
    )
    async def capacity(
        first: Annotated[date, Query(alias="from")],
        last: Annotated[date, Query(alias="to")],
        member: StaffMember = staff_member,
    ) -> CapacityOut:
        _check_period(first, last)
        async with unit_of_work() as uow:
            rows = await services.capacity(uow, config, member.gemeenten, first, last)
        return CapacityOut(
            weeks=[
                CapacityWeekOut(
                    week=r.week,
                    gemeentecode=r.gemeentecode,
                    team=r.team,
                    planned=r.planned,
                    available=r.available,
                )
                for r in rows
            ]
        )

    @router.get(
        "/tasks",
        response_model=TasksOut,
        summary="Open phone and letter outreach (not home visits) the staff member may see",
        responses={**_UNAUTHENTICATED},
    )
    async def tasks(member: StaffMember = staff_member) -> TasksOut:
        async with unit_of_work() as uow:
            visible = await services.open_tasks(uow, member)
        return TasksOut(
            tasks=[
                TaskOut(
                    case_ref=c.case_ref,
                    gemeentecode=c.gemeentecode,
                    outreach=c.outreach,
                    deadline=c.deadline,
                )
                for c in visible
            ]
        )

    return router


def _check_period(first: date, last: date) -> None:
    if last < first:
        raise HTTPException(400, "'to' is before 'from'")
    if (last - first).days > _MAX_DAYS:
        raise HTTPException(400, "at most one year at a time")


def _absence_out(a: Absence) -> AbsenceOut:
    return AbsenceOut(first=a.first, last=a.last)


def _attempt_out(a: Any) -> AttemptOut:
    return AttemptOut(
        case_ref=a.case_ref,
        attempt=a.attempt,
        contactsoort=a.contactsoort,
        datum=a.datum,
        dagdeel=a.dagdeel.dagdeel if a.dagdeel else None,
        bereikt=a.bereikt,
        eindresultaat=a.eindresultaat,
        visit_id=a.visit_id,
        recorded_by=a.recorded_by,
    )


def staff_app(
    config: PlanningConfig,
    unit_of_work: UnitOfWorkFactory,
    app: FastAPI | None = None,
    *,
    internal_token: str | None = None,
    replan_now: ReplanNow | None = None,
) -> FastAPI:
    """The staff API on a FastAPI app (a new one unless given)."""
    app = app or FastAPI(title="eropaf-scheduling staff API")
    app.include_router(
        staff_router(config, unit_of_work, internal_token=internal_token, replan_now=replan_now)
    )
    return app
