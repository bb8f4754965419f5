"""Which writing convention a set of transcripts follows: case, punctuation, digits, script.

``asr score`` compares references and hypotheses word for word, so ``Printing,`` against
``PRINTING`` is an error unless both sides follow one convention. :func:`convention_mismatch`
says, in words, how two sets differ (raw LJSpeech text against our upper-case output: "REF is
mixed case with punctuation and digits, HYP is upper case without punctuation or digits"), so
the scorer never compares mismatched conventions silently.

Example::

    convention_mismatch(["Hello, world."], ["HELLO WORLD"])
    # 'REF is mixed case with punctuation, HYP is upper case without punctuation'
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Iterable
from typing import Literal, TypeVar

Case = Literal["upper", "lower", "mixed", "uncased"]

# Letters that count as Latin script when at least this fraction of them is (after folding
# accents): asr.text.normalize.normalize_text is English and would delete other scripts' letters.
_LATIN_FRACTION = 0.9


@dataclasses.dataclass(frozen=True)
class TextConvention:
    """How a set of transcripts is written."""

    case: Case  # upper, lower, mixed (both present) or uncased (no cased letters)
    punctuation: bool  # any punctuation mark other than the apostrophe (word-internal in ASR)
    digits: bool  # any digit
    latin: bool  # at least 90 % of the letters are Latin (a-z after folding accents)

    def describe(self) -> str:
        """``"mixed case with punctuation and digits"``, ``"upper case without punctuation"``."""
        case = "no cased letters" if self.case == "uncased" else f"{self.case} case"
        marks = {"punctuation": self.punctuation, "digits": self.digits}
        present = [name for name, on in marks.items() if on]
        if present:
            return f"{case} with {' and '.join(present)}"
        return f"{case} without {' or '.join(marks)}"


def text_convention(texts: Iterable[str]) -> TextConvention:
    """The convention of ``texts`` (every character of every text is looked at once)."""
    lower = upper = punctuation = digits = False
    letters = latin = 0
    for text in texts:
        for ch in text:
            if ch.isalpha():
                letters += 1
                base = unicodedata.normalize("NFKD", ch)[0]
                latin += base.isascii()
                lower = lower or ch.islower()
                upper = upper or ch.isupper()
            elif ch.isdigit():
                digits = True
            elif ch != "'" and unicodedata.category(ch).startswith(("P", "S")):
                punctuation = True
    case: Case = (
        "mixed" if lower and upper else "lower" if lower else "upper" if upper else "uncased"
    )
    return TextConvention(case, punctuation, digits, latin >= _LATIN_FRACTION * letters)


def convention_mismatch(
    refs: Iterable[str], hyps: Iterable[str], ref_name: str = "REF", hyp_name: str = "HYP"
) -> tuple[str | None, bool]:
    """How the references' and hypotheses' conventions differ.

    Args:
        refs, hyps: the texts of each side.
        ref_name, hyp_name: how the message names the sides.
    Returns:
        (a message such as ``"REF is mixed case with punctuation, HYP is upper case without
        punctuation or digits"``, or None when case, punctuation and digits agree; whether
        both sides are Latin-script text that ``asr.text.normalize.normalize_text`` can normalise).
    """
    ref, hyp = text_convention(refs), text_convention(hyps)
    latin = ref.latin and hyp.latin
    cased = "uncased" not in (ref.case, hyp.case)
    same = (ref.case == hyp.case or not cased) and (ref.punctuation, ref.digits) == (
        hyp.punctuation,
        hyp.digits,
    )
    if same:
        return None, latin
    return f"{ref_name} is {ref.describe()}, {hyp_name} is {hyp.describe()}", latin


NormalizeMode = Literal["auto", "always", "never"]
Transcripts = TypeVar("Transcripts", dict[str, str], list[str])


@dataclasses.dataclass(frozen=True)
class Normalization:
    """Whether both sides of a scoring are normalised, and the line that tells the user so."""

    apply: bool  # both sides go through asr.text.normalize.normalize_text
    message: str | None = None  # "note: ..." / "warning: ..." for stderr; None: nothing to say


def decide_normalization(
    refs: Iterable[str] | dict[str, str],
    hyps: Iterable[str] | dict[str, str],
    mode: NormalizeMode = "auto",
) -> Normalization:
    """The scoring policy every scorer follows (``asr score``, LM-weight tuning, validation).

    Args:
        refs, hyps: the texts of each side (a dict by utterance id: its values).
        mode: "always" normalises both sides; "never" scores them as given (warning when their
            conventions differ); "auto" (default) normalises only when their case, punctuation
            or digits differ (:func:`convention_mismatch`) and the text is Latin script.
    Returns:
        the decision and its message.
    """
    if mode == "always":
        return Normalization(True)
    refs, hyps = (list(x.values()) if isinstance(x, dict) else x for x in (refs, hyps))
    mismatch, latin = convention_mismatch(refs, hyps)
    if mismatch is None:
        return Normalization(False)
    if mode == "never":
        return Normalization(False, f"warning: {mismatch}: scored as given (--exact), so case, "
                             "punctuation and digit differences count as errors")  # fmt: skip
    if not latin:
        return Normalization(False, f"warning: {mismatch}, but the text is not Latin script: "
                             "scored as given (asr.text.normalize is English-only)")  # fmt: skip
    return Normalization(True, f"note: {mismatch}: both normalised to the LibriSpeech convention "
                         "(asr.text.normalize); --exact scores them as given")  # fmt: skip


def normalize_transcripts(transcripts: Transcripts) -> Transcripts:
    """:func:`asr.text.normalize.normalize_text` of every text (a dict keeps its ids)."""
    from asr.text.normalize import normalize_text

    if isinstance(transcripts, dict):
        return {key: normalize_text(text) for key, text in transcripts.items()}
    return [normalize_text(text) for text in transcripts]


def comparable(
    refs: Transcripts, hyps: Transcripts, mode: NormalizeMode = "auto"
) -> tuple[Transcripts, Transcripts, Normalization]:
    """Both sides as they are scored under ``mode`` (:func:`decide_normalization`), and the
    decision. ``refs``/``hyps``: texts by utterance id, or lists in the same order."""
    decision = decide_normalization(refs, hyps, mode=mode)
    if decision.apply:
        return normalize_transcripts(refs), normalize_transcripts(hyps), decision
    return refs, hyps, decision
