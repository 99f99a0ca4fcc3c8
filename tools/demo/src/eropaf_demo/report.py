"""The report folder: charts (PNG), a one-page HTML report embedding them, a DDAS export per
municipality (validated against the official schema) and the e-mail staff received.

    REPORT/
      index.html                one page: tables, checks, the charts embedded
      charts/funnel.png         from messages sent to help accepted
      charts/signals-per-week.png   per partner
      charts/visits-per-week.png    against the team's capacity
      ddas/<gemeente>.json      `eropaf ddas export --no-personal-data`, schema-checked
      mail/*.eml                what staff received (no personal data: checked)
      summary.json              the tables and checks, machine-readable
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from eropaf_demo.stack import eropaf_here
from eropaf_demo.summary import Summary

__all__ = ["copy_mail", "ddas_exports", "write_charts", "write_html", "write_summary_json"]


def write_charts(summary: Summary, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = []

    labels = [name for name, _ in summary.funnel]
    values = [value for _, value in summary.funnel]
    fig, ax = plt.subplots(figsize=(8, 4))
    bars = ax.barh(labels[::-1], values[::-1], color="#2a6f97")
    ax.bar_label(bars, padding=3)
    ax.set_title("From signals to help accepted")
    ax.set_xlabel("number")
    fig.tight_layout()
    paths.append(out / "funnel.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    weeks = sorted({w for counts in summary.signals_per_week.values() for w in counts})
    fig, ax = plt.subplots(figsize=(9, 4.5))
    bottom = [0] * len(weeks)
    colours = plt.get_cmap("tab20")
    for index, (partner, counts) in enumerate(sorted(summary.signals_per_week.items())):
        heights = [counts.get(w, 0) for w in weeks]
        ax.bar(weeks, heights, bottom=bottom, label=partner, color=colours(index % 20))
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_title("Signals per partner per week")
    ax.set_ylabel("signals")
    ax.legend(fontsize=7, ncols=2)
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    paths.append(out / "signals-per-week.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    vweeks = sorted(summary.visits_per_week)
    fig, ax = plt.subplots(figsize=(9, 4))
    if vweeks:
        ax.bar(
            vweeks, [summary.visits_per_week[w] for w in vweeks], color="#61a5c2", label="visits"
        )
        ax.plot(
            vweeks, [summary.capacity_per_week] * len(vweeks), color="#c0392b", label="capacity"
        )
        ax.legend()
        ax.tick_params(axis="x", rotation=30)
    else:
        ax.text(0.5, 0.5, "no visits (scheduling not available)", ha="center", va="center")
    ax.set_title("Home visits per week against the team's capacity")
    fig.tight_layout()
    paths.append(out / "visits-per-week.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Eropaf demo: {{ region }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222 }
table { border-collapse: collapse; margin: 0.5em 0 1.5em } td, th { border: 1px solid #ccc;
padding: 2px 8px; font-size: 13px } th { background: #eef } td.n { text-align: right }
.ok { color: #1a7f37 } .fail { color: #c0392b; font-weight: bold } img { max-width: 100% }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 1em }
</style></head><body>
<h1>Eropaf demo: one month of {{ region }}</h1>
<p>Seed {{ seed }}, {{ messages }} partner messages from {{ start }} to {{ end }},
{{ households }} households. Staff: {{ staff_note }}.</p>
<h2>Checks against the generator's ground truth</h2>
<table><tr><th></th><th>check</th><th>detail</th></tr>
{% for c in checks %}<tr>
<td class="{{ 'ok' if c.ok else 'fail' }}">{{ 'ok' if c.ok else 'FAIL' }}</td>
<td>{{ c.name }}</td><td>{{ c.detail }}</td></tr>{% endfor %}</table>
<div class="charts">{% for name, data in charts %}
<img alt="{{ name }}" src="data:image/png;base64,{{ data }}">{% endfor %}</div>
<h2>Per partner</h2>
<table><tr><th>partner</th><th>channel</th><th>sent</th><th>accepted</th><th>duplicate</th>
<th>rejected</th><th>reasons</th><th>no answer</th><th>cases</th></tr>
{% for p in partners %}<tr><td>{{ p.partner }}</td><td>{{ p.channel }}</td>
<td class="n">{{ p.sent }}</td><td class="n">{{ p.accepted }}</td>
<td class="n">{{ p.duplicate }}</td>
<td class="n">{{ p.rejected }}</td>
<td>{{ p.reasons_text }}</td>
<td class="n">{{ p.unanswered }}</td><td class="n">{{ p.cases }}</td></tr>{% endfor %}</table>
<h2>Per municipality</h2>
<table><tr><th>gemeente</th><th>cases</th><th>outreach</th><th>visits</th><th>capacity/week</th>
<th>backlog</th><th>reached</th><th>help accepted</th><th>e-mails</th></tr>
{% for g in municipalities %}<tr><td>{{ g.gemeente }}</td><td class="n">{{ g.cases }}</td>
<td>{{ g.outreach_text }}</td>
<td class="n">{{ g.visits }}</td><td class="n">{{ '%.0f' % g.capacity_week }}</td>
<td class="n">{{ g.backlog }}</td><td class="n">{{ g.reached }}</td>
<td class="n">{{ g.help_accepted }}</td><td class="n">{{ g.mails }}</td></tr>{% endfor %}</table>
<h2>Files</h2><ul>{% for f in files %}<li><a href="{{ f }}">{{ f }}</a></li>{% endfor %}</ul>
</body></html>
"""


def write_html(summary: Summary, report: Path, charts: Sequence[Path], region: str) -> Path:
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    files = sorted(
        str(p.relative_to(report))
        for p in report.rglob("*")
        if p.is_file() and p.name != "index.html"
    )
    page = env.from_string(_PAGE).render(
        region=region,
        seed=summary.month.seed,
        messages=len(summary.month.messages),
        start=summary.month.start,
        end=summary.month.end,
        households=len(summary.month.households),
        staff_note=summary.staff_note,
        checks=summary.checks,
        charts=[(p.stem, base64.b64encode(p.read_bytes()).decode()) for p in charts],
        partners=[{**p, "reasons_text": _counts(p["reasons"])} for p in summary.partners],
        municipalities=[
            {**g, "outreach_text": _counts(g["outreach"])} for g in summary.municipalities
        ],
        files=files,
    )
    path = report / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def write_summary_json(summary: Summary, report: Path) -> Path:
    data: dict[str, Any] = {
        "seed": summary.month.seed,
        "ok": summary.ok,
        "checks": [c.__dict__ for c in summary.checks],
        "partners": summary.partners,
        "municipalities": summary.municipalities,
        "funnel": summary.funnel,
        "staff": summary.staff_note,
        "timings_s": summary.timings,
    }
    path = report / "summary.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


def ddas_exports(
    data_dir: Path, out: Path, gemeenten: Sequence[str], start: date, end: date
) -> dict[str, str]:
    """`eropaf ddas export --no-personal-data` per municipality; each file re-validated here.
    Returns gemeente -> "ok: N vroegsignalen, M vroegsignaalzaken" or the problem."""
    from eropaf_contracts.ddas import validate_uitwisselmodel

    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for g in gemeenten:
        path = out / f"{g}.json"
        done = eropaf_here(
            "ddas", "export", "--gemeente", g, "--from", start.isoformat(),
            "--to", end.isoformat(), "-o", str(path), "--no-personal-data",
            "--data-dir", str(data_dir),
        )  # fmt: skip
        if done.returncode != 0 or not path.exists():
            results[g] = f"export failed ({done.returncode}): {done.stderr.strip()[:200]}"
            continue
        document = json.loads(path.read_text())
        problems = validate_uitwisselmodel(document)
        levering = document["leveringen"][0]
        results[g] = (
            f"not valid: {problems[:2]}"
            if problems
            else f"ok: {len(levering['vroegsignalen'])} vroegsignalen, "
            f"{len(levering['vroegsignaalzaken'])} vroegsignaalzaken"
        )
    return results


def copy_mail(mail_dir: Path | None, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    if mail_dir is None or not mail_dir.is_dir():
        return []
    copied = []
    for path in sorted(mail_dir.rglob("*.eml")):
        target = out / path.name
        shutil.copyfile(path, target)
        copied.append(target)
    return copied
