"""The ``eropaf`` command: one entry point for operators and partner administrators.

Each package registers its own subcommands under the entry-point group ``eropaf.commands``,
so a command lives with the service whose data it touches and this library imports no
service. A package adds commands with one line in its ``pyproject.toml``::

    [project.entry-points."eropaf.commands"]
    scheduling = "eropaf_scheduling.cli:register"

``register(subparsers)`` adds the package's subcommands, each with ``set_defaults(handler=f)``
where ``f(args) -> int``; a declared module that does not exist yet adds none. Every
``eropaf`` invocation loads every ``register``, so a command module imports only the
standard library at its top and leaves the rest to its handlers
(``libs/cli/tests/test_startup_imports.py`` holds them to that).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

COMMANDS_GROUP = "eropaf.commands"

Register = Callable[[Any], None]


def command_entry_points() -> list[EntryPoint]:
    """The registered command areas, ordered by name (the stack's own first)."""
    found = sorted(entry_points(group=COMMANDS_GROUP), key=lambda ep: (ep.name != "stack", ep.name))
    unique: dict[str, EntryPoint] = {}
    for entry in found:  # an editable and a regular install of one package list it twice
        unique.setdefault(entry.name, entry)
    return list(unique.values())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eropaf", description="Eropaf: early intervention on payment arrears."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for entry in command_entry_points():
        try:
            register: Register = entry.load()
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if entry.module != missing and not entry.module.startswith(missing + "."):
                raise
            continue  # declared, not written yet: that area has no commands
        register(sub)
    # Added after the areas: `staff` is scheduling's area, `login-link` asks the portal.
    from eropaf_cli.portal_commands import register_staff_login_link

    register_staff_login_link(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
