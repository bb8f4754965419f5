"""``asr tune-decoder``: search the LM weight and length bonus on a development set.

Examples::

    asr tune-decoder --model exp/model --lm exp/lm --manifest data/dev.jsonl --out exp/tune
    asr decode --decoder beam --lm exp/lm --decode-config exp/tune/decode.yaml ...

The acoustic model runs once; its outputs are cached in OUT/emissions.safetensors and reused
while the model and manifest are unchanged. Writes OUT/tune.md (WER table), OUT/tune.json and
OUT/decode.yaml (the beam search config with the best alpha and beta); existing ones are
replaced only with --overwrite (checked before the model runs), an input never.
"""

from __future__ import annotations

import argparse
import sys

from asr.cli._options import add_model_arguments


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tune-decoder`` subcommand."""
    p = subparsers.add_parser(
        "tune-decoder",
        help="tune LM weight and length bonus on a dev set",
        description=__doc__.split("\n\n", 1)[1].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(p, required=True)
    p.add_argument(
        "--lm",
        required=True,
        help="LSTM LM folder, KenLM .arpa/.bin file, or a name from `asr models`",
    )
    p.add_argument("--manifest", required=True, help="development manifest (JSONL)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--overwrite", action="store_true", help="replace existing tune.md, tune.json, decode.yaml"
    )
    p.add_argument("--decode-config", help="base beam search YAML (default: built-in defaults)")
    p.add_argument("--beam-size", type=int, help="override the config's beam size")
    p.add_argument(
        "--alphas", type=_floats, default=_floats("0,0.25,0.5,0.75,1.0,1.5"), help="LM weights"
    )
    p.add_argument("--betas", type=_floats, default=_floats("0,0.5,1,2"), help="length bonuses")
    p.add_argument("--method", choices=("grid", "coordinate"), default="grid", help="default grid")
    p.add_argument("--batch-seconds", type=float, default=300.0, help="acoustic model batches")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Tune and write the results; prints the best weights."""
    from asr.cli._options import load_for_decoding
    from asr.inference.tune import (
        compute_emissions,
        default_cache,
        result_files,
        tune_weights,
        write_results,
    )
    from asr.io.outputs import check_output_files

    inputs = [args.manifest, args.lm, *([args.decode_config] if args.decode_config else [])]
    check_output_files(result_files(args.out), args.overwrite, inputs=inputs)  # before the work
    options = {"lm": args.lm, "decode_config": args.decode_config, "beam_size": args.beam_size}
    model, spec, decoder = load_for_decoding(args, options, progress=sys.stderr.isatty())
    cache = default_cache(args.out)
    em = compute_emissions(model.network, model.path, args.manifest, cache, args.batch_seconds)
    rows = tune_weights(decoder, em, args.alphas, args.betas, args.method)  # type: ignore[arg-type]
    info = {"model": str(model.path), "lm": spec.lm, "manifest": args.manifest}
    info["method"] = args.method
    best = write_results(args.out, rows, decoder, info)
    print(
        f"{args.out}: best alpha={best['alpha']:g} beta={best['beta']:g} "
        f"WER {100 * best['wer']:.2f} % ({len(rows)} settings; table in tune.md)"
    )
    return 0
