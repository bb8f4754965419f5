"""Global CMVN statistics files: save and load (safetensors or JSON), and running sums.

Accumulating them over a manifest is :func:`asr.data.cmvn.accumulate_cmvn_stats`.

A stats file holds two vectors of the front-end's base feature size (before deltas): ``mean``
and ``std``, plus the number of frames they were computed from (``frames``). ``.json`` files
are ``{"mean": [...], "std": [...], "frames": N}``; any other suffix is safetensors.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from asr.frontend.errors import FrontendError
from asr.io.atomic import atomic_path, atomic_write_text

# Standard deviations are floored at this so that constant features do not divide by zero.
STD_FLOOR = 1e-5


def _read(path: Path) -> dict[str, object]:
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise FrontendError(f"{path}: line {err.lineno}: invalid JSON: {err.msg}") from None
        if not isinstance(data, dict):
            raise FrontendError(f"{path}: expected a JSON object with mean and std")
        return data
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return dict(load_file(str(path)))
    except (SafetensorError, ValueError, OSError) as err:
        raise FrontendError(f"{path}: not a readable safetensors file: {err}") from None


def load_cmvn_stats(path: str | Path, dim: int | None = None) -> tuple[Tensor, Tensor]:
    """Read ``(mean, std)``, each ``(dim,)`` float32, from a stats file.

    Raises:
        FrontendError: missing file, bad format, missing key, wrong size, or non-finite or
            non-positive std.
    """
    path = Path(path)
    if not path.is_file():
        raise FrontendError(f"{path}: CMVN stats file not found")
    data = _read(path)
    out = []
    for key in ("mean", "std"):
        if key not in data:
            raise FrontendError(f"{path}: missing {key!r} in CMVN stats")
        try:
            value = torch.as_tensor(data[key], dtype=torch.float64).flatten()
        except (TypeError, ValueError):
            raise FrontendError(f"{path}: {key!r} is not a list of numbers") from None
        if dim is not None and value.numel() != dim:
            raise FrontendError(f"{path}: {key!r} has {value.numel()} values, expected {dim}")
        if not torch.isfinite(value).all():
            raise FrontendError(f"{path}: {key!r} holds NaN or Inf")
        out.append(value.float())
    if (out[1] <= 0).any():
        raise FrontendError(f"{path}: 'std' must be > 0")
    return out[0], out[1]


def save_cmvn_stats(path: str | Path, mean: Tensor, std: Tensor, frames: int = 0) -> None:
    """Write ``mean`` and ``std`` ``(dim,)`` (and the frame count) atomically."""
    path = Path(path)
    mean, std = mean.detach().double().cpu(), std.detach().double().cpu()
    if path.suffix.lower() == ".json":
        data = {"mean": mean.tolist(), "std": std.tolist(), "frames": int(frames)}
        atomic_write_text(path, json.dumps(data, indent=1) + "\n")
        return
    from safetensors.torch import save_file

    tensors = {"mean": mean.float(), "std": std.float(), "frames": torch.tensor([frames])}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


class StatsAccumulator:
    """Running sums of features ``(frames, dim)`` in float64 for mean and std."""

    def __init__(self, dim: int) -> None:
        self.total = torch.zeros(dim, dtype=torch.float64)
        self.squares = torch.zeros(dim, dtype=torch.float64)
        self.frames = 0

    def add(self, features: Tensor) -> None:
        """Add ``(frames, dim)`` features."""
        feats = features.detach().double().cpu()
        self.total += feats.sum(dim=0)
        self.squares += feats.pow(2).sum(dim=0)
        self.frames += feats.shape[0]

    def result(self) -> tuple[Tensor, Tensor]:
        """``(mean, std)`` (population std floored at :data:`STD_FLOOR`)."""
        if self.frames == 0:
            raise FrontendError("no frames to compute CMVN statistics from")
        mean = self.total / self.frames
        var = (self.squares / self.frames - mean.pow(2)).clamp(min=0.0)
        return mean, var.sqrt().clamp(min=STD_FLOOR)
