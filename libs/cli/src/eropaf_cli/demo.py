"""`python -m eropaf_cli.demo` (what `make demo` runs): the whole system end to end, once.

Starts `eropaf up` on a temporary data dir, waits for `stack.json`, shows the stack and each
service's health, pushes the demo signal, then stops the stack with SIGTERM and checks that it
stopped cleanly. Exits non-zero when any step fails.
"""

from __future__ import annotations

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


def push_demo_signal(stack_info: dict[str, Any]) -> None:
    """Send one arrears signal into the system through intake.

    For now only checks that intake is ready; the signal push follows once intake's
    HTTP channel exists.
    """
    intake_url = stack_info["intake_url"]
    code = http_status(f"{intake_url}/health/ready")
    if code != 200:
        raise DemoError(f"intake at {intake_url} is not ready (HTTP {code})")
    print(f"intake ready at {intake_url} (signal push: not yet implemented)")


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
    for key in ("bootstrap_servers", "intake_url", "mail_dir", "started_at"):
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
            push_demo_signal(info)
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
