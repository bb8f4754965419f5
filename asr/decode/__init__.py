"""Decoding algorithms over CTC log-probabilities: never audio, never the acoustic model, no files.

- ``base``: the :class:`Decoder` interface and :class:`Hypothesis` records;
- ``greedy``: best path (training validates with it); ``prefix`` + ``beam`` + ``lm_cache``:
  batched CTC prefix beam search shallow-fused with any :class:`asr.lm.base.LanguageModel`
  object; ``beam_decoder``: it as a decoder;
- ``kenlm_backend``: word n-gram fusion through pyctcdecode (the ``kenlm`` decoder; pyctcdecode
  reads the KenLM file it is given);
- ``spec``: the frozen :class:`DecodeSpec` and the options that build it.

Log-probabilities come from :mod:`asr.inference.forward`. Decoders are made from names, paths and a
model folder's recommended decoding in one factory above this package,
:mod:`asr.inference.decoding`.
"""

from asr.decode.greedy import GreedyHypothesis, greedy_decode

__all__ = ["GreedyHypothesis", "greedy_decode"]
