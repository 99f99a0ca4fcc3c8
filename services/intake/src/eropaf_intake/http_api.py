"""The HTTP channel for partners without Kafka (CONTRACT §3) and intake's internal API."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from pydantic import BaseModel

from eropaf_contracts.feedback import Feedback
from eropaf_intake.domain.admission import PartnerMessage
from eropaf_intake.domain.csv_rows import CsvFormatError, parse_csv
from eropaf_intake.service_layer import services
from eropaf_intake.service_layer.unit_of_work import IntakeUnitOfWork
from eropaf_platform.db import transaction


class SignalResults(BaseModel):
    results: list[Feedback]


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
) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/v1/partners/{code}/signals",
        status_code=202,
        response_model=SignalResults,
        tags=["partners"],
        summary="Submit one signal or an array of them (JSON), or a CSV file",
        responses={400: {}, 401: {}, 403: {}, 413: {}, 415: {}},
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
        body = await _read_limited(request, max_body_bytes)
        items = _parse_body(body, (content_type or "").split(";")[0].strip().lower())
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
        "/internal/v1/personal-data", tags=["internal"], summary="Audited read of personal data"
    )
    async def personal_data(
        signal_ref: Annotated[list[str], Query(min_length=1)],
        purpose: Annotated[str, Query(min_length=3)],
        authorization: Annotated[str | None, Header()] = None,
        x_accessor: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        token = _bearer(authorization)
        if token is None or not hmac.compare_digest(token, internal_token):
            raise HTTPException(401, "internal token required")
        if not x_accessor:
            raise HTTPException(400, "X-Accessor header (who reads) is required")
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


def _parse_body(body: bytes, content_type: str) -> list[Any]:
    if content_type in ("application/json", ""):
        try:
            parsed = json.loads(body.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise HTTPException(400, f"body is not valid UTF-8 JSON: {exc}") from exc
        items = parsed if isinstance(parsed, list) else [parsed]
        if not items:
            raise HTTPException(400, "the array holds no signals")
        return items
    if content_type in ("text/csv", "application/csv"):
        try:
            rows = parse_csv(body)
        except CsvFormatError as exc:
            raise HTTPException(400, str(exc)) from exc
        if not rows:
            raise HTTPException(400, "the CSV holds no rows")
        return [row.values for row in rows]
    raise HTTPException(415, "send application/json or text/csv")
