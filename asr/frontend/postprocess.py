"""Post-processing of feature sequences: deltas, padding masks, CMVN and normalisation.

All functions take ``(batch, frames, features)`` and ``(batch,)`` valid frame counts, use only
valid frames, and return padded frames as 0 (so they are padding-invariant). They are re-exported
by :mod:`asr.frontend.functional`.
"""

from __future__ import annotations

import torch
from torch import Tensor


def length_mask(lengths: Tensor, size: int) -> Tensor:
    """Boolean mask ``(batch, size)``: True at positions before each length."""
    steps = torch.arange(size, device=lengths.device)
    return steps[None, :] < lengths[:, None]


def compute_deltas(features: Tensor, lengths: Tensor, window: int = 2) -> Tensor:
    """Regression deltas ``sum_n n (c[t+n] - c[t-n]) / (2 sum_n n^2)``, ``n = 1..window``.

    Frames beyond each utterance's ends are replaced by its first/last valid frame (as
    ``torchaudio.functional.compute_deltas`` and Kaldi's ``add-deltas`` do for one utterance).

    Args:
        features: ``(batch, frames, features)``.
        lengths: ``(batch,)`` valid frames.
        window: half-width ``N`` of the regression window.

    Returns:
        ``(batch, frames, features)``.
    """
    batch, frames, dim = features.shape
    if frames == 0:
        return features.clone()
    lengths = lengths.to(features.device).long()
    idx = torch.arange(-window, frames + window, device=features.device)[None, :]
    idx = torch.minimum(idx.clamp(min=0), (lengths[:, None] - 1).clamp(min=0))
    padded = features.gather(1, idx[:, :, None].expand(batch, frames + 2 * window, dim))
    denom = 2.0 * sum(n * n for n in range(1, window + 1))
    out = torch.zeros_like(features)
    for n in range(1, window + 1):
        ahead = padded[:, window + n : window + n + frames]
        behind = padded[:, window - n : window - n + frames]
        out = out + n * (ahead - behind)
    return out / denom


def add_deltas(features: Tensor, lengths: Tensor, order: int = 2, window: int = 2) -> Tensor:
    """Append deltas up to ``order`` (2: deltas and delta-deltas).

    ``(batch, frames, f) -> (batch, frames, f * (1 + order))``.
    """
    parts = [features]
    for _ in range(order):
        parts.append(compute_deltas(parts[-1], lengths, window))
    return torch.cat(parts, dim=-1)


def mask_frames(features: Tensor, lengths: Tensor, value: float = 0.0) -> Tensor:
    """Set frames at/after each length to ``value``; ``(batch, frames, features)``."""
    mask = length_mask(lengths.to(features.device), features.shape[1])
    return features.masked_fill(~mask[:, :, None], value)


def _masked_moments(features: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Mean ``(b, 1, f)``, mask ``(b, t, 1)`` and clamped counts ``(b, 1, 1)`` over valid frames."""
    mask = length_mask(lengths.to(features.device), features.shape[1])[:, :, None]
    mask = mask.to(features.dtype)
    count = mask.sum(dim=1, keepdim=True).clamp(min=1.0)
    mean = (features * mask).sum(dim=1, keepdim=True) / count
    return mean, mask, count


def utterance_cmvn(features: Tensor, lengths: Tensor, norm_vars: bool = False) -> Tensor:
    """Kaldi-style per-utterance CMVN over valid frames (population variance, floored at 1e-20).

    Args:
        features: ``(batch, frames, features)``.
        lengths: ``(batch,)`` valid frames.
        norm_vars: also divide by the standard deviation.

    Returns:
        ``(batch, frames, features)`` with padded frames set to 0.
    """
    mean, mask, count = _masked_moments(features, lengths)
    out = features - mean
    if norm_vars:
        var = ((out * mask).pow(2).sum(dim=1, keepdim=True) / count).clamp(min=1e-20)
        out = out / var.sqrt()
    return out * mask


def per_feature_normalize(
    features: Tensor, lengths: Tensor, eps: float = 1e-5, min_std: float = 0.0
) -> Tensor:
    """NeMo ``per_feature`` normalisation: ``(x - mean) / (std + eps)`` per utterance and feature.

    ``std`` is the unbiased (``n - 1``) standard deviation over valid frames, 0 for one frame,
    raised to at least ``min_std``. NeMo has no such floor: a feature that hardly varies (a
    mel band with no signal, as above 4 kHz in telephone audio resampled to 16 kHz) is then
    divided by ~``eps`` and its rounding noise becomes unit-variance features.

    Args:
        features: ``(batch, frames, features)``.
        lengths: ``(batch,)`` valid frames.
        eps: added to the standard deviation (NeMo: 1e-5).
        min_std: floor of the standard deviation (default 0: none, as NeMo).

    Returns:
        ``(batch, frames, features)`` with padded frames set to 0.
    """
    mean, mask, count = _masked_moments(features, lengths)
    centred = (features - mean) * mask
    dof = (count - 1.0).clamp(min=1.0)
    std = (centred.pow(2).sum(dim=1, keepdim=True) / dof).sqrt()
    if min_std > 0.0:
        std = std.clamp(min=min_std)
    return centred / (std + eps)


def global_cmvn(features: Tensor, lengths: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """``(x - mean) / std`` with corpus ``mean``/``std`` ``(features,)``; padding set to 0."""
    return mask_frames((features - mean) / std, lengths)
