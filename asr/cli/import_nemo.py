"""``asr import-nemo MODEL.nemo --out DIR``: convert a NeMo QuartzNet/Jasper CTC checkpoint.

Reads a ``.nemo`` archive (``EncDecCTCModel``, ``ConvASREncoder``, ``ConvASRDecoder`` with a
character vocabulary, ``AudioToMelSpectrogramPreprocessor``) and writes one of our model
directories (``model.safetensors`` + ``config.yaml`` + ``tokenizer.yaml``). The weights file is
read with ``torch.load(weights_only=True)``: nothing but tensors is ever unpickled.

OUT must be new or empty; ``--overwrite`` replaces an exported acoustic model folder there, and
nothing else (a folder holding other files is never replaced, whatever the flags).

Examples::

    asr import-nemo QuartzNet15x5Base-En.nemo --out exp/quartznet15x5
    asr import-nemo QuartzNet15x5Base-En.nemo --out exp/qn_lower --case keep
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``import-nemo`` subcommand."""
    p = subparsers.add_parser(
        "import-nemo",
        help="convert a NeMo QuartzNet/Jasper character CTC .nemo file into a model folder",
        description=__doc__.split("\n\n", 1)[1].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("nemo", help="the .nemo file")
    p.add_argument("--out", required=True, help="model folder to write (new or empty)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT when it is an exported acoustic model folder (nothing else)",
    )
    p.add_argument(
        "--case",
        choices=("upper", "keep"),
        default="upper",
        help="upper (default): upper-case NeMo's labels, so an English a-z model matches our "
        "A-Z text normalisation, tokenizers and language models; keep: NeMo's labels as is",
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "float16", "bfloat16"),
        default="float32",
        help="stored parameter dtype (default float32)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Import; prints a one-line summary of the model written."""
    from asr.models.nemo_import import import_nemo

    model, tokenizer = import_nemo(
        args.nemo, args.out, case=args.case, dtype=args.dtype, overwrite=args.overwrite
    )
    encoder = model.cfg.encoder
    print(
        f"{args.out}: {len(encoder.blocks)} blocks, {model.num_parameters() / 1e6:.2f} M "
        f"parameters, {model.frontend.num_features} features, subsampling "
        f"{encoder.subsampling}, {tokenizer.vocab_size} symbols (blank first)"
    )
    return 0
