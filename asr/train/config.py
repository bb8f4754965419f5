"""The training configurations (one YAML file each, strict keys and types): :class:`TrainConfig`
for the acoustic model (``asr train``), :class:`LMTrainConfig` for the LSTM LM (``asr train-lm``).

Both have the same four sections: ``model``, ``data``, ``optim`` and ``engine`` (epochs, steps,
clipping, AMP, EMA, checkpoints, seed, device, ...: one
:class:`~asr.train.engine_config.EngineConfig`, the same keys and defaults in both), beside each
trainer's own top-level keys (``init_from``; ``valid_batch_tokens``). An engine key at the top
level (the layout before the ``engine:`` section, e.g. ``epochs: 10``) is a one-line ConfigError
saying where it goes.

``model`` may be a path to a model YAML (relative to the training YAML, e.g.
``../../../conf/model/small.yaml``) or an inline mapping; overrides such as
``optim.lr=3e-3``, ``engine.grad_clip=5`` or ``model.encoder.activation=relu`` apply after it is
inlined. With ``init_from: <model folder>`` and no ``model``, the model config is the pretrained
model's.

The sample rate has one source, the model's front-end (``model.frontend.sample_rate_hz``):
training reads and resamples audio to it, as every inference path does. The old
``data.sample_rate_hz`` key is an error (delete it), not accepted even when equal, so no config
keeps a second copy that could drift.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from asr import config as config_io
from asr.data.augment import AugmentConfig
from asr.lm.lstm import LSTMLMConfig
from asr.lm.text_data import LMDataConfig
from asr.models.ctc import ModelConfig, inline_frontend_preset, load_model_config
from asr.train.engine_config import EngineConfig
from asr.train.optim import OptimConfig

AM_METRICS = ("wer", "cer", "loss")  # asr train's validation metrics (the first ranks by default)
LM_METRICS = ("loss", "ppl", "bits_per_token")  # asr train-lm's


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the training data comes from and how it is batched. Audio is read at the model's
    rate (``model.frontend.sample_rate_hz``): the rate has no key here."""

    train_manifest: str  # JSONL manifest of the training utterances
    valid_manifest: str | None = None  # JSONL manifest for validation WER each epoch (None: none)
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
    engine: EngineConfig = dataclasses.field(default_factory=EngineConfig)  # epochs, steps, ...
    init_from: str | None = None  # model folder (asr import-nemo, a past run's model/) whose
    # weights initialise the model (fine-tuning); relative to the working directory

    def __post_init__(self) -> None:
        _check_metric(self.engine, AM_METRICS, "asr train")

    @property
    def best_metric(self) -> str:
        """The validation metric that ranks checkpoints (``engine.best_metric`` or wer)."""
        return self.engine.best_metric or AM_METRICS[0]


def _check_metric(engine: EngineConfig, metrics: tuple[str, ...], command: str) -> None:
    if engine.best_metric is not None and engine.best_metric not in metrics:
        raise ValueError(
            f"engine.best_metric must be one of {', '.join(metrics)} (the validation metrics of "
            f"{command}), got {engine.best_metric!r}"
        )


_ENGINE_KEYS = frozenset(f.name for f in dataclasses.fields(EngineConfig))


def _check_layout(data: dict, where: str) -> None:
    """One-line errors for the keys of the layout before ``engine:`` and one sample rate."""
    moved = sorted(_ENGINE_KEYS & set(data))
    if moved:
        raise config_io.ConfigError(
            f"{where} {moved[0]!r} is an engine setting: move it under 'engine:' "
            f"(override: engine.{moved[0]}=...)"
        )
    section = data.get("data")
    if isinstance(section, dict) and "sample_rate_hz" in section:
        raise config_io.ConfigError(
            f"{where} data.sample_rate_hz is gone: delete it; training reads audio at the "
            "model's rate (model.frontend.sample_rate_hz)"
        )


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
    _check_layout(data, f"{path}:")
    return config_io.from_dict(TrainConfig, data, where=f"{path}:")


@dataclasses.dataclass(frozen=True)
class LMTrainConfig:
    """Everything one LM training run needs besides the tokenizer, text files and folder."""

    model: LSTMLMConfig = dataclasses.field(default_factory=LSTMLMConfig)  # architecture
    data: LMDataConfig = dataclasses.field(default_factory=LMDataConfig)  # reading, batching
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)  # optimiser + schedule
    engine: EngineConfig = dataclasses.field(default_factory=EngineConfig)  # epochs, steps, ...
    valid_batch_tokens: int = 16384  # padded tokens per validation batch
    init_from: str | None = None  # exported LM folder whose weights start the run (same model
    # config and vocabulary); a fresh optimizer and schedule; ignored on --resume

    def __post_init__(self) -> None:
        _check_metric(self.engine, LM_METRICS, "asr train-lm")
        if self.optim.schedule != "constant" and self.engine.max_steps == 0:
            raise ValueError(
                f"optim.schedule {self.optim.schedule!r} needs engine.max_steps > 0 (the length "
                "of a streamed corpus is unknown); set engine.max_steps or optim.schedule=constant"
            )
        if self.valid_batch_tokens < 1:
            raise ValueError("valid_batch_tokens must be >= 1")

    @property
    def best_metric(self) -> str:
        """The validation metric that ranks checkpoints (``engine.best_metric`` or loss)."""
        return self.engine.best_metric or LM_METRICS[0]


def load_lm_train_config(path: str | Path, overrides: list[str] | None = None) -> LMTrainConfig:
    """Read an LM training YAML and apply ``key=value`` overrides."""
    data = config_io.apply_overrides(config_io.read_yaml(path), overrides or [])
    _check_layout(data, f"{path}:")
    return config_io.from_dict(LMTrainConfig, data, where=f"{path}:")
