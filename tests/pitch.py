"""Pitch of rendered speech for the TTS tests: a brute-force autocorrelation F0 estimate."""

from __future__ import annotations

import numpy as np


def median_f0(samples: np.ndarray, rate: int = 16000) -> float:
    """Median F0 (Hz) over loud 40 ms frames, from the autocorrelation peak in 60-500 Hz.

    Args:
        samples: mono audio, shape ``(samples,)``.
        rate: its sample rate in Hz (default 16000).
    """
    frame = int(0.04 * rate)
    f0s = []
    rms_all = np.sqrt(np.mean(samples**2))
    for start in range(0, samples.size - frame, frame // 2):
        x = samples[start : start + frame] - samples[start : start + frame].mean()
        if np.sqrt(np.mean(x**2)) < rms_all:
            continue
        ac = np.correlate(x, x, "full")[frame - 1 :]
        lo, hi = rate // 500, rate // 60
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.4 * ac[0]:
            f0s.append(rate / lag)
    assert len(f0s) >= 5, "no voiced frames"
    return float(np.median(f0s))
