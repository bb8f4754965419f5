"""Numbers to English words for :func:`asr.text.normalize.normalize_text` (LibriSpeech spelling).

All output is upper case, words separated by single spaces, no hyphens: ``21`` -> ``TWENTY ONE``,
``1848`` -> ``EIGHTEEN FORTY EIGHT``, ``£5 10s.`` -> ``FIVE POUNDS TEN SHILLINGS``. British
usage (``ONE HUNDRED AND TWENTY``), as in the 19th-century novels the LM is trained on.

:func:`expand_numbers` rewrites every run of digits in a text (with the currency, percent,
degree, ordinal, fraction and old-money forms found in the ELTeC novels and LJSpeech), so its
output holds no digits.
"""

from __future__ import annotations

import re

_ONES = [
    "ZERO",
    "ONE",
    "TWO",
    "THREE",
    "FOUR",
    "FIVE",
    "SIX",
    "SEVEN",
    "EIGHT",
    "NINE",
    "TEN",
    "ELEVEN",
    "TWELVE",
    "THIRTEEN",
    "FOURTEEN",
    "FIFTEEN",
    "SIXTEEN",
    "SEVENTEEN",
    "EIGHTEEN",
    "NINETEEN",
]
_TENS = ["_", "_", "TWENTY", "THIRTY", "FORTY", "FIFTY", "SIXTY", "SEVENTY", "EIGHTY", "NINETY"]
_SCALES = ((10**12, "TRILLION"), (10**9, "BILLION"), (10**6, "MILLION"), (1000, "THOUSAND"))
_ORDINAL_IRREGULAR = {
    "ONE": "FIRST",
    "TWO": "SECOND",
    "THREE": "THIRD",
    "FIVE": "FIFTH",
    "EIGHT": "EIGHTH",
    "NINE": "NINTH",
    "TWELVE": "TWELFTH",
}
_MAX_CARDINAL = 10**15
_MONTH_NAMES = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
)
_MONTHS = _MONTH_NAMES + "|" + _MONTH_NAMES.upper()


def digits(text: str) -> str:
    """Read a digit string one digit at a time: ``"007"`` -> ``"ZERO ZERO SEVEN"``."""
    return " ".join(_ONES[int(ch)] for ch in text)


def cardinal(n: int) -> str:
    """Spell a whole number: ``120`` -> ``"ONE HUNDRED AND TWENTY"``; 10**15 up: digit by digit."""
    if n < 0:
        return "MINUS " + cardinal(-n)
    if n >= _MAX_CARDINAL:
        return digits(str(n))
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (" " + _ONES[ones] if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " HUNDRED" + (" AND " + cardinal(rest) if rest else "")
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            words = cardinal(head) + " " + name
            if rest == 0:
                return words
            return words + (" AND " if rest < 100 else " ") + cardinal(rest)
    raise AssertionError("unreachable")


def ordinal(n: int) -> str:
    """Spell an ordinal: ``21`` -> ``"TWENTY FIRST"``, ``100`` -> ``"ONE HUNDREDTH"``."""
    words = cardinal(n).split(" ")
    last = words[-1]
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("Y"):
        last = last[:-1] + "IETH"
    else:
        last += "TH"
    return " ".join([*words[:-1], last])


def year(n: int) -> str:
    """Read a year: ``1455`` -> ``FOURTEEN FIFTY FIVE``, ``1900`` -> ``NINETEEN HUNDRED``,
    ``1905`` -> ``NINETEEN O FIVE``, ``2005`` -> ``TWO THOUSAND AND FIVE``, ``2016`` -> ``TWENTY
    SIXTEEN``. Numbers outside 1000-2099, and 1000-1009 and 2000-2009, are read as cardinals
    (as num2words reads years)."""
    if not 1000 <= n <= 2099 or n % 1000 < 10:
        return cardinal(n)
    high, low = divmod(n, 100)
    if low == 0:
        return cardinal(high) + " HUNDRED"
    if low < 10:
        return cardinal(high) + " O " + _ONES[low]
    return cardinal(high) + " " + cardinal(low)


def plural(words: str) -> str:
    """Pluralise the last word of a spelt number: ``EIGHTEEN SIXTY`` -> ``EIGHTEEN SIXTIES``."""
    if words.endswith("Y"):
        return words[:-1] + "IES"
    if words.endswith("X"):
        return words + "ES"
    return words + "S"


def fraction(numerator: int, denominator: int, whole: int | None = None) -> str:
    """``1/2`` -> ``ONE HALF``, ``3/4`` -> ``THREE QUARTERS``, ``5/8`` -> ``FIVE EIGHTHS``;
    with ``whole``: ``9 1/2`` -> ``NINE AND A HALF``."""
    if denominator == 0:
        return cardinal(numerator) + " OVER ZERO"
    if denominator == 2:
        name = "HALF"
        names = "HALVES"
    elif denominator == 4:
        name, names = "QUARTER", "QUARTERS"
    else:
        name = ordinal(denominator)
        names = name + "S"
    if whole is None:
        return cardinal(numerator) + " " + (name if numerator == 1 else names)
    part = ("A " + name) if numerator == 1 else cardinal(numerator) + " " + names
    return cardinal(whole) + " AND " + part


def _integer(text: str) -> int:
    return int(text.replace(",", ""))


def amount(text: str) -> str:
    """Spell an amount: ``"1,500"``, ``"3.5"`` (``THREE POINT FIVE``), ``"9 1/2"``, ``"7-1/2"``."""
    text = text.strip()
    mixed = re.fullmatch(r"(\d+)(?:\s+|-)(\d+)/(\d+)", text)
    if mixed:
        return fraction(int(mixed[2]), int(mixed[3]), whole=int(mixed[1]))
    simple = re.fullmatch(r"(\d+)/(\d+)", text)
    if simple:
        return fraction(int(simple[1]), int(simple[2]))
    whole, _, decimals = text.partition(".")
    words = cardinal(_integer(whole)) if whole else "ZERO"
    if decimals:
        words += " POINT " + digits(decimals)
    return words


_AMOUNT = r"\d+(?:\s|-)\d+/\d+|\d+/\d+|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_AMOUNT_RE = rf"(?<![\d.,/])({_AMOUNT})(?![\d/])"


def _money(match: re.Match) -> str:
    symbol, value, cents = match[1], match[2], match[3]
    unit, sub = ("POUND", "PENCE") if symbol == "£" else ("DOLLAR", "CENTS")
    words = f" {amount(value)} {unit}{'' if value == '1' else 'S'} "
    if cents and int(cents):
        words += f"AND {cardinal(int(cents))} {sub} "
    return words


def _old_money(match: re.Match) -> str:
    value, unit = match[1], match[2].lower()
    if unit == "l":
        name = "POUND" if value == "1" else "POUNDS"
    elif unit == "s":
        name = "SHILLING" if value == "1" else "SHILLINGS"
    else:
        name = "PENNY" if value == "1" else "PENCE"
    return f" {amount(value)} {name} "


def _time(match: re.Match) -> str:
    hours, minutes = int(match[1]), int(match[2])
    if minutes == 0:
        return f" {cardinal(hours)} "
    if minutes < 10:
        return f" {cardinal(hours)} O {_ONES[minutes]} "
    return f" {cardinal(hours)} {cardinal(minutes)} "


def _bare_number(match: re.Match) -> str:
    text = match[0]
    if "," in text or "." in text or "/" in text or " " in text or "-" in text:
        return f" {amount(text)} "
    if len(text) > 1 and text.startswith("0"):
        return f" {digits(text)} "
    value = int(text)
    if len(text) == 4 and 1000 <= value <= 2099:
        return f" {year(value)} "
    return f" {cardinal(value)} "


def _unit(name: str, singular: str | None = None):
    def repl(match: re.Match) -> str:
        one = match[1] == "1"
        return f" {amount(match[1])} {singular if one and singular else name} "

    return repl


# (pattern, replacement) applied in order; each pattern consumes its digits.
_RULES: list[tuple[re.Pattern, object]] = [
    # times: 7.45 a.m., 10:30
    (
        re.compile(r"\b(\d{1,2})[.:](\d\d)(?=\s*(?:[ap]\.?\s?m\b|o'clock|o’clock))", re.I),
        _time,
    ),
    (re.compile(r"(?<![\d.:])(\d{1,2}):(\d\d)(?![\d:])"), _time),
    # currency symbols: £120, $3.50, £1,500, and L for £ before a number (L 108, L400)
    (re.compile(r"(?<![A-Za-z'])L ?(?=\d)"), "£"),
    (re.compile(r"([£$])\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d\d))?(?!\d)"), _money),
    # decades: 1860s, 1860's
    (re.compile(r"\b(1\d\d0|20\d0)'?s\b"), lambda m: f" {plural(year(int(m[1])))} "),
    # old-style ordinals after a month or 'the': August 3d, the 22d
    (
        re.compile(rf"\b((?:{_MONTHS}|the|The)\.?\s+)(\d*[23])d\b"),
        lambda m: f"{m[1]} {ordinal(int(m[2]))} ",
    ),
    # a bare day after a month is read as an ordinal: Feb. 27 -> FEBRUARY TWENTY SEVENTH
    (
        re.compile(rf"\b((?:{_MONTHS})\.?\s+)([1-9]|[12]\d|3[01])\b(?![.,:]?\d)"),
        lambda m: f"{m[1]} {ordinal(int(m[2]))} ",
    ),
    # old British money: 120l., 5 l., 13s., 6d, 9 1/2d.
    (re.compile(_AMOUNT_RE + r"\s?([lsd])\.", re.I), _old_money),
    (re.compile(_AMOUNT_RE + r"([sd])(?=\s+\d|\s*[,;)]|$)"), _old_money),
    # ordinals: 21st, 2nd, 3rd, 24TH; old style 2d/3d after a month or 'the'
    (
        re.compile(r"(?<![\d,.])(\d+)(?:st|nd|rd|th)\b", re.I),
        lambda m: f" {ordinal(int(m[1]))} ",
    ),
    (re.compile(_AMOUNT_RE + r"\s?(?:%|per\s?cent\b)", re.I), _unit("PER CENT")),
    (re.compile(_AMOUNT_RE + r"\s?°"), _unit("DEGREES", "DEGREE")),
    # remaining numbers: fractions, decimals, thousands, years, cardinals
    (re.compile(_AMOUNT), _bare_number),
]


def expand_numbers(text: str) -> str:
    """Replace every number in ``text`` by words (upper case, padded with spaces).

    Handles, in order: times (``7.45 a.m.``, ``10:30``), currency (``£120``, ``$3.50``), old
    British money (``120l.``, ``13s.``, ``6d``, ``9 1/2d.``), decades (``1860s``), ordinals
    (``21st``, ``August 3d``), percentages, degrees, fractions (``1/2``, ``7-1/2``), decimals,
    thousands separators, years (any four-digit 1000-2099) and cardinals.
    """
    if not any(ch.isdigit() for ch in text):
        return text
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    return text
