"""`python -m eropaf_bench.portal DATA_DIR`: the time of each staff-portal page against a
running stack (`eropaf up` or `python -m eropaf_demo --keep`), as a signed-in coordinator and
a signed-in counsellor see it.

Signs in with one-time login links from the portal's internal API (the stack's internal token
in DATA_DIR/secrets.json), then asks each page ``--rounds`` times one after the other and
prints the median, 95th percentile and slowest per page (the issue's goal: under 200 ms).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx

GOAL_S = 0.200
COORDINATOR = "wil-ursula"  # of the packaged Lekstroom roster
COUNSELLOR = "wil-pieter"
GEMEENTE = "0356"


@dataclass(frozen=True)
class PageTime:
    who: str
    page: str
    status: int
    median_s: float
    p95_s: float
    max_s: float

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.median_s < GOAL_S


def signed_in(portal_url: str, token: str, code: str) -> httpx.Client:
    """An HTTP client holding a portal session of staff member ``code``."""
    issued = httpx.post(
        f"{portal_url}/internal/v1/login-links",
        json={"code": code},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    issued.raise_for_status()
    client = httpx.Client(base_url=portal_url, timeout=60)
    link = httpx.URL(issued.json()["url"])  # on the public URL; asked here on portal_url
    redeemed = client.get(link.raw_path.decode())
    if redeemed.status_code != 303:
        raise SystemExit(f"login of {code} refused: {redeemed.status_code}")
    return client


def time_page(client: httpx.Client, who: str, page: str, rounds: int) -> PageTime:
    client.get(page)  # warm: templates compiled, connections open
    times, status = [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(page)
        times.append(time.perf_counter() - started)
        status = response.status_code
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return PageTime(who, page, status, statistics.median(times), p95, times[-1])


def pages(today: date) -> dict[str, list[str]]:
    first = today.replace(day=1).isoformat()
    return {
        COUNSELLOR: ["/visits"],
        COORDINATOR: [
            "/visits",
            "/backlog",
            "/capacity",
            f"/funnel?gemeente={GEMEENTE}",
            "/staff",
            "/export",
            f"/export/ddas?gemeente={GEMEENTE}&first={first}&last={today.isoformat()}",
        ],
    }


def measure(data_dir: Path, rounds: int) -> list[PageTime]:
    info = json.loads((data_dir / "stack.json").read_text())
    token = json.loads((data_dir / "secrets.json").read_text())["internal_api_token"]
    portal_url = info["portal_url"]
    found = []
    for who, paths in pages(date.today()).items():
        client = signed_in(portal_url, token, who)
        try:
            found += [time_page(client, who, path, rounds) for path in paths]
        finally:
            client.close()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eropaf_bench.portal", description=__doc__)
    parser.add_argument("data_dir", type=Path, help="the running stack's data directory")
    parser.add_argument("--rounds", type=int, default=20, help="requests per page [20]")
    args = parser.parse_args(argv)
    results = measure(args.data_dir, args.rounds)
    print(f"{'who':<12} {'page':<48} {'status':>6} {'median':>8} {'p95':>8} {'max':>8}")
    for r in results:
        print(
            f"{r.who:<12} {r.page[:48]:<48} {r.status:>6} {r.median_s * 1000:>6.0f}ms "
            f"{r.p95_s * 1000:>6.0f}ms {r.max_s * 1000:>6.0f}ms{'' if r.ok else '  over goal'}"
        )
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
