"""Spectral denoising on power spectra: spectral subtraction and noisereduce-style spectral gating.

Both methods compute a *power gain* ``g(t, f)`` in ``[0, 1]`` from a noise estimate and return
``g * power``. The front-end calls :func:`denoise_power` between the power spectrum and the mel
filterbank; :func:`denoise_waveform` applies the same gain to a complex STFT (as ``sqrt(g)``) and
inverts it, so that the effect can be measured as a signal-to-noise ratio.

Noise estimates (``DenoiseConfig.noise_estimate``):

- ``"leading"``: the first ``noise_frames`` frames of each utterance are taken as noise only; the
  noise PSD is their mean (subtraction), the gating threshold their per-bin dB mean plus
  ``n_std`` standard deviations (as noisereduce does with a noise clip).
- ``"min_stats"``: minimum statistics (R. Martin, 2001): the PSD, smoothed over a few frames, is
  minimised over a centred sliding window of ``min_stats_window_frames`` frames and scaled by
  ``min_stats_bias`` to turn a minimum into a mean. It tracks slowly varying noise and needs no
  noise-only lead-in. For gating, the per-bin dB mean and standard deviation follow from the
  noise PSD ``N``: a bin of Gaussian noise has an exponentially distributed power, whose
  ``10 log10`` has mean ``10 log10 N - 2.507 dB`` and standard deviation ``5.57 dB``.

Methods (``DenoiseConfig.method``):

- ``"spectral_subtraction"`` (Berouti et al., 1979): ``g = max(1 - alpha * N / P, beta)`` with
  over-subtraction factor ``alpha`` and spectral floor ``beta``.
- ``"spectral_gating"`` (noisereduce, T. Sainburg): a bin is kept when its dB level exceeds the
  threshold; the 0/1 mask is mixed with ``1 - prop_decrease``, smoothed by a triangular 2-D filter
  over ``2 * smooth_time_frames + 1`` frames and ``2 * smooth_freq_bins + 1`` bins, and applied
  to the amplitude (so ``g = mask ** 2`` on power).

Frame and bin counts are in frames and FFT bins: the defaults assume a 10 ms frame shift and
~31 Hz bins (16 kHz audio, 512-point FFT). The defaults were tuned on three LJSpeech clips mixed
with white, pink and babble noise (``bench/denoise.py``): gating keeps 10% of a gated bin's
amplitude and smooths its mask over 3 frames x 3 bins (noisereduce's 50 ms x 500 Hz smoothing
would be ``smooth_time_frames=5, smooth_freq_bins=8`` and costs about 2 dB of SNR gain there);
subtraction over-subtracts four times the noise PSD down to a -20 dB floor.

Padding invariance: frames beyond ``lengths[i]`` never influence the valid frames of utterance
``i`` (all windows and smoothers are normalised over valid frames only), so an utterance gives the
same output alone or inside a padded batch. Padded frames come back unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from asr.errors import AsrError

# dB statistics of the power of one bin of Gaussian noise (exponentially distributed with mean
# N): E[10 log10 P] = 10 log10 N - 10 * euler_gamma / ln 10, std = 10 / ln 10 * pi / sqrt(6).
EXP_DB_MEAN_OFFSET = -10.0 * 0.5772156649015329 / math.log(10.0)
EXP_DB_STD = 10.0 / math.log(10.0) * math.pi / math.sqrt(6.0)
# Powers are clamped to this before taking logarithms.
POWER_FLOOR = 1e-20

Method = Literal["none", "spectral_subtraction", "spectral_gating"]
NoiseEstimate = Literal["leading", "min_stats"]


class DenoiseError(AsrError):
    """Input to a denoising function has the wrong shape or sizes."""


@dataclass(frozen=True)
class DenoiseConfig:
    """Options of the spectral denoiser; ``method="none"`` (the default) turns it off."""

    method: Method = "none"  # "none", "spectral_subtraction" or "spectral_gating"
    noise_estimate: NoiseEstimate = "min_stats"  # noise PSD from "leading" frames or "min_stats"
    noise_frames: int = 10  # leading frames assumed noise-only ("leading"); 100 ms at 10 ms
    min_stats_window_frames: int = 151  # sliding-minimum window, frames (made odd); ~1.5 s
    min_stats_smooth_frames: int = 4  # min stats: triangular smoothing half-width over frames
    min_stats_smooth_bins: int = 2  # min stats: triangular smoothing half-width over bins
    min_stats_bias: float = 2.07  # min stats: minimum -> mean factor (white noise, 25/10 ms)
    over_subtraction: float = 4.0  # subtraction: alpha, multiple of the noise PSD subtracted
    spectral_floor: float = 0.01  # subtraction: beta, smallest power gain (-20 dB)
    n_std: float = 1.5  # gating: threshold = noise dB mean + n_std * noise dB std
    prop_decrease: float = 0.9  # gating: 1 removes gated bins fully, 0 leaves the input as is
    smooth_time_frames: int = 1  # gating: mask smoothing half-width over time, frames
    smooth_freq_bins: int = 1  # gating: mask smoothing half-width over frequency, bins

    def __post_init__(self) -> None:
        for name in ("noise_frames", "min_stats_window_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        smoothers = ("min_stats_smooth_frames", "min_stats_smooth_bins")
        for name in (*smoothers, "smooth_time_frames", "smooth_freq_bins"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("min_stats_bias", "over_subtraction"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value}")
        for name in ("spectral_floor", "prop_decrease"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not math.isfinite(self.n_std):
            raise ValueError(f"n_std must be a finite number, got {self.n_std}")


def _check(power: Tensor, lengths: Tensor) -> None:
    if power.dim() != 3:
        raise DenoiseError(f"power must be (batch, frames, bins), got shape {tuple(power.shape)}")
    if lengths.dim() != 1 or lengths.shape[0] != power.shape[0]:
        raise DenoiseError(
            f"lengths must be (batch,) = ({power.shape[0]},), got shape {tuple(lengths.shape)}"
        )
    if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > power.shape[1]):
        raise DenoiseError(f"lengths must lie in [0, {power.shape[1]}], got {lengths.tolist()}")


def valid_frames(lengths: Tensor, frames: int, like: Tensor) -> Tensor:
    """``(batch, frames, 1)`` mask (dtype of ``like``): 1 for frames before each length."""
    steps = torch.arange(frames, device=like.device)
    return (steps[None, :] < lengths.to(like.device)[:, None]).to(like.dtype).unsqueeze(-1)


def triangle(half_width: int, like: Tensor) -> Tensor:
    """noisereduce's triangular taps ``1 - |k| / (h + 1)``, ``k = -h..h``, shape ``(2h + 1,)``."""
    k = torch.arange(-half_width, half_width + 1, device=like.device, dtype=like.dtype)
    return 1.0 - k.abs() / (half_width + 1)


def masked_smooth(x: Tensor, valid: Tensor, half_time: int, half_freq: int) -> Tensor:
    """Triangular 2-D smoothing of ``x`` over valid frames only (normalised convolution).

    Args:
        x: ``(batch, frames, bins)`` values; padded frames may hold anything.
        valid: ``(batch, frames, 1)`` 0/1 mask of valid frames.
        half_time: half-width of the filter over frames (0: no smoothing over time).
        half_freq: half-width of the filter over bins (0: no smoothing over frequency).

    Returns:
        ``(batch, frames, bins)``: at each valid frame the weighted mean of the valid neighbours
        (edges renormalised, as if the filter were cut at the utterance and spectrum boundary).
    """
    num = torch.where(valid > 0, x, torch.zeros((), dtype=x.dtype, device=x.device))
    num = num.unsqueeze(1)  # (batch, 1, frames, bins)
    den = valid.expand_as(x).unsqueeze(1)
    if half_time > 0:
        kt = triangle(half_time, x).view(1, 1, -1, 1)
        num = F.conv2d(num, kt, padding=(half_time, 0))
        den = F.conv2d(den, kt, padding=(half_time, 0))
    if half_freq > 0:
        kf = triangle(half_freq, x).view(1, 1, 1, -1)
        num = F.conv2d(num, kf, padding=(0, half_freq))
        den = F.conv2d(den, kf, padding=(0, half_freq))
    return (num / den.clamp_min(1e-12)).squeeze(1)


def leading_noise_psd(power: Tensor, lengths: Tensor, num_frames: int) -> Tensor:
    """Mean power of the first ``min(num_frames, length)`` frames: ``(batch, 1, bins)``."""
    lead = valid_frames(lengths.clamp(max=num_frames), power.shape[1], power)
    total = (power.nan_to_num() * lead).sum(dim=1, keepdim=True)
    return total / lead.sum(dim=1, keepdim=True).clamp_min(1.0)


def min_stats_noise_psd(power: Tensor, lengths: Tensor, cfg: DenoiseConfig) -> Tensor:
    """Minimum-statistics noise PSD, ``(batch, frames, bins)`` (zero in padded frames).

    The power is smoothed over ``2 * min_stats_smooth_frames + 1`` frames and
    ``2 * min_stats_smooth_bins + 1`` bins, its minimum taken over
    a centred window of ``min_stats_window_frames`` valid frames and multiplied by
    ``min_stats_bias``.
    """
    valid = valid_frames(lengths, power.shape[1], power)
    smooth = masked_smooth(power, valid, cfg.min_stats_smooth_frames, cfg.min_stats_smooth_bins)
    inf = torch.full((), math.inf, dtype=power.dtype, device=power.device)
    smooth = torch.where(valid > 0, smooth, inf)
    half = cfg.min_stats_window_frames // 2
    batch, frames, bins = power.shape
    neg = -smooth.transpose(1, 2).reshape(batch * bins, 1, frames)
    minimum = -F.max_pool1d(neg, kernel_size=2 * half + 1, stride=1, padding=half)
    minimum = minimum.reshape(batch, bins, frames).transpose(1, 2)
    return torch.where(valid > 0, minimum * cfg.min_stats_bias, torch.zeros_like(minimum))


def noise_psd(power: Tensor, lengths: Tensor, cfg: DenoiseConfig) -> Tensor:
    """The noise PSD named by ``cfg.noise_estimate``: ``(batch, 1 or frames, bins)``."""
    if cfg.noise_estimate == "leading":
        return leading_noise_psd(power, lengths, cfg.noise_frames)
    return min_stats_noise_psd(power, lengths, cfg)


def subtraction_gain(power: Tensor, lengths: Tensor, cfg: DenoiseConfig) -> Tensor:
    """Spectral-subtraction power gain ``max(1 - alpha N / P, beta)``, ``(batch, frames, bins)``."""
    noise = noise_psd(power, lengths, cfg)
    gain = 1.0 - cfg.over_subtraction * noise / power.clamp_min(POWER_FLOOR)
    return gain.clamp(min=cfg.spectral_floor, max=1.0)


def gating_threshold_db(power_db: Tensor, power: Tensor, lengths: Tensor, cfg: DenoiseConfig):
    """Per-bin gating threshold in dB, ``(batch, 1 or frames, bins)``.

    ``"leading"``: dB mean + ``n_std`` dB standard deviations over the leading frames;
    ``"min_stats"``: the same statistics of exponentially distributed noise of the tracked PSD.
    """
    if cfg.noise_estimate == "min_stats":
        noise = min_stats_noise_psd(power, lengths, cfg).clamp_min(POWER_FLOOR)
        return 10.0 * torch.log10(noise) + EXP_DB_MEAN_OFFSET + cfg.n_std * EXP_DB_STD
    lead = valid_frames(lengths.clamp(max=cfg.noise_frames), power.shape[1], power)
    count = lead.sum(dim=1, keepdim=True).clamp_min(1.0)
    db = torch.where(lead > 0, power_db, torch.zeros((), dtype=power.dtype, device=power.device))
    mean = db.sum(dim=1, keepdim=True) / count
    var = ((db - mean) ** 2 * lead).sum(dim=1, keepdim=True) / count
    return mean + cfg.n_std * var.sqrt()


def gating_gain(power: Tensor, lengths: Tensor, cfg: DenoiseConfig) -> Tensor:
    """noisereduce-style spectral-gating power gain (smoothed mask squared), same shape as power."""
    power_db = 10.0 * torch.log10(power.clamp_min(POWER_FLOOR))
    threshold = gating_threshold_db(power_db, power, lengths, cfg)
    mask = (power_db > threshold).to(power.dtype)
    mask = mask * cfg.prop_decrease + (1.0 - cfg.prop_decrease)
    valid = valid_frames(lengths, power.shape[1], power)
    mask = masked_smooth(mask, valid, cfg.smooth_time_frames, cfg.smooth_freq_bins)
    return mask.clamp(0.0, 1.0) ** 2


def denoise_gain(power: Tensor, lengths: Tensor, cfg: DenoiseConfig) -> Tensor:
    """Power gain in ``[0, 1]`` of ``cfg.method``, ``(batch, frames, bins)``; 1 in padded frames.

    Args:
        power: ``(batch, frames, bins)`` power spectra (``|X|^2``), float32 or float64.
        lengths: ``(batch,)`` number of valid frames of each utterance.
        cfg: the denoiser options.
    """
    _check(power, lengths)
    if cfg.method == "none" or power.numel() == 0:
        return torch.ones_like(power)
    if cfg.method == "spectral_subtraction":
        gain = subtraction_gain(power, lengths, cfg)
    else:
        gain = gating_gain(power, lengths, cfg)
    valid = valid_frames(lengths, power.shape[1], power)
    return torch.where(valid > 0, gain, torch.ones_like(gain))


def denoise_power(power: Tensor, lengths: Tensor, cfg: DenoiseConfig) -> Tensor:
    """Denoise power spectra: ``denoise_gain(power, lengths, cfg) * power``.

    Args:
        power: ``(batch, frames, bins)`` power spectra, float32 or float64, any device.
        lengths: ``(batch,)`` valid frames per utterance; frames past a length pass through.
        cfg: the denoiser options; ``method="none"`` returns ``power`` itself.

    Returns:
        ``(batch, frames, bins)`` denoised power, padding invariant.
    """
    if cfg.method == "none":
        _check(power, lengths)
        return power
    return denoise_gain(power, lengths, cfg) * power


def _stft_item(x: Tensor, n_fft: int, hop: int, window: Tensor) -> Tensor:
    """Centred STFT of one ``(samples,)`` signal: ``(frames, n_fft // 2 + 1)`` complex."""
    pad_mode = "reflect" if x.shape[0] > n_fft // 2 else "constant"
    spec = torch.stft(
        x,
        n_fft,
        hop_length=hop,
        win_length=window.shape[0],
        window=window,
        center=True,
        pad_mode=pad_mode,
        return_complex=True,
    )
    return spec.transpose(0, 1)


def denoise_waveform(
    samples: Tensor | np.ndarray,
    sample_rate: int,
    cfg: DenoiseConfig,
    lengths: Tensor | None = None,
    window_ms: float = 25.0,
    shift_ms: float = 10.0,
    n_fft: int | None = None,
) -> Tensor | np.ndarray:
    """Denoise waveforms: STFT, the gain of :func:`denoise_gain` (as ``sqrt``), inverse STFT.

    Args:
        samples: ``(batch, samples)`` or ``(samples,)`` float waveforms (tensor or numpy array).
        sample_rate: samples per second.
        cfg: the denoiser options (frame counts refer to frames of ``shift_ms``).
        lengths: ``(batch,)`` valid samples per waveform; default all.
        window_ms: Hann window length, milliseconds (default 25).
        shift_ms: frame shift, milliseconds (default 10).
        n_fft: FFT size; default the window length rounded up to a power of two.

    Returns:
        Denoised waveforms of the input's shape and type; samples past a length are zero.
    """
    as_numpy = isinstance(samples, np.ndarray)
    x = torch.from_numpy(samples) if as_numpy else samples
    single = x.dim() == 1
    x = x.unsqueeze(0) if single else x
    if x.dim() != 2:
        raise DenoiseError(f"samples must be (batch, samples) or (samples,), got {tuple(x.shape)}")
    if lengths is None:
        lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
    win = max(1, round(sample_rate * window_ms / 1000.0))
    hop = max(1, round(sample_rate * shift_ms / 1000.0))
    n_fft = n_fft or 1 << (win - 1).bit_length()
    if n_fft < win or hop > win:
        raise DenoiseError(f"need n_fft >= window ({n_fft} < {win}) and shift <= window")
    window = torch.hann_window(win, periodic=True, dtype=x.dtype, device=x.device)
    specs = [_stft_item(x[i, : int(n)], n_fft, hop, window) for i, n in enumerate(lengths)]
    frames = torch.tensor([s.shape[0] for s in specs], dtype=torch.long)
    power = torch.zeros(x.shape[0], int(frames.max()), n_fft // 2 + 1, dtype=x.dtype)
    power = power.to(x.device)
    for i, s in enumerate(specs):
        power[i, : s.shape[0]] = s.abs() ** 2
    gain = denoise_gain(power, frames, cfg).sqrt()
    out = torch.zeros_like(x)
    for i, (s, n) in enumerate(zip(specs, lengths)):
        if int(n) == 0:
            continue
        s = (s * gain[i, : s.shape[0]]).transpose(0, 1)
        y = torch.istft(s, n_fft, hop, win, window=window, center=True, length=int(n))
        out[i, : int(n)] = y
    out = out[0] if single else out
    return out.numpy() if as_numpy else out
