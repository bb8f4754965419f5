"""Greedy (best-path) CTC decoding: the best symbol at every frame, repeats collapsed, blanks
dropped. :func:`greedy_decode` is the algorithm (training validates with it);
:class:`GreedyDecoder` the same as a :class:`asr.decode.base.Decoder`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from asr.decode.base import Decoder

if TYPE_CHECKING:
    from asr.text.tokenizer import Tokenizer

__all__ = ["GreedyDecoder", "GreedyHypothesis", "collapse_path", "greedy_decode"]


@dataclasses.dataclass(frozen=True)
class GreedyHypothesis:
    """The best path of one utterance."""

    token_ids: tuple[int, ...]  # emitted tokens (repeats collapsed, blanks dropped)
    frames: tuple[int, ...]  # for each token, the first frame of its run of argmax frames
    text: str | None  # tokenizer.decode(token_ids), or None without a tokenizer
    log_prob: float  # sum over valid frames of the best-path log-probability


def greedy_decode(
    log_probs: Tensor,
    lengths: Tensor | None = None,
    tokenizer: Tokenizer | None = None,
    blank_id: int = 0,
) -> list[GreedyHypothesis]:
    """Decode a batch of CTC outputs by taking the best symbol at every frame.

    Args:
        log_probs: (batch, frames, vocab) log-probabilities (or logits: only the argmax and the
            summed maxima are used).
        lengths: (batch,) valid frames per utterance; default all frames.
        tokenizer: turns token ids into text (``text`` is None without it).
        blank_id: index of the CTC blank. Default 0.
    Returns:
        one :class:`GreedyHypothesis` per utterance, in batch order.
    """
    if log_probs.dim() != 3:
        raise ValueError(f"log_probs must be (batch, frames, vocab), got {tuple(log_probs.shape)}")
    batch, frames, _ = log_probs.shape
    if lengths is None:
        lengths = torch.full((batch,), frames, dtype=torch.long)
    lengths = lengths.to(log_probs.device).long().clamp(0, frames)
    best, ids = log_probs.detach().max(dim=-1)  # (batch, frames)
    valid = torch.arange(frames, device=ids.device)[None, :] < lengths[:, None]
    previous = torch.nn.functional.pad(ids, (1, 0), value=blank_id)[:, :-1]
    keep = valid & (ids != blank_id) & (ids != previous)
    scores = (best.float() * valid).sum(dim=-1)
    ids, keep, scores = ids.cpu(), keep.cpu(), scores.cpu()
    out = []
    for b in range(batch):
        frame_idx = keep[b].nonzero().squeeze(-1)
        tokens = tuple(ids[b, frame_idx].tolist())
        text = tokenizer.decode(list(tokens)) if tokenizer is not None else None
        out.append(GreedyHypothesis(tokens, tuple(frame_idx.tolist()), text, float(scores[b])))
    return out


def collapse_path(
    ids: Sequence[int], blank_id: int = 0, prev: int | None = None
) -> list[tuple[int, int]]:
    """The tokens of a best path, one at a time (what :func:`greedy_decode` does for a batch).

    Args:
        ids: the argmax symbol of every frame.
        blank_id: index of the CTC blank. Default 0.
        prev: the symbol of the frame before ``ids[0]`` (default: a blank), so that a path
            continued chunk by chunk emits a token that runs across the boundary once.
    Returns:
        ``(token, frame)`` pairs: repeats collapsed, blanks dropped, each token at the first frame
        of its run within ``ids``.
    """
    prev = blank_id if prev is None else prev
    out = []
    for frame, symbol in enumerate(ids):
        if symbol != blank_id and symbol != prev:
            out.append((symbol, frame))
        prev = symbol
    return out


class GreedyDecoder(Decoder):
    """Best path as a :class:`asr.decode.base.Decoder` (batched, on any device).

    Args:
        tokenizer: the acoustic model's tokenizer (gives the text and the blank id).
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    def decode(self, log_probs: Tensor, lengths: Tensor) -> list[GreedyHypothesis]:
        """``(batch, frames, vocab)`` log-probs and ``(batch,)`` lengths -> best paths."""
        return greedy_decode(log_probs, lengths, self.tokenizer, self.tokenizer.blank_id)
