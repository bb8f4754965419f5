"""``asr export``: rewrite an exported acoustic model or LSTM LM folder, e.g. in float16.

Examples::

    asr export exp/synth/am/model small_model --dtype float16   # acoustic model, half the size
    asr export exp/synth/lm/lm small_lm --dtype float16         # LSTM LM

The kind of folder is found from its files (``config.yaml``: acoustic model, ``lm.yaml``: LSTM
LM). Weights are loaded without unpickling and written atomically; the loaders compute in
float32 whatever the stored dtype.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DTYPES = ("float32", "float16", "bfloat16")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="rewrite a model or LM folder (e.g. float16 weights)",
        description=__doc__.split("\n\n", 1)[1].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", help="exported acoustic model or LSTM LM folder")
    p.add_argument("out", help="folder to write (replaced atomically when it exists)")
    p.add_argument("--dtype", choices=DTYPES, default="float16", help="default float16")
    p.set_defaults(func=run)


def export_folder(src: str | Path, out: str | Path, dtype: str) -> str:
    """Rewrite the model or LM folder ``src`` into ``out`` with ``dtype`` weights; returns the
    kind written ("acoustic model" or "LSTM LM")."""
    from asr.lm.io import is_lstm_lm_dir, load_lm, save_lm
    from asr.models.io import ModelFileError, export_model, load_model

    src = Path(src)
    if Path(out).resolve() == src.resolve():
        raise ModelFileError(f"{out}: the output folder must differ from the source")
    if is_lstm_lm_dir(src):
        lm, tokenizer = load_lm(src)
        save_lm(lm, tokenizer, out, dtype=dtype)  # type: ignore[arg-type]
        return "LSTM LM"
    model, tokenizer = load_model(src)
    export_model(model, tokenizer, out, dtype=dtype)  # type: ignore[arg-type]
    return "acoustic model"


def run(args: argparse.Namespace) -> int:
    """Export; errors are AsrError subclasses reported by the top-level CLI in one line."""
    kind = export_folder(args.src, args.out, args.dtype)
    size_mb = sum(p.stat().st_size for p in Path(args.out).iterdir() if p.is_file()) / 1e6
    print(f"wrote {kind} {args.out} ({args.dtype}, {size_mb:.1f} MB)")
    return 0
