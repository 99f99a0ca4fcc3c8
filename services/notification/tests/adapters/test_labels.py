"""Every reason scheduling can give has words in every language a mail is written in."""

from __future__ import annotations

import pytest

from eropaf_contracts.events import BacklogReason, VisitCancelReason
from eropaf_notification.adapters.rendering import _LABELS, LANGUAGES

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("taal", LANGUAGES)
@pytest.mark.parametrize("reason", [*BacklogReason, *VisitCancelReason])
def test_every_reason_is_put_into_words(taal: str, reason: str) -> None:
    assert _LABELS[taal].get(str(reason), "").strip()
