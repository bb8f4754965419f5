"""CTC prefix beam search (asr.decode.beam) against brute force, torch's CTC loss,
pyctcdecode, greedy decoding and a fixed bigram LM."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from asr.decode.beam import BeamSearchConfig, BeamSearchError, beam_search
from asr.decode.greedy import greedy_decode
from asr.lm.base import LanguageModel, LMError, LMState
from asr.text.tokenizer import CharTokenizer

OPEN = dict(token_min_logp=None, beam_threshold=None)  # no pruning but the beam size


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def random_log_probs(batch: int, frames: int, vocab: int, seed: int, scale: float = 2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(scale * torch.randn(batch, frames, vocab, generator=g), -1)


def collapse(path: tuple[int, ...]) -> tuple[int, ...]:
    out, prev = [], 0
    for s in path:
        if s != 0 and s != prev:
            out.append(s)
        prev = s
    return tuple(out)


def brute_force(lp: torch.Tensor) -> dict[tuple[int, ...], float]:
    """log P(labelling) for every labelling, summing all alignments of (frames, vocab) lp."""
    frames, vocab = lp.shape
    sums: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(vocab), repeat=frames):
        p = math.exp(sum(float(lp[t, s]) for t, s in enumerate(path)))
        key = collapse(path)
        sums[key] = sums.get(key, 0.0) + p
    return {k: math.log(v) for k, v in sums.items()}


def test_wide_beam_equals_brute_force():
    lp = random_log_probs(1, 5, 3, seed=0, scale=1.0).double()
    exact = brute_force(lp[0])
    cfg = BeamSearchConfig(beam_size=64, nbest=64, token_top_k=2, **OPEN)
    hyps = beam_search(lp, cfg=cfg)[0]
    assert len(hyps) == len(exact)  # every labelling that fits in 5 frames
    for h in hyps:
        assert h.acoustic_score == pytest.approx(exact[h.token_ids], abs=1e-9)
    assert hyps[0].token_ids == max(exact, key=exact.get)
    scores = [h.score for h in hyps]
    assert scores == sorted(scores, reverse=True)


def ctc_log_prob(lp: torch.Tensor, tokens: tuple[int, ...]) -> float:
    """log P(tokens | lp (frames, vocab)) from torch's CTC loss (the forward algorithm)."""
    loss = torch.nn.functional.ctc_loss(
        lp[:, None].double(),
        torch.tensor([tokens]),
        torch.tensor([lp.shape[0]]),
        torch.tensor([len(tokens)]),
        reduction="sum",
        zero_infinity=False,
    )
    return -float(loss)


def test_acoustic_score_is_ctc_forward_probability():
    """Without pruning every prefix is exact; with pruning alignments can only be lost."""
    lp = random_log_probs(1, 7, 3, seed=1, scale=1.0)
    cfg = BeamSearchConfig(beam_size=256, nbest=256, **OPEN)
    hyps = beam_search(lp, cfg=cfg)[0]
    assert len(hyps) == 67  # labellings of 2 symbols that fit in 7 frames (repeats need a blank)
    for h in hyps:
        if h.token_ids:
            assert h.acoustic_score == pytest.approx(ctc_log_prob(lp[0], h.token_ids), abs=1e-4)
    lengths = torch.tensor([30, 17, 9])
    lp = random_log_probs(3, 30, 6, seed=1)
    hyps = beam_search(lp, lengths, BeamSearchConfig(beam_size=8, nbest=4))
    for b, utt in enumerate(hyps):
        for h in utt:
            if h.token_ids:
                assert h.acoustic_score <= ctc_log_prob(lp[b, : lengths[b]], h.token_ids) + 1e-4
            assert all(0 <= f < lengths[b] for f in h.frames)
            assert list(h.frames) == sorted(h.frames)


def test_matches_pyctcdecode_without_lm():
    """Same best hypothesis as pyctcdecode, except where pyctcdecode's is less probable.

    pyctcdecode keeps the blank- and non-blank-ending paths of a prefix as separate beams and
    never adds them up, so on near-ties it can rank a less probable labelling first; where the
    answers differ, ours must have the higher exact CTC probability (torch's CTC loss).
    """
    pyctcdecode = pytest.importorskip("pyctcdecode")
    labels = ["", "a", "b", "c", "d"]
    decoder = pyctcdecode.build_ctcdecoder(labels)
    cfg = BeamSearchConfig(beam_size=32, **OPEN)
    lp = random_log_probs(30, 12, len(labels), seed=2, scale=1.5)
    ours = beam_search(lp, cfg=cfg)
    same = 0
    for b in range(lp.shape[0]):
        theirs = decoder.decode(
            lp[b].numpy(), beam_width=32, beam_prune_logp=-1000.0, token_min_logp=-1000.0
        )
        mine = "".join(labels[i] for i in ours[b][0].token_ids)
        if mine == theirs:
            same += 1
            continue
        their_ids = tuple(labels.index(ch) for ch in theirs)
        assert ours[b][0].acoustic_score > ctc_log_prob(lp[b], their_ids) + 1e-6
    assert same >= 0.8 * lp.shape[0]


def test_beam_one_on_peaky_emissions_is_greedy():
    g = torch.Generator().manual_seed(3)
    best = torch.randint(0, 7, (4, 40), generator=g)
    logits = torch.randn(4, 40, 7, generator=g)
    logits.scatter_(2, best[..., None], 12.0)
    lp = torch.log_softmax(logits, -1)
    lengths = torch.tensor([40, 33, 1, 20])
    greedy = greedy_decode(lp, lengths)
    beams = beam_search(lp, lengths, BeamSearchConfig(beam_size=1))
    for g_hyp, b_hyp in zip(greedy, beams):
        assert b_hyp[0].token_ids == g_hyp.token_ids
        assert b_hyp[0].frames == g_hyp.frames


class BigramLM(LanguageModel):
    """A fixed bigram table: state = the last token; log_probs = the table row."""

    def __init__(self, vocab: list[str], table: torch.Tensor) -> None:
        self.vocab = vocab
        self.table = torch.log_softmax(table, -1)
        self.calls = 0

    def initial_state(self, batch_size, device="cpu"):
        last = torch.zeros(batch_size, dtype=torch.long)
        return LMState((last,), self.table[last])

    def step(self, tokens, state):
        self.calls += 1
        return self.table[tokens], LMState((tokens.clone(),), self.table[tokens])


def ab_lm(prefer: str) -> tuple[CharTokenizer, BigramLM]:
    tok = CharTokenizer(["<blank>", " ", "A", "B"])
    table = torch.zeros(4, 4)
    other = "B" if prefer == "A" else "A"
    table[0, tok.vocab.index(prefer)] = 3.0  # sentences start with the preferred letter
    table[0, tok.vocab.index(other)] = -3.0
    table[2:, 0] = 2.0  # and then end
    return tok, BigramLM(tok.vocab, table)


def test_lm_flips_the_answer():
    # one frame where B is slightly more likely than A
    lp = torch.log(torch.tensor([[[0.1, 0.0001, 0.4, 0.4999]]]))
    tok, lm = ab_lm("A")
    cfg = BeamSearchConfig(beam_size=4, nbest=2, alpha=0.0)
    assert beam_search(lp, cfg=cfg, lm=lm, tokenizer=tok)[0][0].text == "B"
    cfg = BeamSearchConfig(beam_size=4, nbest=2, alpha=0.5)
    best = beam_search(lp, cfg=cfg, lm=lm, tokenizer=tok)[0][0]
    assert best.text == "A"
    assert best.lm_score == pytest.approx(float(lm.score_sentences([best.token_ids])[0]))
    assert best.score == pytest.approx(best.acoustic_score + 0.5 * best.lm_score)


def test_fused_scores_match_whole_sentence_scoring():
    tok = CharTokenizer(["<blank>", " ", "A", "B", "C"])
    table = torch.randn(5, 5, generator=torch.Generator().manual_seed(4))
    lm = BigramLM(tok.vocab, table)
    lp = random_log_probs(3, 25, 5, seed=5)
    cfg = BeamSearchConfig(beam_size=8, nbest=8, alpha=0.7, beta=0.3, length_unit="words")
    for utt in beam_search(lp, torch.tensor([25, 20, 11]), cfg, lm=lm, tokenizer=tok):
        sentences = [h.token_ids for h in utt]
        ref = lm.score_sentences(sentences)
        for h, r in zip(utt, ref):
            words = len(tok.decode(list(h.token_ids)).split())
            assert h.lm_score == pytest.approx(float(r), abs=1e-4)
            assert h.length == words
            assert h.score == pytest.approx(h.acoustic_score + 0.7 * h.lm_score + 0.3 * words)


def test_lm_cache_reuses_states_without_changing_results():
    tok = CharTokenizer(["<blank>", " ", "A", "B", "C"])
    table = torch.randn(5, 5, generator=torch.Generator().manual_seed(6))
    lp = random_log_probs(2, 40, 5, seed=7)
    results, rows = [], []
    for cache in (0, 4096, 7):
        stats: dict = {}
        cfg = BeamSearchConfig(beam_size=6, nbest=3, alpha=0.5, lm_cache_size=cache)
        results.append(beam_search(lp, cfg=cfg, lm=BigramLM(tok.vocab, table), stats=stats))
        rows.append(stats["lm_rows"])
    assert results[0] == results[1] == results[2]
    assert rows[1] < rows[0]  # some prefixes were pruned and found again


def test_independent_of_batch_size_and_order():
    tok = CharTokenizer(["<blank>", " ", "A", "B", "C", "D"])
    lm = BigramLM(tok.vocab, torch.randn(6, 6, generator=torch.Generator().manual_seed(8)))
    lp = random_log_probs(5, 30, 6, seed=9)
    lengths = torch.tensor([30, 12, 25, 1, 18])
    cfg = BeamSearchConfig(beam_size=5, nbest=3, alpha=0.8, beta=0.5, blank_skip_threshold=-0.5)
    together = beam_search(lp, lengths, cfg, lm=lm, tokenizer=tok)
    alone = [beam_search(lp[b : b + 1], lengths[b : b + 1], cfg, lm, tok)[0] for b in range(5)]
    perm = torch.tensor([3, 0, 4, 2, 1])
    shuffled = beam_search(lp[perm], lengths[perm], cfg, lm=lm, tokenizer=tok)
    for b in range(5):
        for ref in (alone[b], shuffled[int((perm == b).nonzero())]):
            assert [h.token_ids for h in ref] == [h.token_ids for h in together[b]]
            assert [h.frames for h in ref] == [h.frames for h in together[b]]
            for x, y in zip(ref, together[b]):
                assert x.score == pytest.approx(y.score, abs=1e-4)


def test_blank_skipping_only_skips_blank_frames():
    lp = random_log_probs(2, 30, 5, seed=10)
    lp[:, ::3] = torch.log(torch.tensor([0.999, 0.00025, 0.00025, 0.00025, 0.00025]))
    stats: dict = {}
    cfg = BeamSearchConfig(beam_size=8, blank_skip_threshold=math.log(0.99))
    skipped = beam_search(lp, cfg=cfg, stats=stats)
    assert stats["frames_searched"] == 20
    full = beam_search(lp, cfg=BeamSearchConfig(beam_size=8))
    assert [u[0].token_ids for u in skipped] == [u[0].token_ids for u in full]


def test_vocabulary_mismatch_is_an_error():
    _, lm = ab_lm("A")
    lp = random_log_probs(1, 4, 5, seed=11)
    with pytest.raises(BeamSearchError, match="5"):
        beam_search(lp, lm=lm)
    other = CharTokenizer(["<blank>", " ", "A", "C"])
    with pytest.raises(LMError, match="do not match"):
        beam_search(random_log_probs(1, 4, 4, seed=12), lm=lm, tokenizer=other)
    with pytest.raises(ValueError, match="nbest"):
        BeamSearchConfig(beam_size=2, nbest=3)


def test_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    lp = random_log_probs(4, 50, 8, seed=13)
    cfg = BeamSearchConfig(beam_size=8, nbest=2)
    cpu = beam_search(lp, cfg=cfg)
    gpu = beam_search(lp.cuda(), cfg=cfg)
    assert [[h.token_ids for h in u] for u in cpu] == [[h.token_ids for h in u] for u in gpu]
