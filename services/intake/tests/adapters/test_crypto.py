from __future__ import annotations

import base64
import os

import pytest

from eropaf_intake.adapters.crypto import (
    CryptoError,
    Keyring,
    MasterKey,
    decrypt,
    encrypt,
    new_data_key,
    parse_keyring,
    record_aad,
    rewrap,
    unwrap,
    wrap,
    wrapped_key_id,
)

pytestmark = pytest.mark.unit

M1 = MasterKey("m1", os.urandom(32))
M2 = MasterKey("m2", os.urandom(32))
AAD = record_aad("household-42", "client.Achternaam")


def test_encrypt_round_trip_with_random_nonces() -> None:
    dk = new_data_key()
    assert len(dk) == 32
    a = encrypt(dk, b"van Dijk", AAD)
    b = encrypt(dk, b"van Dijk", AAD)
    assert a != b  # fresh nonce each time
    assert b"van Dijk" not in a
    assert decrypt(dk, a, AAD) == decrypt(dk, b, AAD) == b"van Dijk"
    assert decrypt(dk, encrypt(dk, b"", AAD), AAD) == b""


def test_new_data_keys_differ() -> None:
    assert new_data_key() != new_data_key()


def test_wrong_associated_data_fails() -> None:
    dk = new_data_key()
    ct = encrypt(dk, b"1985-06-15", record_aad("household-42", "client.Geboortedatum"))
    for aad in (
        record_aad("household-43", "client.Geboortedatum"),  # copied to another household
        record_aad("household-42", "client.Achternaam"),  # copied to another field
        record_aad("household-4", "2client.Geboortedatum"),  # boundaries are unambiguous
        b"",
    ):
        with pytest.raises(CryptoError):
            decrypt(dk, ct, aad)


def test_tampering_fails() -> None:
    dk = new_data_key()
    ct = encrypt(dk, b"1234AB", AAD)
    for i in range(len(ct)):
        tampered = bytearray(ct)
        tampered[i] ^= 0x01
        with pytest.raises(CryptoError):
            decrypt(dk, bytes(tampered), AAD)
    for truncated in (b"", ct[:1], ct[:13], ct[:-1]):
        with pytest.raises(CryptoError):
            decrypt(dk, truncated, AAD)


def test_wrong_data_key_fails() -> None:
    ct = encrypt(new_data_key(), b"secret", AAD)
    with pytest.raises(CryptoError):
        decrypt(new_data_key(), ct, AAD)
    with pytest.raises(CryptoError):
        decrypt(b"short", ct, AAD)
    with pytest.raises(ValueError):
        encrypt(b"short", b"x", AAD)


def test_wrap_unwrap_and_key_id_prefix() -> None:
    dk = new_data_key()
    wrapped = wrap(dk, M1, b"household-42")
    assert wrapped.startswith(b"m1:")
    assert dk not in wrapped
    assert wrapped_key_id(wrapped) == "m1"
    assert unwrap(wrapped, Keyring(M1), b"household-42") == dk
    assert unwrap(wrapped, {"m1": M1}, b"household-42") == dk


def test_unwrap_failures() -> None:
    dk = new_data_key()
    wrapped = wrap(dk, M1, b"household-42")
    with pytest.raises(CryptoError):
        unwrap(wrapped, Keyring(M2), b"household-42")  # key id unknown
    with pytest.raises(CryptoError):
        unwrap(wrapped, {"m1": MasterKey("m1", os.urandom(32))}, b"household-42")  # wrong key
    with pytest.raises(CryptoError):
        unwrap(wrapped, Keyring(M1), b"household-43")  # wrapped key moved to another household
    relabelled = b"m2" + wrapped[2:]
    with pytest.raises(CryptoError):
        unwrap(relabelled, {"m2": M1}, b"household-42")  # key id is authenticated
    for bad in (b"", b"m1", b"m1:", b"m1:short", b"\xff:abc", wrapped[:-1]):
        with pytest.raises(CryptoError):
            unwrap(bad, Keyring(M1), b"household-42")


def test_master_key_rotation() -> None:
    dk = new_data_key()
    ct = encrypt(dk, b"Dorpsstraat 1", AAD)
    old = wrap(dk, M1, b"h")
    rotated_ring = Keyring(current=M2, retired=(M1,))
    # Old wrapped keys still open after rotation ...
    assert unwrap(old, rotated_ring, b"h") == dk
    # ... and rewrap moves them to the new master key without touching the data.
    new = rewrap(old, rotated_ring, b"h")
    assert wrapped_key_id(new) == "m2"
    assert rewrap(new, rotated_ring, b"h") is new
    assert decrypt(unwrap(new, Keyring(M2), b"h"), ct, AAD) == b"Dorpsstraat 1"
    with pytest.raises(CryptoError):
        unwrap(new, Keyring(M1), b"h")


def test_crypto_shredding() -> None:
    # The store keeps only wrapped data key + ciphertext; deleting the wrapped key shreds.
    store = {"wrapped": wrap(new_data_key(), M1, b"h")}
    dk = unwrap(store["wrapped"], Keyring(M1), b"h")
    ct = encrypt(dk, b"123456782", AAD)
    del dk
    del store["wrapped"]
    # Without the data key neither the master key nor any other data key opens the data.
    for key in (M1.key, M2.key, new_data_key()):
        with pytest.raises(CryptoError):
            decrypt(key, ct, AAD)


def test_key_validation() -> None:
    with pytest.raises(ValueError):
        MasterKey("m1", b"short")
    with pytest.raises(ValueError):
        MasterKey("bad id", os.urandom(32))
    with pytest.raises(ValueError):
        MasterKey("", os.urandom(32))
    with pytest.raises(ValueError):
        Keyring(M1, (MasterKey("m1", os.urandom(32)),))
    with pytest.raises(ValueError):
        wrap(b"short", M1)
    assert "key=" not in repr(M1)


def test_record_aad_is_length_prefixed() -> None:
    assert record_aad("ab", "c") != record_aad("a", "bc")
    assert record_aad() == b""


def test_parse_keyring() -> None:
    k1, k2 = os.urandom(32), os.urandom(32)
    ring = parse_keyring(f"m2:{base64.b64encode(k2).decode()}, m1:{base64.b64encode(k1).decode()}")
    assert ring.current == MasterKey("m2", k2)
    assert ring.retired == (MasterKey("m1", k1),)
    dk = new_data_key()
    assert unwrap(wrap(dk, MasterKey("m1", k1)), ring) == dk
    for bad in ("", "m1", "m1:not base64!", f"m1:{base64.b64encode(b'short').decode()}"):
        with pytest.raises(ValueError):
            parse_keyring(bad)
    with pytest.raises(ValueError, match="unique"):
        parse_keyring(f"m1:{base64.b64encode(k1).decode()},m1:{base64.b64encode(k2).decode()}")


def test_seal_opens_with_any_key_of_the_keyring_and_the_same_context_only() -> None:
    from eropaf_intake.adapters.crypto import seal, unseal

    old = parse_keyring("old:" + base64.b64encode(os.urandom(32)).decode())
    sealed = seal(old, b"Jansen 1980-04-01", b"topic:0:7")
    assert b"Jansen" not in sealed
    rotated = parse_keyring(
        "new:"
        + base64.b64encode(os.urandom(32)).decode()
        + ",old:"
        + base64.b64encode(old.current.key).decode()
    )
    assert unseal(rotated, sealed, b"topic:0:7") == b"Jansen 1980-04-01"
    stranger = parse_keyring("x:" + base64.b64encode(os.urandom(32)).decode())
    for keyring, context in ((rotated, b"topic:0:8"), (stranger, b"topic:0:7")):
        with pytest.raises(CryptoError):
            unseal(keyring, sealed, context)
    with pytest.raises(CryptoError):
        unseal(rotated, b"not sealed", b"topic:0:7")
