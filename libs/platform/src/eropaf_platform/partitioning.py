"""The partition Kafka's clients choose for a key: murmur2 of the key, modulo the count.

The outbox relay builds record batches per partition itself (eropaf_platform.outbox), so it
must choose exactly the partition ``producer.send`` would: consumers rely on one key always
landing on one partition. aiokafka's murmur2 reads the key byte by byte; this one reads
4-byte words with ``struct`` (half the time), and a service's events of one batch share
their keys (a household's case events), so the partition of a recent key is remembered.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence
from functools import lru_cache

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 as the Java client (``Utils.murmur2``) computes it, as an unsigned int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    for k in struct.unpack_from(f"<{length >> 2}I", data):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail:
        base = length - tail
        if tail == 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h = ((h ^ data[base]) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)


@lru_cache(maxsize=8192)
def _index(key: bytes, count: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % count


def partition_for(key: bytes | None, partitions: Sequence[int], available: Sequence[int]) -> int:
    """The partition of ``key`` among ``partitions`` (sorted); a record without a key goes to
    a random available partition (any, if none is available), as the default partitioner."""
    if key is None:
        return random.choice(available or partitions)  # spreading load, not a secret
    return partitions[_index(key, len(partitions))]
