"""Decoding algorithms over CTC log-probabilities (never audio, never the acoustic model).

- ``base``: the :class:`Decoder` interface and :class:`Hypothesis` records;
- ``greedy``: best path; ``prefix`` + ``beam`` + ``lm_cache``: batched CTC prefix beam search
  shallow-fused with any :class:`asr.lm.base.LanguageModel`; ``beam_decoder``: it as a decoder;
- ``kenlm_backend``: word n-gram fusion through pyctcdecode (the ``kenlm`` decoder);
- ``spec``: the frozen :class:`DecodeSpec`; ``registry``: decoders by name, built from a spec.

Log-probabilities come from :mod:`asr.inference`.
"""

from asr.decode.greedy import GreedyHypothesis, greedy_decode

__all__ = ["GreedyHypothesis", "greedy_decode"]
