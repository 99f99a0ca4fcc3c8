"""`eropaf staff login-link CODE [--data-dir DIR]`: a one-time login link to the staff portal
of the stack running on DIR, for the demo and for operators.

The portal issues the link (it alone holds the signing key and the used-link memory); this
command asks it with the stack's internal token, as an operator on the same machine may.
Only the standard library at the top: `eropaf` loads this module for every command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from eropaf_cli.stack import SECRETS_FILE, read_stack_info

DEFAULT_DATA_DIR = "data"


class LoginLinkError(Exception):
    pass


def login_link(data_dir: Path, code: str, timeout: float = 10.0) -> str:
    """The portal's login link for `code` (LoginLinkError with the reason otherwise)."""
    import httpx

    info = read_stack_info(data_dir)
    if info is None:
        raise LoginLinkError(f"no running stack on {data_dir} (no stack.json)")
    portal_url = info.get("portal_url")
    if not portal_url:
        raise LoginLinkError(f"the stack on {data_dir} runs no portal")
    try:
        token = json.loads((data_dir / SECRETS_FILE).read_text())["internal_api_token"]
    except (OSError, ValueError, KeyError) as exc:
        raise LoginLinkError(f"cannot read the stack's internal token: {exc}") from None
    try:
        response = httpx.post(
            f"{portal_url}/internal/v1/login-links",
            json={"code": code},
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise LoginLinkError(f"the portal at {portal_url} did not answer: {exc}") from None
    if response.status_code == 404:
        raise LoginLinkError(f"no active staff member {code!r}")
    if response.status_code != 201:
        raise LoginLinkError(f"the portal answered {response.status_code}: {response.text[:200]}")
    url: str = response.json()["url"]
    return url


def cmd_login_link(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).expanduser().resolve()
    try:
        print(login_link(data_dir, args.code))
    except LoginLinkError as exc:
        print(f"eropaf staff login-link: {exc}", file=sys.stderr)
        return 1
    return 0


def _sub_commands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def register_staff_login_link(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `login-link` to the `staff` command area (made here when no package made it)."""
    staff = subparsers.choices.get("staff")
    if staff is None:
        staff = subparsers.add_parser("staff", help="staff roster and absences")
    area = _sub_commands(staff)
    if area is None:
        area = staff.add_subparsers(dest="staff_command", required=True, metavar="COMMAND")
    link = area.add_parser(
        "login-link",
        help="print a one-time login link to the staff portal",
        description="Print a one-time, short-lived login link to the portal of the running "
        "stack for the staff member CODE.",
    )
    link.add_argument("code", help="staff code")
    link.add_argument(
        "--data-dir",
        default=os.environ.get("EROPAF_DATA_DIR", DEFAULT_DATA_DIR),
        help=f"the stack's data dir (default: $EROPAF_DATA_DIR or {DEFAULT_DATA_DIR})",
    )
    link.set_defaults(handler=cmd_login_link)
