"""The modified Kneser-Ney ARPA estimator against a hand computation and a naive reference,
read back by KenLM."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from asr.lm.ngram import BOS, EOS, UNK, KenLMScorer, NgramError, char_tokens, estimate_arpa

kenlm = pytest.importorskip("kenlm")

FALLBACK = (0.5, 1.0, 1.5)


def _kenlm_prob(model, tokens: list[str]) -> float:
    return 10.0 ** sum(s for s, _, _ in model.full_scores(" ".join(tokens), bos=True, eos=True))


def test_bigram_matches_hand_computation(tmp_path):
    # <s> a b </s>, <s> a </s>; D1, D2, D3+ = 0.5, 1, 1.5 at both orders.
    # Unigram adjusted counts (distinct left contexts): a 1, b 1, </s> 2 -> denominator 4,
    # gamma = (0.5 + 0.5 + 1) / 4 = 0.5, uniform over {a, b, </s>, <unk>}:
    # p(a) = p(b) = 0.5/4 + 0.5/4 = 0.25, p(</s>) = 1/4 + 0.125 = 0.375, p(<unk>) = 0.125.
    # p(a|<s>) = (2-1)/2 + 0.5 * 0.25 = 0.625; p(b|a) = 0.5/2 + 0.5 * 0.25 = 0.375;
    # p(</s>|b) = 0.5/1 + 0.5 * 0.375 = 0.6875; p(</s>|a) = 0.5/2 + 0.5 * 0.375 = 0.4375.
    arpa = tmp_path / "lm.arpa"
    stats = estimate_arpa([["a", "b"], ["a"]], 2, arpa, discounts=[FALLBACK, FALLBACK])
    assert stats.counts == (5, 4)  # <unk> <s> </s> a b; <s> a, a b, a </s>, b </s>
    model = kenlm.Model(str(arpa))
    assert _kenlm_prob(model, ["a", "b"]) == pytest.approx(0.625 * 0.375 * 0.6875, rel=1e-6)
    assert _kenlm_prob(model, ["a"]) == pytest.approx(0.625 * 0.4375, rel=1e-6)
    # unseen bigram <s> b backs off: gamma(<s>) = 1/2 -> 0.5 * 0.25
    assert _kenlm_prob(model, ["b"]) == pytest.approx(0.125 * 0.6875, rel=1e-6)
    # out of vocabulary: 0.5 * p(<unk>) then p(</s>) from the unigram
    assert _kenlm_prob(model, ["zz"]) == pytest.approx(0.0625 * 0.375, rel=1e-6)


def _naive_model(sentences, order, discounts):
    """Textbook interpolated modified Kneser-Ney with dicts, straight from the formulas."""
    padded = [[BOS, *s, EOS] for s in sentences]
    raw = Counter(
        tuple(s[i : i + n])
        for s in padded
        for n in range(1, order + 1)
        for i in range(len(s) - n + 1)
    )
    left_extensions = Counter(g[1:] for g in raw if len(g) > 1)  # distinct (v, gram) per gram
    adjusted = {
        g: c if len(g) == order or g[0] == BOS else left_extensions[g] for g, c in raw.items()
    }
    by_context: dict[tuple, dict] = {}
    for gram, a in adjusted.items():
        by_context.setdefault(gram[:-1], {})[gram[-1]] = a
    vocab = {g[0] for g in raw if len(g) == 1} - {BOS} | {UNK}

    def disc(n, a):
        return 0.0 if a == 0 else discounts[n - 1][min(a, 3) - 1]

    def prob(word, context):
        n = len(context) + 1
        ext = {w: a for w, a in by_context.get(context, {}).items() if w != BOS}
        lower = 1.0 / len(vocab) if n == 1 else prob(word, context[1:])
        denom = sum(ext.values())
        if denom == 0:
            return lower
        gamma = sum(disc(n, a) for a in ext.values()) / denom
        a = ext.get(word, 0)
        return (a - disc(n, a)) / denom + gamma * lower

    def sentence_prob(tokens):
        history, total = [BOS], 1.0
        for tok in [*tokens, EOS]:
            tok = tok if tok in vocab else UNK
            total *= prob(tok, tuple(history[-(order - 1) :]) if order > 1 else ())
            history.append(tok)
        return total

    return adjusted, vocab, prob, sentence_prob


def _zipf_corpus(seed, count, symbols="abcdefghij"):
    rng = random.Random(seed)
    weights = [1.0 / (i + 1) for i in range(len(symbols))]
    return [rng.choices(symbols, weights, k=rng.randint(0, 9)) for _ in range(count)]


@pytest.mark.parametrize("order", [3, 4])
def test_matches_naive_reference_and_normalises(tmp_path, order):
    train = _zipf_corpus(1, 250)
    discounts = [(0.6, 1.1, 1.4), (0.7, 1.2, 1.6), (0.55, 1.0, 1.7), (0.8, 1.3, 1.9)][:order]
    arpa = tmp_path / "lm.arpa"
    estimate_arpa(train, order, arpa, discounts=discounts)
    model = kenlm.Model(str(arpa))
    _, vocab, prob, sentence_prob = _naive_model(train, order, discounts)
    for sentence in _zipf_corpus(2, 15, "abcdefghijk"):  # "k" is out of vocabulary
        assert _kenlm_prob(model, sentence) == pytest.approx(sentence_prob(sentence), rel=1e-5)
    # after every prefix of a training sentence, the next-token distribution sums to 1
    for sentence in train[:30]:
        state = kenlm.State()
        model.BeginSentenceWrite(state)
        history = [BOS]
        for tok in [*sentence, None]:
            total = sum(10.0 ** model.BaseScore(state, w, kenlm.State()) for w in vocab)
            assert total == pytest.approx(1.0, abs=1e-5)
            context = tuple(history[-(order - 1) :])
            assert sum(prob(w, context) for w in vocab) == pytest.approx(1.0, abs=1e-9)
            if tok is None:
                break
            out = kenlm.State()
            model.BaseScore(state, tok, out)
            state, history = out, [*history, tok]


def test_discounts_from_counts_of_counts(tmp_path):
    train = _zipf_corpus(3, 1500, "abcdefghijklmnopqrstuvwxyz")
    stats = estimate_arpa(train, 4, tmp_path / "lm.arpa", discount_fallback=True)
    adjusted, _, _, _ = _naive_model(train, 4, [FALLBACK] * 4)
    assert stats.discounts[0] == FALLBACK  # unigrams: no adjusted count is 1 -> fallback
    for n in (3, 4):
        t = Counter(a for g, a in adjusted.items() if len(g) == n)
        assert min(t[1], t[2], t[3], t[4]) > 0
        y = t[1] / (t[1] + 2 * t[2])
        expected = (1 - 2 * y * t[2] / t[1], 2 - 3 * y * t[3] / t[2], 3 - 4 * y * t[4] / t[3])
        assert stats.discounts[n - 1] == pytest.approx(expected)


def test_errors_and_char_scorer(tmp_path):
    with pytest.raises(NgramError, match="counts-of-counts"):
        estimate_arpa([["a", "a"]], 2, tmp_path / "x.arpa")
    arpa = tmp_path / "chars.arpa"
    texts = ["THE CAT", "THE HAT", "A CAT SAT", "THAT HAT"] * 5
    estimate_arpa((char_tokens(t) for t in texts), 3, arpa, discount_fallback=True)
    scorer = KenLMScorer(arpa)
    assert scorer.chars
    logp, oov = scorer.score("THE CAT")
    assert oov == 0 and logp == pytest.approx(
        math.log(_kenlm_prob(scorer.model, char_tokens("THE CAT"))), rel=1e-6
    )
    assert scorer.score("THE DOG")[1] == 3  # D, O, G unseen
    with pytest.raises(NgramError, match="no such"):
        KenLMScorer(tmp_path / "missing.arpa")


def test_cli_lm_text_ngram_and_ppl(tmp_path, capsys):
    from asr.cli import main

    novel = tmp_path / "novel.txt"
    novel.write_text("The cat sat.  The hat, the mat!\n\nA cat sat on 2 mats.\n", encoding="utf-8")
    text = tmp_path / "norm.txt"
    assert main(["lm-text", str(novel), "--out", str(text)]) == 0
    assert text.read_text().splitlines() == [
        "THE CAT SAT",
        "THE HAT THE MAT",
        "A CAT SAT ON TWO MATS",
    ]
    arpa = tmp_path / "c3.arpa"
    args = ["ngram", str(text), "--order", "3", "--unit", "char", "--out", str(arpa)]
    assert main([*args, "--discount-fallback"]) == 0
    capsys.readouterr()
    assert main(["lm-ppl", "--lm", str(arpa), str(text), "--no-normalize"]) == 0
    out = capsys.readouterr().out
    assert "3 sentences, 13 words, 47 tokens, 0 OOV" in out and "ppl/word" in out
    assert main(["lm-ppl", "--lm", str(tmp_path / "none.arpa"), str(text)]) == 2
