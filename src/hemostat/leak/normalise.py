"""Identifier normalisation: the one canonical text of a NIR, an e-mail, a name, a birth date or
a staff number, so that an export and a damaged dump of it give the same keyed hash.

Decisions (docs/leak.md repeats them):
- NIR: spaces, dots, dashes, slashes dropped; 15 characters must carry a valid key
  (97 - body mod 97, Corsica 2A/2B counted as 19/18); 13 characters are a NIR without key.
  The canonical form is the 13-character body, so "with key" and "without key" match.
- E-mail: the address found in the text (``Jean <JEAN@x.fr>``, ``mailto:``), lower-cased,
  a ``+tag`` removed (same mailbox). Dots in the local part are kept.
- Names: mojibake repaired (UTF-8 read as Windows-1252), accents and case folded, ligatures
  spelt out, punctuation made spaces; the key is the *letters* of the words, sorted,
  so that "DUPONT Jean", "Jean Dupont", "N'Diaye"/"NDIAYE", "Le Gall"/"LEGALL" and swapped or
  merged name columns agree. At least two words are needed (a first name alone names no
  one). Two spellings are added for text whose accents were lost on the way: every non-ASCII
  letter as ``?``, and every non-ASCII letter dropped.
- Birth dates: ISO first, then day-first (French: 07/03/1980 is 7 March) unless only
  month-first is possible; 8 digits as YYYYMMDD, else DDMMYYYY; French and English month
  names; a two-digit year gives both 19yy and 20yy; a UTC midnight-shifted timestamp
  (``T22:00Z``/``T23:00Z``) also gives the next day.
- Staff numbers: upper-case, separators dropped, leading zeros dropped (spreadsheets drop them).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta

_SEPARATORS = re.compile(r"[\s.\-_/]+")
_FLOAT_TAIL = re.compile(r"^(\d+)\.0+$")  # 180037512345678.0 written by a spreadsheet
_NIR_BODY = re.compile(r"[1-8]\d{4}(?:\d{2}|2[AB])\d{6}")
_CORSICA = {"2A": "19", "2B": "18"}


def nir_key(body: str) -> int:
    """The control key of a 13-character NIR body: 97 - (body mod 97)."""
    digits = body[:5] + _CORSICA.get(body[5:7], body[5:7]) + body[7:]
    return 97 - int(digits) % 97


def nir(text: str) -> str | None:
    """The 13-character NIR body of ``text``, or None if it is not a NIR (or its key is wrong)."""
    tail = _FLOAT_TAIL.match(text.strip())
    compact = _SEPARATORS.sub("", tail[1] if tail else text).upper()
    body, key = compact[:13], compact[13:]
    if len(compact) not in (13, 15) or not _NIR_BODY.fullmatch(body):
        return None
    if key and (not key.isdigit() or int(key) != nir_key(body)):
        return None
    return body


_EMAIL = re.compile(r"[a-z0-9._%+'!#$&*=?^`{|}~-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+")


def email(text: str) -> str | None:
    """The lower-case address in ``text`` without its ``+tag``, or None."""
    found = _EMAIL.search(unicodedata.normalize("NFKC", text).lower())
    if not found:
        return None
    local, domain = found[0].split("@", 1)
    local = local.split("+", 1)[0].strip(".")
    return f"{local}@{domain}" if local else None


_LIGATURES = str.maketrans(
    {
        "œ": "oe",
        "Œ": "OE",
        "æ": "ae",
        "Æ": "AE",
        "ß": "ss",
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "\ufffd": "?",
    }
)
_CP1252_HIGH = bytes(range(0x80, 0xC0)).decode("cp1252", errors="ignore")
_MOJIBAKE = re.compile(f"[\u00c2-\u00c5][{re.escape(_CP1252_HIGH)}]")  # UTF-8 lead + trail
_NOT_LETTER = re.compile(r"[^a-z?]+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def repair(text: str) -> str:
    """Undo UTF-8 read as Windows-1252 or Latin-1 (``HÃ©lÃ¨ne``), word by word; other text
    is returned as is."""
    if not _MOJIBAKE.search(text):
        return text
    return re.sub(r"\S+", lambda word: _repair_word(word[0]), text)


def _repair_word(word: str) -> str:
    if _MOJIBAKE.search(word):
        for codec in ("cp1252", "latin-1"):
            try:
                return word.encode(codec).decode("utf-8")
            except UnicodeError:
                continue
    return word


def fold_name(text: str) -> str:
    """Lower-case ASCII words separated by one space: ``"Hélène  D'ARC-Œuvre"`` ->
    ``"helene d arc oeuvre"``. A ``?`` (or U+FFFD) left by a lossy conversion is kept."""
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", repair(text).translate(_LIGATURES))
        text = _COMBINING.sub("", decomposed)
    return " ".join(_NOT_LETTER.sub(" ", text.casefold()).split())


def name_spellings(text: str) -> tuple[str, ...]:
    """The name keys of a full name: the sorted letters of its folded words, then
    the same for the spellings a lossy conversion makes (non-ASCII as ``?``, non-ASCII
    dropped). Fewer than two words identify no one: empty."""
    whole = unicodedata.normalize("NFC", repair(text))
    lossy = () if whole.isascii() else (_NON_ASCII.sub("?", whole), _NON_ASCII.sub("", whole))
    spellings: list[str] = []
    for variant in (whole, *lossy):
        words = fold_name(variant).split()
        key = "".join(sorted("".join(words)))
        if len(words) >= 2 and key not in spellings:
            spellings.append(key)
    return tuple(spellings)


def staff_number(text: str) -> str | None:
    """Upper-case, separators and leading zeros dropped: ``" mat-004512 "`` -> ``"MAT004512"``,
    ``"004512"`` -> ``"4512"``."""
    tail = _FLOAT_TAIL.match(text.strip())
    compact = _SEPARATORS.sub("", tail[1] if tail else text).upper().lstrip("0")
    return compact or None


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            "janvier jan janv january",
            "fevrier fev fevr feb february",
            "mars mar march",
            "avril avr apr april",
            "mai may",
            "juin jun june",
            "juillet juil jul july",
            "aout aou aug august",
            "septembre sept sep september",
            "octobre oct october",
            "novembre nov november",
            "decembre dec december",
        ),
        start=1,
    )
    for name in names.split()
}
_TIME = r"(?:[T ](\d{1,2}):\d{2}(?::[\d.]+)?(Z|[+-]\d{2}:?\d{2})?)?"
_ISO = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})" + _TIME)
_NUMERIC = re.compile(r"(\d{1,2})[-/. ](\d{1,2})[-/. ](\d{2}|\d{4})" + _TIME)
_TEXT_DMY = re.compile(r"(\d{1,2})(?:er)? ([a-z]+) (\d{2}|\d{4})")
_TEXT_MDY = re.compile(r"([a-z]+) (\d{1,2}) (\d{4})")
_FIRST_YEAR = 1880


def birth_dates(text: str, today: date | None = None) -> tuple[date, ...]:
    """The dates ``text`` may mean as a birth date, most likely first; empty if none."""
    today = today or date.today()
    s = text.strip()
    candidates = _iso(s) or _numeric(s) or _text(_words(s))
    valid = [d for d in candidates if d.year >= _FIRST_YEAR and d <= today]
    return tuple(dict.fromkeys(valid))


def _words(text: str) -> str:
    """Accents and case folded, punctuation made single spaces, digits kept."""
    bare = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^a-z0-9]+", " ", bare.casefold()).split())


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _years(year: str) -> list[int]:
    return [int(year)] if len(year) == 4 else [1900 + int(year), 2000 + int(year)]


def _iso(s: str) -> list[date]:
    m = _ISO.fullmatch(s)
    if not m:
        if re.fullmatch(r"\d{8}", s):
            found = _date(int(s[:4]), int(s[4:6]), int(s[6:]))
            found = found if found and found.year >= _FIRST_YEAR else None
            return [found] if found else _listed(_date(int(s[4:]), int(s[2:4]), int(s[:2])))
        return []
    day = _date(int(m[1]), int(m[2]), int(m[3]))
    if day and m[4] in ("22", "23") and m[5] and not m[5].strip("Z+-0:"):  # local midnight, UTC
        return [day, day + timedelta(days=1)]
    return _listed(day)


def _numeric(s: str) -> list[date]:
    m = _NUMERIC.fullmatch(s)
    if not m:
        return []
    first, second = int(m[1]), int(m[2])
    day, month = (second, first) if second > 12 >= first else (first, second)
    return [d for y in _years(m[3]) for d in _listed(_date(y, month, day))]


def _text(s: str) -> list[date]:
    m = _TEXT_DMY.fullmatch(s)
    if m and m[2] in _MONTHS:
        day, month, year = int(m[1]), _MONTHS[m[2]], m[3]
    elif (m := _TEXT_MDY.fullmatch(s)) and m[1] in _MONTHS:
        day, month, year = int(m[2]), _MONTHS[m[1]], m[3]
    else:
        return []
    return [d for y in _years(year) for d in _listed(_date(y, month, day))]


def _listed(day: date | None) -> list[date]:
    return [day] if day else []
