"""Wiring of the matching service: settings, subscribers, topics; ``python -m eropaf_matching``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import Field, SecretStr

from eropaf_contracts.region import Region, load_region
from eropaf_contracts.topics import (
    CASES_TOPIC,
    CREDITOR_FEEDBACK_TOPIC,
    INTAKE_SIGNALS_TOPIC,
    VISITS_TOPIC,
)
from eropaf_matching.adapters.case_cache import CaseCache
from eropaf_matching.domain.triage import RegionPolicy
from eropaf_matching.handlers import NotPickedUpSweep, SignalEventsHandler, VisitEventsHandler
from eropaf_matching.policy import load_policy
from eropaf_platform.service import Service
from eropaf_platform.settings import ServiceSettings

__all__ = ["MIGRATIONS", "MatchingSettings", "build", "build_app", "load_rules", "main"]

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
SIGNALS_CONSUMER = "matching-signals"
VISITS_CONSUMER = "matching-visits"


class MatchingSettings(ServiceSettings):
    # The internal token: the bearer token of matching's internal read API (api.py), and
    # how matching and the CLI read personal data from intake for the DDAS export.
    secret_fields = ("internal_api_token",)

    service_name: str = "matching"
    region_file: str | None = Field(default=None, description="region YAML; default Lekstroom")
    policy_file: str | None = Field(default=None, description="triage policy YAML")
    intake_url: str | None = Field(default=None, description="intake's base URL (internal API)")
    internal_api_token: SecretStr | None = None
    # Overrides the policy's ``herhaalde_melding_dagen`` for every municipality when set.
    repeat_window_days: int | None = Field(default=None, ge=1)
    # Scheduling is not there yet; its topic is subscribed only when this is on.
    consume_visits: bool = True
    # Consumer groups are ``<prefix>-<consumer>``; another prefix reads the topics afresh
    # (e.g. a second matching database fed from the same broker, or a benchmark run).
    consumer_group_prefix: str = Field(default="eropaf", min_length=1)
    # How often to look for cases not picked up whose wait is over (0: never, e.g. when
    # `eropaf matching sweep` runs from cron). It goes by date, so hourly closes each on
    # the first run of its day, and a restart does not put it off by a day.
    sweep_interval_s: float = Field(default=3600, ge=0)


def load_rules(settings: MatchingSettings) -> tuple[RegionPolicy, Region]:
    """Region and triage policy from the configured files (fail at start-up when invalid)."""
    region = load_region(settings.region_file)
    policy = load_policy(settings.policy_file, region=region)
    if settings.repeat_window_days is not None:
        window = settings.repeat_window_days
        policy = policy.model_copy(
            update={
                "defaults": policy.defaults.model_copy(update={"herhaalde_melding_dagen": window}),
                "gemeenten": {
                    code: p.model_copy(update={"herhaalde_melding_dagen": window})
                    for code, p in policy.gemeenten.items()
                },
            }
        )
    return policy, region


def build(settings: MatchingSettings | None = None, *, group_prefix: str | None = None) -> Service:
    """The service, not started. ``group_prefix`` (default: the settings'
    ``consumer_group_prefix``): consumer groups are ``<prefix>-<consumer>`` (tests give each
    service its own groups, so that none waits for another's rebalance)."""
    settings = settings or MatchingSettings()
    group_prefix = group_prefix or settings.consumer_group_prefix
    policy, region = load_rules(settings)
    topics = [INTAKE_SIGNALS_TOPIC, CASES_TOPIC, CREDITOR_FEEDBACK_TOPIC]
    if settings.consume_visits:
        topics.append(VISITS_TOPIC)
    service = Service(settings, migrations=MIGRATIONS, topics=topics)
    # One copy of the cases for every writer of cases in this process (adapters.case_cache).
    cases = CaseCache()
    service.subscribe(
        INTAKE_SIGNALS_TOPIC,
        consumer=SIGNALS_CONSUMER,
        handler=SignalEventsHandler(policy, region, cases),
        group_id=f"{group_prefix}-{SIGNALS_CONSUMER}",
    )
    if settings.consume_visits:
        service.subscribe(
            VISITS_TOPIC,
            consumer=VISITS_CONSUMER,
            handler=VisitEventsHandler(policy, region, cases),
            group_id=f"{group_prefix}-{VISITS_CONSUMER}",
        )
    if settings.sweep_interval_s > 0:
        sweep = NotPickedUpSweep(policy, region, cases)

        async def sweep_not_picked_up() -> None:
            # Dates as on the signals: opened_on is the UTC date a signal was received.
            if await sweep.run(service.sessions, datetime.now(UTC).date()):
                service.relay.wake()

        service.every(settings.sweep_interval_s, sweep_not_picked_up, name="sweep-not-picked-up")
    return service


def internal_api(service: Service, app: FastAPI | None = None) -> FastAPI:
    """The internal read API (``api.py``) on the service's database, on ``app`` or a new
    app."""
    from eropaf_matching.adapters.case_reader import SqlCaseReader
    from eropaf_matching.adapters.intake_client import IntakeClient
    from eropaf_matching.api import internal_app
    from eropaf_matching.domain.ddas_export import PersonalRecords

    settings = service.settings
    assert isinstance(settings, MatchingSettings) and settings.internal_api_token is not None
    token = settings.internal_api_token.get_secret_value()
    intake_url = settings.intake_url

    def personal_records_for(accessor: str) -> PersonalRecords:
        assert intake_url is not None

        def read(refs: list[str]) -> Any:
            with IntakeClient(intake_url, token, accessor=accessor) as client:
                return client.ddas_records(refs)

        return read

    return internal_app(
        app,
        token=token,
        reader=SqlCaseReader(service.sessions),
        region=load_region(settings.region_file),
        personal_records_for=personal_records_for if intake_url else None,
    )


def build_app(settings: MatchingSettings | None = None) -> tuple[Service, FastAPI]:
    service = build(settings)
    return service, service.http_app(internal_api(service))


def main() -> None:
    service = build()
    service.run(internal_api(service))
