"""Reference partner client for the Kafka channel (CONTRACT §2).

What a partner's own system has to do, in one readable place:

1. serialise each signal once to compact UTF-8 JSON — these exact bytes are the message value
   and are what gets signed (never re-serialise after signing);
2. sign the value with a detached JWS (EdDSA, `kid` in the protected header);
3. send it to `arrears.signals.<code>` keyed by the signal `ID`, with CloudEvents headers;
4. read `arrears.feedback.<code>` and match each feedback's `ce_id` to what was sent.

Only `aiokafka`, `cryptography` and the small helpers imported below are needed, so this module
is meant to be copied or ported. `eropaf partner publish` is a thin wrapper around it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from eropaf_contracts.cloudevents import (
    SIGNAL_RESOLVED_TYPE,
    SIGNAL_SUBMITTED_TYPE,
    CloudEventHeaders,
)
from eropaf_contracts.topics import feedback_topic, signals_topic, validate_partner_code
from eropaf_intake.adapters import jws
from eropaf_intake.domain.csv_rows import CsvFormatError, parse_csv

__all__ = [
    "FileFormat",
    "PartnerClient",
    "SignalFileError",
    "encode_value",
    "kid_of",
    "load_private_key",
    "parse_signals",
    "read_signals",
    "signed_message",
]

FileFormat = Literal["auto", "json", "jsonl", "csv"]


class SignalFileError(ValueError):
    """The input file cannot be turned into signal objects; the message says why."""


# -- input files -------------------------------------------------------------------------------


def _json_items(text: str) -> list[Any]:
    data = json.loads(text)
    return data if isinstance(data, list) else [data]  # a single object is one signal


def _jsonl_items(text: str) -> list[Any]:
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise SignalFileError(f"line {number} is not JSON: {exc.msg}") from exc
    return items


def _csv_resolutions(body: bytes) -> list[dict[str, Any]]:
    # parse_csv knows only signal columns; a resolution file has just ID and datumOpgelost.
    text = body.decode("utf-8-sig")
    header = text.splitlines()[0] if text.strip() else ""
    delimiter = ";" if header.count(";") > header.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    names = {(n or "").strip() for n in reader.fieldnames or []}
    if not {"ID", "datumOpgelost"} <= names:
        raise SignalFileError("a CSV of resolutions needs the columns ID and datumOpgelost")
    return [
        {"ID": row["ID"].strip(), "datumOpgelost": (row.get("datumOpgelost") or "").strip()}
        for row in reader
        if (row.get("ID") or "").strip()
    ]


def parse_signals(
    body: bytes, file_format: FileFormat = "auto", *, resolved: bool = False
) -> list[dict[str, Any]]:
    """Signal objects from a JSON array (or single object), JSON lines, or CSV file.

    `auto` looks at the first character: `[` is a JSON array, `{` one JSON object or JSON
    lines, anything else CSV (the HTTP channel's column names, comma or semicolon separated).
    """
    try:
        text = body.decode("utf-8-sig")  # tolerate the BOM editors put in front of UTF-8
    except UnicodeDecodeError as exc:
        raise SignalFileError(f"file is not UTF-8 (invalid byte at offset {exc.start})") from exc
    if not text.strip():
        raise SignalFileError("file is empty")
    if file_format == "auto":
        first = text.lstrip()[0]
        file_format = "json" if first == "[" else "jsonl" if first == "{" else "csv"
        if file_format == "jsonl":
            try:  # a pretty-printed single object spans lines but is plain JSON
                return _objects(_json_items(text))
            except json.JSONDecodeError:
                pass
    try:
        if file_format == "json":
            items = _json_items(text)
        elif file_format == "jsonl":
            items = _jsonl_items(text)
        elif resolved:
            items = list(_csv_resolutions(body))
        else:
            items = [row.values for row in parse_csv(body)]
    except json.JSONDecodeError as exc:
        raise SignalFileError(f"not JSON: {exc.msg} (line {exc.lineno})") from exc
    except CsvFormatError as exc:
        raise SignalFileError(str(exc)) from exc
    return _objects(items)


def _objects(items: list[Any]) -> list[dict[str, Any]]:
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise SignalFileError(f"item {index} is not a JSON object")
    if not items:
        raise SignalFileError("file holds no signals")
    return items


def read_signals(
    path: str | Path, file_format: FileFormat = "auto", *, resolved: bool = False
) -> list[dict[str, Any]]:
    if file_format == "auto" and str(path).lower().endswith(".csv"):
        file_format = "csv"
    return parse_signals(Path(path).read_bytes(), file_format, resolved=resolved)


# -- signing -----------------------------------------------------------------------------------


def load_private_key(path: str | Path) -> jws.Ed25519PrivateKey:
    return jws.private_key_from_pem(Path(path).read_bytes())


def kid_of(private_key: jws.Ed25519PrivateKey) -> str:
    """The default key id: RFC 7638 thumbprint of the public key, as `onboard` registers it."""
    return jws.jwk_thumbprint(private_key.public_key())


def encode_value(signal: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON. Signed byte for byte, so encode once and send exactly this."""
    return json.dumps(signal, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signed_message(
    code: str,
    signal: Mapping[str, Any],
    private_key: jws.Ed25519PrivateKey,
    kid: str,
    *,
    resolved: bool = False,
) -> tuple[bytes | None, bytes, CloudEventHeaders]:
    """(key, value, headers) of one partner message as CONTRACT §2.1 describes it."""
    value = encode_value(signal)
    signal_id = signal.get("ID")
    # Key by signal ID so every version of a signal lands in one partition, in order.
    key = signal_id.encode("utf-8") if isinstance(signal_id, str) else None
    headers = CloudEventHeaders.new(
        code, SIGNAL_RESOLVED_TYPE if resolved else SIGNAL_SUBMITTED_TYPE
    ).with_signature(jws.sign_detached(value, private_key, kid))
    return key, value, headers


# -- Kafka -------------------------------------------------------------------------------------


class PartnerClient:
    """Publishes one partner's signals and reads its feedback.

    `kafka_options` go to aiokafka as they are (e.g. `security_protocol="SASL_SSL"`,
    `sasl_mechanism="SCRAM-SHA-512"`, `sasl_plain_username=...`) for the deployed stack.
    """

    def __init__(
        self,
        code: str,
        bootstrap_servers: str,
        private_key: jws.Ed25519PrivateKey,
        *,
        kid: str | None = None,
        **kafka_options: Any,
    ) -> None:
        self.code = validate_partner_code(code)
        self.bootstrap_servers = bootstrap_servers
        self.private_key = private_key
        self.kid = kid or kid_of(private_key)
        self.kafka_options = kafka_options

    async def publish(
        self, signals: Sequence[Mapping[str, Any]], *, resolved: bool = False
    ) -> list[str]:
        """Send every signal; returns their `ce_id`s in input order once the broker has all.

        acks=all: a signal counts as sent only when every in-sync replica holds it.
        """
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers, acks="all", **self.kafka_options
        )
        try:
            await producer.start()  # inside try: a failed start must still be stopped
            pending = []
            ce_ids = []
            for signal in signals:
                key, value, headers = signed_message(
                    self.code, signal, self.private_key, self.kid, resolved=resolved
                )
                pending.append(
                    await producer.send(
                        signals_topic(self.code), value=value, key=key, headers=headers.to_kafka()
                    )
                )
                ce_ids.append(headers.id)
            await asyncio.gather(*pending)  # raises if any message was not stored
            return ce_ids
        finally:
            await producer.stop()

    async def wait_feedback(
        self, ce_ids: Iterable[str], timeout: float = 30.0
    ) -> dict[str, dict[str, Any]]:
        """Feedback objects (CONTRACT §2.2) per `ce_id`, as far as they arrive within `timeout`.

        Reads the feedback topic from the beginning with a throwaway consumer (no group, no
        committed offsets), so it also finds feedback that was written before it started.
        Missing keys in the result mean no feedback arrived in time.
        """
        wanted = set(ce_ids)
        found: dict[str, dict[str, Any]] = {}
        if not wanted:
            return found
        options = {"metadata_max_age_ms": 1000, **self.kafka_options}  # notice new partitions
        consumer = AIOKafkaConsumer(
            feedback_topic(self.code),
            bootstrap_servers=self.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **options,
        )
        try:
            await consumer.start()
            deadline = time.monotonic() + timeout
            while wanted - found.keys():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                batches = await consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
                for records in batches.values():
                    for record in records:
                        feedback = _feedback(record.value)
                        ce_id = feedback.get("ce_id") if feedback else None
                        if feedback is not None and isinstance(ce_id, str) and ce_id in wanted:
                            found.setdefault(ce_id, feedback)  # first answer per message counts
        finally:
            await consumer.stop()
        return found


def _feedback(value: bytes | None) -> dict[str, Any] | None:
    try:
        data = json.loads(value or b"")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None
