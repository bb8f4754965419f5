"""Is one system's error rate really lower than another's? The paired bootstrap over utterances.

Two systems decoded on the same test set give per-utterance error counts ``e_a[i]``, ``e_b[i]``
against the same reference lengths ``n[i]``. The corpus error rate difference is
``sum(e_b - e_a) / sum(n)``. :func:`paired_bootstrap` redraws the utterances with replacement
(the same draw for both systems, which keeps the pairing) ``resamples`` times and reports the
percentile interval of the difference: when it excludes 0 the difference is not an accident of
which utterances the test set happens to hold (Koehn 2004; Bisani and Ney 2004).

:func:`compare` does this for two :class:`~asr.scoring.wer.ScoreReport` of the same references.

Example::

    base = score(refs, hyps_a)
    new = score(refs, hyps_b)
    diff = compare(base, new)             # words; unit="char" for the CER
    diff.delta, diff.low, diff.high       # fractions: new - base, its 95 % interval
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from asr.scoring.wer import ScoreError, ScoreReport

CHUNK = 256  # resamples drawn at once (bounds memory to CHUNK x utterances indices)


@dataclass(frozen=True)
class PairedDifference:
    """The error rate of B minus that of A (fractions), with its bootstrap interval."""

    unit: str  # "word" (WER) or "char" (CER)
    rate_a: float  # corpus rate of A (the baseline)
    rate_b: float  # corpus rate of B
    delta: float  # rate_b - rate_a
    low: float  # lower end of the interval of delta
    high: float  # upper end
    confidence: float  # e.g. 0.95
    share_b_not_better: float  # fraction of resamples where B's rate >= A's
    resamples: int
    seed: int
    num_utterances: int

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0."""
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "significant": self.significant}

    def describe(self) -> str:
        """One line, in percent: ``WER B - A: -1.55 (95 % interval -2.32 to -0.79; ...)``."""
        name = "WER" if self.unit == "word" else "CER"
        verdict = "significant" if self.significant else "not significant"
        return (
            f"{name} {100 * self.rate_b:.2f} vs baseline {100 * self.rate_a:.2f}: "
            f"{100 * self.delta:+.2f} ({100 * self.confidence:g} % interval "
            f"{100 * self.low:+.2f} to {100 * self.high:+.2f}, {verdict}; paired bootstrap, "
            f"{self.resamples} resamples of {self.num_utterances} utterances, seed {self.seed})"
        )


def paired_bootstrap(
    ref_lens: np.ndarray,
    errors_a: np.ndarray,
    errors_b: np.ndarray,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float, float]:
    """Percentile interval of ``sum(e_b - e_a) / sum(n)`` under resampling of utterances.

    Args:
        ref_lens: reference length of each utterance, shape ``(utterances,)``; total > 0.
        errors_a: errors of system A per utterance, same shape.
        errors_b: errors of system B per utterance, same shape.
        resamples: bootstrap draws (default 2000).
        confidence: interval coverage in (0, 1) (default 0.95).
        seed: seed of the draws (default 0): the same inputs give the same interval.

    Returns:
        ``(delta, low, high, share_b_not_better)``: the difference on the data as given, the
        interval ends, and the fraction of draws in which B's rate is not below A's. A draw whose
        references are all empty counts as a difference of 0.
    """
    n, a, b = (np.asarray(x, dtype=np.float64) for x in (ref_lens, errors_a, errors_b))
    if not (n.shape == a.shape == b.shape and n.ndim == 1):
        raise ValueError(f"paired_bootstrap: shapes differ: {n.shape}, {a.shape}, {b.shape}")
    if n.size == 0 or n.sum() <= 0:
        raise ValueError("paired_bootstrap: the references are empty")
    if resamples < 1 or not 0 < confidence < 1:
        raise ValueError(f"paired_bootstrap: resamples {resamples}, confidence {confidence}")
    diff = b - a
    rng = np.random.default_rng(seed)
    deltas = []
    for start in range(0, resamples, CHUNK):
        idx = rng.integers(0, n.size, size=(min(CHUNK, resamples - start), n.size))
        total = n[idx].sum(axis=1)
        deltas.append(np.divide(diff[idx].sum(axis=1), total, where=total > 0,
                                out=np.zeros(len(idx))))  # fmt: skip
    draws = np.concatenate(deltas)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return float(diff.sum() / n.sum()), float(low), float(high), float(np.mean(draws >= 0))


def compare(
    baseline: ScoreReport,
    report: ScoreReport,
    unit: Literal["word", "char"] = "word",
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    names: tuple[str, str] = ("BASELINE", "HYP"),
) -> PairedDifference:
    """Paired bootstrap of ``report``'s rate minus ``baseline``'s, over their utterances.

    Args:
        baseline: system A's report.
        report: system B's report, of the same utterances with the same references.
        unit: "word" (WER, default) or "char" (CER).
        resamples, confidence, seed: as in :func:`paired_bootstrap`.
        names: what to call the two in a :class:`ScoreError` (e.g. their file paths).

    Raises:
        ScoreError: when the reports hold different utterances or references.
    """
    if unit not in ("word", "char"):
        raise ValueError(f"compare: unit must be 'word' or 'char', got {unit!r}")
    mine = {u.utt_id: u for u in report.utterances}
    if len(mine) != len(baseline.utterances) or any(
        u.utt_id not in mine for u in baseline.utterances
    ):
        raise ScoreError(
            f"{names[1]}: scores other utterances than {names[0]} "
            f"({len(mine)} against {len(baseline.utterances)}); compare decodes of one test set"
        )
    rows = []
    for base in baseline.utterances:
        other = mine[base.utt_id]
        if other.reference != base.reference:
            raise ScoreError(
                f"{names[1]}: utterance '{base.utt_id}' has another reference than in {names[0]}"
            )
        ca, cb = (base.words, other.words) if unit == "word" else (base.chars, other.chars)
        rows.append((ca.ref_len, ca.errors, cb.errors))
    n, a, b = np.array(rows, dtype=np.int64).T
    delta, low, high, share = paired_bootstrap(n, a, b, resamples, confidence, seed)
    counts = (baseline.words, report.words) if unit == "word" else (baseline.chars, report.chars)
    return PairedDifference(
        unit=unit,
        rate_a=counts[0].rate,
        rate_b=counts[1].rate,
        delta=delta,
        low=low,
        high=high,
        confidence=confidence,
        share_b_not_better=share,
        resamples=resamples,
        seed=seed,
        num_utterances=len(rows),
    )
