"""A region's month of partner messages, generated from a seed, with its ground truth.

`simulate_month(seed=..., signals=...)` returns what the partners send (signals, resolutions
and a share of bad input) and what the system must make of it: the households behind the
signals, the expected feedback per message (status and reason code), and so the expected
cases (one per household with an accepted signal). The same seed and `today` give the same
month, byte for byte.

Realism, per CONTRACT §2.1 and the region file:

- households live at addresses in the region's PC4 areas (postcode letters never SA/SD/SS),
  some with a house-number addition, written differently by different partners
  ("12a", "12" + "A", "12-A"); Dutch names with prefixes and diacritics, the prefix sometimes
  in `Voorvoegsel` and sometimes in `Achternaam`;
- a citizen service number (valid 11-test) where that partner type has one (health insurer,
  WIL, some corporations), none otherwise (then surname and birth date identify the person);
- amounts and dates that fit the partner type (rent in months of rent, a health insurer after
  two months of premium, small water bills), signal dates on working days of the month;
- the month's mix: single-creditor households, households with rent + energy + health-insurance
  arrears, repeat signals from the month before, crisis and warm-handover signals, households
  that moved, resolutions, a resend of the same signal, and bad input that must be rejected
  (bad signature, a partner spoofing another, malformed JSON, bad postcode, out-of-region
  address, a conflicting resend).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from eropaf_contracts.region import Region, load_region

__all__ = [
    "HTTP_PARTNER",
    "BadKind",
    "Household",
    "Month",
    "PartnerMessage",
    "Person",
    "is_valid_bsn",
    "simulate_month",
]

# The corporation that sends over the HTTP channel: weekly spreadsheet exports (CSV, `;`).
HTTP_PARTNER = "provides"

# Corporations by the municipalities they let homes in (illustrative) and relative size.
CORPORATIONS: dict[str, tuple[tuple[str, ...], float]] = {
    "mitros": (("0356",), 0.22),
    "portaal": (("0356",), 0.12),
    "jutphaas": (("0356",), 0.10),
    "viveste": (("0321",), 0.20),
    "provides": (("0353",), 0.14),
    "lekstede": (("1961", "0331"), 0.14),
    "wbv-lopik": (("0331",), 0.08),
}
ENERGY, WATER, HEALTH, WIL = "eneco", "vitens", "zilveren-kruis", "wil"
RENT = "rent"  # placeholder in household kinds: the corporation of the household's municipality

# Household kinds: the creditors that signal a household this month, and their weight.
HOUSEHOLD_KINDS: tuple[tuple[tuple[str, ...], float], ...] = (
    ((RENT,), 0.37),
    ((ENERGY,), 0.10),
    ((HEALTH,), 0.11),
    ((WATER,), 0.04),
    ((RENT, ENERGY), 0.10),
    ((RENT, HEALTH), 0.06),
    ((RENT, ENERGY, HEALTH), 0.09),
    ((ENERGY, WATER), 0.03),
    ((WIL,), 0.05),
    ((RENT, WIL), 0.02),
    ((ENERGY, HEALTH), 0.05),
)

# Municipalities: where people live (approximate number of households) and place names.
MUNICIPALITY_WEIGHTS = {"0356": 0.36, "0321": 0.25, "0353": 0.18, "1961": 0.12, "0331": 0.09}
_MUNICIPALITIES = tuple(MUNICIPALITY_WEIGHTS.items())
PLACES = {
    "0356": ("Nieuwegein",),
    "0321": ("Houten",),
    "0353": ("IJsselstein",),
    "1961": ("Vianen",),
    "0331": ("Lopik", "Benschop", "Polsbroek", "Jaarsveld"),
}
STREETS = (
    "Dorpsstraat", "Kerkstraat", "Molenweg", "Lekdijk", "Prinses Beatrixlaan", "Julianaweg",
    "Wilhelminastraat", "Oranjelaan", "Schoolstraat", "Merelstraat", "Lijsterbeslaan",
    "Zuidstedeweg", "Batauweg", "Herenweg", "Utrechtsestraatweg", "Hollandsspoor",
    "Fokkesteeg", "Plettenburgerweg", "Zandveldseweg", "Graaf Florislaan", "Koningin Julianalaan",
    "Achter de Kerk", "Voorstraat", "Buitenweg", "Ruysdaellaan", "Van Heemstraweg",
    "Pr. Bernhardlaan", "Sint Jansstraat", "Groenewoud", "Hogewaard",
)  # fmt: skip
# (prefix, surname): common Dutch names and names of Dutch residents from elsewhere.
SURNAMES: tuple[tuple[str, str], ...] = (
    ("de", "Jong"), ("", "Jansen"), ("de", "Vries"), ("van den", "Berg"), ("van", "Dijk"),
    ("", "Bakker"), ("", "Janssen"), ("", "Visser"), ("", "Smit"), ("", "Meijer"),
    ("de", "Boer"), ("", "Mulder"), ("de", "Groot"), ("", "Bos"), ("", "Vos"),
    ("", "Peters"), ("", "Hendriks"), ("van", "Leeuwen"), ("", "Dekker"), ("", "Brouwer"),
    ("de", "Wit"), ("", "Dijkstra"), ("", "Smits"), ("de", "Graaf"), ("van der", "Meer"),
    ("van der", "Linden"), ("", "Kok"), ("", "Jacobs"), ("de", "Haan"), ("", "Vermeulen"),
    ("van den", "Heuvel"), ("van der", "Veen"), ("van den", "Broek"), ("de", "Bruijn"),
    ("in 't", "Veld"), ("van 't", "Hof"), ("ter", "Horst"), ("", "Hoëvenaars"),
    ("", "Coëlho"), ("", "Y\u0131lmaz"), ("", "Öztürk"), ("", "Çelik"), ("", "Şahin"),
    ("el", "Amrani"), ("", "Benali"), ("", "Bouzid"), ("", "Wiśniewski"), ("", "Kowalczyk"),
    ("", "Gonçalves"), ("", "Müller"), ("", "Nguyễn"), ("", "Kaya"), ("", "Doğan"),
    ("", "Martína"), ("", "Rosário"), ("", "Geçit"), ("van", "Ooijen"), ("", "Ünal"), ("", "Boğa"),
)  # fmt: skip
FIRST_INITIALS = "AABCDEFGHHIJJJKLMMMNPPRSSTWY"
# Letter pairs PostNL never issues: a postcode with one of these is a typo.
EXCLUDED_LETTERS = frozenset({"SA", "SD", "SS"})
_LETTERS = "ABCDEGHJKLMNPRTVWXZ"
T = TypeVar("T")
OUT_OF_REGION_PC4 = (3511, 3512, 1012, 2511, 3011, 6811)  # Utrecht, Amsterdam, The Hague, ...


class BadKind(StrEnum):
    """Bad input the month carries, each with the reason code intake must answer with."""

    BAD_SIGNATURE = "bad_signature"  # value changed after signing
    SPOOFED = "spoofed"  # a partner signs as itself on another partner's topic
    MALFORMED_JSON = "malformed_json"
    BAD_POSTCODE = "bad_postcode"
    OUT_OF_REGION = "out_of_region"
    CONFLICT = "conflict"  # same ID, same signaaldatum, different content


EXPECTED_REASON: dict[BadKind, str] = {
    BadKind.BAD_SIGNATURE: "invalid_signature",
    BadKind.SPOOFED: "invalid_signature",
    BadKind.MALFORMED_JSON: "invalid_json",
    BadKind.BAD_POSTCODE: "invalid_schema",
    BadKind.OUT_OF_REGION: "out_of_region",
    BadKind.CONFLICT: "conflict",
}


@dataclass(frozen=True)
class Person:
    bsn: str
    initials: str
    prefix: str
    surname: str
    birth_date: date


@dataclass
class Household:
    """One household of the month: where it lives and who signalled it."""

    ref: str  # "H0001": ground truth only, never sent
    gemeentecode: str
    postcode: str
    street: str
    number: int
    addition: str  # "" or e.g. "A", "BIS", "2"
    place: str
    persons: list[Person]
    partners: list[str] = field(default_factory=list)
    signal_ids: list[tuple[str, str]] = field(default_factory=list)  # (partner, ID) accepted
    crisis: bool = False
    warm_handover: bool = False
    repeat: bool = False  # also signalled the month before
    moved_to: str | None = None  # "postcode number": signalled again after a move
    resolved: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class PartnerMessage:
    """One message a partner sends, and what intake must answer.

    `body` is the signal (or resolution) object; `raw` replaces it for malformed JSON. The
    runner signs with `signer`'s key and publishes on `partner`'s topic (or posts `partner`'s
    CSV when `channel` is "http"); `tamper` changes the value after signing.
    """

    seq: int
    day: date  # when it is sent in the month's replay
    partner: str  # whose topic / HTTP endpoint it goes to
    channel: str  # "kafka" | "http"
    kind: str  # "signal" | "resolution"
    body: dict[str, Any] | None
    expected_status: str  # "accepted" | "duplicate" | "rejected"
    expected_reason: str | None = None
    household: str | None = None  # ground truth, None for bad input that has none
    bad: BadKind | None = None
    raw: bytes | None = None
    signer: str | None = None  # default: `partner`
    tamper: bool = False

    @property
    def signal_id(self) -> str | None:
        if self.body is None:
            return None
        value = self.body.get("ID")
        return value if isinstance(value, str) else None


@dataclass
class Month:
    """A month of partner messages with its ground truth."""

    seed: int
    start: date
    end: date
    households: list[Household]
    messages: list[PartnerMessage]

    @property
    def expected_cases(self) -> int:
        """One case per household with at least one accepted signal."""
        return sum(1 for h in self.households if h.signal_ids)

    def by_partner(self) -> dict[str, list[PartnerMessage]]:
        out: dict[str, list[PartnerMessage]] = {}
        for message in self.messages:
            out.setdefault(message.partner, []).append(message)
        return out

    def expected_feedback(self) -> Counter[tuple[str, str, str | None]]:
        """(partner, status, reason) -> number of messages."""
        return Counter((m.partner, m.expected_status, m.expected_reason) for m in self.messages)

    def ground_truth(self) -> dict[str, Any]:
        """JSON-ready ground truth (it holds the generated personal data: keep it local)."""
        return {
            "seed": self.seed,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "messages": len(self.messages),
            "expected_cases": self.expected_cases,
            "households": [
                {
                    "ref": h.ref,
                    "gemeentecode": h.gemeentecode,
                    "partners": h.partners,
                    "signals": [list(s) for s in h.signal_ids],
                    "resolved": [list(s) for s in h.resolved],
                    "crisis": h.crisis,
                    "warm_handover": h.warm_handover,
                    "repeat": h.repeat,
                    "moved": h.moved_to is not None,
                }
                for h in self.households
            ],
            "bad_input": [
                {
                    "seq": m.seq,
                    "partner": m.partner,
                    "kind": m.bad.value,
                    "ID": m.signal_id,
                    "expected_reason": m.expected_reason,
                }
                for m in self.messages
                if m.bad is not None
            ],
        }


# --- small generators -------------------------------------------------------------------------


def is_valid_bsn(value: str) -> bool:
    """The 11-test of a citizen service number (nine digits, weights 9..2 and -1)."""
    if len(value) != 9 or not value.isdigit():
        return False
    digits = [int(c) for c in value]
    total = sum(d * w for d, w in zip(digits, (9, 8, 7, 6, 5, 4, 3, 2, -1), strict=True))
    return total % 11 == 0 and value != "000000000"


def _bsn(rng: random.Random) -> str:
    while True:
        digits = [rng.randrange(1, 7)] + [rng.randrange(10) for _ in range(7)]
        check = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True)) % 11
        if check < 10:
            return "".join(map(str, digits)) + str(check)


def _weighted(rng: random.Random, items: tuple[tuple[T, float], ...]) -> T:
    population, cumulative = _cumulative(items)
    # The same draw as ``rng.choices(population, weights=...)``, which sums the weights so.
    return rng.choices(population, cum_weights=cumulative)[0]


@functools.lru_cache(maxsize=64)
def _cumulative(items: tuple[tuple[T, float], ...]) -> tuple[tuple[T, ...], tuple[float, ...]]:
    return tuple(i for i, _ in items), tuple(itertools.accumulate(w for _, w in items))


def _working_day(rng: random.Random, start: date, end: date) -> date:
    return rng.choice(_working_days(start, end))


@functools.lru_cache(maxsize=16)
def _working_days(start: date, end: date) -> tuple[date, ...]:
    """Monday to Friday from ``start`` to ``end`` (every day if there is none)."""
    days = [start + timedelta(d) for d in range((end - start).days + 1)]
    return tuple(d for d in days if d.weekday() < 5) or tuple(days)


def _ascii(text: str) -> str:
    """Letters without diacritics, as an e-mail address writes a name ("ş" -> "s")."""
    import unicodedata

    folded = unicodedata.normalize("NFKD", text.replace("\u0131", "i"))
    return "".join(c for c in folded if c.isascii() and (c.isalnum() or c in ".-"))


def _id_prefix(partner: str) -> str:
    return {
        "mitros": "MIT",
        "portaal": "PRT",
        "jutphaas": "JW",
        "viveste": "VIV",
        "provides": "PRO",
        "lekstede": "LSW",
        "wbv-lopik": "WBVL",
        "wil": "WIL",
        "eneco": "ENC",
        "vitens": "VIT",
        "zilveren-kruis": "ZK",
    }.get(partner, partner.upper())


class _Generator:
    def __init__(self, region: Region, seed: int, today: date) -> None:
        self.region = region
        self.rng = random.Random(seed)
        self.today = today
        self.start = today - timedelta(days=29)
        self.previous_start = self.start - timedelta(days=30)
        self.counters: Counter[str] = Counter()
        self.addresses: set[tuple[str, int, str]] = set()
        self.identities: set[tuple[str, date]] = set()
        self.bsns: set[str] = set()
        self.pc4: dict[str, list[int]] = {
            m.code: [pc4 for first, last in m.pc4 for pc4 in range(first, last + 1)]
            for m in region.municipalities
        }
        self.types = {p.code: p.types[0].value for p in region.partners}

    # -- people and addresses

    def person(self, family: Person | None = None) -> Person:
        """A new person; with `family`, one who carries that person's surname."""
        rng = self.rng
        while True:
            prefix, surname = (family.prefix, family.surname) if family else rng.choice(SURNAMES)
            birth = date(1941, 1, 1) + timedelta(days=rng.randrange(365 * 62))
            if (surname, birth) in self.identities:
                continue  # two strangers must not share surname + birth date
            self.identities.add((surname, birth))
            break
        while (bsn := _bsn(rng)) in self.bsns:
            pass
        self.bsns.add(bsn)
        initials = "".join(f"{c}." for c in rng.sample(FIRST_INITIALS, rng.choice((1, 1, 2, 3))))
        return Person(bsn, initials, prefix, surname, birth)

    def postcode(self, gemeentecode: str) -> str:
        while True:
            letters = self.rng.choice(_LETTERS) + self.rng.choice(_LETTERS)
            if letters not in EXCLUDED_LETTERS:
                return f"{self.rng.choice(self.pc4[gemeentecode])}{letters}"

    def address(self, gemeentecode: str) -> tuple[str, str, int, str, str]:
        rng = self.rng
        while True:
            postcode = self.postcode(gemeentecode)
            number = rng.randrange(1, 180)
            addition = rng.choices(("", "A", "B", "BIS", "1", "2", "HS"), (80, 6, 4, 2, 3, 3, 2))[0]
            if (postcode, number, addition) not in self.addresses:
                self.addresses.add((postcode, number, addition))
                break
        return postcode, rng.choice(STREETS), number, addition, rng.choice(PLACES[gemeentecode])

    def household(self, n: int) -> Household:
        gemeente = _weighted(self.rng, _MUNICIPALITIES)
        postcode, street, number, addition, place = self.address(gemeente)
        persons = [self.person()]
        if self.rng.random() < 0.22:  # a partner: creditors may know either of them
            same_name = self.rng.random() < 0.5  # married, using one name
            persons.append(self.person(persons[0] if same_name else None))
        return Household(f"H{n:04d}", gemeente, postcode, street, number, addition, place, persons)

    def corporation_for(self, gemeentecode: str) -> str:
        options = tuple(
            (code, w) for code, (areas, w) in CORPORATIONS.items() if gemeentecode in areas
        )
        return _weighted(self.rng, options)

    def next_id(self, partner: str, year: int) -> str:
        self.counters[partner] += 1
        n = self.counters[partner]
        if partner in (ENERGY, WATER):
            return f"{_id_prefix(partner)}{year % 100:02d}{700000 + n * 37:08d}"
        return f"{_id_prefix(partner)}-{year}-{n:05d}"

    # -- signals

    def amount_and_origin(self, partner: str, signaaldatum: date) -> tuple[int, date]:
        rng = self.rng
        kind = self.types[partner]
        if kind == "Huur":  # two to four months of a social rent
            months = rng.choice((2, 2, 2, 3, 3, 4))
            return months * rng.randrange(560, 900), signaaldatum - timedelta(days=30 * months)
        if kind == "Energie":  # monthly advance payments
            months = rng.choice((2, 2, 3, 4, 5))
            return months * rng.randrange(90, 230), signaaldatum - timedelta(days=30 * months)
        if kind == "Water":  # quarterly bills, small amounts
            return rng.randrange(45, 320), signaaldatum - timedelta(days=rng.randrange(45, 130))
        if kind == "Zorg":  # the health insurer signals after two months of premium
            months = rng.choice((2, 2, 3, 4))
            return months * rng.randrange(138, 162), signaaldatum - timedelta(days=30 * months)
        return rng.randrange(150, 3200), signaaldatum - timedelta(days=rng.randrange(30, 180))

    def signal(
        self,
        partner: str,
        household: Household,
        person: Person,
        signaaldatum: date,
        *,
        address: tuple[str, str, int, str, str] | None = None,
        crisis: bool = False,
        warm: bool = False,
    ) -> dict[str, Any]:
        rng = self.rng
        kind = self.types[partner]
        postcode, street, number, addition, place = address or (
            household.postcode,
            household.street,
            household.number,
            household.addition,
            household.place,
        )
        bedrag, ontstaan = self.amount_and_origin(partner, signaaldatum)
        client: dict[str, Any] = {}
        has_bsn = {"Zorg": 1.0, "Overige": 1.0, "Huur": 0.35, "Energie": 0.1}.get(kind, 0.0)
        if rng.random() < has_bsn:
            client["Burgerservicenummer"] = person.bsn
        client["Voorletters"] = person.initials
        if person.prefix and rng.random() < 0.3:
            client["Achternaam"] = f"{person.prefix} {person.surname}"  # one field, as some do
        else:
            if person.prefix:
                client["Voorvoegsel"] = person.prefix
            client["Achternaam"] = person.surname
        client["Geboortedatum"] = person.birth_date.isoformat()
        client["Straatnaam"] = street
        client["Postcode"] = (
            f"{postcode[:4]} {postcode[4:]}" if rng.random() < 0.7 else postcode.lower()
        )
        style = rng.random()
        if addition and style < 0.4:
            client["Huisnummer"] = f"{number}{addition.lower()}"
        elif addition and style < 0.55:
            client["Huisnummer"] = f"{number}-{addition}"
        else:
            client["Huisnummer"] = str(number)
            if addition:
                client["Huisnummertoevoeging"] = addition
        client["Plaatsnaam"] = place
        signal: dict[str, Any] = {
            "ID": self.next_id(partner, signaaldatum.year),
            "crisissignaal": crisis,
            "warmeOverdracht": warm,
            "bedrag": bedrag,
            "ontstaansdatum": ontstaan.isoformat(),
            "signaaldatum": signaaldatum.isoformat(),
            "signaalpartner": {"type": kind},
            "client": client,
        }
        if kind in ("Huur", "Energie", "Overige") and rng.random() < 0.5:
            contact: dict[str, Any] = {"telefoonnummer": f"06-{rng.randrange(10**7, 10**8)}"}
            if rng.random() < 0.5:
                name = _ascii(f"{person.initials[0]}.{person.surname}".lower())
                contact["email"] = f"{name}@example.com"
            signal["contactgegevens"] = contact
        return signal


def simulate_month(
    *, seed: int, signals: int = 700, today: date | None = None, region: Region | None = None
) -> Month:
    """About `signals` partner messages of the month ending `today` (default: the real today),
    with the ground truth. Deterministic for (`seed`, `signals`, `today`)."""
    if signals < 20:
        raise ValueError("simulate at least 20 messages (a month needs every kind of input)")
    # A month is hundreds of thousands of new objects and no reference cycles: the cyclic
    # collector's passes over them find nothing (they took a fifth of the time).
    with _without_cyclic_gc():
        return _simulate(seed, signals, today or date.today(), region)


@contextlib.contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _simulate(seed: int, signals: int, today: date, region: Region | None) -> Month:
    region = region or load_region(None)
    gen = _Generator(region, seed, today)
    rng = gen.rng
    bad_count = max(len(BadKind), round(signals * 0.05))
    resolution_share, duplicate_share = 0.05, 0.01
    good_target = signals - bad_count
    signal_target = round(good_target / (1 + resolution_share + duplicate_share))

    households: list[Household] = []
    planned: list[tuple[date, str, str, dict[str, Any]]] = []  # day, partner, household, body
    n_signals = 0
    while n_signals < signal_target:
        h = gen.household(len(households) + 1)
        kind = _weighted(rng, HOUSEHOLD_KINDS)
        partners = [gen.corporation_for(h.gemeentecode) if p == RENT else p for p in kind]
        h.partners = partners
        h.crisis = rng.random() < 0.03
        h.warm_handover = rng.random() < 0.03
        h.repeat = rng.random() < 0.10
        moves = len(h.persons) == 1 and rng.random() < 0.03
        days: list[date] = []
        for index, partner in enumerate(partners):
            person = rng.choice(h.persons)
            day = _working_day(rng, gen.start, today)
            days.append(day)
            body = gen.signal(
                partner,
                h,
                person,
                day,
                crisis=h.crisis and index == 0,
                warm=h.warm_handover and index == 0,
            )
            planned.append((day, partner, h.ref, body))
            if index == 0 and h.repeat:
                before = _working_day(rng, gen.previous_start, gen.start - timedelta(days=1))
                planned.append((before, partner, h.ref, gen.signal(partner, h, person, before)))
        if moves:  # signalled at the old address, then by another creditor at the new one
            gemeente = _weighted(rng, _MUNICIPALITIES)
            new_address = gen.address(gemeente)
            day = min(today, max(days) + timedelta(days=rng.randrange(3, 12)))
            partner = next(p for p in (HEALTH, ENERGY, WATER) if p not in partners)
            body = gen.signal(partner, h, h.persons[0], day, address=new_address)
            planned.append((day, partner, h.ref, body))
            h.partners.append(partner)
            h.moved_to = f"{new_address[0]} {new_address[2]}"
            h.gemeentecode = gemeente  # the case follows the household
        households.append(h)
        n_signals = len(planned)

    by_ref = {h.ref: h for h in households}
    messages: list[tuple[date, str, str, str, dict[str, Any], str, str | None, str | None]] = []
    for day, partner, ref, body in planned:
        by_ref[ref].signal_ids.append((partner, body["ID"]))
        messages.append((day, partner, "signal", "accepted", body, "accepted", None, ref))

    # Resolutions (paid or a payment arrangement), Kafka partners only; each after the day of
    # the household's last signal (a signal after a fully resolved, closed case opens a new one).
    last_day: dict[str, date] = {}
    for day, _, owner, _ in planned:
        last_day[owner] = max(day, last_day.get(owner, day))
    kafka_signals = [m for m in messages if m[1] != HTTP_PARTNER]
    resolutions = round(len(planned) * resolution_share)
    for m in rng.sample(kafka_signals, k=len(kafka_signals)):
        if resolutions == 0:
            break
        day, partner, _, _, body, _, _, household = m
        assert household is not None
        signaaldatum = date.fromisoformat(body["signaaldatum"])
        paid = max(
            last_day[household] + timedelta(days=1),
            signaaldatum + timedelta(rng.randrange(3, 20)),
        )
        if paid > today:
            continue
        resolution = {"ID": body["ID"], "datumOpgelost": paid.isoformat()}
        messages.append((paid, partner, "resolution", "", resolution, "accepted", None, household))
        resolutions -= 1
        by_ref[household].resolved.append((partner, body["ID"]))
    # A partner's system sends the same signal again: a duplicate, answered as such.
    # (As many as make the total the number asked for, when the households left room.)
    duplicates = max(
        1, min(round(len(planned) * duplicate_share * 3), signals - bad_count - len(messages))
    )
    for m in rng.sample(kafka_signals, k=duplicates):
        day, partner, _, _, body, _, _, household = m
        messages.append((day, partner, "signal", "", dict(body), "duplicate", None, household))

    bad_kinds = [list(BadKind)[i % len(BadKind)] for i in range(bad_count)]
    out: list[PartnerMessage] = []
    for day, partner, what, _, body, status, reason, owner_ref in messages:
        out.append(
            PartnerMessage(
                seq=0,
                day=day,
                partner=partner,
                channel="http" if partner == HTTP_PARTNER else "kafka",
                kind=what,
                body=body,
                expected_status=status,
                expected_reason=reason,
                household=owner_ref,
            )
        )
    out.extend(_bad_input(gen, bad_kinds, [m for m in out if m.kind == "signal"]))
    # Order of sending: by day; on one day signals before resolutions, bad input last.
    order = {"signal": 0, "resolution": 1}
    out.sort(
        key=lambda m: (
            m.day,
            m.bad is not None,
            order[m.kind],
            m.expected_status == "duplicate",
            m.partner,
            m.signal_id or "",
        )
    )
    numbered = [_with_seq(m, i + 1) for i, m in enumerate(out)]
    return Month(seed, gen.previous_start, today, households, numbered)


def _with_seq(message: PartnerMessage, seq: int) -> PartnerMessage:
    # As dataclasses.replace, without its walk over the fields for every message.
    return PartnerMessage(**{**vars(message), "seq": seq})


def _bad_input(
    gen: _Generator, kinds: Sequence[BadKind], accepted: Sequence[PartnerMessage]
) -> list[PartnerMessage]:
    """Bad messages; each must be rejected with its `EXPECTED_REASON` and opens no case."""
    rng = gen.rng
    kafka_partners = sorted({m.partner for m in accepted if m.channel == "kafka"})
    # What a conflicting resend may copy, listed once (not once per conflict: quadratic).
    resendable = [m for m in accepted if m.channel == "kafka" and m.body]
    out: list[PartnerMessage] = []
    for kind in kinds:
        partner = rng.choice(kafka_partners)
        day = _working_day(rng, gen.start, gen.today)
        # A fresh, otherwise valid signal of a stranger (in no household of the ground truth).
        stranger = gen.household(0)
        body = gen.signal(partner, stranger, stranger.persons[0], day)
        common: dict[str, Any] = {
            "seq": 0,
            "day": day,
            "partner": partner,
            "channel": "kafka",
            "kind": "signal",
            "expected_status": "rejected",
            "expected_reason": EXPECTED_REASON[kind],
            "bad": kind,
        }
        if kind is BadKind.BAD_SIGNATURE:
            out.append(PartnerMessage(body=body, tamper=True, **common))
        elif kind is BadKind.SPOOFED:
            signer = rng.choice([p for p in kafka_partners if p != partner])
            out.append(PartnerMessage(body=body, signer=signer, **common))
        elif kind is BadKind.MALFORMED_JSON:
            raw = f'{{"ID": "{body["ID"]}", "bedrag": {body["bedrag"]}, "client": {{'.encode()
            out.append(PartnerMessage(body=None, raw=raw, **common))
        elif kind is BadKind.BAD_POSTCODE:
            pc = body["client"]["Postcode"].replace(" ", "")
            body["client"]["Postcode"] = rng.choice(
                (f"{pc[:4]} SS", f"0{pc[1:4]} {pc[4:]}", f"{pc[:3]} {pc[4:]}")
            )
            # The HTTP partner's spreadsheet has typos too.
            if rng.random() < 0.5:
                common.update(partner=HTTP_PARTNER, channel="http")
                body["signaalpartner"] = {"type": gen.types[HTTP_PARTNER]}
            out.append(PartnerMessage(body=body, **common))
        elif kind is BadKind.OUT_OF_REGION:
            letters = rng.choice(("AB", "CD", "KL", "GH"))
            body["client"]["Postcode"] = f"{rng.choice(OUT_OF_REGION_PC4)} {letters}"
            body["client"]["Plaatsnaam"] = "Utrecht"
            out.append(PartnerMessage(body=body, **common))
        elif kind is BadKind.CONFLICT:
            original = rng.choice(resendable)
            assert original.body is not None
            changed = {**original.body, "bedrag": original.body["bedrag"] + 100}
            out.append(
                PartnerMessage(
                    **{**common, "partner": original.partner, "day": original.day},
                    body=changed,
                )
            )
    return out


# --- files ------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "ID", "signaalpartner.type", "signaaldatum", "ontstaansdatum", "bedrag", "crisissignaal",
    "warmeOverdracht", "Burgerservicenummer", "Voorletters", "Voorvoegsel", "Achternaam",
    "Geboortedatum", "Straatnaam", "Huisnummer", "Huisnummertoevoeging", "Postcode",
    "Plaatsnaam", "telefoonnummer", "email",
)  # fmt: skip


def csv_text(signals: Sequence[dict[str, Any]]) -> str:
    """Signals as a Dutch spreadsheet exports them: `;`-separated, DDAS column names,
    booleans as ja/nee, CRLF line ends."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for signal in signals:
        flat: dict[str, Any] = {
            **{k: v for k, v in signal.items() if not isinstance(v, dict)},
            **signal.get("client", {}),
            **signal.get("contactgegevens", {}),
            "signaalpartner.type": signal.get("signaalpartner", {}).get("type"),
        }
        row = []
        for column in CSV_COLUMNS:
            value = flat.get(column)
            row.append("ja" if value is True else "nee" if value is False else value or "")
        writer.writerow(row)
    return buffer.getvalue()


def write_files(month: Month, out_dir: Any) -> list[Any]:
    """Per partner what it sends, as `eropaf partner publish` reads it: `<code>.json` (signals,
    JSON array) or, for the HTTP partner, `<code>.csv` (`;`); `<code>.resolutions.json`; and
    `ground-truth.json`. Bad input that needs keys or broken bytes (signatures, spoofing,
    malformed JSON) is described in the ground truth only. Returns the paths written."""
    import json
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for partner, messages in sorted(month.by_partner().items()):
        fileable = [m for m in messages if m.body is not None and not m.tamper and not m.signer]
        signals = [m.body for m in fileable if m.kind == "signal" and m.body is not None]
        resolutions = [m.body for m in fileable if m.kind == "resolution" and m.body is not None]
        if signals and partner == HTTP_PARTNER:
            path = out / f"{partner}.csv"
            path.write_text(csv_text(signals), encoding="utf-8")
            written.append(path)
        elif signals:
            path = out / f"{partner}.json"
            path.write_text(json.dumps(signals, ensure_ascii=False, indent=1) + "\n")
            written.append(path)
        if resolutions:
            path = out / f"{partner}.resolutions.json"
            path.write_text(json.dumps(resolutions, ensure_ascii=False, indent=1) + "\n")
            written.append(path)
    truth = out / "ground-truth.json"
    truth.write_text(json.dumps(month.ground_truth(), ensure_ascii=False, indent=1) + "\n")
    written.append(truth)
    return written
