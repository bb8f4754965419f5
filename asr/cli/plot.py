"""``asr plot``: pictures as PNG.

Examples::

    asr plot curves exp/run1 --out curves.png                # loss and WER against the step
    asr plot utterance --model exp/model utt.flac --out utt.png
        # features, CTC posteriors and the recognised tokens under their frames

The utterance's tokens and title text come from the decoding ``asr transcribe`` uses with the
same options (without decoder options: the model folder's decode.yaml and LM, else greedy); the
title names it (``greedy``, ``beam 16 + LM``).

An existing ``--out`` is replaced only with ``--overwrite``, and an input never.
matplotlib is needed (``pip install 'asr[train]'``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.cli._options import add_decoding_arguments, add_model_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``plot`` subcommand with its ``curves`` and ``utterance`` pictures."""
    p = subparsers.add_parser(
        "plot",
        help="draw training curves or one utterance's posteriors as PNG",
        description=__doc__.split("\n\n", 1)[1].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = p.add_subparsers(dest="picture", metavar="PICTURE", required=True)
    curves = kinds.add_parser("curves", help="training curves of a run folder (log.jsonl)")
    curves.add_argument("exp", help="run folder written by asr train")
    curves.add_argument("--out", required=True, help="PNG file to write (new; see --overwrite)")
    curves.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    curves.set_defaults(func=run_curves)
    utt = kinds.add_parser("utterance", help="features, CTC posteriors and tokens of one file")
    utt.add_argument("audio", help="audio file")
    utt.add_argument("--out", required=True, help="PNG file to write (new; see --overwrite)")
    utt.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    utt.add_argument("--offset", type=float, default=0.0, help="start, seconds (default 0)")
    utt.add_argument("--duration", type=float, help="length, seconds (default: to the end)")
    add_model_arguments(utt, backend=False)  # the front-end's features are drawn: torch
    add_decoding_arguments(utt, decoders=("greedy", "beam"))
    utt.set_defaults(func=run_utterance)


def run_curves(args: argparse.Namespace) -> int:
    """Draw the training curves."""
    from asr.inference.plot import plot_curves
    from asr.io.outputs import check_output_file

    check_output_file(args.out, args.overwrite, inputs=[Path(args.exp) / "log.jsonl"])
    print(plot_curves(args.exp, args.out))
    return 0


def run_utterance(args: argparse.Namespace) -> int:
    """Draw one utterance."""
    from asr.cli._options import decoding_options, load_for_decoding
    from asr.inference.plot import decoding_label, plot_utterance
    from asr.io.outputs import check_output_file

    check_output_file(args.out, args.overwrite, inputs=[args.audio])
    model, spec, decoder = load_for_decoding(args, decoding_options(args), progress=True)
    segment = (args.offset, args.duration)
    label = decoding_label(spec)
    net, tokenizer = model.network, model.tokenizer
    print(plot_utterance(net, tokenizer, args.audio, args.out, *segment, decoder, label))
    return 0
