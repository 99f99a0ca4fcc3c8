"""`eropaf` starts fast: building its parser (every area's `register`) and `--help` load only the
standard library and our own light command modules; a command imports what it needs itself.

Checked in a fresh interpreter, because this test session has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eropaf_cli.main import command_entry_points

pytestmark = pytest.mark.unit

# Each costs tens to hundreds of milliseconds at import; none is needed to parse arguments.
HEAVY = (
    "sqlalchemy",
    "sqlmodel",
    "pydantic",
    "pydantic_settings",
    "alembic",
    "httpx",
    "faststream",
    "aiokafka",
    "fastapi",
    "psycopg",
    "structlog",
    "rich",
    "yaml",
    "jsonschema",
)

AREAS = ("up", "down", "status", "partner", "intake", "ddas", "monitoring", "matching")


def _loaded_after(code: str) -> set[str]:
    """Top-level packages in sys.modules after running `code` in a new interpreter."""
    script = (
        "import contextlib, io, json, sys\n"
        f"{code}\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return set(loaded)


def test_building_the_parser_imports_no_heavy_module() -> None:
    loaded = _loaded_after("from eropaf_cli.main import build_parser\nbuild_parser()")
    areas = {entry.module.split(".")[0] for entry in command_entry_points()}
    assert {"eropaf_cli", "eropaf_intake", "eropaf_matching"} <= areas  # found by entry point
    assert areas <= loaded  # every area registered
    assert not loaded & set(HEAVY), f"building the parser imports {sorted(loaded & set(HEAVY))}"


def test_help_of_every_area_imports_no_heavy_module() -> None:
    code = (
        "from eropaf_cli.main import main\n"
        f"for area in {AREAS!r}:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main([area, '--help'])\n"
    )
    heavy = sorted(_loaded_after(code) & set(HEAVY))
    assert not heavy, f"`eropaf AREA --help` imports {heavy}"


def test_a_light_command_runs_without_heavy_modules(tmp_path: Path) -> None:
    # `down` on a data dir without a stack needs only the lock file: nothing else is loaded.
    code = (
        "from eropaf_cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['down', '--data-dir', {str(tmp_path)!r}]) == 0\n"
    )
    heavy = sorted(_loaded_after(code) & set(HEAVY))
    assert not heavy, f"`eropaf down` imports {heavy}"


def test_an_area_declared_but_not_written_yet_has_no_commands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from importlib.metadata import EntryPoint

    from eropaf_cli import main

    declared = [
        EntryPoint("stack", "eropaf_cli.stack_commands:register", main.COMMANDS_GROUP),
        EntryPoint("later", "eropaf_not_written_yet.cli:register", main.COMMANDS_GROUP),
    ]
    monkeypatch.setattr(main, "entry_points", lambda group: declared)
    with pytest.raises(SystemExit):  # the parser knows `up` and nothing of the missing area
        main.build_parser().parse_args(["later"])
    assert main.build_parser().parse_args(["down", "--data-dir", "d"]).command == "down"
    # A command module that exists but fails to import is an error, not a missing area.
    declared[1] = EntryPoint("broken", "eropaf_cli.stack_commands:no_such", main.COMMANDS_GROUP)
    with pytest.raises(AttributeError):
        main.build_parser()
