"""The relay's partition choice is the one every Kafka client makes for the same key."""

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as clients_murmur2

from eropaf_platform.partitioning import murmur2, partition_for

pytestmark = pytest.mark.unit


def test_murmur2_equals_the_clients_for_every_length_and_byte() -> None:
    rng = random.Random(4)
    for length in range(0, 130):
        for _ in range(25):
            key = bytes(rng.randrange(256) for _ in range(length))
            assert murmur2(key) == clients_murmur2(key), key


def test_the_java_clients_test_vectors() -> None:
    # Kafka's UtilsTest.testMurmur2: signed 32-bit results of the Java client.
    vectors = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for key, signed in vectors.items():
        assert murmur2(key) == signed & 0xFFFFFFFF, key


def test_a_key_lands_on_the_partition_the_default_partitioner_chooses() -> None:
    rng = random.Random(9)
    default = DefaultPartitioner()
    for count in (1, 2, 3, 4, 12):
        partitions = list(range(count))
        for _ in range(300):
            key = rng.randbytes(rng.randrange(1, 80))
            assert partition_for(key, partitions, partitions) == default(
                key, partitions, partitions
            )
            # remembered or not, the same answer
            assert partition_for(key, partitions, partitions) == default(
                key, partitions, partitions
            )


def test_a_record_without_key_goes_to_an_available_partition() -> None:
    assert {partition_for(None, [0, 1, 2], [2]) for _ in range(20)} == {2}
    assert {partition_for(None, [0, 1], []) for _ in range(50)} <= {0, 1}
