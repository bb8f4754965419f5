"""Greedy CTC decoding against a hand example and brute-force enumeration of all paths."""

from __future__ import annotations

import itertools

import pytest
import torch

from asr.decode.greedy import greedy_decode


class _Letters:
    """Minimal tokenizer: 0 = blank, then letters."""

    vocab = ("<blank>", "a", "b", "c")

    def decode(self, ids: list[int]) -> str:
        return "".join(self.vocab[i] for i in ids)


def _collapse(path: tuple[int, ...], blank: int = 0) -> tuple[int, ...]:
    out, prev = [], None
    for s in path:
        if s != prev and s != blank:
            out.append(s)
        prev = s
    return tuple(out)


def _one_hot_log_probs(path: list[int], vocab: int = 4) -> torch.Tensor:
    lp = torch.full((len(path), vocab), -10.0)
    lp[torch.arange(len(path)), torch.tensor(path)] = -0.01
    return lp


def test_hand_example_tokens_frames_text():
    # frames:   0  1  2  3  4  5  6  7  8
    path = [0, 1, 1, 0, 1, 2, 2, 0, 3]
    hyp = greedy_decode(_one_hot_log_probs(path)[None], tokenizer=_Letters())[0]
    assert hyp.token_ids == (1, 1, 2, 3)  # "a a" separated by a blank stays two tokens
    assert hyp.frames == (1, 4, 5, 8)  # first frame of each run
    assert hyp.text == "aabc"
    assert hyp.log_prob == pytest.approx(-0.09)


def test_lengths_cut_padding_and_batch_order():
    a = _one_hot_log_probs([1, 0, 2, 2, 3, 3])
    b = _one_hot_log_probs([3, 3, 1, 0, 0, 0])
    batch = torch.stack([a, b])
    hyps = greedy_decode(batch, torch.tensor([4, 3]), tokenizer=_Letters())
    assert [h.text for h in hyps] == ["ab", "ca"]
    assert hyps[0].frames == (0, 2) and hyps[1].frames == (0, 2)
    empty = greedy_decode(batch, torch.tensor([0, 6]))[0]
    assert empty.token_ids == () and empty.text is None and empty.log_prob == 0.0


def test_custom_blank_id():
    hyp = greedy_decode(_one_hot_log_probs([3, 1, 1, 3, 2])[None], blank_id=3)[0]
    assert hyp.token_ids == (1, 2)


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force_best_path(seed):
    """The greedy output is the collapse of the single most probable frame path, found by
    enumerating every path of a tiny random problem."""
    gen = torch.Generator().manual_seed(seed)
    batch, frames, vocab = 3, 5, 3
    log_probs = torch.randn(batch, frames, vocab, generator=gen, dtype=torch.float64)
    log_probs = log_probs.log_softmax(-1)
    lengths = torch.tensor([5, 3, 1])
    hyps = greedy_decode(log_probs, lengths)
    for b in range(batch):
        n = int(lengths[b])
        best_score, best_path = max(
            (sum(float(log_probs[b, t, s]) for t, s in enumerate(path)), path)
            for path in itertools.product(range(vocab), repeat=n)
        )
        assert hyps[b].token_ids == _collapse(best_path)
        assert hyps[b].log_prob == pytest.approx(best_score, abs=1e-5)
        starts = [
            t for t, s in enumerate(best_path) if s != 0 and (t == 0 or best_path[t - 1] != s)
        ]
        assert hyps[b].frames == tuple(starts)


def test_rejects_wrong_rank():
    with pytest.raises(ValueError, match="batch, frames, vocab"):
        greedy_decode(torch.zeros(4, 3))


@pytest.mark.parametrize("seed", range(5))
def test_collapse_path_equals_greedy_decode_whole_and_chunked(seed: int) -> None:
    """The one-path collapse agrees with the batched one, and continued chunk by chunk with
    ``prev`` it gives the whole path's tokens (a run across a boundary is emitted once)."""
    from asr.decode.greedy import collapse_path

    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 4, (60,), generator=gen)  # few symbols: many runs and repeats
    log_probs = torch.nn.functional.one_hot(ids, 4).float().log()
    whole = greedy_decode(log_probs[None], blank_id=0)[0]
    path = collapse_path(ids.tolist(), blank_id=0)
    assert [t for t, _ in path] == list(whole.token_ids)
    assert [f for _, f in path] == list(whole.frames)
    chunked, prev = [], None
    for start in range(0, 60, 7):
        part = ids[start : start + 7].tolist()
        chunked += [(t, start + f) for t, f in collapse_path(part, 0, prev)]
        prev = part[-1]
    assert chunked == path
