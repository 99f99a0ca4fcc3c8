from __future__ import annotations

import pytest

from eropaf_platform.outbox import OutgoingMessage
from eropaf_platform.unit_of_work import FakeUnitOfWork

pytestmark = pytest.mark.unit


def _msg(n: int) -> OutgoingMessage:
    return OutgoingMessage(topic="t", key=str(n), value=b"{}", event_id=f"e{n}")


async def test_commit_publishes_what_was_queued_in_order() -> None:
    uow = FakeUnitOfWork()
    async with uow:
        uow.queue([_msg(1), _msg(2)])
        assert [m.event_id for m in uow.queued] == ["e1", "e2"]
        assert uow.published == []
        await uow.commit()
    assert [m.event_id for m in uow.published] == ["e1", "e2"]
    assert uow.commits == 1 and uow.queued == []


async def test_an_error_drops_what_was_queued() -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(RuntimeError):
        async with uow:
            uow.queue([_msg(1)])
            raise RuntimeError("boom")
    assert uow.published == [] and uow.queued == []


async def test_leaving_without_commit_publishes_nothing() -> None:
    uow = FakeUnitOfWork()
    async with uow:
        uow.queue([_msg(1)])
    assert uow.published == [] and uow.commits == 0
