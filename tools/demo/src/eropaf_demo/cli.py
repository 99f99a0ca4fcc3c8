"""`eropaf simulate`: write a seeded month of partner messages and its ground truth.

Only the standard library at the top: `eropaf` loads this module for every command.
"""

from __future__ import annotations

import argparse
from datetime import date


def cmd_simulate(args: argparse.Namespace) -> int:
    from eropaf_demo.simulate import simulate_month, write_files

    month = simulate_month(seed=args.seed, signals=args.signals, today=args.today)
    written = write_files(month, args.output)
    print(
        f"{len(month.messages)} messages from {len(month.by_partner())} partners, "
        f"{len(month.households)} households ({month.expected_cases} expected cases), "
        f"{month.start} to {month.end}"
    )
    for path in written:
        print(f"  {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from eropaf_demo.runner import DemoOptions, run

    return run(
        DemoOptions(
            seed=args.seed,
            signals=args.signals,
            report_dir=args.report,
            keep=args.keep,
            replay_seconds=args.replay_seconds,
            quiet=args.quiet,
        )
    )


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--signals", type=int, default=700, help="partner messages in the month")
    p.add_argument("--report", default="demo-report", help="report folder (default demo-report)")
    p.add_argument("--keep", action="store_true", help="leave the stack running at the end")
    p.add_argument(
        "--replay-seconds", type=float, default=12.0, help="wall-clock time of the month's replay"
    )
    p.add_argument("--quiet", action="store_true", help="no live progress display")


def demo_main(argv: list[str] | None = None) -> int:
    """`python -m eropaf_demo` (what `make demo` runs)."""
    parser = argparse.ArgumentParser(
        prog="python -m eropaf_demo",
        description="Start the stack and replay a simulated month of the region.",
    )
    add_demo_arguments(parser)
    return cmd_demo(parser.parse_args(argv))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `simulate` (the generator) and `demo` (the month against the local stack)."""
    p = subparsers.add_parser(
        "simulate", help="write a seeded month of partner signals (files + ground truth)"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--signals", type=int, default=700, help="number of partner messages")
    p.add_argument(
        "--today",
        type=date.fromisoformat,
        default=None,
        help="last day of the month (default today)",
    )
    p.add_argument("-o", "--output", required=True, help="directory to write the files to")
    p.set_defaults(handler=cmd_simulate)

    p = subparsers.add_parser(
        "demo", help="start the stack and replay a simulated month of the region (make demo)"
    )
    add_demo_arguments(p)
    p.set_defaults(handler=cmd_demo)
