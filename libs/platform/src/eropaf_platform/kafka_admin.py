"""Topics, SCRAM users and ACLs of the deployed stack (Apache Kafka with SASL/SCRAM-SHA-512).

Who may do what is computed here, as data, in one place:

- a partner (user ``partner.<code>``) may write only ``arrears.signals.<code>``, read only
  ``arrears.feedback.<code>`` and use only consumer groups starting ``partner.<code>.``
  (CONTRACT §2);
- each service (user ``eropaf-<service>``) may read the topics it consumes, write the topics
  it publishes (and the dead-letter topics of what it consumes), and use only consumer groups
  starting ``eropaf-<service>-``; intake gets the partner topics one partner at a time, when
  the partner is onboarded;
- the operator (user ``eropaf-admin``) is a super user of the broker.

``python -m eropaf_platform.kafka_admin init-script`` renders the shell script that the
stack's init job runs with Kafka's own command-line tools (``deploy/kafka/init.sh``);
:func:`onboard_partner` does the same for one partner through the Kafka admin API, for
``eropaf partner onboard`` against a deployed stack.
"""

from __future__ import annotations

import argparse
import enum
import hashlib
import secrets
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from aiokafka.protocol.admin import CreateAclsRequest
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from eropaf_contracts.topics import (
    CASES_TOPIC,
    CREDITOR_FEEDBACK_TOPIC,
    INTAKE_SIGNALS_TOPIC,
    INTERNAL_TOPICS,
    NOTIFICATION_DELIVERIES_TOPIC,
    STAFF_TOPIC,
    VISITS_TOPIC,
    dlq_topic,
    feedback_topic,
    signals_topic,
    validate_partner_code,
)

__all__ = [
    "ADMIN_USER",
    "DEFAULT_RETENTION_MS",
    "SCRAM_ITERATIONS",
    "SCRAM_MECHANISM",
    "SERVICES",
    "UNSEALERS",
    "AclBinding",
    "AlterUserScramCredentials",
    "AlterUserScramCredentialsResponse_v0",
    "DeadLetter",
    "Operation",
    "PartnerConnection",
    "PatternType",
    "ResourceType",
    "ServiceAccess",
    "TopicSpec",
    "acl_commands",
    "build_parser",
    "create_acl_request",
    "epoch_topic",
    "installed_unsealer",
    "intake_partner_acls",
    "onboard_acls",
    "onboard_partner",
    "partner_acls",
    "partner_group_prefix",
    "partner_topics",
    "partner_user",
    "read_dead_letters",
    "render_init_script",
    "replay_dead_letters",
    "salted_password",
    "scram_upsertion",
    "service_acls",
    "service_group_prefix",
    "service_user",
    "stack_topics",
]

SCRAM_MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192  # Kafka accepts 4096..16384
ADMIN_USER = "eropaf-admin"

# Retention classes: partner topics carry personal data and are kept short (intake has
# taken every signal over, encrypted, within seconds; a feedback record is read at once).
# Internal topics keep what a consumer that was down for a while still needs; what they
# drop the outbox can publish again. Dead letters wait for an operator.
DEFAULT_RETENTION_MS = {
    "partner": 7 * 24 * 3600 * 1000,
    "internal": 30 * 24 * 3600 * 1000,
    "dlq": 30 * 24 * 3600 * 1000,
}


class ResourceType(enum.IntEnum):
    """Kafka's ACL resource types (wire values)."""

    TOPIC = 2
    GROUP = 3
    CLUSTER = 4


class PatternType(enum.IntEnum):
    LITERAL = 3
    PREFIXED = 4


class Operation(enum.IntEnum):
    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8  # implied by READ and WRITE, so never granted on its own here


_ALLOW = 3  # AclPermissionType.ALLOW


@dataclass(frozen=True, order=True)
class AclBinding:
    """One ALLOW rule: ``principal`` may ``operation`` on a resource (any host)."""

    principal: str
    resource_type: ResourceType
    resource_name: str
    pattern_type: PatternType
    operation: Operation


@dataclass(frozen=True)
class TopicSpec:
    """A topic the init job creates: ``kind`` picks its retention class."""

    name: str
    kind: str  # "partner", "internal", "dlq" or "epoch"


# -- who is who -------------------------------------------------------------------------------


def partner_user(code: str) -> str:
    """SCRAM user name of a partner (a dot never occurs in a code or a service user)."""
    return f"partner.{validate_partner_code(code)}"


def partner_group_prefix(code: str) -> str:
    """Consumer groups a partner may use start with this."""
    return f"partner.{validate_partner_code(code)}."


def service_user(service: str) -> str:
    return f"eropaf-{service}"


def service_group_prefix(service: str) -> str:
    """Groups of a service's consumers: ``eropaf-<consumer>`` with the consumer's name
    starting with the service's (``eropaf_platform.service.Service.subscribe``)."""
    return f"eropaf-{service}-"


# -- topics -----------------------------------------------------------------------------------


def partner_topics(code: str) -> list[TopicSpec]:
    """A partner's two topics (CONTRACT §2) and the dead-letter topic of its signals."""
    signals = signals_topic(code)
    return [
        TopicSpec(signals, "partner"),
        TopicSpec(feedback_topic(code), "partner"),
        TopicSpec(dlq_topic(signals), "dlq"),
    ]


def stack_topics(partner_codes: Iterable[str]) -> list[TopicSpec]:
    """Every topic of the stack: internal ones, their dead-letter topics, the partners'."""
    specs = [TopicSpec(t, "internal") for t in INTERNAL_TOPICS]
    specs += [TopicSpec(dlq_topic(t), "dlq") for t in INTERNAL_TOPICS]
    specs += [TopicSpec(epoch_topic(service), "epoch") for service in SERVICES]
    for code in partner_codes:
        specs += partner_topics(code)
    return specs


# -- access -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceAccess:
    """The internal topics a service consumes and publishes (its outbox's topics)."""

    reads: tuple[str, ...]
    writes: tuple[str, ...]


# Partner topics are not here: intake gets them per partner (intake_partner_acls).
SERVICES: dict[str, ServiceAccess] = {
    "intake": ServiceAccess(reads=(CREDITOR_FEEDBACK_TOPIC,), writes=(INTAKE_SIGNALS_TOPIC,)),
    "matching": ServiceAccess(
        reads=(INTAKE_SIGNALS_TOPIC, VISITS_TOPIC),
        writes=(CASES_TOPIC, CREDITOR_FEEDBACK_TOPIC),
    ),
    "scheduling": ServiceAccess(reads=(CASES_TOPIC,), writes=(VISITS_TOPIC, STAFF_TOPIC)),
    "notification": ServiceAccess(
        reads=(CASES_TOPIC, VISITS_TOPIC, STAFF_TOPIC), writes=(NOTIFICATION_DELIVERIES_TOPIC,)
    ),
}


def _topic(principal: str, name: str, op: Operation) -> AclBinding:
    return AclBinding(principal, ResourceType.TOPIC, name, PatternType.LITERAL, op)


def _group_prefix(principal: str, prefix: str) -> AclBinding:
    return AclBinding(principal, ResourceType.GROUP, prefix, PatternType.PREFIXED, Operation.READ)


def epoch_topic(service: str) -> str:
    """The outbox relay's marker of the broker it published to (``OutboxRelay._epoch_topic``):
    one partition, kept forever; the service reads and writes it."""
    return f"eropaf.epoch.{service}"


def _read_write(principal: str, topic: str) -> set[AclBinding]:
    # A service reads back the end of what it writes: after a crash the outbox relay looks
    # there for the events it may have published already (OutboxRelay._event_ids_at_end).
    return {_topic(principal, topic, Operation.WRITE), _topic(principal, topic, Operation.READ)}


def service_acls(service: str) -> list[AclBinding]:
    """A service's rights on the internal topics: read what it consumes; read and write what
    it publishes, the dead letters of what it consumes and its outbox's epoch marker (READ and
    WRITE imply DESCRIBE, which a service needs on each of its topics to check at start-up
    that it exists)."""
    access = SERVICES[service]
    principal = f"User:{service_user(service)}"
    bindings = {_group_prefix(principal, service_group_prefix(service))}
    bindings |= _read_write(principal, epoch_topic(service))
    for topic in access.reads:
        bindings.add(_topic(principal, topic, Operation.READ))
        bindings |= _read_write(principal, dlq_topic(topic))
    for topic in access.writes:
        bindings |= _read_write(principal, topic)
    return sorted(bindings)


def partner_acls(code: str) -> list[AclBinding]:
    """CONTRACT §2: the partner writes its signals topic, reads its feedback topic."""
    principal = f"User:{partner_user(code)}"
    return [
        _topic(principal, signals_topic(code), Operation.WRITE),
        _topic(principal, feedback_topic(code), Operation.READ),
        _group_prefix(principal, partner_group_prefix(code)),
    ]


def intake_partner_acls(code: str) -> list[AclBinding]:
    """Intake reads a partner's signals, writes (and reads back) its feedback and the signals'
    dead letters."""
    principal = f"User:{service_user('intake')}"
    signals = signals_topic(code)
    return sorted(
        {_topic(principal, signals, Operation.READ)}
        | _read_write(principal, feedback_topic(code))
        | _read_write(principal, dlq_topic(signals))
    )


def onboard_acls(code: str) -> list[AclBinding]:
    """Every binding that onboarding a partner adds."""
    return partner_acls(code) + intake_partner_acls(code)


# -- the init job -----------------------------------------------------------------------------

_SCRIPT_HEAD = """\
#!/usr/bin/env bash
# GENERATED by `python -m eropaf_platform.kafka_admin init-script`: do not edit by hand
# (tests/deploy checks it against the code). Run by the kafka-init service of
# docker-compose.yml with Kafka's own tools, on the broker's local listener (it shares the
# broker's network namespace; that listener is bound to 127.0.0.1 and is the broker's super
# user). Idempotent: run it again after an upgrade to add new topics and rights.
set -euo pipefail

BIN="${KAFKA_BIN:-/opt/kafka/bin}"
BOOTSTRAP="${KAFKA_INIT_BOOTSTRAP:-127.0.0.1:9091}"
PARTITIONS="${KAFKA_TOPIC_PARTITIONS:-4}"
PARTNER_PARTITIONS="${KAFKA_PARTNER_TOPIC_PARTITIONS:-4}"
REPLICATION="${KAFKA_REPLICATION_FACTOR:-1}"
# Another cluster (e.g. a managed one): its admin client properties (SASL, TLS).
CONFIG=()
if [[ -n "${KAFKA_INIT_COMMAND_CONFIG:-}" ]]; then
  CONFIG=(--command-config "$KAFKA_INIT_COMMAND_CONFIG")
fi
declare -A RETENTION=(
  [partner]="${KAFKA_PARTNER_RETENTION_MS:-%(partner)d}"
  [internal]="${KAFKA_INTERNAL_RETENTION_MS:-%(internal)d}"
  [dlq]="${KAFKA_DLQ_RETENTION_MS:-%(dlq)d}"
  [epoch]=-1
)

existing="$("$BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" "${CONFIG[@]}" --list)"

topic() {  # topic NAME KIND: create it when missing (an existing topic keeps its settings)
  local partitions="$PARTITIONS"
  [[ "$2" == partner ]] && partitions="$PARTNER_PARTITIONS"
  [[ "$2" == epoch ]] && partitions=1
  if ! grep -qxF -- "$1" <<<"$existing"; then
    "$BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" "${CONFIG[@]}" \\
      --create --if-not-exists --topic "$1" --partitions "$partitions" \\
      --replication-factor "$REPLICATION" --config "retention.ms=${RETENTION[$2]}"
  fi
}

scram() {  # scram USER PASSWORD: create or update the user's SCRAM-SHA-512 credential
  if [[ -z "$2" ]]; then echo "no password for Kafka user $1" >&2; exit 1; fi
  # kafka-configs.sh splits its value on "," and "]": keep passwords to these characters
  if [[ ! "$2" =~ ^[A-Za-z0-9._~-]{16,}$ ]]; then
    echo "password of Kafka user $1: 16+ characters of A-Z a-z 0-9 . _ ~ -" >&2; exit 1
  fi
  "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" "${CONFIG[@]}" \\
    --alter --entity-type users --entity-name "$1" \\
    --add-config "SCRAM-SHA-512=[iterations=%(iterations)d,password=$2]"
}

acl() {  # acl ARGS...: add one ALLOW binding (adding an existing one changes nothing)
  "$BIN/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" "${CONFIG[@]}" "$@" >/dev/null
}
"""


def acl_commands(bindings: Iterable[AclBinding]) -> list[list[str]]:
    """``kafka-acls.sh --add`` argument lists for ``bindings``, as few as give exactly them:
    one per principal, resource kind and set of operations (each JVM start takes a second)."""
    operations: dict[tuple[str, ResourceType, PatternType, str], set[Operation]] = {}
    for b in bindings:
        key = (b.principal, b.resource_type, b.pattern_type, b.resource_name)
        operations.setdefault(key, set()).add(b.operation)
    calls: dict[tuple[str, ResourceType, PatternType, tuple[Operation, ...]], list[str]] = {}
    for (principal, rtype, pattern, name), ops in operations.items():
        calls.setdefault((principal, rtype, pattern, tuple(sorted(ops))), []).append(name)
    commands = []
    for (principal, rtype, pattern, ordered_ops), names in calls.items():
        args = ["--add", "--allow-principal", principal]
        for op in ordered_ops:
            args += ["--operation", op.name.capitalize()]
        flag = {ResourceType.TOPIC: "--topic", ResourceType.GROUP: "--group"}.get(rtype)
        if flag is None:
            args.append("--cluster")
        else:
            for name in sorted(names):
                args += [flag, name]
        args += ["--resource-pattern-type", pattern.name.lower()]
        commands.append(args)
    return commands


def render_init_script(partner_codes: Sequence[str]) -> str:
    """The init job's script: every topic, the services' and the admin's SCRAM users, the
    services' ACLs and those of the given partners (their SCRAM users come at onboarding,
    with a password only the partner gets)."""
    lines = [_SCRIPT_HEAD % {**DEFAULT_RETENTION_MS, "iterations": SCRAM_ITERATIONS}]
    lines.append("\n# Topics")
    lines += [f"topic {shlex.quote(s.name)} {s.kind}" for s in stack_topics(partner_codes)]
    lines.append("\n# SCRAM users (passwords from the environment, see deploy/env.example)")
    lines.append(f'scram {ADMIN_USER} "${{KAFKA_ADMIN_PASSWORD:-}}"')
    for service in SERVICES:
        var = f"KAFKA_{service.upper()}_PASSWORD"
        lines.append(f'scram {service_user(service)} "${{{var}:-}}"')
    lines.append("\n# Services: their own topics and groups")
    for service in SERVICES:
        lines += [f"acl {shlex.join(args)}" for args in acl_commands(service_acls(service))]
    lines.append("\n# Partners of the region: CONTRACT §2 (and intake's side of their topics)")
    partner_bindings = [b for code in partner_codes for b in onboard_acls(code)]
    lines += [f"acl {shlex.join(args)}" for args in acl_commands(partner_bindings)]
    lines.append('\necho "kafka-init: topics, users and ACLs in place"')
    return "\n".join(lines) + "\n"


# -- the admin API (partner onboarding against a deployed stack) --------------------------------

_SCRAM_MECHANISMS = {"SCRAM-SHA-256": (1, "sha256"), "SCRAM-SHA-512": (2, "sha512")}


def salted_password(password: str, salt: bytes, iterations: int, mechanism: str) -> bytes:
    """SCRAM's SaltedPassword (RFC 5802: Hi() is PBKDF2 with the mechanism's HMAC)."""
    _, digest = _SCRAM_MECHANISMS[mechanism]
    return hashlib.pbkdf2_hmac(digest, password.encode(), salt, iterations)


class AlterUserScramCredentialsResponse_v0(Response):
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user_name", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class AlterUserScramCredentialsRequest_v0(RequestStruct):
    """KIP-554, not in aiokafka: the client sends the salted password, never the password."""

    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = AlterUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(
                ("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields)
            ),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class AlterUserScramCredentials(Request[AlterUserScramCredentialsRequest_v0]):
    API_KEY = 51

    def __init__(self, upsertions: list[tuple[str, int, int, bytes, bytes]]) -> None:
        self._upsertions = upsertions

    def build(
        self, request_struct_class: type[AlterUserScramCredentialsRequest_v0]
    ) -> AlterUserScramCredentialsRequest_v0:
        return request_struct_class([], [(*u, {}) for u in self._upsertions], {})


def scram_upsertion(
    user: str, password: str, *, mechanism: str = SCRAM_MECHANISM, salt: bytes | None = None
) -> AlterUserScramCredentials:
    """The request that sets ``user``'s credential to ``password``."""
    code, _ = _SCRAM_MECHANISMS[mechanism]
    salt = salt if salt is not None else secrets.token_bytes(32)
    hashed = salted_password(password, salt, SCRAM_ITERATIONS, mechanism)
    return AlterUserScramCredentials([(user, code, SCRAM_ITERATIONS, salt, hashed)])


def create_acl_request(binding: AclBinding) -> CreateAclsRequest:
    return CreateAclsRequest(
        resource_type=int(binding.resource_type),
        resource_name=binding.resource_name,
        resource_pattern_type_filter=int(binding.pattern_type),
        principal=binding.principal,
        host="*",
        operation=int(binding.operation),
        permission_type=_ALLOW,
    )


@dataclass(frozen=True)
class PartnerConnection:
    """What a partner needs to connect (hand the password over securely, once)."""

    bootstrap_servers: str
    security_protocol: str
    username: str
    password: str
    signals_topic: str
    feedback_topic: str
    group_prefix: str

    def client_properties(self) -> str:
        """Kafka client properties: as Java clients (and ``kafka-*.sh --command-config``)
        take them, with the librdkafka names (confluent-kafka, kcat) as comments."""
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{self.username}" password="{self.password}";'
        )
        return "\n".join(
            [
                f"bootstrap.servers={self.bootstrap_servers}",
                f"security.protocol={self.security_protocol}",
                f"sasl.mechanism={SCRAM_MECHANISM}",
                f"sasl.jaas.config={jaas}",
                "# librdkafka clients take these instead of sasl.jaas.config:",
                f"#   sasl.username={self.username}",
                f"#   sasl.password={self.password}",
                f"# produce to: {self.signals_topic}",
                f"# consume from: {self.feedback_topic}",
                f"# consumer group ids must start with: {self.group_prefix}",
            ]
        )


def _check(results: Iterable[tuple[Any, ...]], what: str) -> None:
    for result in results:
        error_code, error_message = result[-2], result[-1]
        if isinstance(error_code, int) and error_code != 0:
            raise RuntimeError(f"{what} failed: error {error_code} {error_message or ''}")


async def onboard_partner(
    settings: Any,
    code: str,
    *,
    partner_bootstrap_servers: str,
    partner_security_protocol: str = "SASL_SSL",
    password: str | None = None,
    partitions: int | None = None,
    retention_ms: dict[str, int] | None = None,
) -> PartnerConnection:
    """Create the partner's topics (with their retention), its SCRAM user and the ACLs of
    :func:`onboard_acls`, as the admin user in ``settings`` (a ``ServiceSettings`` whose
    ``EROPAF_KAFKA_SASL_*`` name ``eropaf-admin``). Running it again sets a new password
    and changes nothing else."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    from eropaf_platform.broker import connection_args

    password = password or secrets.token_urlsafe(32)
    retention = {**DEFAULT_RETENTION_MS, **(retention_ms or {})}
    admin = AIOKafkaAdminClient(**connection_args(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                spec.name,
                partitions or settings.kafka_topic_partitions,
                1,
                topic_configs={"retention.ms": str(retention[spec.kind])},
            )
            for spec in partner_topics(code)
            if spec.name not in existing
        ]
        if new:
            response = await admin.create_topics(new)
            for topic, error_code, message in getattr(response, "topic_errors", []):
                if error_code not in (0, TopicAlreadyExistsError.errno):
                    raise RuntimeError(f"cannot create topic {topic}: {error_code} {message}")
        scram = await admin._send_request(scram_upsertion(partner_user(code), password))
        _check([(r[1], r[2]) for r in scram.results], f"SCRAM user {partner_user(code)}")
        for binding in onboard_acls(code):
            response = await admin._send_request(create_acl_request(binding))
            _check(response.creation_responses, f"ACL {binding}")
    finally:
        await admin.close()
    return PartnerConnection(
        bootstrap_servers=partner_bootstrap_servers,
        security_protocol=partner_security_protocol,
        username=partner_user(code),
        password=password,
        signals_topic=signals_topic(code),
        feedback_topic=feedback_topic(code),
        group_prefix=partner_group_prefix(code),
    )


# -- dead letters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    """One record of a ``<topic>.dlq`` (headers as the platform's BatchProcessor writes them)."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]

    def header(self, name: str) -> str:
        return self.headers.get(name, b"").decode(errors="replace")

    @property
    def sealed(self) -> bool:
        return self.header("dlq_sealed") == "true"

    def summary(self) -> dict[str, Any]:
        """What an operator may see of it anywhere: never the value (it may be personal)."""
        return {
            "dlq_offset": f"{self.partition}:{self.offset}",
            "original": f"{self.header('dlq_original_topic')}:"
            f"{self.header('dlq_original_partition')}:{self.header('dlq_original_offset')}",
            "consumer": self.header("dlq_consumer"),
            "error": self.header("dlq_error_class"),
            "cause": self.header("dlq_error_message"),
            "attempts": self.header("dlq_attempts"),
            "ce_id": self.header("ce_id") or None,
            "ce_type": self.header("ce_type") or None,
            "sealed": self.sealed,
        }

    def original(self, value: bytes) -> Any:
        """The message as its consumer first read it (``value``: unsealed when sealed)."""
        from eropaf_platform.consumer import Incoming

        return Incoming(
            topic=self.header("dlq_original_topic"),
            partition=int(self.header("dlq_original_partition") or 0),
            offset=int(self.header("dlq_original_offset") or 0),
            key=self.key,
            value=value,
            headers={k: v for k, v in self.headers.items() if not k.startswith("dlq_")},
            timestamp_ms=self.timestamp_ms,
        )


UNSEALERS = "eropaf.dlq_unseal"


def installed_unsealer() -> Callable[[DeadLetter], bytes]:
    """The opener of sealed dead letters that a service declares in the entry-point group
    ``eropaf.dlq_unseal`` (a factory, called without arguments, that reads its keys from the
    environment). Intake seals its partner messages; only its image and settings can open
    them, so run ``--unseal`` in intake's container. Found by entry point: the platform
    imports no service."""
    from importlib.metadata import entry_points

    found = sorted(entry_points(group=UNSEALERS), key=lambda ep: ep.name)
    if not found:
        raise SystemExit(
            f"--unseal: no service declares an unsealer (entry-point group {UNSEALERS})"
        )
    factory = found[0].load()
    opener: Callable[[DeadLetter], bytes] = factory()
    return opener


async def read_dead_letters(settings: Any, dlq: str) -> list[DeadLetter]:
    """Every record of a dead-letter topic, read without a consumer group (nothing committed)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from eropaf_platform.broker import connection_args

    if not dlq.endswith(".dlq"):
        raise SystemExit(f"{dlq} is not a dead-letter topic (<topic>.dlq)")
    consumer = AIOKafkaConsumer(
        **connection_args(settings), group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()  # fresh metadata
        numbers = consumer.partitions_for_topic(dlq)
        if not numbers:
            raise SystemExit(f"no topic {dlq} (or no right to read it)")
        tps = [TopicPartition(dlq, p) for p in sorted(numbers)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        letters: list[DeadLetter] = []

        async def behind() -> bool:
            for tp in tps:
                if await consumer.position(tp) < end[tp]:
                    return True
            return False

        while await behind():
            batch = await consumer.getmany(*tps, timeout_ms=1000)
            for records in batch.values():
                letters += [
                    DeadLetter(
                        partition=r.partition,
                        offset=r.offset,
                        timestamp_ms=r.timestamp,
                        key=r.key,
                        value=r.value or b"",
                        headers={k: v or b"" for k, v in r.headers or ()},
                    )
                    for r in records
                ]
        return sorted(letters, key=lambda letter: (letter.partition, letter.offset))
    finally:
        await consumer.stop()


async def replay_dead_letters(
    settings: Any,
    letters: Sequence[DeadLetter],
    *,
    unseal: Callable[[DeadLetter], bytes] | None = None,
) -> tuple[list[DeadLetter], list[DeadLetter]]:
    """Publish dead letters again on their original topics, for their consumer to process
    once more after a fix; returns (replayed, skipped).

    The consumer recorded each message as processed when it dead-lettered it; that record is
    removed first (in ``settings.database_url``: the consumer's own database), else it would
    drop the copy as a duplicate. A message recorded as processed *after* its dead letter
    was written has been replayed already and is skipped, so running this twice has no
    further effect."""
    import sqlalchemy as sa

    from eropaf_platform import db
    from eropaf_platform.broker import make_producer
    from eropaf_platform.tables import processed_message

    originals = []
    for letter in letters:
        value = letter.value
        if letter.sealed:
            if unseal is None:
                raise SystemExit(f"{letter.partition}:{letter.offset} is sealed: pass --unseal")
            value = unseal(letter)
        originals.append((letter, letter.original(value)))
    replayed: list[DeadLetter] = []
    skipped: list[DeadLetter] = []
    engine = db.make_engine(settings.database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            for letter, message in originals:
                key = (
                    processed_message.c.consumer == letter.header("dlq_consumer"),
                    processed_message.c.message_id == message.message_id,
                )
                processed_at = await conn.scalar(
                    sa.select(processed_message.c.processed_at).where(*key)
                )
                if (
                    processed_at is not None
                    and processed_at.timestamp() * 1000 > letter.timestamp_ms
                ):
                    skipped.append(letter)
                    continue
                await conn.execute(sa.delete(processed_message).where(*key))
                replayed.append(letter)
    finally:
        await engine.dispose()
    if replayed:
        producer = make_producer(settings)
        await producer.start()
        try:
            for letter, message in originals:
                if letter in replayed:
                    await producer.send_and_wait(
                        message.topic,
                        message.value,
                        key=message.key,
                        headers=list(message.headers.items()),
                    )
        finally:
            await producer.stop()
    return replayed, skipped


# -- command line -------------------------------------------------------------------------------

Argv: TypeAlias = Sequence[str] | None


def _settings(*, database: bool = False) -> Any:
    """Kafka (and database) settings from the EROPAF_* environment, as the services read them."""
    import os

    from eropaf_platform.settings import ServiceSettings

    url = os.environ.get("EROPAF_DATABASE_URL", "")
    if database and not url:
        raise SystemExit("EROPAF_DATABASE_URL must name the consumer's database")
    return ServiceSettings(service_name="kafka-admin", database_url=url or "unused")


def _offsets(values: Sequence[str]) -> set[tuple[int, int]]:
    chosen = set()
    for value in values:
        partition, _, offset = value.partition(":")
        if not (partition.isdigit() and offset.isdigit()):
            raise SystemExit(f"--offset {value!r}: write PARTITION:OFFSET, e.g. 0:42")
        chosen.add((int(partition), int(offset)))
    return chosen


def _cmd_onboard(args: argparse.Namespace) -> int:
    import asyncio
    import json

    connection = asyncio.run(
        onboard_partner(
            _settings(),
            args.code,
            partner_bootstrap_servers=args.partner_bootstrap,
            partner_security_protocol=args.security_protocol,
        )
    )
    if args.json:
        print(json.dumps(connection.__dict__, indent=2))
    else:
        print(connection.client_properties())
    print("the password is shown only this once; hand it to the partner securely", file=sys.stderr)
    return 0


def _cmd_dlq(args: argparse.Namespace) -> int:
    import asyncio
    import json

    letters = asyncio.run(read_dead_letters(_settings(), args.topic))
    if args.offset:
        chosen = _offsets(args.offset)
        letters = [x for x in letters if (x.partition, x.offset) in chosen]
        missing = chosen - {(x.partition, x.offset) for x in letters}
        if missing:
            raise SystemExit(f"no dead letter at {sorted(missing)} in {args.topic}")
    if args.dlq_command == "list":
        for letter in letters:
            print(json.dumps(letter.summary(), ensure_ascii=False))
        print(f"{len(letters)} dead letter(s) in {args.topic}", file=sys.stderr)
        return 0
    unseal = installed_unsealer() if args.unseal else None
    if args.dlq_command == "show":
        if not args.offset:
            raise SystemExit("show needs --offset PARTITION:OFFSET")
        for letter in letters:
            value = letter.value
            if letter.sealed:
                if unseal is None:
                    raise SystemExit("sealed (personal data): pass --unseal, in intake's container")
                value = unseal(letter)
            print(json.dumps(letter.summary(), ensure_ascii=False))
            sys.stdout.write(value.decode(errors="replace") + "\n")
        return 0
    if not args.offset and not args.all:
        raise SystemExit("replay needs --offset PARTITION:OFFSET (repeatable) or --all")
    replayed, skipped = asyncio.run(
        replay_dead_letters(_settings(database=True), letters, unseal=unseal)
    )
    for letter in replayed:
        print(
            f"replayed {letter.partition}:{letter.offset} -> {letter.header('dlq_original_topic')}"
        )
    for letter in skipped:
        print(f"skipped {letter.partition}:{letter.offset}: replayed before")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m eropaf_platform.kafka_admin",
        description="Kafka operations of the deployed stack (EROPAF_KAFKA_* settings from the "
        "environment; the broker's admin user for onboard and dlq).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("init-script", help="print the init job's script (deploy/kafka/init.sh)")
    p.add_argument("--region-file", help="region YAML (default: the packaged region)")

    p = sub.add_parser(
        "onboard",
        help="a partner's topics, SCRAM user and ACLs; prints its connection settings once",
    )
    p.add_argument("code", help="partner code")
    p.add_argument(
        "--partner-bootstrap",
        required=True,
        metavar="HOST:PORT",
        help="the partner listener as partners reach it (KAFKA_PARTNER_HOST:KAFKA_PARTNER_PORT)",
    )
    p.add_argument(
        "--security-protocol",
        default="SASL_SSL",
        choices=["SASL_SSL", "SASL_PLAINTEXT"],
        help="of the partner listener (SASL_SSL with deploy/compose.partner-tls.yml)",
    )
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("dlq", help="dead letters: list, show, replay after a fix")
    dsub = p.add_subparsers(dest="dlq_command", required=True)
    for name, text in (
        ("list", "one line per dead letter: origin, consumer, cause (never the value)"),
        ("show", "the value of the dead letters at --offset"),
        ("replay", "publish dead letters again on their original topics (after a fix)"),
    ):
        q = dsub.add_parser(name, help=text)
        q.add_argument("topic", help="<topic>.dlq")
        q.add_argument(
            "--offset", action="append", default=[], metavar="PARTITION:OFFSET", help="repeatable"
        )
        if name != "list":
            q.add_argument(
                "--unseal",
                action="store_true",
                help="open sealed partner messages (in intake's container: it has the keys)",
            )
        if name == "replay":
            q.add_argument("--all", action="store_true", help="every dead letter of the topic")
    return parser


def main(argv: Argv = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "init-script":
        from eropaf_contracts.region import load_region

        region = load_region(args.region_file)
        sys.stdout.write(render_init_script([p.code for p in region.partners]))
        return 0
    if args.command == "onboard":
        return _cmd_onboard(args)
    return _cmd_dlq(args)


if __name__ == "__main__":
    raise SystemExit(main())
