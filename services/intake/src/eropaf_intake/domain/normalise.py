"""Normalisation of the personal-data fields of a signal.

Two purposes, kept apart:

- *storage* normalisation (`normalise_text`, `normalise_postcode`, `normalise_house_number`):
  what we keep is the partner's value, only cleaned up (NFC, trimmed, canonical postcode);
- *matching* keys (`surname_key`, `initials_key`): lossy forms that make spelling variants of
  the same person compare equal ("van Dijk" / "Dijk, van" / "VAN DIJK", "Çelik" / "Celik").
  They are only ever fed into keyed pseudonyms, never stored or shown.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


class NormalisationError(ValueError):
    """A value cannot be normalised; the message is safe to return to the partner."""


# Categories that never belong in a name or address: C0/C1 controls (incl. tab and newline),
# format characters (bidi overrides that can disguise text, zero-width characters),
# surrogates, line/paragraph separators.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def find_control_characters(value: str) -> list[str]:
    """The forbidden characters in `value`, as `U+XXXX` code points (in order, deduplicated)."""
    # Every forbidden category is non-printable: a printable string (nearly every value; one
    # C call) needs no walk character by character.
    if value.isprintable():
        return []
    found: list[str] = []
    for char in value:
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            code = f"U+{ord(char):04X}"
            if code not in found:
                found.append(code)
    return found


def normalise_text(value: str) -> str:
    """NFC, trimmed, inner whitespace runs collapsed to one space; control characters rejected."""
    forbidden = find_control_characters(value)
    if forbidden:
        raise NormalisationError(f"contains control characters: {', '.join(forbidden)}")
    # NFC so that "é" typed as e + combining accent and the precomposed form are stored alike;
    # str.split() also splits on Unicode spaces such as the no-break space from spreadsheets.
    return " ".join(unicodedata.normalize("NFC", value).split())


# --- postcode ---------------------------------------------------------------------------------

_POSTCODE = re.compile(r"[1-9][0-9]{3}[A-Z]{2}")
# PostNL never issues these letter pairs (historical connotations), so they signal a typo.
_EXCLUDED_POSTCODE_LETTERS = frozenset({"SA", "SD", "SS"})


def normalise_postcode(value: str) -> str:
    """`"3431 ab"` -> `"3431AB"`; raises `NormalisationError` when not a Dutch postcode."""
    compact = "".join(unicodedata.normalize("NFKC", value).split()).upper()
    if not _POSTCODE.fullmatch(compact):
        raise NormalisationError(
            "not a Dutch postcode (four digits, not starting with 0, and two letters)"
        )
    if compact[4:] in _EXCLUDED_POSTCODE_LETTERS:
        raise NormalisationError(f"not a Dutch postcode (letters {compact[4:]} are never issued)")
    return compact


def is_valid_postcode(value: str) -> bool:
    try:
        normalise_postcode(value)
    except NormalisationError:
        return False
    return True


def postcode_area(postcode: str) -> str:
    """The PC4 area ("3431") of a normalised postcode: coarse enough to leave intake."""
    return postcode[:4]


# --- house number -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HouseNumber:
    number: int
    # Huisletter and huisnummertoevoeging together, upper case, separators removed ("" if none).
    addition: str = ""


_HOUSE_NUMBER = re.compile(r"(?P<number>[0-9]+)(?P<rest>.*)", re.DOTALL)
_ADDITION_SEPARATORS = re.compile(r"[\s\-/.,]+")
_ADDITION = re.compile(r"[A-Z0-9]*")
_MAX_HOUSE_NUMBER = 99999  # BAG limit
_MAX_ADDITION = 10  # BAG: letter (1) + toevoeging (4); leave room for "BIS", "HS" spelt out


def _normalise_addition(raw: str) -> str:
    addition = _ADDITION_SEPARATORS.sub("", unicodedata.normalize("NFKC", raw)).upper()
    if not _ADDITION.fullmatch(addition):
        raise NormalisationError("house number addition may contain only letters and digits")
    return addition


def normalise_house_number(huisnummer: str, huisnummertoevoeging: str | None = None) -> HouseNumber:
    """Split and canonicalise a house number; the addition may be glued to the number.

    `"12-a"`, `"12 A"`, `"12a"`, and `"12"` + `"a"` / `"-A"` all give `HouseNumber(12, "A")`.
    """
    match = _HOUSE_NUMBER.fullmatch(unicodedata.normalize("NFKC", huisnummer).strip())
    if match is None:
        raise NormalisationError("house number must start with digits")
    number = int(match["number"])
    if not 1 <= number <= _MAX_HOUSE_NUMBER:
        raise NormalisationError(f"house number must be between 1 and {_MAX_HOUSE_NUMBER}")
    addition = _normalise_addition(match["rest"])
    if huisnummertoevoeging:
        addition += _normalise_addition(huisnummertoevoeging)
    if len(addition) > _MAX_ADDITION:
        raise NormalisationError(f"house number addition longer than {_MAX_ADDITION} characters")
    return HouseNumber(number, addition)


# --- matching keys ----------------------------------------------------------------------------

# Letters that NFKD does not decompose into a base letter + mark.
_LETTER_FOLDS = str.maketrans(
    {
        "ø": "o",
        "æ": "ae",
        "œ": "oe",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "\u0131": "i",  # dotless i
        "ħ": "h",
    }
)


def _fold(value: str) -> str:
    """Strip diacritics and case: "Çelik" -> "celik", "Straße" -> "strasse"."""
    decomposed = unicodedata.normalize("NFKD", value)
    without_marks = "".join(c for c in decomposed if not unicodedata.combining(c))
    return without_marks.casefold().translate(_LETTER_FOLDS)


# Tokens of surname prefixes (voorvoegsels, after the GBA prefix table, plus common foreign
# particles). Multi-word prefixes ("van der", "in 't", "op de") are runs of these tokens;
# apostrophes split tokens, so "'t" and "'s" arrive as "t" and "s".
_PREFIX_TOKENS = frozenset(
    {
        "a", "aan", "al", "am", "auf", "aus", "ben", "bij", "bin", "d", "da", "dal", "dalla",
        "das", "de", "del", "dell", "della", "dello", "den", "der", "des", "di", "do", "dos",
        "du", "el", "het", "in", "l", "la", "las", "le", "les", "lo", "los", "m", "onder", "op",
        "over", "s", "t", "te", "ten", "ter", "thoe", "tho", "thor", "to", "toe", "tot", "uit",
        "uijt", "unter", "van", "vande", "vanden", "vander", "ver", "vom", "von", "voor", "zu",
        "zum", "zur",
    }
)  # fmt: skip
_TOKEN_SPLIT = re.compile(r"[^\w]+|_+")


def surname_key(achternaam: str, voorvoegsel: str | None = None) -> str:
    """A matching key for a surname: prefixes dropped, letters only, no case or diacritics.

    `"van Dijk"`, `"Dijk, van"`, `"VAN DIJK"` and `("Dijk", voorvoegsel="van")` all give `"dijk"`.
    Only *leading* prefixes go, so double names keep their inner particle
    ("Jansen-de Vries" -> "jansendevries"). Raises `NormalisationError` if no letters remain.
    """
    name = _fold(achternaam)
    # Registers write "Dijk, van": move the part after the comma to the front.
    if "," in name:
        main, _, prefix = name.partition(",")
        name = f"{prefix} {main}"
    if voorvoegsel:
        name = f"{_fold(voorvoegsel)} {name}"
    tokens = [t for t in _TOKEN_SPLIT.split(name) if t]
    # Keep at least the last token: a surname that is itself a particle ("Le", "Van") stays.
    while len(tokens) > 1 and tokens[0] in _PREFIX_TOKENS:
        tokens.pop(0)
    key = "".join(c for c in "".join(tokens) if c.isalpha())
    if not key:
        raise NormalisationError("surname contains no letters")
    return key


def initials_key(voorletters: str) -> str:
    """`"J.P."`, `"j p"`, `"JP"` -> `"JP"`; `"Th."` (Theodorus) -> `"T"`.

    A group written as capital + lower case ("Th", "Chr") is one abbreviated name; otherwise each
    letter is an initial. Returns "" when there are no letters.
    """
    initials: list[str] = []
    for group in re.split(r"[\s.\-]+", voorletters.strip()):
        letters = "".join(c for c in group if c.isalpha())
        if not letters:
            continue
        if len(letters) > 1 and letters[0].isupper() and letters[1:].islower():
            initials.append(letters[0])
        else:
            initials.extend(letters)
    return _fold("".join(initials)).upper()
