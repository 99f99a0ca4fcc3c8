"""The staff portal in a browser (Playwright driving Debian's Chromium) against a real
`eropaf up`: the demo roster, a corporation's two rent-arrears signals, their home visits.

A counsellor logs in through the e-mailed link, sees the visit, asks for the contact details
with a purpose (intake's audit log has the read), records "not at home", sees the next attempt
planned at another part of day, records "help accepted", and the municipality's DDAS export
shows it. A corporation employee of another organisation gets 403 on that case; a form post
without the CSRF token is refused. The coordinator sees backlog, capacity and funnel, marks a
counsellor absent and sees the visit move. Every page passes axe-core with no serious or
critical violation. Screenshots of each step go to test-artifacts/portal/.
"""

from __future__ import annotations

import csv
import email
import email.policy
import functools
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from eropaf_cli.testing import RunningStack, start_stack, stop_stack, tail
from eropaf_platform.db import libpq_url
from eropaf_platform.testing.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "portal"
TODAY = date.today()
NIEUWEGEIN = "0356"
HELP = "Vervolghulp en/of verwijzing financieel"
PHONE = {"width": 390, "height": 844}  # the pages must work on a phone screen
PURPOSE = "huisbezoek voorbereiden"
BSN = {1: "111222333", 2: "123456782"}  # both pass the 11-test


def eropaf(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "eropaf_cli", *args],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"eropaf {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def signal(n: int) -> dict[str, Any]:
    return {
        "ID": f"PORTAL-{n}", "crisissignaal": False, "warmeOverdracht": False, "bedrag": 1800 + n,
        "ontstaansdatum": (TODAY - timedelta(days=60)).isoformat(),
        "signaaldatum": TODAY.isoformat(), "signaalpartner": {"type": "Huur"},
        "client": {
            "Burgerservicenummer": BSN[n], "Voorletters": "P.", "Achternaam": f"Portaal{n}",
            "Geboortedatum": "1980-01-0" + str(n), "Straatnaam": "Lekweg", "Postcode": "3431 AB",
            "Huisnummer": str(10 + n), "Plaatsnaam": "Nieuwegein",
        },
    }  # fmt: skip


class Stack:
    """The running stack as the test sees it: its files, the staff API as a coordinator."""

    def __init__(self, running: RunningStack, roster: dict[str, dict[str, str]]) -> None:
        self.running = running
        self.data_dir = running.data_dir
        self.info = json.loads((running.data_dir / "stack.json").read_text())
        self.portal = self.info["portal_url"]
        self.roster = roster
        self.tokens: dict[str, str] = {}

    def planned(self, case_ref: str | None = None, attempt: int = 1) -> list[dict[str, Any]]:
        window = {"from": TODAY.isoformat(), "to": (TODAY + timedelta(days=60)).isoformat()}
        visits = httpx.get(
            f"{self.info['scheduling_url']}/v1/visits",
            params=window,
            headers={"Authorization": f"Bearer {self.tokens['wil-ursula']}"},
            timeout=10,
        ).json()["visits"]
        return [
            v
            for v in visits
            if v["status"] == "planned"
            and v["attempt"] == attempt
            and (case_ref is None or v["case_ref"] == case_ref)
        ]

    def login_mail_link(self, code: str) -> str | None:
        address = self.roster[code]["email"]
        for path in sorted((self.data_dir / "mail").glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] == address and "inloglink" in str(message["Subject"]).lower():
                body = message.get_body(preferencelist=("plain",))
                assert body is not None
                found = re.search(r"https?://\S+/login/link\?token=\S+", body.get_content())
                if found:
                    return found.group(0)
        return None

    def audited_reads(self, accessor: str) -> list[tuple[str, str | None]]:
        with psycopg.connect(libpq_url(self.info["database_urls"]["intake"])) as conn:
            rows = conn.execute(
                "SELECT purpose, signal_ref FROM personal_data_access WHERE accessor = %s",
                (accessor,),
            ).fetchall()
        return [(purpose, ref) for purpose, ref in rows]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("portal")
    data_dir, keys = root / "data", root / "keys"
    keys.mkdir()
    running = start_stack(data_dir)
    try:
        roster_file = root / "roster.csv"
        roster_file.write_bytes(
            files("eropaf_contracts").joinpath("regions", "lekstroom-staff.csv").read_bytes()
        )
        with roster_file.open(encoding="utf-8-sig") as handle:
            roster = {row["code"]: row for row in csv.DictReader(handle, delimiter=";")}
        s = Stack(running, roster)
        eropaf(
            "partner", "onboard", "mitros", "--from-region",
            "--generate-key", str(keys / "mitros.pem"), "--data-dir", str(data_dir),
        )  # fmt: skip
        out = eropaf("staff", "import", str(roster_file), "--data-dir", str(data_dir))
        s.tokens = dict(line.split()[1:] for line in out.splitlines() if line.startswith("token"))
        items = root / "signals.json"
        items.write_text(json.dumps([signal(1), signal(2)]))
        feedback = eropaf(
            "partner", "publish", "mitros", str(items), "--key", str(keys / "mitros.pem"),
            "--data-dir", str(data_dir), "--wait-feedback", "--timeout", "90",
        )  # fmt: skip
        assert feedback.count("accepted") >= 2, feedback
        yield s
    finally:
        code = stop_stack(running.process)
        assert code == 0, tail(running.output)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


class Pages:
    """Screenshots and the accessibility check of every page the test sees."""

    def __init__(self) -> None:
        from axe_playwright_python.sync_playwright import Axe

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob("*.png"):
            old.unlink()
        self.axe = Axe()
        self.step = 0
        self.violations: dict[str, list[str]] = {}

    def check(self, page: Any, name: str) -> None:
        self.step += 1
        page.screenshot(path=str(ARTIFACTS / f"{self.step:02d}-{name}.png"), full_page=True)
        results = self.axe.run(page)
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']}"
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        if bad:
            self.violations[name] = bad


def log_in_by_mail(s: Stack, browser: Any, code: str, pages: Pages) -> Any:
    context = browser.new_context(viewport=PHONE, locale="nl-NL")
    page = context.new_page()
    page.goto(f"{s.portal}/login")
    pages.check(page, "login")
    page.get_by_label("Uw medewerkerscode").fill(code)
    page.get_by_role("button", name="Stuur mij een inloglink").click()
    page.get_by_role("status").wait_for()
    link = wait_until(functools.partial(s.login_mail_link, code), timeout=30, interval=0.25)
    page.goto(link)
    return context, page


def log_in_by_cli(s: Stack, browser: Any, code: str) -> tuple[Any, Any]:
    link = eropaf("staff", "login-link", code, "--data-dir", str(s.data_dir)).strip()
    assert link.startswith(f"{s.portal}/login/link?token=")
    context = browser.new_context(viewport=PHONE, locale="nl-NL")
    page = context.new_page()
    page.goto(link)
    return context, page


def test_staff_portal_in_a_browser(stack: Stack, browser: Any) -> None:
    s, pages = stack, Pages()

    def two_planned() -> list[dict[str, Any]] | None:
        planned = s.planned()
        return planned if len(planned) >= 2 else None

    first_visits: list[dict[str, Any]] = wait_until(two_planned, timeout=120, interval=1.0)
    visit, other_visit = first_visits[0], first_visits[1]
    case_ref = visit["case_ref"]
    counsellor = next(c for c in visit["staff"] if s.roster[c]["rol"] == "schuldhulpverlener")

    # -- a counsellor: e-mailed link, visits, case, contact details, two attempts --
    context, page = log_in_by_mail(s, browser, counsellor, pages)
    page.wait_for_url(f"{s.portal}/visits")
    assert page.locator(f'a[href="/cases/{case_ref}"]').count() >= 1
    assert page.get_by_text(visit["dagdeel"]).count() >= 1
    pages.check(page, "counsellor-visits")
    page.locator(f'a[href="/cases/{case_ref}"]').first.click()
    page.wait_for_url(f"{s.portal}/cases/{case_ref}")
    pages.check(page, "counsellor-case")

    page.get_by_label("Doel van het opvragen").fill(PURPOSE)
    page.get_by_role("button", name="Toon contactgegevens").click()
    page.locator(".contact-details").first.wait_for()
    assert "Portaal" in page.locator(".contact-details").first.inner_text()
    pages.check(page, "counsellor-contact-details")
    audited = s.audited_reads(counsellor)
    assert audited and all(purpose == PURPOSE for purpose, _ in audited)

    page.get_by_label("Datum", exact=True).fill(visit["datum"])
    page.get_by_label("Nee, niet bereikt (niet thuis)").check()
    page.get_by_role("button", name="Vastleggen").click()
    page.get_by_text("Contactpoging vastgelegd.").wait_for()
    next_attempt = page.locator("#next-attempt[data-dagdeel]")
    next_attempt.wait_for(timeout=60_000)  # htmx polls until scheduling has replanned
    assert next_attempt.get_attribute("data-dagdeel") != visit["dagdeel"]
    pages.check(page, "counsellor-not-at-home-next-attempt")

    [second] = s.planned(case_ref, attempt=2)
    assert second["dagdeel"] != visit["dagdeel"]
    page.get_by_label("Datum", exact=True).fill(second["datum"])
    page.get_by_label("Ja, bereikt").check()
    page.get_by_label("Eindresultaat").select_option(HELP)
    page.get_by_role("button", name="Vastleggen").click()
    page.get_by_text(f"De aanpak is afgerond: {HELP}").wait_for()
    pages.check(page, "counsellor-help-accepted")

    # a form post without the CSRF token is refused
    refused = context.request.post(
        f"{s.portal}/cases/{case_ref}/attempts",
        form={"contactsoort": "Telefoon", "datum": TODAY.isoformat(), "bereikt": "nee"},
    )
    assert refused.status == 403
    page.get_by_role("button", name="Uitloggen").click()
    page.wait_for_url(f"{s.portal}/login")
    assert page.goto(f"{s.portal}/visits").url == f"{s.portal}/login"  # the session is over
    context.close()

    # -- an employee of another corporation: 403 on that case --
    context, page = log_in_by_cli(s, browser, "portaal-jasmijn")
    response = page.goto(f"{s.portal}/cases/{case_ref}")
    assert response is not None and response.status == 403
    pages.check(page, "other-organisation-403")
    context.close()

    # -- the coordinator: backlog, capacity, funnel, absence, DDAS export --
    context, page = log_in_by_cli(s, browser, "wil-ursula")
    page.wait_for_url(f"{s.portal}/backlog")
    pages.check(page, "coordinator-backlog")
    for path, name in (("/capacity", "capacity"), ("/funnel", "funnel"), ("/staff", "staff")):
        assert page.goto(f"{s.portal}{path}").status == 200
        pages.check(page, f"coordinator-{name}")

    absent = next(c for c in other_visit["staff"] if s.roster[c]["rol"] == "schuldhulpverlener")
    page.get_by_label("Medewerker", exact=True).select_option(absent)
    page.get_by_label("Van", exact=True).fill(other_visit["datum"])
    page.get_by_label("Tot en met", exact=True).fill(other_visit["datum"])
    page.get_by_role("button", name="Afwezig melden en opnieuw plannen").click()
    effect = page.get_by_role("status")
    effect.wait_for()
    moved = re.search(r"(\d+) bezoek\(en\) verplaatst", effect.inner_text())
    assert moved and int(moved.group(1)) >= 1
    pages.check(page, "coordinator-absence-effect")

    def moved_away() -> bool:
        now = s.planned(other_visit["case_ref"])
        return all(absent not in v["staff"] or v["datum"] != other_visit["datum"] for v in now)

    wait_until(moved_away, timeout=60, interval=1.0)

    page.goto(f"{s.portal}/export")
    pages.check(page, "coordinator-export")
    export_url = (
        f"{s.portal}/export/ddas?gemeente={NIEUWEGEIN}"
        f"&first={(TODAY - timedelta(days=30)).isoformat()}"
        f"&last={(TODAY + timedelta(days=60)).isoformat()}"
    )

    def exported_help() -> str | None:
        response = context.request.get(export_url)
        text = response.text() if response.status == 200 else ""
        return text if HELP in text else None

    wait_until(exported_help, timeout=60, interval=1.0)
    page.get_by_label("Gemeente", exact=True).select_option(NIEUWEGEIN)
    page.get_by_label("Van", exact=True).fill((TODAY - timedelta(days=30)).isoformat())
    page.get_by_label("Tot en met", exact=True).fill((TODAY + timedelta(days=60)).isoformat())
    with page.expect_download() as download:
        page.get_by_role("button", name="Download DDAS-bestand").click()
    saved = ARTIFACTS / download.value.suggested_filename
    download.value.save_as(saved)
    assert HELP in saved.read_text(encoding="utf-8")
    context.close()

    assert pages.violations == {}, pages.violations
