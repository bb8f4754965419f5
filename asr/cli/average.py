"""``asr average``: the weight average of exported acoustic models (a "model soup").

Examples::

    asr average exp/am_avg/model exp/am_ft1/model exp/am_ft2/model exp/am_ft3/model
    asr average soup_fp16 a/model b/model --dtype float16

Floating weights are averaged in float64 (integer buffers come from the last folder, the
tokenizer from the first). Every folder must be an exported acoustic model with the same
architecture (config.yaml's model and vocab_size) and tokenizer vocabulary, as fine-tunes of one
model are; the first folder that differs is named with what differs. Checkpoints of one run are
averaged by `asr train` itself (average_best in its config).

OUT must be new or empty; --overwrite replaces an exported acoustic-model folder. It is never
one of the inputs, and is checked before any weights are read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.io.folders import WEIGHT_DTYPES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``average`` subcommand."""
    p = subparsers.add_parser(
        "average",
        help="average the weights of exported acoustic models (a model soup)",
        description=__doc__.split("\n\n", 1)[1].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("out", metavar="OUT", help="model folder to write (new or empty)")
    p.add_argument(
        "model_dirs", nargs="+", metavar="MODEL_DIR", help="two or more exported model folders"
    )
    p.add_argument(
        "--dtype",
        choices=WEIGHT_DTYPES,
        default="float32",
        help="stored weight dtype (default float32)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT when it is an exported acoustic-model folder (nothing else)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Average; errors are AsrError subclasses reported by the top-level CLI in one line."""
    from asr.models.average import average_model_dirs

    out = average_model_dirs(args.model_dirs, args.out, args.dtype, overwrite=args.overwrite)
    size_mb = sum(p.stat().st_size for p in Path(out).iterdir() if p.is_file()) / 1e6
    n = len(args.model_dirs)
    print(f"wrote acoustic model {out} (average of {n}, {args.dtype}, {size_mb:.1f} MB)")
    return 0
