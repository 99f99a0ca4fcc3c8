"""Matching's internal read API, for the staff portal: a case's signal refs (to ask intake's
audited personal-data API for the household's contact details), the outreach funnel of a
municipality and period, and its DDAS delivery.

``Authorization: Bearer <internal token>`` (the ``internal_api_token`` setting), else 401;
checked before anything else of the request. Errors are ``{"detail": ...}``: 400 for a
municipality the region does not serve or a period that is not one, 422 for a malformed
parameter, 404 for an unknown case.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any

import orjson
from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Path,
    Query,
    Response,
)
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from eropaf_contracts.region import Region
from eropaf_matching.adapters.intake_client import IntakeError
from eropaf_matching.domain.ddas_export import Organisatie, PersonalRecords
from eropaf_matching.service_layer import reports
from eropaf_matching.service_layer.reports import CaseReader

__all__ = ["DEFAULT_LEVERANCIER", "PersonalRecordsFor", "internal_app", "internal_router"]

DEFAULT_LEVERANCIER = "eropaf"  # as `eropaf ddas export`
_MAX_DAYS = 366
_CASE_REF_PATTERN = r"^[0-9a-f]{16,128}$"
_GEMEENTE_PATTERN = r"^[0-9]{4}$"

PersonalRecordsFor = Callable[[str], PersonalRecords]
"""accessor -> reader of DDAS client fields from intake's audited API, as that accessor."""


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(_Out):
    detail: str


class CaseSignalsOut(_Out):
    case_ref: str = Field(
        description="The case's current ref (a merged case answers as its new one)"
    )
    signal_refs: list[str] = Field(description="All the case's signals, open and resolved")


class FunnelOut(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    gemeentecode: str
    first: date = Field(alias="from")
    last: date = Field(alias="to")
    signals: int = Field(
        description="Signals received in the period (the delivery's vroegsignalen)"
    )
    cases: int = Field(description="Cases active in the period (the delivery's vroegsignaalzaken)")
    outreach: int = Field(description="Of those cases, the ones picked up (datum_opgepakt)")
    reached: int = Field(description="Of those cases, the ones with a contact attempt that reached")
    help_accepted: int = Field(description="Of the reached cases, the ones that ended in help")


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


_UNAUTHENTICATED: dict[int | str, dict[str, Any]] = {
    401: _error("No bearer token, or not the internal one")
}
_BAD_PERIOD = _error(
    "A municipality the region does not serve, or 'to' before 'from' or over a year"
)
_bearer = HTTPBearer(auto_error=False, description="The internal API token")


def internal_router(
    *,
    token: str,
    reader: CaseReader,
    region: Region,
    personal_records_for: PersonalRecordsFor | None = None,
) -> APIRouter:
    """``personal_records_for``: how the DDAS delivery reads client fields from intake (None:
    ``personal_data=true`` is refused with 400)."""

    async def internal_only(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        given = credentials.credentials.strip() if credentials else ""
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(
                401, "internal token required", headers={"WWW-Authenticate": "Bearer"}
            )

    router = APIRouter(
        prefix="/internal/v1", tags=["internal"], dependencies=[Depends(internal_only)]
    )

    def municipality(code: str, first: date, last: date) -> str:
        served = region.municipality(code)
        if served is None:
            raise HTTPException(400, f"municipality {code} is not served by this region")
        if last < first:
            raise HTTPException(400, "'to' is before 'from'")
        if (last - first).days > _MAX_DAYS:
            raise HTTPException(400, "at most one year at a time")
        return served.name

    @router.get(
        "/cases/{case_ref}/signals",
        response_model=CaseSignalsOut,
        summary="The signal refs of a case",
        responses={**_UNAUTHENTICATED, 404: _error("No case has this reference")},
    )
    async def case_signals(
        case_ref: Annotated[str, Path(pattern=_CASE_REF_PATTERN)],
    ) -> CaseSignalsOut:
        found = await reports.case_signal_refs(reader, case_ref)
        if found is None:
            raise HTTPException(404, "no such case")
        current, refs = found
        return CaseSignalsOut(case_ref=current, signal_refs=refs)

    @router.get(
        "/funnel",
        response_model=FunnelOut,
        summary="Signals, cases, outreach, reached and help accepted of a municipality's period",
        responses={**_UNAUTHENTICATED, 400: _BAD_PERIOD},
    )
    async def funnel(
        gemeente: Annotated[str, Query(pattern=_GEMEENTE_PATTERN)],
        first: Annotated[date, Query(alias="from")],
        last: Annotated[date, Query(alias="to")],
    ) -> FunnelOut:
        municipality(gemeente, first, last)
        f = await reports.outreach_funnel(reader, gemeente, first, last)
        return FunnelOut(
            gemeentecode=f.gemeentecode,
            first=f.start,
            last=f.end,
            signals=f.signals,
            cases=f.cases,
            outreach=f.outreach,
            reached=f.reached,
            help_accepted=f.help_accepted,
        )

    @router.get(
        "/ddas",
        summary="The DDAS v0.9 delivery of a municipality's period, as `eropaf ddas export`",
        response_class=Response,
        responses={
            200: {
                "description": "The delivery (DDAS v0.9 Uitwisselmodel, validated)",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            **_UNAUTHENTICATED,
            400: _error(
                "A municipality the region does not serve, a period that is not one, or "
                "personal data without X-Accessor"
            ),
            502: _error("Intake did not give the personal data"),
        },
    )
    async def ddas(
        gemeente: Annotated[str, Query(pattern=_GEMEENTE_PATTERN)],
        first: Annotated[date, Query(alias="from")],
        last: Annotated[date, Query(alias="to")],
        personal_data: Annotated[
            bool,
            Query(
                description="Include the client fields, read from intake (audited, as X-Accessor)"
            ),
        ] = False,
        x_accessor: Annotated[
            str | None,
            Header(max_length=200, description="Who reads the personal data (personal_data=true)"),
        ] = None,
    ) -> Response:
        name = municipality(gemeente, first, last)
        records: PersonalRecords | None = None
        if personal_data:
            accessor = (x_accessor or "").strip()
            if not accessor or not accessor.isprintable():
                raise HTTPException(400, "personal data needs X-Accessor (who reads)")
            if personal_records_for is None:
                raise HTTPException(400, "this service reads no personal data")
            records = personal_records_for(accessor)
        try:
            document = await reports.ddas_delivery(
                reader,
                gemeentecode=gemeente,
                start=first,
                end=last,
                organisatie=Organisatie(naam=f"Gemeente {name}"),
                code_gegevensleverancier=DEFAULT_LEVERANCIER,
                aangeleverd_op=datetime.now(UTC),
                personal_records=records,
            )
        except IntakeError as exc:
            raise HTTPException(502, str(exc)) from exc
        filename = f"ddas-{gemeente}-{first.isoformat()}-{last.isoformat()}.json"
        return Response(
            orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n",
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    return router


def internal_app(app: FastAPI | None = None, **kwargs: Any) -> FastAPI:
    app = app or FastAPI(title="eropaf-matching internal API")
    app.include_router(internal_router(**kwargs))
    return app
