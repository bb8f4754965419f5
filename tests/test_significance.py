"""asr.scoring.significance and ``asr score --baseline``: the paired bootstrap against the exact
bootstrap distribution (every resample enumerated), scipy.stats.bootstrap and jiwer's rates."""

from __future__ import annotations

import itertools
import json

import jiwer
import numpy as np
import pytest

from asr.cli import main
from asr.scoring.significance import compare, paired_bootstrap
from asr.scoring.wer import ScoreError, score


def test_matches_the_exact_bootstrap_distribution():
    """Four utterances: all 4**4 resamples are equally likely, so the bootstrap distribution is
    known exactly; the sampled interval ends must sit at its quantiles."""
    n = np.array([5, 12, 3, 9])
    a = np.array([2, 6, 0, 4])
    b = np.array([1, 2, 2, 4])
    exact = np.array(
        [
            (b[list(i)] - a[list(i)]).sum() / n[list(i)].sum()
            for i in itertools.product(range(4), repeat=4)
        ]
    )
    delta, low, high, share = paired_bootstrap(n, a, b, resamples=40000, confidence=0.9, seed=3)
    assert delta == pytest.approx((b - a).sum() / n.sum())
    assert np.quantile(exact, 0.04) <= low <= np.quantile(exact, 0.06)
    assert np.quantile(exact, 0.94) <= high <= np.quantile(exact, 0.96)
    assert share == pytest.approx(np.mean(exact >= 0), abs=0.01)


def test_matches_scipy_paired_percentile_bootstrap():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    n = rng.integers(3, 30, size=60)
    a = rng.binomial(n, 0.4)
    b = rng.binomial(n, 0.3)

    def statistic(n_, a_, b_):
        return (b_ - a_).sum() / n_.sum()

    ref = stats.bootstrap(
        (n, a, b), statistic, paired=True, vectorized=False, method="percentile",
        n_resamples=5000, confidence_level=0.95, random_state=1,
    )  # fmt: skip
    _, low, high, _ = paired_bootstrap(n, a, b, resamples=5000, seed=7)
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert low == pytest.approx(ref.confidence_interval.low, abs=0.05 * width)
    assert high == pytest.approx(ref.confidence_interval.high, abs=0.05 * width)


def test_seed_fixes_the_draws_and_bad_arguments_are_refused():
    n, a, b = np.array([4, 4, 4]), np.array([1, 2, 0]), np.array([0, 2, 1])
    assert paired_bootstrap(n, a, b, seed=5) == paired_bootstrap(n, a, b, seed=5)
    with pytest.raises(ValueError, match="empty"):
        paired_bootstrap(np.array([0, 0]), np.array([0, 1]), np.array([1, 0]))
    with pytest.raises(ValueError, match="shapes differ"):
        paired_bootstrap(n, a, b[:2])
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap(n, a, b, confidence=1.0)


REFS = {f"u{i}": "THE CAT SAT ON THE MAT" for i in range(30)}


def test_compare_reports():
    worse = {k: "THE BAT SAT ON MAT" for k in REFS}
    better = {
        k: ("THE CAT SAT ON THE MAT" if i % 3 else "THE CAT SAT ON MAT") for i, k in enumerate(REFS)
    }
    base, new = score(REFS, worse), score(REFS, better)
    word = compare(base, new)
    assert word.delta == pytest.approx(new.wer - base.wer)
    assert word.high < 0 and word.significant and word.share_b_not_better == 0.0
    char = compare(base, new, unit="char")
    refs = list(REFS.values())
    expected = jiwer.cer(refs, list(better.values())) - jiwer.cer(refs, list(worse.values()))
    assert char.delta == pytest.approx(expected)
    same = compare(base, score(REFS, worse))
    assert (same.delta, same.low, same.high, same.significant) == (0.0, 0.0, 0.0, False)
    assert "not significant" in same.describe()


def test_compare_refuses_other_utterances_or_references():
    base = score(REFS, dict(REFS))
    fewer = {k: v for k, v in list(REFS.items())[:-1]}
    with pytest.raises(ScoreError, match="scores other utterances"):
        compare(base, score(fewer, fewer), names=("a.jsonl", "b.jsonl"))
    other = {**REFS, "u0": "A DOG"}
    with pytest.raises(ScoreError, match="'u0' has another reference"):
        compare(base, score(other, other))


def _write(path, texts):
    path.write_text("".join(f"{k} {t}\n" for k, t in texts.items()))
    return str(path)


def test_cli_baseline(tmp_path, capsys):
    ref = _write(tmp_path / "ref.txt", REFS)
    old = _write(tmp_path / "old.txt", {k: "THE BAT SAT ON MAT" for k in REFS})
    new = _write(tmp_path / "new.txt", {k: "the cat sat on the mat." for k in REFS})
    assert main(["score", ref, new, "--baseline", old, "--alignments", "none"]) == 0
    out = capsys.readouterr().out
    assert "WER 0.00 vs baseline 33.33: -33.33 (95 % interval -33.33 to -33.33, significant" in out
    assert main(["score", ref, new, "--baseline", old, "--json", "--resamples", "50"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["normalized"] is True  # new.txt's case and punctuation: both systems normalised
    word = data["baseline"]["word"]
    old_wer = jiwer.wer(list(REFS.values()), ["THE BAT SAT ON MAT"] * len(REFS))
    assert word["delta"] == pytest.approx(-old_wer)
    assert word["resamples"] == 50 and data["baseline"]["hyp"] == old


def test_cli_baseline_errors_are_one_line(tmp_path, capsys):
    ref = _write(tmp_path / "ref.txt", REFS)
    old = _write(tmp_path / "old.txt", dict(list(REFS.items())[:5]))
    assert main(["score", ref, ref, "--baseline", old]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{old}: no hypothesis for utterance 'u5'" in err
    assert main(["score", ref, ref, "--baseline", ref, "--resamples", "0"]) == 2
    assert "--resamples must be >= 1" in capsys.readouterr().err
