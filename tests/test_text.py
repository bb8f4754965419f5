"""Text normaliser and sentence splitter: hand cases, LJSpeech's own normalisation as an
independent reference, idempotence (hypothesis), and sentences of a real ELTeC novel."""

from __future__ import annotations

import csv
import gzip
import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.text.normalize import (
    TextError,
    fold_unicode,
    iter_novel_sentences,
    normalize_text,
    roman_to_int,
    split_sentences,
)
from asr.text.numbers import cardinal, ordinal, year

OUTPUT_RE = re.compile(r"(?:[A-Z']+(?: [A-Z']+)*)?")

CASES = [
    # LibriSpeech convention
    ("Hello,   world!", "HELLO WORLD"),
    ("  leading and trailing  ", "LEADING AND TRAILING"),
    # cardinals, thousands separators, decimals
    ("21 men", "TWENTY ONE MEN"),
    ("120", "ONE HUNDRED AND TWENTY"),
    ("130,000 francs", "ONE HUNDRED AND THIRTY THOUSAND FRANCS"),
    ("3.5 inches", "THREE POINT FIVE INCHES"),
    ("1,000,001", "ONE MILLION AND ONE"),
    # ordinals, old-style ordinals
    ("the 1st, 2nd, 3rd and 21st", "THE FIRST SECOND THIRD AND TWENTY FIRST"),
    ("SEPT. 24TH", "SEPTEMBER TWENTY FOURTH"),
    ("August 3d, 1842", "AUGUST THIRD EIGHTEEN FORTY TWO"),
    ("Feb. 27.—Left", "FEBRUARY TWENTY SEVENTH LEFT"),
    ("on May 31, 1850", "ON MAY THIRTY FIRST EIGHTEEN FIFTY"),
    # years
    ("in 1848", "IN EIGHTEEN FORTY EIGHT"),
    ("in 1900", "IN NINETEEN HUNDRED"),
    ("in 1905", "IN NINETEEN O FIVE"),
    ("in 2016", "IN TWENTY SIXTEEN"),
    ("the 1860s", "THE EIGHTEEN SIXTIES"),
    # money, percentages, degrees, fractions, times
    ("£120 a year", "ONE HUNDRED AND TWENTY POUNDS A YEAR"),
    ("£1 and $3.50", "ONE POUND AND THREE DOLLARS AND FIFTY CENTS"),
    ("Ł20 in my pocket", "TWENTY POUNDS IN MY POCKET"),
    ("a snug 1500l. a year", "A SNUG ONE THOUSAND FIVE HUNDRED POUNDS A YEAR"),
    ("L 108 13s. 9 1/2d.", "ONE HUNDRED AND EIGHT POUNDS THIRTEEN SHILLINGS NINE AND A HALF PENCE"),
    ("more than L400.", "MORE THAN FOUR HUNDRED POUNDS"),
    ("5 per cent. and 50%", "FIVE PER CENT AND FIFTY PER CENT"),
    ("at 90° in the shade", "AT NINETY DEGREES IN THE SHADE"),
    ("30½ inches, 3/4 full", "THIRTY AND A HALF INCHES THREE QUARTERS FULL"),
    ("the 7.45 a.m. train", "THE SEVEN FORTY FIVE A M TRAIN"),
    ("221b Baker St.", "TWO HUNDRED AND TWENTY ONE B BAKER STREET"),
    # abbreviations
    ("Mr. and Mrs. Dombey", "MISTER AND MISSUS DOMBEY"),
    ("Dr Jekyll", "DOCTOR JEKYLL"),
    ("St. Paul's", "SAINT PAUL'S"),
    ("Dombey & Son, &c.", "DOMBEY AND SON ET CETERA"),
    ("Capt. Cuttle, Col. Bagstock", "CAPTAIN CUTTLE COLONEL BAGSTOCK"),
    ("No. 12, Suffolk", "NUMBER TWELVE SUFFOLK"),
    ("said M. Louvier at 5 P. M. Then", "SAID MONSIEUR LOUVIER AT FIVE P M THEN"),
    ("Mdlle. Rameau, Wm. Smith, Esq.", "MADEMOISELLE RAMEAU WILLIAM SMITH ESQUIRE"),
    ("apples, pears, etc.", "APPLES PEARS ET CETERA"),
    # roman numerals in safe contexts only
    ("CHAPTER XIV", "CHAPTER FOURTEEN"),
    ("Chapter I", "CHAPTER ONE"),
    ("Henry VIII", "HENRY THE EIGHTH"),
    ("in James I's time", "IN JAMES THE FIRST'S TIME"),
    ("Part I think so", "PART I THINK SO"),
    ("the letter C", "THE LETTER C"),
    ("XIV.", "FOURTEEN"),
    ("Christian VII", "CHRISTIAN THE SEVENTH"),
    ("I.", "I"),
    ("", ""),
    # punctuation, hyphens, dashes, underscores, quotes, apostrophes
    ("to-morrow—if _you_ please", "TO MORROW IF YOU PLEASE"),
    ('"Quoted," she said.', "QUOTED SHE SAID"),
    ("don’t, o'clock", "DON'T O'CLOCK"),
    ("the boys' hats", "THE BOYS' HATS"),
    ("‘Those are the dogs’ he said", "THOSE ARE THE DOGS HE SAID"),
    ("`Good morning, Ma'am,´ said Louisa.", "GOOD MORNING MA'AM SAID LOUISA"),
    ("'Tis true, 'twas so", "'TIS TRUE 'TWAS SO"),
    ("[Footnote: Mouzle—Mousehole.] [19] But", "MOUZLE MOUSEHOLE BUT"),
    # unicode: accents, ligatures, soft hyphens, mojibake, Greek
    ("Café naïve rôle", "CAFE NAIVE ROLE"),
    ("Æsop's œuvre, Straße", "AESOP'S OEUVRE STRASSE"),
    ("ﬁne ﬂowers", "FINE FLOWERS"),
    ("to\u00admorrow", "TOMORROW"),
    ("enoughâ€”he could", "ENOUGH HE COULD"),
    ("τὸ καλόν", "TO KALON"),
    ("* * * * *", ""),
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_normalize_cases(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_number_words() -> None:
    assert cardinal(0) == "ZERO"
    assert cardinal(1_234_567) == (
        "ONE MILLION TWO HUNDRED AND THIRTY FOUR THOUSAND FIVE HUNDRED AND SIXTY SEVEN"
    )
    assert cardinal(2005) == "TWO THOUSAND AND FIVE"
    assert ordinal(12) == "TWELFTH"
    assert ordinal(40) == "FORTIETH"
    assert ordinal(100) == "ONE HUNDREDTH"
    assert year(1455) == "FOURTEEN FIFTY FIVE"
    assert year(2000) == "TWO THOUSAND"
    assert [roman_to_int(r) for r in ("IV", "IX", "XIV", "XL", "XC", "CCCXCIX")] == [
        4,
        9,
        14,
        40,
        90,
        399,
    ]


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**12 - 1))
def test_numbers_match_num2words(n: int) -> None:
    """num2words (British 'and', like ours) is the independent reference for cardinals and
    ordinals, read through the normaliser with and without thousands separators."""
    num2words = pytest.importorskip("num2words").num2words
    assert cardinal(n) == normalize_text(num2words(n))
    assert normalize_text(f"{n:,}") == normalize_text(num2words(n))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    assert normalize_text(f"the {n}{suffix}") == normalize_text("the " + num2words(n, "ordinal"))


def test_years_match_num2words() -> None:
    num2words = pytest.importorskip("num2words").num2words
    for y in range(1000, 2100):
        reference = normalize_text(num2words(y, to="year")).replace("OH ", "O ")
        assert normalize_text(f"in {y}") == "IN " + reference, y


def test_ljspeech_reference(shared_data) -> None:
    """LJSpeech's own expansion (column 3) is the reference: normalising the raw text (column 2)
    must give the same words. All 32 clips of the sample match; 3 of them contain years."""
    path = shared_data / "ljspeech-sample" / "metadata.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="|", quoting=csv.QUOTE_NONE))
    assert len(rows) == 32
    mismatches = [
        (clip, normalize_text(raw), normalize_text(ref))
        for clip, raw, ref in rows
        if normalize_text(raw) != normalize_text(ref)
    ]
    assert mismatches == []
    assert sum(raw != ref for _, raw, ref in rows) == 3  # the rows that actually test expansion
    assert normalize_text(rows[6][1]).endswith("OF ABOUT FOURTEEN FIFTY FIVE")


FRAGMENTS = [
    *"Mr.sSt &IVXLCivx'‘’`´\"-—_0123456789£$%°½/,.:;!? \nÆéß",
    *[
        "Chapter ",
        "HENRY ",
        "Mrs",
        "St. ",
        "No. ",
        "etc.",
        "&c.",
        "1st",
        "3d",
        "13s.",
        "l.",
        "a.m.",
    ],
    *["'tis", "dogs'", "1860s", "1,000", "3.5", "[Footnote:", "]", "[12]", "â€”", "Jan. "],
]
TEXT = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.characters(codec="utf-8")), max_size=30
).map("".join)


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_normalize_idempotent_and_alphabet(text: str) -> None:
    once = normalize_text(text)
    assert OUTPUT_RE.fullmatch(once), once
    assert normalize_text(once) == once


def test_fold_unicode_keeps_case_and_ascii() -> None:
    assert fold_unicode("Élan Œdipe") == "Elan OEdipe"
    assert fold_unicode("plain ASCII, unchanged.") == "plain ASCII, unchanged."


def test_split_sentences_abbreviations_and_quotes() -> None:
    text = (
        'Mr. Dombey and Mrs. Chick met Dr. Parker at St. Paul\'s. "Is it so?" she asked. '
        '"It is." He left at 3 p.m. on Monday. J. S. Mill\nwrote it.\n\nNew paragraph here'
    )
    assert split_sentences(text) == [
        "Mr. Dombey and Mrs. Chick met Dr. Parker at St. Paul's.",
        '"Is it so?" she asked.',
        '"It is."',
        "He left at 3 p.m. on Monday.",
        "J. S. Mill wrote it.",
        "New paragraph here",
    ]
    assert split_sentences("* * * * *\n\n") == []


def test_split_sentences_hard_wrapped_headings() -> None:
    """Headings and short last lines end paragraphs; a short line inside a sentence does not."""
    full = "It was a long line of text that fills the whole width of the page, as they"
    text = "\n".join(
        [
            "CHAPTER I",
            "Dombey and Son",
            full,
            "all do, and then",
            "it ended here, no full stop",
            "Then another paragraph began, and said Mr.",
            "Dombey, nothing at all.",
            full,
        ]
    )
    assert split_sentences(text) == [
        "CHAPTER I",
        "Dombey and Son",
        full + " all do, and then it ended here, no full stop",
        "Then another paragraph began, and said Mr. Dombey, nothing at all.",
        full,
    ]


def test_iter_novel_sentences_streams_gzip(tmp_path) -> None:
    lines = ["CHAPTER I"] + [
        "The quick brown fox jumps over the lazy dog and keeps on running far away." * 1
        for _ in range(30)
    ]
    path = tmp_path / "novel.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    sentences = list(iter_novel_sentences(path))
    assert sentences[0] == "CHAPTER I"
    assert len(sentences) == 31
    with pytest.raises(TextError, match="no such text file"):
        list(iter_novel_sentences(tmp_path / "missing.txt"))


def test_real_novel_sentences(shared_data) -> None:
    """Sentences of a real ELTeC novel: none empty, typical length sane, abbreviations whole."""
    path = shared_data / "text" / "eltec-eng" / "ENG18481_Dickens.txt.gz"
    sentences = list(itertools.islice(iter_novel_sentences(path), 3000))
    assert len(sentences) == 3000
    words = sorted(len(s.split()) for s in sentences)
    assert all(s.strip() for s in sentences)
    assert 8 <= words[len(words) // 2] <= 30  # median sentence length in words
    assert words[int(len(words) * 0.99)] <= 120
    assert not [s for s in sentences if re.search(r"\b(?:Mr|Mrs|Dr)\.$", s)]
    assert not [s for s in sentences if "\n" in s or "  " in s]
    normalized = [normalize_text(s) for s in sentences]
    assert all(OUTPUT_RE.fullmatch(n) for n in normalized)
    assert sum(1 for n in normalized if n) >= 2990
