"""What the deployed stack must agree with, derived from the code (so that a service that
gains a setting, a topic or a metric is checked without touching these tests)."""

from __future__ import annotations

import importlib
import inspect
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from eropaf_contracts.region import load_region
from eropaf_platform.service import Service
from eropaf_platform.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
TLS_OVERRIDE = ROOT / "deploy" / "compose.partner-tls.yml"
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
INIT_SCRIPT = ROOT / "deploy" / "kafka" / "init.sh"
SERVICES = ("intake", "matching", "scheduling", "notification")
# Processes of the image that use neither Kafka nor a database (no Service object): only
# their settings and their HTTP app are checked.
WEB_APPS = ("portal",)

# Placeholders that pass the services' own validation (the keyring must parse).
_PLACEHOLDERS = {
    "EROPAF_MASTER_KEYS": "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "KAFKA_CLUSTER_ID": "MkU3OEVBNTcwNTJENDM2Qk",
}


def _env_example() -> dict[str, str]:
    """The variables of deploy/env.example and their (example) values."""
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


@pytest.fixture(scope="session")
def compose_bin() -> str:
    """Debian's docker-compose (v1.29, compose file format 3.x/Compose spec): `config`
    works without a Docker engine. In CI it must be there (.ci/run installs it)."""
    found = shutil.which("docker-compose")
    if found is None:
        message = "docker-compose not installed (apt-get install docker-compose)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + ": CI must validate the compose stack")
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/env.example with every empty value filled by a placeholder."""
    path = tmp_path_factory.mktemp("compose") / "env"
    lines = []
    for name, value in _env_example().items():
        if not value:
            value = _PLACEHOLDERS.get(
                name, f"placeholder-{name.lower().replace('_', '-')}-0123456789"
            )
        lines.append(f"{name}={value}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run_compose(
    compose_bin: str, env_file: Path, *args: str, files: tuple[Path, ...] = (COMPOSE_FILE,)
) -> subprocess.CompletedProcess[str]:
    # A clean environment: the caller's own EROPAF_*/KAFKA_* variables would win over the
    # env file and hide a missing one.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL")}
    command = [compose_bin, "--project-directory", str(ROOT), "--env-file", str(env_file)]
    for f in files:
        command += ["-f", str(f)]
    return subprocess.run(
        [*command, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


Compose = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def compose(compose_bin: str, env_file: Path) -> Compose:
    """Runs docker-compose on the stack's files (or ``files=``) with the example env."""

    def run(
        *args: str, files: tuple[Path, ...] = (COMPOSE_FILE,)
    ) -> subprocess.CompletedProcess[str]:
        return _run_compose(compose_bin, env_file, *args, files=files)

    return run


@pytest.fixture(scope="session")
def resolved(compose_bin: str, env_file: Path) -> dict[str, Any]:
    """The compose file as docker-compose resolves it (anchors merged, variables filled)."""
    result = _run_compose(compose_bin, env_file, "--profile", "ops", "config")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config


@pytest.fixture(scope="session")
def raw_compose() -> dict[str, Any]:
    config = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(config, dict)
    return config


@dataclass
class Subscription:
    consumer: str
    topics: tuple[str, ...]
    pattern: str | None
    group_id: str


@dataclass
class BuiltService:
    """What a service does with Kafka, seen by building it (no connection is made)."""

    name: str
    settings_class: type[ServiceSettings]
    topics: list[str]
    subscriptions: list[Subscription] = field(default_factory=list)
    epoch_topic: str = ""  # the outbox relay's broker marker


def settings_class(name: str) -> type[BaseSettings]:
    """The settings class that the app module of a service (a ServiceSettings subclass) or of
    a web app (its own BaseSettings) defines."""
    app = importlib.import_module(f"eropaf_{name}.app")
    classes = [
        c
        for _, c in inspect.getmembers(app, inspect.isclass)
        if issubclass(c, BaseSettings) and c is not ServiceSettings and c.__module__ == app.__name__
    ]
    assert len(classes) == 1, f"eropaf_{name}.app defines {classes}"
    if name in SERVICES:
        assert issubclass(classes[0], ServiceSettings), classes[0]
    return classes[0]


@pytest.fixture(scope="session")
def settings_classes() -> dict[str, type[BaseSettings]]:
    """The settings class of every process of the image: the services and the web apps."""
    return {name: settings_class(name) for name in (*SERVICES, *WEB_APPS)}


@pytest.fixture(scope="session")
def built_services() -> Iterator[dict[str, BuiltService]]:
    """Every service built from its own `build()` with dev settings, recording its topics
    and subscriptions (this also imports every module the service's process imports, so
    its metrics are registered)."""
    built: dict[str, BuiltService] = {}
    original = Service.subscribe

    def record(self: Service, *topics: str, **kwargs: Any) -> Any:
        consumer = kwargs["consumer"]
        built[self.settings.service_name].subscriptions.append(
            Subscription(
                consumer=consumer,
                topics=topics,
                pattern=kwargs.get("pattern"),
                group_id=kwargs.get("group_id") or f"eropaf-{consumer}",
            )
        )
        return original(self, *topics, **kwargs)

    Service.subscribe = record  # type: ignore[method-assign]
    try:
        for name in SERVICES:
            cls = settings_class(name)
            assert issubclass(cls, ServiceSettings)
            settings = cls(dev_mode=True, database_url="postgresql://user:pw@localhost/unused")
            built[settings.service_name] = BuiltService(name, cls, [])
            app = importlib.import_module(f"eropaf_{name}.app")
            result = app.build(settings)
            service = result[0] if isinstance(result, tuple) else result
            assert isinstance(service, Service)
            built[name].topics = list(service.topics)
            built[name].epoch_topic = service.relay._epoch_topic()
    finally:
        Service.subscribe = original  # type: ignore[method-assign]
    yield built


@pytest.fixture(scope="session")
def region_partners() -> list[str]:
    return [p.code for p in load_region(None).partners]


_ACL_LINE = re.compile(r"^acl (.*)$", re.MULTILINE)
_TOPIC_LINE = re.compile(r"^topic (\S+) (\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class ScriptAcl:
    principal: str
    operation: str  # as kafka-acls.sh spells it: Read, Write, ...
    resource: str  # topic, group or cluster
    name: str
    pattern: str  # literal or prefixed


@pytest.fixture(scope="session")
def env_values() -> dict[str, str]:
    """deploy/env.example's variables and their example values."""
    return _env_example()


@pytest.fixture(scope="session")
def init_topics() -> dict[str, str]:
    """Topic -> retention class, as the init script creates them."""
    return dict(_TOPIC_LINE.findall(INIT_SCRIPT.read_text(encoding="utf-8")))


@pytest.fixture(scope="session")
def init_acls() -> set[ScriptAcl]:
    """Every binding the init script adds, one per operation and resource."""
    import shlex

    bindings: set[ScriptAcl] = set()
    for line in _ACL_LINE.findall(INIT_SCRIPT.read_text(encoding="utf-8")):
        args = shlex.split(line)
        principal, operations, resources, pattern = "", [], [], "literal"
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--add":
                i += 1
                continue
            if arg == "--cluster":
                resources.append(("cluster", "kafka-cluster"))
                i += 1
                continue
            value = args[i + 1]
            if arg == "--allow-principal":
                principal = value
            elif arg == "--operation":
                operations.append(value)
            elif arg in ("--topic", "--group"):
                resources.append((arg[2:], value))
            elif arg == "--resource-pattern-type":
                pattern = value
            else:
                raise AssertionError(f"unexpected kafka-acls.sh argument {arg!r} in: {line}")
            i += 2
        assert principal and operations and resources, line
        for op in operations:
            for resource, name in resources:
                bindings.add(ScriptAcl(principal, op, resource, name, pattern))
    return bindings
