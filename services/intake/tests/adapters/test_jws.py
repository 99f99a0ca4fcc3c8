from __future__ import annotations

import base64
import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
    PublicFormat,
)

from eropaf_intake.adapters.jws import (
    DetachedJws,
    JwsError,
    b64url_decode,
    b64url_encode,
    generate_key_pair,
    jwk_thumbprint,
    parse_detached,
    private_key_from_pem,
    private_key_to_pem,
    public_key_from_pem,
    public_key_to_pem,
    sign_detached,
    verify_detached,
    verify_key,
)

pytestmark = pytest.mark.unit

# RFC 8037 appendix A.1-A.3: Ed25519 test key and its RFC 7638 thumbprint.
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
VALUE = b'{"ID":"VS-1","bedrag":450}'


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_sign_detached_has_contract_shape(key: Ed25519PrivateKey) -> None:
    jws = sign_detached(VALUE, key, "mitros-1")
    protected, payload, signature = jws.split(".")
    assert payload == ""
    assert "=" not in jws
    assert b64url_decode(protected) == b'{"alg":"EdDSA","kid":"mitros-1"}'
    # Independent computation of the signing input (Ed25519 is deterministic).
    signing_input = f"{protected}.{_b64(VALUE)}".encode("ascii")
    assert b64url_decode(signature) == key.sign(signing_input)


def test_round_trip_and_tamper(key: Ed25519PrivateKey) -> None:
    jws = sign_detached(VALUE, key, "k1")
    assert verify_detached(jws, VALUE, key.public_key())
    assert verify_detached(parse_detached(jws), VALUE, key.public_key())
    assert not verify_detached(jws, VALUE + b" ", key.public_key())  # exact bytes, not JSON
    assert not verify_detached(jws, VALUE, generate_key_pair()[1])
    # Swapping the kid invalidates the signature: the header is signed.
    other_header = _b64(b'{"alg":"EdDSA","kid":"k2"}')
    forged = other_header + jws[jws.index(".") :]
    assert not verify_detached(forged, VALUE, key.public_key())


def test_verifies_signature_made_by_independent_code(key: Ed25519PrivateKey) -> None:
    protected = _b64(json.dumps({"kid": "x", "alg": "EdDSA"}).encode())  # other key order, spaces
    sig = key.sign(f"{protected}.{_b64(VALUE)}".encode())
    jws = f"{protected}..{_b64(sig)}"
    assert parse_detached(jws).kid == "x"
    assert verify_detached(jws, VALUE, key.public_key())


def _openssl_accepts(key: Ed25519PrivateKey, jws: DetachedJws, value: bytes) -> bool:
    try:
        key.public_key().verify(jws.signature, f"{jws.protected_b64}.{_b64(value)}".encode())
    except InvalidSignature:
        return False
    return True


def test_libsodium_verification_agrees_with_openssl(key: Ed25519PrivateKey) -> None:
    """Verification runs on libsodium (faster); it must accept and refuse what OpenSSL does."""
    parsed = parse_detached(sign_detached(VALUE, key, "k1"))
    flipped = bytes([parsed.signature[0] ^ 1]) + parsed.signature[1:]
    # S >= the group order: the same signature in a non-canonical spelling.
    s = (
        int.from_bytes(parsed.signature[32:], "little")
        + 2**252
        + 27742317777372353535851937790883648493
    )
    malleated = parsed.signature[:32] + s.to_bytes(32, "little")
    cases = [
        (parsed, VALUE),
        (parsed, VALUE + b" "),
        (parsed._replace(signature=flipped), VALUE),
        (parsed._replace(signature=malleated), VALUE),
        (parsed._replace(protected_b64=_b64(b'{"alg":"EdDSA","kid":"k2"}')), VALUE),
    ]
    verifying = verify_key(key.public_key())
    outcomes = [verify_detached(jws, value, verifying) for jws, value in cases]
    assert outcomes == [_openssl_accepts(key, jws, value) for jws, value in cases]
    assert outcomes == [True, False, False, False, False]


def test_parse_detached(key: Ed25519PrivateKey) -> None:
    jws = sign_detached(b"", key, "wil-2025")
    kid, protected_b64, signature = parse_detached(jws)
    assert isinstance(parse_detached(jws), DetachedJws)
    assert kid == "wil-2025"
    assert protected_b64 == jws.split(".")[0]
    assert len(signature) == 64
    assert verify_detached(jws, b"", key.public_key())


def _with_header(header: dict[str, object], key: Ed25519PrivateKey) -> str:
    protected = _b64(json.dumps(header).encode())
    return f"{protected}..{_b64(key.sign(protected.encode() + b'.'))}"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"alg": "none", "kid": "k"}, "alg"),
        ({"alg": "HS256", "kid": "k"}, "alg"),
        ({"kid": "k"}, "alg"),
        ({"alg": "EdDSA"}, "kid"),
        ({"alg": "EdDSA", "kid": ""}, "kid"),
        ({"alg": "EdDSA", "kid": 7}, "kid"),
        ({"alg": "EdDSA", "kid": "k", "crit": ["exp"]}, "crit"),
        ({"alg": "EdDSA", "kid": "k", "b64": False}, "b64"),
    ],
)
def test_parse_rejects_bad_headers(
    header: dict[str, object], message: str, key: Ed25519PrivateKey
) -> None:
    jws = _with_header(header, key)
    with pytest.raises(JwsError, match=message):
        parse_detached(jws)
    assert not verify_detached(jws, b"", key.public_key())


@pytest.mark.parametrize(
    ("jws", "message"),
    [
        ("", "three"),
        ("abc", "three"),
        ("a.b", "three"),
        ("a..b.c", "three"),
        ("eyJhbGciOiJFZERTQSIsImtpZCI6ImsifQ.cGF5bG9hZA.AAAA", "payload segment must be empty"),
        ("..AAAA", "protected header"),
        ("!!!!..AAAA", "base64url"),
        ("eyJhbGciOiJFZERTQSIsImtpZCI6ImsifQ==..AAAA", "base64url"),
        (_b64(b"not json") + "..AAAA", "not JSON"),
        (_b64(b"[1]") + "..AAAA", "object"),
        (_b64(b'{"alg":"EdDSA","kid":"k"}') + "..AAAA", "length"),
        (_b64(b'{"alg":"EdDSA","kid":"k"}') + ".." + "A" * 86 + "=", "base64url"),
        (_b64(b'{"alg":"EdDSA","kid":"k"}') + "..", "length"),
    ],
)
def test_parse_rejects_malformed(jws: str, message: str) -> None:
    with pytest.raises(JwsError, match=message):
        parse_detached(jws)


def test_b64url_strict() -> None:
    assert b64url_encode(b"\xfb\xff") == "-_8"
    assert b64url_decode("-_8") == b"\xfb\xff"
    for bad in ["-_8=", "+/8", "A", "-_9", "é"]:  # padding, std alphabet, length, trailing bits
        with pytest.raises(JwsError):
            b64url_decode(bad)


def test_sign_rejects_bad_kid(key: Ed25519PrivateKey) -> None:
    with pytest.raises(JwsError):
        sign_detached(b"x", key, "")
    with pytest.raises(JwsError):
        sign_detached(b"x", key, "k" * 257)


def test_key_pem_round_trip() -> None:
    private_key, public_key = generate_key_pair()
    pem = private_key_to_pem(private_key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    loaded = private_key_from_pem(pem)
    public_pem = public_key_to_pem(public_key)
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")  # SubjectPublicKeyInfo
    loaded_public = public_key_from_pem(public_pem)
    jws = sign_detached(VALUE, loaded, "k")
    assert verify_detached(jws, VALUE, loaded_public)
    assert loaded_public.public_bytes(Encoding.Raw, PublicFormat.Raw) == public_key.public_bytes(
        Encoding.Raw, PublicFormat.Raw
    )


def test_encrypted_private_pem_needs_password() -> None:
    private_key, _ = generate_key_pair()
    pem = private_key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"secret")
    )
    assert isinstance(private_key_from_pem(pem, b"secret"), Ed25519PrivateKey)
    with pytest.raises(JwsError):
        private_key_from_pem(pem)


def test_pem_loaders_reject_garbage_and_other_key_types() -> None:
    with pytest.raises(JwsError):
        private_key_from_pem(b"garbage")
    with pytest.raises(JwsError):
        public_key_from_pem(b"garbage")
    other = ec.generate_private_key(ec.SECP256R1())  # any non-Ed25519 key
    other_pem = other.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"p")
    )
    with pytest.raises(JwsError, match="Ed25519"):
        private_key_from_pem(other_pem, b"p")
    other_public = other.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(JwsError, match="Ed25519"):
        public_key_from_pem(other_public)


def test_jwk_thumbprint_rfc8037_vector(key: Ed25519PrivateKey) -> None:
    assert jwk_thumbprint(key.public_key()) == RFC8037_THUMBPRINT
    assert jwk_thumbprint(generate_key_pair()[1]) != RFC8037_THUMBPRINT
