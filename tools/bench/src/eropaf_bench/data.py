"""Generated, deterministic (seeded) workloads: pseudonymous events for the yardstick, DDAS
signals as partners send them, and signed signals of multi-creditor households."""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from eropaf_contracts.cloudevents import CloudEventHeaders

MUNICIPALITIES = ("0321", "0353", "0331", "0356", "1961")
PARTNERS = ("mitros", "viveste", "lekstede", "provides", "portaal", "jutphaas", "wbv-lopik", "wil")
_PC4_IN_REGION = (*range(3400, 3405), *range(3430, 3440), *range(3990, 4000), *range(4130, 4134))
SERVED_PC4 = (3400, 3401, 3402, 3431, 3432, 3433, 3434, 3435, 3991, 3992)
_SURNAMES = ("Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit", "Meijer", "Mulder")

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Message:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def signal_messages(count: int, *, seed: int = 7) -> list[Message]:
    """Pseudonymous arrears signals as they travel after intake, ~700-900 bytes each.

    Deterministic (seeded) so runs are comparable; keys are household pseudonyms
    so, as in production, one household's events share a partition.
    """
    rng = random.Random(seed)
    households = [hashlib.sha256(f"hh-{seed}-{i}".encode()).hexdigest() for i in range(5_000)]
    base_day = date(2026, 1, 1)
    messages = []
    for n in range(count):
        household = rng.choice(households)
        gemeente = rng.choice(MUNICIPALITIES)
        partner = rng.choice(PARTNERS)
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        signaaldatum = base_day + timedelta(days=rng.randrange(365))
        body = {
            "signal_id": event_id,
            "household_pseudonym": household,
            "person_pseudonym": hashlib.sha256(f"{household}-{n % 3}".encode()).hexdigest(),
            "partner": partner,
            "partner_reference": f"{partner.upper()}-{rng.randrange(10**9):09d}",
            "gemeente": gemeente,
            "postcode_area": f"{rng.randrange(3400, 4130)}",
            "vroegsignaal": {
                "signaaldatum": signaaldatum.isoformat(),
                "soort_schuldeiser": rng.choice(["woningcorporatie", "energie", "water", "zvw"]),
                "bedrag": {"waarde": rng.randrange(15_000, 450_000), "valuta": "EUR"},
                "achterstand_maanden": rng.randrange(1, 6),
                "aanmaning_verstuurd": True,
                "datum_aanmaning": (signaaldatum - timedelta(days=14)).isoformat(),
                "einde_levering_aangekondigd": rng.random() < 0.05,
                "crisis": rng.random() < 0.02,
            },
            "contract": {
                "soort": "huur",
                "ingangsdatum": (base_day - timedelta(days=rng.randrange(90, 7000))).isoformat(),
                "maandbedrag": rng.randrange(45_000, 120_000),
            },
            "triage_hints": {"eerder_signaal": rng.random() < 0.2, "aantal_schuldeisers": 1},
            "received_at": f"{signaaldatum.isoformat()}T{rng.randrange(24):02d}:"
            f"{rng.randrange(60):02d}:00Z",
            "schema_version": "1.0",
        }
        value = json.dumps(body, separators=(",", ":")).encode()
        traceparent = f"00-{rng.getrandbits(128):032x}-{rng.getrandbits(64):016x}-01".encode()
        headers = CloudEventHeaders.new(
            f"urn:eropaf:intake:{partner}",
            "nl.eropaf.signal.accepted.v1",
            id=event_id,
            time=datetime.combine(signaaldatum, time(12), UTC),
        ).to_kafka()
        headers += [("ce_subject", household.encode()), ("traceparent", traceparent)]
        messages.append(Message(household.encode(), value, headers))
    return messages


def _valid_bsn(rng: random.Random) -> str:
    while True:
        digits = [rng.randrange(1, 10)] + [rng.randrange(10) for _ in range(7)]
        check = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True)) % 11
        if check < 10:
            return "".join(map(str, digits)) + str(check)


def partner_signal_bodies(count: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """Valid DDAS signals (client data included, as partners send them), deterministic."""
    rng = random.Random(seed)
    today = date.today()
    bodies = []
    for n in range(count):
        surname = rng.choice(_SURNAMES)
        prefix, _, last = surname.rpartition(" ")
        # No S: SA, SD and SS are never issued, and every signal here must be accepted.
        letters = "".join(rng.choice("ABCDEGHJKLNPRTVWXZ") for _ in range(2))
        bodies.append(
            {
                "ID": f"B-{seed}-{n:07d}",
                "crisissignaal": rng.random() < 0.02,
                "warmeOverdracht": False,
                "bedrag": rng.randrange(150, 4_500),
                "ontstaansdatum": (today - timedelta(days=rng.randrange(30, 200))).isoformat(),
                "signaaldatum": (today - timedelta(days=rng.randrange(0, 20))).isoformat(),
                "signaalpartner": {"type": "Huur"},
                "client": {
                    "Burgerservicenummer": _valid_bsn(rng),
                    "Voorletters": rng.choice("ABCDEFGHIJKLMNPRSTW") + ".",
                    "Voorvoegsel": prefix or None,
                    "Achternaam": last,
                    "Geboortedatum": date(1940 + rng.randrange(60), rng.randrange(1, 13), 1)
                    .replace(day=rng.randrange(1, 29))
                    .isoformat(),
                    "Straatnaam": f"{rng.choice(('Dorps', 'Kerk', 'Molen', 'Lek'))}straat",
                    "Postcode": f"{rng.choice(_PC4_IN_REGION)} {letters}",
                    "Huisnummer": str(rng.randrange(1, 250)),
                    "Plaatsnaam": "Nieuwegein",
                },
            }
        )
    return bodies


@dataclass(frozen=True)
class PartnerKeys:
    code: str
    kind: str
    kid: str
    key: Any  # Ed25519PrivateKey


@dataclass(frozen=True)
class SignedSignal:
    topic: str
    key: bytes
    value: bytes
    headers: Headers
    ref: str  # the signal ref intake derives for it


@dataclass
class _Household:
    postcode: str
    street: str
    number: str
    persons: list[dict[str, str]] = field(default_factory=list)


def _household(rng: random.Random, n: int) -> _Household:
    letters = "".join(rng.choice("ABEGHJKLNPRTVWXZ") for _ in range(2))  # no SS/SA/SD
    h = _Household(f"{rng.choice(SERVED_PC4)} {letters}", f"Benchstraat{n}", str(1 + n % 300))
    for p in range(rng.choice((1, 1, 2))):
        h.persons.append(
            {
                "Burgerservicenummer": _valid_bsn(rng),
                "Voorletters": rng.choice(("J.", "A.M.", "K.", "P.")),
                "Achternaam": f"Bench{n}x{p}",
                "Geboortedatum": (
                    date(1940, 1, 1) + timedelta(days=rng.randrange(20_000))
                ).isoformat(),
            }
        )
    return h


def make_signals(
    partners: Sequence[PartnerKeys], count: int, *, seed: int, run: str, pseudonym_key: str
) -> list[SignedSignal]:
    """``count`` signed signals of households with one to four creditors (most one or two),
    in random order; valid for intake (served postcodes, valid BSNs, past dates). Each
    carries the ref intake derives for it with ``pseudonym_key``."""
    from eropaf_contracts.cloudevents import SIGNAL_SUBMITTED_TYPE, CloudEventHeaders
    from eropaf_contracts.topics import signals_topic
    from eropaf_intake.adapters import jws
    from eropaf_intake.domain.match_tokens import signal_ref

    rng = random.Random(seed)
    today = datetime.now(UTC).date()
    out: list[SignedSignal] = []
    n = 0
    while len(out) < count:
        n += 1
        h = _household(rng, n)
        creditors = rng.sample(list(partners), k=min(len(partners), rng.choice((1, 1, 2, 2, 3, 4))))
        for partner in creditors:
            if len(out) == count:
                break
            who = rng.choice(h.persons)
            signaaldatum = today - timedelta(days=rng.randrange(1, 60))
            signal_id = f"B-{run}-{seed}-{len(out)}"
            body = {
                "ID": signal_id,
                "crisissignaal": rng.random() < 0.02,
                "warmeOverdracht": False,
                "bedrag": rng.choice((120, 350, 600, 900, 1500, 2400)),
                "ontstaansdatum": (signaaldatum - timedelta(days=60)).isoformat(),
                "signaaldatum": signaaldatum.isoformat(),
                "signaalpartner": {"type": partner.kind},
                "client": {
                    **who,
                    "Straatnaam": h.street,
                    "Postcode": h.postcode,
                    "Huisnummer": h.number,
                    "Plaatsnaam": "Nieuwegein",
                },
            }
            value = json.dumps(body).encode()
            signature = jws.sign_detached(value, partner.key, partner.kid)
            headers = CloudEventHeaders.new(partner.code, SIGNAL_SUBMITTED_TYPE)
            out.append(
                SignedSignal(
                    topic=signals_topic(partner.code),
                    key=signal_id.encode(),
                    value=value,
                    headers=headers.with_signature(signature).to_kafka(),
                    ref=signal_ref(pseudonym_key.encode(), partner.code, signal_id),
                )
            )
    rng.shuffle(out)
    return out
