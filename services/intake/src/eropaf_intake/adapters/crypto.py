"""Envelope encryption of personal data at rest.

Every household gets its own random AES-256 data key; its personal data is encrypted with
AES-256-GCM under that key, and only the data key *wrapped* by a master key is stored.
Deleting a household's wrapped data key makes all its ciphertext unreadable at once
(crypto-shredding), also in backups. Wrapped keys start with the id of the master key that
wrapped them, so master keys can be rotated: old ids stay in the keyring for unwrapping,
`rewrap` moves a data key to the current master key without touching the data.

Associated data binds a ciphertext to its record (household id + field): a ciphertext copied
into another row or column fails to decrypt instead of silently showing someone else's data.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "DATA_KEY_BYTES",
    "CryptoError",
    "Keyring",
    "MasterKey",
    "decrypt",
    "encrypt",
    "new_data_key",
    "parse_keyring",
    "record_aad",
    "rewrap",
    "unwrap",
    "wrap",
    "wrapped_key_id",
]

DATA_KEY_BYTES = 32  # AES-256
_NONCE_BYTES = 12  # 96-bit, the GCM standard size; random per encryption
_CIPHERTEXT_VERSION = b"\x01"
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_KEY_ID_SEPARATOR = b":"
_WRAP_CONTEXT = b"eropaf/data-key-wrap/v1\x00"


class CryptoError(Exception):
    """Decryption or unwrapping failed: wrong key, wrong record, tampered or truncated data.

    Deliberately one type with a fixed message: no oracle on *why* it failed.
    """


@dataclass(frozen=True, slots=True)
class MasterKey:
    key_id: str
    key: bytes = field(repr=False)  # never in logs or tracebacks

    def __post_init__(self) -> None:
        if not _KEY_ID.fullmatch(self.key_id):
            raise ValueError("master key id must be 1-32 characters of [A-Za-z0-9_-]")
        if len(self.key) != DATA_KEY_BYTES:
            raise ValueError(f"master key must be {DATA_KEY_BYTES} bytes")


@dataclass(frozen=True, slots=True)
class Keyring:
    """The current master key (wraps new data keys) plus retired ones (only unwrap)."""

    current: MasterKey
    retired: tuple[MasterKey, ...] = ()

    def __post_init__(self) -> None:
        ids = [self.current.key_id, *(k.key_id for k in self.retired)]
        if len(set(ids)) != len(ids):
            raise ValueError("master key ids must be unique")

    def by_id(self) -> Mapping[str, MasterKey]:
        return {k.key_id: k for k in (self.current, *self.retired)}


def parse_keyring(spec: str) -> Keyring:
    """A keyring from a setting `"<id>:<base64 key>[,<id>:<base64 key>...]"`; first is current.

    Rotation = prepend a new key and keep the old ones listed until everything is rewrapped.
    """
    keys: list[MasterKey] = []
    for item in spec.split(","):
        key_id, separator, encoded = item.strip().partition(":")
        if not separator:
            raise ValueError("master keys must be given as <id>:<base64 key>")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            # Never put the (partial) secret into the message.
            raise ValueError(f"master key {key_id!r} is not valid base64") from exc
        keys.append(MasterKey(key_id, key))
    return Keyring(current=keys[0], retired=tuple(keys[1:]))


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=DATA_KEY_BYTES * 8)


def record_aad(*parts: str) -> bytes:
    """Associated data for a record, e.g. `record_aad(household_id, "client.Achternaam")`.

    Length-prefixed so that ("ab", "c") and ("a", "bc") differ.
    """
    out = bytearray()
    for part in parts:
        encoded = part.encode("utf-8")
        out += struct.pack(">I", len(encoded)) + encoded
    return bytes(out)


def _wrap_aad(key_id: str, associated_data: bytes) -> bytes:
    # The key id is authenticated, so relabelling a wrapped key with another id fails.
    return _WRAP_CONTEXT + record_aad(key_id) + associated_data


def wrap(data_key: bytes, master: MasterKey, associated_data: bytes = b"") -> bytes:
    """`<key id>:<nonce><AES-GCM(data key)>`; pass the household id as associated data."""
    if len(data_key) != DATA_KEY_BYTES:
        raise ValueError(f"data key must be {DATA_KEY_BYTES} bytes")
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(master.key).encrypt(nonce, data_key, _wrap_aad(master.key_id, associated_data))
    return master.key_id.encode("ascii") + _KEY_ID_SEPARATOR + nonce + sealed


def wrapped_key_id(wrapped: bytes) -> str:
    """The id of the master key that wrapped `wrapped` (to find keys still needing rotation)."""
    key_id, separator, _ = wrapped.partition(_KEY_ID_SEPARATOR)
    try:
        text = key_id.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    if not separator or not _KEY_ID.fullmatch(text):
        raise CryptoError("cannot unwrap data key")
    return text


def unwrap(
    wrapped: bytes, keyring: Keyring | Mapping[str, MasterKey], associated_data: bytes = b""
) -> bytes:
    key_id = wrapped_key_id(wrapped)
    keys = keyring.by_id() if isinstance(keyring, Keyring) else keyring
    master = keys.get(key_id)
    if master is None:
        raise CryptoError("cannot unwrap data key")
    body = wrapped[len(key_id) + len(_KEY_ID_SEPARATOR) :]
    nonce, sealed = body[:_NONCE_BYTES], body[_NONCE_BYTES:]
    if len(nonce) != _NONCE_BYTES:
        raise CryptoError("cannot unwrap data key")
    try:
        return AESGCM(master.key).decrypt(nonce, sealed, _wrap_aad(key_id, associated_data))
    except InvalidTag as exc:
        raise CryptoError("cannot unwrap data key") from exc


def rewrap(wrapped: bytes, keyring: Keyring, associated_data: bytes = b"") -> bytes:
    """Re-wrap a data key under the keyring's current master key (rotation); data untouched."""
    if wrapped_key_id(wrapped) == keyring.current.key_id:
        return wrapped
    return wrap(unwrap(wrapped, keyring, associated_data), keyring.current, associated_data)


def encrypt(data_key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """`<version><nonce><ciphertext+tag>` under AES-256-GCM with a fresh random nonce.

    Random 96-bit nonces are safe far beyond the number of fields one household key encrypts.
    """
    if len(data_key) != DATA_KEY_BYTES:
        raise ValueError(f"data key must be {DATA_KEY_BYTES} bytes")
    nonce = os.urandom(_NONCE_BYTES)
    return (
        _CIPHERTEXT_VERSION
        + nonce
        + AESGCM(data_key).encrypt(nonce, plaintext, _CIPHERTEXT_VERSION + associated_data)
    )


def decrypt(data_key: bytes, ciphertext: bytes, associated_data: bytes) -> bytes:
    if len(data_key) != DATA_KEY_BYTES:
        raise CryptoError("cannot decrypt")
    version, nonce = ciphertext[:1], ciphertext[1 : 1 + _NONCE_BYTES]
    if version != _CIPHERTEXT_VERSION or len(nonce) != _NONCE_BYTES:
        raise CryptoError("cannot decrypt")
    try:
        return AESGCM(data_key).decrypt(
            nonce, ciphertext[1 + _NONCE_BYTES :], _CIPHERTEXT_VERSION + associated_data
        )
    except InvalidTag as exc:
        raise CryptoError("cannot decrypt") from exc


_SEAL_FORMAT = "eropaf-sealed-v1"


def seal(keyring: Keyring, plaintext: bytes, context: bytes) -> bytes:
    """A self-contained envelope (JSON) for bytes that must leave the encrypted store, e.g. a
    partner message on its way to a dead-letter topic: a fresh data key, wrapped by the
    current master key, encrypts it; ``context`` (e.g. topic and offset) is authenticated."""
    data_key = new_data_key()
    return orjson.dumps(
        {
            "format": _SEAL_FORMAT,
            "wrapped_key": base64.b64encode(wrap(data_key, keyring.current, context)).decode(),
            "ciphertext": base64.b64encode(encrypt(data_key, plaintext, context)).decode(),
        }
    )


def unseal(keyring: Keyring, sealed: bytes, context: bytes) -> bytes:
    """The bytes :func:`seal` was given (with any master key of the keyring)."""
    try:
        document = orjson.loads(sealed)
        if document.get("format") != _SEAL_FORMAT:
            raise CryptoError("not a sealed message")
        data_key = unwrap(base64.b64decode(document["wrapped_key"]), keyring, context)
        return decrypt(data_key, base64.b64decode(document["ciphertext"]), context)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CryptoError("not a sealed message") from exc
