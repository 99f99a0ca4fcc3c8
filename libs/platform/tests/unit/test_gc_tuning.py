"""The services' garbage-collector settings: fewer passes, and every pause measured."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from eropaf_platform.service import tune_gc

pytestmark = pytest.mark.unit


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds, callbacks = gc.get_threshold(), list(gc.callbacks)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.callbacks[:] = callbacks
        gc.unfreeze()


def pauses(generation: int) -> float:
    labels = {"service": "gc-test", "generation": str(generation)}
    return REGISTRY.get_sample_value("eropaf_gc_pause_seconds_count", labels) or 0.0


def test_every_collection_is_measured_by_generation(restored_gc: None) -> None:
    tune_gc("gc-test")
    assert gc.get_threshold() == (50_000, 20, 20)
    before_full, before_young = pauses(2), pauses(0)
    gc.collect()
    gc.collect(0)
    assert pauses(2) == before_full + 1
    assert pauses(0) == before_young + 1
