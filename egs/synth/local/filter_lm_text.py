"""Drop LM-text sentences that share a word 8-gram with any transcript of evaluation manifests.

Input: normalised text, one sentence per line (``asr lm-text``, plain or .gz). A sentence is
dropped when one of its word 8-grams (the whole sentence when shorter) is a word 8-gram of an
excluded transcript (``asr.corpora.synth_text.excluded_ngrams``: the rule the corpus builder
applies). A second pass catches an evaluation transcript that the sentence splitter cut into
pieces: every 8-word window of the kept text read as one stream across line ends is checked too,
and the sentences a matching window touches are dropped. Output is written atomically (gzipped
when it ends in .gz); a summary goes to stderr::

    python egs/synth/local/filter_lm_text.py --exclude /work/real/dev.jsonl \\
        --out lm/train.txt.gz lm/train_raw.txt.gz
"""

from __future__ import annotations

import argparse
import gzip
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from asr.corpora.synth_text import OVERLAP_WORDS, excluded_ngrams, word_ngrams
from asr.io.atomic import atomic_path


def read_lines(path: str | Path) -> list[str]:
    """Lines of a plain or gzipped UTF-8 text file, without line ends."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh]


def shared_sentences(sentences: Sequence[str], grams: frozenset[str]) -> set[int]:
    """Indices of sentences with a word 8-gram in ``grams`` (each sentence on its own)."""
    return {i for i, s in enumerate(sentences) if s and not word_ngrams(s).isdisjoint(grams)}


def straddling_sentences(
    sentences: Sequence[str], grams: frozenset[str], n: int = OVERLAP_WORDS
) -> set[int]:
    """Indices of sentences touched by an ``n``-word window in ``grams`` of the joined stream."""
    words: list[str] = []
    owner: list[int] = []
    for i, s in enumerate(sentences):
        for w in s.split():
            words.append(w)
            owner.append(i)
    hit: set[int] = set()
    for start in range(len(words) - n + 1):
        if " ".join(words[start : start + n]) in grams:
            hit.update(owner[start : start + n])
    return hit


def filter_sentences(sentences: Sequence[str], grams: frozenset[str]) -> tuple[list[str], int]:
    """``(kept sentences, number dropped)``: both passes, until no window matches."""
    kept = list(sentences)
    dropped = 0
    while True:
        bad = shared_sentences(kept, grams) | straddling_sentences(kept, grams)
        if not bad:
            return kept, dropped
        dropped += len(bad)
        kept = [s for i, s in enumerate(kept) if i not in bad]


def write_lines(path: str | Path, lines: Iterable[str]) -> None:
    """Write lines atomically, gzipped when ``path`` ends in .gz."""
    with atomic_path(path) as tmp:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(tmp, "wt", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("text", nargs="+", help="normalised text files, one sentence per line")
    p.add_argument("--exclude", action="append", required=True, help="JSONL manifest (repeat)")
    p.add_argument("--out", required=True, help="filtered text (.txt or .txt.gz)")
    args = p.parse_args(argv)
    grams = excluded_ngrams(args.exclude)
    sentences = [line for path in args.text for line in read_lines(path)]
    kept, dropped = filter_sentences(sentences, grams)
    write_lines(args.out, kept)
    print(
        f"{args.out}: kept {len(kept)} of {len(sentences)} sentences, dropped {dropped} sharing "
        f"a word {OVERLAP_WORDS}-gram with {', '.join(args.exclude)}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
