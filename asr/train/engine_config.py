"""The ``engine:`` section of both training YAMLs: one frozen dataclass, :class:`EngineConfig`,
for ``asr train`` and ``asr train-lm`` alike (same keys, same defaults), which
:class:`asr.train.engine.Engine` reads as it is. The trainers' own keys stay beside it (``model``,
``data``, ``optim``, ``init_from``; see :mod:`asr.train.config`).

Override its keys as ``engine.KEY=VALUE`` (``engine.grad_clip=5``, ``engine.device=cpu``).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

Device = Literal["auto", "cpu", "cuda"]  # "auto": CUDA when available; "cuda" without: an error


@dataclasses.dataclass(frozen=True)
class EngineConfig:
    """The ``engine:`` section of both training YAMLs (``asr train``, ``asr train-lm``): how the
    one engine trains, whatever the model; :class:`asr.train.engine.Engine` reads it as it is."""

    epochs: int = 1  # passes over the training data (a text stream: over its files)
    max_steps: int = 0  # stop after this many optimizer steps (0: run every epoch)
    grad_accum: int = 1  # batches accumulated per optimizer step
    grad_clip: float = 0.0  # clip the global gradient norm to this (0: no clipping)
    amp: Literal["none", "bf16", "fp16"] = "none"  # mixed precision (fp16: CUDA; bf16 also CPU)
    ema_decay: float = 0.0  # exponential moving average of the weights (0: off, e.g. 0.999)
    compile: bool = False  # torch.compile the model
    seed: int = 0  # seeds init, dropout, augmentation and data order (rank r: seed + 1000 r)
    device: Device = "auto"  # "auto" (CUDA when available), "cpu" or "cuda" (an error without)
    threads: int = 0  # torch CPU threads (0: leave torch's default)
    checkpoint_every_steps: int = 0  # also checkpoint every N steps (0: at epoch ends only)
    keep_last: int = 2  # newest checkpoints kept on disk
    average_best: int = 1  # best checkpoints (by best_metric) averaged into the final model;
    # without validation data the newest ones instead
    best_metric: str | None = None  # validation metric that ranks checkpoints (lower is better);
    # None: the trainer's own (asr train: wer; train-lm: loss); "cer" is steadier near 100 % WER
    log_every_steps: int = 10  # scalars logged every N optimizer steps
    max_nonfinite_steps: int = 50  # stop (DivergedError) after this many steps in a row with a
    # non-finite loss or gradient (each is skipped: no update)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.grad_accum < 1 or self.max_steps < 0:
            raise ValueError("epochs and grad_accum must be >= 1 and max_steps >= 0")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if self.keep_last < 1 or self.average_best < 1 or self.log_every_steps < 1:
            raise ValueError("keep_last, average_best and log_every_steps must be >= 1")
        if self.grad_clip < 0 or self.max_nonfinite_steps < 1:
            raise ValueError("grad_clip must be >= 0 and max_nonfinite_steps >= 1")
        if self.checkpoint_every_steps < 0 or self.threads < 0:
            raise ValueError("checkpoint_every_steps and threads must be >= 0")
