"""Replay a simulated month against the running stack, and watch what the system makes of it.

Partners publish as CONTRACT §2 and §3 describe: signed Kafka messages (the reference client's
`signed_message`), one corporation posting a weekly CSV export (`;`) over HTTP. Bad input is
made here, where the keys are: a value changed after signing, a partner signing as itself on
another partner's topic, malformed JSON under a valid signature.

`Watcher` reads, from the beginning, every partner's feedback topic (feedback per `ce_id`),
matching's case events (cases, merges, outreach decisions, closures) and scheduling's visit
events, so the demo sees the outcome of every message it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from eropaf_demo.simulate import Month, PartnerMessage, csv_text

__all__ = ["Observed", "PartnerAccess", "Watcher", "publish_day", "signal_refs_of"]


@dataclass(frozen=True)
class PartnerAccess:
    code: str
    key_file: Path
    token: str


@dataclass
class Observed:
    """What the demo saw of the system's answers (pseudonymous: refs, codes, counts)."""

    feedback: dict[int, dict[str, Any]] = field(default_factory=dict)  # message seq -> feedback
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)  # case_ref -> latest facts
    merged_away: set[str] = field(default_factory=set)
    renamed_into: dict[str, str] = field(default_factory=dict)  # old case_ref -> new one
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)  # case_ref -> latest
    closures: dict[str, str] = field(default_factory=dict)  # case_ref -> resultaat
    visits: dict[str, dict[str, Any]] = field(default_factory=dict)  # visit_id -> latest
    unplanned: dict[str, str] = field(default_factory=dict)  # case_ref -> backlog reason
    outcomes: dict[str, str] = field(default_factory=dict)  # case_ref -> resultaat (scheduling)
    case_events: int = 0

    def open_cases(self) -> dict[str, dict[str, Any]]:
        """The cases as they are now: absorbed and renamed ones left out."""
        return {ref: c for ref, c in self.cases.items() if ref not in self.merged_away}

    def final_ref(self, ref: str) -> str:
        """What a case reference became (a merge or a rename changes it)."""
        seen = set()
        while ref in self.renamed_into and ref not in seen:
            seen.add(ref)
            ref = self.renamed_into[ref]
        return ref

    @property
    def outreach(self) -> dict[str, dict[str, Any]]:
        """The latest outreach decision per current case (a renamed case keeps its decision:
        matching decides again only when the decision changes)."""
        out: dict[str, dict[str, Any]] = {}
        for ref, data in self.decisions.items():
            final = self.final_ref(ref)
            if final not in out or str(data.get("decided_at")) > str(out[final].get("decided_at")):
                out[final] = data
        return out

    @property
    def closed(self) -> dict[str, str]:
        return {self.final_ref(ref): result for ref, result in self.closures.items()}


def signal_refs_of(month: Month, pseudonym_key: str) -> dict[str, tuple[str, str]]:
    """signal_ref -> (partner, ID) of every signal of the month, as intake derives it."""
    from eropaf_intake.domain.match_tokens import signal_ref

    key = pseudonym_key.encode()
    refs: dict[str, tuple[str, str]] = {}
    for m in month.messages:
        if m.signal_id is not None:
            refs[signal_ref(key, m.partner, m.signal_id)] = (m.partner, m.signal_id)
    return refs


# --- publishing -------------------------------------------------------------------------------


class Publisher:
    """Sends the month's messages; remembers which `ce_id` (Kafka) or answer (HTTP) is whose."""

    def __init__(self, bootstrap: str, intake_url: str, partners: dict[str, PartnerAccess]) -> None:
        from eropaf_intake.client import kid_of, load_private_key

        self.bootstrap = bootstrap
        self.intake_url = intake_url
        self.partners = partners
        self.keys = {code: load_private_key(p.key_file) for code, p in partners.items()}
        self.kids = {code: kid_of(key) for code, key in self.keys.items()}
        self.ce_ids: dict[str, int] = {}  # ce_id -> message seq
        self.http_feedback: dict[int, dict[str, Any]] = {}
        self.sent = 0
        self._producer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    def _message(self, m: PartnerMessage) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
        from eropaf_contracts.cloudevents import (
            SIGNAL_RESOLVED_TYPE,
            SIGNAL_SUBMITTED_TYPE,
            CloudEventHeaders,
        )
        from eropaf_intake.adapters import jws
        from eropaf_intake.client import encode_value, signed_message

        signer = m.signer or m.partner
        key, kid = self.keys[signer], self.kids[signer]
        if m.raw is not None:  # malformed JSON, correctly signed
            headers = CloudEventHeaders.new(signer, SIGNAL_SUBMITTED_TYPE).with_signature(
                jws.sign_detached(m.raw, key, kid)
            )
            self.ce_ids[headers.id] = m.seq
            return f"broken-{m.seq}".encode(), m.raw, headers.to_kafka()
        assert m.body is not None
        message_key, value, headers = signed_message(
            signer, m.body, key, kid, resolved=m.kind == "resolution"
        )
        if m.tamper:  # changed on the way: the signature no longer covers the value
            value = encode_value({**m.body, "bedrag": int(m.body.get("bedrag") or 0) + 1000})
        if m.kind == "resolution" and headers.type != SIGNAL_RESOLVED_TYPE:
            raise AssertionError("resolution sent as a signal")
        self.ce_ids[headers.id] = m.seq
        return message_key, value, headers.to_kafka()

    async def send_kafka(self, messages: Sequence[PartnerMessage]) -> None:
        from eropaf_contracts.topics import signals_topic

        pending = []
        for m in messages:
            key, value, headers = self._message(m)
            pending.append(
                await self._producer.send(
                    signals_topic(m.partner), value=value, key=key, headers=headers
                )
            )
        await asyncio.gather(*pending)
        self.sent += len(messages)

    async def send_http_csv(self, partner: str, messages: Sequence[PartnerMessage]) -> None:
        """One spreadsheet export: all rows in one `text/csv` POST; answers in row order."""
        import httpx

        body = csv_text([m.body for m in messages if m.body is not None]).encode("utf-8")
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.post(
                f"{self.intake_url}/v1/partners/{partner}/signals",
                content=body,
                headers={
                    "Authorization": f"Bearer {self.partners[partner].token}",
                    "Content-Type": "text/csv; charset=utf-8",
                },
            )
        if response.status_code != 202:
            raise RuntimeError(f"HTTP channel answered {response.status_code}: {response.text}")
        results = response.json()["results"]
        for m, result in zip(messages, results, strict=True):
            self.http_feedback[m.seq] = result
        self.sent += len(messages)


async def publish_day(
    publisher: Publisher,
    month: Month,
    day: date,
    http_due: bool,
    http_buffer: list[PartnerMessage],
    held: list[PartnerMessage],
    ready: Callable[[PartnerMessage], bool],
) -> None:
    """Send `day`'s messages: Kafka at once, the HTTP partner's rows collected into its weekly
    export (posted when `http_due`). Resolutions wait in `held` until `ready`: the month is
    compressed into seconds, and a payment must not overtake the signals of its household
    that were days older in the month (the partners' topics are read in parallel)."""
    today = [m for m in month.messages if m.day == day]
    held.extend(m for m in today if m.kind == "resolution")
    due = [m for m in held if ready(m)]
    held[:] = [m for m in held if m not in due]
    await publisher.send_kafka(
        [m for m in today if m.channel == "kafka" and m.kind != "resolution"] + due
    )
    http_buffer.extend(m for m in today if m.channel == "http")
    if http_due and http_buffer:
        by_partner: dict[str, list[PartnerMessage]] = defaultdict(list)
        for m in http_buffer:
            by_partner[m.partner].append(m)
        for partner, rows in by_partner.items():
            await publisher.send_http_csv(partner, rows)
        http_buffer.clear()


# --- watching ---------------------------------------------------------------------------------


class Watcher:
    """Reads feedback, case and visit events from the beginning into an `Observed`."""

    def __init__(
        self,
        bootstrap: str,
        partner_codes: Sequence[str],
        publisher: Publisher,
        signal_refs: set[str] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        # Case events of other signals (a shared broker) are not this month's: ignored.
        self.signal_refs = signal_refs
        self.partner_codes = list(partner_codes)
        self.publisher = publisher
        self.observed = Observed()
        self.seen_refs: set[str] = set()  # signal refs that are in a case
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self.last_event = time.monotonic()

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        from eropaf_contracts.topics import CASES_TOPIC, VISITS_TOPIC, feedback_topic

        topics = [feedback_topic(c) for c in self.partner_codes] + [CASES_TOPIC, VISITS_TOPIC]
        self._consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=1000,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="demo-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        import orjson

        from eropaf_contracts.topics import CASES_TOPIC, VISITS_TOPIC

        while True:
            batches = await self._consumer.getmany(timeout_ms=300, max_records=5000)
            for tp, records in batches.items():
                for record in records:
                    try:
                        value = orjson.loads(record.value or b"")
                    except orjson.JSONDecodeError:
                        continue
                    if not isinstance(value, dict):
                        continue
                    self.last_event = time.monotonic()
                    if tp.topic == CASES_TOPIC:
                        self._case_event(value)
                    elif tp.topic == VISITS_TOPIC:
                        self._visit_event(value)
                    else:
                        seq = self.publisher.ce_ids.get(str(value.get("ce_id")))
                        if seq is not None and value.get("status") in (
                            "accepted",
                            "duplicate",
                            "rejected",
                        ):
                            self.observed.feedback.setdefault(seq, value)

    def _case_event(self, event: dict[str, Any]) -> None:
        kind, data = str(event.get("type", "")), event.get("data") or {}
        o = self.observed
        o.case_events += 1
        ref = data.get("case_ref")
        if not isinstance(ref, str):
            return
        if kind.endswith("case.opened") or kind.endswith("case.updated"):
            if self.signal_refs is not None and not self.signal_refs.intersection(
                data.get("signal_refs") or ()
            ):
                return
            # Partitions are read in any order: an absorbed case's own late events never
            # bring it back.
            o.cases[ref] = data
            self.seen_refs.update(data.get("signal_refs") or ())
            for previous in data.get("previous_case_refs") or []:
                if previous != ref:
                    o.merged_away.add(previous)
                    o.renamed_into[previous] = ref
        elif kind.endswith("outreach.decided"):
            o.decisions[ref] = data
        elif kind.endswith("case.closed"):
            o.closures[ref] = str(data.get("resultaat"))

    def _visit_event(self, event: dict[str, Any]) -> None:
        kind, data = str(event.get("type", "")), event.get("data") or {}
        o = self.observed
        if kind.endswith("case.unplanned"):
            o.unplanned[str(data.get("case_ref"))] = str(data.get("reason"))
        elif kind.endswith("case_outcome.recorded"):
            o.outcomes[str(data.get("case_ref"))] = str(data.get("resultaat"))
        elif "visit." in kind and isinstance(data.get("visit_id"), str):
            status = "cancelled" if kind.endswith("cancelled") else "planned"
            if kind.endswith("completed"):
                status = "done"
            o.visits[data["visit_id"]] = {**o.visits.get(data["visit_id"], {}), **data}
            o.visits[data["visit_id"]]["status"] = status
            o.unplanned.pop(str(data.get("case_ref")), None)

    def all_feedback(self) -> dict[int, dict[str, Any]]:
        return {**self.observed.feedback, **self.publisher.http_feedback}

    async def wait(
        self,
        done: Callable[[], bool],
        timeout: float,
        *,
        quiet: float = 0.0,
        tick: Callable[[], None] | None = None,
    ) -> bool:
        """Until `done()` and no event for `quiet` seconds, or `timeout`; True when done."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if tick is not None:
                tick()
            if done() and time.monotonic() - self.last_event >= quiet:
                return True
            await asyncio.sleep(0.2)
        return done()
