"""The acoustic-model trainer: CTC on a speech manifest, through :mod:`asr.train.engine`.

:func:`train` runs one experiment in ``exp_dir``::

    exp_dir/config.yaml        the resolved TrainConfig
    exp_dir/tokenizer/         the tokenizer
    exp_dir/log.jsonl          one JSON line per logged step / validation
    exp_dir/tensorboard/       TensorBoard scalars (when tensorboard is installed)
    exp_dir/checkpoints/       see asr.train.checkpoint (ranked by best_metric)
    exp_dir/model/             the final model: best checkpoints averaged, safetensors + YAML
    exp_dir/curves.png         loss and WER curves (when matplotlib is installed)

A run never mixes with another: an ``exp_dir`` holding a previous run needs ``resume=True``
(continue it) or ``overwrite=True`` (start over; see :mod:`asr.train.exp`), checked before the
first step. Resuming (``resume=True``) restores the model, optimizer, grad scaler, EMA, sampler
position and every RNG state from the newest readable checkpoint, so a killed run continues the
same loss trajectory.
Under ``torchrun`` every rank trains on its shard; only rank 0 writes files.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import Tensor

from asr import config as config_io
from asr.data.augment import SpecAugment
from asr.data.dataset import Batch, SpeechDataLoader, SpeechDataset, make_dataloader
from asr.data.manifest import filter_by_duration, read_manifest
from asr.data.sampler import DynamicBucketSampler
from asr.models.ctc import CTCModel, ctc_loss
from asr.models.io import export_model
from asr.text.tokenizer import Tokenizer, load_tokenizer
from asr.train import distributed as D
from asr.train.config import TrainConfig
from asr.train.engine import Engine, RunPlan, join_job, run_distributed
from asr.train.exp import check_exp_not_input, prepare_experiment
from asr.train.runtime import seed_everything
from asr.train.validate import validate


class AcousticTrainer:
    """One acoustic-model training run; see the module docstring. Build it, then :meth:`run`.

    The engine (``self.engine``) owns the optimizer, checkpoints and loop; this class builds the
    model and data and is the engine's task: the CTC loss, greedy-decoding validation, export.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        tokenizer: Tokenizer,
        exp_dir: str | Path,
        info: D.DistInfo | None = None,
    ) -> None:
        self.cfg, self.tokenizer, self.exp_dir = cfg, tokenizer, Path(exp_dir)
        self.info = join_job(cfg.engine, info)
        seed_everything(cfg.engine.seed)
        spec = SpecAugment.from_config(cfg.data.augment)
        model = CTCModel(cfg.model, tokenizer.vocab_size, spec_augment=spec)
        if cfg.init_from:
            init_weights_from(model, cfg.init_from, tokenizer)
        self.loader = self._train_loader()
        self.valid = self._valid_dataset()
        plan = run_plan(cfg, self.loader)
        self.engine = Engine(
            cfg.engine, cfg.optim, plan, model, self.loader, self, self.exp_dir, self.info
        )
        self.model: CTCModel = self.engine.model  # type: ignore[assignment]

    @property
    def sample_rate_hz(self) -> int:
        """The rate audio is read at: the model's (its front-end's), as at inference."""
        return self.cfg.model.frontend.sample_rate_hz

    def _train_loader(self) -> SpeechDataLoader:
        data, seed = self.cfg.data, self.cfg.engine.seed
        utts = filter_by_duration(
            read_manifest(data.train_manifest), data.min_duration_s, data.max_duration_s
        )
        dataset = SpeechDataset(
            utts, self.tokenizer, self.sample_rate_hz, augment=data.augment, seed=seed
        )
        sampler = DynamicBucketSampler(
            dataset.durations,
            max_batch_seconds=data.max_batch_seconds,
            max_batch_size=data.max_batch_size,
            num_buckets=data.num_buckets,
            sorted_epochs=data.sorted_epochs,
            seed=seed,
            rank=self.info.rank,
            world_size=self.info.world_size,
        )
        return make_dataloader(dataset, sampler, num_workers=data.num_workers)

    def _valid_dataset(self) -> SpeechDataset | None:
        data = self.cfg.data
        if not data.valid_manifest:
            return None
        utts = read_manifest(data.valid_manifest)
        return SpeechDataset(utts, self.tokenizer, self.sample_rate_hz)

    # ------------------------------------------------------------------------------ task
    def loss(self, forward: Callable[..., Any], batch: Batch) -> tuple[Tensor, float, float]:
        """Mean CTC loss of one batch (weight 1 per batch; work: its audio seconds)."""
        batch = batch.to(self.engine.device, non_blocking=True)
        log_probs, out_lengths = forward(batch.waveforms, batch.lengths)
        loss = ctc_loss(log_probs.float(), out_lengths, batch.targets, batch.target_lengths)
        return loss, 1.0, batch.audio_seconds

    def _eval_model(self) -> CTCModel:
        if self.engine.ema is None:
            return self.model
        model = CTCModel(self.cfg.model, self.tokenizer.vocab_size, load_stats=False)
        model.load_state_dict(self.engine.ema, strict=False)
        return model.to(self.engine.device)

    def validate(self) -> dict[str, float]:
        """Greedy WER, CER and CTC loss on the validation manifest (the EMA weights if on)."""
        if self.valid is None:
            return {}
        return validate(self._eval_model(), self.valid, self.tokenizer, self.info)

    def export(self, state: dict[str, Tensor]) -> Path:
        """Write the averaged weights as a model folder, ``exp_dir/model``."""
        model = CTCModel(self.cfg.model, self.tokenizer.vocab_size, load_stats=False)
        model.load_state_dict(state, strict=False)
        return export_model(model, self.tokenizer, self.exp_dir / "model")

    # ------------------------------------------------------------------------------- run
    def run(self, resume: bool = False, overwrite: bool = False) -> Path | None:
        """Train to the end, then export the averaged model (rank 0). Returns its folder.

        ``exp_dir`` is checked first (:func:`asr.train.exp.prepare_experiment`): a previous run
        there needs ``resume`` or ``overwrite``."""
        if self.info.is_main:  # every rank checked in train(); rank 0 alone removes
            prepare_experiment(self.exp_dir, "model", resume, overwrite)
        D.barrier(self.info)
        if self.info.is_main:
            config_io.save(self.cfg, self.exp_dir / "config.yaml")
            self.tokenizer.save(self.exp_dir / "tokenizer")
        return self.engine.run(resume)


def run_plan(cfg: TrainConfig, loader: SpeechDataLoader) -> RunPlan:
    """What the engine needs besides ``cfg.engine`` for an acoustic-model run: the schedule
    spans every epoch (or ``max_steps``); throughput in audio hours per second."""
    engine = cfg.engine
    per_epoch = math.ceil(loader.num_batches_per_epoch() / engine.grad_accum)
    total = per_epoch * engine.epochs
    total = min(total, engine.max_steps) if engine.max_steps else total
    return RunPlan(
        total_steps=total,
        best_metric=cfg.best_metric,
        validates=bool(cfg.data.valid_manifest),
        rate_name="audio_h_per_s",
        rate_divisor=3600.0,
    )


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
    cfg: TrainConfig,
    tokenizer_dir: str | Path,
    exp_dir: str | Path,
    resume: bool = False,
    overwrite: bool = False,
) -> Path | None:
    """Train an acoustic model (see :class:`AcousticTrainer`); rank 0 returns the model folder.

    ``exp_dir`` is checked before anything is read: a previous run there needs ``resume`` or
    ``overwrite`` (see :mod:`asr.train.exp`), and may not be or hold one of the run's inputs
    (:func:`asr.train.exp.check_exp_not_input`)."""
    check_exp_not_input(exp_dir, [
        ("tokenizer folder", tokenizer_dir),
        ("training manifest", cfg.data.train_manifest),
        ("validation manifest", cfg.data.valid_manifest),
        ("init_from model", cfg.init_from),
    ])  # fmt: skip
    prepare_experiment(exp_dir, "model", resume, overwrite, remove=False)  # check only
    tokenizer = load_tokenizer(tokenizer_dir)
    build = functools.partial(AcousticTrainer, cfg, tokenizer, exp_dir)  # (info) -> trainer
    return run_distributed(cfg.engine, build, resume=resume, overwrite=overwrite)
