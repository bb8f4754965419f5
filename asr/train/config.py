"""The training configurations (one YAML file each, strict keys and types): :class:`TrainConfig`
for the acoustic model (``asr train``), :class:`LMTrainConfig` for the LSTM LM (``asr train-lm``).

``model`` may be a path to a model YAML (relative to the training YAML, e.g.
``../../../conf/model/small.yaml``) or an inline mapping; overrides such as
``optim.lr=3e-3`` or ``model.encoder.activation=relu`` apply after it is inlined. With
``init_from: <model folder>`` and no ``model``, the model config is the pretrained model's.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from asr import config as config_io
from asr.data.augment import AugmentConfig
from asr.lm.lstm import LSTMLMConfig
from asr.lm.text_data import LMDataConfig
from asr.models.ctc import ModelConfig, inline_frontend_preset, load_model_config
from asr.train.optim import OptimConfig

# Where training runs: "auto" picks CUDA when available; "cuda" without CUDA is an error.
Device = Literal["auto", "cpu", "cuda"]


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the training data comes from and how it is batched."""

    train_manifest: str  # JSONL manifest of the training utterances
    valid_manifest: str | None = None  # JSONL manifest for validation WER each epoch (None: none)
    sample_rate_hz: int = 16000  # audio is resampled to this rate
    max_batch_seconds: float = 120.0  # padded seconds of audio per batch (batch x longest)
    max_batch_size: int | None = None  # cap on utterances per batch (None: no cap)
    num_buckets: int = 10  # duration buckets of the sampler (1: no bucketing)
    min_duration_s: float = 0.0  # training utterances shorter than this are dropped
    max_duration_s: float = 30.0  # training utterances longer than this are dropped
    num_workers: int = 0  # DataLoader worker processes (0: load in the training process)
    sorted_epochs: int = 0  # first epochs shortest utterances first (SortaGrad; 0: none)
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)  # augmentation

    def __post_init__(self) -> None:
        if self.max_batch_seconds <= 0 or self.num_workers < 0 or self.sorted_epochs < 0:
            raise ValueError("max_batch_seconds must be > 0, num_workers and sorted_epochs >= 0")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs besides the tokenizer and the experiment folder."""

    model: ModelConfig  # front-end + encoder (vocabulary size comes from the tokenizer)
    data: DataConfig  # manifests, batching, augmentation
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)  # optimiser + LR schedule
    epochs: int = 10  # passes over the training data
    max_steps: int = 0  # stop after this many optimizer steps (0: run every epoch)
    grad_accum: int = 1  # batches accumulated per optimizer step
    grad_clip: float = 0.0  # clip the global gradient norm to this (0: no clipping)
    amp: Literal["none", "bf16", "fp16"] = "none"  # mixed precision (CUDA; bf16 also on CPU)
    ema_decay: float = 0.0  # exponential moving average of the weights (0: off, e.g. 0.999)
    seed: int = 0  # seeds model init, dropout, SpecAugment, augmentation and shuffling
    checkpoint_every_steps: int = 0  # also checkpoint every N steps (0: at epoch ends only)
    keep_last: int = 2  # newest checkpoints kept on disk
    average_best: int = 5  # best checkpoints (by best_metric) averaged into the final model
    best_metric: Literal["wer", "cer", "loss"] = "wer"  # validation metric that ranks checkpoints
    # (lower is better); "cer" is steadier while the WER is still near 100 %
    log_every_steps: int = 10  # scalars logged every N optimizer steps
    device: Device = "auto"  # "auto" (CUDA when available), "cpu" or "cuda" (an error without)
    compile: bool = False  # torch.compile the model
    max_nonfinite_steps: int = 50  # stop (DivergedError) after this many steps in a row with a
    # non-finite loss or gradient (each is skipped: no update)
    init_from: str | None = None  # model folder (asr import-nemo, a past run's model/) whose
    # weights initialise the model (fine-tuning); relative to the working directory

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.grad_accum < 1 or self.max_steps < 0:
            raise ValueError("epochs and grad_accum must be >= 1 and max_steps >= 0")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if self.keep_last < 1 or self.average_best < 1:
            raise ValueError("keep_last and average_best must be >= 1")
        if self.grad_clip < 0 or self.max_nonfinite_steps < 1 or self.log_every_steps < 1:
            raise ValueError("grad_clip must be >= 0, max_nonfinite_steps and log_every_steps >= 1")


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a training YAML and apply ``key=value`` overrides. ``model`` may name a model YAML,
    or be inline with ``frontend`` naming a preset; paths are relative to the YAML's folder."""
    path = Path(path)
    data = config_io.read_yaml(path)
    top_level = [o for o in overrides or [] if config_io.parse_override(o)[0] == ["init_from"]]
    data = config_io.apply_overrides(data, top_level)  # init_from=... may supply the model
    model = data.get("model")
    if model is None and isinstance(data.get("init_from"), str):  # the pretrained model's
        from asr.models.io import read_exported_config

        model = config_io.to_dict(read_exported_config(data["init_from"]).model)
        data["model"] = model
    if model is None:
        raise config_io.ConfigError(
            f"{path}: no model: give model (a model YAML or inline) or init_from (a model folder)"
        )
    if isinstance(model, str):
        model_path = Path(model) if Path(model).is_absolute() else path.parent / model
        data["model"] = config_io.to_dict(load_model_config(model_path))
    elif isinstance(model, dict):
        inline_frontend_preset(model, path.parent)
    data = config_io.apply_overrides(data, overrides or [])
    return config_io.from_dict(TrainConfig, data, where=f"{path}:")


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
    device: Device = "auto"  # "auto" (CUDA when available), "cpu" or "cuda" (an error without)
    threads: int = 0  # torch CPU threads (0: leave torch's default)
    max_nonfinite_steps: int = 50  # stop after this many non-finite (skipped) steps in a row
    init_from: str | None = None  # exported LM folder whose weights start the run (same model
    # config and vocabulary); a fresh optimizer and schedule; ignored on --resume

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
        if self.grad_clip < 0 or self.max_nonfinite_steps < 1 or self.valid_batch_tokens < 1:
            raise ValueError(
                "grad_clip must be >= 0, max_nonfinite_steps and valid_batch_tokens >= 1"
            )


def load_lm_train_config(path: str | Path, overrides: list[str] | None = None) -> LMTrainConfig:
    """Read an LM training YAML and apply ``key=value`` overrides."""
    return config_io.load(LMTrainConfig, path, overrides)
