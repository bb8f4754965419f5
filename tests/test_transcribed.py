"""Transcribed audio folders: speaker splits, manifests per subset, and manifest mixing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.cli import main
from asr.corpora import transcribed as tr
from asr.data.manifest import ManifestError, mix_manifests, read_manifest
from asr.io.audio import save_audio


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
    wanted = r"bad.tsv:1: expected 'id<TAB>text\[<TAB>speaker\]'"
    with pytest.raises(tr.TranscribedError, match=wanted):
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


def test_speaker_column_formats_rates_exclusion_and_conversion(tmp_path: Path) -> None:
    """A third column names the speaker; MP3/48 kHz/stereo audio becomes 16 kHz FLAC, once."""
    import soundfile as sf

    from asr.io.audio import audio_info, load_audio

    root = tmp_path / "audio"
    root.mkdir()
    t = np.arange(48000) / 48000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    save_audio(root / "p239_001.wav", np.stack([tone, tone], axis=1), 48000)  # stereo 48 kHz
    save_audio(root / "LJ001-0001.flac", tone[:16000], 16000)  # native: used in place
    save_audio(root / "LJ001-0002.flac", tone[:16000], 16000)
    if "MP3" in sf.available_formats():
        sf.write(root / "cv_1.MP3", tone, 48000, format="MP3")
        mp3 = "cv_1\tDon't stop: 2 left!\tcv-abc\tvalidated\n"
    else:
        mp3 = ""
    tsv = tmp_path / "t.tsv"
    tsv.write_text(
        "p239_001\tPlease call Stella.\tp239\n"
        "LJ001-0001\tPrinting, in 1884\tLJ\nLJ001-0002\tin being modern.\n" + mp3,
        encoding="utf-8",
    )
    (tmp_path / "eval.txt").write_text("# evaluation clips\nLJ001-0002\n", encoding="utf-8")
    out, conv = tmp_path / "m.jsonl", tmp_path / "conv"
    args = ["prepare", "transcribed", "--root", str(root), "--transcripts", str(tsv)]
    args += ["--exclude", str(tmp_path / "eval.txt"), "--audio-out", str(conv), "--out", str(out)]
    assert main(args) == 0
    utts = {u.utt_id: u for u in read_manifest(out)}
    assert sorted(utts) == sorted(["p239_001", "LJ001-0001"] + (["cv_1"] if mp3 else []))
    assert utts["p239_001"].speaker == "p239" and utts["LJ001-0001"].speaker == "LJ"
    assert utts["p239_001"].text == "PLEASE CALL STELLA"
    assert utts["LJ001-0001"].text == "PRINTING IN EIGHTEEN EIGHTY FOUR"
    assert utts["LJ001-0001"].audio_filepath == str((root / "LJ001-0001.flac").resolve())
    converted = Path(utts["p239_001"].audio_filepath)
    assert converted == (conv / "p239_001.flac").resolve()
    info = audio_info(converted)
    assert (info.sample_rate, info.channels) == (16000, 1)
    assert utts["p239_001"].duration == pytest.approx(1.0, abs=1e-3)
    # the conversion is a band-limited resampling of the same tone (independent reference: an FFT)
    samples, _ = load_audio(converted)
    assert np.argmax(np.abs(np.fft.rfft(samples))) == 440
    if mp3:
        assert utts["cv_1"].speaker == "cv-abc" and utts["cv_1"].text == "DON'T STOP TWO LEFT"
        assert audio_info(utts["cv_1"].audio_filepath).sample_rate == 16000
    # manifest ids exclude too (dedupe against another corpus); a bad rate is one line
    ids = tr.read_id_list(out)
    assert ids == set(utts)
    with pytest.raises(tr.TranscribedError, match="sample rate must be"):
        tr.prepare_transcribed(root, tsv, tmp_path / "x.jsonl", audio_out=conv, sample_rate=0)
    with pytest.raises(tr.TranscribedError, match=r"t2.tsv:1: expected 'id<TAB>text"):
        (tmp_path / "t2.tsv").write_text("only-an-id\n")
        tr.read_transcript_rows(tmp_path / "t2.tsv")


def test_real_recipe_split_is_speaker_disjoint_with_dev_clean(shared_data: Path) -> None:
    """egs/real/local/split.tsv lists every speaker of the real-speech sets once; every
    LibriSpeech dev-clean speaker is dev; the old dev speakers with new train-clean-100 audio
    (1502, 2910, 6209) moved to train; the other old dev speakers stay dev."""
    root = Path(__file__).resolve().parents[1]
    real = shared_data / "real-speech"
    if not real.is_dir():
        pytest.skip("../shared/data/real-speech is absent")
    split = tr.read_speaker_split(root / "egs/real/local/split.tsv")
    old = tr.read_speaker_split(root / "egs/synth/local/real_split.tsv")
    for tsv in real.glob("*/transcripts.tsv"):
        for line, (_, _, speaker) in zip(
            tsv.read_text(encoding="utf-8").splitlines(), tr.read_transcript_rows(tsv)
        ):
            assert speaker in split, (tsv, speaker)
            if line.endswith("\tdev-clean"):
                assert split[speaker] == "dev", (tsv, speaker)
    assert all(split[s] == "train" for s in ("1502", "2910", "6209"))
    kept = {s for s, subset in old.items() if subset == "dev"} - {"1502", "2910", "6209"}
    assert all(split[s] == "dev" for s in kept) and len(kept) == 52
    assert sum(subset == "dev" for subset in split.values()) == 60
