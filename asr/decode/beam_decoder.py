"""The ``beam`` decoder: CTC prefix beam search, fused with any language model object.

The LM is any :class:`asr.lm.base.LanguageModel` (or None: acoustic scores only); how it was
loaded (float or int8 steps, which device) is the caller's business (:mod:`asr.inference.decoding`
builds one from a :class:`asr.decode.spec.DecodeSpec`). KenLM word n-grams are the separate
``kenlm`` decoder (:mod:`asr.decode.kenlm_backend`).

Example::

    dec = BeamDecoder(tokenizer, BeamSearchConfig(beam_size=16, alpha=0.5), lm)
    hyps = dec.decode(log_probs, lengths)
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from asr.decode.base import Decoder
from asr.decode.beam import BeamHypothesis, BeamSearchConfig, beam_search

if TYPE_CHECKING:
    from asr.lm.base import LanguageModel
    from asr.text.tokenizer import Tokenizer


def _empty() -> BeamHypothesis:
    return BeamHypothesis((), (), "", float("-inf"), float("-inf"), 0.0, 0.0)


class BeamDecoder(Decoder):
    """Prefix beam search, optionally shallow-fused with a language model.

    Args:
        tokenizer: the acoustic model's tokenizer.
        config: search options (default :class:`BeamSearchConfig`).
        lm: a language model over the tokenizer's vocabulary (None: no LM). Checked here.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        config: BeamSearchConfig | None = None,
        lm: LanguageModel | None = None,
    ) -> None:
        if lm is not None:
            lm.check_compatible(tokenizer)
        self.tokenizer = tokenizer
        self.cfg = config or BeamSearchConfig()
        self.lm = lm

    def decode_nbest(self, log_probs: Tensor, lengths: Tensor) -> list[list[BeamHypothesis]]:
        """Per utterance its ``cfg.nbest`` best hypotheses.

        Args:
            log_probs: ``(batch, frames, vocab)``; lengths: ``(batch,)``.
        """
        if isinstance(self.lm, torch.nn.Module):
            self.lm.to(log_probs.device)
        return beam_search(log_probs, lengths, self.cfg, self.lm, self.tokenizer)

    def decode(self, log_probs: Tensor, lengths: Tensor) -> list[BeamHypothesis]:
        """The best hypothesis of each utterance."""
        return [hyps[0] if hyps else _empty() for hyps in self.decode_nbest(log_probs, lengths)]

    def with_weights(self, alpha: float, beta: float) -> BeamDecoder:
        """A decoder sharing this one's LM with LM weight ``alpha`` and length bonus ``beta``."""
        cfg = dataclasses.replace(self.cfg, alpha=alpha, beta=beta)
        return BeamDecoder(self.tokenizer, cfg, self.lm)
