"""Voice-activity detection: regions of a synthetic signal, streaming reads, cut points."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

import asr.inference.vad as vad_module
from asr.inference.vad import (
    Segment,
    VadConfig,
    VadError,
    VadResult,
    detect_speech,
    flags_to_regions,
    frame_energies_db,
    smooth_regions,
    split_points,
)

RATE = 16000
# (start, end) seconds of the "speech" (tone bursts) in the synthetic signal.
TRUTH = [(0.50, 1.70), (2.30, 2.65), (4.00, 6.20), (6.60, 7.30), (9.00, 9.50)]


def _signal(rate: int = RATE, seconds: float = 10.5, seed: int = 0) -> np.ndarray:
    """Tone bursts (varying level and pitch) at TRUTH over white noise at -50 dBFS."""
    rng = np.random.default_rng(seed)
    x = 0.003 * rng.standard_normal(int(seconds * rate))
    for k, (a, b) in enumerate(TRUTH):
        n = round((b - a) * rate)
        t = np.arange(n) / rate
        level = 0.05 + 0.1 * k
        x[round(a * rate) : round(a * rate) + n] += level * np.sin(2 * np.pi * (300 + 150 * k) * t)
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vad") / "tones.wav"
    sf.write(path, _signal(), RATE)
    return path


def test_energy_vad_finds_the_bursts_within_a_few_frames(tones):
    cfg = VadConfig(backend="energy", pad_s=0.0, min_silence_s=0.3)
    result = detect_speech(tones, cfg)
    assert result.backend == "energy"
    assert result.duration_s == pytest.approx(10.5)
    assert len(result.speech) == len(TRUTH), result.speech
    for seg, (a, b) in zip(result.speech, TRUTH):
        assert abs(seg.start - a) <= 0.03 and abs(seg.end - b) <= 0.03, (seg, a, b)


def test_padding_bridging_and_min_speech(tones):
    padded = detect_speech(tones, VadConfig(backend="energy", pad_s=0.1))
    assert [round(s.start, 2) for s in padded.speech][:2] == [0.4, 2.2]
    # pauses of 0.4 s (6.2-6.6) are bridged when min_silence_s is 0.5
    bridged = detect_speech(tones, VadConfig(backend="energy", pad_s=0.0, min_silence_s=0.5))
    assert len(bridged.speech) == len(TRUTH) - 1
    # bursts shorter than 0.4 s (the 0.35 s one) are dropped
    long_only = detect_speech(tones, VadConfig(backend="energy", pad_s=0.0, min_speech_s=0.4))
    assert len(long_only.speech) == len(TRUTH) - 1


def test_other_rates_channels_and_segments(tmp_path):
    x = _signal(rate=22050)
    path = tmp_path / "stereo.flac"
    sf.write(path, np.stack([x, 0.5 * x], axis=1), 22050)
    cfg = VadConfig(backend="energy", pad_s=0.0)
    result = detect_speech(path, cfg)
    assert abs(result.frame_s - 0.01) < 1e-3
    for seg, (a, b) in zip(result.speech, TRUTH):
        assert abs(seg.start - a) <= 0.03 and abs(seg.end - b) <= 0.03
    part = detect_speech(path, cfg, offset_s=3.0, duration_s=5.0)
    assert part.duration_s == pytest.approx(5.0, abs=1e-3)
    assert [(round(s.start, 1), round(s.end, 1)) for s in part.speech] == [(1.0, 3.2), (3.6, 4.3)]


def test_reads_in_blocks_and_equals_one_block(tones, monkeypatch):
    reads = []
    real = vad_module.load_audio

    def spy(path, sample_rate=None, offset_s=0.0, duration_s=None):
        reads.append(duration_s)
        return real(path, sample_rate, offset_s, duration_s)

    monkeypatch.setattr(vad_module, "load_audio", spy)
    small = detect_speech(tones, VadConfig(backend="energy", block_s=1.0))
    assert len(reads) == 11 and all(d is not None and d <= 1.0 + 1e-9 for d in reads)
    reads.clear()
    whole = detect_speech(tones, VadConfig(backend="energy", block_s=60.0))
    assert len(reads) == 1
    np.testing.assert_array_equal(small.energies_db, whole.energies_db)
    assert small.speech == whole.speech


def test_frame_energy_matches_direct_computation():
    x = np.random.default_rng(1).uniform(-0.5, 0.5, 1005)
    db = frame_energies_db(x, 100)
    assert len(db) == 11
    assert db[3] == pytest.approx(10 * np.log10(np.mean(x[300:400] ** 2)), abs=1e-4)
    assert db[10] == pytest.approx(10 * np.log10(np.mean(x[1000:] ** 2)), abs=1e-4)
    assert frame_energies_db(np.zeros(200), 100).tolist() == [-120.0, -120.0]


def test_region_helpers():
    flags = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1], dtype=bool)
    assert flags_to_regions(flags) == [(1, 3), (5, 6), (10, 14)]
    # gap 3-5 (2 frames) bridged, gap 6-10 kept; then 1-frame bursts dropped; pad 1
    assert smooth_regions([(1, 3), (5, 6), (10, 14)], 14, 3, 2, 1) == [(0, 7), (9, 14)]
    assert smooth_regions([(1, 2), (10, 14)], 14, 1, 2, 0) == [(10, 14)]


def test_webrtc_backend(tones):
    pytest.importorskip("webrtcvad")
    result = detect_speech(tones, VadConfig(backend="webrtc", pad_s=0.0))
    assert result.backend == "webrtc"
    # WebRTC keeps speech on for ~0.1 s after it ends, so short pauses may be bridged: every
    # burst lies inside a region, and every region starts at a burst.
    for a, b in TRUTH:
        assert any(s.start <= a + 0.03 and s.end >= b - 0.03 for s in result.speech), (a, b)
    starts = [a for a, _ in TRUTH]
    for seg in result.speech:
        assert min(abs(seg.start - a) for a in starts) <= 0.05, seg
        assert seg.end - seg.start < 4.0


@pytest.mark.parametrize("rate", [1, 3, 7])
def test_absurd_header_rate_is_a_one_line_audio_error(tmp_path, rate):
    """A WAV claiming 1, 3 or 7 Hz crashed the WebRTC backend with ``ValueError: negative
    dimensions are not allowed`` (issue 17, item 5)."""
    from asr.io.audio import AudioError

    pytest.importorskip("webrtcvad")
    path = tmp_path / f"r{rate}.wav"
    noise = np.random.default_rng(0).uniform(-0.3, 0.3, 4000).astype(np.float32)
    sf.write(path, noise, rate, subtype="PCM_16")
    for backend in ("webrtc", "energy"):
        with pytest.raises(AudioError, match=f"{rate} Hz is below") as err:
            detect_speech(path, VadConfig(backend=backend))
        assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("samples", [111 * 1000, 35 * 11070])
def test_webrtc_at_a_rate_whose_frame_rounds_up(tmp_path, samples):
    """At 11070 Hz a 10 ms frame is 111 samples (110.7 rounded up), so a block of whole frames
    resampled to 16 kHz holds more samples than its frames: this crashed the WebRTC backend
    (``negative dimensions``) for any such file longer than one 30 s block."""
    pytest.importorskip("webrtcvad")
    rate = 11070
    path = tmp_path / "odd.wav"
    sf.write(path, _signal(rate, 35.0)[:samples], rate, subtype="PCM_16")
    result = detect_speech(path, VadConfig(backend="webrtc", pad_s=0.0))
    assert result.backend == "webrtc"
    assert len(result.energies_db) == -(-samples // 111)
    assert result.speech and result.speech[0].start == pytest.approx(0.5, abs=0.05)


def test_webrtc_missing_is_a_clear_error(tones, monkeypatch):
    monkeypatch.setattr(vad_module, "webrtc_available", lambda: False)
    with pytest.raises(VadError, match="webrtcvad"):
        detect_speech(tones, VadConfig(backend="webrtc"))
    assert detect_speech(tones, VadConfig(backend="auto")).backend == "energy"
    with pytest.raises(ValueError):
        VadConfig(backend="loud")


def _result(speech: list[tuple[float, float]], duration: float, seed: int = 0) -> VadResult:
    """A VadResult with 10 ms frames: loud (-20 dB) in speech, random low energy elsewhere."""
    frames = round(duration / 0.01)
    rng = np.random.default_rng(seed)
    energies = (-60 + 5 * rng.standard_normal(frames)).astype(np.float32)
    for a, b in speech:
        energies[round(a / 0.01) : round(b / 0.01)] = -20 + rng.standard_normal(
            round(b / 0.01) - round(a / 0.01)
        )
    segs = tuple(Segment(a, b) for a, b in speech)
    return VadResult(duration, 0.01, energies, np.full(frames, -60, np.float32), segs, "energy")


def test_split_points_cut_in_the_longest_late_pause():
    speech = [(0.5, 3.0), (3.2, 6.0), (7.0, 9.0), (9.3, 12.0), (12.2, 20.0)]
    cuts = split_points(_result(speech, 21.0), max_chunk_s=10.0)
    # window 0-10: pauses 3.0-3.2 (early half), 6.0-7.0 and 9.0-9.3: the longest late one wins
    assert cuts[:2] == [0.0, 6.5]
    assert cuts[-1] == 21.0
    assert all(b - a <= 10.0 + 1e-9 for a, b in itertools.pairwise(cuts))


def test_split_points_forced_cut_at_lowest_energy():
    result = _result([(0.0, 25.0)], 25.0)
    result.energies_db[730] = -90.0  # the quietest frame of the window's second half
    cuts = split_points(result, max_chunk_s=10.0)
    assert cuts[1] == pytest.approx(7.3)
    assert all(b - a <= 10.0 + 1e-9 for a, b in itertools.pairwise(cuts))
    assert split_points(_result([(1.0, 2.0)], 5.0), 10.0) == [0.0, 5.0]
    with pytest.raises(VadError):
        split_points(result, 0.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.05, 8.0), st.floats(0.05, 2.0)), min_size=1, max_size=25),
    st.floats(2.0, 30.0),
)
def test_split_points_never_exceed_max_and_cut_in_pauses(pieces, max_chunk):
    speech, t = [], 0.2
    for talk, pause in pieces:
        speech.append((round(t, 2), round(t + talk, 2)))
        t += talk + pause
    duration = round(t, 2)
    result = _result(speech, duration)
    cuts = split_points(result, max_chunk)
    assert cuts[0] == 0.0 and cuts[-1] == duration
    assert all(0 < b - a <= max_chunk + 1e-9 for a, b in itertools.pairwise(cuts))
    gaps = vad_module.pauses(result)
    for pos, cut in itertools.pairwise(cuts[:-1]):
        in_pause = any(g.start <= cut <= g.end for g in gaps)
        window_has_pause = any(
            g.start < pos + max_chunk
            and min((max(g.start, pos) + g.end) / 2, pos + max_chunk) > pos + 1.0
            for g in gaps
        )
        if window_has_pause and max_chunk >= 4.0:
            assert in_pause, (cut, pos, gaps)
