"""The partners' door: one bounded decode step for every partner value, Kafka or HTTP.

Before any model or database sees a partner value it is checked here, with bounded cost and
no way to fail other than a planned answer:

- size (bytes of the message or body), strict UTF-8 and strict JSON (orjson: no NaN, no
  trailing content, no lone surrogates, no raw control characters in strings);
- nesting depth, keys per object and items per array, string length, key length;
- numbers: integers and floats beyond +-2**53 (what every JSON reader keeps exactly);
- NUL and other control or format characters (C0/C1, bidi overrides, zero-width characters,
  line and paragraph separators) in any string or key: PostgreSQL refuses ``\\u0000`` and the
  others disguise text;
- duplicate keys (readers disagree on which one counts; the signed bytes must mean one thing).

Every problem is an ``invalid_json``, ``invalid_schema`` (with the field) or ``too_large``
reason. Nothing here echoes more of a partner value than :func:`echo` allows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from eropaf_contracts.feedback import FeedbackReason, ReasonCode

from .normalise import find_control_characters

__all__ = [
    "MAX_ECHO_CHARS",
    "BodyError",
    "DecodeLimits",
    "Undecodable",
    "check_object",
    "decode_document",
    "decode_object",
    "echo",
    "header_value",
    "readable_id",
    "unprocessable",
]

MAX_ECHO_CHARS = 64  # the most of a partner value (an ID, a key) any answer repeats
MAX_FIELD_CHARS = 200  # a field path in a reason (names of at most 64, nested)
MAX_HEADER_CHARS = 128  # the most of a header (ce_id, ce_type) kept and repeated
UNPROCESSABLE = (
    "the message could not be processed; the operators have a copy: quote its ce_id to them"
)
MAX_SAFE_NUMBER = 2**53  # integers beyond this lose precision in most JSON readers
_MAX_REASONS = 20  # per message; a flood of reasons helps nobody
_BOM = b"\xef\xbb\xbf"
# A JSON string, and whether a colon follows it (then it is a key). Applied from the start of
# text orjson has accepted, the matches are exactly the document's strings in order.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"([ \t\r\n]*:)?')


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds of one partner value (defaults fit every DDAS signal with a wide margin)."""

    max_depth: int = 8  # a signal needs 3 (signal > client > field)
    max_members: int = 64  # keys of one object / items of one array inside a signal
    max_string_chars: int = 1000  # one string value
    max_key_chars: int = 64  # one object key


@dataclass(frozen=True, slots=True)
class Undecodable:
    """Why a value was refused, as feedback reasons; the ``ID`` when it could be read."""

    reasons: list[FeedbackReason]
    signal_id: str | None = None


def _reason(code: ReasonCode, field: str | None, message: str) -> FeedbackReason:
    return FeedbackReason(code=code, field=field, message=message)


def _refused(code: ReasonCode, message: str, field: str | None = None) -> Undecodable:
    return Undecodable([_reason(code, field, message)])


def echo(value: str, limit: int = MAX_ECHO_CHARS) -> str:
    """`value` as an answer may repeat it: control and format characters escaped
    (``\\u0000``), cut to `limit` characters with ``…``. Printable short values are unchanged."""
    if len(value) <= limit and value.isprintable():
        return value
    head = value[: limit + 1]
    if not head.isprintable():
        head = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in head)
    return head if len(head) <= limit else head[: limit - 1] + "…"


def header_value(value: str | None) -> str | None:
    """A partner's header as intake keeps and repeats it (:func:`echo`, cut shorter than a
    value: a UUID or a CloudEvents type fits whole)."""
    return None if value is None else echo(value, MAX_HEADER_CHARS)


def unprocessable() -> Undecodable:
    """The generic answer to a partner message that failed in a way not foreseen: rejected,
    never silent (the dead-letter queue keeps the message for operators)."""
    return _refused(ReasonCode.INVALID_SCHEMA, UNPROCESSABLE)


def readable_id(data: Mapping[str, Any]) -> str | None:
    """The signal's ``ID`` for the feedback (its key and ``ID`` field), as :func:`echo` gives
    it; None when there is no non-empty string ``ID``."""
    signal_id = data.get("ID")
    return echo(signal_id) if isinstance(signal_id, str) and signal_id else None


# --- the walk ---------------------------------------------------------------------------------


def _key_path(path: str, key: str, limits: DecodeLimits) -> str:
    name = echo(key, limits.max_key_chars)
    return f"{path}.{name}" if path else name


class _Walk:
    """Checks an already parsed value. Recursive, but never deeper than ``max_depth``: a
    container below that depth is refused, not entered."""

    def __init__(self, limits: DecodeLimits) -> None:
        self.limits = limits
        self.reasons: list[FeedbackReason] = []
        self.keys = 0  # object members seen (all of them when no reason was found)
        self.too_deep = False

    def add(self, code: ReasonCode, field: str | None, message: str) -> None:
        if len(self.reasons) < _MAX_REASONS:
            shown = None if field is None else echo(field, MAX_FIELD_CHARS)
            self.reasons.append(_reason(code, shown, message))

    def run(self, root: Any) -> None:
        self._value(root, "", 1)

    def _value(self, value: Any, path: str, depth: int) -> None:
        kind = type(value)
        if kind is str:
            if len(value) > self.limits.max_string_chars or not value.isprintable():
                self._string(value, path)
        elif kind is dict:
            self._object(value, path, depth)
        elif kind is list:
            self._array(value, path, depth)
        elif kind is int or kind is float:
            if not -MAX_SAFE_NUMBER <= value <= MAX_SAFE_NUMBER:
                self.add(
                    ReasonCode.INVALID_SCHEMA,
                    path or None,
                    f"number out of range (at most {MAX_SAFE_NUMBER} in size)",
                )
        elif kind is not bool and value is not None:  # a caller's object JSON cannot hold
            self.add(ReasonCode.INVALID_SCHEMA, path or None, "not a JSON value")

    def _string(self, text: str, path: str) -> None:
        limits = self.limits
        if len(text) > limits.max_string_chars:
            self.add(
                ReasonCode.INVALID_SCHEMA,
                path or None,
                f"longer than {limits.max_string_chars} characters",
            )
            return
        found = find_control_characters(text)
        if found:
            shown = ", ".join(found[:5])
            self.add(
                ReasonCode.INVALID_SCHEMA, path or None, f"contains control characters: {shown}"
            )

    def _deep(self, depth: int) -> bool:
        if depth <= self.limits.max_depth:
            return False
        self.too_deep = True
        self.add(
            ReasonCode.INVALID_JSON, None, f"nested deeper than {self.limits.max_depth} levels"
        )
        return True

    def _object(self, obj: dict[str, Any], path: str, depth: int) -> None:
        limits = self.limits
        if self._deep(depth):
            return
        self.keys += len(obj)
        if len(obj) > limits.max_members:
            self.add(
                ReasonCode.INVALID_SCHEMA, path or None, f"more than {limits.max_members} keys"
            )
            return
        max_string, max_key = limits.max_string_chars, limits.max_key_chars
        for key, item in obj.items():
            if len(self.reasons) >= _MAX_REASONS or self.too_deep:
                return
            if len(key) > max_key or not key.isprintable():
                self.add(
                    ReasonCode.INVALID_SCHEMA,
                    _key_path(path, key, limits),
                    f"not a field name (at most {max_key} printable characters)",
                )
                continue
            kind = type(item)
            # The common case first, without building the field's path.
            if kind is str and len(item) <= max_string and item.isprintable():
                continue
            if kind is bool or item is None:
                continue
            self._value(item, f"{path}.{key}" if path else key, depth + 1)

    def _array(self, items: list[Any], path: str, depth: int) -> None:
        limits = self.limits
        if self._deep(depth):
            return
        if len(items) > limits.max_members:
            self.add(
                ReasonCode.INVALID_SCHEMA, path or None, f"more than {limits.max_members} items"
            )
            return
        for index, item in enumerate(items):
            if len(self.reasons) >= _MAX_REASONS or self.too_deep:
                return
            self._value(item, f"{path}[{index}]", depth + 1)


def _members(parsed: Any) -> int:
    """Object members in a parsed value, all of them (iteratively: depth is orjson's 1024)."""
    count = 0
    stack = [parsed]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            count += len(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return count


def _has_duplicate_keys(raw: bytes, members: int) -> bool:
    """Whether JSON text orjson has accepted holds more keys than its parsed form (`members`):
    orjson keeps the last of duplicate keys silently."""
    # Fast path: every key (without whitespace before its colon) ends in '":'; a string that
    # starts with ':' or holds '\\":' adds to the count, never takes from it. So an equal count
    # proves there is no duplicate; anything else is settled by tokenising the strings.
    if not (b" :" in raw or b"\t:" in raw or b"\n:" in raw or b"\r:" in raw):
        if raw.count(b'":') == members:
            return False
    found = _STRING.findall(raw)
    return len(found) - found.count(b"") != members


def _duplicate_key(raw: bytes) -> str:
    """The first duplicate key, for the message (only called when there is one)."""
    duplicate: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen and not duplicate:
                duplicate.append(key)
            seen[key] = value
        return seen

    try:  # safe: orjson and the walk have bounded depth and numbers already
        json.loads(raw, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        pass
    return f"duplicate key {echo(duplicate[0])!r}" if duplicate else "duplicate key"


def _parse(raw: bytes) -> Any:
    """orjson's parse; raises ValueError with a message that never repeats the input."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        message = str(exc)
        if "UTF-8" in message:
            message = "not UTF-8"
        elif "infinity" in message:
            message = f"number out of range (at most {MAX_SAFE_NUMBER} in size)"
        elif "depth limit" in message:
            message = "nested too deeply"
        raise ValueError(message[:200]) from None


def check_object(
    obj: Mapping[str, Any], limits: DecodeLimits = DecodeLimits()
) -> Undecodable | None:
    """Bounds and characters of an already parsed object (an HTTP item, a CSV row)."""
    walk = _Walk(limits)
    walk.run(obj)
    if walk.reasons:
        return Undecodable(walk.reasons, None if walk.too_deep else readable_id(obj))
    return None


def decode_object(
    raw: bytes, limits: DecodeLimits = DecodeLimits(), *, max_bytes: int = 64 * 1024
) -> dict[str, Any] | Undecodable:
    """One Kafka message value: a JSON object within the limits, or why not."""
    if len(raw) > max_bytes:
        return _refused(
            ReasonCode.TOO_LARGE, f"message is {len(raw)} bytes, the limit is {max_bytes}"
        )
    try:
        parsed = _parse(raw)
    except ValueError as exc:
        return _refused(ReasonCode.INVALID_JSON, f"not JSON: {exc}")
    if not isinstance(parsed, dict):
        return _refused(ReasonCode.INVALID_JSON, "not a JSON object")
    walk = _Walk(limits)
    walk.run(parsed)
    if walk.reasons:
        return Undecodable(walk.reasons, None if walk.too_deep else readable_id(parsed))
    if _has_duplicate_keys(raw, walk.keys):
        return Undecodable(
            [_reason(ReasonCode.INVALID_JSON, None, f"not JSON: {_duplicate_key(raw)}")],
            None,
        )
    return parsed


class BodyError(ValueError):
    """An HTTP body that is unusable as a whole; the message is safe to answer with."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


def decode_document(raw: bytes, *, max_items: int = 50_000) -> list[Any]:
    """An HTTP JSON body: one value or an array of at most `max_items`, as a list. A body that
    is not JSON raises :class:`BodyError` (HTTP 400; too many items: 413). The items are not
    checked here: each is checked on its own (:func:`check_object`) and, when bad, refused on
    its own, as it would be on Kafka."""
    body = raw.removeprefix(_BOM)  # spreadsheet tools and Windows editors write one
    try:
        parsed = _parse(body)
    except ValueError as exc:
        raise BodyError(f"body is not valid UTF-8 JSON: {exc}") from None
    items = parsed if isinstance(parsed, list) else [parsed]
    if not items:
        raise BodyError("the array holds no signals")
    if len(items) > max_items:
        raise BodyError(
            f"the array holds {len(items)} signals, the limit is {max_items}; "
            "split it over several requests",
            too_large=True,
        )
    # Duplicate keys anywhere make the body ambiguous as a whole.
    if _has_duplicate_keys(body, _members(parsed)):
        raise BodyError(f"body is not valid JSON: {_duplicate_key(body)}")
    return items
