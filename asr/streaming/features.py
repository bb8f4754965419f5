"""Incremental front-end features for streaming: audio in pieces -> the same raw features as the
whole utterance, and normalisation by statistics gathered so far.

The raw features (everything up to normalisation) of frame ``t`` depend only on the samples of
that frame (``t * shift - offset + [0, frame_length)``), so they are computed on a segment of
the recent audio that starts a few frames before the first new frame and kept only where the
frame lies wholly inside the segment (and past its first sample, whose signal pre-emphasis
lacks the sample before it). They then equal the whole-utterance features exactly; at the end
of the stream (:meth:`StreamingFeatures.compute` with ``final=True``) the last frames are
padded as the whole utterance's are.

Normalisation (``FrontendConfig.normalize``): ``none`` and ``global`` (corpus statistics) are
exact; ``per_feature`` and ``utterance`` use whole-utterance statistics, which a stream cannot
know, so :class:`RunningStats` gives the statistics of every frame seen so far in the stream.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import Tensor

from asr.errors import AsrError
from asr.frontend import Frontend


class StreamingError(AsrError):
    """Streaming cannot run with this model or these options."""


class RunningStats:
    """Per-feature mean and standard deviation of all frames seen so far (float64).

    Args:
        num_features: feature dimension.
    """

    def __init__(self, num_features: int) -> None:
        self.count = 0
        self.sum = torch.zeros(num_features, dtype=torch.float64)
        self.sumsq = torch.zeros(num_features, dtype=torch.float64)

    def update(self, feats: Tensor) -> None:
        """Add ``(frames, features)`` raw features."""
        x = feats.double()
        self.count += int(x.shape[0])
        self.sum += x.sum(0)
        self.sumsq += x.pow(2).sum(0)

    def moments(self, unbiased: bool) -> tuple[Tensor, Tensor]:
        """``(mean, std)`` each ``(features,)`` float64 (std 0 before two frames)."""
        n = max(self.count, 1)
        mean = self.sum / n
        var = (self.sumsq - n * mean.pow(2)).clamp(min=0.0)
        dof = max(n - 1, 1) if unbiased else n
        return mean, (var / dof).sqrt()


class StreamingFeatures:
    """Raw features of a growing signal, computed once per frame.

    Args:
        frontend: the model's front-end (copied; the copy skips normalisation).
    Raises:
        StreamingError: ``deltas`` (they would need normalised neighbours; not supported).
    """

    def __init__(self, frontend: Frontend) -> None:
        cfg = frontend.cfg
        if cfg.deltas:
            raise StreamingError("streaming does not support front-ends with deltas")
        self.cfg = cfg
        raw_cfg = dataclasses.replace(cfg, normalize="none")
        self.raw = Frontend(raw_cfg, load_stats=False).eval().to(frontend.mel_matrix.device)
        self.frontend = frontend
        self.shift = cfg.frame_shift_samples
        self.length = cfg.frame_length_samples
        from asr.frontend.functional import frame_offset

        self.offset = frame_offset(
            self.length, self.shift, cfg.snip_edges, cfg.center, cfg.fft_size
        )
        self.margin = math.ceil((self.offset + 1) / self.shift) + 1  # frames recomputed
        self.stats = RunningStats(frontend.num_features)
        self.reset()

    def reset(self) -> None:
        """Start a new utterance (normalisation statistics are kept)."""
        self.audio = np.zeros(0, dtype=np.float32)  # samples from ``self.base`` on
        self.base = 0  # utterance sample index of audio[0]
        self.total = 0  # samples received in this utterance
        self.done = 0  # raw feature frames produced

    def accept(self, samples: np.ndarray) -> None:
        """Append ``(n,)`` float32 samples at the model's rate."""
        self.audio = np.concatenate([self.audio, samples.astype(np.float32, copy=False)])
        self.total += len(samples)

    @torch.no_grad()
    def compute(self, final: bool = False) -> Tensor:
        """The raw feature frames that can now be computed exactly, ``(frames, features)``
        float32; with ``final`` the rest of the utterance (the audio ends here)."""
        first = max(0, self.done - self.margin)
        start = first * self.shift
        seg = self.audio[start - self.base :]
        if len(seg) == 0:
            return torch.zeros(0, self.frontend.num_features)
        feats, counts = self.raw(torch.from_numpy(seg)[None], None)
        count = int(counts[0])
        if not final:  # frames wholly inside the segment
            count = min(count, (len(seg) - self.length + self.offset) // self.shift + 1)
        new = feats[0, self.done - first : count].float()
        self.done = max(self.done, first + count)
        keep = max(0, (self.done - self.margin) * self.shift - self.base)
        if keep > 0:
            self.audio = self.audio[keep:]
            self.base += keep
        self.stats.update(new)
        return new

    def normalize(self, feats: Tensor) -> Tensor:
        """``(frames, features)`` raw features normalised as the model's front-end does, with
        the stream's statistics so far for per-utterance normalisations."""
        cfg = self.cfg
        if cfg.normalize == "none":
            return feats
        if cfg.normalize == "global":
            fe = self.frontend
            return (feats - fe.cmvn_mean.to(feats)) / fe.cmvn_std.to(feats)
        if cfg.normalize == "per_feature":
            mean, std = self.stats.moments(unbiased=True)
            if cfg.normalize_min_std > 0:
                std = std.clamp(min=cfg.normalize_min_std)
            return ((feats.double() - mean) / (std + cfg.normalize_eps)).float()
        mean, std = self.stats.moments(unbiased=False)
        out = feats.double() - mean
        if cfg.normalize_vars:
            out = out / std.clamp(min=1e-10)
        return out.float()
