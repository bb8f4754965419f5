"""English text normalisation (LibriSpeech convention) and sentence splitting for novels.

:func:`normalize_text` is shared by acoustic-model transcripts and language-model text, so the
two always agree on the token inventory. Its output uses only ``A-Z``, the apostrophe and single
spaces, with no leading or trailing space: ``"Mr. Dombey paid £5 on the 3rd."`` ->
``"MISTER DOMBEY PAID FIVE POUNDS ON THE THIRD"``.

:func:`split_sentences` and :func:`iter_novel_sentences` cut hard-wrapped novel text (the ELTeC
files in ``../shared/data/text``) into sentences, streaming: a novel is never loaded whole.
"""

from __future__ import annotations

import gzip
import itertools
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from asr.errors import AsrError
from asr.text.numbers import cardinal, expand_numbers, ordinal


class TextError(AsrError):
    """A text file that cannot be read (missing, not UTF-8 text)."""


# ---------------------------------------------------------------- unicode folding

_MOJIBAKE_RE = re.compile(
    r"[ÂÃâ][\u0080-\u00bf\u2018-\u203a\u20ac\u0152\u0153\u0160\u0161\u017d"
    r"\u017e\u0178\u0192\u02c6\u02dc\u2122]{1,2}"
)
_VULGAR_FRACTIONS = {
    "½": "1/2", "⅓": "1/3", "⅔": "2/3", "¼": "1/4", "¾": "3/4", "⅕": "1/5", "⅖": "2/5",
    "⅗": "3/5", "⅘": "4/5", "⅙": "1/6", "⅚": "5/6", "⅛": "1/8", "⅜": "3/8", "⅝": "5/8",
    "⅞": "7/8",
}  # fmt: skip
_LETTERS = {
    "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss", "ø": "o", "Ø": "O", "ł": "l",
    "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH", "ı": "i", "ŀ": "l",
    "ſ": "s",
}  # fmt: skip
_GREEK = dict(
    zip(
        "αβγδεζηθικλμνξοπρσςτυφχψω",
        [
            "a",
            "b",
            "g",
            "d",
            "e",
            "z",
            "e",
            "th",
            "i",
            "k",
            "l",
            "m",
            "n",
            "x",
            "o",
            "p",
            "r",
            "s",
            "s",
            "t",
            "u",
            "ph",
            "ch",
            "ps",
            "o",
        ],
        strict=True,
    )
)
_PUNCT = {
    # apostrophes and single quotes; ‘ stays as a distinct opening mark for _apostrophes
    "’": "'", "´": "'", "′": "'", "ʼ": "'", "‛": "‘", "`": "‘",
    # dashes: em dash and bar separate words; the others behave as a hyphen
    "—": " ", "―": " ", "–": "-", "‐": "-", "‑": "-", "‒": "-", "−": "-", "⁄": "/",
    "…": " ",
}  # fmt: skip
_DELETE = "\u00ad\u200b\u200c\u200d\u2060\ufeff\ufffd*"
# Applied before NFKC (which would turn ´ into a combining accent and ½ into 1⁄2).
_EARLY_TABLE = str.maketrans(
    {**_PUNCT, **{k: " " + v for k, v in _VULGAR_FRACTIONS.items()}, **dict.fromkeys(_DELETE)}
)
_LATE_TABLE = str.maketrans(
    {**_LETTERS, **_GREEK, **{k.upper(): v for k, v in _GREEK.items() if k != "ς"}}
)


def _fix_mojibake(match: re.Match) -> str:
    try:
        return match[0].encode("cp1252").decode("utf-8")
    except UnicodeError:
        return match[0]


def fold_unicode(text: str) -> str:
    """Repair UTF-8-read-as-cp1252 (``â€”``), expand ligatures and vulgar fractions, fold accents
    (``é`` -> ``e``, ``æ`` -> ``ae``, ``ß`` -> ``ss``), transliterate Greek, unify apostrophes and
    dashes, and drop soft hyphens and zero-width characters. Case is kept."""
    if "â" in text or "Ã" in text or "Â" in text:
        text = _MOJIBAKE_RE.sub(_fix_mojibake, text)
    if "Ł" in text:
        text = re.sub(r"Ł(?=\s?\d)", "£", text)  # OCR'd pound sign in ELTeC
    text = text.translate(_EARLY_TABLE)
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text).translate(_LATE_TABLE)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.translate(_LATE_TABLE)


# ---------------------------------------------------------------- abbreviations

# Title-case forms match with or without a full stop; upper-case forms need the stop.
_ABBREVIATIONS = {
    "Mr": "MISTER", "Mrs": "MISSUS", "Dr": "DOCTOR", "Messrs": "MESSIEURS", "Mme": "MADAME",
    "Mlle": "MADEMOISELLE", "Capt": "CAPTAIN", "Lieut": "LIEUTENANT", "Esq": "ESQUIRE",
    "Prof": "PROFESSOR", "Sgt": "SERGEANT",
}  # fmt: skip
_DOTTED_ABBREVIATIONS = {
    "Col": "COLONEL", "Gen": "GENERAL", "Hon": "HONOURABLE", "Rev": "REVEREND", "Jun": "JUNIOR",
    "Jr": "JUNIOR", "Sen": "SENIOR", "Sr": "SENIOR", "Bart": "BARONET", "Gov": "GOVERNOR",
    "Co": "COMPANY", "Mt": "MOUNT", "Lt": "LIEUTENANT", "Ltd": "LIMITED", "Bros": "BROTHERS",
    "Vol": "VOLUME", "vol": "VOLUME", "vs": "VERSUS", "etc": "ET CETERA", "Wm": "WILLIAM",
    "Chas": "CHARLES", "Thos": "THOMAS", "Jas": "JAMES", "Geo": "GEORGE", "Jno": "JOHN",
    "Mdlle": "MADEMOISELLE", "Mons": "MONSIEUR",
}  # fmt: skip
_MONTH_ABBREVIATIONS = {
    "Jan": "JANUARY", "Feb": "FEBRUARY", "Mar": "MARCH", "Apr": "APRIL", "Jun": "JUNE",
    "Jul": "JULY", "Aug": "AUGUST", "Sep": "SEPTEMBER", "Sept": "SEPTEMBER", "Oct": "OCTOBER",
    "Nov": "NOVEMBER", "Dec": "DECEMBER",
}  # fmt: skip


def _word_alternation(words: list[str]) -> str:
    return "|".join(sorted(map(re.escape, words), key=len, reverse=True))


def _build_abbreviation_rules() -> list[tuple[re.Pattern, object]]:
    plain = {**_ABBREVIATIONS}
    upper = {k.upper(): v for k, v in {**_ABBREVIATIONS, **_DOTTED_ABBREVIATIONS}.items()}
    month_table = {
        **_MONTH_ABBREVIATIONS,
        **{k.upper(): v for k, v in _MONTH_ABBREVIATIONS.items()},
    }
    months = _word_alternation(list(month_table))
    table = {**plain, **_DOTTED_ABBREVIATIONS, **upper, **month_table}

    def expand(match: re.Match) -> str:
        return f" {table[match[1]]} "

    return [
        (re.compile(r"\[(?:Footnote|Illustration|Note)\b\s*:?|\[\d+\]|\]", re.I), " "),
        (re.compile(r"&c\b\.?"), " ET CETERA "),
        # M. Louvier (French novels' Monsieur), but not the initial in "P. M. Smith"
        (re.compile(r"(?<![A-Za-z]\. )(?<![A-Za-z]\.)\bM\.(?= [A-Z][a-z])"), " MONSIEUR "),
        (re.compile(r"&"), " AND "),
        (re.compile(r"\b[iI]\.\s?[eE]\."), " THAT IS "),
        (re.compile(r"\b[eE]\.\s?[gG]\."), " FOR EXAMPLE "),
        (re.compile(r"\b(?:No|NO|no)\.?\s?(?=\d)"), " NUMBER "),
        (re.compile(r"\b(?:Nos|NOS)\.?\s?(?=\d)"), " NUMBERS "),
        (re.compile(r"\b(?:St\.?|ST\.)(?=\s+[A-Z])"), " SAINT "),
        (re.compile(r"(?<=[A-Za-z] )(?:St|ST)\.(?!\w)"), " STREET "),
        (re.compile(rf"\b({months})\.?(?=\s?\d)"), expand),
        (re.compile(rf"\b({_word_alternation(list(plain))})\b\.?"), expand),
        (re.compile(rf"\b({_word_alternation([*_DOTTED_ABBREVIATIONS, *upper])})\."), expand),
    ]


_ABBREVIATION_RULES = _build_abbreviation_rules()

# ---------------------------------------------------------------- roman numerals

_ROMAN_RE = r"C{0,3}(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})"
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}
_NUMBERED = "chapter|book|part|volume|vol|canto|act|scene|psalm|section|stave"
_REGNAL = (
    "henry|edward|george|william|richard|charles|james|louis|philip|pius|leo|gregory|innocent|"
    "clement|benedict|alexander|frederick|peter|catherine|elizabeth|mary|john|napoleon|nicholas|"
    "paul|ferdinand|francis|alfonso|henri|victor emmanuel|urban|boniface|sixtus|gustavus|"
    "christian|ptolemy|antiochus"
)
# A lone "I" is read as a numeral only at the very end of the text ("Chapter I"), never before
# more words ("Part I think"), so the rule gives the same answer on its own output.
_ROMAN_TAIL = (
    r"(?![A-Za-z0-9])(?:(?<![^A-Za-z0-9]I)(?<!^I)|(?=[^A-Za-z0-9]*$|'[sS](?![A-Za-z0-9])))"
)
# Separators are "anything that becomes a space", so the rules give the same answer on their own
# output (normalize_text is idempotent).
_NUMBERED_RE = re.compile(
    rf"(?<![A-Za-z0-9])({_NUMBERED})[^A-Za-z0-9]+({_ROMAN_RE}){_ROMAN_TAIL}", re.I
)
# A heading that is only a numeral ("XIV."); a lone I, C or L is left alone.
_ALONE_RE = re.compile(rf"[^A-Za-z0-9]*({_ROMAN_RE})[^A-Za-z0-9]*", re.I)
_REGNAL_RE = re.compile(
    rf"(?<![A-Za-z0-9])({_REGNAL})[^A-Za-z0-9]+(?!(?:C|L)\b)({_ROMAN_RE}){_ROMAN_TAIL}", re.I
)


def roman_to_int(numeral: str) -> int:
    """Value of a (valid, upper- or lower-case) roman numeral up to 399: ``"XIV"`` -> 14."""
    values = [_ROMAN_VALUES[ch] for ch in numeral.upper()]
    total = 0
    for i, value in enumerate(values):
        total += -value if i + 1 < len(values) and values[i + 1] > value else value
    return total


def _expand_romans(text: str) -> str:
    def numbered(match: re.Match) -> str:
        if not match[2]:
            return match[0]
        return f"{match[1]} {cardinal(roman_to_int(match[2]))}"

    def regnal(match: re.Match) -> str:
        if not match[2]:
            return match[0]
        return f"{match[1]} THE {ordinal(roman_to_int(match[2]))}"

    alone = _ALONE_RE.fullmatch(text)
    if alone and (len(alone[1]) > 1 or alone[1] in ("V", "v", "X", "x")):
        return f" {cardinal(roman_to_int(alone[1]))} "
    return _REGNAL_RE.sub(regnal, _NUMBERED_RE.sub(numbered, text))


# ---------------------------------------------------------------- apostrophes

# Words whose leading apostrophe marks an elision, kept as in LibriSpeech ('TIS, 'EM).
_ELISIONS = frozenset(
    [
        "TIS",
        "TWAS",
        "TWERE",
        "TWILL",
        "TWOULD",
        "TWON'T",
        "EM",
        "CAUSE",
        "TIL",
        "NEATH",
        "GAINST",
        "TWIXT",
        "TWEEN",
        "BOUT",
        "UN",
    ]
)


def _apostrophes(text: str) -> str:
    """Keep apostrophes inside words, in elisions (``'TIS``) and plural possessives (``DOGS'``);
    drop quotation marks. ``text`` is upper case, words are separated by spaces, and ``‘`` marks
    an opening single quote."""
    out = []
    open_quote = False
    for token in text.split():
        stripped = token.lstrip("'‘")
        if len(stripped) < len(token):
            core = stripped.rstrip("'‘").replace("‘", "'")
            if core.replace("'", "") in _ELISIONS or core in _ELISIONS:
                stripped = "'" + stripped
            else:
                open_quote = True
        word = stripped.rstrip("'‘")
        if len(word) < len(stripped):
            if open_quote:
                open_quote = False
            elif len(word) > 1 and word.endswith("S"):
                word += "'"
        if "‘" in word or "''" in word:
            word = re.sub(r"['‘]+", "'", word)
        if word.strip("'"):
            out.append(word)
    return " ".join(out)


# ---------------------------------------------------------------- normalize_text


def normalize_text(text: str) -> str:
    """Normalise English text to the LibriSpeech convention.

    Args:
        text: any text (one sentence or a paragraph).

    Returns:
        Upper-case ``A-Z``, apostrophes and single spaces, no leading or trailing space; numbers,
        currency, ordinals, years, common abbreviations (``Mr.``, ``Dr.``, ``St.``, ``&``,
        ``etc.``) and roman numerals after ``Chapter``/regnal names spelt out; accents folded;
        all other punctuation removed (hyphens, dashes, underscores become spaces). The result
        is a fixed point: ``normalize_text(normalize_text(x)) == normalize_text(x)``.
    """
    text = fold_unicode(text)
    for pattern, repl in _ABBREVIATION_RULES:
        text = pattern.sub(repl, text)
    text = expand_numbers(text)
    text = _expand_romans(text)
    text = text.upper()
    text = re.sub(r"[^A-Z'‘]+", " ", text)
    return _apostrophes(text)


# ---------------------------------------------------------------- sentences

_NON_TERMINAL = frozenset(
    [
        *_ABBREVIATIONS,
        *_DOTTED_ABBREVIATIONS,
        *_MONTH_ABBREVIATIONS,
        "St",
        "No",
        "Nos",
        "Vol",
        "viz",
        "cf",
        "ibid",
        "Rt",
        "Ft",
    ]
)
# A sentence ends at . ! ? (and any closing quotes/brackets) followed by whitespace and a capital,
# digit or an opening quote.
_SENTENCE_END_RE = re.compile(r"([.!?]+['\"’”)\]´]*)\s+(?=[\"“‘'`(\[_]*[A-Z0-9])")


def _ends_with_abbreviation(chunk: str) -> bool:
    match = re.search(r"(?:^|[^\w.])([A-Za-z]+)\.$", chunk)
    if match is None:
        return False
    word = match[1]
    return word in _NON_TERMINAL or (len(word) == 1 and word.isupper())


def _split_paragraph(paragraph: str) -> list[str]:
    paragraph = " ".join(paragraph.split())
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END_RE.finditer(paragraph):
        if match[1] == "." and _ends_with_abbreviation(paragraph[start : match.end(1)]):
            continue
        sentences.append(paragraph[start : match.end(1)])
        start = match.end()
    sentences.append(paragraph[start:])
    return [s for s in sentences if re.search(r"[A-Za-z0-9]", s)]


def split_sentences(text: str) -> list[str]:
    """Split (possibly hard-wrapped) text into sentences, as :func:`iter_novel_sentences` does.

    Lines are joined into paragraphs; a paragraph ends at a blank line or at a line clearly
    shorter than the wrap width followed by one that does not start in lower case (headings,
    last lines of paragraphs). A sentence ends at ``.``, ``!`` or ``?`` (plus closing quotes or
    brackets) followed by a capital letter, digit or opening quote; a full stop after ``Mr``,
    ``Mrs``, ``Dr``, ``St`` and the other known abbreviations, or after a single capital (an
    initial), does not end one. Sentences keep their original spelling and punctuation; those
    without a letter or digit (``* * *``) are dropped.
    """
    return list(_sentences_from_lines(iter(text.splitlines())))


def _open_text(path: Path):
    if not path.is_file():
        raise TextError(f"{path}: no such text file")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _line_width(lines: list[str]) -> int:
    """The typical length of a full line of hard-wrapped text (75th percentile)."""
    lengths = sorted(len(line) for line in lines if line)
    return lengths[(len(lengths) * 3) // 4] if lengths else 0


def _paragraph_ends(line: str, next_line: str | None, width: int) -> bool:
    """True when ``line`` ends a paragraph: a blank line (or the end) follows, or the line is
    clearly short of the wrap width (a heading, the last line of a paragraph) and the next line
    does not start in lower case (short lines inside sentences occur too). The wrapping in the
    ELTeC files is ragged by about 10 characters, so "short" means under 70% of the width."""
    if next_line is None or not next_line.strip() or not line.strip():
        return True
    short = len(line) < 0.7 * width and not next_line.lstrip()[0].islower()
    return short and not _ends_with_abbreviation(line.rstrip())


def iter_novel_sentences(path: str | Path, max_paragraph_lines: int = 200) -> Iterator[str]:
    """Stream the sentences of a (hard-wrapped, optionally gzipped) novel, one at a time.

    Splits like :func:`split_sentences`; the wrap width is estimated from the first 1000 lines.
    Memory is bounded by ``max_paragraph_lines`` lines however the file is laid out.

    Raises:
        TextError: the file does not exist.
    """
    with _open_text(Path(path)) as fh:
        yield from _sentences_from_lines(fh, max_paragraph_lines)


def _sentences_from_lines(lines: Iterator[str], max_paragraph_lines: int = 200) -> Iterator[str]:
    head = [line.rstrip() for line in itertools.islice(lines, 1000)]
    width = _line_width(head)
    stream = itertools.chain(head, (line.rstrip() for line in lines))
    paragraph: list[str] = []
    line = next(stream, None)
    while line is not None:
        next_line = next(stream, None)
        paragraph.append(line)
        if _paragraph_ends(line, next_line, width):
            yield from _split_paragraph(" ".join(paragraph))
            paragraph = []
        elif len(paragraph) >= max_paragraph_lines:
            *done, rest = _split_paragraph(" ".join(paragraph)) or [""]
            yield from done
            paragraph = [rest]
        line = next_line
