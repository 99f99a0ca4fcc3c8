"""The HTTP channel for partners without Kafka (CONTRACT §3) and intake's internal API."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from pydantic import BaseModel

from eropaf_contracts.feedback import Feedback
from eropaf_intake.adapters.rate_limit import RateLimiter
from eropaf_intake.domain.admission import PartnerMessage
from eropaf_intake.domain.csv_rows import CsvFormatError, CsvTooManyRows, parse_csv
from eropaf_intake.domain.decode import BodyError, decode_document
from eropaf_intake.service_layer import services
from eropaf_intake.service_layer.unit_of_work import IntakeUnitOfWork
from eropaf_platform.db import transaction


class SignalResults(BaseModel):
    results: list[Feedback]


class ErrorBody(BaseModel):
    """Every refusal of a whole request: what is wrong, in words meant for the partner."""

    detail: str


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description, **extra}


# The answers of the partners' endpoint besides 202, as the OpenAPI document states them.
SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("The body cannot be read: not UTF-8 JSON or CSV, empty, duplicate keys"),
    401: _error("No bearer token, or one that belongs to no partner"),
    403: _error("The token belongs to another partner than the path names"),
    413: _error("Body over the size limit, or more signals (JSON) or rows (CSV) than allowed"),
    415: _error("Content-Type is neither application/json nor text/csv"),
    429: _error(
        "Too many requests for this token; retry after the seconds in Retry-After",
        headers={"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    ),
}

_SIGNALS_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "description": (
                    "One signal (a DDAS v0.9 vroegsignalen[] item, see the AsyncAPI "
                    "PartnerSignal) or an array of them"
                ),
                "oneOf": [
                    {"type": "object"},
                    {"type": "array", "items": {"type": "object"}, "minItems": 1},
                ],
            }
        },
        "text/csv": {
            "schema": {
                "type": "string",
                "description": "A header row of DDAS field names, one signal per row",
            }
        },
    },
}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _bearer(authorization: str | None) -> str | None:
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    return authorization[7:].strip() or None


def build_router(
    config: services.IntakeConfig,
    sessions: Any,
    *,
    max_body_bytes: int,
    internal_token: str,
    on_commit: Callable[[], None],
    max_signals: int = 50_000,
    max_csv_rows: int = 50_000,
    rate_limiter: RateLimiter | None = None,
) -> APIRouter:
    router = APIRouter()
    limiter = rate_limiter or RateLimiter(0, 1)

    @router.post(
        "/v1/partners/{code}/signals",
        status_code=202,
        response_model=SignalResults,
        tags=["partners"],
        summary="Submit one signal or an array of them (JSON), or a CSV file",
        responses=SUBMIT_RESPONSES,
        openapi_extra={"requestBody": _SIGNALS_BODY},
    )
    async def submit_signals(
        code: str,
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        content_type: Annotated[str | None, Header()] = None,
    ) -> SignalResults:
        token = _bearer(authorization)
        if token is None:
            raise HTTPException(
                401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )
        digest = token_hash(token)
        async with transaction(sessions) as session:
            directory = await services.load_partner_directory(IntakeUnitOfWork(session))
        owner = next(
            (c for c, h in directory.token_hashes.items() if hmac.compare_digest(h, digest)), None
        )
        if owner is None:
            raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})
        if owner != code:
            raise HTTPException(403, "this token belongs to another partner")
        wait_s = limiter.acquire(owner)
        if wait_s:
            raise HTTPException(
                429, "too many requests for this token", headers={"Retry-After": str(wait_s)}
            )
        body = await _read_limited(request, max_body_bytes)
        media_type = (content_type or "").split(";")[0].strip().lower()
        items = _parse_body(body, media_type, max_signals, max_csv_rows)
        messages = [
            PartnerMessage(partner_code=code, value=item, require_signature=False) for item in items
        ]
        async with transaction(sessions) as session:
            feedbacks = await services.accept_partner_messages(
                IntakeUnitOfWork(session, config.keyring), config, messages, directory
            )
        on_commit()
        return SignalResults(results=feedbacks)

    @router.get(
        "/internal/v1/personal-data",
        tags=["internal"],
        summary="Audited read of personal data",
        responses={
            400: _error("Missing or unusable X-Accessor, purpose or signal refs"),
            401: _error("No internal token, or a wrong one"),
        },
    )
    async def personal_data(
        signal_ref: Annotated[list[str], Query(min_length=1)],
        purpose: Annotated[str, Query(min_length=3, max_length=200)],
        authorization: Annotated[str | None, Header()] = None,
        x_accessor: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        token = _bearer(authorization)
        if token is None or not hmac.compare_digest(token.encode(), internal_token.encode()):
            raise HTTPException(401, "internal token required")
        if not x_accessor or not x_accessor.strip() or not x_accessor.isprintable():
            raise HTTPException(400, "X-Accessor header (who reads) is required")
        if not purpose.strip() or not purpose.isprintable():
            raise HTTPException(400, "purpose must say, in printable text, why the data is read")
        if not all(ref.isprintable() and len(ref) <= 128 for ref in signal_ref):
            raise HTTPException(
                400, "signal_ref values are printable refs of at most 128 characters"
            )
        async with transaction(sessions) as session:
            data = await services.read_personal_data(
                IntakeUnitOfWork(session, config.keyring),
                signal_ref,
                accessor=x_accessor,
                purpose=purpose,
            )
        return {"records": data}

    return router


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_body(body: bytes, content_type: str, max_signals: int, max_rows: int) -> list[Any]:
    """The body's items in order, each checked and validated on its own (a bad item gets its
    own rejected result, as on Kafka); a body unusable as a whole is a 4xx."""
    if content_type in ("application/json", ""):
        # Cheap upper bounds before parsing: the parsed form of a body is many times its size.
        if (
            body.count(b"{") + body.count(b"[") > max_signals * 8
            or body.count(b",") > max_signals * 64
        ):
            raise HTTPException(413, f"body holds more values than {max_signals} signals can")
        try:
            return decode_document(body, max_items=max_signals)
        except BodyError as exc:
            raise HTTPException(413 if exc.too_large else 400, str(exc)) from None
    if content_type in ("text/csv", "application/csv"):
        try:
            rows = parse_csv(body, max_rows=max_rows)
        except CsvTooManyRows as exc:
            raise HTTPException(413, str(exc)) from None
        except CsvFormatError as exc:
            raise HTTPException(400, str(exc)) from None
        if not rows:
            raise HTTPException(400, "the CSV holds no rows")
        return [row.values for row in rows]
    raise HTTPException(415, "send application/json or text/csv")
