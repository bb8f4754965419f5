"""Decoding setup: options and a model folder -> :class:`DecodeSpec` -> a decoder object.

The one place where decoders are made from names and paths, for the CLI and the Python API alike
(:mod:`asr.decode` holds the algorithms, which receive objects and open no file):

- :func:`decoding_spec`: decoding options (those of :func:`asr.decode.spec.build_spec`) for a
  model folder; without decoder options the folder's recommended decoding (its ``decode.yaml``
  and ``lm/``, :func:`asr.pretrained.bundled_decoding`); an LM given by registry name
  (``librispeech-3gram``) is fetched once. Checked before any model or LM is loaded.
- :func:`make_decoder`: the decoder of a spec over a tokenizer, by name from :data:`DECODERS`:
  ``greedy``, ``beam`` (an LSTM LM folder or its ONNX export is loaded here) and ``kenlm``
  (pyctcdecode with a KenLM file). :func:`register_decoder` adds a decoder.

:meth:`asr.api.Model.decoder` combines them for a loaded model (whisper's ``DecodingTask``, NeMo's
``change_decoding_strategy``).

Example::

    spec = decoding_spec("exp/model", lm="exp/lm", alpha=0.5)
    decoder = make_decoder(spec, tokenizer)
    hyps = decoder.decode(log_probs, lengths)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asr.decode.base import DecodeError, Decoder
from asr.decode.beam import BeamSearchError
from asr.decode.beam_decoder import BeamDecoder
from asr.decode.greedy import GreedyDecoder
from asr.decode.kenlm_backend import KenLMDecoder, KenLMOptions
from asr.decode.spec import DecodeSpec, DecodeSpecError, build_spec, decoding_options

if TYPE_CHECKING:
    from asr.lm.base import LanguageModel
    from asr.text.tokenizer import Tokenizer

Builder = Callable[[DecodeSpec, "Tokenizer"], Decoder]


def decoding_spec(
    model_dir: str | Path, base_url: str | None = None, progress: bool = True, **options: Any
) -> DecodeSpec:
    """The decoding spec of ``options`` for the model in ``model_dir``.

    Args:
        model_dir: the model folder (its ``decode.yaml`` and ``lm/`` are the default decoding).
        base_url, progress: where and how an LM named from ``asr models`` is downloaded
            (:func:`asr.pretrained.resolve_lm`).
        **options: decoding options (:func:`asr.decode.spec.build_spec`; None: unset).
    Raises:
        DecodeSpecError: an unknown option or a bad value (one line naming it).
    """
    from asr.pretrained import bundled_decoding, resolve_lm

    if "bundled" in options:
        known = ", ".join(decoding_options())
        raise DecodeSpecError(f"unknown decoding option 'bundled' (known: {known})")
    if options.get("lm") is not None:
        options["lm"] = resolve_lm(str(options["lm"]), base_url, progress)
    return build_spec(bundled=bundled_decoding(model_dir), **options)


def load_lstm_lm(path: str, int8: bool = False) -> LanguageModel:
    """The LSTM LM of the beam decoder: an exported LM folder, or its ONNX export.

    Raises:
        BeamSearchError: not a folder (KenLM files belong to the kenlm decoder), or ``int8``
            asked for an ONNX export; LM loading errors name the folder.
    """
    if not Path(path).is_dir():
        raise BeamSearchError(f"{path}: not an LSTM LM folder nor a KenLM file (.arpa, .bin)")
    from asr.io.folders import model_dir_kind
    from asr.lm.io import load_lm
    from asr.onnx.export import ONNX_LM

    if model_dir_kind(path) != ONNX_LM:
        return load_lm(path, int8=int8)[0]
    if int8:
        raise BeamSearchError(
            f"{path}: lm_int8 applies to an LSTM LM folder, not an ONNX export "
            "(quantise it with asr export --format onnx --quantize int8)"
        )
    from asr.onnx.runtime import OnnxLSTMLM

    return OnnxLSTMLM(path)


def _greedy(spec: DecodeSpec, tokenizer: Tokenizer) -> Decoder:
    return GreedyDecoder(tokenizer)


def _beam(spec: DecodeSpec, tokenizer: Tokenizer) -> Decoder:
    lm = load_lstm_lm(spec.lm, spec.lm_int8) if spec.lm is not None else None
    return BeamDecoder(tokenizer, spec.search, lm)


def _kenlm(spec: DecodeSpec, tokenizer: Tokenizer) -> Decoder:
    options = KenLMOptions(spec.unigrams, spec.hotwords, spec.hotword_weight)
    return KenLMDecoder(tokenizer, spec.lm, spec.search, options)


DECODERS: dict[str, Builder] = {"greedy": _greedy, "beam": _beam, "kenlm": _kenlm}


def register_decoder(name: str, builder: Builder) -> None:
    """Make ``builder`` (``(spec, tokenizer) -> Decoder``) available as
    ``DecodeSpec(decoder=name)``."""
    DECODERS[name] = builder


def decoder_names() -> list[str]:
    """Names of the registered decoders."""
    return sorted(DECODERS)


def make_decoder(spec: DecodeSpec, tokenizer: Tokenizer) -> Decoder:
    """The decoder ``spec`` asks for, over ``tokenizer``'s vocabulary (LM files read here, once).

    Raises:
        DecodeError: an unknown decoder name; LM errors (missing files, another vocabulary)
            as one-line :class:`asr.errors.AsrError` s naming the file.
    """
    if spec.decoder not in DECODERS:
        known = ", ".join(decoder_names())
        raise DecodeError(f"unknown decoder {spec.decoder!r} (known: {known})")
    return DECODERS[spec.decoder](spec, tokenizer)
