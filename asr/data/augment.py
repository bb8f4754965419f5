"""Data augmentation: speed perturbation, additive noise, reverberation, SpecAugment.

Waveform augmentations (numpy, run in DataLoader workers) draw every random choice from a
``numpy.random.Generator`` the caller passes in, so a dataset seeds them per (seed, epoch,
utterance) and the result does not depend on the number of workers. SpecAugment runs on features
inside the training forward pass (on the training device), as :func:`spec_augment` and the module
:class:`SpecAugment`, which does nothing in eval mode.

Order in :class:`WaveformAugmenter`: speed -> reverberation -> noise (noise is added after the room,
as a microphone would record it).

Example::

    cfg = AugmentConfig(speed_factors=(0.9, 1.0, 1.1), noise_prob=0.5, noise_files=("babble.wav",))
    augmenter = WaveformAugmenter(cfg, sample_rate=16000)
    samples = augmenter(samples, np.random.default_rng([seed, epoch, index]))
    spec = SpecAugment.from_config(AugmentConfig(spec_freq_masks=2, spec_time_masks=10))
    features = spec(features, frame_lengths)   # (batch, frames, feats), training mode only
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import soxr
import torch
from torch import nn

from asr.errors import AsrError
from asr.io.audio import audio_info, load_audio

# Amplitude decay exponent: a 60 dB energy drop over RT60 is 10 ** (-3 * t / RT60) in amplitude.
_DECAY_60DB = 3.0 * math.log(10.0)
# Synthetic impulse responses are this many RT60s long (energy at the end: -72 dB).
SYNTHETIC_RIR_LENGTH_RT60 = 1.2


class AugmentError(AsrError):
    """An augmentation source (noise or impulse-response file) that cannot be used."""


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation options; everything is off by default."""

    # Speed perturbation: one factor drawn uniformly per utterance (e.g. [0.9, 1.0, 1.1]); a factor
    # f resamples so the audio is 1/f as long and every frequency f times higher. () = off.
    speed_factors: tuple[float, ...] = ()
    # Probability of adding noise to an utterance.
    noise_prob: float = 0.0
    # Noise audio files (any format asr.io.audio reads), looped or cropped to the utterance.
    noise_files: tuple[str, ...] = ()
    # A JSONL manifest of noise recordings (text ignored), used in addition to noise_files.
    noise_manifest: str | None = None
    # Signal-to-noise ratio drawn uniformly from [noise_snr_db_min, noise_snr_db_max], in dB.
    noise_snr_db_min: float = 5.0
    # Upper end of the SNR range, dB.
    noise_snr_db_max: float = 25.0
    # Probability of convolving an utterance with a room impulse response.
    reverb_prob: float = 0.0
    # Impulse-response files; () = synthetic exponentially decaying noise RIRs.
    rir_files: tuple[str, ...] = ()
    # Synthetic RIR reverberation time (60 dB decay) drawn from [rt60_s_min, rt60_s_max], seconds.
    rir_rt60_s_min: float = 0.2
    # Upper end of the synthetic RT60 range, seconds.
    rir_rt60_s_max: float = 0.8
    # Synthetic RIR direct-to-reverberant energy ratio drawn from [drr_db_min, drr_db_max], dB.
    rir_drr_db_min: float = 0.0
    # Upper end of the direct-to-reverberant ratio range, dB.
    rir_drr_db_max: float = 10.0
    # SpecAugment: number of frequency masks per utterance.
    spec_freq_masks: int = 0
    # SpecAugment: frequency mask width drawn from 0..spec_freq_mask_width bins (F).
    spec_freq_mask_width: int = 27
    # SpecAugment: number of time masks (the cap when spec_time_masks_per_frame > 0).
    spec_time_masks: int = 0
    # Adaptive multiplicity (Park et al. 2020): min(spec_time_masks, floor(p_M * frames)) masks per
    # utterance; 0 = always spec_time_masks.
    spec_time_masks_per_frame: float = 0.0
    # Time mask width drawn from 0..floor(ratio * utterance frames) (adaptive size, p_S).
    spec_time_mask_ratio: float = 0.05
    # Cap on the time mask width in frames (the T of SpecAugment); None = no cap.
    spec_time_mask_max_width: int | None = None
    # Value written into masked features (0 = the mean of normalised features).
    spec_mask_value: float = 0.0

    def __post_init__(self) -> None:
        if any(not (f > 0 and math.isfinite(f)) for f in self.speed_factors):
            raise ValueError(f"speed_factors must be positive, got {list(self.speed_factors)}")
        for name in ("noise_prob", "reverb_prob", "spec_time_mask_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for low, high in (
            ("noise_snr_db_min", "noise_snr_db_max"),
            ("rir_rt60_s_min", "rir_rt60_s_max"),
            ("rir_drr_db_min", "rir_drr_db_max"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} must be <= {high}")
        if self.rir_rt60_s_min <= 0:
            raise ValueError(f"rir_rt60_s_min must be > 0, got {self.rir_rt60_s_min}")
        if self.noise_prob > 0 and not (self.noise_files or self.noise_manifest):
            raise ValueError("noise_prob > 0 needs noise_files or noise_manifest")
        for name in ("spec_freq_masks", "spec_freq_mask_width", "spec_time_masks"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.spec_time_masks_per_frame < 0:
            raise ValueError("spec_time_masks_per_frame must be >= 0")

    @property
    def waveform_enabled(self) -> bool:
        """True when any waveform augmentation (speed, noise, reverb) can change audio."""
        return bool(set(self.speed_factors) - {1.0}) or self.noise_prob > 0 or self.reverb_prob > 0


# ---- waveform functions ----------------------------------------------------------------------


def speed_perturb(samples: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play ``samples`` ``factor`` times faster (tempo and pitch both change), by resampling.

    Args:
        samples: ``(samples,)`` float audio at ``sample_rate``.
        factor: speed factor (> 0); 1.1 gives ``len / 1.1`` samples and frequencies x 1.1.
        sample_rate: rate of ``samples`` in Hz (kept).

    Returns:
        float32 ``(round(samples / factor),)``.
    """
    if factor == 1.0:
        return np.asarray(samples, dtype=np.float32)
    out = soxr.resample(np.asarray(samples, dtype=np.float32), sample_rate * factor, sample_rate)
    return np.ascontiguousarray(out, dtype=np.float32)


def fit_length(noise: np.ndarray, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Crop ``noise`` at a random offset, or loop it from a random start, to ``num_samples``."""
    if len(noise) == 0:
        raise ValueError("fit_length: empty noise")
    if len(noise) >= num_samples:
        start = int(rng.integers(0, len(noise) - num_samples + 1))
        return noise[start : start + num_samples]
    start = int(rng.integers(0, len(noise)))
    reps = -(-(num_samples + start) // len(noise))
    return np.tile(noise, reps)[start : start + num_samples]


def add_noise(samples: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Add ``noise`` scaled so that ``10 log10(P_signal / P_noise) == snr_db`` over the utterance.

    Args:
        samples: ``(samples,)`` clean audio.
        noise: ``(samples,)`` noise, same length (see :func:`fit_length`).
        snr_db: wanted signal-to-noise ratio in dB.

    Returns:
        float32 ``(samples,)``; ``samples`` unchanged when either signal is silent.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if noise.shape != samples.shape:
        raise ValueError(f"add_noise: noise shape {noise.shape} != samples {samples.shape}")
    p_signal = float(np.mean(np.square(samples, dtype=np.float64)))
    p_noise = float(np.mean(np.square(noise, dtype=np.float64)))
    if p_signal == 0.0 or p_noise == 0.0:
        return samples
    scale = math.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (samples + scale * noise).astype(np.float32)


def synthetic_rir(
    rt60_s: float, sample_rate: int, rng: np.random.Generator, drr_db: float = 5.0
) -> np.ndarray:
    """A room impulse response: unit direct path then exponentially decaying Gaussian noise.

    Args:
        rt60_s: time for the reverberant energy to fall by 60 dB, seconds.
        sample_rate: Hz.
        rng: source of the noise.
        drr_db: direct-to-reverberant energy ratio in dB (default 5).

    Returns:
        float32 ``(ceil(SYNTHETIC_RIR_LENGTH_RT60 * rt60_s * sample_rate),)`` with ``rir[0] == 1``.
    """
    length = max(2, math.ceil(SYNTHETIC_RIR_LENGTH_RT60 * rt60_s * sample_rate))
    t = np.arange(1, length) / sample_rate
    tail = rng.standard_normal(length - 1) * np.exp(-_DECAY_60DB * t / rt60_s)
    tail *= math.sqrt(10.0 ** (-drr_db / 10.0) / float(np.sum(tail**2)))
    return np.concatenate([[1.0], tail]).astype(np.float32)


def normalize_rir(rir: np.ndarray) -> np.ndarray:
    """Drop what precedes the direct path (the peak) and scale the peak to 1, so a convolved
    utterance keeps its timing and level of the direct sound."""
    rir = np.asarray(rir, dtype=np.float64)
    peak = int(np.argmax(np.abs(rir)))
    if rir[peak] == 0:
        raise ValueError("normalize_rir: all-zero impulse response")
    return (rir[peak:] / rir[peak]).astype(np.float32)


def apply_rir(samples: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with an impulse response by FFT, keeping the first ``len(samples)`` samples.

    Args:
        samples: ``(samples,)`` audio.
        rir: ``(taps,)`` impulse response, direct path at index 0 (see :func:`normalize_rir`).

    Returns:
        float32 ``(samples,)``: ``(samples * rir)[:len(samples)]``.
    """
    n = len(samples) + len(rir) - 1
    size = 1 << max(0, (n - 1).bit_length())
    spectrum = np.fft.rfft(samples, size) * np.fft.rfft(rir, size)
    return np.fft.irfft(spectrum, size)[: len(samples)].astype(np.float32)


# ---- sources and the per-utterance augmenter -------------------------------------------------


@dataclass(frozen=True)
class _Segment:
    path: str
    offset: float
    duration: float


def _noise_segments(cfg: AugmentConfig) -> list[_Segment]:
    segments = []
    for path in cfg.noise_files:
        segments.append(_Segment(str(path), 0.0, audio_info(path).duration_s))
    if cfg.noise_manifest:
        from asr.data.manifest import read_manifest

        for utt in read_manifest(cfg.noise_manifest):
            segments.append(_Segment(utt.audio_filepath, utt.offset, utt.duration))
    return segments


class WaveformAugmenter:
    """Applies the waveform part of an :class:`AugmentConfig` to one utterance at a time.

    Args:
        cfg: augmentation options.
        sample_rate: rate of the utterances (noise and RIR files are resampled to it).

    Raises:
        AugmentError: a noise or RIR file that cannot be read (names the file).
    """

    def __init__(self, cfg: AugmentConfig, sample_rate: int) -> None:
        self.cfg = cfg
        self.sample_rate = int(sample_rate)
        try:
            self._noise = _noise_segments(cfg) if cfg.noise_prob > 0 else []
        except AsrError as err:
            raise AugmentError(f"noise source: {err}") from None
        self._rir_cache: dict[str, np.ndarray] = {}

    def __call__(self, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augment ``(samples,)`` float32 audio; every random choice comes from ``rng``."""
        cfg = self.cfg
        if cfg.speed_factors:
            factor = float(cfg.speed_factors[int(rng.integers(len(cfg.speed_factors)))])
            samples = speed_perturb(samples, factor, self.sample_rate)
        if cfg.reverb_prob > 0 and rng.random() < cfg.reverb_prob:
            samples = apply_rir(samples, self._draw_rir(rng))
        if cfg.noise_prob > 0 and rng.random() < cfg.noise_prob:
            snr_db = float(rng.uniform(cfg.noise_snr_db_min, cfg.noise_snr_db_max))
            samples = add_noise(samples, self._draw_noise(len(samples), rng), snr_db)
        return samples

    def _draw_rir(self, rng: np.random.Generator) -> np.ndarray:
        cfg = self.cfg
        if not cfg.rir_files:
            rt60 = float(rng.uniform(cfg.rir_rt60_s_min, cfg.rir_rt60_s_max))
            drr = float(rng.uniform(cfg.rir_drr_db_min, cfg.rir_drr_db_max))
            return synthetic_rir(rt60, self.sample_rate, rng, drr)
        path = cfg.rir_files[int(rng.integers(len(cfg.rir_files)))]
        if path not in self._rir_cache:
            try:
                self._rir_cache[path] = normalize_rir(load_audio(path, self.sample_rate)[0])
            except (AsrError, ValueError) as err:
                raise AugmentError(f"impulse response {path}: {err}") from None
        return self._rir_cache[path]

    def _draw_noise(self, num_samples: int, rng: np.random.Generator) -> np.ndarray:
        seg = self._noise[int(rng.integers(len(self._noise)))]
        needed_s = num_samples / self.sample_rate
        try:
            if seg.duration > needed_s + 0.01:
                offset = seg.offset + float(rng.uniform(0.0, seg.duration - needed_s - 0.01))
                noise, _ = load_audio(seg.path, self.sample_rate, offset, needed_s)
            else:
                noise, _ = load_audio(seg.path, self.sample_rate, seg.offset, seg.duration or None)
        except AsrError as err:
            raise AugmentError(f"noise file: {err}") from None
        return fit_length(noise, num_samples, rng)


# ---- SpecAugment -----------------------------------------------------------------------------


def _uniform_int(high: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Integers uniform in ``[0, high]`` (inclusive) elementwise; ``high`` is a long tensor."""
    u = torch.rand(high.shape, generator=generator, device=high.device)
    return torch.minimum((u * (high + 1).to(u.dtype)).long(), high)


def spec_augment_masks(
    lengths: torch.Tensor,
    num_frames: int,
    num_features: int,
    num_freq_masks: int = 2,
    freq_mask_width: int = 27,
    num_time_masks: int = 10,
    time_mask_max_ratio: float = 0.05,
    time_masks_per_frame: float = 0.0,
    time_mask_max_width: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw SpecAugment masks: which bins and which frames of each utterance to mask.

    Frequency masks: ``num_freq_masks`` bands of width ``U{0..freq_mask_width}`` at a uniform start.
    Time masks: ``min(num_time_masks, floor(time_masks_per_frame * length))`` masks when
    ``time_masks_per_frame > 0`` (adaptive multiplicity), else ``num_time_masks``; each of width
    ``U{0..W}`` with ``W = floor(time_mask_max_ratio * length)`` (adaptive size; capped at
    ``time_mask_max_width``) and a start such that the mask ends within ``length``.

    Args:
        lengths: ``(batch,)`` valid frames per utterance.
        num_frames: padded frames of the batch.
        num_features: feature bins.
        generator: torch random generator (on CPU or the device to draw on); None: the default.

    Returns:
        ``(freq_mask (batch, num_features), time_mask (batch, num_frames))`` bool; the time mask
        never covers a frame at or after the utterance's length.
    """
    device = generator.device if generator is not None else torch.device("cpu")
    lengths = lengths.to(device=device, dtype=torch.long).clamp(0, num_frames)
    batch = lengths.shape[0]
    freq = torch.zeros(batch, num_features, dtype=torch.bool, device=device)
    if num_freq_masks > 0 and freq_mask_width > 0:
        high = torch.full(
            (batch, num_freq_masks), min(freq_mask_width, num_features), device=device
        )
        width = _uniform_int(high, generator)
        start = _uniform_int(num_features - width, generator)
        bins = torch.arange(num_features, device=device)
        band = (bins >= start[..., None]) & (bins < (start + width)[..., None])
        freq = band.any(dim=1)
    time = torch.zeros(batch, num_frames, dtype=torch.bool, device=device)
    if num_time_masks > 0 and time_mask_max_ratio > 0:
        max_width = (lengths.double() * time_mask_max_ratio).floor().long()
        if time_mask_max_width is not None:
            max_width = max_width.clamp(max=time_mask_max_width)
        count = torch.full_like(lengths, num_time_masks)
        if time_masks_per_frame > 0:
            adaptive = (lengths.double() * time_masks_per_frame).floor().long()
            count = torch.minimum(count, adaptive)
        high = max_width[:, None].expand(batch, num_time_masks)
        width = _uniform_int(high, generator)
        start = _uniform_int(lengths[:, None] - width, generator)
        active = torch.arange(num_time_masks, device=device)[None, :] < count[:, None]
        frames = torch.arange(num_frames, device=device)
        span = (frames >= start[..., None]) & (frames < (start + width)[..., None])
        time = (span & active[..., None]).any(dim=1)
    return freq, time


def spec_augment(
    features: torch.Tensor,
    lengths: torch.Tensor,
    num_freq_masks: int = 2,
    freq_mask_width: int = 27,
    num_time_masks: int = 10,
    time_mask_max_ratio: float = 0.05,
    time_masks_per_frame: float = 0.0,
    time_mask_max_width: int | None = None,
    mask_value: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SpecAugment (Park et al. 2019; adaptive time masks, Park et al. 2020) on valid frames only.

    Args:
        features: ``(batch, frames, features)``.
        lengths: ``(batch,)`` valid frames; padding frames are never changed.
        num_freq_masks, freq_mask_width, num_time_masks, time_mask_max_ratio, time_masks_per_frame,
            time_mask_max_width, generator: see :func:`spec_augment_masks`.
        mask_value: value written into masked cells (default 0.0).

    Returns:
        ``(batch, frames, features)``, a new tensor.
    """
    _, frames, feats = features.shape
    freq, time = spec_augment_masks(
        lengths,
        frames,
        feats,
        num_freq_masks,
        freq_mask_width,
        num_time_masks,
        time_mask_max_ratio,
        time_masks_per_frame,
        time_mask_max_width,
        generator,
    )
    freq, time = freq.to(features.device), time.to(features.device)
    valid = (
        torch.arange(frames, device=features.device)[None, :] < lengths.to(features.device)[:, None]
    )
    mask = (freq[:, None, :] & valid[:, :, None]) | time[:, :, None]
    return features.masked_fill(mask, mask_value)


class SpecAugment(nn.Module):
    """SpecAugment as a module: masks features in training mode, identity in eval mode.

    Args: as :func:`spec_augment` (defaults: no masks at all).
    """

    def __init__(
        self,
        num_freq_masks: int = 0,
        freq_mask_width: int = 27,
        num_time_masks: int = 0,
        time_mask_max_ratio: float = 0.05,
        time_masks_per_frame: float = 0.0,
        time_mask_max_width: int | None = None,
        mask_value: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_freq_masks = num_freq_masks
        self.freq_mask_width = freq_mask_width
        self.num_time_masks = num_time_masks
        self.time_mask_max_ratio = time_mask_max_ratio
        self.time_masks_per_frame = time_masks_per_frame
        self.time_mask_max_width = time_mask_max_width
        self.mask_value = mask_value

    @classmethod
    def from_config(cls, cfg: AugmentConfig) -> SpecAugment:
        """The SpecAugment part of an :class:`AugmentConfig`."""
        return cls(
            cfg.spec_freq_masks,
            cfg.spec_freq_mask_width,
            cfg.spec_time_masks,
            cfg.spec_time_mask_ratio,
            cfg.spec_time_masks_per_frame,
            cfg.spec_time_mask_max_width,
            cfg.spec_mask_value,
        )

    def forward(
        self,
        features: torch.Tensor,
        lengths: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Mask ``features (batch, frames, feats)`` given ``lengths (batch,)``; eval: identity."""
        if not self.training or (self.num_freq_masks == 0 and self.num_time_masks == 0):
            return features
        return spec_augment(
            features,
            lengths,
            self.num_freq_masks,
            self.freq_mask_width,
            self.num_time_masks,
            self.time_mask_max_ratio,
            self.time_masks_per_frame,
            self.time_mask_max_width,
            self.mask_value,
            generator,
        )

    def extra_repr(self) -> str:
        return (
            f"freq_masks={self.num_freq_masks}x{self.freq_mask_width}, "
            f"time_masks={self.num_time_masks} (ratio {self.time_mask_max_ratio}, "
            f"per_frame {self.time_masks_per_frame}, max_width {self.time_mask_max_width})"
        )
