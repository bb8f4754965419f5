"""bench/pocketsphinx_wer.py: PCM conversion, hypothesis files, scoring and table (jiwer as the
reference); pocketsphinx itself only where it is installed."""

from __future__ import annotations

import json

import jiwer
import numpy as np
import pytest

from asr.data.manifest import Utterance
from asr.scoring.transcripts import read_transcripts
from asr.text.normalize import normalize_text
from bench import pocketsphinx_wer as ps

REFS = {
    "u1": "MISTER SMITH DIDN'T SEE THE TWO DOGS",
    "u2": "IT WAS THE BEST OF TIMES",
    "u3": "AND THE WORST OF TIMES",
}
HYPS = {"u1": "Mr. smith didn't see the 2 dogs", "u2": "it was the best of dimes", "u3": ""}


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _manifest(tmp_path):
    rows = [
        {"audio_filepath": f"/a/{k}.flac", "duration": 1.0, "text": v, "utt_id": k}
        for k, v in REFS.items()
    ]
    return _write(tmp_path / "ref.jsonl", rows)


def _hyps(tmp_path, order=("u3", "u1", "u2")):
    rows = [
        ps.hyp_record(Utterance(f"/a/{k}.flac", 1.0, REFS[k], utt_id=k), HYPS[k]) for k in order
    ]
    return _write(tmp_path / "hyp.jsonl", rows)


def test_to_int16_scales_rounds_and_clips():
    x = np.array([0.0, 0.5, -0.5, -1.0, 0.99999, 1.5, -2.0, 1 / 32768 * 0.6], np.float32)
    got = ps.to_int16(x)
    assert got.dtype == np.int16
    assert got.tolist() == [0, 16384, -16384, -32768, 32767, 32767, -32768, 1]


def test_hyp_file_is_what_asr_score_reads(tmp_path):
    hyp = _hyps(tmp_path)
    got = read_transcripts(hyp, "jsonl", id_key="utt_id")  # asr score's reader, pred_text first
    assert got == HYPS
    line = json.loads(hyp.read_text().splitlines()[0])
    assert {"audio_filepath", "duration", "text", "utt_id", "pred_text"} <= set(line)


def test_both_sides_normalised_and_scored_like_jiwer(tmp_path):
    report = ps.score_hyps(_manifest(tmp_path), _hyps(tmp_path))
    refs = [normalize_text(REFS[k]) for k in REFS]
    hyps = [normalize_text(HYPS[k]) for k in REFS]
    assert hyps[0] == "MISTER SMITH DIDN'T SEE THE TWO DOGS"  # "mr." and "2" spelt out
    assert report.words.rate == pytest.approx(jiwer.wer(refs, hyps))
    assert report.chars.rate == pytest.approx(jiwer.cer(refs, hyps))
    assert report.words.errors == 1 + 5  # DIMES; all of u3 deleted


def test_table_rows_and_named_arguments(tmp_path):
    manifest, hyp = _manifest(tmp_path), _hyps(tmp_path)
    row = ps.system_score("ours", manifest, hyp)
    assert row.utterances == 3 and row.ref_words == 7 + 6 + 5
    assert row.wer == pytest.approx(100 * 6 / 18)
    table = ps.results_table([row])
    assert table.splitlines()[2].startswith(f"| ours | {row.wer:.1f} | {row.cer:.1f} | 3 | 18 |")
    assert ps.parse_named(["beam 16=a=b.jsonl"]) == [("beam 16", "a=b.jsonl")]
    with pytest.raises(ps.BenchError, match="NAME=HYP"):
        ps.parse_named(["no-name.jsonl"])


def test_reuse_scores_without_decoding(tmp_path, capsys):
    manifest, hyp = _manifest(tmp_path), _hyps(tmp_path)
    rc = ps.main(["--manifest", str(manifest), "--out", str(hyp), "--reuse", "--ours", f"x={hyp}"])
    out = capsys.readouterr().out
    assert rc == 0 and out.count("| 33.3 |") == 2 and "Command: `python -m bench" in out


def test_missing_hypothesis_is_one_line_error(tmp_path, capsys):
    manifest = _manifest(tmp_path)
    hyp = _hyps(tmp_path, order=("u1", "u2"))
    assert ps.main(["--manifest", str(manifest), "--out", str(hyp), "--reuse"]) == 1
    assert "no hypothesis for utterance 'u3'" in capsys.readouterr().err


def test_pocketsphinx_recognises_a_real_sample(tmp_path):
    pytest.importorskip("pocketsphinx")
    from pathlib import Path

    audio = Path(__file__).resolve().parents[1] / "asr/pretrained/samples/ljspeech-LJ001-0001.flac"
    text = (
        "PRINTING IN THE ONLY SENSE WITH WHICH WE ARE AT PRESENT CONCERNED DIFFERS FROM MOST IF "
        "NOT FROM ALL THE ARTS AND CRAFTS REPRESENTED IN THE EXHIBITION"
    )
    manifest = _write(
        tmp_path / "m.jsonl", [{"audio_filepath": str(audio), "duration": 0, "text": text}]
    )
    stats = ps.decode_manifest(manifest, tmp_path / "ps.jsonl")
    assert stats["failed"] == 0 and stats["audio_s"] > 5
    report = ps.score_hyps(manifest, tmp_path / "ps.jsonl")
    assert report.words.rate < 0.5  # pocketsphinx gets most of this clean read sentence
