"""Sentences for synthetic speech: read novels, split sentences, keep the ones a TTS voice reads
exactly as the normalised transcript says.

A sentence is kept only when every word in it is read the same way by every engine and by the
LibriSpeech normaliser: no digits, no all-capital words (headings, acronyms), no abbreviations
with a full stop ("Mr.", "St."), no symbols beyond ordinary punctuation. The TTS engines read the
cleaned sentence with its punctuation (for natural prosody); the transcript is
``asr.text.normalize.normalize_text`` of the same sentence.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from asr.errors import AsrError
from asr.text.normalize import TextError, iter_novel_sentences, normalize_text

# Speaking rate used to estimate a sentence's duration before it is rendered (characters of
# normalised text per second at speed 1.0; espeak-ng, flite and festival voices read 14-18).
CHARS_PER_S = 15.0

_ABBREVIATION = re.compile(r"\b(?:Mr|Mrs|Dr|St|Mt|Messrs|Jr|Sr|Esq|Capt|Col|Gen|Rev|Hon|Prof|No)\.")
_CAPS_WORD = re.compile(r"\b[A-Z]{2,}\b")
_ALLOWED = re.compile(r"[A-Za-z\s,.;:!?'\"()\-—–“”‘’]+")
_NOT_SPOKEN = re.compile(r"[^A-Za-z' ]+")
_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "—": ", ", "–": ", "})


class TextSourceError(AsrError):
    """A text file for the synthetic corpus cannot be read."""


@dataclass(frozen=True)
class Sentence:
    """One selected sentence.

    Attributes:
        novel: the novel's name (file name without .txt/.txt.gz).
        index: position of the sentence in the novel (0-based, among all sentences).
        text: cleaned sentence given to the TTS engine (with punctuation).
        transcript: normalised transcript (LibriSpeech convention); "" until :func:`transcribe`.
    """

    novel: str
    index: int
    text: str
    transcript: str = ""

    @property
    def estimated_s(self) -> float:
        """Duration estimate at speed 1.0 in seconds (from the letters, spaces, apostrophes)."""
        return len(_NOT_SPOKEN.sub("", self.text)) / CHARS_PER_S


def novel_name(path: str | Path) -> str:
    """``ENG18400_Trollope`` for ``.../ENG18400_Trollope.txt.gz``."""
    name = Path(path).name
    for suffix in (".gz", ".txt"):
        name = name.removesuffix(suffix)
    return name


def speakable(sentence: str) -> str | None:
    """The sentence cleaned for a TTS engine, or None when engines might read it differently
    from its normalised transcript (digits, capitals, abbreviations, symbols)."""
    text = sentence.translate(_QUOTES)
    if not _ALLOWED.fullmatch(text) or _CAPS_WORD.search(text) or _ABBREVIATION.search(text):
        return None
    if text.count('"') % 2 or "--" in text:
        return None
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r"(,\s*)+", ", ", text).strip(" ,")
    text = re.sub(r'([,;:!?.]) "(?=\s|$)', r'\1"', text)  # a closing quote after a dash
    return text or None


def novel_sentences(path: str | Path) -> list[Sentence]:
    """Speakable sentences of one novel in reading order, not yet transcribed (cheap: the
    normaliser runs only on the sentences a corpus selects, in :func:`transcribe`)."""
    name = novel_name(path)
    try:
        sentences = list(iter_novel_sentences(path))
    except (OSError, UnicodeDecodeError, EOFError, TextError) as err:
        raise TextSourceError(f"{path}: cannot read text ({err})") from None
    out = []
    for index, raw in enumerate(sentences):
        text = speakable(raw)
        if text is not None:
            out.append(Sentence(name, index, text))
    return out


def transcribe(sentence: Sentence, min_words: int = 4) -> Sentence | None:
    """``sentence`` with its normalised transcript; None when it has under ``min_words`` words
    or the normaliser read a word differently from its letters (a TTS engine would not)."""
    transcript = normalize_text(sentence.text)
    plain = " ".join(_NOT_SPOKEN.sub(" ", sentence.text.upper()).replace("'", "").split())
    if transcript.replace("'", "") != plain:  # the normaliser changed words ("Henry V" -> FIFTH)
        return None
    if len(transcript.split()) < min_words:
        return None
    return dataclasses.replace(sentence, transcript=transcript)


OVERLAP_WORDS = 8  # word n-gram length that counts a sentence as shared with another text


def word_ngrams(text: str, n: int = OVERLAP_WORDS) -> set[str]:
    """The word ``n``-grams of a normalised transcript (the whole text when it is shorter)."""
    words = text.split()
    if len(words) <= n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def excluded_ngrams(manifests: tuple[str, ...] | list[str]) -> frozenset[str]:
    """Word 8-grams of every transcript of ``manifests`` (evaluation sets nothing may read)."""
    from asr.data.manifest import iter_manifest  # only when a corpus excludes something

    grams: set[str] = set()
    for path in manifests:
        for utt in iter_manifest(path):
            grams |= word_ngrams(utt.text)
    return frozenset(grams)
