"""Checkpoints: atomic directories, a ``latest`` pointer, keep-last/keep-best pruning, averaging.

Layout under ``<exp_dir>/checkpoints/``::

    step-00001200/
        model.safetensors     the model's state dict
        train.safetensors     optimizer, scheduler, scaler, sampler, RNG states (tensors)
        train.json            ... and the rest of that state (see asr.train.state)
        meta.json             {"step": ..., "epoch": ..., "metrics": {"wer": ...}}
    latest                    text file naming the newest complete checkpoint

A checkpoint is written into a hidden temporary folder (``.step-00001200.tmp-<pid>``) and renamed
into place, and ``latest`` is rewritten atomically afterwards, so a run killed at any instant
(even SIGKILL) leaves a consistent checkpoint to resume from. A failed write (a full disk)
removes its temporary folder and raises a one-line :class:`StateError`; temporary folders left
by a killed process are removed by :meth:`CheckpointManager.clean_leftovers` and never read.
A checkpoint that cannot be read on resume is set aside as ``unreadable-step-*`` (kept, never
averaged). Nothing is ever unpickled.
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
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from asr.io.atomic import atomic_write_text
from asr.models.average import StateMismatchError, average_states
from asr.train.state import StateError, load_state, save_state

_PREFIX = "step-"
_UNREADABLE = "unreadable-"  # prefix of a checkpoint set aside because it could not be read


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
        try:
            self._write(tmp, step, epoch, model_state, train_state, metrics)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            atomic_write_text(self.dir / "latest", name + "\n")
        except (OSError, SafetensorError) as err:  # a full disk: the previous checkpoints stay
            raise StateError(
                f"{final}: cannot write checkpoint: {getattr(err, 'strerror', None) or err}"
                f" (the newest complete one is kept: {self.latest() or 'none'})"
            ) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.prune()
        return final

    @staticmethod
    def _write(
        tmp: Path,
        step: int,
        epoch: int,
        model_state: dict[str, torch.Tensor],
        train_state: Any,
        metrics: dict[str, float] | None,
    ) -> None:
        tmp.mkdir()
        tensors = {k: v.detach().cpu().contiguous() for k, v in model_state.items()}
        save_file(tensors, str(tmp / "model.safetensors"))
        save_state(train_state, tmp / "train")
        meta = {"step": step, "epoch": epoch, "metrics": dict(metrics or {})}
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        for child in tmp.iterdir():
            with open(child, "rb") as fh:
                os.fsync(fh.fileno())

    def clean_leftovers(self) -> list[Path]:
        """Remove temporary checkpoint folders of this process or of processes that are gone
        (a killed or failed save); returns them. Those of a live process are left alone."""
        removed = []
        for path in self.dir.glob(f".{_PREFIX}*.tmp-*") if self.dir.is_dir() else []:
            pid = path.name.rsplit("-", 1)[1]
            if pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    def set_aside(self, path: Path) -> Path:
        """Rename an unreadable checkpoint to ``unreadable-step-*`` (kept for inspection; no
        longer listed, pruned or averaged); returns the new path."""
        target = path.with_name(_UNREADABLE + path.name)
        n = 1
        while target.exists():
            target, n = path.with_name(f"{_UNREADABLE}{path.name}.{n}"), n + 1
        os.replace(path, target)
        return target

    def list(self) -> list[CheckpointInfo]:
        """Every complete checkpoint, oldest first."""
        if not self.dir.is_dir():
            return []
        infos = []
        for path in sorted(self.dir.glob(f"{_PREFIX}*")):
            try:
                meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
                metrics = {k: float(v) for k, v in meta.get("metrics", {}).items()}
                infos.append(CheckpointInfo(path, int(meta["step"]), int(meta["epoch"]), metrics))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue  # not a complete checkpoint
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

    def resume_candidates(self) -> list[Path]:
        """Checkpoints to resume from, best candidate first: ``latest``, then newest first."""
        first = self.latest()
        rest = [i.path for i in reversed(self.list()) if i.path != first]
        return ([first] if first is not None else []) + rest

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
    except (OSError, ValueError, KeyError, SafetensorError) as err:
        raise StateError(f"{path}: cannot read checkpoint: {err}") from None
    train_state = load_state(path / "train")
    try:
        metrics = {k: float(v) for k, v in meta.get("metrics", {}).items()}
        info = CheckpointInfo(path, int(meta["step"]), int(meta["epoch"]), metrics)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise StateError(f"{path / 'meta.json'}: not a checkpoint's meta.json: {err!r}") from None
    return model_state, train_state, info


def _alive(pid: int) -> bool:
    """Whether a process with id ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def non_finite(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating tensors of ``state`` holding a NaN or an infinity."""
    return [k for k, v in state.items() if v.is_floating_point() and not bool(v.isfinite().all())]


def average_model_states(paths: list[Path]) -> dict[str, torch.Tensor]:
    """Average the model weights of several checkpoints (floating tensors in float64; others,
    such as batch norm's ``num_batches_tracked``, from the last path):
    :func:`asr.models.average.average_states` over their ``model.safetensors``.

    Raises:
        StateError: no paths, or a checkpoint whose tensors differ from the first's (named).
    """
    if not paths:
        raise StateError("no checkpoints to average")
    states = (load_file(str(Path(path) / "model.safetensors")) for path in paths)
    try:
        return average_states(states)
    except StateMismatchError as err:
        raise StateError(f"{paths[err.index]}: cannot average: {err}") from None
