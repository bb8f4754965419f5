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
    lp = torch.log(
        torch.tensor(
            [[0.9, 0.04, 0.05, 0.01], [0.1, 0.001, 0.002, 0.897], [0.9, 0.001, 0.002, 0.097]]
        )
    )
    tokens, tok_lp = P.frame_candidates(lp, top_k=2, min_logp=math.log(0.03))
    assert tokens.tolist() == [[2, 1], [3, 2], [3, 2]]
    assert tok_lp[0].isfinite().all()
    assert tok_lp[1, 0].isfinite() and tok_lp[1, 1] == NEG
    tokens, tok_lp = P.frame_candidates(lp, top_k=2, min_logp=math.log(0.5))
    # the argmax is kept even below the threshold; a blank argmax leaves no candidate
    assert tok_lp[1, 0].isfinite() and (tok_lp[[0, 2]] == NEG).all()
    tokens, _ = P.frame_candidates(lp, top_k=10, min_logp=None)
    assert tokens.shape == (3, 3) and (tokens != 0).all()


def reference_merge(beam_hash, beam_valid, ext_hash, ext_pnb):
    """All extensions against all beams by hash (O(K^2 C)): the definition."""
    eq = (ext_hash[:, :, None] == beam_hash[:, None, :]) & beam_valid[:, None, :]
    contrib = torch.where(eq, ext_pnb[:, :, None], torch.full_like(ext_pnb[:, :, None], NEG))
    return torch.logsumexp(contrib, dim=1), eq.any(dim=2)


def test_merge_extensions_by_hand():
    # beams: "" (0), "A" (1), "AB" (2, parent "A"), "B" (3); extensions of "A" by B merge into 2
    h_a = P.extend_hash(torch.tensor(P.HASH_OFFSET), torch.tensor(1))
    h_ab = P.extend_hash(h_a, torch.tensor(2))
    h_b = P.extend_hash(torch.tensor(P.HASH_OFFSET), torch.tensor(2))
    hashes = torch.stack([torch.tensor(P.HASH_OFFSET), h_a, h_ab, h_b])[None]
    parent = torch.stack(
        [torch.tensor(0), torch.tensor(P.HASH_OFFSET), h_a, torch.tensor(P.HASH_OFFSET)]
    )[None]
    last = torch.tensor([[0, 1, 2, 2]])
    pb = torch.log(torch.tensor([[0.1, 0.2, 0.05, 0.05]]))
    pnb = torch.log(torch.tensor([[0.0, 0.3, 0.1, 0.1]]))
    valid = torch.ones(1, 4, dtype=torch.bool)
    tokens = torch.tensor([[2, 1]])
    tok_lp = torch.log(torch.tensor([[0.5, 0.25]]))
    add, merged = P.merge_extensions((pb, pnb, last, hashes, parent, valid), tokens, tok_lp)
    # beam 2 ("AB") gets "A" + B: (0.2 + 0.3) * 0.5; beam 1 ("A") gets "" + A: 0.1 * 0.25;
    # beam 3 ("B") gets "" + B: 0.1 * 0.5
    assert torch.allclose(add.exp(), torch.tensor([[0.0, 0.025, 0.25, 0.05]]))
    # candidates i * C + c: ("" + B) = 0, ("" + A) = 1, ("A" + B) = 2
    assert merged[0].nonzero().view(-1).tolist() == [0, 1, 2]


def test_merge_extensions_equals_reference_on_random_beams():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        batch, size, vocab = 3, 6, 5
        # a random prefix tree: beams are distinct random sequences of length <= 3
        seqs = [
            [
                tuple(torch.randint(1, vocab, (int(n),), generator=g).tolist())
                for n in torch.randint(0, 4, (size,), generator=g)
            ]
            for _ in range(batch)
        ]
        seqs = [list(dict.fromkeys(row)) for row in seqs]
        size = min(len(row) for row in seqs)
        seqs = [row[:size] for row in seqs]

        def h(seq):
            out = torch.tensor(P.HASH_OFFSET)
            for tok in seq:
                out = P.extend_hash(out, torch.tensor(tok))
            return out

        hashes = torch.stack([torch.stack([h(s) for s in row]) for row in seqs])
        parent = torch.stack(
            [torch.stack([h(s[:-1]) if s else torch.tensor(0) for s in row]) for row in seqs]
        )
        last = torch.tensor([[s[-1] if s else 0 for s in row] for row in seqs])
        pb = torch.randn(batch, size, generator=g)
        pnb = torch.randn(batch, size, generator=g).masked_fill(last == 0, NEG)
        valid = torch.rand(batch, size, generator=g) > 0.2
        frame_lp = torch.log_softmax(torch.randn(batch, vocab, generator=g), -1)
        tokens, tok_lp = P.frame_candidates(frame_lp, 3, None)
        tok_lp[0, 2] = NEG
        ext_pnb = P.extend_update(pb, pnb, last, tokens, tok_lp)
        ext_hash = P.extend_hash(hashes[:, :, None], tokens[:, None, :])
        ext_pnb = ext_pnb.masked_fill(~valid[:, :, None], NEG).view(batch, -1)
        add, merged = P.merge_extensions((pb, pnb, last, hashes, parent, valid), tokens, tok_lp)
        ref_add, ref_merged = reference_merge(hashes, valid, ext_hash.view(batch, -1), ext_pnb)
        ref_merged &= ext_pnb > NEG
        assert torch.equal(add.isinf(), ref_add.isinf())
        assert torch.allclose(
            add.masked_fill(add.isinf(), 0), ref_add.masked_fill(ref_add.isinf(), 0)
        )
        assert torch.equal(merged & (ext_pnb > NEG), ref_merged)


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
