"""``asr export``: rewrite an exported acoustic model or LSTM LM folder, e.g. in float16, or
export it to ONNX.

Examples::

    asr export exp/synth/am/model small_model --dtype float16   # acoustic model, half the size
    asr export exp/synth/lm/lm small_lm --dtype float16         # LSTM LM
    asr export exp/model exp/model_onnx --format onnx           # model.onnx + config.json
    asr export exp/lm exp/lm_onnx --format onnx --quantize int8 # one LM step, int8 weights

--format onnx writes model.onnx (front-end inside the graph; the LM as one decoding step),
config.json describing its inputs and outputs, and the tokenizer (needs the onnx extra:
pip install 'asr[onnx]'). `asr transcribe --backend onnxruntime --model OUT` runs it.

The kind of folder is found from its files (``config.yaml``: acoustic model, ``lm.yaml``: LSTM
LM). Weights are loaded without unpickling and written atomically; the loaders compute in
float32 whatever the stored dtype. A model folder's recommended decoding (decode.yaml and its
lm/ LSTM LM, as the bundled model has) is carried over, so OUT transcribes as SRC does: the LM
in --dtype, or float32 for --format onnx.

OUT must be new or empty; ``--overwrite`` replaces an exported folder of the same kind. A folder
holding anything else (an experiment's checkpoints and logs, your files, the source itself) is
never replaced, whatever the flags.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.io.folders import WEIGHT_DTYPES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="rewrite a model or LM folder (e.g. float16 weights), or export it to ONNX",
        description=__doc__.split("\n\n", 1)[1].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", help="exported acoustic model or LSTM LM folder")
    p.add_argument("out", help="folder to write (new or empty; see --overwrite)")
    p.add_argument(
        "--format",
        choices=("safetensors", "onnx"),
        default="safetensors",
        help="safetensors (default: a model folder with --dtype weights) or onnx",
    )
    p.add_argument(
        "--dtype", choices=WEIGHT_DTYPES, help="safetensors weight dtype (default float16)"
    )
    p.add_argument(
        "--quantize",
        choices=("none", "int8"),
        help="onnx: dynamic int8 quantisation of the weights (default none)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT when it is an exported folder of the same kind (nothing else)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export; errors are AsrError subclasses reported by the top-level CLI in one line."""
    from asr.onnx import OnnxError

    if args.format == "onnx":
        if args.dtype is not None:
            raise OnnxError("--dtype applies to --format safetensors (onnx: see --quantize)")
        from asr.onnx.export import export_onnx

        kind = export_onnx(args.src, args.out, args.quantize or "none", args.overwrite)
        what = "int8" if args.quantize == "int8" else "float32"
    else:
        if args.quantize is not None:
            raise OnnxError("--quantize applies to --format onnx")
        what = args.dtype or "float16"
        from asr.models.io import export_folder

        kind = export_folder(args.src, args.out, what, overwrite=args.overwrite)
    size_mb = sum(p.stat().st_size for p in Path(args.out).iterdir() if p.is_file()) / 1e6
    print(f"wrote {kind} {args.out} ({what}, {size_mb:.1f} MB)")
    return 0
