"""Option groups shared by the commands that load a model and decode (not a subcommand).

``asr transcribe``, ``asr decode``, ``asr tune-decoder`` and ``asr plot utterance`` take the
same model options (:func:`add_model_arguments`) and decoding options
(:func:`add_decoding_arguments`), and turn them into objects the same way: the flags become
keywords of :func:`asr.inference.decoding.decoding_spec` (:func:`decoding_options`), and
:func:`load_for_decoding` checks the decoding, then loads the model once
(:func:`asr.api.load_model`) and builds its decoder. ``asr models`` shares ``--base-url``.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asr.api import Model
    from asr.decode.base import Decoder
    from asr.decode.spec import DecodeSpec


# Most --threads accepted: more only thrashes (100000 crashed torch).
MAX_THREADS = 4 * (os.cpu_count() or 64)
# Negative numbers in exponent form (--alpha -1e-3) are values, not options (argparse's own
# pattern knows only -1 and -1.5).
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value <= MAX_THREADS:
        raise argparse.ArgumentTypeError(
            f"must be from 0 (automatic) to {MAX_THREADS} (4 per CPU), got {value}"
        )
    return value


def _search_option(name: str, convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type`` for the search option ``name``, checked against its bounds
    (:func:`asr.decode.spec.search_option_problem`) when the command line is read."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            kind = "an integer" if convert is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        from asr.decode.spec import search_option_problem

        problem = search_option_problem(name, value)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return value

    return parse


def add_base_url_argument(p: argparse.ArgumentParser) -> None:
    """``--base-url``: where models and LMs named from `asr models` are downloaded from."""
    p.add_argument(
        "--base-url",
        metavar="URL",
        help="server holding the files of named models/LMs (a mirror, an air-gapped site), "
        "instead of their publishers' URLs (default $ASR_BASE_URL); used once, then the cache",
    )


def add_model_arguments(
    p: argparse.ArgumentParser, required: bool = False, backend: bool = True
) -> None:
    """``--model``, ``--device``, ``--threads``, ``--base-url`` and (with ``backend``)
    ``--backend``: which model, and what runs it."""
    p.add_argument(
        "--model",
        required=required,
        help="exported model folder, or a name from `asr models` (e.g. quartznet15x5: "
        "downloaded once)" + ("" if required else "; default: the bundled model"),
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default auto")
    if backend:
        p.add_argument(
            "--backend",
            choices=("torch", "onnxruntime"),
            default="torch",
            help="torch (default) or onnxruntime: --model is then an ONNX export folder "
            "(asr export --format onnx; a model folder is exported on the fly); CPU only, "
            "needs pip install 'asr[onnx]'",
        )
    p.add_argument(
        "--threads",
        type=_threads,
        default=0,
        help="CPU threads (default 0: automatic, one per physical core less the CPUs busy "
        "with other work by the 1-minute load average, at least 1; OMP_NUM_THREADS, when set, "
        "decides. Measured on 2 cores with a training job on one, 3 min of audio: 18-29 s with "
        "1 thread, the default's choice there, 122-205 s with 2, torch's own default; training "
        f"paused: 11-14 s with 2, 16-20 s with 1); at most {MAX_THREADS}",
    )
    add_base_url_argument(p)


def add_decoding_arguments(p: argparse.ArgumentParser, decoders: tuple[str, ...] | None) -> None:
    """``--decoder`` (one of ``decoders``; None: any registered name) and the beam search
    options (unset ones keep the --decode-config values)."""
    names = ", ".join(decoders) if decoders else "greedy, beam, kenlm or another registered decoder"
    p.add_argument(
        "--decoder",
        choices=decoders,
        help=f"{names} (default: the model folder's decode.yaml; else beam when --lm or "
        "--decode-config is given, else greedy)",
    )
    g = p.add_argument_group("beam search (--decoder beam or kenlm)")
    g.add_argument(
        "--lm",
        default="none",
        help="none (default), an LSTM LM folder, a KenLM .arpa/.bin file (decoder kenlm), or "
        "a language model name from `asr models` (e.g. librispeech-3gram)",
    )
    g.add_argument("--decode-config", help="beam search YAML (e.g. conf/decode/beam.yaml)")
    p._negative_number_matcher = _NEGATIVE_NUMBER  # --alpha -1e-3 is a value
    g.add_argument(
        "--beam-size", type=_search_option("beam_size", int), help="beams per utterance (1-1024)"
    )
    g.add_argument("--alpha", type=_search_option("alpha", float), help="LM weight (-100 to 100)")
    g.add_argument("--beta", type=_search_option("beta", float), help="length bonus (-100 to 100)")
    g.add_argument("--length-unit", choices=("tokens", "words"), help="what beta counts")
    g.add_argument(
        "--lm-int8", action="store_true", default=None, help="LSTM LM steps in int8 (CPU)"
    )
    g.add_argument("--unigrams", help="KenLM: unigram list file (one word per line)")
    g.add_argument("--hotwords", help="KenLM: comma-separated words or phrases to boost")
    g.add_argument("--hotword-weight", type=float, default=10.0, help="default 10")


def decoding_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`asr.inference.decoding.decoding_spec` keywords of
    :func:`add_decoding_arguments`' flags."""
    return {
        "decoder": args.decoder,
        "lm": None if args.lm == "none" else args.lm,
        "decode_config": args.decode_config,
        "lm_int8": args.lm_int8,
        "unigrams": args.unigrams,
        "hotwords": (args.hotwords or "").split(","),
        "hotword_weight": args.hotword_weight,
        "beam_size": args.beam_size,
        "alpha": args.alpha,
        "beta": args.beta,
        "length_unit": args.length_unit,
    }


def load_for_decoding(
    args: argparse.Namespace, options: dict[str, Any], progress: bool
) -> tuple[Model, DecodeSpec, Decoder]:
    """The model of :func:`add_model_arguments`' flags, the spec of ``options`` and its decoder.

    A named model or LM is downloaded first (once); the decoding options are checked before
    the model loads; the model is loaded once.
    """
    import torch

    from asr.api import load_model
    from asr.inference.decoding import decoding_spec
    from asr.inference.forward import default_threads
    from asr.pretrained import resolve_model_dir

    model_dir = resolve_model_dir(args.model, args.base_url, progress)
    spec = decoding_spec(model_dir, args.base_url, progress, **options)
    threads = args.threads or default_threads()  # 0: fewer when other work keeps CPUs busy
    torch.set_num_threads(threads)
    backend = getattr(args, "backend", "torch")
    model = load_model(model_dir, args.device, backend, threads)
    return model, spec, model.decoder(spec)
