"""The one envelope every internal event travels in.

Internal topics carry JSON ``{"id", "type", "version", "time", "key", "correlation_id",
"causation_id", "data"}``. The id is what consumers deduplicate on (never the offset: the
local broker forgets offsets when it restarts); ``key`` is the Kafka key (household or case
pseudonym) so one household's events stay ordered; correlation/causation ids let an operator
follow one signal through every service.
"""

from __future__ import annotations

import builtins
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from eropaf_contracts.cloudevents import encode_headers, event_headers


class EventPayload(Protocol):
    EVENT_TYPE: ClassVar[str]
    VERSION: ClassVar[int]

    def model_dump(self, *, mode: str = ..., by_alias: bool = ...) -> dict[str, Any]: ...


P = TypeVar("P", bound=BaseModel)

ENVELOPE_VERSION = 1


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    type: str
    version: int
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    key: str
    correlation_id: str | None = None
    causation_id: str | None = None
    data: dict[str, Any]

    @classmethod
    def wrap(
        cls,
        payload: BaseModel,
        *,
        key: str,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        id: str | None = None,
    ) -> Self:
        """Wrap a payload model that declares ``EVENT_TYPE`` and ``VERSION``."""
        event_type = getattr(payload, "EVENT_TYPE", None)
        version = getattr(payload, "VERSION", None)
        if not isinstance(event_type, str) or not isinstance(version, int):
            raise TypeError(f"{type(payload).__name__} declares no EVENT_TYPE/VERSION")
        extra = {"id": id} if id is not None else {}
        return cls(
            type=event_type,
            version=version,
            key=key,
            correlation_id=correlation_id,
            causation_id=causation_id,
            data=payload.model_dump(mode="json", by_alias=True),
            **extra,
        )

    def follow(
        self, payload: BaseModel, *, key: str | None = None, id: str | None = None
    ) -> Envelope:
        """An event caused by this one: same correlation, causation = this id."""
        return Envelope.wrap(
            payload,
            key=key if key is not None else self.key,
            correlation_id=self.correlation_id or self.id,
            causation_id=self.id,
            id=id,
        )

    def payload(self, model: builtins.type[P]) -> P:
        expected = getattr(model, "EVENT_TYPE", None)
        if expected is not None and expected != self.type:
            raise ValueError(f"envelope carries {self.type!r}, not {expected!r}")
        return model.model_validate(self.data)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        return cls.model_validate_json(raw)

    def headers(self) -> list[tuple[str, bytes]]:
        """Routing headers mirrored from the body so DLQ tools and filters need not parse JSON
        (:func:`eropaf_contracts.cloudevents.event_headers`)."""
        return encode_headers(self.text_headers())

    def text_headers(self) -> list[tuple[str, str]]:
        return event_headers(
            id=self.id, type=self.type, version=self.version, correlation_id=self.correlation_id
        )
