"""`eropaf up | down | status` (see :mod:`eropaf_cli.stack` for what the stack is).

Only the standard library at the top: `eropaf` loads this module for every command.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from eropaf_cli.stack import (
    DOWN_TIMEOUT_S,
    SERVICES,
    http_status,
    lock_holder,
    read_stack_info,
)

# -- commands -------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    # The supervisor lives apart: its imports (logging, process helpers) are for `up` only.
    from eropaf_cli.stack_runtime import up

    return up(args)


def cmd_down(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).expanduser().resolve()
    pid = lock_holder(data_dir)
    if pid is None:
        print(f"no stack running on {data_dir}")
        return 0
    if pid <= 0:
        info = read_stack_info(data_dir) or {}
        pid = int(info.get("supervisor_pid") or 0)
        if pid <= 0:
            print(f"a stack holds {data_dir} but its pid is unknown", file=sys.stderr)
            return 1
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + DOWN_TIMEOUT_S
    while lock_holder(data_dir) is not None:
        if time.monotonic() > deadline:
            print(f"stack (pid {pid}) did not stop within {DOWN_TIMEOUT_S:.0f}s", file=sys.stderr)
            return 1
        time.sleep(0.1)
    print(f"stack on {data_dir} stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from eropaf_platform.local.process import pid_alive

    data_dir = Path(args.data_dir).expanduser().resolve()
    pid = lock_holder(data_dir)
    if pid is None:
        print(f"no stack running on {data_dir}")
        return 1
    info = read_stack_info(data_dir)
    if info is None:
        print(f"stack on {data_dir} (pid {pid}) is starting")
        return 1
    print(
        f"stack on {data_dir}: supervisor pid {info['supervisor_pid']}, since {info['started_at']}"
    )
    print(f"  kafka  {info['bootstrap_servers']}")
    kept = info["mail_dir"] or "an external server"
    print(f"  smtp   {info['smtp']['host']}:{info['smtp']['port']} -> {kept}")
    all_ready = True
    for name, service in info["services"].items():
        code = http_status(f"{service['url']}/health/ready")
        ready = code == 200
        all_ready &= ready
        state = "ready" if ready else f"NOT READY ({code or 'no answer'})"
        alive = "" if pid_alive(int(service["pid"] or 0)) else " (process gone)"
        print(f"  {name:<13}{service['url']:<28}pid {service['pid']:<8}{state}{alive}")
    return 0 if all_ready else 1


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    up = subparsers.add_parser(
        "up",
        help="run the whole system on this machine",
        description=(
            "Run broker, PostgreSQL, SMTP sink and every service until SIGINT/SIGTERM; "
            "writes DIR/stack.json when ready. A crashed service is restarted with backoff."
        ),
    )
    up.add_argument("--data-dir", required=True, help="where data, mail and logs are kept")
    up.add_argument(
        "--database-url",
        help="an existing PostgreSQL server (each service gets its own database there)",
    )
    up.add_argument(
        "--bootstrap-servers",
        metavar="HOST:PORT",
        help="an existing Kafka instead of the local broker",
    )
    up.add_argument(
        "--smtp-server",
        metavar="HOST:PORT",
        help="an existing SMTP server instead of the local sink (mail is then not in DIR/mail)",
    )
    up.add_argument(
        "--http-base-port",
        type=int,
        metavar="N",
        help=f"HTTP ports N.. in the order {', '.join(SERVICES)} (default: free ports)",
    )
    up.set_defaults(handler=cmd_up)

    down = subparsers.add_parser("down", help="stop the stack running on a data dir")
    down.add_argument("--data-dir", required=True)
    down.set_defaults(handler=cmd_down)

    status = subparsers.add_parser("status", help="health of the stack running on a data dir")
    status.add_argument("--data-dir", required=True)
    status.set_defaults(handler=cmd_status)
