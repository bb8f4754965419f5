"""``asr lm-ppl``: perplexity per token and per word of an LSTM LM or a KenLM n-gram on text."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "lm-ppl",
        help="perplexity of a language model on text",
        description="Score text with an exported LSTM LM folder or a KenLM .arpa/binary file "
        "and print the perplexity per token and per word (</s> counted once per sentence).",
    )
    p.add_argument("--lm", required=True, help="LSTM LM folder or KenLM .arpa/.bin file")
    p.add_argument("text", nargs="+", help="text files (.txt/.gz)")
    p.add_argument(
        "--format", choices=["lines", "novel"], default="lines",
        help="one sentence per line (default) or hard-wrapped novels",
    )  # fmt: skip
    p.add_argument("--no-normalize", action="store_true", help="the text is normalised already")
    p.add_argument("--max-sentences", type=int, default=0, help="score only the first N")
    p.add_argument("--device", default="cpu", help="torch device for an LSTM LM")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import itertools

    from asr.lm.perplexity import perplexity
    from asr.lm.text_data import iter_raw_sentences
    from asr.text.normalize import normalize_text

    sentences = iter_raw_sentences(args.text, args.format)
    if not args.no_normalize:
        sentences = (normalize_text(s) for s in sentences)
    sentences = (s for s in sentences if s.strip())
    if args.max_sentences > 0:
        sentences = itertools.islice(sentences, args.max_sentences)
    kwargs = {"device": args.device} if not args.lm.endswith((".arpa", ".bin", ".binary")) else {}
    result = perplexity(args.lm, sentences, **kwargs)
    print(
        f"{args.lm}: {result.sentences} sentences, {result.words} words, {result.tokens} tokens, "
        f"{result.oov} OOV; log-prob {result.log_prob:.2f} nats; "
        f"ppl/token {result.ppl_token:.4f} ({result.bits_per_token:.4f} bits); "
        f"ppl/word {result.ppl_word:.2f}"
    )
    return 0
