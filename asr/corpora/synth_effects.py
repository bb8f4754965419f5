"""Recording conditions for synthetic speech that :mod:`asr.data.augment` does not provide:
coloured noise, leading/trailing silence, level. (Reverberation and mixing at an SNR use
``asr.data.augment``.)

All functions are pure numpy and take an explicit ``numpy.random.Generator`` so every utterance
of a corpus is reproducible from its seed.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import next_fast_len


def coloured_noise(num_samples: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1 / f**exponent (0 white, 1 pink, 2 brown).

    Returns:
        float32 ``(num_samples,)`` with unit RMS.
    """
    size = next_fast_len(num_samples, real=True)  # arbitrary lengths can be slow FFT sizes
    spectrum = np.fft.rfft(rng.standard_normal(size))
    freqs = np.arange(spectrum.size, dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2.0), n=size)[:num_samples]
    noise -= noise.mean()
    return (noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)).astype(np.float32)


def pad_silence(samples: np.ndarray, sample_rate: int, lead_s: float, trail_s: float) -> np.ndarray:
    """Add ``lead_s`` and ``trail_s`` seconds of digital silence around ``samples``."""
    lead = np.zeros(round(lead_s * sample_rate), dtype=np.float32)
    trail = np.zeros(round(trail_s * sample_rate), dtype=np.float32)
    return np.concatenate([lead, samples.astype(np.float32), trail])


def set_peak(samples: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """Scale ``samples`` so the largest magnitude is ``peak_dbfs`` decibels below full scale."""
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak <= 0.0:
        return samples.astype(np.float32)
    return (samples * (10.0 ** (peak_dbfs / 20.0) / peak)).astype(np.float32)
