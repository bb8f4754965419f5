"""egs/synth/local/filter_lm_text.py and word_vocab.py: the dev-overlap filter of LM text and the
unigram list / <unk> text (brute-force references)."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest

LOCAL = Path(__file__).resolve().parents[1] / "egs" / "synth" / "local"
sys.path.insert(0, str(LOCAL))

import filter_lm_text  # noqa: E402
import word_vocab  # noqa: E402

DEV = "ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN"


def _brute_force_clean(sentences: list[str], n: int = 8) -> bool:
    """No n-word window of the kept stream (across line ends) occurs in DEV."""
    words = " ".join(sentences).split()
    dev = DEV.split()
    dev_grams = {tuple(dev[i : i + n]) for i in range(len(dev) - n + 1)}
    return all(tuple(words[i : i + n]) not in dev_grams for i in range(len(words) - n + 1))


def test_filter_drops_shared_and_straddling_sentences(tmp_path):
    manifest = tmp_path / "dev.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "a.flac", "duration": 1, "text": DEV}))
    text = [
        "THE CAT SAT ON THE MAT",
        "AND ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT AND MORE",  # an 8-gram of DEV
        "A QUIET LINE OF TEXT",
        "ONE TWO THREE FOUR",  # with the next line: DEV cut by the sentence splitter
        "FIVE SIX SEVEN EIGHT NINE",
        "TWO THREE FOUR FIVE SIX SEVEN EIGHT",  # seven words of DEV: allowed
        "THE END",
    ]
    src = tmp_path / "text.txt.gz"
    with gzip.open(src, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(text) + "\n")
    out = tmp_path / "kept.txt"
    assert filter_lm_text.main(["--exclude", str(manifest), "--out", str(out), str(src)]) == 0
    kept = out.read_text().splitlines()
    assert kept == [text[0], text[2], text[5], text[6]]
    assert _brute_force_clean(kept) and not _brute_force_clean(text)


def test_unigram_list_and_unk_text(tmp_path):
    src = tmp_path / "t.txt"
    src.write_text("B A C A\nD B A\nC E\n")
    uni, unk = tmp_path / "uni.txt", tmp_path / "unk.txt.gz"
    assert (
        word_vocab.main([str(src), "--size", "3", "--unigrams", str(uni), "--unk-text", str(unk)])
        == 0
    )
    assert uni.read_text().split() == ["A", "B", "C"]  # A 3, B 2, C 2 (tie by word), D/E 1
    with gzip.open(unk, "rt", encoding="utf-8") as fh:
        assert fh.read().splitlines() == ["B A C A", "<unk> B A", "C <unk>"]


@pytest.mark.parametrize("size", [0, 1, 10])
def test_top_words_matches_a_sort(size):
    sentences = ["X Y Z X", "Y X W"]
    assert word_vocab.top_words(sentences, size) == ["X", "Y", "W", "Z"][:size]
