"""The service-layer tests' unit of work: in memory, no database."""

from __future__ import annotations

import pytest

from eropaf_contracts.region import load_region
from eropaf_matching.policy import load_policy

from .fakes import FakeMatchingUnitOfWork

REGION = load_region()
POLICY = load_policy(region=REGION)


@pytest.fixture
def uow() -> FakeMatchingUnitOfWork:
    return FakeMatchingUnitOfWork(POLICY, REGION)
