"""Run the project's one training engine for a few steps and read what it logged.

The benches that time or compare training (bench/train.py, bench/convergence.py, bench/lm.py,
bench/loader.py) do not train with loops of their own: they build the real trainer
(:class:`asr.train.acoustic.AcousticTrainer`, :class:`asr.train.lm.LMTrainer`) from a config whose
``engine:`` section logs every optimizer step (:func:`engine_config`: ``log_every_steps=1``), run
it in an experiment folder (a temporary one by default) and read ``log.jsonl`` back: per step the
loss and the engine's own throughput (``train/audio_h_per_s``, ``train/tokens_per_s``).

A step's time is what the engine measures: from the end of the previous step (or the start of an
epoch) to the end of this optimizer step, so it covers getting the batch from the loader, the
forward pass, the loss, backward, clipping and the optimizer update; checkpoints, validation and
the export happen outside it. The engine logs a rate (work / time); the work of each step (audio
seconds, tokens) is what the trainer's ``loss`` returned for its batch, recorded here on the way
(:class:`_WorkRecorder`), so that ``time = work / rate`` is known per step and rates over several
steps are exact (total work over total time), whatever the batches' sizes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asr.train.engine_config import EngineConfig
from asr.train.logbook import read_log


@dataclasses.dataclass(frozen=True)
class Step:
    """One optimizer step as the engine logged it."""

    step: int  # 1-based optimizer step
    loss: float  # the trainer's loss (CTC per token, cross-entropy per token)
    work: float  # audio seconds / tokens of the step's batch
    seconds: float  # the engine's time for the step (work / logged rate)


@dataclasses.dataclass(frozen=True)
class EngineRun:
    """The logged steps of one run and the trained model's size."""

    steps: list[Step]
    params: int  # trainable parameters of the model

    def rate(self, skip: int = 0) -> float:
        """Work per second over the steps after the first ``skip`` (warm-up) ones."""
        timed = self.steps[skip:]
        if not timed:
            raise ValueError(f"no step left to time: {len(self.steps)} logged, {skip} skipped")
        return sum(s.work for s in timed) / sum(s.seconds for s in timed)

    def seconds(self, first: int) -> float:
        """Engine time of the first ``first`` steps (the warm-up)."""
        return sum(s.seconds for s in self.steps[:first])

    def losses(self) -> list[float]:
        """The loss of every step, in order."""
        return [s.loss for s in self.steps]


class _WorkRecorder:
    """Stands in for a trainer as the engine's task: forwards every call, notes each batch's
    work (one ``loss`` call per optimizer step with ``grad_accum=1``)."""

    def __init__(self, task: Any) -> None:
        self.task, self.work = task, []

    def loss(self, forward: Callable[..., Any], batch: Any) -> tuple[Any, float, float]:
        loss, weight, work = self.task.loss(forward, batch)
        self.work.append(float(work))
        return loss, weight, work

    def validate(self) -> dict[str, float]:
        return self.task.validate()

    def export(self, state: dict[str, Any]) -> Path:
        return self.task.export(state)


def random_letters(count: int, rng: random.Random) -> str:
    """``count`` characters of random upper-case letters, a space after every five: made-up
    transcripts and LM sentences of a known length (throughput does not depend on the text)."""
    chars = [" " if i % 6 == 5 else rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for i in range(count)]
    if chars and chars[-1] == " ":
        chars[-1] = rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return "".join(chars)


def engine_config(**changes: Any) -> EngineConfig:
    """An ``engine:`` section for a bench run: CPU, every step logged, one checkpoint kept,
    the given keys changed (``max_steps``, ``epochs``, ``threads``, ``compile``, ...)."""
    base = {"device": "cpu", "log_every_steps": 1, "keep_last": 1, "average_best": 1}
    return EngineConfig(**{**base, **changes})


def run_engine(build: Callable[[Path], Any], exp_dir: str | Path | None = None) -> EngineRun:
    """Build a trainer with ``build(exp_dir)`` and train it to the end -> its logged steps.

    ``exp_dir`` None: a temporary folder, removed afterwards. The engine's own lines (one per
    logged step) go to stderr, so a bench's stdout stays its table.
    """
    if exp_dir is None:
        with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
            return run_engine(build, Path(tmp) / "exp")
    trainer = build(Path(exp_dir))
    engine = trainer.engine
    if engine.cfg.log_every_steps != 1 or engine.cfg.grad_accum != 1:
        raise ValueError("bench runs log every step without accumulation (see engine_config)")
    recorder = _WorkRecorder(engine.task)
    engine.task = recorder
    with contextlib.redirect_stdout(sys.stderr):
        trainer.run(overwrite=True)
    rate_key = f"train/{engine.plan.rate_name}"
    records = [r for r in read_log(exp_dir) if rate_key in r]
    if len(records) != len(recorder.work):
        raise RuntimeError(f"{len(records)} logged steps but {len(recorder.work)} batches")
    steps = [
        Step(int(r["step"]), r["train/loss"], w, w / (r[rate_key] * engine.plan.rate_divisor))
        for r, w in zip(records, recorder.work)
    ]
    params = sum(p.numel() for p in engine.model.parameters() if p.requires_grad)
    return EngineRun(steps, params)
