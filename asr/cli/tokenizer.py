"""``asr tokenizer``: build a tokenizer folder from manifest text and/or text files.

Examples::

    asr tokenizer --kind char --out data/lang_char                       # 29 symbols
    asr tokenizer --kind char --from-text --manifest data/train.jsonl --out data/lang_char
    asr tokenizer --kind bpe --vocab-size 256 --manifest data/train.jsonl --out data/lang_bpe256
    asr tokenizer --kind unigram --vocab-size 500 --text data/lm.txt.gz --out data/lang_uni500

An existing tokenizer in OUT is kept (and reported) unless ``--overwrite`` is given; the tokenizer
of an exported model or LM folder is never replaced (the weights belong to it). Text is taken as
already normalised (``asr.text.normalize.normalize_text``), as the manifests and LM text of the
recipes are.
"""

from __future__ import annotations

import argparse
from pathlib import Path

KINDS = ("char", "bpe", "unigram")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tokenizer`` subcommand."""
    p = subparsers.add_parser(
        "tokenizer",
        help="build a character or sentencepiece tokenizer",
        description=__doc__.split("\n\n", 1)[1].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--kind", choices=KINDS, default="char", help="tokenizer kind (default char)")
    p.add_argument(
        "--manifest", nargs="+", default=[], metavar="M", help="JSONL manifests (their text)"
    )
    p.add_argument(
        "--text", nargs="+", default=[], metavar="FILE", help="text files, one sentence a line"
    )
    p.add_argument(
        "--vocab-size", type=int, default=None, help="bpe/unigram: symbols incl. blank and <unk>"
    )
    p.add_argument(
        "--from-text",
        action="store_true",
        help="char: the character set of the given text instead of the default 29 symbols",
    )
    p.add_argument("--out", required=True, help="tokenizer folder to write")
    p.add_argument(
        "--overwrite",
        "--force",
        dest="force",
        action="store_true",
        help="replace an existing tokenizer in OUT (--force: the old name)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the tokenizer unless OUT already holds one; returns 0."""
    from asr.data.manifest import iter_texts
    from asr.errors import AsrError
    from asr.io.folders import model_dir_kind
    from asr.io.outputs import check_writable
    from asr.text.tokenizer import (
        SENTENCEPIECE_FILE,
        TOKENIZER_FILE,
        build_tokenizer,
        load_tokenizer,
    )

    out = Path(args.out)
    if (out / TOKENIZER_FILE).is_file() and not args.force:
        tokenizer = load_tokenizer(out)
        what = f"{tokenizer.kind}, {tokenizer.vocab_size} symbols"
        print(f"{out}: exists ({what}); --overwrite rebuilds")
        return 0
    kind = model_dir_kind(out)
    if kind is not None:
        raise AsrError(f"{out}: holds an exported {kind}; its tokenizer belongs to its weights")
    if (out / SENTENCEPIECE_FILE).exists() and not args.force:
        raise AsrError(f"{out / SENTENCEPIECE_FILE}: exists; pass --overwrite to replace it")
    check_writable(out / TOKENIZER_FILE)
    has_text = bool(args.manifest or args.text)
    if args.kind == "char" and has_text and not args.from_text:
        raise AsrError("char: --manifest/--text are only read with --from-text (else 29 symbols)")
    if args.kind == "char" and args.from_text and not has_text:
        raise AsrError("--from-text needs --manifest or --text")
    texts = iter_texts(args.manifest, args.text) if has_text else None
    try:
        tokenizer = build_tokenizer(args.kind, out, texts, args.vocab_size)
    except OSError as err:
        raise AsrError(f"cannot read text: {err}") from None
    print(f"{out}: {tokenizer.kind} tokenizer, {tokenizer.vocab_size} symbols")
    return 0
