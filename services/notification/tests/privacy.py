"""A household's personal values as they enter the pipeline (intake's input), and a scan of
sent messages for any of them."""

from __future__ import annotations

import re

HOUSEHOLD = {
    "naam": "Jozefien Wilhelmina Oudendijk",
    "achternaam": "Oudendijk",
    "bsn": "168149327",
    "geboortedatum": "1979-07-23",
    "geboortedatum_nl": "23-07-1979",
    "straat": "Vlinderhof",
    "huisnummer": "137",
    "postcode": "3431 VK",
    "telefoon": "06-28734519",
    "email": "j.oudendijk@example.nl",
    "bedrag": "2718",
    "bedrag_eur": "€ 2.718",
}


def leaks(text: str) -> list[str]:
    """The personal values found in ``text`` as whole tokens (case-insensitive; also with
    spaces and dashes left out, e.g. a phone number written without them). Whole tokens, so a
    house number is not "found" inside a MIME boundary or a hex reference."""
    folded = text.casefold()
    squeezed = re.sub(r"[\s-]", "", folded)
    found = []
    for name, value in HOUSEHOLD.items():
        v = value.casefold()
        variants = {v, re.sub(r"[\s-]", "", v)}
        for haystack in (folded, squeezed):
            if any(
                re.search(rf"(?<![0-9a-z]){re.escape(x)}(?![0-9a-z])", haystack) for x in variants
            ):
                found.append(name)
                break
    return found
