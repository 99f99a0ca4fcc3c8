"""`python -m eropaf_cli.demo` (what `make demo` runs): the whole system end to end, once.

Starts `eropaf up` on a temporary data dir, waits for `stack.json`, shows the stack and each
service's health, pushes the demo signal, then stops the stack with SIGTERM and checks that it
stopped cleanly. Exits non-zero when any step fails.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .stack import STACK_FILE, http_status, read_stack_info

READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0


class DemoError(RuntimeError):
    pass


DEMO_SIGNAL = {
    "ID": "DEMO-0001",
    "crisissignaal": False,
    "warmeOverdracht": False,
    "bedrag": 1250,
    "ontstaansdatum": "2026-09-01",
    "signaaldatum": "2026-11-20",
    "signaalpartner": {"type": "Huur"},
    "client": {  # a fictional tenant
        "Voorletters": "A.",
        "Voorvoegsel": "de",
        "Achternaam": "Voorbeeld",
        "Geboortedatum": "1985-06-15",
        "Straatnaam": "Voorbeeldlaan",
        "Postcode": "3431 AB",
        "Huisnummer": "7",
        "Plaatsnaam": "Nieuwegein",
    },
}


def _eropaf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eropaf_cli", *args], capture_output=True, text=True, timeout=120
    )


def push_demo_signal(stack_info: dict[str, Any], data_dir: Path) -> None:
    """Onboard a housing corporation, publish one signed signal as that partner, and follow it
    through intake (feedback) and matching (case events)."""
    key = data_dir / "demo-mitros.pem"
    onboard = _eropaf(
        "partner", "onboard", "mitros", "--from-region", "--generate-key", str(key),
        "--data-dir", str(data_dir),
    )  # fmt: skip
    if onboard.returncode != 0:
        raise DemoError(f"onboarding failed: {onboard.stderr.strip()}")
    print("onboarded partner mitros (key written, token shown once)")
    signals = data_dir / "demo-signals.json"
    signals.write_text(json.dumps([DEMO_SIGNAL]))
    published = _eropaf(
        "partner", "publish", "mitros", str(signals), "--key", str(key),
        "--data-dir", str(data_dir), "--wait-feedback", "--timeout", "60",
    )  # fmt: skip
    print(f"feedback: {published.stdout.strip()}")
    if published.returncode != 0:
        raise DemoError(f"publish failed ({published.returncode}): {published.stderr.strip()}")
    events = asyncio.run(_case_events(stack_info["bootstrap_servers"], timeout=60))
    if not events:
        raise DemoError("no case event within 60 s")
    for event in events:
        data = event["data"]
        detail = ", ".join(
            f"{k}={data[k]}"
            for k in ("case_ref", "gemeentecode", "team", "outreach", "urgency", "deadline")
            if k in data
        )
        print(f"matching: {event['type']}: {detail}")


async def _case_events(bootstrap: str, timeout: float) -> list[dict[str, Any]]:
    """Case events on matching's topic, until an outreach decision arrived (or the deadline)."""
    from aiokafka import AIOKafkaConsumer

    from eropaf_contracts.topics import CASES_TOPIC

    consumer = AIOKafkaConsumer(
        CASES_TOPIC, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        metadata_max_age_ms=1000,
    )  # fmt: skip
    await consumer.start()
    events: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                events.extend(json.loads(r.value) for r in records)
            if any(e["type"].endswith("outreach.decided") for e in events):
                break
    finally:
        await consumer.stop()
    return events


def wait_for_stack(process: subprocess.Popen[bytes], data_dir: Path, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"eropaf up exited with {process.returncode}:\n{_tail(log)}")
        info = read_stack_info(data_dir)
        if info is not None and info.get("supervisor_pid") == process.pid:
            return info
        time.sleep(0.2)
    raise DemoError(f"no {STACK_FILE} within {READY_TIMEOUT_S:.0f}s:\n{_tail(log)}")


def show(info: dict[str, Any]) -> bool:
    print("stack:")
    for key in ("bootstrap_servers", "intake_url", "scheduling_url", "mail_dir", "started_at"):
        print(f"  {key:<18}{info[key]}")
    print(f"  {'smtp':<18}{info['smtp']['host']}:{info['smtp']['port']}")
    healthy = True
    for name, service in info["services"].items():
        code = http_status(f"{service['url']}/health/ready")
        healthy &= code == 200
        print(f"  {name:<18}{service['url']:<28}{'ready' if code == 200 else f'HTTP {code}'}")
    return healthy


def run() -> int:
    with tempfile.TemporaryDirectory(prefix="eropaf-demo-") as tmp:
        data_dir = Path(tmp) / "data"
        log = Path(tmp) / "up.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "eropaf_cli", "up", "--data-dir", str(data_dir)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        print(f"starting eropaf up on {data_dir} (pid {process.pid}) ...", flush=True)
        ok = True
        try:
            started = time.monotonic()
            info = wait_for_stack(process, data_dir, log)
            print(f"ready in {time.monotonic() - started:.1f}s")
            ok = show(info)
            push_demo_signal(info, data_dir)
        except DemoError as error:
            print(f"demo failed: {error}", file=sys.stderr)
            ok = False
        finally:
            code = _stop(process)
        if code == 0:
            print("stack stopped cleanly")
        else:
            print(f"stack did not stop cleanly (exit code {code}):\n{_tail(log)}", file=sys.stderr)
            ok = False
        return 0 if ok else 1


def _stop(process: subprocess.Popen[bytes]) -> int | None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()  # the children die with it (PR_SET_PDEATHSIG)
        process.wait()
        return None


def _tail(path: Path, limit: int = 3000) -> str:
    try:
        lines = path.read_text(errors="replace")[-limit:].splitlines()
    except OSError:
        return ""
    out = []
    for line in lines:  # keep JSON log lines short and readable
        try:
            event = json.loads(line)
            out.append(f"  {event.get('event')} {event.get('error', '')}".rstrip())
        except ValueError:
            out.append(f"  {line}")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(run())
