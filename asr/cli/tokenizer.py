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
import gzip
from collections.abc import Iterable, Iterator
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


def iter_texts(manifests: Iterable[str], text_files: Iterable[str]) -> Iterator[str]:
    """Transcripts of the manifests, then the non-empty lines of the text files (.gz allowed)."""
    from asr.data.manifest import iter_manifest

    for manifest in manifests:
        for utt in iter_manifest(manifest):
            yield utt.text
    for name in text_files:
        opener = gzip.open if name.endswith(".gz") else open
        with opener(name, "rt", encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    yield line


def char_vocab(texts: Iterable[str]) -> list[str]:
    """``["<blank>", " ", sorted other characters...]`` of the characters in ``texts``."""
    from asr.text.tokenizer import BLANK

    chars: set[str] = set()
    for text in texts:
        chars.update(text)
    chars.discard(" ")
    return [BLANK, " ", *sorted(chars)]


def build_tokenizer(
    kind: str,
    out: str | Path,
    texts: Iterable[str] | None = None,
    vocab_size: int | None = None,
):
    """Build and save a tokenizer of ``kind`` into ``out``; returns it.

    Args:
        kind: "char", "bpe" or "unigram".
        out: the tokenizer folder (created).
        texts: normalised sentences; char: None gives the default 29 symbols, else their
            character set; bpe/unigram: required, the training text.
        vocab_size: bpe/unigram only: symbols including the blank and ``<unk>``.
    """
    from asr.text.tokenizer import CharTokenizer, SentencePieceTokenizer, TokenizerError

    if kind == "char":
        if vocab_size is not None:
            raise TokenizerError("--vocab-size applies to bpe/unigram, not to char tokenizers")
        tokenizer = CharTokenizer(None if texts is None else char_vocab(texts))
        if texts is not None and tokenizer.vocab_size == 2:
            raise TokenizerError("no characters in the given text (empty manifests/files?)")
        tokenizer.save(out)
        return tokenizer
    if texts is None or vocab_size is None:
        raise TokenizerError(f"a {kind} tokenizer needs --vocab-size and --manifest/--text")
    return SentencePieceTokenizer.train(texts, out, vocab_size, model_type=kind)


def run(args: argparse.Namespace) -> int:
    """Build the tokenizer unless OUT already holds one; returns 0."""
    from asr.errors import AsrError
    from asr.io.folders import model_dir_kind
    from asr.io.outputs import check_writable
    from asr.text.tokenizer import SENTENCEPIECE_FILE, TOKENIZER_FILE, load_tokenizer

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
