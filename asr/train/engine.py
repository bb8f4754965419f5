"""The training engine both trainers share: step, accumulation, AMP, clipping, EMA, checkpoints,
exact resume, the epoch loop and its logs.

A trainer (:mod:`asr.train.acoustic`, :mod:`asr.train.lm`) builds its model and its resumable
data source, then hands them to an :class:`Engine` with its config's ``engine:`` section (an
:class:`~asr.train.engine_config.EngineConfig`: one type, one set of defaults for both YAMLs),
its ``optim:`` section, a :class:`RunPlan` (what it works out itself: the schedule's horizon, the
ranking metric, ...) and itself as the :class:`TrainTask`: the task says how a batch becomes a
loss, how to validate and how to export the averaged weights; the engine does everything else
the same way for both.

Checkpoints (``exp_dir/checkpoints``, see :mod:`asr.train.checkpoint`) hold the model weights (the
EMA weights when EMA is on, the raw ones then in the train state) and, besides, the step, epoch,
optimizer, grad scaler, data position (under the plan's ``data_key``) and every rank's RNG
states, so a resumed run continues with the same batches and the same losses. Under ``torchrun``
every rank trains on its shard; only rank 0 writes files.

Divergence: an optimizer step whose gradient norm is not finite (a NaN/Inf loss, an overflow) is
skipped (no update, no EMA, batch-norm statistics restored) and counted; ``max_nonfinite_steps``
such steps in a row stop the run with a one-line :class:`DivergedError`, and so does a run that
ends with more than half of its steps skipped (nothing is exported). A checkpoint or an export
with a non-finite tensor is never written, so the last good checkpoint survives. The logged
``train/loss`` is the mean over finite losses, NaN when there was none (and
``train/skipped_steps`` counts the skipped steps of the window).

Resuming takes the newest readable checkpoint: an unreadable one (truncated, corrupt) is set
aside and the next newest used, which is said in one line; a checkpoint that does not fit the
model (a changed architecture) is a one-line :class:`~asr.train.state.StateError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Iterator, Sized
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from tqdm import tqdm

from asr.errors import AsrError
from asr.train import distributed as D
from asr.train.checkpoint import (
    CheckpointManager,
    average_model_states,
    load_checkpoint,
    non_finite,
)
from asr.train.engine_config import EngineConfig
from asr.train.logbook import TrainLogger
from asr.train.optim import OptimConfig, build_optimizer, lr_at, set_lr
from asr.train.runtime import autocast, rng_states, seed_everything, set_rng_states
from asr.train.state import StateError


class DivergedError(AsrError):
    """Training diverged: non-finite losses, gradients or weights (the message says where)."""


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What a trainer works out for the engine from its data and task (no YAML keys)."""

    total_steps: int  # the LR schedule's horizon (optimizer steps)
    best_metric: str  # the metric that ranks checkpoints (engine.best_metric, resolved)
    validates: bool  # whether there is validation data (else the newest checkpoints average)
    validate_at_checkpoints: bool = False  # validate at step checkpoints too (else epoch ends)
    rate_name: str = "items_per_s"  # logged throughput, train/<rate_name>
    rate_divisor: float = 1.0  # work units per throughput unit (3600: audio seconds -> hours)
    data_key: str = "loader"  # the name of the data position in the checkpoint's train state


class ResumableData(Protocol):
    """An iterable of batches whose position can be saved and restored (loader, text stream)."""

    def __iter__(self) -> Iterator[Any]: ...

    def set_epoch(self, epoch: int) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class TrainTask(Protocol):
    """What differs between trainers: the loss of a batch, validation, export."""

    def loss(self, forward: Any, batch: Any) -> tuple[Tensor, float, float]:
        """``(loss, weight, work)`` of one batch: the scalar loss to minimise, its weight in the
        logged mean loss, and the work it stands for (audio seconds, tokens) for the throughput.
        ``forward(*inputs)`` runs the model under the engine's autocast."""
        ...

    def validate(self) -> dict[str, float]:
        """Validation metrics (``{}`` without validation data); every rank calls it."""
        ...

    def export(self, state: dict[str, Tensor]) -> Path:
        """Write the final model from averaged weights (rank 0); returns its folder."""
        ...


@dataclasses.dataclass
class _Window:
    """Training scalars since the last log line."""

    loss_sum: float = 0.0  # sum of weight x loss over finite losses
    weight: float = 0.0  # sum of the weights of finite losses
    work: float = 0.0  # audio seconds, tokens, ...
    skipped: int = 0  # optimizer steps skipped (non-finite gradient norm)
    start: float = dataclasses.field(default_factory=time.perf_counter)

    def add(self, loss: float, weight: float, work: float) -> None:
        if math.isfinite(loss):
            self.loss_sum += loss * weight
            self.weight += weight
        self.work += work


class Engine:
    """Trains ``model`` on ``data`` for ``task``; see the module docstring.

    Args:
        cfg: the config's ``engine:`` section.
        optim: the config's ``optim:`` section (optimiser and LR schedule).
        plan: what the trainer worked out (schedule horizon, ranking metric, ...).
        model: the model to train (moved to ``info.device`` here).
        data: the training batches, resumable.
        task: loss, validation and export of the trainer.
        exp_dir: the experiment folder (checkpoints, logs).
        info: this process's place in the job.
    """

    def __init__(
        self,
        cfg: EngineConfig,
        optim: OptimConfig,
        plan: RunPlan,
        model: nn.Module,
        data: ResumableData,
        task: TrainTask,
        exp_dir: str | Path,
        info: D.DistInfo,
    ) -> None:
        self.cfg, self.optim, self.plan, self.data, self.task = cfg, optim, plan, data, task
        self.exp_dir, self.info, self.device = Path(exp_dir), info, info.device
        self.model = model.to(self.device)
        self.ddp = self._wrap(self.model)
        self.optimizer = build_optimizer(self.model.parameters(), optim)
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp == "fp16")
        self.ema: dict[str, Tensor] | None = None
        if cfg.ema_decay > 0:
            self.ema = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        # without validation metrics the newest average_best checkpoints are averaged: keep them
        keep = cfg.keep_last if plan.validates else max(cfg.keep_last, cfg.average_best)
        self.checkpoints = CheckpointManager(
            self.exp_dir, keep, cfg.average_best, metric=plan.best_metric
        )
        self.step, self.epoch = 0, 0
        self.nonfinite_streak = 0  # skipped optimizer steps in a row
        self.nonfinite_total = 0  # skipped optimizer steps of the run (kept across resumes)
        seed_everything(cfg.seed + 1000 * info.rank)  # per-rank dropout/augmentation streams

    def _wrap(self, model: nn.Module) -> nn.Module:
        wrapped: nn.Module = model
        if self.cfg.compile:
            wrapped = torch.compile(model)  # type: ignore[assignment]
        if self.info.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            wrapped = nn.parallel.DistributedDataParallel(wrapped, device_ids=ids)
        return wrapped

    # ----------------------------------------------------------------------------- state
    def train_state(self) -> dict[str, Any]:
        """Everything but the model weights needed to resume exactly (gathers RNG states)."""
        rngs = D.all_gather_objects(rng_states(), self.info)
        return {
            "step": self.step,
            "epoch": self.epoch,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            self.plan.data_key: self.data.state_dict(),
            "rng": rngs,
            "skipped_steps": self.nonfinite_total,
        }

    def save_checkpoint(self, metrics: dict[str, float] | None = None) -> None:
        """Checkpoint on rank 0 (all ranks must call it: RNG states are gathered)."""
        state = self.train_state()
        weights = self.model.state_dict()
        if self.ema is not None:  # checkpoints (hence averaging and export) hold the EMA weights
            state["model_raw"], weights = weights, self.ema
        bad = non_finite(weights) + non_finite(state.get("model_raw", {}))
        if bad:  # every rank sees the same weights: all stop here
            raise DivergedError(
                f"training diverged: the weights are not finite at step {self.step} ({bad[0]}); "
                f"no checkpoint written, the last good one is kept ({self._last_good()}); "
                f"lower optim.lr (now {self.optim.lr:g}) or set engine.grad_clip"
            )
        if self.info.is_main:
            self.checkpoints.save(self.step, self.epoch, weights, state, metrics=metrics)
        D.barrier(self.info)

    def resume(self) -> bool:
        """Restore the newest readable checkpoint; False when there is none.

        Unreadable ones (truncated, corrupt, non-finite) are set aside (rank 0) and the next
        newest is used; rank 0 says so in one line. A checkpoint that does not fit the model
        is a :class:`StateError`.
        """
        candidates = self.checkpoints.resume_candidates()
        if not candidates:
            return False
        failed: list[tuple[Path, str]] = []
        for path in candidates:
            try:
                model_state, state, _ = load_checkpoint(path)
            except StateError as err:
                failed.append((path, str(err)))
                continue
            bad = non_finite(model_state) + non_finite(state.get("model_raw", {}))
            if not bad:
                break
            failed.append((path, f"{path}: non-finite weights ({bad[0]})"))
        else:
            raise StateError(f"{self.checkpoints.dir}: no readable checkpoint: {failed[0][1]}")
        self._check_fits(path, state.get("model_raw", model_state))
        if failed and self.info.is_main:
            moved = [self.checkpoints.set_aside(p).name for p, _ in failed]
            print(f"resume: {failed[0][1]}; set aside as {', '.join(moved)}; "
                  f"resuming from {path.name} instead")  # fmt: skip
        if "model_raw" in state:  # written with EMA on: the checkpoint weights are the EMA
            if self.ema is not None:
                self.ema = {k: v.to(self.device) for k, v in model_state.items()}
            model_state = state["model_raw"]
        self.model.load_state_dict(model_state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.data.load_state_dict(state[self.plan.data_key])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.nonfinite_total = int(state.get("skipped_steps", 0))
        set_rng_states(state["rng"], self.info.rank)
        return True

    def _check_fits(self, path: Path, weights: dict[str, Tensor]) -> None:
        """Raise unless ``weights`` have the model's names and shapes (same architecture)."""
        ours = self.model.state_dict()
        for name in sorted(set(ours) | set(weights)):
            if name not in weights or name not in ours or weights[name].shape != ours[name].shape:
                have = tuple(weights[name].shape) if name in weights else "absent"
                want = tuple(ours[name].shape) if name in ours else "absent"
                raise StateError(
                    f"{path}: the checkpoint does not fit the model of this config ({name}: "
                    f"checkpoint {have}, config {want}); resume with the run's own config "
                    f"({self.exp_dir / 'config.yaml'}) or choose a new --exp"
                )

    def _last_good(self) -> str:
        latest = self.checkpoints.latest()
        return str(latest) if latest is not None else "none was written yet"

    # ------------------------------------------------------------------------------ step
    def forward(self, *inputs: Any) -> Any:
        """The (wrapped) model's forward pass under the configured autocast."""
        with autocast(self.cfg.amp, self.device):
            return self.ddp(*inputs)

    def forward_backward(self, batch: Any) -> tuple[float, float, float]:
        """One micro-batch: the task's loss, scaled for accumulation, backward.

        Returns:
            ``(loss, weight, work)`` with the loss as a float (NaN/Inf when not finite).
        """
        loss, weight, work = self.task.loss(self.forward, batch)
        self.scaler.scale(loss * (1.0 / self.cfg.grad_accum)).backward()
        return float(loss.detach()), weight, work

    def optimizer_step(self) -> float:
        """Set the LR, clip, step, update the EMA; returns the gradient norm before clipping.

        A non-finite norm skips the update (see the module docstring); the step still counts.
        """
        set_lr(self.optimizer, lr_at(self.step, self.plan.total_steps, self.optim))
        self.scaler.unscale_(self.optimizer)
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))
        finite = math.isfinite(norm)  # the same on every rank (gradients are all-reduced)
        if finite:
            self.scaler.step(self.optimizer)
        self.scaler.update()  # fp16: an overflow also lowers the loss scale
        self.optimizer.zero_grad(set_to_none=True)
        if finite:
            self.nonfinite_streak = 0
            if self.ema is not None:
                self._ema_update()
        else:
            self.nonfinite_streak += 1
            self.nonfinite_total += 1
        self.step += 1
        if self.nonfinite_streak >= self.cfg.max_nonfinite_steps:
            raise DivergedError(
                f"training diverged: {self.nonfinite_streak} steps in a row with a non-finite "
                f"loss or gradient (up to step {self.step}); the last good checkpoint is kept "
                f"({self._last_good()}); lower optim.lr (now {self.optim.lr:g}) or set "
                "engine.grad_clip"
            )
        return norm

    def _float_buffers(self) -> list[Tensor]:
        return [b for b in self.model.buffers() if b.is_floating_point()]

    @torch.no_grad()
    def _ema_update(self) -> None:
        assert self.ema is not None
        decay = self.cfg.ema_decay
        for key, value in self.model.state_dict().items():
            if value.is_floating_point():
                self.ema[key].mul_(decay).add_(value, alpha=1.0 - decay)
            else:
                self.ema[key].copy_(value)

    # ------------------------------------------------------------------------------ loop
    def run(self, resume: bool = False) -> Path | None:
        """Train to the end, then export the averaged weights (rank 0 returns the folder)."""
        if self.info.is_main:
            self.checkpoints.clean_leftovers()  # of a killed or failed save
        D.barrier(self.info)
        if resume and self.resume() and self.info.is_main:
            print(f"resumed from step {self.step} (epoch {self.epoch})")
        logger = TrainLogger(self.exp_dir, enabled=self.info.is_main, resume_step=self.step)
        try:
            while self.epoch < self.cfg.epochs and not self.done():
                if self._train_epoch(logger):  # the next checkpoint resumes at the next epoch
                    self.epoch += 1
                    self.data.set_epoch(self.epoch)
                self.save_checkpoint(self.validate(logger))
            return self._finish(logger)
        finally:
            logger.close()

    def done(self) -> bool:
        """Whether ``max_steps`` optimizer steps have been taken."""
        return bool(self.cfg.max_steps) and self.step >= self.cfg.max_steps

    def _progress_bar(self) -> tqdm:
        if isinstance(self.data, Sized):  # steps of this epoch
            total, initial = len(self.data) // self.cfg.grad_accum, 0
        else:  # a stream of unknown length: steps of the run
            total, initial = self.cfg.max_steps or None, self.step
        # a bar only on a terminal: in a log file every redraw is a line (131 in the yesno log);
        # there _log_train prints one plain line per logged step instead
        shown = self.info.is_main and sys.stderr.isatty()
        return tqdm(total=total, initial=initial, desc=f"epoch {self.epoch}",
                    disable=not shown, dynamic_ncols=True)  # fmt: skip

    def _train_epoch(self, logger: TrainLogger) -> bool:
        """Train until the epoch ends (True) or max_steps is reached (False)."""
        self.data.set_epoch(self.epoch)  # keeps a resumed mid-epoch position
        self.ddp.train()
        bar, window, micro = self._progress_bar(), _Window(), 0
        buffers, saved = self._float_buffers(), None
        for batch in self.data:
            if micro == 0:  # batch-norm statistics before this step (restored if it is skipped)
                saved = [b.detach().clone() for b in buffers]
            last_micro = micro + 1 == self.cfg.grad_accum
            sync = contextlib.nullcontext()
            if self.info.distributed and not last_micro:
                sync = self.ddp.no_sync()  # type: ignore[operator]
            with sync:
                window.add(*self.forward_backward(batch))
            micro = 0 if last_micro else micro + 1
            if micro:
                continue
            norm = self.optimizer_step()
            if not math.isfinite(norm):
                window.skipped += 1
                with torch.no_grad():
                    for buffer, before in zip(buffers, saved or []):
                        buffer.copy_(before)
            bar.update(1)
            if self.step % self.cfg.log_every_steps == 0:
                self._log_train(logger, bar, window, norm)
                window = _Window()
            if self.done():
                bar.close()
                return False
            every = self.cfg.checkpoint_every_steps
            if every and self.step % every == 0:
                self.save_checkpoint(self.validate(logger) if self.plan.validate_at_checkpoints
                                     else None)  # fmt: skip
                self.ddp.train()
        bar.close()
        return True

    def _log_train(self, logger: TrainLogger, bar: tqdm, window: _Window, norm: float) -> None:
        seconds = time.perf_counter() - window.start
        loss_sum, weight, work = D.all_reduce_sum(
            [window.loss_sum, window.weight, window.work], self.info
        )
        loss = loss_sum / weight if weight > 0 else math.nan  # no finite loss: NaN, not 0
        rate = work / self.plan.rate_divisor / max(seconds, 1e-9)
        lr = self.optimizer.param_groups[0]["lr"]
        shown = {"loss": f"{loss:.3f}", "lr": f"{lr:.2e}", self.plan.rate_name: f"{rate:.4g}"}
        bar.set_postfix(shown)
        if bar.disable and self.info.is_main:  # not a terminal: one line per logged step
            line = ", ".join(f"{k} {v}" for k, v in shown.items())
            print(f"epoch {self.epoch} step {self.step}: {line}", flush=True)
        scalars = {"train/loss": loss, "train/lr": lr, "train/grad_norm": norm}
        if window.skipped:
            scalars["train/skipped_steps"] = window.skipped
        logger.log(self.step, {**scalars, f"train/{self.plan.rate_name}": rate})

    def validate(self, logger: TrainLogger) -> dict[str, float]:
        """The task's validation metrics, logged as ``valid/<name>`` and printed (rank 0)."""
        metrics = self.task.validate()
        if not metrics:
            return {}
        logger.log(self.step, {f"valid/{k}": v for k, v in metrics.items()})
        if self.info.is_main:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            tqdm.write(f"validation at step {self.step}: {shown}")
        return metrics

    def _finish(self, logger: TrainLogger) -> Path | None:
        """Average the best checkpoints (else the newest) and export them (rank 0)."""
        if 2 * self.nonfinite_total > self.step:  # every rank: the same counts
            raise DivergedError(
                f"training diverged: {self.nonfinite_total} of {self.step} steps were skipped "
                f"(non-finite loss or gradient); nothing exported; lower optim.lr (now "
                f"{self.optim.lr:g}) or set engine.grad_clip"
            )
        if not self.info.is_main:
            return None
        paths = [i.path for i in self.checkpoints.best()]
        if not paths:  # no validation metrics: average the newest checkpoints
            paths = [i.path for i in self.checkpoints.list()[-self.cfg.average_best :]]
        state = average_model_states(paths)
        bad = non_finite(state)
        if bad:  # checkpoints written before non-finite weights were refused
            raise DivergedError(
                f"{paths[-1]}: averaged weights are not finite ({bad[0]}); nothing exported"
            )
        out = self.task.export(state)
        logger.plot_curves(self.exp_dir / "curves.png")
        print(f"averaged {len(paths)} checkpoint(s) into {out}")
        return out


def join_job(cfg: EngineConfig, info: D.DistInfo | None = None) -> D.DistInfo:
    """Apply ``cfg.threads`` and join the torchrun job on ``cfg.device`` (unless ``info`` says
    this process already did); a trainer calls it first."""
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    return info or D.init_distributed(cfg.device)


def run_distributed(
    cfg: EngineConfig, build: Callable[[D.DistInfo], Any], **run: Any
) -> Path | None:
    """Join the torchrun job (if any), build a trainer with ``build(info)``, call its
    ``run(**run)`` and leave the job; returns what ``run`` returns."""
    info = join_job(cfg)
    try:
        return build(info).run(**run)
    finally:
        D.cleanup(info)
