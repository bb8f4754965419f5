"""Pure helpers of the prefix beam search (asr.decode.prefix) against hand computations."""

from __future__ import annotations

import math

import torch

from asr.decode import prefix as P

NEG = float("-inf")


def test_hash_identifies_sequences():
    seqs = [(), (1,), (2,), (1, 1), (1, 2), (2, 1), (1, 2, 1), (28, 1), (1, 28)]
    hashes = []
    for seq in seqs:
        h = torch.tensor(P.HASH_OFFSET)
        for tok in seq:
            h = P.extend_hash(h, torch.tensor(tok))
        hashes.append(int(h))
    assert len(set(hashes)) == len(seqs)
    # broadcasting: (B, K, 1) hashes x (B, 1, C) tokens
    grid = P.extend_hash(torch.full((1, 2, 1), P.HASH_OFFSET), torch.tensor([[[1, 2]]]))
    assert grid.shape == (1, 2, 2) and int(grid[0, 0, 0]) == hashes[1]


def test_stay_update_by_hand():
    lp = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))
    pb = torch.log(torch.tensor([[0.1, 0.2]]))
    pnb = torch.log(torch.tensor([[0.0, 0.4]]))
    last = torch.tensor([[0, 2]])  # empty prefix, prefix ending in token 2
    new_pb, new_pnb = P.stay_update(pb, pnb, last, lp)
    assert torch.allclose(new_pb.exp(), torch.tensor([[0.1 * 0.5, 0.6 * 0.5]]))
    assert new_pnb[0, 0] == NEG  # the empty prefix has no non-blank path
    assert math.isclose(float(new_pnb[0, 1].exp()), 0.4 * 0.2, rel_tol=1e-6)


def test_extend_update_repeats_need_a_blank():
    pb = torch.log(torch.tensor([[0.1]]))
    pnb = torch.log(torch.tensor([[0.3]]))
    last = torch.tensor([[1]])
    tokens = torch.tensor([[1, 2]])
    tok_lp = torch.log(torch.tensor([[0.5, 0.25]]))
    out = P.extend_update(pb, pnb, last, tokens, tok_lp).exp()
    assert torch.allclose(out, torch.tensor([[[0.1 * 0.5, 0.4 * 0.25]]]))


def test_frame_candidates_top_k_and_threshold():
    lp = torch.log(torch.tensor([[0.9, 0.04, 0.05, 0.01], [0.1, 0.001, 0.002, 0.003]]))
    tokens, tok_lp = P.frame_candidates(lp, top_k=2, min_logp=math.log(0.03))
    assert tokens.tolist() == [[2, 1], [3, 2]]
    assert tok_lp[0].isfinite().all()
    # row 1: all below the threshold, the best is kept anyway
    assert tok_lp[1, 0].isfinite() and tok_lp[1, 1] == NEG
    tokens, _ = P.frame_candidates(lp, top_k=10, min_logp=None)
    assert tokens.shape == (2, 3) and (tokens != 0).all()


def test_merge_extensions():
    beam_hash = torch.tensor([[10, 20, 30]])
    valid = torch.tensor([[True, True, False]])
    ext_hash = torch.tensor([[20, 30, 40]])
    ext_pnb = torch.log(torch.tensor([[0.2, 0.3, 0.4]]))
    add, merged = P.merge_extensions(beam_hash, valid, ext_hash, ext_pnb)
    assert merged.tolist() == [[True, False, False]]  # 30 matches only an invalid beam
    assert add[0, 0] == NEG and add[0, 2] == NEG
    assert math.isclose(float(add[0, 1].exp()), 0.2, rel_tol=1e-6)


def test_prune_scores():
    scores = torch.tensor([[1.0, 5.0, 3.0, NEG], [0.0, -100.0, -1.0, -2.0]])
    top, index = P.prune_scores(scores, 3, threshold=10.0)
    assert index.tolist() == [[1, 2, 0], [0, 2, 3]]
    assert top.tolist() == [[5.0, 3.0, 1.0], [0.0, -1.0, -2.0]]
    top, _ = P.prune_scores(scores, 3, threshold=2.5)
    assert top[0].tolist() == [5.0, 3.0, NEG] and top[1].tolist() == [0.0, -1.0, -2.0]
    top, index = P.prune_scores(scores, 8, None)
    assert top.shape == (2, 4)


def test_word_start_table_chars_and_pieces():
    chars = ["<blank>", " ", "A", "B"]
    t = P.word_start_table(chars)
    assert t[0, 2] == 1 and t[1, 3] == 1  # start of text, after a space
    assert t[2, 3] == 0 and t[2, 1] == 0 and t[0, 1] == 0  # inside a word, spaces never
    pieces = ["<blank>", "\u2581THE", "RE", "\u2581A"]
    t = P.word_start_table(pieces)
    assert t[2, 1] == 1 and t[1, 2] == 0 and t[0, 2] == 1
