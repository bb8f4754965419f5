"""What every decoder is: log-probabilities in, one hypothesis per utterance out.

A decoder is built once (from a tokenizer, its options and, for LM fusion, a language model
object) and then decodes many batches::

    class MyDecoder(Decoder):
        def decode(self, log_probs, lengths): ...   # -> list of Hypothesis

Registered decoders are found by name in :mod:`asr.inference.decoding`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

from torch import Tensor

from asr.errors import AsrError


class DecodeError(AsrError):
    """Decoding cannot start or finish: unknown decoder, bad options, nothing to decode."""


class Hypothesis(Protocol):
    """What a decoder returns per utterance (``asr.decode.greedy.GreedyHypothesis`` is one)."""

    text: str | None  # the transcript
    token_ids: tuple[int, ...]  # emitted token ids
    frames: tuple[int, ...] | None  # per token, the (first) output frame where it is emitted


class Decoder(ABC):
    """Turns a batch of CTC log-probabilities into hypotheses; one instance decodes many batches."""

    @abstractmethod
    def decode(self, log_probs: Tensor, lengths: Tensor) -> list[Hypothesis]:
        """Decode one batch.

        Args:
            log_probs: ``(batch, frames, vocab)`` CTC log-probabilities, any device.
            lengths: ``(batch,)`` valid frames per row.
        Returns:
            one hypothesis per row, in order.
        """
