"""LJSpeech folders -> manifest: texts, durations, clear errors; the real 32-clip sample."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from asr.corpora.ljspeech import LJSpeechError, prepare_ljspeech, read_metadata
from asr.data.manifest import read_manifest

SR = 22050


def _folder(tmp_path, lines: list[str], clips: dict[str, float]):
    root = tmp_path / "LJ"
    (root / "wavs").mkdir(parents=True)
    (root / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for clip, seconds in clips.items():
        sf.write(root / "wavs" / f"{clip}.wav", np.zeros(int(seconds * SR), np.float32), SR)
    return root


def test_manifest_texts_and_durations(tmp_path, capsys):
    lines = ["LJ1-1|In 1850, Mr. Smith|In eighteen fifty, Mister Smith", 'LJ1-2|"Hi!"|']
    root = _folder(tmp_path, lines, {"LJ1-1": 1.5, "LJ1-2": 0.25})
    out = tmp_path / "m" / "lj.jsonl"
    assert main(["prepare", "ljspeech", "--root", str(root), "--out", str(out)]) == 0
    assert "2 utterances" in capsys.readouterr().out
    utts = read_manifest(out)
    # column 3, else column 2 when it is empty; normalised
    assert [u.text for u in utts] == ["IN EIGHTEEN FIFTY MISTER SMITH", "HI"]
    assert [u.utt_id for u in utts] == ["LJ1-1", "LJ1-2"]
    assert [u.duration for u in utts] == pytest.approx([1.5, 0.25], abs=1 / SR)
    # kept unless --overwrite
    out.write_text(out.read_text().splitlines()[0] + "\n")
    assert len(read_manifest(prepare_ljspeech(root, out))) == 1
    assert len(read_manifest(prepare_ljspeech(root, out, overwrite=True))) == 2


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("LJ1-1|two fields", r"metadata.csv:2: expected 3 '\|'-separated fields, got 2"),
        ("|a|b", r"metadata.csv:2: empty clip id or text"),
        ("LJ1-0|A|A", r"metadata.csv:2: clip 'LJ1-0' repeats line 1"),
    ],
)
def test_bad_metadata_lines_name_the_line(tmp_path, line, message):
    root = _folder(tmp_path, ["LJ1-0|A|A", line], {"LJ1-0": 0.5})
    with pytest.raises(LJSpeechError, match=message):
        read_metadata(root / "metadata.csv")


def test_missing_clip_and_folder_are_one_line_errors(tmp_path, capsys):
    root = _folder(tmp_path, ["LJ1-0|A|A", "LJ1-9|B|B"], {"LJ1-0": 0.5})
    args = ["prepare", "ljspeech", "--root", str(root), "--out", str(tmp_path / "o.jsonl")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "clip LJ1-9" in err and "metadata.csv" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.jsonl").exists()
    with pytest.raises(LJSpeechError, match="not a LJSpeech folder"):
        prepare_ljspeech(tmp_path / "nowhere", tmp_path / "x.jsonl")


def test_real_sample(shared_data, tmp_path):
    root = shared_data / "ljspeech-sample"
    out = prepare_ljspeech(root, tmp_path / "lj.jsonl")
    with open(root / "metadata.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="|", quoting=csv.QUOTE_NONE))
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["utt_id"] for r in records] == [row[0] for row in rows]
    for record, row in zip(records, rows):
        info = sf.info(root / "wavs" / f"{row[0]}.wav")
        assert record["duration"] == pytest.approx(info.frames / info.samplerate)
        assert record["text"] == record["text"].upper() and "," not in record["text"]
        assert record["text"].split()[0] in row[2].upper()
