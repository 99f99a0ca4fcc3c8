"""Scheduling's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Gauge, Histogram

OPEN_HOME_VISIT_CASES = Gauge(
    "eropaf_scheduling_open_home_visit_cases", "Open cases whose outreach is a home visit"
)
PLANNED_VISITS = Gauge("eropaf_scheduling_planned_visits", "Visits planned in the last plan")
BACKLOG = Gauge("eropaf_scheduling_backlog", "Home-visit cases without a visit by their deadline")
SOLVE_SECONDS = Histogram(
    "eropaf_scheduling_solve_seconds",
    "Time of one planning solve",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
VISITS_MOVED = Histogram(
    "eropaf_scheduling_visits_moved",
    "Previous visits moved by one replan",
    buckets=(0, 1, 2, 5, 10, 20, 50, 100, 500),
)
