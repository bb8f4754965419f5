"""The CTC acoustic model: front-end -> [SpecAugment] -> conv encoder -> CTC head, and the loss.

The front-end runs inside the model (on the model's device) and its config is part of
:class:`ModelConfig`, so training and inference always compute the same features.

Parameter layout (for importing NeMo ``EncDecCTCModel`` checkpoints): ``encoder.blocks.N.*``
is NeMo's ``encoder.encoder.N.*`` and ``head.conv.*`` is NeMo's ``decoder.decoder_layers.0.*``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from asr import config as config_io
from asr.frontend import Frontend, FrontendConfig
from asr.models.tcn import Encoder, EncoderConfig


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the acoustic model except the vocabulary (the tokenizer's)."""

    encoder: EncoderConfig  # the convolutional encoder
    frontend: FrontendConfig = dataclasses.field(default_factory=FrontendConfig)  # features


def load_model_config(path: str | Path, overrides: list[str] | None = None) -> ModelConfig:
    """Load a model YAML; ``frontend`` may be a preset path (relative to the YAML's folder).

    Overrides (``encoder.activation=relu``, ``frontend.dither=0.0``) apply after the preset is
    inlined. Raises ConfigError naming the file and field on an unknown key or a wrong type.
    """
    path = Path(path)
    data = inline_frontend_preset(config_io.read_yaml(path), path.parent)
    data = config_io.apply_overrides(data, overrides or [])
    return config_io.from_dict(ModelConfig, data, where=f"{path}:")


def inline_frontend_preset(model: dict, base_dir: Path) -> dict:
    """``model`` (a model config mapping) with a ``frontend`` that names a preset YAML replaced
    by that preset's contents; a relative preset path is relative to ``base_dir``."""
    frontend = model.get("frontend")
    if isinstance(frontend, str):
        preset = Path(frontend)
        if not preset.is_absolute():
            preset = base_dir / preset
        model["frontend"] = config_io.read_yaml(preset)
    return model


class CTCHead(nn.Module):
    """Pointwise conv from encoder channels to the vocabulary, then log-softmax (NeMo's
    ``ConvASRDecoder``).

    Args:
        in_channels: encoder output channels.
        vocab_size: output symbols including the blank.
    """

    def __init__(self, in_channels: int, vocab_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, vocab_size, kernel_size=1, bias=True)
        nn.init.xavier_uniform_(self.conv.weight, gain=1.0)
        # NeMo's init_weights leaves the bias at nn.Conv1d's default; keep that.

    def forward(self, x: Tensor) -> Tensor:
        """x: (batch, channels, frames) -> log-probs (batch, frames, vocab), float32."""
        logits = self.conv(x).transpose(1, 2)
        return F.log_softmax(logits.float(), dim=-1)


class CTCModel(nn.Module):
    """Waveforms in, CTC log-probabilities out.

    Args:
        cfg: front-end and encoder options.
        vocab_size: number of output symbols including the CTC blank (index 0).
        spec_augment: optional module ``(features (batch, frames, feats), lengths) -> features``
            applied to the features in training mode only (the trainer supplies it); it is
            not part of the exported model (``export_model`` drops ``spec_augment.*`` keys).
        load_stats: read the front-end's global CMVN statistics file now (False when loading an
            exported model: the statistics are buffers in its weights).
    """

    def __init__(
        self,
        cfg: ModelConfig,
        vocab_size: int,
        spec_augment: nn.Module | None = None,
        load_stats: bool = True,
    ) -> None:
        super().__init__()
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2 (blank + one symbol), got {vocab_size}")
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.frontend = Frontend(cfg.frontend, load_stats=load_stats)
        self.spec_augment = spec_augment
        self.encoder = Encoder(cfg.encoder, self.frontend.num_features)
        self.head = CTCHead(self.encoder.out_channels, vocab_size)

    @classmethod
    def from_yaml(
        cls, path: str | Path, vocab_size: int, overrides: list[str] | None = None
    ) -> CTCModel:
        """Build a freshly initialised model from a model YAML (see :func:`load_model_config`)."""
        return cls(load_model_config(path, overrides), vocab_size)

    @property
    def device(self) -> torch.device:
        """The device of the model's parameters."""
        return next(self.parameters()).device

    @property
    def frame_shift_s(self) -> float:
        """Seconds between consecutive log-prob frames (feature shift x encoder subsampling)."""
        return self.cfg.frontend.frame_shift_ms / 1000.0 * self.cfg.encoder.subsampling

    def num_parameters(self, trainable_only: bool = True) -> int:
        """Number of parameters (batch-norm running statistics are buffers, not counted)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def forward(self, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """waveforms: (batch, samples) float, lengths: (batch,) samples ->
        log_probs (batch, frames, vocab) float32, out_lengths (batch,) long."""
        features, feature_lengths = self.frontend(waveforms, lengths)
        if self.training and self.spec_augment is not None:
            features = self.spec_augment(features, feature_lengths)
        return self.forward_features(features, feature_lengths)

    def forward_features(self, features: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """features: (batch, frames, feats), lengths: (batch,) frames ->
        log_probs (batch, frames', vocab), out_lengths (batch,); skips the front-end."""
        encoded, out_lengths = self.encoder(features.transpose(1, 2), lengths)
        return self.head(encoded), out_lengths

    def output_lengths(self, num_samples: Tensor) -> Tensor:
        """(batch,) log-prob frame counts for (batch,) waveform sample counts."""
        return self.encoder.output_lengths(self.frontend.num_frames(num_samples))


def ctc_loss(
    log_probs: Tensor, out_lengths: Tensor, targets: Tensor, target_lengths: Tensor
) -> Tensor:
    """Mean over the batch of each utterance's CTC loss divided by its target length.

    Args:
        log_probs: (batch, frames, vocab) log-probabilities (blank = 0).
        out_lengths: (batch,) valid frames per utterance.
        targets: (batch, max_target) padded or (sum(target_lengths),) concatenated token ids.
        target_lengths: (batch,) tokens per utterance.
    Returns:
        scalar loss; impossible alignments (too few frames) contribute 0 (``zero_infinity``).
    """
    per_utt = F.ctc_loss(
        log_probs.float().transpose(0, 1),
        targets.long(),
        out_lengths.long(),
        target_lengths.long(),
        blank=0,
        reduction="none",
        zero_infinity=True,
    )
    return (per_utt / target_lengths.clamp(min=1).to(per_utt.dtype)).mean()
