"""The synthetic corpus's novel split, as the LM text preparation reads it."""

from __future__ import annotations

import pytest

from asr.corpora.novel_split import novel_split_files
from asr.corpora.synth_config import SynthError


def test_novel_split_from_tsv_and_seeded(tmp_path):
    for i in range(12):
        (tmp_path / f"ENG18{i:03d}_X.txt").write_text("A.\n", encoding="utf-8")
    tsv = tmp_path / "novel_split.tsv"
    tsv.write_text("novel\tchapter\tsubset\nENG18001_X\t2\tdev\nENG18002_X\t3\ttest\n")
    split = novel_split_files(tmp_path, tsv)
    assert [p.name for p in split["dev"]] == ["ENG18001_X.txt"]
    assert len(split["train"]) == 10 and all("ENG18002" not in p.name for p in split["train"])
    default = novel_split_files(tmp_path)  # the synthetic corpus's seeded split
    assert len(default["dev"]) == len(default["test"]) == 5
    assert not set(default["train"]) & set(default["dev"] + default["test"])
    tsv.write_text("novel\tchapter\nENG18001_X\t2\n")
    with pytest.raises(SynthError, match="line 1"):
        novel_split_files(tmp_path, tsv)
    with pytest.raises(SynthError, match="no novels"):
        novel_split_files(tmp_path / "missing")
