"""SSL and SASL_SSL broker connections carry a TLS context that trusts the configured CA."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from eropaf_platform.broker import connection_args, make_broker
from eropaf_platform.settings import ServiceSettings

pytestmark = pytest.mark.unit

CA_NAME = "Eropaf test broker CA"


def write_ca(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def settings(protocol: str, **more: object) -> ServiceSettings:
    return ServiceSettings(
        database_url="postgresql://x/y",
        kafka_bootstrap_servers="kafka.example:9094",
        kafka_security_protocol=protocol,
        **more,  # type: ignore[arg-type]
    )


def trusted(context: ssl.SSLContext) -> list[str]:
    """Common names of the CAs the context trusts."""
    names = []
    for cert in context.get_ca_certs():
        subject: Any = cert["subject"]
        names += [value for rdn in subject for key, value in rdn if key == "commonName"]
    return names


def test_sasl_ssl_connections_verify_the_broker_against_the_configured_ca(tmp_path: Path) -> None:
    cafile = write_ca(tmp_path / "ca.pem")
    config = settings(
        "SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="eropaf-intake",
        kafka_sasl_password="secret",
        kafka_ssl_cafile=str(cafile),
    )
    args = connection_args(config)
    context = args["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert trusted(context) == [CA_NAME]
    assert args["security_protocol"] == "SASL_SSL"
    assert args["sasl_mechanism"] == "SCRAM-SHA-512"
    # The services' FastStream broker gets the same: SASL over TLS, with that CA.
    kwargs = make_broker(config)._connection_kwargs
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert trusted(kwargs["ssl_context"]) == [CA_NAME]


def test_ssl_without_sasl_has_a_context_too(tmp_path: Path) -> None:
    config = settings("SSL", kafka_ssl_cafile=str(write_ca(tmp_path / "ca.pem")))
    assert trusted(connection_args(config)["ssl_context"]) == [CA_NAME]
    kwargs = make_broker(config)._connection_kwargs
    assert kwargs["security_protocol"] == "SSL"
    assert trusted(kwargs["ssl_context"]) == [CA_NAME]


def test_without_a_ca_file_the_system_cas_are_trusted() -> None:
    context = connection_args(settings("SASL_SSL"))["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.verify_mode is ssl.CERT_REQUIRED
    assert CA_NAME not in trusted(context)


def test_plaintext_connections_have_no_tls_context() -> None:
    assert "ssl_context" not in connection_args(settings("PLAINTEXT"))
    assert make_broker(settings("PLAINTEXT"))._connection_kwargs.get("ssl_context") is None


def test_a_missing_ca_file_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        connection_args(settings("SASL_SSL", kafka_ssl_cafile=str(tmp_path / "nope.pem")))
