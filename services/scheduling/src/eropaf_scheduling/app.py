"""Wiring of the scheduling service: settings, the case-events subscriber, the debounced
replan job, the staff API; ``python -m eropaf_scheduling``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from pydantic import Field, SecretStr

from eropaf_contracts.region import load_region
from eropaf_contracts.topics import CASES_TOPIC, STAFF_TOPIC, VISITS_TOPIC
from eropaf_platform.logging import get_logger
from eropaf_platform.service import Service
from eropaf_platform.settings import ServiceSettings
from eropaf_scheduling.adapters import metrics
from eropaf_scheduling.api import staff_app
from eropaf_scheduling.domain.planning import Planner
from eropaf_scheduling.handlers import CaseEventsHandler
from eropaf_scheduling.service_layer import services
from eropaf_scheduling.service_layer.services import PlanningConfig
from eropaf_scheduling.service_layer.unit_of_work import sql_units_of_work

__all__ = ["MIGRATIONS", "SchedulingSettings", "build", "build_app", "main"]

log = get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
CASES_CONSUMER = "scheduling-cases"


class SchedulingSettings(ServiceSettings):
    # The internal token lets a service (the staff portal) act for a staff member on the
    # staff API (X-Staff-Code); `eropaf up` gives it the one intake and matching have.
    secret_fields = ("internal_api_token",)

    service_name: str = "scheduling"
    internal_api_token: SecretStr | None = None
    region_file: str | None = Field(default=None, description="region YAML; default Lekstroom")
    horizon_days: int = Field(default=10, ge=1, le=60, description="planning horizon, working days")
    travel_buffer_minutes: int = Field(default=30, ge=0, le=120)
    # the last home-visit attempt where the region file names none (home_visit_attempts)
    max_contact_attempts: int = Field(default=3, ge=1, le=10)
    replan_interval_s: float = Field(default=2.0, gt=0)
    # a burst of changes is one solve: plan once no change came for this long
    replan_quiet_s: float = Field(default=1.0, ge=0)
    # ... but a steady trickle of changes is planned at the latest this long after the first
    replan_max_delay_s: float = Field(default=30.0, gt=0)
    solver_deterministic_time: float = Field(default=5.0, gt=0)
    # a cap on the solver's wall time per replan, for a starved machine (the plan may differ)
    solver_max_seconds: float = Field(default=20.0, gt=0)
    consumer_group_prefix: str = Field(default="eropaf", min_length=1)


def planning_config(settings: SchedulingSettings) -> PlanningConfig:
    return PlanningConfig(
        region=load_region(settings.region_file),
        horizon_days=settings.horizon_days,
        travel_buffer=settings.travel_buffer_minutes,
        fallback_attempts=settings.max_contact_attempts,
    )


def build(
    settings: SchedulingSettings | None = None, *, group_prefix: str | None = None
) -> tuple[Service, PlanningConfig]:
    settings = settings or SchedulingSettings()
    config = planning_config(settings)
    service = Service(
        settings, migrations=MIGRATIONS, topics=[CASES_TOPIC, VISITS_TOPIC, STAFF_TOPIC]
    )
    prefix = group_prefix or settings.consumer_group_prefix
    service.subscribe(
        CASES_TOPIC,
        consumer=CASES_CONSUMER,
        handler=CaseEventsHandler(config),
        group_id=f"{prefix}-{CASES_CONSUMER}",
    )
    planners: list[Planner] = []

    def planner() -> Planner:
        # OR-Tools is imported on the first solve, not at start-up (readiness comes sooner)
        if not planners:
            from eropaf_scheduling.adapters.cpsat_planner import CpSatPlanner

            planners.append(
                CpSatPlanner(
                    max_deterministic_time=settings.solver_deterministic_time,
                    max_seconds=settings.solver_max_seconds,
                )
            )
        return planners[0]

    unit_of_work = sql_units_of_work(service.sessions)

    async def replan_when_due(quiet_s: float = settings.replan_quiet_s) -> None:
        outcome = await services.replan(
            unit_of_work,
            planner(),
            config,
            datetime.now(UTC),
            quiet_s=quiet_s,
            max_delay_s=settings.replan_max_delay_s,
        )
        if outcome is None:
            return
        service.relay.wake()
        plan = outcome.plan
        metrics.SOLVE_SECONDS.observe(plan.solve_seconds)
        metrics.VISITS_MOVED.observe(plan.moved)
        metrics.PLANNED_VISITS.set(len(plan.assignments))
        metrics.BACKLOG.set(len(plan.backlog))
        metrics.OPEN_HOME_VISIT_CASES.set(plan.stats.get("cases", 0))
        log.info(
            "replanned",
            visits=len(plan.assignments),
            backlog=len(plan.backlog),
            moved=plan.moved,
            events=outcome.events,
            solve_s=round(plan.solve_seconds, 3),
        )

    async def replan_now() -> None:
        await replan_when_due(0.0)

    service.every(settings.replan_interval_s, replan_when_due, name="replan")
    service.unit_of_work = unit_of_work  # type: ignore[attr-defined]
    service.replan_now = replan_now  # type: ignore[attr-defined]
    return service, config


def _staff_app(service: Service, config: PlanningConfig) -> FastAPI:
    settings = service.settings
    assert isinstance(settings, SchedulingSettings)
    token = settings.internal_api_token
    app = staff_app(
        config,
        service.unit_of_work,  # type: ignore[attr-defined]
        internal_token=token.get_secret_value() if token else None,
        replan_now=service.replan_now,  # type: ignore[attr-defined]
    )
    app.state.wake_relay = service.relay.wake
    return app


def build_app(settings: SchedulingSettings | None = None) -> tuple[Service, FastAPI]:
    service, config = build(settings)
    return service, service.http_app(_staff_app(service, config))


def main() -> None:
    service, config = build()
    service.run(_staff_app(service, config))
