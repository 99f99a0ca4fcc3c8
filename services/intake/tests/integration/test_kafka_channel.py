"""The Kafka channel end to end: signed signals in, feedback and pseudonymous events out."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest

from eropaf_contracts.envelope import Envelope
from eropaf_contracts.topics import INTAKE_SIGNALS_TOPIC

from .support import (
    feedback_by_ce_id,
    intake_settings,
    onboard,
    publish_signals,
    read_topic,
    running_intake,
    signal,
)

pytestmark = pytest.mark.integration


async def test_signed_signal_is_accepted_and_announced_pseudonymously(
    kafka_bootstrap_servers: str, fresh_database_url: Callable[[], str]
) -> None:
    settings = intake_settings(kafka_bootstrap_servers, fresh_database_url())
    code = f"corp-{uuid.uuid4().hex[:6]}"
    partner = await onboard(settings, code)
    sent = signal()
    async with running_intake(settings):
        [ce_id] = await publish_signals(kafka_bootstrap_servers, partner, [sent])
        feedback = await feedback_by_ce_id(kafka_bootstrap_servers, partner, expect=1)
        assert feedback[ce_id]["status"] == "accepted", feedback
        assert feedback[ce_id]["ID"] == sent["ID"]
        events = [
            Envelope.from_bytes(r.value)
            for r in await read_topic(kafka_bootstrap_servers, INTAKE_SIGNALS_TOPIC, expect=1)
        ]
        mine = [e for e in events if e.data["partner_code"] == code]
        assert len(mine) == 1
        data = mine[0].data
        assert data["gemeentecode"] == "0356" and data["postcode_area"] == "3431"
        assert set(data["match_tokens"]) == {
            "bsn",
            "birth_surname",
            "birth_initials_address",
            "address",
        }
        text = json.dumps(data)
        for personal in ("Dijk", "111222333", "1980-04-01", "Dorpsstraat", "3431AB", "3431 AB"):
            assert personal not in text
