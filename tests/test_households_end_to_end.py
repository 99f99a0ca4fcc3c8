"""Households end to end, through the outside only: a real `eropaf up` (local broker,
PostgreSQL, intake and matching processes), partners onboarded and publishing signed signals
with the reference client, and the municipality's DDAS export as the verdict.

Personal data goes in as partners send it (name and address variants, no citizen service
number where the link must come from name, birth date and address); what comes out is the
DDAS delivery a municipality reports to CBS: which signals became one case (a
``vroegsignaalzaak``), each signal's status and each case's result. Only the outreach kind,
which DDAS does not carry, is read from matching's events, the persons behind one
household from matching's own table, and when intake learnt of a closure (its retention
clock) from intake's.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from eropaf_cli import stack
from eropaf_cli.testing import start_stack, stop_stack, tail
from eropaf_contracts.ddas import Eindresultaat, Signaalstatus, validate_uitwisselmodel
from eropaf_contracts.topics import CASES_TOPIC
from eropaf_intake.domain.match_tokens import signal_ref
from eropaf_platform.testing.topics import read_to_end
from eropaf_platform.testing.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TODAY = date.today()
NIEUWEGEIN, IJSSELSTEIN = "0356", "0353"
PARTNERS = ("mitros", "viveste", "eneco", "vitens", "zilveren-kruis")
PARTNER_TYPE = {
    "mitros": "Huur",
    "viveste": "Huur",
    "eneco": "Energie",
    "vitens": "Water",
    "zilveren-kruis": "Zorg",
}


def days_ago(n: int) -> str:
    return (TODAY - timedelta(days=n)).isoformat()


def signal(
    partner: str, signal_id: str, client: dict[str, str], *, bedrag: int = 600, age: int = 20
) -> tuple[str, dict[str, Any]]:
    return partner, {
        "ID": signal_id,
        "crisissignaal": False,
        "warmeOverdracht": False,
        "bedrag": bedrag,
        "ontstaansdatum": days_ago(age + 60),
        "signaaldatum": days_ago(age),
        "signaalpartner": {"type": PARTNER_TYPE[partner]},
        "client": {"Plaatsnaam": "Nieuwegein", **client},
    }


# -- the households ----------------------------------------------------------------------

# Name and address variants of one person, no citizen service number: the link comes from
# birth date + surname and birth date + initials + address.
VAN_DIJK = {"Voorletters": "A.", "Geboortedatum": "1980-02-03", "Straatnaam": "Lekweg"}
CELIK = {"Voorletters": "M.", "Geboortedatum": "1975-07-08", "Straatnaam": "Rijnhof"}
# Same surname, other birth date, other citizen service number, other address.
JANSEN_1 = {"Burgerservicenummer": "111222333", "Voorletters": "P.", "Achternaam": "Jansen"}
JANSEN_2 = {"Burgerservicenummer": "123456782", "Voorletters": "P.", "Achternaam": "Jansen"}
# Twins: one surname, one birth date, one address; two citizen service numbers.
TWIN = {"Achternaam": "Bakker", "Geboortedatum": "2001-09-09", "Postcode": "3438 AA"}
# Rent, energy and health-insurance arrears of one household.
HOUSEHOLD_3 = {
    "Burgerservicenummer": "987654329",
    "Voorletters": "S.",
    "Achternaam": "de Wit",
    "Geboortedatum": "1969-11-30",
    "Straatnaam": "Dreef",
    "Postcode": "3434 KL",
    "Huisnummer": "20",
}
REPEATER = {
    "Burgerservicenummer": "192837461",
    "Voorletters": "R.",
    "Achternaam": "Smit",
    "Geboortedatum": "1985-04-04",
    "Straatnaam": "Herhaalpad",
    "Postcode": "3435 MN",
    "Huisnummer": "3",
}
PAYER = {
    "Burgerservicenummer": "564738293",
    "Voorletters": "L.",
    "Achternaam": "Visser",
    "Geboortedatum": "1958-12-12",
    "Straatnaam": "Betaalstraat",
    "Postcode": "3436 PR",
    "Huisnummer": "8",
}
MOVER = {
    "Burgerservicenummer": "246813581",
    "Voorletters": "E.",
    "Achternaam": "Mulder",
    "Geboortedatum": "1992-06-06",
}

SIGNALS = [
    signal("mitros", "VD-1", {**VAN_DIJK, "Achternaam": "van Dijk", "Postcode": "3431 ab",
                              "Huisnummer": "12-a"}),
    signal("eneco", "VD-2", {**VAN_DIJK, "Achternaam": "Dijk, van", "Postcode": "3431AB",
                             "Huisnummer": "12a"}),
    signal("vitens", "CE-1", {**CELIK, "Achternaam": "Çelik", "Postcode": "3432 CD",
                              "Huisnummer": "5"}),
    signal("zilveren-kruis", "CE-2", {**CELIK, "Achternaam": "Celik", "Postcode": "3432cd",
                                      "Huisnummer": "5"}),
    signal("mitros", "JA-1", {**JANSEN_1, "Geboortedatum": "1990-01-01", "Straatnaam": "Oost",
                              "Postcode": "3433 EF", "Huisnummer": "7"}),
    signal("viveste", "JA-2", {**JANSEN_2, "Geboortedatum": "1991-05-05", "Straatnaam": "West",
                               "Postcode": "3433 GH", "Huisnummer": "9"}),
    signal("mitros", "TW-1", {**TWIN, "Burgerservicenummer": "135792460", "Voorletters": "K.",
                              "Straatnaam": "Tweelinglaan", "Huisnummer": "4"}),
    signal("viveste", "TW-2", {**TWIN, "Burgerservicenummer": "975318640", "Voorletters": "L.",
                               "Straatnaam": "Tweelinglaan", "Huisnummer": "4"}),
    signal("mitros", "HH-rent", HOUSEHOLD_3, bedrag=1400),
    signal("eneco", "HH-energy", HOUSEHOLD_3, bedrag=300),
    signal("zilveren-kruis", "HH-health", HOUSEHOLD_3, bedrag=250),
    # The same corporation again a month later, arrears not grown: a repeat.
    signal("mitros", "RE-1", REPEATER, bedrag=800, age=40),
    signal("mitros", "RE-2", REPEATER, bedrag=800, age=10),
    signal("zilveren-kruis", "PA-1", PAYER, bedrag=450),
    # A tenant of Nieuwegein who moved to IJsselstein; the new landlord signals too.
    signal("mitros", "MO-1", {**MOVER, "Straatnaam": "Oudweg", "Postcode": "3437 ST",
                              "Huisnummer": "1"}, age=30),
    signal("viveste", "MO-2", {**MOVER, "Straatnaam": "Nieuwweg", "Postcode": "3401 AB",
                               "Huisnummer": "2", "Plaatsnaam": "IJsselstein"}, age=5),
]  # fmt: skip


# -- driving the stack from outside --------------------------------------------------------


def eropaf(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "eropaf_cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"eropaf {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


def publish(data_dir: Path, keys: Path, partner: str, items: list[Any], *flags: str) -> str:
    path = keys / f"{partner}-{len(list(keys.iterdir()))}.json"
    path.write_text(json.dumps(items, ensure_ascii=False))
    return eropaf(
        "partner", "publish", partner, str(path), "--key", str(keys / f"{partner}.pem"),
        "--data-dir", str(data_dir), "--wait-feedback", "--timeout", "90", *flags,
    ).stdout  # fmt: skip


def export(data_dir: Path, gemeente: str) -> dict[str, Any]:
    out = eropaf(
        "ddas", "export", "--gemeente", gemeente, "--from", days_ago(120),
        "--to", TODAY.isoformat(), "--data-dir", str(data_dir),
    )  # fmt: skip
    delivery: dict[str, Any] = json.loads(out.stdout)
    return delivery


async def _case_events(bootstrap: str) -> list[dict[str, Any]]:
    """Every event on matching's cases topic so far."""
    return [json.loads(r.value) for r in await read_to_end(bootstrap, CASES_TOPIC)]


@dataclass
class World:
    data_dir: Path
    bootstrap: str
    pseudonym_key: bytes
    matching_db: str
    intake_db: str
    exports: dict[str, dict[str, Any]]

    def ref(self, signal_id: str) -> str:
        partner = next(p for p, s in SIGNALS if s["ID"] == signal_id)
        return signal_ref(self.pseudonym_key, partner, signal_id)

    def zaken(self, gemeente: str) -> list[frozenset[str]]:
        """Each case of the municipality's delivery as the set of its signals' IDs."""
        levering = self.exports[gemeente]["leveringen"][0]
        return [
            frozenset(s["ID"] for s in z["vroegsignalen"]) for z in levering["vroegsignaalzaken"]
        ]

    def zaak(self, gemeente: str, signal_id: str) -> dict[str, Any]:
        levering = self.exports[gemeente]["leveringen"][0]
        return next(
            z
            for z in levering["vroegsignaalzaken"]
            if signal_id in {s["ID"] for s in z["vroegsignalen"]}
        )

    def status(self, gemeente: str, signal_id: str) -> str | None:
        levering = self.exports[gemeente]["leveringen"][0]
        return next(s.get("status") for s in levering["vroegsignalen"] if s["ID"] == signal_id)


def _complete(data_dir: Path) -> dict[str, dict[str, Any]] | None:
    """Both municipalities' deliveries, once every signal is in a case and the resolution
    has closed its case."""
    exports = {g: export(data_dir, g) for g in (NIEUWEGEIN, IJSSELSTEIN)}
    placed = {
        s["ID"]
        for delivery in exports.values()
        for z in delivery["leveringen"][0]["vroegsignaalzaken"]
        for s in z["vroegsignalen"]
    }
    closed = any(
        "resultaat" in z and "PA-1" in {s["ID"] for s in z["vroegsignalen"]}
        for z in exports[NIEUWEGEIN]["leveringen"][0]["vroegsignaalzaken"]
    )
    return exports if placed == {s["ID"] for _, s in SIGNALS} and closed else None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("households")
    data_dir, keys = root / "data", root / "keys"
    keys.mkdir()
    running = start_stack(data_dir)
    try:
        for partner in PARTNERS:
            eropaf(
                "partner", "onboard", partner, "--from-region",
                "--generate-key", str(keys / f"{partner}.pem"), "--data-dir", str(data_dir),
            )  # fmt: skip
        for partner in PARTNERS:
            items = [s for p, s in SIGNALS if p == partner]
            feedback = publish(data_dir, keys, partner, items)
            assert feedback.count("accepted") == len(items), feedback
        # Paid before anyone made contact (intake knows the signal: its feedback came).
        resolved = publish(
            data_dir, keys, "zilveren-kruis", [{"ID": "PA-1", "datumOpgelost": TODAY.isoformat()}],
            "--resolved",
        )  # fmt: skip
        assert "accepted" in resolved, resolved
        exports = wait_until(lambda: _complete(data_dir), timeout=120, interval=1.0)
        assert exports is not None
        yield World(
            data_dir=data_dir,
            bootstrap=running.info["bootstrap_servers"],
            pseudonym_key=stack.load_or_create_secrets(data_dir)["pseudonym_key"].encode(),
            matching_db=running.info["database_urls"]["matching"],
            intake_db=running.info["database_urls"]["intake"],
            exports=exports,
        )
    finally:
        code = stop_stack(running.process)
        assert code == 0, tail(running.output)


def test_the_deliveries_validate_with_the_official_schema(world: World) -> None:
    for delivery in world.exports.values():
        validate_uitwisselmodel(delivery)


def test_name_and_address_variants_of_one_person_are_one_case(world: World) -> None:
    # "van Dijk" / "Dijk, van", "3431 ab" / "3431AB", "12-a" / "12a"; "Çelik" / "Celik"
    assert frozenset({"VD-1", "VD-2"}) in world.zaken(NIEUWEGEIN)
    assert frozenset({"CE-1", "CE-2"}) in world.zaken(NIEUWEGEIN)
    client = next(
        s["client"]
        for s in world.exports[NIEUWEGEIN]["leveringen"][0]["vroegsignalen"]
        if s["ID"] == "CE-1"
    )
    assert client["Achternaam"] == "Çelik"  # CBS gets the name as the partner sent it


def test_same_surname_other_birth_date_and_number_elsewhere_are_two_cases(world: World) -> None:
    assert frozenset({"JA-1"}) in world.zaken(NIEUWEGEIN)
    assert frozenset({"JA-2"}) in world.zaken(NIEUWEGEIN)


def test_twins_at_one_address_are_two_persons_of_one_household(world: World) -> None:
    assert frozenset({"TW-1", "TW-2"}) in world.zaken(NIEUWEGEIN)

    async def persons() -> set[str]:
        from eropaf_platform.db import make_engine

        engine = make_engine(world.matching_db)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    sa.text("SELECT person_id FROM match_signal WHERE signal_ref = ANY(:refs)"),
                    {"refs": [world.ref("TW-1"), world.ref("TW-2")]},
                )
                return {r.person_id for r in rows}
        finally:
            await engine.dispose()

    assert len(asyncio.run(persons())) == 2


def test_rent_energy_and_health_insurance_become_one_case_with_a_home_visit(
    world: World,
) -> None:
    assert frozenset({"HH-rent", "HH-energy", "HH-health"}) in world.zaken(NIEUWEGEIN)
    refs = {world.ref(i) for i in ("HH-rent", "HH-energy", "HH-health")}
    events = asyncio.run(_case_events(world.bootstrap))
    case_refs = {
        e["data"]["case_ref"]
        for e in events
        if e["type"] in ("eropaf.matching.case.opened", "eropaf.matching.case.updated")
        and refs <= set(e["data"]["signal_refs"])
    }
    decisions = [
        e["data"]
        for e in events
        if e["type"] == "eropaf.matching.outreach.decided" and e["data"]["case_ref"] in case_refs
    ]
    assert decisions, "no outreach decided for the household"
    assert decisions[-1]["outreach"] == "home_visit"
    assert decisions[-1]["team"] == "wil"  # WIL goes, with the corporation
    assert "huisbezoek.meerdere_schuldeisers" in decisions[-1]["rule_ids"]


def test_a_repeat_signal_joins_the_case_as_a_repeat(world: World) -> None:
    assert frozenset({"RE-1", "RE-2"}) in world.zaken(NIEUWEGEIN)
    assert world.status(NIEUWEGEIN, "RE-2") == Signaalstatus.NIET_OPGEPAKT_HERHAALDE_MELDING.value
    assert world.status(NIEUWEGEIN, "RE-1") != Signaalstatus.NIET_OPGEPAKT_HERHAALDE_MELDING.value


def test_paid_before_contact_closes_the_case_as_self_resolved(world: World) -> None:
    zaak = world.zaak(NIEUWEGEIN, "PA-1")
    assert zaak["resultaat"] == Eindresultaat.ZELF_BETAALD_OF_REGELING.value
    assert "contactpogingen" not in zaak

    # Intake heard of the closure (on matching's topic for intake, not the cases topic):
    # the retention of PA-1's personal data now runs.
    async def closed_at() -> Any:
        from eropaf_platform.db import make_engine

        engine = make_engine(world.intake_db)
        try:
            async with engine.connect() as conn:
                return await conn.scalar(
                    sa.text("SELECT case_closed_at FROM signal WHERE signal_ref = :ref"),
                    {"ref": world.ref("PA-1")},
                )
        finally:
            await engine.dispose()

    assert wait_until(lambda: asyncio.run(closed_at()), timeout=30, interval=0.5) is not None


def test_a_household_that_moves_keeps_its_case_in_the_new_municipality(world: World) -> None:
    assert frozenset({"MO-1", "MO-2"}) in world.zaken(IJSSELSTEIN)
    assert not any("MO-1" in zaak for zaak in world.zaken(NIEUWEGEIN))
