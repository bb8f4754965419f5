"""Transcribed audio folders: speaker splits, manifests per subset, and manifest mixing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.audio import save_audio
from asr.cli import main
from asr.corpora import transcribed as tr
from asr.data.manifest import ManifestError, mix_manifests, read_manifest


def _corpus(root: Path, speakers: int = 6) -> Path:
    lines = []
    for s in range(speakers):
        for u in range(2):
            utt = f"{100 + s}-7-{u:04d}"
            save_audio(root / f"{utt}.flac", np.full(1600 * (u + 1), 0.1, np.float32), 16000)
            lines.append(f"{utt}\tHello, world number {s}!")
    tsv = root / "ids.tsv"
    tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tsv


def test_split_is_speaker_disjoint_balanced_and_seeded() -> None:
    speakers = [str(s) for s in range(20)]
    sexes = {s: "F" if int(s) < 5 else "M" for s in speakers}
    split = tr.make_speaker_split(speakers, {"dev": 6}, sexes=sexes, seed=3)
    assert sorted(split) == sorted(speakers)
    dev = [s for s, subset in split.items() if subset == "dev"]
    assert len(dev) == 6 and sum(sexes[s] == "F" for s in dev) == 3
    assert split == tr.make_speaker_split(speakers, {"dev": 6}, sexes=sexes, seed=3)
    assert split != tr.make_speaker_split(speakers, {"dev": 6}, sexes=sexes, seed=4)
    with pytest.raises(tr.TranscribedError, match="21 speakers asked, 20 exist"):
        tr.make_speaker_split(speakers, {"dev": 21})


def test_prepare_subsets_and_errors(tmp_path: Path) -> None:
    tsv = _corpus(tmp_path)
    split = tr.make_speaker_split([str(100 + s) for s in range(6)], {"dev": 2})
    split_file = tr.write_speaker_split(tmp_path / "split.tsv", split)
    assert tr.read_speaker_split(split_file) == split
    dev = tr.prepare_transcribed(tmp_path, tsv, tmp_path / "dev.jsonl", split_file, "dev")
    train = tr.prepare_transcribed(tmp_path, tsv, tmp_path / "train.jsonl", split_file, "train")
    assert len(dev) == 4 and len(train) == 8
    assert {u.speaker for u in dev}.isdisjoint({u.speaker for u in train})
    read = read_manifest(tmp_path / "dev.jsonl")
    assert read[0].text.startswith("HELLO WORLD NUMBER") and read[1].duration == pytest.approx(0.2)
    assert tr.prepare_transcribed(tmp_path, tsv, tmp_path / "dev.jsonl", split_file, "dev") == []
    (tmp_path / "bad.tsv").write_text("100-7-0000 no tab here\n")
    with pytest.raises(tr.TranscribedError, match=r"bad.tsv:1: expected 'id<TAB>text'"):
        tr.read_transcripts(tmp_path / "bad.tsv")
    (tmp_path / "101-7-0000.flac").unlink()
    with pytest.raises(tr.TranscribedError, match="no audio file for 101-7-0000"):
        tr.prepare_transcribed(tmp_path, tsv, tmp_path / "all.jsonl")


def test_real_split_covers_the_shared_samples(shared_data: Path) -> None:
    """The committed split names every speaker of the shared samples once, 55 in dev."""
    root = Path(__file__).resolve().parents[1]
    split = tr.read_speaker_split(root / "egs/synth/local/real_split.tsv")
    rows = tr.read_transcripts(shared_data / "librispeech-samples/train-clean-100.transcripts.tsv")
    assert set(split) == {tr.speaker_of(utt) for utt, _ in rows}
    assert sum(subset == "dev" for subset in split.values()) == 55


def test_mix_repeats_with_unique_ids(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tsv = _corpus(tmp_path, speakers=2)
    tr.prepare_transcribed(tmp_path, tsv, tmp_path / "a.jsonl")
    utts = mix_manifests([(tmp_path / "a.jsonl", 3)])
    assert len(utts) == 12 and len({u.utt_id for u in utts}) == 12
    assert utts[4].utt_id == "100-7-0000~2" and utts[4].audio_filepath == utts[0].audio_filepath
    with pytest.raises(ManifestError, match="occurs in two inputs"):
        mix_manifests([(tmp_path / "a.jsonl", 1), (tmp_path / "a.jsonl", 1)])
    with pytest.raises(ManifestError, match="repeat count must be >= 1"):
        mix_manifests([(tmp_path / "a.jsonl", 0)])
    out = tmp_path / "mix.jsonl"
    assert main(["prepare", "mix", f"{tmp_path / 'a.jsonl'}:2", "--out", str(out)]) == 0
    assert len(read_manifest(out)) == 8
    assert main(["prepare", "mix", str(tmp_path / "a.jsonl"), "--out", str(out)]) == 0
    assert len(read_manifest(out)) == 8 and "exists (kept" in capsys.readouterr().out
    # two corpora numbering their speakers alike: a prefix per input keeps ids and speakers apart
    a = str(tmp_path / "a.jsonl")
    args = ["prepare", "mix", f"{a}:2@s50", a, "--out", str(tmp_path / "two.jsonl")]
    assert main(args) == 0
    two, once = read_manifest(tmp_path / "two.jsonl"), read_manifest(a)
    assert [u.utt_id for u in two[:4]] == [f"s50-{u.utt_id}" for u in once]
    assert two[4].utt_id == f"s50-{once[0].utt_id}~2" and two[8:] == once
    assert {u.speaker for u in two[:8]} == {f"s50-{u.speaker}" for u in once}
    assert main(["prepare", "mix", a, a, "--out", str(tmp_path / "dup.jsonl")]) == 2
    assert "IN@P" in capsys.readouterr().err
    assert main(["prepare", "mix", f"{a}@s 50", "--out", str(tmp_path / "bad.jsonl")]) == 2
