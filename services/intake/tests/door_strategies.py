"""Hypothesis strategies for the partners' door: what a careless or hostile partner sends.

Shared by the pure tier (tests/domain/test_door_properties.py), the in-process tier over
PostgreSQL (tests/integration/test_door_fuzz.py) and the real-broker tier
(tests/integration/test_door_fuzz_kafka.py). A drawn message is a *plan* (value bytes and what
to do to the headers and signature); the test carries it out with the partner's real key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

T = TypeVar("T")

# Every Unicode category, NUL, lone surrogates and bidi controls included.
ANY_CHAR = st.characters(exclude_categories=())
HOSTILE_CHARS = st.sampled_from(
    ["\x00", "\x01", "\x1b", "\x7f", "\x85", "\u200b", "\u200d", "\u202e", "\u2066", "\u2028",
     "\ufeff", "\ud800", "\udfff", "\ufffe", "\U0010ffff", "é", "\u0301", "ß", "\U0001d518"]
)  # fmt: skip
TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=40),
    st.text(HOSTILE_CHARS, min_size=1, max_size=5),
    st.builds(lambda n, c: c * n, st.integers(900, 3000), st.sampled_from(["x", "é", "\x00"])),
)
HUGE_INTS = st.builds(
    lambda digits, sign: int(sign + "9" * digits), st.integers(16, 4000), st.sampled_from(["", "-"])
)
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    HUGE_INTS,
    st.floats(allow_nan=False, allow_infinity=False),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
KEYS = st.one_of(
    st.sampled_from(["ID", "client", "Postcode", "type", "x"]), st.text(ANY_CHAR, max_size=8)
)
# A wrong value for a field: cheap to draw (recursive strategies cost ~10 ms an example).
FIELD_VALUES = st.one_of(
    SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(KEYS, SCALARS, max_size=3)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=6,
)

# Fields of a DDAS signal, as a path into the object.
SIGNAL_FIELDS: list[tuple[str, ...]] = [
    ("ID",),
    ("crisissignaal",),
    ("warmeOverdracht",),
    ("bedrag",),
    ("ontstaansdatum",),
    ("signaaldatum",),
    ("status",),
    ("signaalpartner",),
    ("signaalpartner", "type"),
    ("client",),
    *[
        ("client", name)
        for name in (
            "Burgerservicenummer", "Voorletters", "Voorvoegsel", "Achternaam", "Geboortedatum",
            "Straatnaam", "Postcode", "Huisnummer", "Huisnummertoevoeging", "Plaatsnaam",
        )
    ],
    ("contactgegevens",),
    ("contactgegevens", "telefoonnummer"),
    ("contactgegevens", "email"),
]  # fmt: skip
_DELETE = object()


def valid_signal(signal_id: str | None = None, today: date | None = None) -> dict[str, Any]:
    """A signal the test region accepts (Nieuwegein), unique unless an ID is given."""
    return {
        "ID": signal_id or f"F-{uuid.uuid4().hex[:12]}",
        "crisissignaal": False,
        "warmeOverdracht": False,
        "bedrag": 450,
        "ontstaansdatum": "2024-08-01",
        "signaaldatum": (today or date.today()).isoformat(),
        "signaalpartner": {"type": "Huur"},
        "client": {
            "Burgerservicenummer": "111222333",
            "Achternaam": "Dijk",
            "Geboortedatum": "1980-04-01",
            "Postcode": "3431 AB",
            "Huisnummer": "12",
        },
    }


def _set(obj: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(obj))
    target = out
    for part in path[:-1]:
        if not isinstance(target.get(part), dict):
            target[part] = {}
        target = target[part]
    if value is _DELETE:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return out


@st.composite
def signal_objects(draw: st.DrawFn) -> Any:
    """A valid signal with up to three fields given a wrong value, deleted, or extra keys."""
    obj: Any = valid_signal(draw(st.one_of(st.none(), TEXT, st.text("ABC-0123", min_size=1))))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(SIGNAL_FIELDS))
        value = draw(st.one_of(st.just(_DELETE), FIELD_VALUES))
        obj = _set(obj, path, value)
    if draw(st.booleans()):
        obj[draw(st.text(ANY_CHAR, max_size=70))] = draw(SCALARS)
    return obj


def deep(levels: int, opener: str = "[") -> bytes:
    closer = {"[": "]", "{": "}"}[opener]
    if opener == "{":
        return ('{"a":' * levels + "1" + closer * levels).encode()
    return (opener * levels + closer * levels).encode()


HOSTILE_BYTES = st.one_of(
    st.binary(max_size=200),
    st.builds(deep, st.integers(1, 6000), st.sampled_from("[{")),
    st.builds(lambda d: b'{"ID": "x", "bedrag": ' + b"9" * d + b"}", st.integers(1, 6000)),
    st.builds(lambda d: b'{"ID": "x", "bedrag": 1.' + b"5" * d + b"}", st.integers(1, 6000)),
    st.builds(lambda d: b'{"ID": "x", "bedrag": 1e' + str(d).encode() + b"}", st.integers(1, 999)),
    st.sampled_from(
        [
            b"",
            b"null",
            b"[]",
            b"{}",
            b'"x"',
            b"NaN",
            b'{"ID": NaN}',
            b"\xef\xbb\xbf{}",
            b'{"ID": "a", "ID": "b"}',
            b'{"ID": "\\u0000"}',
            b'{"ID": "\\ud800"}',
            b'{"ID": "x\x00"}',
            b'{"ID": "\xed\xa0\x80"}',
            b"{" * 100_000,
            b'{"ID": "x"} trailing',
        ]
    ),
)


def encode(obj: Any, style: str) -> bytes:
    """A value as JSON bytes, in one of the ways partners write it (or get wrong)."""
    if style == "ascii":
        return json.dumps(obj, ensure_ascii=True).encode()
    if style == "utf8":
        return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if style == "bom":
        return b"\xef\xbb\xbf" + json.dumps(obj).encode()
    if style == "duplicate":
        text = json.dumps(obj)
        return (text[:1] + '"ID": "dup", ' + text[1:]).encode() if text.startswith("{") else b"{"
    if style == "spaced":
        return json.dumps(obj, indent=2, separators=(" , ", " : ")).encode()
    return json.dumps(obj).encode()[:-1]  # "truncated"


ENCODINGS = st.sampled_from(["ascii", "ascii", "utf8", "bom", "duplicate", "spaced", "truncated"])


@st.composite
def values(draw: st.DrawFn) -> bytes:
    """A message value: mostly signal-shaped JSON, else any JSON, else hostile bytes."""
    kind = draw(st.sampled_from(["signal", "signal", "signal", "json", "bytes"]))
    if kind == "bytes":
        return draw(HOSTILE_BYTES)
    obj = draw(signal_objects()) if kind == "signal" else draw(JSON_VALUES)
    return encode(obj, draw(ENCODINGS))


HEADER_TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=20).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=20),
    st.builds(lambda n: b"x" * n, st.integers(200, 5000)),
    st.just(b"\x00"),
)


@dataclass(frozen=True)
class KafkaPlan:
    """One partner message to send: value and what to do to its signed headers."""

    value: bytes
    ce_type: str  # "submitted", "resolved" or a wrong type
    signature: str  # good, none, other_bytes, other_key, garbage, repeated
    header_faults: tuple[tuple[str, bytes | None], ...]  # header -> replaced (None: removed)


@st.composite
def kafka_plans(draw: st.DrawFn) -> KafkaPlan:
    value = draw(values())
    ce_type = draw(
        st.sampled_from(["submitted"] * 6 + ["resolved", "nl.example.other.v1", "", "é\x00"])
    )
    signature = draw(
        st.sampled_from(["good"] * 6 + ["none", "other_bytes", "other_key", "garbage", "repeated"])
    )
    faults = draw(
        st.lists(
            st.tuples(
                st.sampled_from(
                    ["ce_id", "ce_source", "ce_time", "ce_specversion", "content-type"]
                ),
                st.one_of(st.none(), HEADER_TEXT),
            ),
            max_size=2,
        )
    )
    return KafkaPlan(value, ce_type, signature, tuple(faults))


@dataclass(frozen=True)
class HttpPlan:
    body: bytes
    content_type: str


def _csv(rows: list[list[str]], delimiter: str) -> bytes:
    lines = [delimiter.join(cells) for cells in rows]
    return "\r\n".join(lines).encode("utf-8", "surrogatepass")


CSV_HEADER = ["ID", "bedrag", "signaaldatum", "signaalpartner.type", "Burgerservicenummer",
              "Achternaam", "Geboortedatum", "Postcode", "Huisnummer"]  # fmt: skip


@st.composite
def csv_bodies(draw: st.DrawFn) -> bytes:
    header = list(CSV_HEADER)
    if draw(st.booleans()):
        header = draw(st.permutations(header))
    if draw(st.integers(0, 9)) == 0:
        header.append(draw(st.text(ANY_CHAR, max_size=10)))
    delimiter = draw(st.sampled_from([",", ";"]))
    base = {
        "ID": "C-1", "bedrag": "450", "signaaldatum": date.today().isoformat(),
        "signaalpartner.type": "Huur", "Burgerservicenummer": "111222333", "Achternaam": "Dijk",
        "Geboortedatum": "1980-04-01", "Postcode": "3431 AB", "Huisnummer": "12",
    }  # fmt: skip
    rows = [header]
    for _ in range(draw(st.integers(0, 4))):
        row = dict(base, ID=f"C-{uuid.uuid4().hex[:10]}")
        for _ in range(draw(st.integers(0, 2))):
            row[draw(st.sampled_from(CSV_HEADER))] = draw(TEXT)
        rows.append([row.get(h, "") for h in header])
    body = _csv(rows, delimiter)
    if draw(st.integers(0, 9)) == 0:
        body = body.replace(b"C-", b"C\x00", 1)
    return body


@st.composite
def http_plans(draw: st.DrawFn) -> HttpPlan:
    kind = draw(st.sampled_from(["json", "json", "array", "csv", "csv", "other"]))
    if kind == "csv":
        return HttpPlan(draw(csv_bodies()), draw(st.sampled_from(["text/csv", "application/csv"])))
    if kind == "array":
        items = draw(st.lists(st.one_of(signal_objects(), JSON_VALUES), max_size=5))
        return HttpPlan(encode(items, draw(ENCODINGS)), "application/json")
    content_type = draw(
        st.sampled_from(["application/json"] * 5 + ["", "application/json; charset=utf-8"])
    )
    if kind == "other":
        content_type = draw(st.sampled_from(["text/plain", "application/xml", "é/\x7f"]))
    return HttpPlan(draw(values()), content_type)


def draw_many(strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """`count` examples of `strategy`, the same ones on every run (derandomised): for tiers
    that send them in bulk (a real broker), where a test per example would cost too much."""
    drawn: list[T] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: T) -> None:
        drawn.append(example)

    collect()
    return drawn


def fuzz_settings(max_examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Deterministic hypothesis settings for CI: derandomised, no example database."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


CE_TYPES = {
    "submitted": "nl.vroegsignalering.signal.submitted.v1",
    "resolved": "nl.vroegsignalering.signal.resolved.v1",
}


def plan_headers(
    plan: KafkaPlan, code: str, kid: str, key: Any, other_key: Any
) -> list[tuple[str, bytes]]:
    """The Kafka headers of a plan, signed with the partner's key (`Ed25519PrivateKey`) as
    the plan says. Every message gets a unique ce_id (a replaced one gets a unique tail), so
    none is taken for a redelivery of another."""
    from eropaf_contracts.cloudevents import CloudEventHeaders
    from eropaf_intake.adapters import jws

    ce_type = CE_TYPES.get(plan.ce_type, plan.ce_type)
    headers = CloudEventHeaders.new(code, ce_type)
    signed = {
        "good": plan.value,
        "other_bytes": plan.value + b" ",
        "other_key": plan.value,
        "repeated": plan.value,
    }
    signature = None
    if plan.signature in signed:
        signing_key = other_key if plan.signature == "other_key" else key
        signature = jws.sign_detached(signed[plan.signature], signing_key, kid)
    elif plan.signature == "garbage":
        signature = "eyJhbGciOiJFZERTQSJ9..AAAA"
    if signature is not None:
        headers = headers.with_signature(signature)
    out = list(headers.to_kafka())
    if plan.signature == "repeated":  # a second signature, over other bytes, after the first
        out.append(("ce_signature", jws.sign_detached(b"{}", key, kid).encode()))
    for name, replacement in plan.header_faults:
        out = [(n, v) for n, v in out if n != name]
        if replacement is not None:
            tail = uuid.uuid4().hex.encode() if name == "ce_id" else b""
            out.append((name, replacement + tail))
    return out
