"""Augmentation: speed perturbation, noise at an SNR, reverberation, SpecAugment."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from asr import config
from asr.data.augment import (
    AugmentConfig,
    AugmentError,
    SpecAugment,
    WaveformAugmenter,
    add_noise,
    apply_rir,
    fit_length,
    normalize_rir,
    spec_augment,
    spec_augment_masks,
    speed_perturb,
    synthetic_rir,
)
from asr.io.audio import save_audio

RATE = 16000


def sine(freq_hz: float, seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def peak_frequency(x: np.ndarray, rate: int = RATE) -> float:
    """Dominant frequency with parabolic interpolation of the log-magnitude peak."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), 8 * len(x)))
    k = int(np.argmax(spec))
    a, b, c = np.log(spec[k - 1 : k + 2])
    k_frac = k + 0.5 * (a - c) / (a - 2 * b + c)
    return k_frac * rate / (8 * len(x))


def runs(mask: np.ndarray) -> list[int]:
    """Lengths of the runs of True in a 1-D bool array."""
    padded = np.concatenate([[False], mask, [False]]).astype(int)
    edges = np.flatnonzero(np.diff(padded))
    return list(edges[1::2] - edges[::2])


# ---- speed -----------------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [0.9, 1.0, 1.1])
def test_speed_perturb_changes_length_and_pitch(factor: float) -> None:
    x = sine(440.0)
    y = speed_perturb(x, factor, RATE)
    assert y.dtype == np.float32
    assert abs(len(y) - len(x) / factor) <= 1
    assert peak_frequency(y) == pytest.approx(440.0 * factor, abs=0.5)
    # amplitude kept away from the edges (band-limited resampling of an in-band tone)
    middle = y[len(y) // 4 : 3 * len(y) // 4]
    assert np.abs(middle).max() == pytest.approx(0.5, abs=0.01)


# ---- noise -----------------------------------------------------------------------------------


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 7.5, 20.0, 40.0])
def test_add_noise_realises_requested_snr(snr_db: float) -> None:
    rng = np.random.default_rng(0)
    x = sine(300.0, 2.0) + 0.05 * rng.standard_normal(2 * RATE).astype(np.float32)
    short_noise = rng.uniform(-0.1, 0.1, size=5000).astype(np.float32)  # looped to length
    noise = fit_length(short_noise, len(x), rng)
    y = add_noise(x, noise, snr_db)
    added = y.astype(np.float64) - x
    realised = 10 * math.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(added**2))
    assert realised == pytest.approx(snr_db, abs=0.1)


def test_fit_length_crops_and_loops() -> None:
    rng = np.random.default_rng(1)
    noise = np.arange(10, dtype=np.float32)
    crop = fit_length(noise, 4, rng)
    assert len(crop) == 4 and np.all(np.diff(crop) == 1)
    looped = fit_length(noise, 25, rng)
    assert len(looped) == 25
    start = int(looped[0])
    assert np.array_equal(looped, (np.arange(25) + start) % 10)


def test_add_noise_silent_signal_is_unchanged() -> None:
    x = np.zeros(100, dtype=np.float32)
    assert np.array_equal(add_noise(x, np.ones(100, dtype=np.float32), 10.0), x)


# ---- reverberation ---------------------------------------------------------------------------


def test_unit_impulse_is_identity() -> None:
    x = np.random.default_rng(2).standard_normal(3000).astype(np.float32)
    assert np.allclose(apply_rir(x, np.array([1.0], dtype=np.float32)), x, atol=1e-6)
    delta = np.zeros(400, dtype=np.float32)
    delta[0] = 1.0
    assert np.allclose(apply_rir(x, delta), x, atol=1e-6)
    # a file-style RIR with a delay before a scaled peak is normalised to the same delta
    delayed = np.concatenate([np.zeros(37), [0.3], np.zeros(50)])
    assert np.allclose(apply_rir(x, normalize_rir(delayed)), x, atol=1e-6)


def test_apply_rir_matches_direct_convolution() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(1000)
    h = rng.standard_normal(257)
    assert np.allclose(apply_rir(x, h), np.convolve(x, h)[:1000], atol=1e-4)


@pytest.mark.parametrize("rt60", [0.2, 0.5, 0.9])
def test_synthetic_rir_decay_matches_rt60(rt60: float) -> None:
    rir = synthetic_rir(rt60, RATE, np.random.default_rng(4), drr_db=5.0)
    assert rir[0] == 1.0
    tail = rir[1:].astype(np.float64)
    assert 10 * math.log10(1.0 / np.sum(tail**2)) == pytest.approx(5.0, abs=1e-3)
    # Schroeder backward integration; T20 fit between -5 and -25 dB, extrapolated to 60 dB.
    edc = np.cumsum((tail**2)[::-1])[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    sel = (edc_db <= -5) & (edc_db >= -25)
    t = np.arange(len(tail))[sel] / RATE
    slope = np.polyfit(t, edc_db[sel], 1)[0]
    assert -60.0 / slope == pytest.approx(rt60, rel=0.1)


# ---- the augmenter ---------------------------------------------------------------------------


def test_waveform_augmenter_is_reproducible(tmp_path: Path) -> None:
    noise_path = tmp_path / "noise.wav"
    save_audio(noise_path, np.random.default_rng(5).uniform(-0.5, 0.5, 8000), RATE)
    cfg = AugmentConfig(
        speed_factors=(0.9, 1.0, 1.1),
        noise_prob=1.0,
        noise_files=(str(noise_path),),
        reverb_prob=0.5,
    )
    aug = WaveformAugmenter(cfg, RATE)
    x = sine(200.0, 1.5)
    a = aug(x, np.random.default_rng([1, 2, 3]))
    b = aug(x, np.random.default_rng([1, 2, 3]))
    assert np.array_equal(a, b)
    outs = [aug(x, np.random.default_rng([1, 2, i])) for i in range(12)]
    assert len({len(o) for o in outs}) > 1  # speed factors vary the length
    assert any(not np.array_equal(o, a) for o in outs)


def test_noise_manifest_and_bad_noise_file(tmp_path: Path) -> None:
    noise_path = tmp_path / "n.wav"
    save_audio(noise_path, np.random.default_rng(6).uniform(-0.5, 0.5, 40000), RATE)
    manifest = tmp_path / "noise.jsonl"
    manifest.write_text(
        f'{{"audio_filepath": "{noise_path}", "duration": 1.0, "offset": 0.5, "text": ""}}\n'
    )
    aug = WaveformAugmenter(AugmentConfig(noise_prob=1.0, noise_manifest=str(manifest)), RATE)
    y = aug(sine(200.0, 3.0), np.random.default_rng(0))  # longer than the segment: looped
    assert len(y) == 3 * RATE
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(AugmentError, match=r"bad\.wav"):
        WaveformAugmenter(AugmentConfig(noise_prob=1.0, noise_files=(str(bad),)), RATE)


# ---- SpecAugment -----------------------------------------------------------------------------


def test_freq_masks_count_and_width() -> None:
    gen = torch.Generator().manual_seed(0)
    lengths = torch.full((400,), 50)
    freq, time = spec_augment_masks(lengths, 50, 80, 1, 27, 0, 0.05, generator=gen)
    assert not time.any()
    widths = [sum(runs(row.numpy())) for row in freq]
    assert all(len(runs(row.numpy())) <= 1 for row in freq)
    assert max(widths) == 27 and min(widths) == 0  # U{0..F} inclusive
    freq2, _ = spec_augment_masks(lengths, 50, 80, 2, 10, 0, 0.05, generator=gen)
    assert all(len(runs(r.numpy())) <= 2 and r.sum() <= 20 for r in freq2)


def test_time_masks_adaptive_width_and_count() -> None:
    gen = torch.Generator().manual_seed(1)
    lengths = torch.tensor([1000, 400, 100, 20] * 100)
    _, time = spec_augment_masks(lengths, 1000, 80, 0, 0, 1, 0.05, generator=gen)
    for row, length in zip(time, lengths.tolist()):
        assert not row[length:].any()
        r = runs(row.numpy())
        assert len(r) <= 1 and sum(r) <= math.floor(0.05 * length)
    widest = {n: max(int(t.sum()) for t, m in zip(time, lengths) if m == n) for n in (1000, 100)}
    assert widest == {1000: 50, 100: 5}
    # adaptive multiplicity: min(10, floor(0.01 * length)) masks -> none for 20 and 99 frames
    lengths = torch.tensor([20, 99, 1000])
    for seed in range(20):
        gen.manual_seed(seed)
        _, time = spec_augment_masks(lengths, 1000, 80, 0, 0, 10, 0.05, 0.01, generator=gen)
        assert not time[:2].any()
        assert len(runs(time[2].numpy())) <= 10
    lengths = torch.full((200,), 1000)
    _, time = spec_augment_masks(lengths, 1000, 80, 0, 0, 1, 0.5, 0.0, 7, generator=gen)
    assert max(r for row in time for r in runs(row.numpy())) == 7  # capped at T = 7


def test_spec_augment_never_touches_padding_and_is_seeded() -> None:
    feats = torch.randn(6, 120, 40)
    lengths = torch.tensor([120, 90, 60, 33, 7, 0])
    kwargs = dict(num_freq_masks=2, freq_mask_width=15, num_time_masks=5, time_mask_max_ratio=0.2)
    out = spec_augment(
        feats, lengths, **kwargs, mask_value=-3.0, generator=torch.Generator().manual_seed(9)
    )
    again = spec_augment(
        feats, lengths, **kwargs, mask_value=-3.0, generator=torch.Generator().manual_seed(9)
    )
    other = spec_augment(
        feats, lengths, **kwargs, mask_value=-3.0, generator=torch.Generator().manual_seed(10)
    )
    assert torch.equal(out, again) and not torch.equal(out, other)
    for b, n in enumerate(lengths.tolist()):
        assert torch.equal(out[b, n:], feats[b, n:])
        changed = out[b, :n] != feats[b, :n]
        assert torch.all(out[b, :n][changed] == -3.0)
    assert (out != feats).any()


def test_spec_augment_module_train_and_eval() -> None:
    cfg = AugmentConfig(spec_freq_masks=2, spec_time_masks=10, spec_time_mask_ratio=0.05)
    module = SpecAugment.from_config(cfg)
    feats = torch.randn(2, 300, 64)
    lengths = torch.tensor([300, 200])
    module.eval()
    assert module(feats, lengths) is feats
    module.train()
    torch.manual_seed(0)
    a = module(feats, lengths)
    torch.manual_seed(0)
    b = module(feats, lengths)
    assert torch.equal(a, b) and not torch.equal(a, feats)
    assert SpecAugment().train()(feats, lengths) is feats  # default: no masks


# ---- config ----------------------------------------------------------------------------------


def test_config_defaults_off_and_validation() -> None:
    cfg = AugmentConfig()
    assert not cfg.waveform_enabled and cfg.spec_freq_masks == 0 and cfg.spec_time_masks == 0
    data = {"speed_factors": [0.9, 1.0, 1.1], "spec_time_masks": 10}
    loaded = config.from_dict(AugmentConfig, data, "aug.yaml")
    assert loaded.speed_factors == (0.9, 1.0, 1.1) and loaded.waveform_enabled
    assert config.from_dict(AugmentConfig, config.to_dict(loaded)) == loaded
    with pytest.raises(config.ConfigError, match=r"aug\.yaml.*noise_prob"):
        config.from_dict(AugmentConfig, {"noise_prob": 1.0}, "aug.yaml")
    with pytest.raises(config.ConfigError, match="noise_snr_db_min"):
        config.from_dict(AugmentConfig, {"noise_snr_db_min": 30.0, "noise_snr_db_max": 5.0})
    with pytest.raises(config.ConfigError, match="speed_factors"):
        config.from_dict(AugmentConfig, {"speed_factors": [0.0]})
