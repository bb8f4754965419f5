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


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tune-decoder`` subcommand."""
    from asr.cli.decode import add_base_url_argument

    p = subparsers.add_parser(
        "tune-decoder",
        help="tune LM weight and length bonus on a dev set",
        description=__doc__.split("\n\n", 1)[1].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model", required=True, help="exported model folder, or a name from `asr models`"
    )
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
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default auto")
    p.add_argument("--batch-seconds", type=float, default=300.0, help="acoustic model batches")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    add_base_url_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Tune and write the results; prints the best weights."""
    import torch

    from asr.cli.decode import resolve_names
    from asr.decode.kenlm_backend import is_kenlm_path
    from asr.decode.registry import make_decoder
    from asr.decode.spec import DecodeSpec, load_search_config
    from asr.models.io import load_model
    from asr.outputs import check_output_files
    from asr.tune import compute_emissions, default_cache, result_files, tune_weights, write_results

    inputs = [args.manifest, args.lm, *([args.decode_config] if args.decode_config else [])]
    check_output_files(result_files(args.out), args.overwrite, inputs=inputs)  # before the work
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    resolve_names(args, progress=sys.stderr.isatty())
    args.model, args.lm = str(args.model), str(args.lm)
    search, lm_int8 = load_search_config(args.decode_config, beam_size=args.beam_size)
    kind = "kenlm" if is_kenlm_path(args.lm) else "beam"
    spec = DecodeSpec(kind, search, args.lm, bool(lm_int8) and kind == "beam")
    em = compute_emissions(
        args.model, args.manifest, default_cache(args.out), args.device, args.batch_seconds
    )
    _, tokenizer = load_model(args.model)
    decoder = make_decoder(spec, tokenizer)
    rows = tune_weights(decoder, em, args.alphas, args.betas, args.method)
    info = {"model": args.model, "lm": args.lm, "manifest": args.manifest, "method": args.method}
    best = write_results(args.out, rows, decoder, info)
    print(
        f"{args.out}: best alpha={best['alpha']:g} beta={best['beta']:g} "
        f"WER {100 * best['wer']:.2f} % ({len(rows)} settings; table in tune.md)"
    )
    return 0
