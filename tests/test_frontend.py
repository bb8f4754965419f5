"""Front-end properties: shapes and lengths (hypothesis), padding invariance for every preset,
float64, short inputs, dither, normalisation, CMVN stats files, config round trips, errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asr import config as config_io
from asr.data.cmvn import accumulate_cmvn_stats
from asr.frontend import Frontend, FrontendConfig, FrontendError, compute_features
from asr.frontend import functional as F
from asr.frontend.cmvn import load_cmvn_stats, save_cmvn_stats

PRESET_DIR = Path(__file__).resolve().parents[1] / "conf" / "frontend"
PRESETS = ["kaldi_fbank80", "kaldi_mfcc13", "nemo_mel64", "librosa_mel80"]
# Framing variants: Kaldi snip_edges true/false, and centred frames.
FRAMINGS = {
    "snip": ["snip_edges=true", "center=false"],
    "nosnip": ["snip_edges=false", "center=false"],
    "center": ["snip_edges=false", "center=true"],
}
_CACHE: dict[tuple[str, str, tuple[str, ...]], Frontend] = {}


def make(preset: str, framing: str = "", extra: tuple[str, ...] = ()) -> Frontend:
    """A cached eval-mode front-end for a preset with framing and extra overrides."""
    key = (preset, framing, extra)
    if key not in _CACHE:
        overrides = FRAMINGS.get(framing, []) + list(extra)
        _CACHE[key] = Frontend.from_yaml(PRESET_DIR / f"{preset}.yaml", overrides).eval()
    return _CACHE[key]


def padded_batch(lengths: list[int], seed: int = 0) -> torch.Tensor:
    """``(batch, max)`` noise-like speech with *garbage* (large noise) beyond each length."""
    gen = torch.Generator().manual_seed(seed)
    total = max([*lengths, 1])
    waves = 0.1 * torch.randn(len(lengths), total, generator=gen)
    for i, n in enumerate(lengths):
        waves[i, n:] = 5.0 * torch.randn(total - n, generator=gen)
    return waves


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("framing", list(FRAMINGS))
def test_padding_invariance(preset: str, framing: str) -> None:
    frontend = make(preset, framing)
    lengths = [16000, 3217, 555, 9000]
    waves = padded_batch(lengths)
    feats, frames = frontend(waves, torch.tensor(lengths))
    for i, n in enumerate(lengths):
        alone, alone_frames = frontend(waves[i : i + 1, :n], torch.tensor([n]))
        assert int(alone_frames[0]) == int(frames[i])
        k = int(frames[i])
        torch.testing.assert_close(feats[i, :k], alone[0], atol=1e-5, rtol=0)
        assert torch.all(feats[i, k:] == 0)


def test_padding_invariance_with_deltas_and_denoise() -> None:
    extra = ("deltas=2", "denoise.method=spectral_gating", "normalize=utterance")
    frontend = make("kaldi_fbank80", "nosnip", extra)
    lengths = [8000, 4100]
    waves = padded_batch(lengths, seed=1)
    feats, frames = frontend(waves, torch.tensor(lengths))
    assert feats.shape[-1] == 240 == frontend.num_features
    alone, _ = frontend(waves[1:, :4100], torch.tensor([4100]))
    torch.testing.assert_close(feats[1, : int(frames[1])], alone[0], atol=1e-5, rtol=0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    preset=st.sampled_from(PRESETS),
    framing=st.sampled_from(list(FRAMINGS)),
    lengths=st.lists(st.integers(min_value=0, max_value=2500), min_size=1, max_size=4),
)
def test_shapes_and_lengths(preset: str, framing: str, lengths: list[int]) -> None:
    frontend = make(preset, framing)
    cfg = frontend.cfg
    waves = padded_batch(lengths)
    feats, frames = frontend(waves, torch.tensor(lengths))
    win, shift = cfg.frame_length_samples, cfg.frame_shift_samples
    for n, k in zip(lengths, frames.tolist()):
        if n == 0:
            expected = 0
        elif framing == "snip":
            expected = 0 if n < win else 1 + (n - win) // shift
        elif framing == "nosnip":
            expected = (n + shift // 2) // shift
        else:
            expected = 1 + n // shift
        assert k == expected
    assert feats.shape == (len(lengths), max(frames.tolist()), frontend.num_features)
    assert torch.isfinite(feats).all()
    assert torch.equal(frontend.num_frames(torch.tensor(lengths)), frames)


def test_shorter_than_one_frame_gives_zero_frames() -> None:
    frontend = make("kaldi_fbank80", "snip")
    feats, frames = frontend(torch.randn(2, 399), torch.tensor([399, 10]))
    assert feats.shape == (2, 0, 80) and frames.tolist() == [0, 0]
    feats, frames = frontend(torch.randn(2, 560), torch.tensor([560, 100]))
    assert frames.tolist() == [2, 0] and torch.all(feats[1] == 0)
    empty, frames = make("nemo_mel64")(torch.zeros(1, 0), torch.tensor([0]))
    assert empty.shape == (1, 0, 64) and frames.tolist() == [0]


@pytest.mark.parametrize("preset", PRESETS)
def test_float64_matches_float32(preset: str) -> None:
    frontend = make(preset)
    waves = padded_batch([6000, 4000], seed=2)
    lengths = torch.tensor([6000, 4000])
    f32, _ = frontend(waves, lengths)
    f64, _ = frontend(waves.double(), lengths)
    assert f64.dtype == torch.float64 and f32.dtype == torch.float32
    torch.testing.assert_close(f64.float(), f32, atol=2e-3, rtol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("preset", PRESETS)
def test_cuda_matches_cpu(preset: str) -> None:
    frontend = make(preset)
    waves, lengths = padded_batch([6000, 4000]), torch.tensor([6000, 4000])
    cpu, _ = frontend(waves, lengths)
    gpu, frames = Frontend(frontend.cfg).eval().cuda()(waves.cuda(), lengths.cuda())
    assert frames.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-3, rtol=1e-3)


def test_dither_only_in_training_and_seedable() -> None:
    frontend = Frontend.from_yaml(PRESET_DIR / "kaldi_fbank80.yaml")
    waves, lengths = padded_batch([4000]), torch.tensor([4000])
    frontend.eval()
    a, _ = frontend(waves, lengths)
    b, _ = frontend(waves, lengths)
    assert torch.equal(a, b)
    frontend.train()
    c, _ = frontend(waves, lengths)
    assert not torch.equal(a, c)
    x = F.dither(waves, lengths, 1e-3, torch.Generator().manual_seed(3))
    y = F.dither(waves, lengths, 1e-3, torch.Generator().manual_seed(3))
    assert torch.equal(x, y) and not torch.equal(x, waves)


def test_per_feature_and_utterance_normalisation() -> None:
    lengths = torch.tensor([8000, 5000])
    waves = padded_batch(lengths.tolist(), seed=4)
    feats, frames = make("nemo_mel64")(waves, lengths)
    for i, k in enumerate(frames.tolist()):
        valid = feats[i, :k].double()
        torch.testing.assert_close(
            valid.mean(0), torch.zeros(64, dtype=torch.float64), atol=1e-4, rtol=0
        )
        torch.testing.assert_close(
            valid.std(0), torch.ones(64, dtype=torch.float64), atol=1e-3, rtol=0
        )
    cmvn = make("kaldi_fbank80", "snip", ("normalize=utterance", "normalize_vars=true"))
    feats, frames = cmvn(waves, lengths)
    valid = feats[1, : int(frames[1])].double()
    torch.testing.assert_close(
        valid.std(0, unbiased=False), torch.ones(80, dtype=torch.float64), atol=1e-3, rtol=0
    )


def test_per_feature_std_floor_against_numpy() -> None:
    """``(x - mean) / (max(std, min_std) + eps)`` with the unbiased std, over valid frames."""
    gen = np.random.default_rng(9)
    x = gen.standard_normal((2, 50, 3))
    x[:, :, 1] = 0.001 * x[:, :, 1] - 16.6  # a nearly flat band, as a band with no signal
    lengths = [50, 31]
    out = F.per_feature_normalize(torch.from_numpy(x), torch.tensor(lengths), 1e-5, 0.05)
    for row, n in enumerate(lengths):
        valid = x[row, :n]
        std = np.maximum(valid.std(axis=0, ddof=1), 0.05)
        want = (valid - valid.mean(axis=0)) / (std + 1e-5)
        np.testing.assert_allclose(out[row, :n].numpy(), want, rtol=1e-12, atol=1e-12)
        assert not out[row, n:].any()
    assert out[:, :, 1].abs().max() < 0.1  # the flat band stays near 0


def _telephone_band(seconds: float = 3.0) -> torch.Tensor:
    """``(1, samples)``: noise with a speech-like envelope at 8 kHz, resampled to 16 kHz as
    ``load_audio`` does: the mel bands above 4 kHz hold only the resampler's leakage."""
    from asr.io.audio import resample

    t = np.arange(int(8000 * seconds)) / 8000
    envelope = np.sin(np.pi * t / t[-1]) ** 2 * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    x8 = 0.1 * envelope * np.random.default_rng(5).standard_normal(len(t))
    return torch.from_numpy(resample(x8.astype(np.float32), 8000, 16000))[None]


def test_telephone_band_features_are_well_conditioned() -> None:
    """Issue 25: NeMo's per-feature normalisation divides a band with no signal by its std
    + 1e-5, and that std is rounding noise: float32 and float64 differed by 0.27 and 1e-6 of
    added noise moved features by 4.8. The preset floors the std (normalize_min_std) and
    normalises in float64; bands with signal are normalised exactly as NeMo does."""
    frontend = make("nemo_mel64")
    wave = _telephone_band()
    lengths = torch.tensor([wave.shape[1]])
    f32, _ = frontend(wave, lengths)
    f64, _ = frontend(wave.double(), lengths)
    assert (f32.double() - f64).abs().max() <= 1e-3
    noise = 1e-6 * torch.randn(wave.shape, generator=torch.Generator().manual_seed(0))
    noisy, _ = frontend(wave + noise, lengths)
    assert (noisy - f32).abs().max() <= 0.05
    assert frontend.cfg.normalize_min_std > 0
    nemo = Frontend(dataclasses.replace(frontend.cfg, normalize_min_std=0.0)).eval()
    plain, _ = nemo(wave.double(), lengths)
    speech_bands = 50  # mel bands 0-49 (up to 4.1 kHz) hold the signal
    torch.testing.assert_close(f64[..., :speech_bands], plain[..., :speech_bands])
    assert (plain[..., speech_bands:] - f64[..., speech_bands:]).abs().max() > 1.0


@pytest.mark.parametrize("suffix", [".json", ".safetensors"])
def test_global_cmvn_stats_roundtrip(tmp_path: Path, suffix: str) -> None:
    mean, std = torch.linspace(-1, 1, 80), torch.linspace(0.5, 2, 80)
    path = tmp_path / f"stats{suffix}"
    save_cmvn_stats(path, mean, std, frames=123)
    m, s = load_cmvn_stats(path, 80)
    torch.testing.assert_close(m, mean)
    torch.testing.assert_close(s, std)
    frontend = make("kaldi_fbank80", "snip", ("normalize=global", f"cmvn_stats={path}"))
    plain = make("kaldi_fbank80", "snip")
    waves, lengths = padded_batch([3000]), torch.tensor([3000])
    torch.testing.assert_close(frontend(waves, lengths)[0], (plain(waves, lengths)[0] - mean) / std)
    with pytest.raises(FrontendError, match="80"):
        load_cmvn_stats(path, 40)


def test_cmvn_stats_errors(tmp_path: Path) -> None:
    with pytest.raises(FrontendError, match="not found"):
        load_cmvn_stats(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"mean": [0.0, 1.0], "std": [1.0, 0.0]}))
    with pytest.raises(FrontendError, match="std"):
        load_cmvn_stats(bad)
    bad.write_text("{not json")
    with pytest.raises(FrontendError, match="line 1"):
        load_cmvn_stats(bad)


def test_accumulate_cmvn_stats_over_manifest(tmp_path: Path) -> None:
    sf = pytest.importorskip("soundfile")
    cfg = make("kaldi_mfcc13").cfg
    rows, chunks = [], []
    for i, n in enumerate([8000, 12000]):
        wave = padded_batch([n], seed=10 + i)[0].numpy()
        sf.write(tmp_path / f"u{i}.wav", wave, 16000, subtype="FLOAT")
        rows.append({"audio_filepath": f"u{i}.wav", "duration": n / 16000, "text": "A"})
        chunks.append(compute_features(tmp_path / f"u{i}.wav", cfg).double())
    manifest = tmp_path / "m.json"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    mean, std, frames = accumulate_cmvn_stats(manifest, cfg, tmp_path / "stats.json")
    every = torch.cat(chunks)
    assert frames == every.shape[0]
    torch.testing.assert_close(mean, every.mean(0))
    torch.testing.assert_close(std, every.std(0, unbiased=False))
    assert load_cmvn_stats(tmp_path / "stats.json", 13)[0].shape == (13,)


def test_compute_features_on_real_file(shared_data: Path) -> None:
    from asr.io.audio import load_audio

    path = sorted((shared_data / "librispeech-samples").rglob("*.flac"))[0]
    feats = compute_features(path, PRESET_DIR / "kaldi_fbank80.yaml")
    samples, rate = load_audio(path)
    assert rate == 16000
    assert feats.shape == (1 + (len(samples) - 400) // 160, 80)
    expected, _ = make("kaldi_fbank80")(
        torch.from_numpy(samples)[None], torch.tensor([len(samples)])
    )
    torch.testing.assert_close(feats, expected[0])


def test_config_roundtrip_and_strictness(tmp_path: Path) -> None:
    for preset in PRESETS:
        cfg = config_io.load(FrontendConfig, PRESET_DIR / f"{preset}.yaml")
        config_io.save(cfg, tmp_path / "cfg.yaml")
        assert config_io.load(FrontendConfig, tmp_path / "cfg.yaml") == cfg
    with pytest.raises(config_io.ConfigError, match="unknown key 'num_mels'"):
        Frontend.from_yaml(PRESET_DIR / "kaldi_fbank80.yaml", ["num_mels=40"])
    with pytest.raises(config_io.ConfigError, match="high_freq_hz"):
        Frontend.from_yaml(PRESET_DIR / "kaldi_fbank80.yaml", ["high_freq_hz=9000"])
    with pytest.raises(ValueError, match="snip_edges"):
        dataclasses.replace(FrontendConfig(), center=True)


def test_bad_inputs_raise_one_line_errors() -> None:
    frontend = make("kaldi_fbank80")
    with pytest.raises(FrontendError, match=r"\(batch, samples\)"):
        frontend(torch.randn(16000), torch.tensor([16000]))
    with pytest.raises(FrontendError, match="lengths must lie"):
        frontend(torch.randn(1, 100), torch.tensor([200]))
    with pytest.raises(FrontendError, match="lengths must be"):
        frontend(torch.randn(2, 100), torch.tensor([100]))


def test_int16_input_and_default_lengths() -> None:
    frontend = make("kaldi_fbank80")
    wave = (padded_batch([4000])[:, :4000] * 1000).round()
    a, _ = frontend(wave.to(torch.int16))
    b, _ = frontend(wave, torch.tensor([4000]))
    torch.testing.assert_close(a, b)


def test_functional_pieces() -> None:
    assert F.next_power_of_two(400) == 512 and F.next_power_of_two(512) == 512
    assert F.samples_from_ms(25, 16000) == 400 and F.samples_from_ms(25, 8000) == 200
    idx = torch.tensor([[-3, -2, -1, 0, 4, 5, 6, 7]])
    assert F.reflect_index(idx, torch.tensor([5]), "symmetric").tolist() == [
        [2, 1, 0, 0, 4, 4, 3, 2]
    ]
    assert F.reflect_index(idx, torch.tensor([5]), "reflect").tolist() == [[3, 2, 1, 0, 4, 3, 2, 1]]
    dct = F.dct_matrix(23, 23, torch.float64)
    torch.testing.assert_close(dct.T @ dct, torch.eye(23, dtype=torch.float64))
    mel = F.mel_filterbank(23, 512, 16000, 20.0, -400.0)
    assert mel.shape == (257, 23) and mel[244:].sum() == 0  # nothing above 7600 Hz
    window = F.feature_window("hann", 8, periodic=True, dtype=torch.float64)
    np.testing.assert_allclose(window.numpy(), np.hanning(9)[:8], atol=1e-12)


@pytest.mark.parametrize("preset", ["kaldi_mfcc13", "nemo_mel64"])
def test_whole_batch_path_matches_chunked_path(
    preset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole-batch analysis that CUDA uses (no per-utterance chunks, dense mel) gives the
    same features as the CPU chunked path with the sparse filterbank."""
    frontend = Frontend(make(preset).cfg).eval()
    lengths = torch.tensor([16000, 7000, 300])
    waves = padded_batch(lengths.tolist(), seed=6)
    chunked, frames = frontend(waves, lengths)
    monkeypatch.setattr(frontend, "_sparse_mel", lambda signal: None)
    monkeypatch.setattr(frontend, "_chunks", lambda n, device: [(0, 3, 0, int(n.max()))])
    whole, frames_whole = frontend(waves, lengths)
    assert torch.equal(frames, frames_whole)
    torch.testing.assert_close(whole, chunked, atol=1e-4, rtol=1e-5)


def test_windowed_frames_equals_step_by_step() -> None:
    gen = torch.Generator().manual_seed(8)
    signal = torch.randn(2, 2000, generator=gen, dtype=torch.float64) + 0.5
    for kind in ("povey", "hamming", "rectangular"):
        window = F.feature_window(kind, 400, dtype=torch.float64)
        fused, raw = F.windowed_frames(signal, 400, 160, window, 512, True, 0.97)
        frames = signal.unfold(1, 400, 160)
        steps = F.preemphasis_frames(F.remove_dc_offset(frames), 0.97) * window
        torch.testing.assert_close(fused[..., :400], steps)
        assert torch.all(fused[..., 400:] == 0) and torch.equal(raw, frames)


def test_autocast_and_half_input_compute_in_float32() -> None:
    frontend = make("kaldi_fbank80")
    waves, lengths = padded_batch([4000, 3000]), torch.tensor([4000, 3000])
    ref, _ = frontend(waves, lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low, _ = frontend(waves, lengths)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, ref)
    half, _ = frontend(waves.to(torch.bfloat16), lengths)
    assert half.dtype == torch.float32 and torch.isfinite(half).all()


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(min_value=-5, max_value=5000),
    snip=st.booleans(),
    center=st.booleans(),
)
def test_frame_count_matches_num_frames(n: int, snip: bool, center: bool) -> None:
    tensor = F.num_frames(torch.tensor([n]), 400, 160, snip, center)
    assert F.frame_count(n, 400, 160, snip, center) == int(tensor[0])


def test_denoise_sees_the_power_spectrum_for_magnitude_features() -> None:
    """With spectrum_power=1 the front-end must denoise |X|^2 and take the root afterwards."""
    from asr.frontend.denoise import DenoiseConfig, denoise_power

    gen = torch.Generator().manual_seed(3)
    wave = 0.1 * torch.randn(1, 8000, generator=gen, dtype=torch.float64)
    wave[:, 3000:5000] += torch.sin(torch.arange(2000, dtype=torch.float64) * 0.3)
    lengths = torch.tensor([8000])
    gate = DenoiseConfig(method="spectral_gating", noise_estimate="leading")
    base = dict(sample_rate_hz=16000, features="fbank", log="none", dither=0.0)
    magnitude = Frontend(FrontendConfig(**base, spectrum_power=1.0, denoise=gate)).eval()
    power = Frontend(FrontendConfig(**base, spectrum_power=2.0)).eval()
    spec, frames, _ = power.spectrogram(wave, lengths)
    expected = denoise_power(spec, frames, gate).sqrt() @ power.mel_matrix.double()
    got, _ = magnitude(wave, lengths)
    assert torch.allclose(got, expected, rtol=1e-6, atol=1e-9)
