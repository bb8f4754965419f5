"""Checkpoints: atomic directories, a ``latest`` pointer, keep-last/keep-best pruning, averaging.

Layout under ``<exp_dir>/checkpoints/``::

    step-00001200/
        model.safetensors     the model's state dict
        train.safetensors     optimizer, scheduler, scaler, sampler, RNG states (tensors)
        train.json            ... and the rest of that state (see asr.train.state)
        meta.json             {"step": ..., "epoch": ..., "metrics": {"wer": ...}}
    latest                    text file naming the newest complete checkpoint

A checkpoint is written into a hidden temporary folder and renamed into place, and ``latest`` is
rewritten atomically afterwards, so a run killed at any instant (even SIGKILL) leaves a
consistent checkpoint to resume from. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from asr.atomic import atomic_write_text
from asr.train.state import StateError, load_state, save_state

_PREFIX = "step-"


@dataclass(frozen=True)
class CheckpointInfo:
    """What meta.json of one checkpoint says."""

    path: Path  # the checkpoint folder
    step: int  # optimizer steps taken when it was written
    epoch: int  # epoch the step belongs to
    metrics: dict[str, float]  # validation metrics at that step (may be empty)


class CheckpointManager:
    """Writes, finds, prunes and averages the checkpoints of one experiment.

    Args:
        exp_dir: the experiment folder; checkpoints go to ``exp_dir/checkpoints``.
        keep_last: how many of the newest checkpoints to keep (default 2).
        keep_best: how many of the best checkpoints by ``metric`` to keep (default 5).
        metric: the validation metric that ranks checkpoints (default ``"wer"``).
        higher_is_better: whether larger ``metric`` values are better (default False).
    """

    def __init__(
        self,
        exp_dir: str | Path,
        keep_last: int = 2,
        keep_best: int = 5,
        metric: str = "wer",
        higher_is_better: bool = False,
    ) -> None:
        self.dir = Path(exp_dir) / "checkpoints"
        self.keep_last = keep_last
        self.keep_best = keep_best
        self.metric = metric
        self.higher_is_better = higher_is_better

    def save(
        self,
        step: int,
        epoch: int,
        model_state: dict[str, torch.Tensor],
        train_state: Any,
        metrics: dict[str, float] | None = None,
    ) -> Path:
        """Write a checkpoint atomically, point ``latest`` at it and prune old ones."""
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"{_PREFIX}{step:08d}"
        final = self.dir / name
        tmp = self.dir / f".{name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        tensors = {k: v.detach().cpu().contiguous() for k, v in model_state.items()}
        save_file(tensors, str(tmp / "model.safetensors"))
        save_state(train_state, tmp / "train")
        meta = {"step": step, "epoch": epoch, "metrics": dict(metrics or {})}
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        for child in tmp.iterdir():
            with open(child, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        atomic_write_text(self.dir / "latest", name + "\n")
        self.prune()
        return final

    def list(self) -> list[CheckpointInfo]:
        """Every complete checkpoint, oldest first."""
        if not self.dir.is_dir():
            return []
        infos = []
        for path in sorted(self.dir.glob(f"{_PREFIX}*")):
            try:
                meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            metrics = {k: float(v) for k, v in meta.get("metrics", {}).items()}
            infos.append(CheckpointInfo(path, int(meta["step"]), int(meta["epoch"]), metrics))
        return sorted(infos, key=lambda i: i.step)

    def latest(self) -> Path | None:
        """The newest complete checkpoint, or None when there is none."""
        pointer = self.dir / "latest"
        if pointer.exists():
            path = self.dir / pointer.read_text(encoding="utf-8").strip()
            if (path / "meta.json").exists():
                return path
        infos = self.list()
        return infos[-1].path if infos else None

    def best(self, k: int | None = None) -> list[CheckpointInfo]:
        """The ``k`` (default keep_best) best checkpoints by the metric, best first."""
        scored = [i for i in self.list() if math.isfinite(i.metrics.get(self.metric, math.nan))]
        sign = -1.0 if self.higher_is_better else 1.0
        scored.sort(key=lambda i: (sign * i.metrics[self.metric], -i.step))
        return scored[: self.keep_best if k is None else k]

    def prune(self) -> None:
        """Delete checkpoints that are neither among the newest nor among the best."""
        infos = self.list()
        keep = {i.path for i in infos[-self.keep_last :]} if self.keep_last > 0 else set()
        keep |= {i.path for i in self.best()}
        for info in infos:
            if info.path not in keep:
                shutil.rmtree(info.path, ignore_errors=True)


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], Any, CheckpointInfo]:
    """Read ``(model_state, train_state, info)`` from a checkpoint folder."""
    path = Path(path)
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        model_state = load_file(str(path / "model.safetensors"))
    except FileNotFoundError as err:
        raise StateError(f"{err.filename}: checkpoint file is missing") from None
    except (OSError, ValueError) as err:
        raise StateError(f"{path}: cannot read checkpoint: {err}") from None
    train_state = load_state(path / "train")
    metrics = {k: float(v) for k, v in meta.get("metrics", {}).items()}
    return model_state, train_state, CheckpointInfo(path, meta["step"], meta["epoch"], metrics)


def average_model_states(paths: list[Path]) -> dict[str, torch.Tensor]:
    """Average the model weights of several checkpoints (floating tensors; others from the last).

    Integer buffers such as batch norm's ``num_batches_tracked`` are taken from the last path.
    """
    if not paths:
        raise StateError("no checkpoints to average")
    total: dict[str, torch.Tensor] = {}
    last: dict[str, torch.Tensor] = {}
    for path in paths:
        state = load_file(str(Path(path) / "model.safetensors"))
        for key, value in state.items():
            if value.is_floating_point():
                acc = value.to(torch.float64)
                total[key] = total[key] + acc if key in total else acc
            last[key] = value
    return {
        key: (total[key] / len(paths)).to(value.dtype) if key in total else value
        for key, value in last.items()
    }
