"""``asr ngram``: estimate a modified Kneser-Ney n-gram (ARPA) over characters or words."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ngram",
        help="estimate a Kneser-Ney n-gram LM as an ARPA file",
        description="Interpolated modified Kneser-Ney estimation (what KenLM's lmplz computes) "
        "over normalised text, one sentence per line (see asr lm-text), streamed. Character "
        "models write the space as '|'. Score with asr lm-ppl or load with kenlm.",
    )
    p.add_argument("text", nargs="+", help="normalised text files, one sentence per line")
    p.add_argument("--order", type=int, required=True, help="highest n-gram order")
    p.add_argument("--unit", choices=["char", "word"], default="word", help="token unit")
    p.add_argument("--out", required=True, help="ARPA file to write (new; see --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument(
        "--discount-fallback", action="store_true",
        help="use discounts 0.5/1/1.5 where counts-of-counts cannot give them (tiny text)",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from tqdm import tqdm

    from asr.io.outputs import check_output_file
    from asr.lm.ngram import char_tokens, estimate_arpa
    from asr.lm.text_data import iter_raw_sentences

    check_output_file(args.out, args.overwrite, inputs=args.text)

    split = char_tokens if args.unit == "char" else str.split
    sentences = (
        split(s)
        for s in tqdm(
            iter_raw_sentences(args.text, "lines"), unit="sent", disable=not sys.stderr.isatty()
        )
    )
    start = time.perf_counter()
    stats = estimate_arpa(sentences, args.order, args.out, discount_fallback=args.discount_fallback)
    print(
        f"wrote {args.out}: order {stats.order}, n-grams {list(stats.counts)}, "
        f"{stats.sentences} sentences, {stats.tokens} tokens, discounts "
        + ", ".join("/".join(f"{d:.3f}" for d in ds) for ds in stats.discounts)
        + f"; {time.perf_counter() - start:.0f} s"
    )
    return 0
