"""Wiring of the scheduling service: settings, the case-events subscriber, the debounced
replan job, the staff API; ``python -m eropaf_scheduling``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from pydantic import Field

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
    service_name: str = "scheduling"
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

            planners.append(CpSatPlanner(max_deterministic_time=settings.solver_deterministic_time))
        return planners[0]

    unit_of_work = sql_units_of_work(service.sessions)

    async def replan_when_due() -> None:
        outcome = await services.replan(
            unit_of_work,
            planner(),
            config,
            datetime.now(UTC),
            quiet_s=settings.replan_quiet_s,
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

    service.every(settings.replan_interval_s, replan_when_due, name="replan")
    service.unit_of_work = unit_of_work  # type: ignore[attr-defined]
    return service, config


def build_app(settings: SchedulingSettings | None = None) -> tuple[Service, FastAPI]:
    service, config = build(settings)
    app = staff_app(config, service.unit_of_work)  # type: ignore[attr-defined]
    app.state.wake_relay = service.relay.wake
    return service, service.http_app(app)


def main() -> None:
    service, config = build()
    app = staff_app(config, service.unit_of_work)  # type: ignore[attr-defined]
    app.state.wake_relay = service.relay.wake
    service.run(app)
