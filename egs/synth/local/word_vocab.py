"""The N most frequent words of normalised LM text: a unigram list, and the text with <unk>.

Writes ``--unigrams`` (one word per line, most frequent first; ties by word) for pyctcdecode's
unigram list (``asr decode --unigrams``), and with ``--unk-text`` a copy of the text with every
other word replaced by ``<unk>``, so an n-gram estimated on it (``asr ngram``) has that vocabulary
plus an ``<unk>`` trained on real counts (a word 4-gram needs under 32,767 types)::

    python egs/synth/local/word_vocab.py lm/train.txt.gz --size 30000 \\
        --unigrams lm/words_30k.txt --unk-text lm/train_30k.txt.gz
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable, Sequence

from filter_lm_text import read_lines, write_lines  # same folder (run as a script)

from asr.lm.ngram import UNK


def top_words(sentences: Iterable[str], size: int) -> list[str]:
    """The ``size`` most frequent words (ties broken alphabetically), most frequent first."""
    counts = Counter(w for s in sentences for w in s.split())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [w for w, _ in ranked[:size]]


def with_unk(sentences: Iterable[str], vocab: set[str]) -> Iterable[str]:
    """Each sentence with the words outside ``vocab`` written as ``<unk>``."""
    for s in sentences:
        yield " ".join(w if w in vocab else UNK for w in s.split())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("text", nargs="+", help="normalised text, one sentence per line (.txt/.gz)")
    p.add_argument("--size", type=int, required=True, help="words to keep")
    p.add_argument("--unigrams", required=True, help="unigram list to write")
    p.add_argument("--unk-text", help="also write the text with other words as <unk>")
    args = p.parse_args(argv)
    sentences = [line for path in args.text for line in read_lines(path)]
    words = top_words(sentences, args.size)
    write_lines(args.unigrams, words)
    if args.unk_text:
        write_lines(args.unk_text, with_unk(sentences, set(words)))
    print(f"{args.unigrams}: {len(words)} words", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
