"""What a signal with an already accepted `ID` is: a duplicate, an update, or a conflict.

Compared on the *normalised* model, so "3431 ab" resent as "3431AB" is a duplicate, not a
change. `status` is excluded: partners may fill it, but it is ours and ignored.
"""

from __future__ import annotations

import hashlib
from datetime import date
from enum import StrEnum

import orjson

from eropaf_contracts.signals import PartnerSignal

__all__ = ["Revision", "canonical_json", "content_fingerprint", "decide_revision"]


class Revision(StrEnum):
    DUPLICATE = "duplicate"  # same content: feedback `duplicate`, no event
    UPDATE = "update"  # later signaaldatum: a new revision of the signal
    CONFLICT = "conflict"  # different content, not newer: rejected with `conflict`


def canonical_json(signal: PartnerSignal) -> bytes:
    """Sorted-key compact JSON of the signal in DDAS names, without nulls and `status`."""
    content = signal.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"status"})
    # orjson writes the same bytes as json.dumps(sort_keys=True, separators=(",", ":"),
    # ensure_ascii=False) -- stored fingerprints stay valid -- in a fraction of the time.
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


def content_fingerprint(signal: PartnerSignal) -> str:
    """SHA-256 (hex) of `canonical_json`.

    Unkeyed on purpose: it is stored next to the encrypted signal inside intake only and never
    leaves it; it must stay comparable across pseudonym-key rotations.
    """
    return hashlib.sha256(canonical_json(signal)).hexdigest()


def decide_revision(
    stored_fingerprint: str, stored_signaaldatum: date | None, new: PartnerSignal
) -> Revision:
    """Decide about `new` given the latest accepted version of the same partner + `ID`."""
    if content_fingerprint(new) == stored_fingerprint:
        return Revision.DUPLICATE
    # Only a strictly later signaaldatum proves a newer version; an equal or missing date
    # cannot tell a correction from a clash of IDs, so the partner must resolve it.
    if (
        new.signaaldatum is not None
        and stored_signaaldatum is not None
        and new.signaaldatum > stored_signaaldatum
    ):
        return Revision.UPDATE
    return Revision.CONFLICT
