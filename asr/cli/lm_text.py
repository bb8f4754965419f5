"""``asr lm-text``: normalise text into one sentence per line (LM training and evaluation)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "lm-text",
        help="normalise text files into one sentence per line",
        description="Stream plain or gzipped text (novels or one sentence per line), normalise "
        "each sentence like the acoustic transcripts (asr.text.normalize.normalize_text) and "
        "write one per line, atomically (gzipped when OUT ends in .gz).",
    )
    p.add_argument("text", nargs="+", help="input text files (.txt/.gz)")
    p.add_argument("--out", required=True, help="output file (.txt or .txt.gz), new")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--format", choices=["lines", "novel"], default="novel", help="input layout")
    p.add_argument(
        "--max-sentences-per-file", type=int, default=0, help="keep only the first N per file"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import gzip
    import itertools

    from tqdm import tqdm

    from asr.io.atomic import atomic_path
    from asr.io.outputs import check_output_file
    from asr.lm.text_data import iter_raw_sentences
    from asr.text.normalize import normalize_text

    check_output_file(args.out, args.overwrite, inputs=args.text)
    count = 0
    with atomic_path(args.out) as tmp:
        opener = gzip.open if args.out.endswith(".gz") else open
        with opener(tmp, "wt", encoding="utf-8") as out:
            for path in tqdm(args.text, desc="files", unit="file", disable=not sys.stderr.isatty()):
                raw = iter_raw_sentences([path], args.format)
                if args.max_sentences_per_file > 0:
                    raw = itertools.islice(raw, args.max_sentences_per_file)
                for sentence in raw:
                    text = normalize_text(sentence)
                    if text:
                        out.write(text + "\n")
                        count += 1
    print(f"wrote {count} sentences to {args.out}")
    return 0
