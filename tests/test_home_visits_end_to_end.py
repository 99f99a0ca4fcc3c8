"""Home visits end to end, through the outside only: a real `eropaf up`, the demo roster
imported, a corporation's signed rent-arrears signal, the home visit scheduling plans for
it, three visits not reached (recorded through the staff API, each at another part of day),
and the municipality's DDAS export with the contactpogingen and
``Definitief geen contact kunnen krijgen``."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from datetime import date, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest

from eropaf_cli.testing import start_stack, stop_stack, tail
from eropaf_contracts.ddas import validate_uitwisselmodel
from eropaf_platform.testing.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TODAY = date.today()
NIEUWEGEIN = "0356"
DEFINITIEF = "Definitief geen contact kunnen krijgen"


def eropaf(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "eropaf_cli", *args],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"eropaf {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def export(data_dir: Path) -> dict[str, Any]:
    out = eropaf(
        "ddas", "export", "--gemeente", NIEUWEGEIN,
        "--from", (TODAY - timedelta(days=30)).isoformat(),
        "--to", (TODAY + timedelta(days=60)).isoformat(), "--data-dir", str(data_dir),
    )  # fmt: skip
    delivery: dict[str, Any] = json.loads(out)
    return delivery


def test_three_visits_not_reached_end_the_case_in_the_ddas_export(tmp_path: Path) -> None:
    data_dir, keys = tmp_path / "data", tmp_path / "keys"
    keys.mkdir()
    running = start_stack(data_dir)
    try:
        eropaf(
            "partner", "onboard", "mitros", "--from-region",
            "--generate-key", str(keys / "mitros.pem"), "--data-dir", str(data_dir),
        )  # fmt: skip
        roster = tmp_path / "roster.csv"
        roster.write_bytes(
            files("eropaf_contracts").joinpath("regions", "lekstroom-staff.csv").read_bytes()
        )
        tokens = dict(
            line.split()[1:]
            for line in eropaf(
                "staff", "import", str(roster), "--data-dir", str(data_dir)
            ).splitlines()
        )
        signal = {
            "ID": "HV-1", "crisissignaal": False, "warmeOverdracht": False, "bedrag": 2500,
            "ontstaansdatum": (TODAY - timedelta(days=60)).isoformat(),
            "signaaldatum": TODAY.isoformat(), "signaalpartner": {"type": "Huur"},
            "client": {
                "Burgerservicenummer": "111222333", "Voorletters": "H.", "Achternaam": "Bezoek",
                "Geboortedatum": "1977-03-03", "Straatnaam": "Lekweg", "Postcode": "3431 AB",
                "Huisnummer": "40", "Plaatsnaam": "Nieuwegein",
            },
        }  # fmt: skip
        items = tmp_path / "signals.json"
        items.write_text(json.dumps([signal]))
        feedback = eropaf(
            "partner", "publish", "mitros", str(items), "--key", str(keys / "mitros.pem"),
            "--data-dir", str(data_dir), "--wait-feedback", "--timeout", "90",
        )  # fmt: skip
        assert "accepted" in feedback, feedback
        url = json.loads((data_dir / "stack.json").read_text())["scheduling_url"]
        coordinator = {"Authorization": f"Bearer {tokens['wil-ursula']}"}
        window = {"from": TODAY.isoformat(), "to": (TODAY + timedelta(days=60)).isoformat()}

        def planned(attempt: int) -> dict[str, Any] | None:
            visits = httpx.get(
                f"{url}/v1/visits", params=window, headers=coordinator, timeout=10
            ).json()["visits"]
            return next(
                (v for v in visits if v["status"] == "planned" and v["attempt"] == attempt), None
            )

        parts: list[str] = []
        for attempt in (1, 2, 3):
            visit: dict[str, Any] = wait_until(
                functools.partial(planned, attempt), timeout=120, interval=1.0
            )
            assert visit["dagdeel"] not in parts
            parts.append(visit["dagdeel"])
            counsellor = {"Authorization": f"Bearer {tokens[visit['staff'][1]]}"}
            response = httpx.post(
                f"{url}/v1/cases/{visit['case_ref']}/contact-attempts",
                json={
                    "contactsoort": "Huisbezoek", "datum": visit["datum"], "bereikt": False,
                    "visit_id": visit["visit_id"],
                },
                headers=counsellor, timeout=10,
            )  # fmt: skip
            assert response.status_code == 201, response.text

        def ended() -> dict[str, Any] | None:
            delivery = export(data_dir)
            zaken = delivery["leveringen"][0]["vroegsignaalzaken"]
            return next((z for z in zaken if z.get("resultaat") == DEFINITIEF), None)

        zaak = wait_until(ended, timeout=120, interval=2.0)
        soorten = [(a["soort"], a["bereikt"]) for a in zaak["contactpogingen"]]
        assert soorten.count(("Huisbezoek", False)) == 3
        assert soorten.count(("Kaartje", False)) == 3
        validate_uitwisselmodel(export(data_dir))
    finally:
        code = stop_stack(running.process)
        assert code == 0, tail(running.output)
