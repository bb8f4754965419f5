"""The CTC training loop: DDP, AMP, accumulation, clipping, EMA, checkpoints, exact resume.

:func:`train` runs one experiment in ``exp_dir``::

    exp_dir/config.yaml        the resolved TrainConfig
    exp_dir/log.jsonl          one JSON line per logged step / validation
    exp_dir/tensorboard/       TensorBoard scalars (when tensorboard is installed)
    exp_dir/checkpoints/       see asr.train.checkpoint
    exp_dir/model/             the final model: best checkpoints averaged, safetensors + YAML
    exp_dir/curves.png         loss and WER curves (when matplotlib is installed)

Resuming (``resume=True``) restores the model, optimizer, grad scaler, EMA, sampler position and
every RNG state from the newest checkpoint, so a killed run continues the same loss trajectory.
Under ``torchrun`` every rank trains on its shard; only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from asr import config as config_io
from asr.data.augment import SpecAugment
from asr.data.dataset import Batch, SpeechDataset, make_dataloader
from asr.data.manifest import filter_by_duration, read_manifest
from asr.data.sampler import DynamicBucketSampler
from asr.models.ctc import CTCModel, ctc_loss
from asr.models.io import export_model
from asr.tokenizer import Tokenizer, load_tokenizer
from asr.train import distributed as D
from asr.train.checkpoint import CheckpointManager, average_model_states, load_checkpoint
from asr.train.config import TrainConfig
from asr.train.logbook import TrainLogger
from asr.train.optim import build_optimizer, lr_at, set_lr
from asr.train.runtime import autocast, rng_states, seed_everything, set_rng_states
from asr.train.validate import validate


class Trainer:
    """One training run; see the module docstring. Build it, then call :meth:`run`."""

    def __init__(
        self,
        cfg: TrainConfig,
        tokenizer: Tokenizer,
        exp_dir: str | Path,
        info: D.DistInfo | None = None,
    ) -> None:
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.exp_dir = Path(exp_dir)
        self.info = info or D.init_distributed(cfg.device)
        self.device = self.info.device
        seed_everything(cfg.seed)
        spec = SpecAugment.from_config(cfg.data.augment)
        self.model = CTCModel(cfg.model, tokenizer.vocab_size, spec_augment=spec)
        if cfg.init_from:
            init_weights_from(self.model, cfg.init_from, tokenizer)
        self.model = self.model.to(self.device)
        self.ddp = self._wrap(self.model)
        self.optimizer = build_optimizer(self.model.parameters(), cfg.optim)
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp == "fp16")
        self.ema = self._ema_init() if cfg.ema_decay > 0 else None
        self.loader = self._train_loader()
        self.valid = self._valid_dataset()
        self.total_steps = self._total_steps()
        # without validation metrics the last `average_best` checkpoints are averaged instead
        keep_last = (
            cfg.keep_last if cfg.data.valid_manifest else max(cfg.keep_last, cfg.average_best)
        )
        self.checkpoints = CheckpointManager(
            self.exp_dir, keep_last=keep_last, keep_best=cfg.average_best, metric=cfg.best_metric
        )
        self.step = 0
        self.epoch = 0
        seed_everything(cfg.seed + 1000 * self.info.rank)  # per-rank dropout/SpecAugment streams

    def _wrap(self, model: CTCModel) -> torch.nn.Module:
        wrapped: torch.nn.Module = model
        if self.cfg.compile:
            wrapped = torch.compile(model)  # type: ignore[assignment]
        if self.info.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            wrapped = torch.nn.parallel.DistributedDataParallel(wrapped, device_ids=ids)
        return wrapped

    def _ema_init(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _train_loader(self):
        data = self.cfg.data
        utts = filter_by_duration(
            read_manifest(data.train_manifest), data.min_duration_s, data.max_duration_s
        )
        dataset = SpeechDataset(
            utts, self.tokenizer, data.sample_rate_hz, augment=data.augment, seed=self.cfg.seed
        )
        sampler = DynamicBucketSampler(
            dataset.durations,
            max_batch_seconds=data.max_batch_seconds,
            max_batch_size=data.max_batch_size,
            num_buckets=data.num_buckets,
            sorted_epochs=data.sorted_epochs,
            seed=self.cfg.seed,
            rank=self.info.rank,
            world_size=self.info.world_size,
        )
        return make_dataloader(dataset, sampler, num_workers=data.num_workers)

    def _valid_dataset(self) -> SpeechDataset | None:
        data = self.cfg.data
        if not data.valid_manifest:
            return None
        utts = read_manifest(data.valid_manifest)
        return SpeechDataset(utts, self.tokenizer, data.sample_rate_hz)

    def _total_steps(self) -> int:
        per_epoch = math.ceil(self.loader.num_batches_per_epoch() / self.cfg.grad_accum)
        total = per_epoch * self.cfg.epochs
        return min(total, self.cfg.max_steps) if self.cfg.max_steps else total

    # ----------------------------------------------------------------------------- state
    def train_state(self) -> dict[str, Any]:
        """Everything but the model weights needed to resume exactly."""
        rngs = D.all_gather_objects(rng_states(), self.info)
        return {
            "step": self.step,
            "epoch": self.epoch,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "loader": self.loader.state_dict(),
            "rng": rngs,
        }

    def save_checkpoint(self, metrics: dict[str, float] | None = None) -> None:
        """Checkpoint on rank 0 (all ranks must call it: RNG states are gathered)."""
        state = self.train_state()
        weights = self.model.state_dict()
        if self.ema is not None:  # checkpoints (hence averaging and export) hold the EMA weights
            state["model_raw"], weights = weights, self.ema
        if self.info.is_main:
            self.checkpoints.save(self.step, self.epoch, weights, state, metrics=metrics)
        D.barrier(self.info)

    def resume(self) -> bool:
        """Restore the newest checkpoint; False when there is none."""
        latest = self.checkpoints.latest()
        if latest is None:
            return False
        model_state, state, _ = load_checkpoint(latest)
        if "model_raw" in state:  # written with EMA on: the checkpoint weights are the EMA
            if self.ema is not None:
                self.ema = {k: v.to(self.device) for k, v in model_state.items()}
            model_state = state["model_raw"]
        self.model.load_state_dict(model_state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.loader.load_state_dict(state["loader"])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        set_rng_states(state["rng"], self.info.rank)
        return True

    # ------------------------------------------------------------------------------ step
    def _forward_backward(self, batch: Batch, scale: float) -> tuple[float, bool]:
        """One micro-batch: forward, CTC loss, backward. Returns (loss, finite)."""
        batch = batch.to(self.device, non_blocking=True)
        with autocast(self.cfg.amp, self.device):
            log_probs, out_lengths = self.ddp(batch.waveforms, batch.lengths)
        loss = ctc_loss(log_probs.float(), out_lengths, batch.targets, batch.target_lengths)
        self.scaler.scale(loss * scale).backward()
        value = float(loss.detach())
        return value, math.isfinite(value)

    def _optimizer_step(self) -> float:
        """Clip, step, update the EMA; returns the gradient norm before clipping."""
        set_lr(self.optimizer, lr_at(self.step, self.total_steps, self.cfg.optim))
        self.scaler.unscale_(self.optimizer)
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self._ema_update()
        self.step += 1
        return float(norm)

    @torch.no_grad()
    def _ema_update(self) -> None:
        decay = self.cfg.ema_decay
        for key, value in self.model.state_dict().items():
            if value.is_floating_point():
                self.ema[key].mul_(decay).add_(value, alpha=1.0 - decay)
            else:
                self.ema[key].copy_(value)

    # ------------------------------------------------------------------------------ loop
    def run(self, resume: bool = False) -> Path | None:
        """Train to the end, then export the averaged model (rank 0). Returns its folder."""
        if self.info.is_main:
            config_io.save(self.cfg, self.exp_dir / "config.yaml")
            self.tokenizer.save(self.exp_dir / "tokenizer")
        if resume and self.resume() and self.info.is_main:
            print(f"resumed from step {self.step} (epoch {self.epoch})")
        logger = TrainLogger(self.exp_dir, enabled=self.info.is_main, resume_step=self.step)
        try:
            while self.epoch < self.cfg.epochs and not self._done():
                completed = self._train_epoch(logger)
                if completed:  # the next checkpoint resumes at batch 0 of the next epoch
                    self.epoch += 1
                    self.loader.set_epoch(self.epoch)
                self.save_checkpoint(self._validate(logger))
            return self._finish(logger)
        finally:
            logger.close()

    def _done(self) -> bool:
        return bool(self.cfg.max_steps) and self.step >= self.cfg.max_steps

    def _train_epoch(self, logger: TrainLogger) -> bool:
        """Train until the epoch ends (True) or max_steps is reached (False)."""
        self.loader.set_epoch(self.epoch)  # keeps a resumed mid-epoch position
        self.ddp.train()
        bar = tqdm(
            total=len(self.loader) // self.cfg.grad_accum,
            desc=f"epoch {self.epoch}",
            disable=not self.info.is_main,
            dynamic_ncols=True,
        )
        losses, seconds, start, micro = [], 0.0, time.perf_counter(), 0
        for batch in self.loader:
            last_micro = micro + 1 == self.cfg.grad_accum
            sync = contextlib.nullcontext()
            if self.info.distributed and not last_micro:
                sync = self.ddp.no_sync()  # type: ignore[operator]
            with sync:
                loss, finite = self._forward_backward(batch, 1.0 / self.cfg.grad_accum)
            losses.append(loss if finite else float("nan"))
            seconds += batch.audio_seconds
            micro = 0 if last_micro else micro + 1
            if micro:
                continue
            norm = self._optimizer_step()
            bar.update(1)
            if self.step % self.cfg.log_every_steps == 0:
                self._log_train(logger, bar, (losses, seconds, start), norm)
                losses, seconds, start = [], 0.0, time.perf_counter()
            if self._done():
                bar.close()
                return False
            if self.cfg.checkpoint_every_steps and self.step % self.cfg.checkpoint_every_steps == 0:
                self.save_checkpoint()
        bar.close()
        return True

    def _log_train(
        self, logger: TrainLogger, bar: tqdm, window: tuple[list[float], float, float], norm: float
    ) -> None:
        losses, seconds, start = window
        total = D.all_reduce_sum([float(np.nansum(losses)), float(len(losses)), seconds], self.info)
        loss = total[0] / max(total[1], 1.0)
        rate_h = total[2] / 3600.0 / max(time.perf_counter() - start, 1e-9)
        lr = self.optimizer.param_groups[0]["lr"]
        bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", audio_h_per_s=f"{rate_h:.3f}")
        logger.log(
            self.step,
            {
                "train/loss": loss,
                "train/lr": lr,
                "train/grad_norm": norm,
                "train/audio_h_per_s": rate_h,
            },
        )

    def _eval_model(self) -> CTCModel:
        if self.ema is None:
            return self.model
        model = CTCModel(self.cfg.model, self.tokenizer.vocab_size, load_stats=False)
        model.load_state_dict(self.ema, strict=False)
        return model.to(self.device)

    def _validate(self, logger: TrainLogger) -> dict[str, float]:
        if self.valid is None:
            return {}
        metrics = validate(self._eval_model(), self.valid, self.tokenizer, self.info)
        logger.log(self.step, {f"valid/{k}": v for k, v in metrics.items()})
        if self.info.is_main:
            print(
                f"validation at step {self.step}: "
                + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            )
        return metrics

    def _finish(self, logger: TrainLogger) -> Path | None:
        if not self.info.is_main:
            return None
        best = [i.path for i in self.checkpoints.best()]
        if not best:  # no validation metrics: average the newest checkpoints
            best = [i.path for i in self.checkpoints.list()[-self.cfg.average_best :]]
        state = average_model_states(best)
        model = CTCModel(self.cfg.model, self.tokenizer.vocab_size, load_stats=False)
        model.load_state_dict(state, strict=False)
        out = export_model(model, self.tokenizer, self.exp_dir / "model")
        logger.plot_curves(self.exp_dir / "curves.png")
        print(f"averaged {len(best)} checkpoint(s) into {out}")
        return out


def init_weights_from(model: CTCModel, model_dir: str | Path, tokenizer: Tokenizer) -> None:
    """Copy the weights of an exported model folder into ``model`` (``init_from``).

    Raises:
        AsrError: the folder's vocabulary differs from ``tokenizer``'s, or its tensors do not
            fit ``model`` (a different encoder config).
    """
    from asr.errors import AsrError
    from asr.models.io import load_model

    pretrained, pretrained_tokenizer = load_model(model_dir)
    if pretrained_tokenizer.vocab != tokenizer.vocab:
        raise AsrError(f"init_from {model_dir}: its vocabulary differs from the tokenizer's")
    ours = {k: v for k, v in model.state_dict().items() if not k.startswith("spec_augment.")}
    state = pretrained.state_dict()
    bad = sorted(k for k in ours if k not in state or state[k].shape != ours[k].shape)
    if bad or set(state) - set(ours):
        what = bad[:2] or sorted(set(state) - set(ours))[:2]
        raise AsrError(f"init_from {model_dir}: weights do not fit the model config: {what}")
    model.load_state_dict(state, strict=False)


def train(
    cfg: TrainConfig, tokenizer_dir: str | Path, exp_dir: str | Path, resume: bool = False
) -> Path | None:
    """Train an acoustic model (see :class:`Trainer`); rank 0 returns the exported model folder."""
    info = D.init_distributed(cfg.device)
    try:
        trainer = Trainer(cfg, load_tokenizer(tokenizer_dir), exp_dir, info)
        return trainer.run(resume=resume)
    finally:
        D.cleanup(info)
