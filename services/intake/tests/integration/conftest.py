"""Module-scoped infrastructure: one database (and so one running intake) per test module,
because a consumer group join costs seconds on the local broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eropaf_platform.testing.fixtures import DatabaseRegistry


@pytest.fixture(scope="module")
def module_database_url(postgres_server_url: str) -> Iterator[str]:
    registry = DatabaseRegistry(postgres_server_url)
    try:
        yield registry.create("eropaf_intake_it")
    finally:
        registry.drop_all()
