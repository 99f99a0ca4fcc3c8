"""`make demo`: one simulated month of the region against the local stack.

Start `eropaf up` on a fresh data dir, onboard the region's partners (`eropaf partner
onboard-region`), import the demo roster, replay the month (signed Kafka messages; one
corporation's weekly CSV over HTTP) compressed into `replay_seconds`, wait until every message
has its feedback and every household its case, let simulated staff work the visits, then print
the summary, write the report folder and stop the stack (or leave it with `keep`).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from eropaf_demo.replay import (
    Observed,
    PartnerAccess,
    Publisher,
    Watcher,
    publish_day,
    signal_refs_of,
)
from eropaf_demo.simulate import Month, simulate_month
from eropaf_demo.stack import DemoError, Stack, eropaf_here
from eropaf_demo.staff import StaffResult, import_roster, read_roster, roster_path, simulate_staff
from eropaf_demo.summary import Check, Summary, build_summary, render

__all__ = ["DemoOptions", "run", "run_month"]


@dataclass
class DemoOptions:
    seed: int = 1
    signals: int = 700
    report_dir: str | Path = "demo-report"
    keep: bool = False
    replay_seconds: float = 12.0
    data_dir: Path | None = None  # default: a new temporary directory
    today: date | None = None
    quiet: bool = False  # no live display (tests, CI logs)
    settle_timeout: float = 90.0
    up_args: tuple[str, ...] = ()  # e.g. ("--database-url", URL): an existing server


class _Display:
    """The live progress display (rich), or nothing when quiet."""

    def __init__(self, quiet: bool) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        # Bound to the real stdout: in-process commands redirect sys.stdout while they run.
        self.console = Console(file=sys.stdout, quiet=quiet)
        self.progress = Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=quiet,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Display:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def task(self, name: str, total: float | None, note: str = "") -> None:
        self.tasks[name] = self.progress.add_task(name, total=total, note=note)

    def update(
        self,
        name: str,
        *,
        completed: float | None = None,
        note: str | None = None,
        total: float | None = None,
    ) -> None:
        fields: dict[str, Any] = {}
        if note is not None:
            fields["note"] = note
        self.progress.update(self.tasks[name], completed=completed, total=total, **fields)

    def log(self, text: str) -> None:
        self.progress.console.log(text) if not self.progress.disable else None


def _onboard(data_dir: Path, info: dict[str, Any]) -> dict[str, PartnerAccess]:
    """Every partner of the region file, with a generated key pair and an HTTP token.

    What `eropaf partner onboard-region` does, through intake's partner library in one
    transaction and one topic creation (the command connects anew per partner: tens of
    seconds on a busy machine); the command is the fallback."""
    try:
        return asyncio.run(_onboard_at_once(data_dir, info))
    except Exception as exc:  # e.g. a masked database password in stack.json
        print(f"onboarding through the library failed ({exc}); using the command")
    result = eropaf_here("partner", "onboard-region", "--data-dir", str(data_dir), "--json")
    if result.returncode != 0:
        raise DemoError(f"onboarding failed: {result.stderr.strip()[:500]}")
    done = json.loads(result.stdout)["onboarded"]
    return {
        d["code"]: PartnerAccess(d["code"], Path(d["private_key_file"]), d["token"]) for d in done
    }


async def _onboard_at_once(data_dir: Path, info: dict[str, Any]) -> dict[str, PartnerAccess]:
    from eropaf_contracts.region import load_region
    from eropaf_intake import partners as intake_partners
    from eropaf_intake.cli import write_private_key
    from eropaf_platform import db
    from eropaf_platform.broker import ensure_topics
    from eropaf_platform.settings import ServiceSettings

    region = load_region(None)
    keys = data_dir / "partner-keys"
    keys.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = db.make_engine(info["database_urls"]["intake"], pool_size=1)
    try:
        async with db.transaction(db.make_sessions(engine)) as session:
            done = [
                await intake_partners.onboard(session, p.code, p.name, [t.value for t in p.types])
                for p in region.partners
            ]
            settings = ServiceSettings(
                service_name="demo-onboarding",
                database_url="unused",
                kafka_bootstrap_servers=info["bootstrap_servers"],
            )
            await ensure_topics(settings, [t for d in done for t in d.topics])
            access = {}
            for d in done:
                assert d.private_key_pem is not None
                write_private_key(keys / f"{d.code}.pem", d.private_key_pem)
                access[d.code] = PartnerAccess(d.code, keys / f"{d.code}.pem", d.token)
            return access
    finally:
        await engine.dispose()


async def _replay(
    month: Month,
    info: dict[str, Any],
    partners: dict[str, PartnerAccess],
    options: DemoOptions,
    display: _Display,
    refs: dict[str, tuple[str, str]],
    staff_step: Callable[
        [Callable[[], set[str]], Callable[[str], None], Callable[[], dict[str, dict[str, Any]]]],
        StaffResult,
    ],
) -> tuple[dict[int, dict[str, Any]], Observed, StaffResult]:
    publisher = Publisher(info["bootstrap_servers"], info["intake_url"], partners)
    watcher = Watcher(info["bootstrap_servers"], sorted(partners), publisher, set(refs))
    await publisher.start()
    await watcher.start()
    total = len(month.messages)
    display.task("replaying the month", total)
    display.task("answered (feedback)", total)
    display.task("cases", month.expected_cases)
    expected_cases = month.expected_cases

    def tick() -> None:
        display.update("answered (feedback)", completed=len(watcher.all_feedback()))
        observed = watcher.observed
        display.update(
            "cases",
            completed=len(observed.open_cases()),
            note=f"{len(observed.outreach)} outreach decided",
        )

    try:
        days = (month.end - month.start).days + 1
        pause = options.replay_seconds / days
        http_buffer: list[Any] = []
        held: list[Any] = []
        ref_of = {pid: ref for ref, pid in refs.items()}
        households = {h.ref: h for h in month.households}

        def ready(m: Any) -> bool:
            signals = households[m.household].signal_ids if m.household in households else []
            return all(ref_of[s] in watcher.seen_refs for s in signals)

        for offset in range(days):
            day = month.start + timedelta(days=offset)
            due = day.weekday() == 4 or day == month.end
            started = time.monotonic()
            await publish_day(publisher, month, day, due, http_buffer, held, ready)
            display.update("replaying the month", completed=publisher.sent, note=f"{day:%a %d %b}")
            tick()
            await asyncio.sleep(max(0.0, pause - (time.monotonic() - started)))
        deadline = time.monotonic() + options.settle_timeout
        while held and time.monotonic() < deadline:
            releasable = [m for m in held if ready(m)]
            held[:] = [m for m in held if m not in releasable]
            await publisher.send_kafka(releasable)
            display.update("replaying the month", completed=publisher.sent, note="payments")
            tick()
            await asyncio.sleep(0.2)
        if held:
            await publisher.send_kafka(held)  # late: their households never showed up
        display.update("replaying the month", completed=publisher.sent, note="done")

        def settled() -> bool:
            observed = watcher.observed
            open_cases = observed.open_cases()
            return (
                len(watcher.all_feedback()) >= total
                and len(open_cases) >= expected_cases
                and open_cases.keys() <= observed.outreach.keys()
            )

        await watcher.wait(settled, options.settle_timeout, quiet=1.5, tick=tick)
        tick()

        def home_visit_cases() -> set[str]:
            open_cases = watcher.observed.open_cases()
            return {
                ref
                for ref, d in watcher.observed.outreach.items()
                if d.get("outreach") == "home_visit" and ref in open_cases
            }

        display.task("staff", None, note="importing roster")

        def status(text: str) -> None:
            display.update("staff", note=text)

        staff = await asyncio.to_thread(
            staff_step, home_visit_cases, status, watcher.observed.open_cases
        )
        status(staff.note)
        await asyncio.sleep(1.0)  # the last visit events
        return watcher.all_feedback(), watcher.observed, staff
    finally:
        await watcher.stop()
        await publisher.stop()


def _preload() -> None:
    """Import what the later steps need while the stack starts: on a busy machine these
    imports take tens of seconds, and waiting for the stack leaves this process idle."""
    import importlib

    import matplotlib

    matplotlib.use("Agg")
    for module in (
        "eropaf_intake.partners", "eropaf_intake.client", "eropaf_intake.cli",
        "eropaf_platform.broker", "eropaf_platform.db", "eropaf_cli.main",
        "eropaf_matching.cli", "eropaf_matching.domain.ddas_export",
        "eropaf_matching.adapters.repository", "aiokafka", "httpx", "jinja2",
        "matplotlib.pyplot",
    ):  # fmt: skip
        try:
            importlib.import_module(module)
        except ImportError:
            pass  # the step that needs it reports it


def run_month(
    options: DemoOptions,
    stack: Stack,
    display: _Display,
    release: Callable[[], None] = lambda: None,
) -> Summary:
    """Everything between a started stack and the report: returns the summary. `release` is
    called once the stack is no longer needed (the charts are drawn while it stops)."""
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    month = simulate_month(seed=options.seed, signals=options.signals, today=options.today)
    display.task("stack", None, note="starting eropaf up")
    preloading = threading.Thread(target=_preload, daemon=True)
    preloading.start()
    info = stack.wait_ready()
    preloading.join()
    timings["stack_ready"] = time.monotonic() - t0
    display.update("stack", note=f"ready in {timings['stack_ready']:.0f}s", total=1, completed=1)
    roster_file = roster_path()
    roster = read_roster(roster_file)
    with ThreadPoolExecutor(1) as pool:  # the roster goes in while the partners are onboarded
        importing = pool.submit(import_roster, stack.data_dir, roster_file)
        partners = _onboard(stack.data_dir, info)
        display.log(f"onboarded {len(partners)} partners: {', '.join(sorted(partners))}")
        tokens, note = importing.result()
    display.log(f"roster {roster_file.name}: {note}")
    timings["onboarded"] = time.monotonic() - t0

    secrets = json.loads((stack.data_dir / "secrets.json").read_text())
    refs = signal_refs_of(month, secrets["pseudonym_key"])
    by_signal = {pid: h.ref for h in month.households for pid in h.signal_ids}
    household_of = {ref: by_signal[pid] for ref, pid in refs.items() if pid in by_signal}

    def staff_step(
        home_visit_cases: Callable[[], set[str]],
        status: Callable[[str], None],
        cases: Callable[[], dict[str, dict[str, Any]]],
    ) -> StaffResult:
        def stable_key(case_ref: str) -> str:
            signal_refs = sorted(cases().get(case_ref, {}).get("signal_refs", []))
            return next((household_of[s] for s in signal_refs if s in household_of), case_ref)

        return simulate_staff(
            data_dir=stack.data_dir,
            scheduling_url=info.get("scheduling_url"),
            tokens=tokens,
            roster=roster,
            home_visit_cases=home_visit_cases,
            seed=options.seed,
            today=month.end,
            status=status,
            stable_key=stable_key,
        )

    feedback, observed, staff = asyncio.run(
        _replay(month, info, partners, options, display, refs, staff_step)
    )
    timings["replayed"] = time.monotonic() - t0
    report = Path(options.report_dir)
    if report.exists():
        shutil.rmtree(report)
    report.mkdir(parents=True)
    from eropaf_contracts.region import load_region
    from eropaf_demo import report as reports

    region = load_region(None)
    mail_dir = Path(info["mail_dir"]) if info.get("mail_dir") else None
    mails = reports.copy_mail(mail_dir, report / "mail")
    names = {m.code: m.name for m in region.municipalities}
    summary = build_summary(month, feedback, observed, refs, staff, mails, names)
    timings["summarised"] = time.monotonic() - t0
    ddas = reports.ddas_exports(
        stack.data_dir, report / "ddas", list(names), month.start, month.end
    )
    timings["ddas_exported"] = time.monotonic() - t0

    bad = {g: r for g, r in ddas.items() if not r.startswith("ok")}
    summary.checks.append(
        Check(
            "DDAS export per municipality valid",
            not bad,
            "; ".join(f"{g} {r}" for g, r in (bad or ddas).items())[:400],
        )
    )
    release()
    charts = reports.write_charts(summary, report / "charts")
    timings["report"] = time.monotonic() - t0
    summary.timings = timings
    reports.write_summary_json(summary, report)
    reports.write_html(summary, report, charts, region.name)
    return summary


# The demo counsellor whose portal login link `--keep` prints (a counsellor of the roster).
PORTAL_COUNSELLOR = "wil-pieter"


def portal_note(data_dir: Path, code: str = PORTAL_COUNSELLOR) -> str:
    """The staff portal's address and a one-time login link for a demo counsellor."""
    info = json.loads((data_dir / "stack.json").read_text())
    portal = info.get("portal_url")
    if not portal:
        return "staff portal: not running in this stack"
    done = eropaf_here("staff", "login-link", code, "--data-dir", str(data_dir))
    if done.returncode != 0:
        return f"staff portal: {portal} (no login link for {code}: {done.stderr.strip()})"
    return f"staff portal: {portal}\nlog in as {code}: {done.stdout.strip()}"


def run(options: DemoOptions) -> int:
    started = time.monotonic()
    owned = options.data_dir is None
    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="eropaf-demo-")) / "data"
    stack = Stack(data_dir, data_dir.parent / "up.log", up_args=options.up_args)
    ok = True
    summary: Summary | None = None
    display = _Display(options.quiet)
    stopping: list[threading.Thread] = []

    def release() -> None:
        if not options.keep:
            stopping.append(threading.Thread(target=stack.stop, daemon=True))
            stopping[0].start()

    try:
        with display:
            stack.start()
            summary = run_month(options, stack, display, release)
    except DemoError as error:
        display.console.print(f"[red]demo failed:[/] {error}")
        ok = False
    except BaseException:  # a bug or ^C: never leave the stack behind
        stack.stop()
        raise
    console = display.console
    if summary is not None:
        console.print(render(summary))
        console.print(f"staff: {summary.staff_note}")
        console.print(f"report: {Path(options.report_dir).resolve()}/index.html")
        ok = summary.ok
    if options.keep and stack.process is not None and stack.process.poll() is None:
        console.print(
            f"stack left running on {data_dir} (pid {stack.process.pid}); "
            f"stop it with: eropaf down --data-dir {data_dir}"
        )
        console.print(portal_note(data_dir), soft_wrap=True)
    else:
        for thread in stopping:  # the stop begun by `release`
            thread.join()
        code = stack.stop()  # its exit code (or the stop, when it was not begun)
        if code == 0:
            console.print("stack stopped cleanly")
        else:
            console.print(f"[red]stack did not stop cleanly[/] (exit code {code}):\n{stack.tail()}")
            ok = False
        if owned:
            shutil.rmtree(data_dir.parent, ignore_errors=True)
    console.print(f"demo took {time.monotonic() - started:.0f}s")
    return 0 if ok else 1
