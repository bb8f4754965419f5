"""Streaming LM text: bounded reads, length batching, deterministic resume, sharding, splits."""

from __future__ import annotations

import gzip

import pytest

from asr.lm import text_data
from asr.lm.text_data import (
    LMBatchStream,
    LMDataConfig,
    TextDataError,
    is_valid_sentence,
    make_batches,
    read_valid_sentences,
)
from asr.text.tokenizer import CharTokenizer

TOK = CharTokenizer()
WORDS = ["THE", "CAT", "SAT", "ON", "A", "MAT", "AND", "IT", "WAS", "GOOD", "FOR", "ME", "TOO"]


def _lines(count: int, seed: int = 0) -> list[str]:
    return [" ".join(WORDS[(i * 7 + j * 3 + seed) % len(WORDS)] for j in range(1 + i % 9)) + "."
            for i in range(count)]  # fmt: skip


def _cfg(**kw) -> LMDataConfig:
    base = {"max_sentence_tokens": 60, "max_batch_tokens": 200, "max_batch_size": 8,
            "buffer_sentences": 50, "valid_per_mille": 100}  # fmt: skip
    return LMDataConfig(**{**base, **kw})


def _flat(batches) -> list[tuple]:
    return [tuple(map(tuple, b.inputs.tolist())) for b in batches]


def test_make_batches_respects_budget():
    sentences = [[1] * n for n in (5, 1, 30, 7, 7, 2, 19, 3)]
    batches = make_batches(sentences, max_batch_tokens=32, max_batch_size=3)
    assert sorted(map(len, (s for b in batches for s in b))) == sorted(map(len, sentences))
    for batch in batches:
        assert len(batch) <= 3 and len(batch) * (max(map(len, batch)) + 1) <= 32


def test_batches_are_sentences_with_boundaries(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("the cat.\n\n  A DOG  \n", encoding="utf-8")
    batches = list(LMBatchStream([path], TOK, _cfg(valid_per_mille=0, shuffle_files=False)))
    assert len(batches) == 1
    batch = batches[0]
    texts = sorted(TOK.decode(row) for row in batch.inputs.tolist())
    assert texts == ["A DOG", "THE CAT"]
    row = [TOK.decode(r) for r in batch.inputs.tolist()].index("A DOG")
    assert batch.inputs[row, 0] == 0 and batch.targets[row, 5] == 0  # <s> ... </s>
    assert batch.mask[row].tolist() == [1.0] * 6 + [0.0] * 2
    assert batch.num_tokens == 6 + 8


def test_streaming_reads_only_what_it_needs(tmp_path, monkeypatch):
    path = tmp_path / "big.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for i in range(20):
            fh.write("\n".join(_lines(5000, seed=i)) + "\n")
    read = {"lines": 0}
    real_open = text_data.open_text

    class Counting:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def __iter__(self):
            for line in self.fh:
                read["lines"] += 1
                yield line

    monkeypatch.setattr(text_data, "open_text", lambda p: Counting(real_open(p)))
    stream = iter(LMBatchStream([path], TOK, _cfg()))
    next(stream)
    assert 0 < read["lines"] <= 100  # one buffer of 50 training sentences, of 100000 lines


def test_resume_continues_with_the_same_batches(tmp_path):
    files = []
    for k in range(3):
        files.append(tmp_path / f"f{k}.txt")
        files[-1].write_text("\n".join(_lines(120, seed=k)) + "\n", encoding="utf-8")
    full = LMBatchStream(files, TOK, _cfg(), seed=5)
    everything = _flat(full)
    assert len(everything) > 20
    first = LMBatchStream(files, TOK, _cfg(), seed=5)
    taken = [b for _, b in zip(range(13), first, strict=False)]
    state = first.state_dict()
    second = LMBatchStream(files, TOK, _cfg(), seed=5)
    second.load_state_dict(state)
    assert _flat(taken) + _flat(second) == everything
    second.set_epoch(1)
    assert _flat(second) != everything  # another epoch, another order


def test_shards_are_disjoint_and_valid_split_is_excluded(tmp_path):
    path = tmp_path / "t.txt"
    lines = _lines(400)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = _cfg()
    shards = [_flat(LMBatchStream([path], TOK, cfg, rank=r, world_size=2)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) > 0
    assert not set(shards[0]) & set(shards[1])
    seen = {TOK.decode(row) for shard in shards for batch in shard for row in batch}
    valid = {TOK.decode(s) for s in read_valid_sentences(TOK, cfg, train_files=[path])}
    expected_valid = {line.rstrip(".") for line in lines if is_valid_sentence(line, 100)}
    assert valid == expected_valid and valid
    assert not seen & valid


def test_novel_format(tmp_path):
    novel = tmp_path / "ENG19000_Someone.txt"
    novel.write_text("Chapter 1\n\nIt was a dark night. Mr. Smith\nwas out.\n", encoding="utf-8")
    cfg = _cfg(text_format="novel", valid_per_mille=0)
    texts = {TOK.decode(r) for b in LMBatchStream([novel], TOK, cfg) for r in b.inputs.tolist()}
    assert texts == {"CHAPTER ONE", "IT WAS A DARK NIGHT", "MISTER SMITH WAS OUT"}
    with pytest.raises(TextDataError, match="no such text file"):
        LMBatchStream([tmp_path / "missing.txt"], TOK, cfg)
