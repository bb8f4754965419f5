"""Batched greedy (best-path) CTC decoding as a decoder; the algorithm itself lives in
:mod:`asr.models.ctc` (training uses it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from asr.decode.base import Decoder
from asr.models.ctc import GreedyHypothesis, greedy_decode

if TYPE_CHECKING:
    from asr.tokenizer import Tokenizer

__all__ = ["GreedyDecoder", "GreedyHypothesis", "greedy_decode"]


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
