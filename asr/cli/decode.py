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

from asr.cli._options import add_decoding_arguments, add_model_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``decode`` subcommand."""
    p = subparsers.add_parser(
        "decode",
        help="decode a manifest with a trained model",
        description=__doc__.split("\n\n", 1)[1].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--manifest", required=True, help="JSONL manifest to decode")
    p.add_argument("--out", required=True, help="prediction JSONL to write (new; see --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    add_model_arguments(p)
    add_decoding_arguments(p, decoders=None)
    p.add_argument(
        "--batch-seconds",
        type=float,
        default=300.0,
        help="padded audio seconds per batch (default 300)",
    )
    p.add_argument("--workers", type=int, default=0, help="audio reading processes (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Decode; 0 when every utterance decoded, 1 when some audio could not be read."""
    from asr.cli._options import decoding_options, load_for_decoding
    from asr.inference.manifest import decode_manifest, read_decode_manifest
    from asr.io.outputs import check_output_file

    check_output_file(args.out, args.overwrite, inputs=[args.manifest])  # before any work
    items = read_decode_manifest(args.manifest)
    model, _, decoder = load_for_decoding(args, decoding_options(args), not args.no_progress)
    summary = decode_manifest(
        model.network,
        model.tokenizer,
        decoder,
        items,
        args.out,
        batch_seconds=args.batch_seconds,
        num_workers=args.workers,
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
