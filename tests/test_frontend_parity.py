"""Front-end parity against independent references: torchaudio.compliance.kaldi, librosa,
kaldi-native-fbank, torchaudio.functional.compute_deltas and a NeMo FilterbankFeatures
re-implementation on torch.stft + librosa.filters.mel. Each reference is optional (``ref``
extra) and its tests skip cleanly when it is absent."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from asr.frontend import Frontend
from asr.frontend import functional as F

PRESETS = "conf/frontend"
KALDI_TOL = 1e-3
LENGTHS_S = (0.031, 0.1, 0.537, 1.5)  # seconds; several lengths, one barely over a frame


def speech_like(num_samples: int, sample_rate: int, seed: int = 0) -> torch.Tensor:
    """Harmonics with a moving pitch, noise and 50 ms of near-silence, ``(samples,)``."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(num_samples, dtype=torch.float64) / sample_rate
    f0 = 120.0 + 40.0 * torch.sin(2 * math.pi * 3.0 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / sample_rate
    x = sum(torch.sin(k * phase) / k for k in range(1, 12))
    x = 0.2 * x * (0.6 + 0.4 * torch.sin(2 * math.pi * 4.0 * t))
    x = x + 0.01 * torch.randn(num_samples, generator=gen, dtype=torch.float64)
    quiet = slice(num_samples // 3, num_samples // 3 + int(0.05 * sample_rate))
    x[quiet] = 1e-5 * torch.randn(x[quiet].shape, generator=gen, dtype=torch.float64)
    return x.float()


def batch_of(
    signals: list[torch.Tensor], pad_value: float = 0.3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack 1-D signals into ``(batch, max)`` padded with a non-zero value (it must not matter)."""
    lengths = torch.tensor([len(s) for s in signals])
    out = torch.full((len(signals), int(lengths.max())), pad_value)
    for i, s in enumerate(signals):
        out[i, : len(s)] = s
    return out, lengths


def kaldi_frontend(preset: str, sr: int, snip: bool, **extra: object) -> Frontend:
    overrides = [f"sample_rate_hz={sr}", f"snip_edges={str(snip).lower()}", "dither=0"]
    overrides += [f"{k}={v}" for k, v in extra.items()]
    return Frontend.from_yaml(f"{PRESETS}/{preset}.yaml", overrides).eval()


@pytest.mark.parametrize("sr", [8000, 16000])
@pytest.mark.parametrize("snip", [True, False])
def test_kaldi_fbank_matches_torchaudio(sr: int, snip: bool) -> None:
    kaldi = pytest.importorskip("torchaudio.compliance.kaldi")
    bins = 40 if sr == 8000 else 80
    frontend = kaldi_frontend("kaldi_fbank80", sr, snip, num_mel_bins=bins)
    signals = [speech_like(int(s * sr), sr, seed=i) for i, s in enumerate(LENGTHS_S)]
    waves, lengths = batch_of(signals)
    feats, frames = frontend(waves, lengths)
    for i, sig in enumerate(signals):
        ref = kaldi.fbank(
            sig[None] * 32768,
            sample_frequency=sr,
            num_mel_bins=bins,
            dither=0.0,
            energy_floor=0.0,
            snip_edges=snip,
        )
        assert int(frames[i]) == ref.shape[0]
        ours = feats[i, : int(frames[i])]
        assert (ours - ref).abs().max().item() <= KALDI_TOL


@pytest.mark.parametrize("sr", [8000, 16000])
@pytest.mark.parametrize("snip", [True, False])
def test_kaldi_mfcc_matches_torchaudio(sr: int, snip: bool) -> None:
    kaldi = pytest.importorskip("torchaudio.compliance.kaldi")
    frontend = kaldi_frontend("kaldi_mfcc13", sr, snip)
    signals = [speech_like(int(s * sr), sr, seed=10 + i) for i, s in enumerate(LENGTHS_S)]
    waves, lengths = batch_of(signals)
    feats, frames = frontend(waves, lengths)
    for i, sig in enumerate(signals):
        ref = kaldi.mfcc(
            sig[None] * 32768,
            sample_frequency=sr,
            dither=0.0,
            energy_floor=0.0,
            snip_edges=snip,
            use_energy=True,
        )
        assert int(frames[i]) == ref.shape[0]
        assert (feats[i, : int(frames[i])] - ref).abs().max().item() <= KALDI_TOL


@pytest.mark.parametrize(
    "options",
    [
        {"window": "hamming", "preemphasis": 0.0, "remove_dc_offset": "false"},
        {"window": "blackman", "high_freq_hz": -400.0, "low_freq_hz": 100.0},
        {"window": "rectangular", "use_energy": "true", "raw_energy": "false", "energy_floor": 1.0},
        {"window": "hann", "n_fft": 400, "spectrum_power": 1.0},
    ],
)
def test_kaldi_fbank_options_match_torchaudio(options: dict[str, object]) -> None:
    kaldi = pytest.importorskip("torchaudio.compliance.kaldi")
    frontend = kaldi_frontend("kaldi_fbank80", 16000, True, **options)
    cfg = frontend.cfg
    sig = speech_like(12000, 16000, seed=3)
    feats, _ = frontend(sig[None], torch.tensor([len(sig)]))
    ref = kaldi.fbank(
        sig[None] * 32768,
        num_mel_bins=80,
        dither=0.0,
        window_type={"hann": "hanning"}.get(cfg.window, cfg.window),
        preemphasis_coefficient=cfg.preemphasis,
        remove_dc_offset=cfg.remove_dc_offset,
        low_freq=cfg.low_freq_hz,
        high_freq=cfg.high_freq_hz,
        use_energy=cfg.use_energy,
        raw_energy=cfg.raw_energy,
        energy_floor=cfg.energy_floor,
        round_to_power_of_two=cfg.n_fft is None,
        use_power=cfg.spectrum_power == 2.0,
    )
    assert (feats[0] - ref).abs().max().item() <= KALDI_TOL


def test_kaldi_fbank_matches_kaldi_native_fbank() -> None:
    knf = pytest.importorskip("kaldi_native_fbank")
    sig = speech_like(16000, 16000, seed=5)
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = True
    opts.mel_opts.num_bins = 80
    online = knf.OnlineFbank(opts)
    online.accept_waveform(16000, (sig * 32768).tolist())
    online.input_finished()
    ref = torch.tensor(np.array([online.get_frame(i) for i in range(online.num_frames_ready)]))
    feats, frames = kaldi_frontend("kaldi_fbank80", 16000, True)(sig[None], torch.tensor([16000]))
    assert int(frames[0]) == ref.shape[0]
    assert (feats[0] - ref).abs().max().item() <= KALDI_TOL


def test_librosa_melspectrogram_and_mfcc() -> None:
    librosa = pytest.importorskip("librosa")
    sig = speech_like(25000, 16000, seed=7).double()
    frontend = Frontend.from_yaml(f"{PRESETS}/librosa_mel80.yaml").eval()
    feats, frames = frontend(sig[None], torch.tensor([len(sig)]))
    mel = librosa.feature.melspectrogram(
        y=sig.numpy(), sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=80
    )
    assert int(frames[0]) == mel.shape[1]
    # librosa's filterbank is float32, hence 1e-4 rather than float64 precision.
    np.testing.assert_allclose(feats[0].numpy(), np.log(np.maximum(mel, 1e-10)).T, atol=1e-4)
    mfcc_fe = Frontend.from_yaml(
        f"{PRESETS}/librosa_mel80.yaml", ["features=mfcc", "num_ceps=20", "cepstral_lifter=0"]
    ).eval()
    ours, _ = mfcc_fe(sig[None], torch.tensor([len(sig)]))
    db = librosa.power_to_db(mel, top_db=None)
    ref = librosa.feature.mfcc(S=db, n_mfcc=20).T
    np.testing.assert_allclose(ours[0].numpy() * 10.0 / math.log(10.0), ref, atol=1e-3)
    # reflect padding (librosa < 0.10 default), with the signal inside a padded batch
    reflect_fe = Frontend.from_yaml(f"{PRESETS}/librosa_mel80.yaml", ["pad_mode=reflect"]).eval()
    batch = torch.cat([sig, torch.ones(999, dtype=torch.float64)])[None]
    ours, _ = reflect_fe(batch, torch.tensor([len(sig)]))
    mel = librosa.feature.melspectrogram(
        y=sig.numpy(),
        sr=16000,
        n_fft=512,
        win_length=400,
        hop_length=160,
        n_mels=80,
        pad_mode="reflect",
    )
    np.testing.assert_allclose(ours[0].numpy(), np.log(np.maximum(mel, 1e-10)).T, atol=1e-4)


@pytest.mark.parametrize("htk", [True, False])
def test_mel_filterbank_matches_librosa(htk: bool) -> None:
    librosa = pytest.importorskip("librosa")
    ours = F.mel_filterbank(
        40,
        512,
        16000,
        50.0,
        7000.0,
        scale="htk" if htk else "slaney",
        slaney_norm=not htk,
        triangles_in_mel=False,
        dtype=torch.float64,
    )
    norm = None if htk else "slaney"
    ref = librosa.filters.mel(
        sr=16000, n_fft=512, n_mels=40, fmin=50.0, fmax=7000.0, htk=htk, norm=norm
    )
    np.testing.assert_allclose(ours.numpy().T, ref, rtol=1e-5, atol=1e-9)


def test_deltas_match_torchaudio() -> None:
    functional = pytest.importorskip("torchaudio.functional")
    feats = torch.randn(2, 37, 13, dtype=torch.float64)
    lengths = torch.tensor([37, 20])
    ours = F.add_deltas(feats, lengths, order=2, window=2)
    for i, n in enumerate(lengths.tolist()):
        x = feats[i, :n].T  # (features, frames)
        d1 = functional.compute_deltas(x[None], win_length=5)[0]
        d2 = functional.compute_deltas(d1[None], win_length=5)[0]
        torch.testing.assert_close(ours[i, :n].T, torch.cat([x, d1, d2]), atol=1e-10, rtol=0)


def nemo_reference(signal: torch.Tensor, length: int) -> torch.Tensor:
    """NeMo FilterbankFeatures (current behaviour) written out with torch.stft and librosa."""
    librosa = pytest.importorskip("librosa")
    x = signal[None].clone()
    x = torch.cat([x[:, :1], x[:, 1:] - 0.97 * x[:, :-1]], dim=1)
    x[:, length:] = 0.0  # NeMo masks the pre-emphasised signal beyond each length
    window = torch.hann_window(320, periodic=False)
    stft = torch.stft(
        x, 512, 160, 320, window=window, center=True, pad_mode="constant", return_complex=True
    )
    power = torch.view_as_real(stft).pow(2).sum(-1).sqrt().pow(2.0)
    fb = librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=0, fmax=8000, norm="slaney")
    mel = torch.log(torch.tensor(fb, dtype=torch.float32) @ power + 2.0**-24)[0]
    seq = length // 160 + 1  # (L + 2 * (n_fft // 2) - n_fft) // hop + 1
    mel = mel[:, :seq]
    mean, std = mel.mean(dim=1, keepdim=True), mel.std(dim=1, keepdim=True)
    return ((mel - mean) / (std + 1e-5)).T


def test_nemo_preset_matches_nemo_filterbank_features() -> None:
    signals = [speech_like(n, 16000, seed=20 + n) for n in (16000, 12345, 4000)]
    waves, lengths = batch_of(signals, pad_value=0.0)
    frontend = Frontend.from_yaml(f"{PRESETS}/nemo_mel64.yaml").eval()
    feats, frames = frontend(waves, lengths)
    for i, sig in enumerate(signals):
        ref = nemo_reference(waves[i], len(sig))
        assert int(frames[i]) == ref.shape[0]
        assert (feats[i, : int(frames[i])] - ref).abs().max().item() <= 1e-4
