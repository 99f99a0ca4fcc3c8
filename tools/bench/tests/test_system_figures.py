"""The end-to-end benchmark's arithmetic: percentiles, the sink's acceptance times, the visit
an invitation is about, CPU differences, latencies per stage and the floors."""

from __future__ import annotations

from datetime import UTC, datetime
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from typing import Any

import pytest

from eropaf_bench.report import percentile
from eropaf_bench.system import (
    Seen,
    accepted_at,
    cpu_delta,
    floors_of,
    invited_visit,
    mail_case,
    proc_status_kb,
    steady_latencies,
)
from eropaf_platform.local.smtp import store_message

pytestmark = pytest.mark.unit


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 99) == 0.0


def test_the_acceptance_time_is_read_from_the_name_the_sink_stores_under(tmp_path: Path) -> None:
    when = datetime(2026, 12, 3, 17, 5, 9, 123456, tzinfo=UTC)
    stored = store_message(tmp_path, b"Message-ID: <x@y>\r\n\r\nhi", now=when)
    assert accepted_at(stored.name) == pytest.approx(when.timestamp())
    assert accepted_at(".incoming-abc.tmp") is None


def _invite(visit_id: str) -> bytes:
    ics = f"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:visit-{visit_id}@eropaf.local\r\n"
    body = MIMEMultipart("alternative")
    body.attach(MIMEText("text", "plain", "utf-8"))
    body.attach(MIMEText(ics + "END:VEVENT\r\nEND:VCALENDAR\r\n", "calendar", "utf-8"))
    message = MIMEMultipart("mixed")
    message.attach(body)
    message.attach(MIMEBase("application", "ics"))
    return message.as_bytes()


def test_an_invitation_names_its_visit_even_base64_encoded() -> None:
    content = _invite("v-42")
    assert b"visit-v-42" not in content  # the calendar part is base64
    assert invited_visit(content) == "v-42"
    assert invited_visit(b"Subject: reminder\r\n\r\nno calendar") is None


def test_a_staff_mail_names_its_case_in_the_folded_subject() -> None:
    folded = b"Subject: Nieuwe casus (telefonisch contact) - casus\r\n d23f6a37e716\r\n\r\nx"
    assert mail_case(folded) == "d23f6a37e716"
    assert mail_case(b"Subject: Dagoverzicht\r\n\r\nx") is None


def test_peak_memory_and_cpu_differences() -> None:
    status = "Name:\tpython\nVmPeak:\t  900 kB\nVmHWM:\t  123456 kB\nVmRSS:\t 1000 kB\n"
    assert proc_status_kb(status, "VmHWM") == 123456
    assert proc_status_kb(status, "VmSwap") == 0
    # pid 2 appeared meanwhile (counts from zero), pid 3 is gone (lost), pid 1 grew by 1.5
    assert cpu_delta({1: 10.0, 3: 4.0}, {1: 11.5, 2: 0.25}) == pytest.approx(1.75)


def test_latencies_per_stage_of_the_steady_phase() -> None:
    seen = Seen(
        feedback={"ce-a": 100.05, "ce-b": 101.10},
        case={"a": 100.10, "b": 101.20},
        decided={"case-1": {"a", "b"}, "case-2": {"earlier"}, "case-3": {"c"}},
        home_visit={"case-1", "case-3"},
        renamed={"case-1": "case-1b"},  # re-keyed after the decision
        planned={"case-1b": 103.0},
        visit_case={"v-1": "case-1b"},
    )
    sent = {"a": 100.0, "b": 101.0, "c": 102.0}
    sent_ce = {"ce-a": 100.0, "ce-b": 101.0, "ce-c": 102.0}
    mails = [
        (101.5, "case-1", None),  # the new-case mail
        (103.5, "case-1b", "v-1"),
        (103.2, "case-1b", "v-1"),
        (104.0, None, None),
    ]
    got = steady_latencies(seen, sent, sent_ce, mails)
    assert got["accepted_feedback"]["count"] == 2
    assert got["accepted_feedback"]["missing"] == 1
    assert got["accepted_feedback"]["p50_ms"] == pytest.approx(100.0)
    assert got["accepted_feedback"]["p99_ms"] is None  # the missing one is beyond the wait
    assert got["case_event"]["p50_ms"] == pytest.approx(200.0)
    # timed from the later of the case's signals (b at 101.0); case-2's signal was not sent
    # in the steady phase, so it has no latency; case-3 never got a visit (missing)
    assert got["visit_planned"]["count"] == 1
    assert got["visit_planned"]["p50_ms"] == pytest.approx(2000.0)
    assert got["visit_planned_or_backlog"]["missing"] == 1
    assert got["visit_invite"]["p50_ms"] == pytest.approx(2200.0)  # the first invitation
    assert got["invite_after_planned"]["p50_ms"] == pytest.approx(200.0)  # from VisitPlanned
    assert got["staff_mail"]["count"] == 1
    assert got["staff_mail"]["p50_ms"] == pytest.approx(500.0)


def _run(signals: int, ratio: float, p99_case: float, p99_mail: float, rss: float) -> Any:
    return {
        "signals": signals,
        "throughput": {"case_event": {"ratio_to_yardstick": ratio}},
        "latency": {
            "case_event": {"p99_ms": p99_case},
            "staff_mail": {"p99_ms": p99_mail},
            "visit_invite": {"p99_ms": None if p99_mail == 0 else p99_mail},
        },
        "peak_rss_mb": {"intake": 120.0, "matching": rss, "broker": 900.0},
    }


def test_floors() -> None:
    assert floors_of(_run(100_000, 0.06, 250, 1500, 290)) == {
        "case_event_ratio": True,
        "p99_case_event": True,
        "p99_staff_mail": True,
        "rss_per_service": True,  # the broker is not a service
    }
    missed = floors_of(_run(100_000, 0.04, 300, 0, 301))
    assert not any(missed.values())  # no mail within the wait (None) meets no floor
    assert "rss_per_service" not in floors_of(_run(10_000, 0.06, 250, 1500, 290))
