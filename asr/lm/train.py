"""LSTM LM training: streaming batches, AMP, DDP, atomic checkpoints, exact resume, logs.

:func:`train_lm` runs one experiment in ``exp_dir`` (same layout as the acoustic trainer)::

    exp_dir/config.yaml      the resolved LMTrainConfig
    exp_dir/tokenizer/       the tokenizer
    exp_dir/log.jsonl        train/valid scalars; exp_dir/tensorboard/; exp_dir/curves.png
    exp_dir/checkpoints/     asr.train.checkpoint (ranked by validation loss)
    exp_dir/lm/              the exported LM (best checkpoints averaged): asr.lm.io

Resuming restores weights, optimizer, grad scaler, the stream position and every RNG state, so
a killed run continues with the same batches and the same losses.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from tqdm import tqdm

from asr import config as config_io
from asr.lm.io import save_lm
from asr.lm.lstm import LSTMLM, LSTMLMConfig, sentence_batch
from asr.lm.text_data import (
    LMBatch,
    LMBatchStream,
    LMDataConfig,
    make_batches,
    read_valid_sentences,
)
from asr.tokenizer import Tokenizer, load_tokenizer
from asr.train import distributed as D
from asr.train.checkpoint import CheckpointManager, average_model_states, load_checkpoint
from asr.train.logbook import TrainLogger
from asr.train.optim import OptimConfig, build_optimizer, lr_at, set_lr
from asr.train.runtime import autocast, rng_states, seed_everything, set_rng_states


@dataclasses.dataclass(frozen=True)
class LMTrainConfig:
    """Everything one LM training run needs besides the tokenizer, text files and folder."""

    model: LSTMLMConfig = dataclasses.field(default_factory=LSTMLMConfig)  # architecture
    data: LMDataConfig = dataclasses.field(default_factory=LMDataConfig)  # reading, batching
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)  # optimiser + schedule
    epochs: int = 1  # passes over the training text
    max_steps: int = 0  # stop after this many steps; also the LR schedule's horizon
    grad_clip: float = 1.0  # clip the global gradient norm (0: no clipping)
    amp: Literal["none", "bf16", "fp16"] = "none"  # mixed precision (fp16: CUDA only)
    seed: int = 0  # seeds init, dropout, file and batch order
    checkpoint_every_steps: int = 500  # validate + checkpoint every N steps (and at epoch ends)
    keep_last: int = 2  # newest checkpoints kept
    average_best: int = 1  # best checkpoints (validation loss) averaged into the exported LM
    log_every_steps: int = 20  # scalars logged every N steps
    valid_batch_tokens: int = 16384  # padded tokens per validation batch
    device: str = "auto"  # "auto", "cpu" or "cuda"
    threads: int = 0  # torch CPU threads (0: leave torch's default)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.max_steps < 0 or self.checkpoint_every_steps < 1:
            raise ValueError("epochs and checkpoint_every_steps must be >= 1, max_steps >= 0")
        if self.optim.schedule != "constant" and self.max_steps == 0:
            raise ValueError(
                f"optim.schedule {self.optim.schedule!r} needs max_steps > 0 (the length of a "
                "streamed corpus is unknown); set max_steps or optim.schedule=constant"
            )
        if self.keep_last < 1 or self.average_best < 1 or self.log_every_steps < 1:
            raise ValueError("keep_last, average_best and log_every_steps must be >= 1")


def load_lm_train_config(path: str | Path, overrides: list[str] | None = None) -> LMTrainConfig:
    """Read an LM training YAML and apply ``key=value`` overrides."""
    return config_io.load(LMTrainConfig, path, overrides)


@torch.no_grad()
def evaluate_nll(
    model: LSTMLM, sentences: Sequence[Sequence[int]], max_batch_tokens: int = 16384
) -> tuple[float, int]:
    """Total negative log-likelihood (nats) and token count (``</s>`` included) of sentences."""
    was_training = model.training
    model.eval()
    device = model.embedding.weight.device
    total, count = 0.0, 0
    for chunk in make_batches([list(s) for s in sentences], max_batch_tokens, 256):
        inputs, targets, mask = sentence_batch(chunk, device)
        logits, _ = model(inputs)
        nll = torch.nn.functional.cross_entropy(
            logits.float().transpose(1, 2), targets, reduction="none"
        )
        total += float((nll * mask).sum())
        count += int(mask.sum())
    model.train(was_training)
    return total, count


class LMTrainer:
    """One LM training run; see the module docstring."""

    def __init__(
        self,
        cfg: LMTrainConfig,
        tokenizer: Tokenizer,
        text_files: Sequence[str | Path],
        exp_dir: str | Path,
        valid_files: Sequence[str | Path] = (),
        info: D.DistInfo | None = None,
    ) -> None:
        self.cfg, self.tokenizer, self.exp_dir = cfg, tokenizer, Path(exp_dir)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self.info = info or D.init_distributed(cfg.device)
        self.device = self.info.device
        seed_everything(cfg.seed)
        self.model = LSTMLM(cfg.model, tokenizer.vocab).to(self.device)
        self.ddp: torch.nn.Module = self.model
        if self.info.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.optimizer = build_optimizer(self.model.parameters(), cfg.optim)
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp == "fp16")
        self.stream = LMBatchStream(
            text_files,
            tokenizer,
            cfg.data,
            seed=cfg.seed,
            rank=self.info.rank,
            world_size=self.info.world_size,
            exclude_valid=not valid_files,
        )
        self.valid = read_valid_sentences(tokenizer, cfg.data, valid_files, text_files)
        self.checkpoints = CheckpointManager(
            self.exp_dir, cfg.keep_last, cfg.average_best, metric="loss"
        )
        self.step, self.epoch = 0, 0
        seed_everything(cfg.seed + 1000 * self.info.rank)  # per-rank dropout streams

    # ----------------------------------------------------------------------------- state
    def save_checkpoint(self, metrics: dict[str, float] | None = None) -> None:
        """Checkpoint on rank 0 (every rank must call it: RNG states are gathered)."""
        state: dict[str, Any] = {
            "step": self.step,
            "epoch": self.epoch,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "stream": self.stream.state_dict(),
            "rng": D.all_gather_objects(rng_states(), self.info),
        }
        if self.info.is_main:
            model_state = self.model.state_dict()
            self.checkpoints.save(self.step, self.epoch, model_state, state, metrics=metrics)
        D.barrier(self.info)

    def resume(self) -> bool:
        """Restore the newest checkpoint; False when there is none."""
        latest = self.checkpoints.latest()
        if latest is None:
            return False
        model_state, state, _ = load_checkpoint(latest)
        self.model.load_state_dict(model_state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.stream.load_state_dict(state["stream"])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        set_rng_states(state["rng"], self.info.rank)
        return True

    # ------------------------------------------------------------------------------ step
    def train_step(self, batch: LMBatch) -> tuple[float, float]:
        """Forward, backward, clip and update on one batch; returns (loss/token, grad norm)."""
        batch = batch.to(self.device)
        with autocast(self.cfg.amp, self.device):
            logits, _ = self.ddp(batch.inputs)
        nll = torch.nn.functional.cross_entropy(
            logits.float().transpose(1, 2), batch.targets, reduction="none"
        )
        loss = (nll * batch.mask).sum() / batch.num_tokens
        self.scaler.scale(loss).backward()
        set_lr(self.optimizer, lr_at(self.step, max(self.cfg.max_steps, 1), self.cfg.optim))
        self.scaler.unscale_(self.optimizer)
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return float(loss.detach()), float(norm)

    # ------------------------------------------------------------------------------ loop
    def run(self, resume: bool = False, export_dir: str | Path | None = None) -> Path | None:
        """Train to the end, then export the LM (rank 0 returns its folder)."""
        if self.info.is_main:
            config_io.save(self.cfg, self.exp_dir / "config.yaml")
            self.tokenizer.save(self.exp_dir / "tokenizer")
        if resume and self.resume() and self.info.is_main:
            print(f"resumed from step {self.step} (epoch {self.epoch})")
        logger = TrainLogger(self.exp_dir, enabled=self.info.is_main, resume_step=self.step)
        try:
            while self.epoch < self.cfg.epochs and not self._done():
                if self._train_epoch(logger):
                    self.epoch += 1
                    self.stream.set_epoch(self.epoch)
                self.save_checkpoint(self._validate(logger))
            return self._finish(logger, export_dir)
        finally:
            logger.close()

    def _done(self) -> bool:
        return bool(self.cfg.max_steps) and self.step >= self.cfg.max_steps

    def _train_epoch(self, logger: TrainLogger) -> bool:
        """Train until the epoch ends (True) or max_steps is reached (False)."""
        self.stream.set_epoch(self.epoch)
        self.ddp.train()
        total = self.cfg.max_steps or None
        bar = tqdm(total=total, initial=self.step, desc=f"epoch {self.epoch}",
                   disable=not self.info.is_main, dynamic_ncols=True)  # fmt: skip
        window: list[float] = [0.0, 0.0, 0.0]  # nll sum, tokens, steps
        start = time.perf_counter()
        for batch in self.stream:
            loss, norm = self.train_step(batch)
            window = [window[0] + loss * batch.num_tokens, window[1] + batch.num_tokens,
                      window[2] + 1]  # fmt: skip
            bar.update(1)
            if self.step % self.cfg.log_every_steps == 0:
                self._log_train(logger, bar, window, time.perf_counter() - start, norm)
                window, start = [0.0, 0.0, 0.0], time.perf_counter()
            if self._done():
                bar.close()
                return False
            if self.step % self.cfg.checkpoint_every_steps == 0:
                self.save_checkpoint(self._validate(logger))
                self.ddp.train()
        bar.close()
        return True

    def _log_train(
        self, logger: TrainLogger, bar: tqdm, window: list[float], seconds: float, norm: float
    ) -> None:
        nll, tokens, _ = D.all_reduce_sum(window, self.info)
        loss = nll / max(tokens, 1.0)
        lr = self.optimizer.param_groups[0]["lr"]
        rate = tokens / max(seconds, 1e-9)
        bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", tok_s=f"{rate:.0f}")
        scalars = {"train/loss": loss, "train/lr": lr, "train/grad_norm": norm}
        logger.log(self.step, {**scalars, "train/tokens_per_s": rate})

    def _validate(self, logger: TrainLogger) -> dict[str, float]:
        if not self.valid:
            return {}
        nll, count = evaluate_nll(self.model, self.valid, self.cfg.valid_batch_tokens)
        loss = nll / max(count, 1)
        metrics = {"loss": loss, "ppl": math.exp(loss), "bits_per_token": loss / math.log(2)}
        logger.log(self.step, {f"valid/{k}": v for k, v in metrics.items()})
        if self.info.is_main:
            tqdm.write(f"validation at step {self.step}: loss {loss:.4f} ppl {metrics['ppl']:.3f}")
        return metrics

    def _finish(self, logger: TrainLogger, export_dir: str | Path | None) -> Path | None:
        if not self.info.is_main:
            return None
        best = [i.path for i in self.checkpoints.best()] or [self.checkpoints.latest()]
        model = LSTMLM(self.cfg.model, self.tokenizer.vocab)
        model.load_state_dict(average_model_states([p for p in best if p is not None]))
        out = save_lm(model, self.tokenizer, export_dir or self.exp_dir / "lm")
        logger.plot_curves(self.exp_dir / "curves.png")
        print(f"exported the LM ({len(best)} checkpoint(s) averaged) to {out}")
        return out


def train_lm(
    cfg: LMTrainConfig,
    tokenizer_dir: str | Path,
    text_files: Sequence[str | Path],
    exp_dir: str | Path,
    valid_files: Sequence[str | Path] = (),
    resume: bool = False,
    export_dir: str | Path | None = None,
) -> Path | None:
    """Train an LSTM LM (see :class:`LMTrainer`); rank 0 returns the exported LM folder."""
    info = D.init_distributed(cfg.device)
    try:
        trainer = LMTrainer(cfg, load_tokenizer(tokenizer_dir), text_files, exp_dir,
                            valid_files, info)  # fmt: skip
        return trainer.run(resume=resume, export_dir=export_dir)
    finally:
        D.cleanup(info)
