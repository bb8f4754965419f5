"""The decoding spec: which decoder, its search options and its language model, frozen once.

``asr decode``, ``asr transcribe`` and ``asr.transcribe(**decoding)`` turn their options into one
:class:`DecodeSpec` with :func:`build_spec` (through :func:`asr.inference.decoding.decoding_spec`;
bad values are a one-line :class:`DecodeSpecError` naming the field);
:func:`asr.inference.decoding.make_decoder` then builds the decoder from it.
A decode config YAML (``conf/decode/beam.yaml``, the ``decode.yaml`` of ``asr tune-decoder`` and
of a model folder) holds :class:`asr.decode.beam.BeamSearchConfig` fields plus ``lm_int8``, an
option of loading the LM.

Example::

    search, lm_int8 = load_search_config("conf/decode/beam.yaml", alpha=0.8)
    spec = DecodeSpec("beam", search, lm="exp/lm", lm_int8=bool(lm_int8))
    spec = build_spec(lm="exp/lm", decode_config="conf/decode/beam.yaml", alpha=0.8)  # the same
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asr import config as config_io
from asr.decode.base import DecodeError
from asr.decode.beam import BeamSearchConfig
from asr.decode.kenlm_backend import is_kenlm_path


class DecodeSpecError(DecodeError):
    """A decoding spec with a bad value; the message names the field."""


# Bounds of the search options given as flags or keywords, checked before any work: a beam
# wider than this only allocates (B x beams x vocabulary tensors), a weight beyond this drowns
# the acoustic scores (an empty transcript).
MAX_BEAM_SIZE = 1024
MAX_TOKEN_TOP_K = 4096
MAX_LM_CACHE_SIZE = 10_000_000
MAX_WEIGHT = 100.0
_INT_BOUNDS = {
    "beam_size": (1, MAX_BEAM_SIZE),
    "nbest": (1, MAX_BEAM_SIZE),
    "token_top_k": (1, MAX_TOKEN_TOP_K),
    "lm_cache_size": (0, MAX_LM_CACHE_SIZE),
}
_WEIGHTS = ("alpha", "beta")  # |x| <= MAX_WEIGHT
_FINITE = ("token_min_logp", "beam_threshold", "blank_skip_threshold")


def search_option_problem(name: str, value: Any) -> str | None:
    """Why ``value`` is bad for the search option ``name`` (a BeamSearchConfig field), or None.

    Integers must lie in their bounds (``beam_size`` 1 to :data:`MAX_BEAM_SIZE`), ``alpha`` and
    ``beta`` be finite with magnitude at most :data:`MAX_WEIGHT`, thresholds finite.
    """
    if name in _INT_BOUNDS:
        low, high = _INT_BOUNDS[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return f"must be an integer from {low} to {high}, got {value!r}"
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if name in _WEIGHTS + _FINITE and not (number and math.isfinite(value)):
        return f"must be a finite number, got {value!r}"
    if name in _WEIGHTS and abs(value) > MAX_WEIGHT:
        return f"must lie between {-MAX_WEIGHT:g} and {MAX_WEIGHT:g}, got {value!r}"
    return None


@dataclasses.dataclass(frozen=True)
class DecodeSpec:
    """Everything that decides how log-probabilities become text."""

    decoder: str = "greedy"  # registered decoder: greedy, beam (LSTM LM or none) or kenlm
    search: BeamSearchConfig = dataclasses.field(default_factory=BeamSearchConfig)  # beam, kenlm
    lm: str | None = None  # beam: an LSTM LM folder; kenlm: a KenLM .arpa/.bin file; None: no LM
    lm_int8: bool = False  # beam: load the LSTM LM with int8 recurrent products (CPU)
    unigrams: str | None = None  # kenlm: unigram list file (None: the ARPA's words)
    hotwords: tuple[str, ...] = ()  # kenlm: words or phrases to boost
    hotword_weight: float = 10.0  # kenlm: their boost

    def __post_init__(self) -> None:
        for name, reason in _problems(self):
            raise DecodeSpecError(f"decoding option {name}: {reason}")


def _problems(spec: DecodeSpec) -> list[tuple[str, str]]:
    """(field, reason) of every bad value of ``spec`` (in field order)."""
    out = []
    if not isinstance(spec.decoder, str) or not spec.decoder:
        out.append(("decoder", f"must be a decoder name, got {spec.decoder!r}"))
    if not isinstance(spec.search, BeamSearchConfig):
        out.append(("search", f"must be a BeamSearchConfig, got {type(spec.search).__name__}"))
    if spec.lm is not None and (not isinstance(spec.lm, str) or not spec.lm):
        out.append(("lm", f"must be a path or None, got {spec.lm!r}"))
    elif spec.lm is not None and spec.decoder == "greedy":
        out.append(("lm", "greedy decoding uses no language model (use the beam decoder)"))
    elif spec.lm is not None and spec.decoder == "beam" and is_kenlm_path(spec.lm):
        out.append(("lm", f"{spec.lm} is a KenLM file: use the kenlm decoder"))
    elif spec.lm is not None and spec.decoder == "kenlm" and not is_kenlm_path(spec.lm):
        out.append(("lm", f"{spec.lm} is not a KenLM file (.arpa, .bin): use the beam decoder"))
    if spec.lm_int8 and (spec.decoder != "beam" or spec.lm is None):
        out.append(("lm_int8", "applies to an LSTM LM of the beam decoder only"))
    kenlm_only = {"unigrams": spec.unigrams, "hotwords": spec.hotwords}
    for name, value in kenlm_only.items():
        if value and spec.decoder != "kenlm":
            out.append((name, f"is an option of the kenlm decoder, not {spec.decoder!r}"))
    if not isinstance(spec.hotwords, tuple) or not all(isinstance(w, str) for w in spec.hotwords):
        out.append(("hotwords", f"must be a tuple of strings, got {spec.hotwords!r}"))
    weight = spec.hotword_weight
    if (
        isinstance(weight, bool)
        or not isinstance(weight, (int, float))
        or not math.isfinite(weight)
    ):
        out.append(("hotword_weight", f"must be a finite number, got {weight!r}"))
    return out


def load_search_config(
    path: str | Path | None = None, **fields: Any
) -> tuple[BeamSearchConfig, bool | None]:
    """Search options from a decode config YAML (or the defaults) with ``fields`` replaced.

    Args:
        path: decode config YAML, or None for the defaults.
        **fields: :class:`BeamSearchConfig` fields overriding the file; None values are
            ignored (so unset CLI flags keep the file's values).
    Returns:
        (the search options, the file's ``lm_int8`` or None when it has none).
    Raises:
        asr.config.ConfigError: unknown keys or bad values, naming the file and the key.
    """
    data = config_io.read_yaml(path) if path is not None else {}
    where = f"{path}:" if path is not None else "beam search options"
    if not isinstance(data, dict):
        raise config_io.ConfigError(f"{where} expected a mapping, got {data!r}")
    lm_int8 = data.pop("lm_int8", None)
    if lm_int8 is not None and not isinstance(lm_int8, bool):
        raise config_io.ConfigError(f"{where} lm_int8: expected true or false, got {lm_int8!r}")
    data.update({k: v for k, v in fields.items() if v is not None})
    return config_io.from_dict(BeamSearchConfig, data, where=where), lm_int8


def _checked_search(search: dict[str, Any]) -> dict[str, Any]:
    """The set (not None) search options, each checked: a bad value is named here, not blamed
    on the decode config file it overrides."""
    search = {k: v for k, v in search.items() if v is not None}
    for name, value in search.items():
        problem = search_option_problem(name, value)
        if problem is not None:
            raise DecodeSpecError(f"decoding option {name}: {problem}")
    return search


# The options of build_spec besides the BeamSearchConfig fields.
SPEC_OPTIONS = (
    "decoder",
    "lm",
    "decode_config",
    "lm_int8",
    "unigrams",
    "hotwords",
    "hotword_weight",
)


def decoding_options() -> list[str]:
    """Every option :func:`build_spec` takes (its own and the BeamSearchConfig fields)."""
    return [*SPEC_OPTIONS, *(f.name for f in dataclasses.fields(BeamSearchConfig))]


def build_spec(
    decoder: str | None = None,
    lm: str | None = None,
    decode_config: str | Path | None = None,
    bundled: tuple[Path | None, Path | None] = (None, None),
    lm_int8: bool | None = None,
    unigrams: str | None = None,
    hotwords: Sequence[str] = (),
    hotword_weight: float = 10.0,
    **search: Any,
) -> DecodeSpec:
    """The decoding spec of a set of options (the CLI's flags, ``asr.transcribe``'s keywords).

    Args:
        decoder: greedy, beam or kenlm; None: beam when an LM, a decode config or a search
            option is given, else greedy. ``beam`` with a KenLM file (or KenLM options) is kenlm.
        lm: an LSTM LM folder or a KenLM file (None: no LM).
        decode_config: a decode config YAML (:func:`load_search_config`).
        bundled: a model folder's (decode config, LSTM LM), used when none of decoder, lm,
            decode_config is given (:func:`asr.pretrained.bundled_decoding`).
        lm_int8: LSTM LM in int8 (None: the decode config's value, else False).
        unigrams, hotwords, hotword_weight: KenLM options (:class:`DecodeSpec`).
        **search: :class:`BeamSearchConfig` fields overriding the decode config (None: unset).
    Raises:
        DecodeSpecError: an unknown option (the message lists the known ones), LM options with
            the greedy decoder, or a bad value (naming the field).
    """
    unknown = sorted(set(search) - set(decoding_options()))
    if unknown:
        raise DecodeSpecError(
            f"unknown decoding option {unknown[0]!r} (known: {', '.join(decoding_options())})"
        )
    search = _checked_search(search)
    config = decode_config
    if decoder is None and lm is None and not config and bundled[0] is not None:
        config, lm = str(bundled[0]), (str(bundled[1]) if bundled[1] is not None else None)
    if decoder is None:
        decoder = "beam" if lm is not None or config or search else "greedy"
    words = tuple(w.strip() for w in hotwords if w.strip())
    kenlm_options = bool(unigrams or words)
    if decoder == "greedy":
        flags = {"lm": lm is not None, "decode_config": config, "lm_int8": lm_int8}
        flags.update(unigrams=unigrams, hotwords=words)
        given = [name for name, on in flags.items() if on]
        if given or search:
            names = ", ".join(given + sorted(search))
            raise DecodeSpecError(
                f"{names}: beam search options; they need the beam decoder "
                "(--decoder beam, or decoder='beam' in Python), not greedy"
            )
        return DecodeSpec("greedy")
    if decoder == "beam" and (is_kenlm_path(lm) if lm is not None else kenlm_options):
        decoder = "kenlm"
    options, file_int8 = load_search_config(config, **search)
    int8 = lm_int8 if lm_int8 is not None else bool(file_int8)
    return DecodeSpec(
        decoder, options, lm, int8 and decoder == "beam" and lm is not None, unigrams, words,
        hotword_weight,
    )  # fmt: skip
