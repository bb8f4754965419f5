"""Mel filterbanks (HTK and Slaney scales) and the MFCC DCT and lifter, as matrices.

Re-exported by :mod:`asr.frontend.functional`. All maths is float64; results are cast at the end.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

MelScale = Literal["htk", "slaney"]


def hz_to_mel(freq_hz: Tensor, scale: MelScale = "htk") -> Tensor:
    """Hertz to mel: HTK ``1127 ln(1 + f / 700)`` or Slaney (linear < 1 kHz, log above)."""
    if scale == "htk":
        return 1127.0 * torch.log1p(freq_hz / 700.0)
    f_sp, min_log_hz, min_log_mel = 200.0 / 3.0, 1000.0, 15.0
    logstep = math.log(6.4) / 27.0
    linear = freq_hz / f_sp
    log_part = min_log_mel + torch.log(freq_hz.clamp(min=min_log_hz) / min_log_hz) / logstep
    return torch.where(freq_hz >= min_log_hz, log_part, linear)


def mel_to_hz(mel: Tensor, scale: MelScale = "htk") -> Tensor:
    """Inverse of :func:`hz_to_mel`."""
    if scale == "htk":
        return 700.0 * torch.expm1(mel / 1127.0)
    f_sp, min_log_hz, min_log_mel = 200.0 / 3.0, 1000.0, 15.0
    logstep = math.log(6.4) / 27.0
    return torch.where(
        mel >= min_log_mel, min_log_hz * torch.exp(logstep * (mel - min_log_mel)), f_sp * mel
    )


def mel_filterbank(
    num_mels: int,
    n_fft: int,
    sample_rate_hz: float,
    low_freq_hz: float = 0.0,
    high_freq_hz: float = 0.0,
    scale: MelScale = "htk",
    slaney_norm: bool = False,
    triangles_in_mel: bool = True,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Triangular mel filterbank as a matrix ``(n_fft // 2 + 1, num_mels)`` (float64 maths).

    Args:
        num_mels: number of filters.
        n_fft: FFT size.
        sample_rate_hz: sample rate.
        low_freq_hz: lower edge of the first filter.
        high_freq_hz: upper edge of the last filter; ``<= 0`` means Nyquist plus this value
            (Kaldi's convention: 0 is Nyquist, -400 is 400 Hz below it).
        scale: ``"htk"`` (Kaldi, HTK) or ``"slaney"`` (librosa default, NeMo).
        slaney_norm: scale each filter to unit area, ``2 / (f_right - f_left)`` (librosa/NeMo).
        triangles_in_mel: triangles linear in mel (Kaldi) rather than in Hz (librosa, NeMo).
        dtype: dtype of the result.
    """
    nyquist = 0.5 * sample_rate_hz
    high = high_freq_hz if high_freq_hz > 0 else nyquist + high_freq_hz
    if not 0.0 <= low_freq_hz < high <= nyquist + 1e-6:
        raise ValueError(
            f"need 0 <= low_freq_hz < high_freq_hz <= {nyquist}, got {low_freq_hz}, {high}"
        )
    f64 = torch.float64
    edges_mel = torch.linspace(
        float(hz_to_mel(torch.tensor(low_freq_hz, dtype=f64), scale)),
        float(hz_to_mel(torch.tensor(high, dtype=f64), scale)),
        num_mels + 2,
        dtype=f64,
    )
    fft_hz = torch.arange(n_fft // 2 + 1, dtype=f64) * (sample_rate_hz / n_fft)
    if triangles_in_mel:
        edges, points = edges_mel, hz_to_mel(fft_hz, scale)
    else:
        edges, points = mel_to_hz(edges_mel, scale), fft_hz
    left, centre, right = edges[:-2], edges[1:-1], edges[2:]
    up = (points[:, None] - left[None, :]) / (centre - left)[None, :]
    down = (right[None, :] - points[:, None]) / (right - centre)[None, :]
    weights = torch.minimum(up, down).clamp(min=0.0)
    if slaney_norm:
        edges_hz = mel_to_hz(edges_mel, scale)
        weights = weights * (2.0 / (edges_hz[2:] - edges_hz[:-2]))[None, :]
    return weights.to(dtype)


def dct_matrix(num_mels: int, num_ceps: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Orthonormal DCT-II as a right-multiply matrix ``(num_mels, num_ceps)``.

    ``C[n, k] = sqrt(2 / N) cos(pi k (n + 0.5) / N)``, with column 0 scaled to ``sqrt(1 / N)``
    (what Kaldi, scipy ``norm="ortho"`` and librosa compute).
    """
    n = torch.arange(num_mels, dtype=torch.float64)[:, None]
    k = torch.arange(num_ceps, dtype=torch.float64)[None, :]
    dct = torch.cos(math.pi * k * (n + 0.5) / num_mels) * math.sqrt(2.0 / num_mels)
    dct[:, 0] = math.sqrt(1.0 / num_mels)
    return dct.to(dtype)


def lifter_coefficients(num_ceps: int, lifter: float, dtype: torch.dtype = torch.float32) -> Tensor:
    """Kaldi's cepstral lifter ``1 + 0.5 Q sin(pi k / Q)``, ``(num_ceps,)``; ones when Q is 0."""
    k = torch.arange(num_ceps, dtype=torch.float64)
    if lifter == 0.0:
        return torch.ones(num_ceps, dtype=dtype)
    return (1.0 + 0.5 * lifter * torch.sin(math.pi * k / lifter)).to(dtype)
