"""The operations guide (deploy/README.md) covers every item of issue #17 part 2 with
commands, and its commands parse (the options it names exist)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from eropaf_cli.main import build_parser as eropaf_parser
from eropaf_platform.kafka_admin import build_parser as kafka_admin_parser

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parents[2] / "deploy" / "README.md"
SERVICES = {"admin", "intake", "matching", "scheduling", "notification"}


def _sections() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    return {part.splitlines()[0]: part for part in parts}


def _shell_lines() -> list[str]:
    """Lines of the guide's shell blocks, continuation lines joined."""
    lines: list[str] = []
    text = README.read_text(encoding="utf-8")
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines += [line.strip() for line in joined.splitlines()]
    return lines


@pytest.mark.parametrize(
    ("heading", "needed"),
    [
        ("First deployment", ["docker compose up -d", "env.example"]),
        ("Onboarding a partner", ["kafka_admin", "onboard", "partner onboard", "token"]),
        ("Key rotation", ["add-key", "revoke-key", "new-token", "EROPAF_MASTER_KEYS"]),
        ("Retention purge and crypto-shredding", ["intake purge", "intake shred"]),
        ("Backups and restore", ["pg_dump", "pg_restore", "--reset-offsets"]),
        ("Health, metrics and consumer lag", ["/health/ready", "kafka-consumer-groups.sh"]),
        ("Dead letters", ["dlq list", "dlq show", "--unseal", "dlq replay"]),
        ("Upgrading", ["kafka-init", "notification scheduling matching intake"]),
        (
            "Staff portal",
            [
                "PORTAL_PUBLIC_URL",
                "EROPAF_OIDC_METADATA_URL",
                "EROPAF_SESSION_SECRET",
                "single-use",
                "/internal/v1/login-links",
            ],
        ),
        (
            "Scaling out",
            [
                "--partitions",
                "--scale intake",
                "Matching per region",
                "managed Kafka",
                "make bench",
            ],
        ),
    ],
)
def test_every_item_has_its_section_with_commands(heading: str, needed: list[str]) -> None:
    sections = {title: body for title, body in _sections().items() if heading in title}
    assert sections, f"no section on {heading}"
    body = next(iter(sections.values()))
    assert "docker compose" in body
    for phrase in needed:
        assert phrase in body, f"{heading}: {phrase!r}"


def _command_of(line: str) -> tuple[str, list[str]] | None:
    """(tool, arguments) of a `docker compose run` line that runs one of our commands."""
    tokens = shlex.split(line.split(" #")[0])
    if tokens[:3] != ["docker", "compose", "run"]:
        return None
    i, entrypoint = 3, None
    while tokens[i] not in SERVICES:
        if tokens[i] in ("-e", "--entrypoint"):
            entrypoint = tokens[i + 1] if tokens[i] == "--entrypoint" else entrypoint
            i += 2
        else:
            i += 1
    service, rest = tokens[i], tokens[i + 1 :]
    if entrypoint == "python" or rest[:1] == ["python"]:
        rest = rest[1:] if rest[:1] == ["python"] else rest
        assert rest[:2] == ["-m", "eropaf_platform.kafka_admin"], line
        return "kafka_admin", rest[2:]
    assert service == "admin", f"{line}: only the admin service runs `eropaf`"
    return "eropaf", rest


def test_the_guides_commands_parse() -> None:
    parsers = {"eropaf": eropaf_parser(), "kafka_admin": kafka_admin_parser()}
    seen = set()
    for line in _shell_lines():
        if "docker compose run" not in line:
            continue
        command = _command_of(line)
        assert command is not None, line
        tool, args = command
        try:
            parsers[tool].parse_args(args)
        except SystemExit:
            pytest.fail(f"does not parse: {line}")
        seen.add(tool)
    assert seen == {"eropaf", "kafka_admin"}
