"""``asr decode``: decode a manifest with an exported model into a prediction JSONL.

Examples::

    asr decode --model exp/model --manifest data/test.jsonl --out exp/decode/hyp.jsonl
    asr score data/test.jsonl exp/decode/hyp.jsonl

Without --model the bundled default model is used. As in ``asr transcribe``, a model folder
holding decode.yaml (and lm/) is decoded with those settings unless decoder options are given
(--decoder greedy: no LM).

The output has the manifest's ``audio_filepath``, ``duration``, ``text`` (the reference) and
``utt_id`` plus ``pred_text``, ``tokens`` and ``token_times_s``, in manifest order. An utterance
whose audio cannot be read is reported and written with an empty ``pred_text`` and an ``error``
field; the others are still decoded and the exit status is 1. An existing --out file is
replaced only with --overwrite (checked before the model loads), and the manifest never.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asr.decode.spec import DecodeSpec


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``decode`` subcommand."""
    p = subparsers.add_parser(
        "decode",
        help="decode a manifest with a trained model",
        description=__doc__.split("\n\n", 1)[1].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model",
        help="exported model folder, or a name from `asr models` (default: the bundled model)",
    )
    p.add_argument("--manifest", required=True, help="JSONL manifest to decode")
    p.add_argument("--out", required=True, help="prediction JSONL to write (new; see --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument(
        "--decoder",
        help="greedy, beam, kenlm or another registered decoder (default: the model folder's "
        "decode.yaml; else beam when --lm or --decode-config is given, else greedy)",
    )
    add_beam_arguments(p)
    p.add_argument(
        "--batch-seconds",
        type=float,
        default=300.0,
        help="padded audio seconds per batch (default 300)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default auto")
    add_backend_argument(p)
    p.add_argument("--workers", type=int, default=0, help="audio reading processes (default 0)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_base_url_argument(p)
    p.set_defaults(func=run)


def add_base_url_argument(p: argparse.ArgumentParser) -> None:
    """``--base-url``: where models and LMs named from `asr models` are downloaded from."""
    p.add_argument(
        "--base-url",
        metavar="URL",
        help="server holding the files of named models/LMs (a mirror, an air-gapped site), "
        "instead of their publishers' URLs (default $ASR_BASE_URL); used once, then the cache",
    )


def resolve_names(args: argparse.Namespace, progress: bool) -> None:
    """Replace a registry name in ``args.model`` / ``args.lm`` by its cached path (downloaded
    and converted on first use; :func:`asr.pretrained.resolve_model_dir`)."""
    from asr.pretrained import resolve_lm, resolve_model_dir

    args.model = resolve_model_dir(args.model, args.base_url, progress)
    args.lm = resolve_lm(args.lm, args.base_url, progress)


def add_backend_argument(p: argparse.ArgumentParser) -> None:
    """``--backend``: what runs the acoustic model's forward (decoders are the same)."""
    p.add_argument(
        "--backend",
        choices=("torch", "onnxruntime"),
        default="torch",
        help="torch (default) or onnxruntime: --model is then an ONNX export folder "
        "(asr export --format onnx; a model folder is exported on the fly); CPU only, "
        "needs pip install 'asr[onnx]'",
    )


def add_beam_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``--decoder beam`` / ``kenlm`` (unset ones keep the --decode-config values)."""
    g = p.add_argument_group("beam search (--decoder beam or kenlm)")
    g.add_argument(
        "--lm",
        default="none",
        help="none (default), an LSTM LM folder, a KenLM .arpa/.bin file (decoder kenlm), or "
        "a language model name from `asr models` (e.g. librispeech-3gram)",
    )
    g.add_argument("--decode-config", help="beam search YAML (e.g. conf/decode/beam.yaml)")
    g.add_argument("--beam-size", type=int, help="beams per utterance")
    g.add_argument("--alpha", type=float, help="LM weight")
    g.add_argument("--beta", type=float, help="length bonus")
    g.add_argument("--length-unit", choices=("tokens", "words"), help="what beta counts")
    g.add_argument(
        "--lm-int8", action="store_true", default=None, help="LSTM LM steps in int8 (CPU)"
    )
    g.add_argument("--unigrams", help="KenLM: unigram list file (one word per line)")
    g.add_argument("--hotwords", help="KenLM: comma-separated words or phrases to boost")
    g.add_argument("--hotword-weight", type=float, default=10.0, help="default 10")


def decode_spec(
    args: argparse.Namespace, bundled: tuple[Path | None, Path | None] = (None, None)
) -> DecodeSpec:
    """The frozen decoding spec of the flags of :func:`add_beam_arguments` and ``--decoder``
    (:func:`asr.decode.spec.build_spec`; ``bundled``: a model folder's recommended decoding,
    :func:`asr.pretrained.bundled_decoding`, used when no decoder option is given)."""
    from asr.decode.spec import build_spec

    hotwords = (args.hotwords or "").split(",")
    return build_spec(
        args.decoder, None if args.lm == "none" else args.lm, args.decode_config, bundled,
        args.lm_int8, args.unigrams, hotwords, args.hotword_weight, beam_size=args.beam_size,
        alpha=args.alpha, beta=args.beta, length_unit=args.length_unit,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Decode; 0 when every utterance decoded, 1 when some audio could not be read."""
    import torch

    from asr.decode_manifest import decode_manifest
    from asr.outputs import check_output_file
    from asr.pretrained import bundled_decoding

    check_output_file(args.out, args.overwrite, inputs=[args.manifest])  # before any work
    resolve_names(args, progress=not args.no_progress)  # None: the bundled model
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    summary = decode_manifest(
        args.model,
        args.manifest,
        args.out,
        decode_spec(args, bundled_decoding(args.model)),
        batch_seconds=args.batch_seconds,
        device=args.device,
        num_workers=args.workers,
        backend=args.backend,
        threads=args.threads,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    print(
        f"{summary.out}: {summary.num_utterances} utterances, "
        f"{summary.audio_seconds / 3600:.3f} h in {summary.wall_seconds:.1f} s "
        f"(RTF {summary.real_time_factor:.4f})"
    )
    if summary.errors:
        print(f"error: {len(summary.errors)} utterance(s) could not be decoded", file=sys.stderr)
        return 1
    return 0
