"""``asr features`` and asr.data.features: stored features match Kaldi fbank; bad files are
reported without stopping the batch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors import safe_open

from asr.cli import main
from asr.data.features import FeatureError, load_features, safe_name
from asr.io.audio import load_audio

ROOT = Path(__file__).resolve().parents[1]
FBANK80 = str(ROOT / "conf" / "frontend" / "kaldi_fbank80.yaml")


def _kaldi_fbank(samples: np.ndarray) -> torch.Tensor:
    """Reference: torchaudio.compliance.kaldi.fbank on the int16 scale, dither 0."""
    kaldi = pytest.importorskip("torchaudio.compliance.kaldi")
    wave = torch.from_numpy(samples.astype(np.float32))[None, :] * 32768
    return kaldi.fbank(wave, num_mel_bins=80, dither=0.0, sample_frequency=16000)


def _speechlike(seconds: float, rate: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * (200 + 100 * seed) * t) * (1 + np.sin(2 * np.pi * 3 * t))
    return (tone + 0.02 * rng.standard_normal(t.shape)).astype(np.float32) / 2


@pytest.fixture
def corpus(tmp_path):
    """Two good 16 kHz WAVs, one 22.05 kHz FLAC in a subfolder, and a truncated WAV."""
    wavs = tmp_path / "wavs"
    (wavs / "sub").mkdir(parents=True)
    sf.write(str(wavs / "a.wav"), _speechlike(1.0, 16000, 1), 16000, subtype="PCM_16")
    sf.write(str(wavs / "b.wav"), _speechlike(0.5, 16000, 2), 16000, subtype="PCM_16")
    sf.write(str(wavs / "sub" / "c.flac"), _speechlike(0.7, 22050, 3), 22050, subtype="PCM_16")
    good = (wavs / "a.wav").read_bytes()
    (wavs / "broken.wav").write_bytes(good[: len(good) // 3])
    return wavs


def _run(args: list[str], capsys) -> tuple[int, str]:
    code = main(["features", "--config", FBANK80, "--quiet", *args])
    return code, capsys.readouterr().err


def test_folder_with_a_corrupt_file(corpus, tmp_path, capsys):
    out = tmp_path / "feats"
    code, err = _run([str(corpus), "--out", str(out)], capsys)
    assert code == 1
    assert "1 input(s) failed:" in err
    assert f"{corpus / 'broken.wav'}: truncated WAV file" in err
    index = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert [e["utt_id"] for e in index] == ["a", "b", "c"]
    assert "broken.wav" in (out / "failures.txt").read_text()
    assert (out / "frontend.yaml").exists()
    for entry in index:
        feats = load_features(out / entry["features_filepath"])
        assert feats.dtype == torch.float32
        assert (
            tuple(feats.shape)
            == (entry["num_frames"], entry["num_features"])
            == (
                entry["num_frames"],
                80,
            )
        )
        samples, _ = load_audio(entry["audio_filepath"], sample_rate=16000)
        reference = _kaldi_fbank(samples)
        assert feats.shape == reference.shape
        assert torch.max(torch.abs(feats - reference)) < 1e-3
    with safe_open(str(out / "a.safetensors"), "pt") as fh:
        meta = fh.metadata()
    assert meta["utt_id"] == "a" and meta["sample_rate"] == "16000"


def test_all_good_exits_zero(corpus, tmp_path, capsys):
    code, err = _run(
        [str(corpus / "a.wav"), str(corpus / "b.wav"), "--out", str(tmp_path / "o")], capsys
    )
    assert code == 0
    assert "wrote 2 feature files" in err and "failed" not in err


def test_manifest_segments_and_errors(corpus, tmp_path, capsys):
    lines = [
        {"audio_filepath": "wavs/a.wav", "duration": 1.0, "text": "WHOLE", "utt_id": "spk/u1"},
        {"audio_filepath": "wavs/a.wav", "offset": 0.25, "duration": 0.5, "text": "PART"},
        {"audio_filepath": "wavs/missing.wav", "duration": 1.0, "text": "X", "utt_id": "gone"},
        {"audio_filepath": "wavs/b.wav", "duration": 0.001, "text": "TINY", "utt_id": "tiny"},
        {"audio_filepath": "wavs/b.wav", "duration": 0.5, "text": "DUP", "utt_id": "spk/u1"},
    ]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "feats"
    code, err = _run([str(manifest), "--out", str(out)], capsys)
    assert code == 1
    assert "3 input(s) failed:" in err
    assert f"{manifest}:3: " in err and "missing.wav: no such file" in err
    assert f"{manifest}:4: " in err and "too short for one frame" in err
    assert f"{manifest}:5: duplicate utterance id 'spk/u1' (also from {manifest}:1)" in err
    index = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert [(e["utt_id"], e["text"]) for e in index] == [("spk/u1", "WHOLE"), ("a@0.25", "PART")]
    assert (
        index[0]["features_filepath"]
        == safe_name("spk/u1") + ".safetensors"
        == "spk_u1.safetensors"
    )
    full, _ = load_audio(corpus / "a.wav")
    segment = load_features(out / "a@0.25.safetensors")
    reference = _kaldi_fbank(full[4000:12000])
    assert torch.max(torch.abs(segment - reference)) < 1e-3


def test_bad_inputs_and_config(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, err = _run(
        [str(tmp_path / "empty"), str(tmp_path / "nope.wav"), "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and len(err.strip().splitlines()) == 1  # nothing to do: one line
    assert "empty: no audio files" in err and "nope.wav: no such file or folder" in err
    assert not (tmp_path / "o").exists()  # no empty index.jsonl (README's audio.flac did that)
    (tmp_path / "bad.jsonl").write_text('{"audio_filepath": "x.wav"}\n')
    code, err = _run(
        [str(tmp_path / "bad.jsonl"), "--out", str(tmp_path / "o"), "--overwrite"], capsys
    )
    assert code == 2 and "bad.jsonl:1" in err
    assert (
        main(
            [
                "features",
                "--config",
                str(tmp_path / "none.yaml"),
                "x.wav",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.startswith("error: ")


def test_out_is_checked_before_the_work_and_never_clobbered(corpus, tmp_path, capsys):
    """``--out`` into a folder of other files, or an unwritable one, failed late or wrote
    into it (issue 17, items 9 and 10); a previous features folder needs --overwrite."""
    user = tmp_path / "notes"
    user.mkdir()
    (user / "thesis.txt").write_text("mine\n")
    (user / "a.safetensors").write_bytes(b"not features")
    for extra in ([], ["--overwrite"]):
        code, err = _run([str(corpus), "--out", str(user), *extra], capsys)
        assert code == 2 and err.startswith(f"error: {user}: not a features folder"), err
        assert err.count("\n") == 1
        assert sorted(p.name for p in user.iterdir()) == ["a.safetensors", "thesis.txt"]
        assert (user / "a.safetensors").read_bytes() == b"not features"
    unwritable = tmp_path / "file" / "out"
    (tmp_path / "file").write_text("a file\n")
    code, err = _run([str(corpus), "--out", str(unwritable)], capsys)
    assert code == 2 and err.startswith(f"error: {unwritable}") and err.count("\n") == 1, err
    out = tmp_path / "feats"
    assert (
        _run([str(corpus / "a.wav"), str(corpus / "broken.wav"), "--out", str(out)], capsys)[0] == 1
    )
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, err = _run([str(corpus / "b.wav"), "--out", str(out)], capsys)
    assert code == 2 and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _run([str(corpus / "b.wav"), "--out", str(out), "--overwrite"], capsys)[0] == 0
    assert not (out / "failures.txt").exists()  # the old run's list no longer applies
    index = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert [e["utt_id"] for e in index] == ["b"]


@pytest.mark.parametrize("rate", [1, 7])
def test_absurd_header_rate_fails_alone_without_amplification(corpus, tmp_path, capsys, rate):
    """An 8 KB WAV claiming 1 Hz became 64 M samples and 123 MB of features (issue 17 item 10)."""
    sf.write(str(corpus / "low.wav"), _speechlike(0.25, 16000, 4), rate, subtype="PCM_16")
    out = tmp_path / "feats"
    code, err = _run([str(corpus), "--out", str(out)], capsys)
    assert code == 1 and f"{corpus / 'low.wav'}: sample rate {rate} Hz is below" in err
    assert not (out / "low.safetensors").exists() and (out / "a.safetensors").is_file()


def test_load_features_errors(tmp_path):
    with pytest.raises(FeatureError, match="no such features file"):
        load_features(tmp_path / "x.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk" * 10)
    with pytest.raises(FeatureError, match="not a safetensors features file"):
        load_features(tmp_path / "junk.safetensors")


def test_real_ljspeech_file_resampled(shared_data, tmp_path, capsys):
    wav = sorted((shared_data / "ljspeech-sample").rglob("*.wav"))[1]
    code, _ = _run([str(wav), "--out", str(tmp_path / "o")], capsys)
    assert code == 0
    feats = load_features(tmp_path / "o" / f"{wav.stem}.safetensors")
    samples, _ = load_audio(wav, sample_rate=16000)
    assert torch.max(torch.abs(feats - _kaldi_fbank(samples))) < 1e-3
