"""Approximate matching of strings, as OpenLDAP's slapd does it (RFC 4511
§4.5.1.7.6 leaves the algorithm to the server).

- The string attributes (whose equality rule is caseIgnoreMatch,
  caseExactMatch, caseIgnoreIA5Match or caseExactIA5Match, `PHONETIC`)
  match approximately by sound; every other attribute's approximate match
  is its equality match.
- A value is reduced to ASCII first: compatibility decomposition (NFKD),
  then every non-ASCII code point dropped, so `Zoë` is `Zoe`.
- Words are separated by spaces. Each word's key is its metaphone code
  (Lawrence Philips, 1990, in the University of Michigan variant slapd
  uses): its letters before the first digit, punctuation or non-ASCII
  character, at most 31, give a code of at most four letters.
- A value matches an assertion when the assertion's word keys appear among
  the value's word keys in the same order, not necessarily adjacent; an
  assertion without words matches nothing.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Callable, Iterable

PHONETIC = frozenset({
    "2.5.13.2",                     # caseIgnoreMatch
    "2.5.13.5",                     # caseExactMatch
    "1.3.6.1.4.1.1466.109.114.1",   # caseExactIA5Match
    "1.3.6.1.4.1.1466.109.114.2",   # caseIgnoreIA5Match
})

MAX_CODE = 4
MAX_LETTERS = 31

VOWELS = frozenset("AEIOU")
FRONT_VOWELS = frozenset("EIY")
KEPT = frozenset("FJLMNR")            # letters that stand for themselves
SOFTENING = frozenset("CGPST")        # an H after these is silent
NO_GH_F = frozenset("BDH")            # GH after these, three back, is no F

# Openings whose first letter is silent; slapd's WH keeps the W instead.
SILENT_FIRST = {"KN": "N", "GN": "N", "PN": "N", "AE": "E", "WR": "R", "WH": "W"}


class _Word:
    """A word's letters, read as "" beyond either end (which no letter set
    holds), so rules look around freely."""

    def __init__(self, letters: str) -> None:
        self.letters = letters

    def at(self, i: int) -> str:
        return self.letters[i] if 0 <= i < len(self.letters) else ""


Rule = Callable[[_Word, int], str]


def _b(w: _Word, i: int) -> str:
    # slapd's variant keeps a B only as the last letter, and not after M.
    return "B" if i == len(w.letters) - 1 and w.at(i - 1) != "M" else ""


def _c(w: _Word, i: int) -> str:
    after = w.at(i + 1)
    if w.at(i - 1) == "S" and after in FRONT_VOWELS:
        return ""
    if after == "I" and w.at(i + 2) == "A":
        return "X"
    if after in FRONT_VOWELS:
        return "S"
    if after == "H":
        first = i == 0 and w.at(i + 2) not in VOWELS
        return "K" if first or w.at(i - 1) == "S" else "X"
    return "K"


def _d(w: _Word, i: int) -> str:
    return "J" if w.at(i + 1) == "G" and w.at(i + 2) in FRONT_VOWELS else "T"


def _g(w: _Word, i: int) -> str:
    after, second = w.at(i + 1), w.at(i + 2)
    spoken = ((after != "J" or second in VOWELS)
              and (after != "N" or (i + 1 < len(w.letters)
                                    and (second != "E" or w.at(i + 3) != "D")))
              and (w.at(i - 1) != "D" or after not in FRONT_VOWELS))
    if spoken:
        return "G" if after in FRONT_VOWELS and second != "G" else "K"
    if after == "H" and w.at(i - 3) not in NO_GH_F and w.at(i - 4) != "H":
        return "F"
    return ""


def _h(w: _Word, i: int) -> str:
    before, after = w.at(i - 1), w.at(i + 1)
    if before in SOFTENING or (before in VOWELS and after not in VOWELS):
        return ""
    return "H"


def _k(w: _Word, i: int) -> str:
    return "" if w.at(i - 1) == "C" else "K"


def _p(w: _Word, i: int) -> str:
    return "F" if w.at(i + 1) == "H" else "P"


def _s(w: _Word, i: int) -> str:
    after = w.at(i + 1)
    return "X" if after == "H" or (after == "I" and w.at(i + 2) in ("O", "A")) else "S"


def _t(w: _Word, i: int) -> str:
    after = w.at(i + 1)
    if after == "I" and w.at(i + 2) in ("O", "A"):
        return "X"
    if after == "H":
        return "0"
    return "" if after == "C" and w.at(i + 2) == "H" else "T"


def _before_vowel(w: _Word, i: int) -> str:
    return w.letters[i] if w.at(i + 1) in VOWELS else ""


def _x(w: _Word, i: int) -> str:
    return "KS"  # an initial X was made an S by `_opened`


RULES: dict[str, Rule] = {
    "B": _b, "C": _c, "D": _d, "G": _g, "H": _h, "K": _k, "P": _p, "S": _s, "T": _t,
    "W": _before_vowel, "Y": _before_vowel, "X": _x,
    "Q": lambda w, i: "K", "V": lambda w, i: "F", "Z": lambda w, i: "S",
}


def _letters(word: str) -> str:
    """The upper-cased letters before the first non-ASCII character, space,
    punctuation or digit (other control characters are skipped)."""
    letters = []
    for c in word:
        if not c.isascii() or c.isspace() or c.isdigit() or c in string.punctuation:
            break
        if c.isalpha():
            letters.append(c.upper())
            if len(letters) == MAX_LETTERS:
                break
    return "".join(letters)


def _opened(letters: str) -> str:
    """`letters` with a silent first letter dropped, and an initial X as S."""
    opening = letters[:2]
    if opening in SILENT_FIRST:
        return SILENT_FIRST[opening] + letters[2:]
    return "S" + letters[1:] if opening[:1] == "X" else letters


def phonetic(word: str) -> str:
    """The metaphone code of `word` (its letters as `_letters` reads them)."""
    letters = _opened(_letters(word))
    w = _Word(letters)
    code = ""
    swallowed = False
    for i, letter in enumerate(letters):
        if len(code) >= MAX_CODE:
            break
        if swallowed:
            # slapd writes a non-initial X's S in place of the next letter.
            swallowed = False
            code += "S"
        elif i and letters[i - 1] == letter and letter != "C":
            continue
        elif letter in KEPT or (i == 0 and letter in VOWELS):
            code += letter
        elif letter in RULES:
            sound = RULES[letter](w, i)
            swallowed = sound == "KS"
            code += sound[:1]
    if swallowed:
        code += "S"
    return code[:MAX_CODE]


def ascii_form(value: bytes) -> str:
    """`value` decomposed (NFKD), without what is not ASCII."""
    text = value.decode(errors="replace")
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return text


def value_keys(value: bytes) -> tuple[str, ...]:
    """The phonetic key of each space-separated word of a stored value."""
    return tuple(phonetic(word) for word in ascii_form(value).split(" "))


def assertion_keys(value: bytes) -> tuple[str, ...]:
    """The phonetic key of each word of an assertion value."""
    return tuple(phonetic(word) for word in ascii_form(value).split(" ") if word)


def matches(keys: Iterable[str], asserted: tuple[str, ...]) -> bool:
    """Whether `asserted` appears, in order, within `keys`."""
    if not asserted:
        return False
    remaining = iter(keys)
    return all(key in remaining for key in asserted)
