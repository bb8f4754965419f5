"""Decoders by name: a plain dict from name to a builder ``(spec, tokenizer) -> Decoder``.

Built in: ``greedy`` (best path), ``beam`` (prefix beam search, with an LSTM LM when
``spec.lm`` names one) and ``kenlm`` (pyctcdecode with a KenLM word n-gram). Files named by
the spec are read here, once; the decoders themselves receive objects.

Example::

    decoder = make_decoder(DecodeSpec("beam", lm="exp/lm"), tokenizer)
    hyps = decoder.decode(log_probs, lengths)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from asr.decode.base import DecodeError, Decoder
from asr.decode.beam import BeamSearchError
from asr.decode.beam_decoder import BeamDecoder
from asr.decode.greedy import GreedyDecoder
from asr.decode.kenlm_backend import KenLMDecoder, KenLMOptions
from asr.decode.spec import DecodeSpec

if TYPE_CHECKING:
    from asr.tokenizer import Tokenizer

Builder = Callable[[DecodeSpec, "Tokenizer"], Decoder]


def _greedy(spec: DecodeSpec, tokenizer: Tokenizer) -> Decoder:
    return GreedyDecoder(tokenizer)


def _beam(spec: DecodeSpec, tokenizer: Tokenizer) -> Decoder:
    lm = None
    if spec.lm is not None:
        if not Path(spec.lm).is_dir():
            raise BeamSearchError(
                f"{spec.lm}: not an LSTM LM folder nor a KenLM file (.arpa, .bin)"
            )
        from asr.lm.io import load_lm
        from asr.models.io import model_dir_kind
        from asr.onnx.export import ONNX_LM

        if model_dir_kind(spec.lm) == ONNX_LM:  # asr export --format onnx of an LSTM LM
            from asr.onnx.runtime import OnnxLSTMLM

            if spec.lm_int8:
                raise BeamSearchError(
                    f"{spec.lm}: lm_int8 applies to an LSTM LM folder, not an ONNX export "
                    "(quantise it with asr export --format onnx --quantize int8)"
                )

            lm = OnnxLSTMLM(spec.lm)
        else:
            lm, _ = load_lm(spec.lm, int8=spec.lm_int8)
    return BeamDecoder(tokenizer, spec.search, lm)


def _kenlm(spec: DecodeSpec, tokenizer: Tokenizer) -> Decoder:
    options = KenLMOptions(spec.unigrams, spec.hotwords, spec.hotword_weight)
    return KenLMDecoder(tokenizer, spec.lm, spec.search, options)


DECODERS: dict[str, Builder] = {"greedy": _greedy, "beam": _beam, "kenlm": _kenlm}


def register_decoder(name: str, builder: Builder) -> None:
    """Make ``builder`` available as ``DecodeSpec(decoder=name)``."""
    DECODERS[name] = builder


def decoder_names() -> list[str]:
    """Names of the registered decoders."""
    return sorted(DECODERS)


def make_decoder(spec: DecodeSpec, tokenizer: Tokenizer) -> Decoder:
    """The decoder ``spec`` asks for, over ``tokenizer``'s vocabulary.

    Raises:
        DecodeError: an unknown decoder name; LM errors (missing files, another vocabulary)
            as one-line :class:`asr.errors.AsrError` s naming the file.
    """
    if spec.decoder not in DECODERS:
        known = ", ".join(decoder_names())
        raise DecodeError(f"unknown decoder {spec.decoder!r} (known: {known})")
    return DECODERS[spec.decoder](spec, tokenizer)
