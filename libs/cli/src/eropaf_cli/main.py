"""The ``eropaf`` command: one entry point for operators and partner administrators.

Each area registers its own subcommands, so the code for a command lives with the service
whose data it touches (partner administration with intake, the DDAS export with matching).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

# module path -> function(subparsers) that adds that area's commands. Every command imports
# all of them, so they import only the standard library at the top and leave the rest to the
# command handlers (tests/test_startup_imports.py holds them to that).
COMMAND_MODULES: tuple[str, ...] = (
    "eropaf_cli.stack",
    "eropaf_intake.cli",
    "eropaf_matching.cli",
    "eropaf_scheduling.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eropaf", description="Eropaf: early intervention on payment arrears."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # that area has no commands yet
        register: Callable[[Any], None] = module.register
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
