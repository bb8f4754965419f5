"""Word and character error rates with alignments and confusions (edit distance via jiwer).

:func:`score` aligns each hypothesis to its reference (minimum Levenshtein distance, jiwer) at the
word and the character level and returns a :class:`ScoreReport`: totals, per-utterance counts
and alignments, and the most frequent confusions. :func:`format_report` renders it as text with a
sclite-like summary table; :meth:`ScoreReport.to_dict` gives a JSON-ready dict.

Text is compared as given, apart from whitespace: words are split on runs of whitespace, and for
characters runs of whitespace count as one space and leading/trailing space is dropped
(jiwer's default transforms). Normalise case and punctuation beforehand if wanted.

Rates: ``errors / reference length``. With an empty reference the rate is 0.0 when the
hypothesis is empty too and ``inf`` otherwise (``null`` in JSON).

Example::

    report = score({"u1": "THE CAT SAT"}, {"u1": "THE CAT SAT DOWN"})
    report.words.rate            # 1/3
    print(format_report(report))
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import jiwer

from asr.errors import AsrError

Unit = Literal["word", "char"]

# Marks of an aligned token pair, as in sclite: correct, substitution, deletion, insertion.
CORRECT, SUBSTITUTION, DELETION, INSERTION = "C", "S", "D", "I"
_JIWER_OPS = {"equal": CORRECT, "substitute": SUBSTITUTION, "delete": DELETION, "insert": INSERTION}


class ScoreError(AsrError):
    """Transcripts that cannot be paired or read; the message names the file and the id."""


@dataclass(frozen=True)
class ErrorCounts:
    """Edit-distance counts of a hypothesis against a reference, for one unit (words or chars)."""

    ref_len: int  # tokens in the reference(s): hits + substitutions + deletions
    hits: int  # correct tokens
    substitutions: int  # reference tokens replaced by another token
    deletions: int  # reference tokens missing from the hypothesis
    insertions: int  # hypothesis tokens with no reference token

    @property
    def errors(self) -> int:
        """substitutions + deletions + insertions (the Levenshtein distance)."""
        return self.substitutions + self.deletions + self.insertions

    @property
    def hyp_len(self) -> int:
        """Tokens in the hypothesis: hits + substitutions + insertions."""
        return self.hits + self.substitutions + self.insertions

    @property
    def rate(self) -> float:
        """errors / ref_len; for an empty reference 0.0 (no errors) or inf."""
        if self.ref_len == 0:
            return 0.0 if self.errors == 0 else math.inf
        return self.errors / self.ref_len

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(
            self.ref_len + other.ref_len,
            self.hits + other.hits,
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
        )

    def to_dict(self) -> dict[str, Any]:
        """Counts plus ``errors`` and ``rate`` (None when infinite)."""
        out = asdict(self)
        out["errors"] = self.errors
        out["rate"] = None if math.isinf(self.rate) else self.rate
        return out


ZERO = ErrorCounts(0, 0, 0, 0, 0)

# (ref token, hyp token, count) and (token, count) lists, most frequent first.
SubstitutionCounts = tuple[tuple[str, str, int], ...]
TokenCounts = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class AlignedToken:
    """One column of an alignment: op is C, S, D or I; ref is None for I, hyp None for D."""

    op: str
    ref: str | None
    hyp: str | None


@dataclass(frozen=True)
class UtteranceScore:
    """Scores of one utterance."""

    utt_id: str  # utterance id (the line number, from 1, for unkeyed input)
    reference: str  # reference text as given
    hypothesis: str  # hypothesis text as given
    words: ErrorCounts  # word-level counts
    chars: ErrorCounts  # character-level counts (spaces included)
    alignment: tuple[AlignedToken, ...]  # alignment in the report's unit (word or char)

    def to_dict(self) -> dict[str, Any]:
        return {
            "utt_id": self.utt_id,
            "reference": self.reference,
            "hypothesis": self.hypothesis,
            "words": self.words.to_dict(),
            "chars": self.chars.to_dict(),
            "alignment": [[t.op, t.ref, t.hyp] for t in self.alignment],
        }


@dataclass(frozen=True)
class ScoreReport:
    """Totals, per-utterance scores and confusions of a set of hypotheses."""

    unit: str  # "word" or "char": the unit of the alignments and confusions
    words: ErrorCounts  # word totals (WER = words.rate)
    chars: ErrorCounts  # character totals (CER = chars.rate)
    num_utterances: int  # utterances scored
    num_utterances_with_errors: int  # utterances with at least one word error
    utterances: tuple[UtteranceScore, ...]  # in reference order
    substitutions: SubstitutionCounts  # (ref, hyp, count), most frequent first
    deletions: TokenCounts  # (ref token, count), most frequent first
    insertions: TokenCounts  # (hyp token, count), most frequent first

    @property
    def wer(self) -> float:
        """Word error rate (fraction, not percent)."""
        return self.words.rate

    @property
    def cer(self) -> float:
        """Character error rate (fraction, not percent)."""
        return self.chars.rate

    @property
    def ser(self) -> float:
        """Sentence error rate: fraction of utterances with a word error."""
        return self.num_utterances_with_errors / self.num_utterances if self.num_utterances else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (infinite rates become None)."""

        def finite(x: float) -> float | None:
            return None if math.isinf(x) else x

        return {
            "wer": finite(self.wer),
            "cer": finite(self.cer),
            "ser": self.ser,
            "unit": self.unit,
            "num_utterances": self.num_utterances,
            "num_utterances_with_errors": self.num_utterances_with_errors,
            "words": self.words.to_dict(),
            "chars": self.chars.to_dict(),
            "substitutions": [list(s) for s in self.substitutions],
            "deletions": [list(d) for d in self.deletions],
            "insertions": [list(i) for i in self.insertions],
            "utterances": [u.to_dict() for u in self.utterances],
        }


def pair_transcripts(
    refs: Mapping[str, str] | Sequence[str],
    hyps: Mapping[str, str] | Sequence[str],
    ref_name: str = "REF",
    hyp_name: str = "HYP",
) -> list[tuple[str, str, str]]:
    """Pair references with hypotheses: ``[(utt_id, ref, hyp)]`` in reference order.

    Mappings are matched by key (every id must be on both sides); sequences by position
    (ids are "1", "2", ...; the lengths must agree). ``ref_name``/``hyp_name`` (e.g. the file
    paths) name the side at fault in the :class:`ScoreError`.
    """
    ref_keyed, hyp_keyed = isinstance(refs, Mapping), isinstance(hyps, Mapping)
    if ref_keyed != hyp_keyed:
        keyed, plain = (ref_name, hyp_name) if ref_keyed else (hyp_name, ref_name)
        raise ScoreError(
            f"{plain}: has no utterance ids but {keyed} has; give both with ids or both as "
            "plain aligned text (or pass --format)"
        )
    if not ref_keyed:
        if len(refs) != len(hyps):
            raise ScoreError(
                f"{hyp_name}: has {len(hyps)} utterances but {ref_name} has {len(refs)}; plain "
                "text is matched line by line"
            )
        return [(str(i + 1), r, h) for i, (r, h) in enumerate(zip(refs, hyps))]
    missing = [key for key in refs if key not in hyps]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ScoreError(f"{hyp_name}: no hypothesis for utterance '{missing[0]}'{more}")
    extra = [key for key in hyps if key not in refs]
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise ScoreError(
            f"{hyp_name}: utterance '{extra[0]}'{more} is not in the reference {ref_name}"
        )
    return [(key, text, hyps[key]) for key, text in refs.items()]


def _counts(chunks: list[jiwer.AlignmentChunk]) -> ErrorCounts:
    """ErrorCounts of one jiwer alignment (a list of chunks)."""
    n = {CORRECT: 0, SUBSTITUTION: 0, DELETION: 0, INSERTION: 0}
    for chunk in chunks:
        op = _JIWER_OPS[chunk.type]
        size = chunk.hyp_end_idx - chunk.hyp_start_idx
        if op == DELETION:
            size = chunk.ref_end_idx - chunk.ref_start_idx
        n[op] += size
    hits, subs, dels, ins = n[CORRECT], n[SUBSTITUTION], n[DELETION], n[INSERTION]
    return ErrorCounts(hits + subs + dels, hits, subs, dels, ins)


def _aligned(
    chunks: list[jiwer.AlignmentChunk], ref: list[str], hyp: list[str]
) -> tuple[AlignedToken, ...]:
    """Expand jiwer chunks into one AlignedToken per column."""
    out: list[AlignedToken] = []
    for chunk in chunks:
        op = _JIWER_OPS[chunk.type]
        r = ref[chunk.ref_start_idx : chunk.ref_end_idx]
        h = hyp[chunk.hyp_start_idx : chunk.hyp_end_idx]
        if op == DELETION:
            out.extend(AlignedToken(op, token, None) for token in r)
        elif op == INSERTION:
            out.extend(AlignedToken(op, None, token) for token in h)
        else:
            out.extend(AlignedToken(op, a, b) for a, b in zip(r, h))
    return tuple(out)


def _confusions(
    utterances: Sequence[UtteranceScore],
) -> tuple[SubstitutionCounts, TokenCounts, TokenCounts]:
    """Substitution pairs, deletions and insertions with counts, most frequent first."""
    subs: Counter[tuple[str, str]] = Counter()
    dels: Counter[str] = Counter()
    ins: Counter[str] = Counter()
    for utt in utterances:
        for token in utt.alignment:
            if token.op == SUBSTITUTION:
                subs[(token.ref, token.hyp)] += 1
            elif token.op == DELETION:
                dels[token.ref] += 1
            elif token.op == INSERTION:
                ins[token.hyp] += 1

    def ranked(counter: Counter) -> list:
        return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))

    return (
        tuple((r, h, c) for (r, h), c in ranked(subs)),
        tuple(ranked(dels)),
        tuple(ranked(ins)),
    )


def score(
    refs: Mapping[str, str] | Sequence[str],
    hyps: Mapping[str, str] | Sequence[str],
    unit: Unit = "word",
    ref_name: str = "REF",
    hyp_name: str = "HYP",
) -> ScoreReport:
    """Score hypotheses against references.

    Args:
        refs: reference transcripts, ``{utt_id: text}`` or a list (matched by position).
        hyps: hypotheses, the same kind as ``refs``.
        unit: "word" (default) or "char": the unit of the per-utterance alignments and the
            confusion lists. Word and character totals are always both computed.
        ref_name, hyp_name: names used in error messages (e.g. the file paths).

    Returns:
        :class:`ScoreReport`. Raises :class:`ScoreError` when ids do not match.
    """
    if unit not in ("word", "char"):
        raise ValueError(f"score: unit must be 'word' or 'char', got {unit!r}")
    pairs = pair_transcripts(refs, hyps, ref_name, hyp_name)
    ref_texts = [r for _, r, _ in pairs]
    hyp_texts = [h for _, _, h in pairs]
    words = jiwer.process_words(ref_texts, hyp_texts) if pairs else None
    chars = jiwer.process_characters(ref_texts, hyp_texts) if pairs else None
    shown = words if unit == "word" else chars
    utterances = []
    for i, (utt_id, ref, hyp) in enumerate(pairs):
        alignment = _aligned(shown.alignments[i], shown.references[i], shown.hypotheses[i])
        utterances.append(
            UtteranceScore(
                utt_id=utt_id,
                reference=ref,
                hypothesis=hyp,
                words=_counts(words.alignments[i]),
                chars=_counts(chars.alignments[i]),
                alignment=alignment,
            )
        )
    subs, dels, ins = _confusions(utterances)
    return ScoreReport(
        unit=unit,
        words=sum((u.words for u in utterances), ZERO),
        chars=sum((u.chars for u in utterances), ZERO),
        num_utterances=len(utterances),
        num_utterances_with_errors=sum(1 for u in utterances if u.words.errors),
        utterances=tuple(utterances),
        substitutions=subs,
        deletions=dels,
        insertions=ins,
    )


def _show(token: str | None, unit: str) -> str:
    if token is None:
        return "***"
    return "|" if unit == "char" and token == " " else token


def format_alignment(utt: UtteranceScore, unit: str = "word") -> str:
    """Three lines ``REF:``/``HYP:``/marks with columns padded to the longer token.

    Missing tokens are ``***``; in character alignments a space is shown as ``|``.
    """
    ref_row, hyp_row, op_row = ["REF:"], ["HYP:"], ["    "]
    for token in utt.alignment:
        ref, hyp = _show(token.ref, unit), _show(token.hyp, unit)
        width = max(len(ref), len(hyp))
        ref_row.append(ref.ljust(width))
        hyp_row.append(hyp.ljust(width))
        op_row.append((" " if token.op == CORRECT else token.op).ljust(width))
    return "\n".join(" ".join(row).rstrip() for row in (ref_row, hyp_row, op_row))


def _percent(counts: ErrorCounts, value: int) -> str:
    return f"{100.0 * value / counts.ref_len:6.1f}" if counts.ref_len else f"{'-':>6}"


def summary_table(report: ScoreReport, title: str = "") -> str:
    """A sclite-like summary: sentences, tokens, and % correct/sub/del/ins/err/sentence err."""
    header = "| UNIT    |  # Snt   # Tok |   Corr    Sub    Del    Ins    Err  S.Err |"
    width = len(header) - 2
    lines = ["," + "-" * width + ".", f"| {title[: width - 2]:<{width - 2}} |"]
    lines += ["|" + "-" * width + "|", header]
    lines.append("|---------+----------------+" + "-" * (width - 27) + "|")
    ser = f"{100.0 * report.ser:6.1f}"
    for name, c in (("word", report.words), ("char", report.chars)):
        values = [c.hits, c.substitutions, c.deletions, c.insertions, c.errors]
        cells = " ".join(_percent(c, v) for v in values)
        lines.append(f"| {name:<7} | {report.num_utterances:6d} {c.ref_len:7d} | {cells} {ser} |")
    lines.append("`" + "-" * width + "'")
    return "\n".join(lines)


def _rate_line(name: str, c: ErrorCounts) -> str:
    rate = "inf" if math.isinf(c.rate) else f"{100.0 * c.rate:.2f}"
    return (
        f"%{name} {rate} [ {c.errors} / {c.ref_len}, {c.insertions} ins, {c.deletions} del, "
        f"{c.substitutions} sub ]"
    )


def _confusion_lines(report: ScoreReport, top: int) -> list[str]:
    unit = report.unit
    out = [f"Most frequent substitutions ({unit}s, ref -> hyp):"]
    out += [
        f"{n:7d}  {_show(r, unit)} -> {_show(h, unit)}" for r, h, n in report.substitutions[:top]
    ]
    out.append(f"Most frequent deletions ({unit}s):")
    out += [f"{n:7d}  {_show(t, unit)}" for t, n in report.deletions[:top]]
    out.append(f"Most frequent insertions ({unit}s):")
    out += [f"{n:7d}  {_show(t, unit)}" for t, n in report.insertions[:top]]
    return [*out, ""]


def format_report(
    report: ScoreReport, title: str = "", alignments: str = "all", top: int = 10
) -> str:
    """The report as text: alignments, top confusions, summary table, Kaldi-style rate lines.

    Args:
        report: from :func:`score`.
        title: shown in the summary table (e.g. the hypothesis file).
        alignments: "all" (default), "errors" (only utterances with an error) or "none".
        top: how many of the most frequent substitutions, deletions, insertions to list
            (default 10; 0 lists none).
    """
    unit, out = report.unit, []
    if alignments != "none":
        for utt in report.utterances:
            counts = utt.words if unit == "word" else utt.chars
            if alignments == "errors" and not counts.errors:
                continue
            out.append(
                f"id: {utt.utt_id}  ({counts.errors} errors: S {counts.substitutions}, "
                f"D {counts.deletions}, I {counts.insertions}; {counts.ref_len} ref {unit}s)"
            )
            out += [format_alignment(utt, unit), ""]
    if top > 0:
        out += _confusion_lines(report, top)
    out += [summary_table(report, title), _rate_line("WER", report.words)]
    out.append(_rate_line("CER", report.chars))
    out.append(
        f"%SER {100.0 * report.ser:.2f} [ {report.num_utterances_with_errors} / "
        f"{report.num_utterances} ]"
    )
    return "\n".join(out)
