"""asr.io.audio: round trips through every format soundfile writes, segments, resampling, errors."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from asr.errors import AsrError
from asr.io.audio import (
    AudioError,
    AudioInfo,
    Waveform,
    audio_info,
    load_audio,
    resample,
    save_audio,
)

RNG = np.random.default_rng(1234)


def _test_signal(rate: int, seconds: float = 1.0, channels: int = 1) -> np.ndarray:
    """Two sines plus a little noise, peak < 0.8: (samples,) or (samples, channels) float64."""
    t = np.arange(round(rate * seconds)) / rate
    base = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1234 * t)
    base = base + 0.01 * RNG.standard_normal(t.shape)
    if channels == 1:
        return base
    return np.stack([base * (0.3 + 0.5 * c / channels) for c in range(channels)], axis=1)


# (format, subtype, suffix, max abs error vs written samples)
LOSSLESS = [
    ("WAV", "PCM_16", ".wav", 1 / 2**15),
    ("WAV", "PCM_24", ".wav", 1 / 2**23),
    ("WAV", "PCM_32", ".wav", 1 / 2**31 + 1e-7),  # read as float32: ~6e-8 rounding
    ("WAV", "PCM_U8", ".wav", 1 / 2**7),
    ("WAV", "FLOAT", ".wav", 1e-7),
    ("WAV", "DOUBLE", ".wav", 1e-7),  # returned as float32
    ("FLAC", "PCM_16", ".flac", 1 / 2**15),
    ("FLAC", "PCM_24", ".flac", 1 / 2**23),
    ("FLAC", "PCM_S8", ".flac", 1 / 2**7),
]

# Lossy codecs: (format, subtype, suffix, rate, max abs error away from the edges)
LOSSY = [
    ("OGG", "VORBIS", ".ogg", 16000, 0.06),
    ("OGG", "OPUS", ".opus", 48000, 0.06),
    ("MP3", "MPEG_LAYER_III", ".mp3", 16000, 0.06),
    ("MP3", "MPEG_LAYER_III", ".mp3", 44100, 0.06),
]


def _write(path: Path, data: np.ndarray, rate: int, fmt: str, subtype: str) -> Path:
    sf.write(str(path), data, rate, format=fmt, subtype=subtype)
    return path


def _error_message(path: Path, **kwargs) -> str:
    """load_audio's AudioError message; checks it is one line naming the path."""
    with pytest.raises(AudioError) as info:
        load_audio(path, **kwargs)
    message = str(info.value)
    assert isinstance(info.value, AsrError)
    assert str(path) in message
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("fmt", "subtype", "suffix", "tol"), LOSSLESS)
def test_lossless_round_trip(tmp_path, fmt, subtype, suffix, tol):
    x = _test_signal(16000, 0.5)
    path = _write(tmp_path / f"x{suffix}", x, 16000, fmt, subtype)
    y, rate = load_audio(path)
    assert rate == 16000
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.max(np.abs(y - x)) <= tol
    info = audio_info(path)
    assert info == AudioInfo(16000, len(x), 1, len(x) / 16000, fmt, subtype)


@pytest.mark.parametrize(("fmt", "subtype", "suffix", "rate", "tol"), LOSSY)
def test_lossy_round_trip(tmp_path, fmt, subtype, suffix, rate, tol):
    x = _test_signal(rate, 1.0)
    path = _write(tmp_path / f"x{suffix}", x, rate, fmt, subtype)
    y, got_rate = load_audio(path)
    assert got_rate == rate and y.dtype == np.float32
    assert abs(len(y) - len(x)) <= 1152
    n = min(len(x), len(y))
    edge = rate // 10
    assert np.max(np.abs(y[edge : n - edge] - x[edge : n - edge])) <= tol


@pytest.mark.parametrize(
    ("fmt", "subtype", "suffix", "rate"),
    [(f, s, x, 16000) for f, s, x, _ in LOSSLESS[:1] + LOSSLESS[6:7]]
    + [(f, s, x, r) for f, s, x, r, _ in LOSSY[:3]],
)
def test_segment_equals_slice_of_full_read(tmp_path, fmt, subtype, suffix, rate):
    path = _write(tmp_path / f"x{suffix}", _test_signal(rate, 3.0), rate, fmt, subtype)
    full, _ = load_audio(path)
    for offset_s, duration_s in [(0.0, 0.5), (0.25, 0.3), (1.7, 1.0), (2.5, None)]:
        segment, got_rate = load_audio(path, offset_s=offset_s, duration_s=duration_s)
        start = round(offset_s * rate)
        stop = len(full) if duration_s is None else start + round(duration_s * rate)
        assert got_rate == rate
        # Lossy decoders may differ in the last float bit when started at another position.
        atol = 0.0 if fmt in ("WAV", "FLAC") else 1e-6
        np.testing.assert_allclose(segment, full[start:stop], rtol=0, atol=atol)


def test_segment_is_read_by_seeking(tmp_path, monkeypatch):
    """A segment read decodes only the segment: SoundFile.read is asked for its length only."""
    path = _write(tmp_path / "x.flac", _test_signal(16000, 3.0), 16000, "FLAC", "PCM_16")
    asked: list[int] = []
    original = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        asked.append(frames)
        return original(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    load_audio(path, offset_s=2.0, duration_s=0.5)
    assert asked == [8000]


def test_segment_end_tolerance(tmp_path):
    path = _write(tmp_path / "x.wav", _test_signal(16000, 1.0), 16000, "WAV", "PCM_16")
    y, _ = load_audio(path, offset_s=0.5, duration_s=0.51)  # 10 ms past the end: clamped
    assert len(y) == 8000
    assert "beyond the end" in _error_message(path, offset_s=0.5, duration_s=0.6)
    assert "beyond the end" in _error_message(path, offset_s=1.0)
    assert "offset_s" in _error_message(path, offset_s=-0.1)
    assert "duration_s" in _error_message(path, duration_s=0.0)
    assert "duration_s" in _error_message(path, duration_s=math.nan)


@pytest.mark.parametrize(
    ("fmt", "subtype", "suffix"),
    [("WAV", "PCM_16", ".wav"), ("FLAC", "PCM_24", ".flac"), ("OGG", "VORBIS", ".ogg")],
)
def test_mixes_channels_to_mono(tmp_path, fmt, subtype, suffix):
    x = _test_signal(16000, 0.5, channels=3)
    path = _write(tmp_path / f"x{suffix}", x, 16000, fmt, subtype)
    assert audio_info(path).channels == 3
    y, _ = load_audio(path)
    per_channel, _ = sf.read(str(path), dtype="float32")
    np.testing.assert_allclose(y, per_channel.mean(axis=1), atol=1e-7)
    if fmt != "OGG":
        np.testing.assert_allclose(y, x.mean(axis=1), atol=3 / 2**15)


def test_phase_inverted_stereo_uses_one_channel_with_a_warning(tmp_path, capsys):
    """Issue 25 item 4: channels in opposite phase averaged to silence (an empty transcript), with
    no warning."""
    rng = np.random.default_rng(0)
    voice = (0.3 * rng.standard_normal(8000)).astype(np.float32)
    stereo = np.stack([voice, -0.9 * voice], axis=1)
    path = tmp_path / "inverted.wav"
    save_audio(path, stereo, 16000, subtype="FLOAT")
    y, _ = load_audio(path)
    np.testing.assert_allclose(y, voice, atol=1e-7)  # channel 1, the louder, not ~0
    err = capsys.readouterr().err
    assert "inverted.wav" in err and "channel 1" in err and err.count("\n") == 1, err
    ordinary = tmp_path / "ordinary.wav"  # correlated channels: still averaged, silently
    save_audio(ordinary, np.stack([voice, 0.5 * voice], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(ordinary)[0], 0.75 * voice, atol=1e-7)
    assert capsys.readouterr().err == ""


def _peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


@pytest.mark.parametrize(
    ("orig", "new"), [(16000, 8000), (8000, 16000), (22050, 16000), (44100, 16000)]
)
def test_resample_against_scipy(orig, new):
    x = _test_signal(orig, 1.0)
    y = resample(x, orig, new)
    assert y.dtype == np.float32 and len(y) == round(len(x) * new / orig)
    g = math.gcd(orig, new)
    reference = signal.resample_poly(x, new // g, orig // g)
    n = min(len(y), len(reference))
    error = (y[:n] - reference[:n])[n // 20 : -n // 20]
    snr_db = 10 * np.log10(np.sum(reference[:n] ** 2) / np.sum(error**2))
    assert snr_db > 40
    assert abs(_peak_hz(y, new) - 440) < 2.0


def test_resample_equal_rates_and_validation():
    x = _test_signal(16000, 0.1).astype(np.float32)
    y = resample(x, 16000, 16000)
    np.testing.assert_array_equal(x, y)
    assert y is not x
    assert resample(np.zeros(0), 16000, 8000).shape == (0,)
    assert resample(np.zeros((1600, 2)), 16000, 8000).shape == (800, 2)
    with pytest.raises(ValueError, match="new_rate"):
        resample(x, 16000, 0)
    with pytest.raises(ValueError, match="orig_rate"):
        resample(x, 16000.5, 8000)


def test_load_with_sample_rate_resamples(tmp_path):
    x = _test_signal(22050, 1.0)
    path = _write(tmp_path / "x.wav", x, 22050, "WAV", "FLOAT")
    y, rate = load_audio(path, sample_rate=16000)
    assert rate == 16000
    np.testing.assert_allclose(y, resample(x.astype(np.float32), 22050, 16000), atol=1e-6)
    segment, _ = load_audio(path, sample_rate=16000, offset_s=0.5, duration_s=0.25)
    assert len(segment) == 4000


@pytest.mark.parametrize(
    ("suffix", "subtype"), [(".wav", None), (".flac", "PCM_24"), (".wav", "FLOAT")]
)
def test_save_audio_round_trip_and_atomic(tmp_path, suffix, subtype):
    x = _test_signal(16000, 0.5).astype(np.float32)
    path = tmp_path / "sub" / f"out{suffix}"
    save_audio(path, x, 16000, subtype=subtype)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind
    y, rate = load_audio(path)
    assert rate == 16000
    np.testing.assert_allclose(y, x, atol=1 / 2**15)
    assert audio_info(path).subtype == (subtype or "PCM_16")


def test_save_audio_clips_pcm_and_rejects_bad_input(tmp_path):
    save_audio(tmp_path / "c.wav", np.array([1.5, -2.0, 0.25]), 8000)
    y, _ = sf.read(str(tmp_path / "c.wav"), dtype="float32")
    np.testing.assert_allclose(y, [32767 / 32768, -1.0, 0.25])
    for name, data in [
        ("a.mp3", np.zeros(10)),
        ("b.wav", np.array([0.0, np.nan])),
        ("e.wav", np.zeros(0)),
    ]:
        with pytest.raises(AudioError, match=name):
            save_audio(tmp_path / name, data, 8000)
    assert not (tmp_path / "b.wav").exists()


# ---------------------------------------------------------------- errors


def test_missing_file_and_directory(tmp_path):
    assert "no such file" in _error_message(tmp_path / "nope.wav")
    assert "directory" in _error_message(tmp_path)
    with pytest.raises(AudioError, match="no such file"):
        audio_info(tmp_path / "nope.flac")


def test_empty_and_garbage_files(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    assert "empty file" in _error_message(tmp_path / "empty.wav")
    garbage = RNG.integers(0, 256, 5000, dtype=np.uint8).tobytes()
    for name in ("g.wav", "g.flac", "g.mp3", "g.ogg"):
        (tmp_path / name).write_bytes(garbage)
        message = _error_message(tmp_path / name)
        assert "corrupt" in message or "unsupported" in message


def test_unsupported_format(tmp_path):
    (tmp_path / "notes.txt").write_text("hello, this is not audio\n" * 50)
    assert "unsupported audio format '.txt'" in _error_message(tmp_path / "notes.txt")


def test_zero_length_audio(tmp_path):
    for name, fmt in (("z.wav", "WAV"), ("z.flac", "FLAC")):
        _write(tmp_path / name, np.zeros(0), 16000, fmt, "PCM_16")
        message = _error_message(tmp_path / name)
        assert "zero-length" in message or "empty file" in message


@pytest.mark.parametrize(
    ("fmt", "subtype", "suffix"),
    [
        ("WAV", "PCM_16", ".wav"),
        ("WAV", "FLOAT", ".wav"),
        ("FLAC", "PCM_16", ".flac"),
        ("OGG", "VORBIS", ".ogg"),
        ("MP3", "MPEG_LAYER_III", ".mp3"),
    ],
)
def test_truncated_files(tmp_path, fmt, subtype, suffix):
    path = _write(tmp_path / f"x{suffix}", _test_signal(16000, 2.0), 16000, fmt, subtype)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = _error_message(path)
    assert "truncated" in message or "corrupt" in message or "malformed" in message


def test_wav_data_chunk_parser_accepts_complete_files_with_extra_chunks(tmp_path):
    """A LIST chunk after the data chunk must not be mistaken for truncation."""
    path = _write(tmp_path / "x.wav", _test_signal(8000, 0.2), 8000, "WAV", "PCM_16")
    info_chunk = b"INFOISFT" + struct.pack("<I", 4) + b"asr\0"
    list_chunk = b"LIST" + struct.pack("<I", len(info_chunk)) + info_chunk
    data = bytearray(path.read_bytes() + list_chunk)
    data[4:8] = struct.pack("<I", len(data) - 8)
    path.write_bytes(bytes(data))
    y, _ = load_audio(path)
    assert len(y) == 1600


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_samples(tmp_path, bad):
    x = _test_signal(16000, 0.5)
    x[4000] = bad
    path = _write(tmp_path / "bad.wav", x, 16000, "WAV", "FLOAT")
    message = _error_message(path)
    assert "NaN or Inf" in message and "0.2500 s" in message
    y, _ = load_audio(path, offset_s=0.3)  # a segment after the bad sample is fine
    assert len(y) == 3200


# ---------------------------------------------------------------- real files


def test_librispeech_flac(shared_data):
    files = sorted((shared_data / "librispeech-samples").rglob("*.flac"))[:3]
    assert files
    for path in files:
        info = audio_info(path)
        assert (info.sample_rate, info.channels, info.format) == (16000, 1, "FLAC")
        full, rate = load_audio(path)
        assert rate == 16000 and len(full) == info.num_samples
        assert 0 < np.max(np.abs(full)) <= 1.0
        segment, _ = load_audio(path, offset_s=1.0, duration_s=0.5)
        np.testing.assert_array_equal(segment, full[16000:24000])


def test_ljspeech_wav_resampled_to_16k(shared_data):
    path = sorted((shared_data / "ljspeech-sample").rglob("*.wav"))[0]
    info = audio_info(path)
    assert (info.sample_rate, info.subtype) == (22050, "PCM_16")
    native, _ = load_audio(path)
    y, rate = load_audio(path, sample_rate=16000)
    assert rate == 16000 and len(y) == round(info.num_samples * 16000 / 22050)
    reference = signal.resample_poly(native.astype(np.float64), 320, 441)[: len(y)]
    # The two anti-aliasing filters differ in their transition band (7-8 kHz); compare below it.
    low_pass = signal.butter(8, 7000, fs=16000, output="sos")
    ours, theirs = (signal.sosfiltfilt(low_pass, v) for v in (y.astype(np.float64), reference))
    error = (ours - theirs)[1000:-1000]
    snr_db = 10 * np.log10(np.sum(theirs[1000:-1000] ** 2) / np.sum(error**2))
    assert snr_db > 40


@pytest.mark.parametrize("rate", [1, 3, 7, 1000, 3999])
def test_header_rate_below_the_minimum_is_an_error(tmp_path, rate):
    """An 8 KB WAV claiming 1 Hz was resampled to 64 M samples (900 MB RSS in ``asr features``,
    issue 17 item 10); rates this low are a corrupt or hostile header, refused from the header
    alone, before any sample is decoded."""
    from asr.io.audio import MIN_SAMPLE_RATE_HZ

    path = _write(tmp_path / "low.wav", _test_signal(8000, 0.5), rate, "WAV", "PCM_16")
    message = _error_message(path, sample_rate=16000)
    assert f"{rate} Hz is below {MIN_SAMPLE_RATE_HZ} Hz" in message
    with pytest.raises(AudioError, match="is below"):
        audio_info(path)
    ok = _write(tmp_path / "ok.wav", _test_signal(8000, 0.5), MIN_SAMPLE_RATE_HZ, "WAV", "PCM_16")
    y, got = load_audio(ok, sample_rate=16000)
    assert got == 16000 and len(y) == 4 * 4000


def test_waveform_reads_like_a_float_wav(tmp_path):
    """Audio in memory (an array given to asr.transcribe) reads exactly as the same samples
    written to a 32-bit float WAV: segments, resampling, end tolerance and errors."""
    samples = _test_signal(16000, 2.0).astype(np.float32)
    path = tmp_path / "a.wav"
    sf.write(path, samples, 16000, subtype="FLOAT")
    wave = Waveform(samples, 16000, "<array>")
    info = audio_info(wave)
    assert (info.sample_rate, info.num_samples, info.channels) == (16000, 32000, 1)
    assert info.duration_s == audio_info(path).duration_s
    for args in [(None,), (16000, 0.25, 1.0), (8000, 0.5), (22050, 1.99, 0.02)]:
        ours, rate = load_audio(wave, *args)
        theirs, their_rate = load_audio(path, *args)
        assert rate == their_rate and np.array_equal(ours, theirs)
    ours, _ = load_audio(wave)
    ours[:] = 0.0  # a copy: the caller's array is never changed
    assert np.array_equal(wave.samples, samples)
    with pytest.raises(AudioError, match=r"^<array>: segment offset 3\.000 s is beyond"):
        load_audio(wave, offset_s=3.0)
    with pytest.raises(AudioError, match=r"^<array>: 1 NaN"):
        load_audio(Waveform(np.array([0.0, np.nan, 0.0], dtype=np.float32), 16000))
    with pytest.raises(AudioError, match=r"^<array>: zero-length"):
        audio_info(Waveform(np.zeros(0, dtype=np.float32), 16000))
    with pytest.raises(AudioError, match="mono"):
        Waveform(np.zeros((10, 2), dtype=np.float32), 16000)
