"""The whole stack, killed with SIGKILL and started again on the same data directory.

The local broker keeps nothing across restarts. What was accepted before the kill must still
reach every consumer afterwards: each service notices the new broker and publishes its
retained outbox again, and consumers drop what they had already processed.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from eropaf_cli.testing import start_stack, stop_stack, tail
from eropaf_contracts.topics import CASES_TOPIC, INTAKE_SIGNALS_TOPIC, feedback_topic
from eropaf_platform.local.process import pid_alive
from eropaf_platform.testing.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIGNALS = 12


def eropaf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eropaf_cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def demo_signals() -> list[dict[str, Any]]:
    """Twelve tenants of one corporation: twelve households in Nieuwegein."""
    return [
        {
            "ID": f"RESTART-{i:03d}",
            "bedrag": 300 + 10 * i,
            "ontstaansdatum": "2026-09-01",
            "signaaldatum": "2026-11-20",
            "signaalpartner": {"type": "Huur"},
            "client": {
                "Voorletters": "T.",
                "Achternaam": f"Huurder{chr(65 + i)}",
                "Geboortedatum": f"19{60 + i}-03-0{1 + i % 9}",
                "Straatnaam": "Herstartlaan",
                "Postcode": "3432 CD",
                "Huisnummer": str(10 + i),
                "Plaatsnaam": "Nieuwegein",
            },
        }
        for i in range(SIGNALS)
    ]


async def read_all(bootstrap: str, topic: str, expect: int, timeout: float = 60) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        metadata_max_age_ms=500,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(records) < expect and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                records.extend(batch)
        for batch in (await consumer.getmany(timeout_ms=500)).values():
            records.extend(batch)
    finally:
        await consumer.stop()
    return records


def accepted_signal_refs(bootstrap: str) -> set[str]:
    records = asyncio.run(read_all(bootstrap, INTAKE_SIGNALS_TOPIC, SIGNALS))
    return {
        json.loads(r.value)["data"]["signal_ref"]
        for r in records
        if json.loads(r.value)["type"] == "eropaf.intake.signal.accepted"
    }


def all_cases_opened(bootstrap: str) -> dict[str, int] | None:
    """Opened-event count per case once every household has its case, else None."""
    cases = opened_cases(bootstrap)
    return cases if len(cases) == SIGNALS else None


def opened_cases(bootstrap: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in asyncio.run(read_all(bootstrap, CASES_TOPIC, SIGNALS)):
        event = json.loads(r.value)
        if event["type"] == "eropaf.matching.case.opened":
            counts[event["data"]["case_ref"]] = counts.get(event["data"]["case_ref"], 0) + 1
    return counts


def test_sigkilled_stack_loses_no_accepted_event(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_stack(data_dir, name="first")
    key = tmp_path / "mitros.pem"
    signals_file = tmp_path / "signals.json"
    signals_file.write_text(json.dumps(demo_signals()))
    try:
        onboard = eropaf(
            "partner", "onboard", "mitros", "--from-region", "--generate-key", str(key),
            "--data-dir", str(data_dir),
        )  # fmt: skip
        assert onboard.returncode == 0, onboard.stderr
        published = eropaf(
            "partner", "publish", "mitros", str(signals_file), "--key", str(key),
            "--data-dir", str(data_dir), "--wait-feedback", "--timeout", "90",
        )  # fmt: skip
        assert published.returncode == 0, published.stdout + published.stderr
        assert published.stdout.count("accepted") == SIGNALS
        bootstrap = first.info["bootstrap_servers"]
        before_refs = accepted_signal_refs(bootstrap)
        assert len(before_refs) == SIGNALS
        before_cases = wait_until(lambda: all_cases_opened(bootstrap), timeout=90)
        assert before_cases is not None
        pids = {s["pid"] for s in first.info["services"].values()} | {first.process.pid}
    except BaseException:
        stop_stack(first.process)
        raise

    first.process.send_signal(signal.SIGKILL)
    first.process.wait(30)
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=30)

    second = start_stack(data_dir, name="second")
    try:
        bootstrap = second.info["bootstrap_servers"]
        assert (
            bootstrap != first.info["bootstrap_servers"] or True
        )  # a new, empty broker either way
        # Every accepted event, its feedback and the cases come back on the new broker ...
        assert wait_until(lambda: accepted_signal_refs(bootstrap) == before_refs, timeout=90)
        feedback = [
            json.loads(r.value)
            for r in asyncio.run(read_all(bootstrap, feedback_topic("mitros"), 2 * SIGNALS))
        ]
        accepted = sorted(f["ID"] for f in feedback if f["status"] == "accepted")
        assert accepted == sorted(s["ID"] for s in demo_signals())
        # the lifecycle feedback matching asked for (picked up) is kept too, once per signal
        picked_up = sorted(f["ID"] for f in feedback if f["status"] == "picked_up")
        assert picked_up == accepted
        after_cases = wait_until(lambda: all_cases_opened(bootstrap), timeout=90)
        assert after_cases is not None
        assert set(after_cases) == set(before_cases)
        # ... exactly once: matching dropped the re-published signals it had already placed.
        assert all(n == 1 for n in after_cases.values()), after_cases
        # A partner that sends again after the outage gets "duplicate", not a second case.
        again = eropaf(
            "partner", "publish", "mitros", str(signals_file), "--key", str(key),
            "--data-dir", str(data_dir), "--wait-feedback", "--timeout", "90",
        )  # fmt: skip
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.count("duplicate") == SIGNALS
    finally:
        code = stop_stack(second.process)
        assert code == 0, tail(second.output)
