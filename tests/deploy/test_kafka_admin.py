"""eropaf_platform.kafka_admin: the bindings, the init script's commands, the SCRAM request."""

from __future__ import annotations

import hashlib
import hmac
import io
import shlex
import subprocess
from pathlib import Path

import pytest
from aiokafka.protocol.types import UnsignedVarInt32

from eropaf_platform import kafka_admin
from eropaf_platform.kafka_admin import AclBinding, Operation, PatternType, ResourceType

pytestmark = pytest.mark.unit


def _expand(commands: list[list[str]]) -> set[tuple[str, str, str, str, str]]:
    """Bindings that kafka-acls.sh adds for these argument lists."""
    out = set()
    for args in commands:
        principal = args[args.index("--allow-principal") + 1]
        pattern = args[args.index("--resource-pattern-type") + 1]
        ops = [args[i + 1] for i, a in enumerate(args) if a == "--operation"]
        resources = [
            (a[2:], args[i + 1]) for i, a in enumerate(args) if a in ("--topic", "--group")
        ]
        out |= {(principal, op, kind, name, pattern) for op in ops for kind, name in resources}
    return out


def test_acl_commands_add_exactly_the_bindings() -> None:
    bindings = kafka_admin.service_acls("matching") + [
        b for code in ("mitros", "wil") for b in kafka_admin.onboard_acls(code)
    ]
    expected = {
        (
            b.principal,
            b.operation.name.capitalize(),
            b.resource_type.name.lower(),
            b.resource_name,
            b.pattern_type.name.lower(),
        )
        for b in bindings
    }
    commands = kafka_admin.acl_commands(bindings)
    assert _expand(commands) == expected
    assert len(commands) < len(bindings)  # merged: one JVM start per call


def test_a_partner_never_gets_another_partners_topics() -> None:
    mine = kafka_admin.partner_acls("ab")
    assert all(
        b.pattern_type is PatternType.LITERAL for b in mine if b.resource_type is ResourceType.TOPIC
    )
    assert {b.resource_name for b in mine if b.resource_type is ResourceType.TOPIC} == {
        "arrears.signals.ab",
        "arrears.feedback.ab",
    }
    # A group prefix of one partner is never a prefix of another's groups.
    assert not kafka_admin.partner_group_prefix("ab-c").startswith(
        kafka_admin.partner_group_prefix("ab")
    )


def test_partner_codes_are_validated() -> None:
    with pytest.raises(ValueError):
        kafka_admin.partner_acls("Bad.Code")


def test_init_script_is_valid_bash() -> None:
    script = kafka_admin.render_init_script(["mitros"])
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    assert "topic arrears.signals.mitros partner" in script
    assert "topic arrears.signals.mitros.dlq dlq" in script
    for line in script.splitlines():
        if line.startswith("acl "):
            shlex.split(line)  # every line parses


def test_salted_password_is_pbkdf2_with_the_mechanisms_hash() -> None:
    salt = b"0123456789abcdef"
    got = kafka_admin.salted_password("pencil", salt, 4096, "SCRAM-SHA-512")
    # Hi() of RFC 5802 written out: U1 = HMAC(p, salt + INT(1)), Ui = HMAC(p, Ui-1), XOR.
    u = hmac.new(b"pencil", salt + b"\x00\x00\x00\x01", hashlib.sha512).digest()
    result = bytearray(u)
    for _ in range(4095):
        u = hmac.new(b"pencil", u, hashlib.sha512).digest()
        result = bytearray(x ^ y for x, y in zip(result, u, strict=True))
    assert got == bytes(result)
    assert len(kafka_admin.salted_password("pencil", salt, 4096, "SCRAM-SHA-256")) == 32


def test_scram_request_encodes_as_kip_554_v0() -> None:
    salt = b"s" * 32
    request = kafka_admin.scram_upsertion("partner.mitros", "secret-password", salt=salt)
    struct = request.prepare({51: (0, 0)})
    assert struct.FLEXIBLE_VERSION and struct.API_KEY == 51 and struct.API_VERSION == 0
    data = io.BytesIO(struct.encode())
    assert UnsignedVarInt32.decode(data) == 1  # no deletions (compact array length + 1)
    assert UnsignedVarInt32.decode(data) == 2  # one upsertion
    name_len = UnsignedVarInt32.decode(data) - 1
    assert data.read(name_len) == b"partner.mitros"
    assert data.read(1) == b"\x02"  # SCRAM-SHA-512
    assert int.from_bytes(data.read(4), "big") == kafka_admin.SCRAM_ITERATIONS
    assert UnsignedVarInt32.decode(data) - 1 == 32 and data.read(32) == salt
    hashed_len = UnsignedVarInt32.decode(data) - 1
    assert data.read(hashed_len) == kafka_admin.salted_password(
        "secret-password", salt, kafka_admin.SCRAM_ITERATIONS, "SCRAM-SHA-512"
    )
    assert data.read() == b"\x00\x00"  # no tagged fields (upsertion, request)
    assert b"secret-password" not in struct.encode()


def test_scram_response_decodes() -> None:
    response = kafka_admin.AlterUserScramCredentialsResponse_v0.decode(
        b"\x00\x00\x00\x00"  # throttle
        + b"\x02"  # one result
        + b"\x04bob"  # user name
        + b"\x00\x00"  # error code
        + b"\x00"  # null message
        + b"\x00"  # tags
        + b"\x00"
    )
    assert response.results == [("bob", 0, None, {})]


def test_acl_request_carries_the_binding() -> None:
    binding = AclBinding(
        "User:partner.mitros",
        ResourceType.TOPIC,
        "arrears.signals.mitros",
        PatternType.LITERAL,
        Operation.WRITE,
    )
    struct = kafka_admin.create_acl_request(binding).prepare({30: (0, 1)})
    assert struct.to_object()["creations"] == [
        {
            "resource_type": 2,
            "resource_name": "arrears.signals.mitros",
            "resource_pattern_type": 3,
            "principal": "User:partner.mitros",
            "host": "*",
            "operation": 4,
            "permission_type": 3,
        }
    ]


def test_partner_connection_properties() -> None:
    connection = kafka_admin.PartnerConnection(
        bootstrap_servers="kafka.example.org:9094",
        security_protocol="SASL_SSL",
        username="partner.mitros",
        password="pw",
        signals_topic="arrears.signals.mitros",
        feedback_topic="arrears.feedback.mitros",
        group_prefix="partner.mitros.",
    )
    text = connection.client_properties()
    assert "sasl.mechanism=SCRAM-SHA-512" in text
    assert "security.protocol=SASL_SSL" in text
    assert "bootstrap.servers=kafka.example.org:9094" in text
    jaas = (
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="partner.mitros" password="pw";'
    )
    assert jaas in text.splitlines()


def _fake_tools(tmp_path: Path, existing: str = "") -> Path:
    """Kafka's three tools as scripts that log their arguments (and list ``existing``)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("kafka-topics.sh", "kafka-configs.sh", "kafka-acls.sh"):
        script = bin_dir / tool
        script.write_text(
            "#!/usr/bin/env bash\n"
            f'echo "{tool} $*" >> "{tmp_path}/calls"\n'
            f'if [[ " $* " == *" --list "* ]]; then printf "%s" "{existing}"; fi\n',
            encoding="utf-8",
        )
        script.chmod(0o755)
    return bin_dir


def _run_init(tmp_path: Path, bin_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "init.sh"
    script.write_text(kafka_admin.render_init_script(["mitros"]), encoding="utf-8")
    base = {"PATH": "/usr/bin:/bin", "KAFKA_BIN": str(bin_dir)}
    return subprocess.run(
        ["bash", str(script)], env={**base, **env}, capture_output=True, text=True, check=False
    )


_PASSWORDS = {
    f"KAFKA_{name}_PASSWORD": f"pw-{name.lower()}-0123456789abcdef"
    for name in ("ADMIN", "INTAKE", "MATCHING", "SCHEDULING", "NOTIFICATION")
}


def test_init_script_creates_missing_topics_users_and_acls(tmp_path: Path) -> None:
    bin_dir = _fake_tools(tmp_path, existing="eropaf.intake.signals.v1\n")
    result = _run_init(tmp_path, bin_dir, KAFKA_PARTNER_RETENTION_MS="1000", **_PASSWORDS)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls").read_text(encoding="utf-8").splitlines()
    created = [c.split("--topic ")[1].split()[0] for c in calls if "--create" in c]
    assert "eropaf.intake.signals.v1" not in created  # it existed
    assert "eropaf.matching.cases.v1" in created
    signals = next(c for c in calls if "--topic arrears.signals.mitros " in c)
    assert "retention.ms=1000" in signals  # the partner retention from the environment
    users = [c for c in calls if "--entity-type users" in c]
    assert len(users) == 5
    assert any("partner.mitros" in c and "kafka-acls.sh" in c for c in calls)


def test_init_script_stops_without_a_password(tmp_path: Path) -> None:
    bin_dir = _fake_tools(tmp_path)
    env = {**_PASSWORDS, "KAFKA_MATCHING_PASSWORD": ""}
    result = _run_init(tmp_path, bin_dir, **env)
    assert result.returncode != 0
    assert "no password for Kafka user eropaf-matching" in result.stderr
    env = {**_PASSWORDS, "KAFKA_MATCHING_PASSWORD": "has,comma-0123456789"}
    result = _run_init(tmp_path, bin_dir, **env)
    assert result.returncode != 0


class _FakeAdmin:
    """Stands in for AIOKafkaAdminClient: records what onboarding asks the broker."""

    instances: list[_FakeAdmin] = []

    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs
        self.topics: list[object] = []
        self.requests: list[object] = []
        self.closed = False
        _FakeAdmin.instances.append(self)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self.closed = True

    async def list_topics(self) -> list[str]:
        return ["arrears.feedback.newco"]  # one of the three exists already

    async def create_topics(self, topics: list[object]) -> object:
        self.topics += topics

        class Response:
            topic_errors = [(getattr(t, "name", ""), 0, None) for t in topics]

        return Response()

    async def _send_request(self, request: object) -> object:
        self.requests.append(request)
        if isinstance(request, kafka_admin.AlterUserScramCredentials):
            return kafka_admin.AlterUserScramCredentialsResponse_v0(
                0, [("partner.newco", 0, None, {})], {}
            )

        class AclResponse:
            creation_responses = [(0, None)]

        return AclResponse()


async def test_onboard_partner_creates_topics_user_and_acls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import aiokafka.admin

    from eropaf_platform.settings import ServiceSettings

    monkeypatch.setattr(aiokafka.admin, "AIOKafkaAdminClient", _FakeAdmin)
    _FakeAdmin.instances.clear()
    settings = ServiceSettings(
        database_url="unused",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="eropaf-admin",
        kafka_sasl_password="admin-password",
    )
    connection = await kafka_admin.onboard_partner(
        settings, "newco", partner_bootstrap_servers="kafka.example.org:9094"
    )
    (admin,) = _FakeAdmin.instances
    assert admin.kwargs["sasl_plain_username"] == "eropaf-admin" and admin.closed
    created = {t.name: t.topic_configs for t in admin.topics}  # type: ignore[attr-defined]
    assert created == {
        "arrears.signals.newco": {"retention.ms": str(kafka_admin.DEFAULT_RETENTION_MS["partner"])},
        "arrears.signals.newco.dlq": {"retention.ms": str(kafka_admin.DEFAULT_RETENTION_MS["dlq"])},
    }
    scram = [r for r in admin.requests if isinstance(r, kafka_admin.AlterUserScramCredentials)]
    assert len(scram) == 1
    acls = [r for r in admin.requests if not isinstance(r, kafka_admin.AlterUserScramCredentials)]
    assert len(acls) == len(kafka_admin.onboard_acls("newco"))
    assert connection.username == "partner.newco"
    assert len(connection.password) >= 32
    assert connection.signals_topic == "arrears.signals.newco"


async def test_onboard_partner_reports_a_refused_acl(monkeypatch: pytest.MonkeyPatch) -> None:
    import aiokafka.admin

    from eropaf_platform.settings import ServiceSettings

    class Refusing(_FakeAdmin):
        async def _send_request(self, request: object) -> object:
            if isinstance(request, kafka_admin.AlterUserScramCredentials):
                return await super()._send_request(request)

            class AclResponse:
                creation_responses = [(31, "Cluster authorization failed.")]

            return AclResponse()

    monkeypatch.setattr(aiokafka.admin, "AIOKafkaAdminClient", Refusing)
    with pytest.raises(RuntimeError, match="error 31"):
        await kafka_admin.onboard_partner(
            ServiceSettings(database_url="unused"), "newco", partner_bootstrap_servers="h:9094"
        )
