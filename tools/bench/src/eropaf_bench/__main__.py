"""`python -m eropaf_bench` (what `make bench` runs): the raw-broker yardstick, then intake,
intake + matching, the stack timings, planning and notification, and the whole system end to
end through `eropaf up` (:mod:`eropaf_bench.system`), in one report written to
bench/results/. `--quick`: the yardstick and the end-to-end figure at 10,000 signals on the
embedded PostgreSQL only (about three minutes)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from eropaf_bench.data import signal_messages
from eropaf_bench.database import DEFAULT_SERVER_URL
from eropaf_bench.intake import (
    DEFAULT_INTAKE_INSTANCES,
    DEFAULT_INTAKE_PARTNERS,
    DEFAULT_INTAKE_SIGNALS,
    INTAKE_FLOOR_PER_S,
    IntakeBenchResult,
    run_intake_bench,
)
from eropaf_bench.intake import section_of as intake_section
from eropaf_bench.pipeline import PipelineResult, run_pipeline
from eropaf_bench.pipeline import section_of as pipeline_section
from eropaf_bench.report import DEFAULT_RESULTS_DIR, BenchReport, machine_info, until_sigterm
from eropaf_bench.stack import measure_stack
from eropaf_bench.startup import measure_startup
from eropaf_bench.startup import summary as startup_summary
from eropaf_bench.system import commit
from eropaf_bench.system import describe as system_describe
from eropaf_bench.yardstick import (
    BENCH_PRODUCER,
    DEFAULT_MESSAGES,
    DEFAULT_PARTITIONS,
    YardstickResult,
    run_yardstick,
)


def render(report: BenchReport, result: YardstickResult, written: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="Raw broker yardstick (aiokafka, acks=all)")
    table.add_column("phase")
    table.add_column("messages", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("msg/s", justify="right")
    table.add_column("MB/s", justify="right")
    for figure in (result.produce, result.consume, result.end_to_end):
        mb_s = figure.msgs_per_s * result.mean_message_bytes / 1_000_000
        table.add_row(
            figure.name,
            f"{figure.messages:,}",
            f"{figure.seconds:.2f}",
            f"{figure.msgs_per_s:,.0f}",
            f"{mb_s:.1f}",
        )
    console.print(table)
    for section in report.sections:
        cpu = section.notes.get("intake_cpu_us_per_signal")
        console.print(
            f"{section.name}: {section.headline.msgs_per_s:,.0f} msg/s = "
            f"{report.ratio(section.headline.msgs_per_s):.2f} x yardstick"
            + (
                f" ({section.notes.get('instances', 1)} intake process(es), "
                f"CPU {cpu:,} us/signal, PostgreSQL "
                f"{section.notes.get('postgres_cpu_us_per_signal') or '?'} us/signal; "
                "floor 2,000/s: "
                + ("met)" if section.headline.msgs_per_s >= INTAKE_FLOOR_PER_S else "NOT met)")
                if cpu
                else ""
            )
        )
        if "latency_p99_ms" in section.notes:
            notes = section.notes
            console.print(
                f"  at a steady {notes['steady_rate_per_s']}/s: latency p50 "
                f"{notes['latency_p50_ms']:,} ms, p99 {notes['latency_p99_ms']:,} ms; floors "
                f"{notes['floors']['signals_per_s']}/s and p99 < {notes['floors']['p99_ms']} ms: "
                + ("met" if notes["floors_met"] else "NOT met")
            )
    stack = report.settings.get("stack")
    if stack:
        console.print(
            f"eropaf up: ready in {stack['ready_s']} s (goal {stack['ready_goal_s']:.0f} s), "
            f"stopped in {stack['stop_s']} s, "
            f"{stack['processes_left_after_sigterm']} processes left after SIGTERM"
        )
    if report.settings.get("startup"):
        console.print(startup_summary(report.settings["startup"]), highlight=False)
    for f in report.settings.get("planning", []):
        console.print(
            f"planning, {f['name']}: {f['seconds']:.2f} s, {f['on_time']}/{f['cases']} on time, "
            f"{f['moved']} moved; floor {f['floor']}: " + ("met" if f["ok"] else "NOT met")
        )
    mail = report.settings.get("notification")
    if mail:
        console.print(
            f"notification: {mail['messages_per_s']:,} messages/s rendered and accepted by SMTP; "
            f"VisitPlanned to accepted at {mail['steady_rate_visits_per_s']} visits/s: p50 "
            f"{mail['latency_p50_s']} s, p99 {mail['latency_p99_s']} s; floors "
            f"{mail['floors']['messages_per_s']}/s and p99 < {mail['floors']['latency_p99_s']} s: "
            + ("met" if mail["floors_met"] else "NOT met")
        )
    for run in report.settings.get("system", []):
        print(system_describe(run))  # wide lines: no wrapping at the terminal's width
    machine = report.machine
    console.print(
        f"{machine['cores']} cores, Python {machine['python']}, {machine['platform']}; "
        f"mean value {result.mean_message_bytes:.0f} B; group join {result.group_join_s:.2f} s; "
        f"broker {report.settings['broker']}"
    )
    if written is not None:
        console.print(f"written: {written}")


async def bench(args: argparse.Namespace) -> BenchReport:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    code_commit = commit()  # the code this run runs, before anyone commits meanwhile
    messages = signal_messages(args.messages)
    bootstrap = args.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()

    async def measure(
        servers: str,
    ) -> tuple[YardstickResult, IntakeBenchResult | None, PipelineResult | None]:
        result = await run_yardstick(servers, messages, partitions=args.partitions)
        intake = None
        if args.intake_signals > 0:
            intake = await run_intake_bench(
                servers,
                args.intake_signals,
                partner_count=args.intake_partners,
                database_url=os.environ.get("EROPAF_BENCH_DATABASE_URL", "").strip() or None,
                profile_to=args.intake_profile,
                instances=args.intake_instances,
            )
        pipeline = None
        if args.pipeline_signals > 0:

            async def pipeline_on(servers_: str) -> PipelineResult:
                return await run_pipeline(
                    bootstrap=servers_,
                    database_server_url=os.environ.get("EROPAF_BENCH_DATABASE_URL", "").strip()
                    or DEFAULT_SERVER_URL,
                    signals=args.pipeline_signals,
                    steady_rate=args.steady_rate,
                    steady_seconds=args.steady_seconds,
                    intake_instances=args.pipeline_intake_instances,
                )

            if bootstrap:
                pipeline = await pipeline_on(servers)
            else:
                # A fresh local broker: matching reads intake's topic from its start and must
                # not first chew through the intake section's signals.
                from eropaf_platform.local.broker import LocalBroker

                async with LocalBroker() as fresh:
                    pipeline = await pipeline_on(fresh.bootstrap_servers)
        return result, intake, pipeline

    if bootstrap:
        result, intake, pipeline = await measure(bootstrap)
        broker = f"external {bootstrap}"
    else:
        from eropaf_platform.local.broker import LocalBroker

        async with LocalBroker() as local:
            result, intake, pipeline = await measure(local.bootstrap_servers)
        broker = "local tansu (memory storage)"

    report = BenchReport(
        started_at=started_at,
        machine=machine_info(),
        settings={
            "command": args.command,
            "commit": code_commit,
            "quick": args.quick,
            "load_at_start": load_at_start,
            "messages": args.messages,
            "partitions": args.partitions,
            "broker": broker,
            "mean_message_bytes": round(result.mean_message_bytes, 1),
            "group_join_s": round(result.group_join_s, 3),
            "producer": BENCH_PRODUCER,
            "consumer": {"getmany_max_records": 5_000, "commit": "per batch"},
        },
        yardstick=[result.produce, result.consume, result.end_to_end],
    )
    if intake is not None:
        report.add_section(intake_section(intake))
    if pipeline is not None:
        report.add_section(pipeline_section(pipeline, report))
    if args.stack:
        report.settings["stack"] = await asyncio.to_thread(measure_stack)
        report.settings["startup"] = await asyncio.to_thread(measure_startup)
    if args.planning:
        from dataclasses import asdict

        from eropaf_bench import planning

        figures = await asyncio.to_thread(planning.run)
        report.settings["planning"] = [asdict(f) for f in figures]
    if args.notification:
        from eropaf_bench import notification

        result_n = await notification.run(notification.parse_args([]))
        report.settings["notification"] = result_n["notification"]
    if args.system_signals:
        from eropaf_bench import system

        runs = await system.run_settings(
            signals=args.system_signals,
            steady_seconds=args.system_steady_seconds,
            databases=system.databases_of(args.system_database),
            yardstick_messages=args.messages,
            yardstick_per_s=report.yardstick_msgs_per_s,
            settle_s=args.system_settle_s,
            keep=args.system_keep,
        )
        report.settings["system"] = runs
        for run in runs:
            report.add_section(system.section_of(run))
    written = None if args.no_write else report.write(args.results_dir)
    render(report, result, written)
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from eropaf_bench import system

    parser = argparse.ArgumentParser(
        prog="python -m eropaf_bench",
        description="Raw Kafka broker yardstick, intake, intake + matching, stack timings.",
    )
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES)
    parser.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS)
    parser.add_argument(
        "--bootstrap-servers",
        default=None,
        help="use this broker (default: $KAFKA_BOOTSTRAP_SERVERS, else a local Tansu broker)",
    )
    parser.add_argument(
        "--intake-signals",
        type=int,
        default=DEFAULT_INTAKE_SIGNALS,
        help="signed signals through a real intake process (0: skip the intake section)",
    )
    parser.add_argument("--intake-partners", type=int, default=DEFAULT_INTAKE_PARTNERS)
    parser.add_argument(
        "--intake-instances",
        type=int,
        default=DEFAULT_INTAKE_INSTANCES,
        help="intake processes in one consumer group (scale-out; default: one per core)",
    )
    parser.add_argument(
        "--intake-profile",
        type=Path,
        default=None,
        help="run intake under cProfile and write its stats to this file",
    )
    parser.add_argument(
        "--pipeline-signals",
        type=int,
        default=20_000,
        help="signals through intake + matching processes (0: skip the pipeline section)",
    )
    parser.add_argument(
        "--pipeline-intake-instances",
        type=int,
        default=1,
        help="intake processes in the pipeline section (matching, the bottleneck there, runs "
        "once; a second intake only takes CPU from it on two cores)",
    )
    parser.add_argument("--steady-rate", type=int, default=100, help="signals/s, latency phase")
    parser.add_argument("--steady-seconds", type=int, default=20)
    parser.add_argument(
        "--no-stack", dest="stack", action="store_false", help="skip the eropaf up timings"
    )
    parser.add_argument(
        "--no-planning", dest="planning", action="store_false", help="skip the planning figures"
    )
    parser.add_argument(
        "--no-notification",
        dest="notification",
        action="store_false",
        help="skip the notification figures",
    )
    system.add_arguments(parser)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="about three minutes: the yardstick and the end-to-end figure only (10,000 "
        "signals, 30 s steady, the embedded PostgreSQL); the other sections are skipped",
    )
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    parser.add_argument("--no-write", action="store_true", help="do not write a results file")
    args = parser.parse_args(argv)
    args.command = " ".join(
        ["python -m eropaf_bench", *(argv if argv is not None else sys.argv[1:])]
    )
    if args.quick:
        if args.messages == DEFAULT_MESSAGES:
            args.messages = system.QUICK_YARDSTICK_MESSAGES
        args.intake_signals = args.pipeline_signals = 0
        args.stack = args.planning = args.notification = False
        if args.system_database == "both":
            args.system_database = "embedded"
    args.system_signals = (
        args.system_signals
        if args.system_signals is not None
        else (system.QUICK_SIGNALS if args.quick else system.DEFAULT_SIGNALS)
    )
    args.system_steady_seconds = args.system_steady_seconds or (
        system.QUICK_STEADY_SECONDS if args.quick else system.STEADY_SECONDS
    )
    args.system_settle_s = args.system_settle_s or (
        system.QUICK_SETTLE_S if args.quick else system.SETTLE_S
    )
    if args.messages < 1 or args.partitions < 1:
        parser.error("--messages and --partitions must be positive")
    if (
        args.intake_signals < 0
        or args.intake_partners < 1
        or args.intake_instances < 1
        or args.pipeline_intake_instances < 1
    ):
        parser.error(
            "--intake-signals must be >= 0, --intake-partners and the instance counts positive"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(until_sigterm(bench(parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
