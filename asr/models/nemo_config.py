"""NeMo model configs -> our :class:`~asr.models.ctc.ModelConfig` (strict: every key is read).

The ``model_config.yaml`` of a ``.nemo`` archive is mapped section by section (preprocessor ->
:class:`~asr.frontend.module.FrontendConfig`, encoder -> :class:`~asr.models.tcn.EncoderConfig`,
decoder -> the character labels). A key that is not read, or a value we do not implement, is a
one-line :class:`NemoImportError` naming the key. Used by :mod:`asr.models.nemo_import`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from asr.errors import AsrError
from asr.frontend.module import FrontendConfig
from asr.models.ctc import ModelConfig
from asr.models.tcn import BlockConfig, EncoderConfig

NEMO_NORMALIZE_EPS = 1e-5  # NeMo's CONSTANT added to the per-feature standard deviation
_SUPPORTED_ACTIVATIONS = ("relu", "hardtanh", "selu", "swish", "silu", "gelu", "tanh")
_SUPPORTED_INITS = ("xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal")
_WINDOWS = {"hann": "hann", "hamming": "hamming", "blackman": "blackman"}


class NemoImportError(AsrError):
    """A ``.nemo`` archive cannot be read or holds a model this importer does not support."""


class _Section:
    """A NeMo config mapping whose keys are read one by one; leftover keys are errors."""

    def __init__(self, root: dict[str, Any], data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise NemoImportError(f"{where}: expected a mapping, got {type(data).__name__}")
        if isinstance(data.get("params"), dict):  # NeMo 0.x/1.0 beta: {cls: ..., params: {...}}
            data = {**{k: v for k, v in data.items() if k != "params"}, **data["params"]}
        self.root, self.data, self.where = root, data, where
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}"

    def get(self, name: str, default: Any = None) -> Any:
        """The value of ``name`` (``${a.b}`` interpolations resolved), or ``default``."""
        self.seen.add(name)
        return _resolve(self.root, self.data.get(name, default), self.key(name))

    def require(self, name: str) -> Any:
        if name not in self.data:
            raise NemoImportError(f"{self.key(name)}: missing")
        return self.get(name)

    def expect(self, name: str, allowed: tuple[Any, ...], default: Any, why: str) -> None:
        """``name`` must be absent or one of ``allowed``; ``why`` says what is unsupported."""
        value = self.get(name, default)
        if value not in allowed:
            raise NemoImportError(f"{self.key(name)}: {value!r} is not supported ({why})")

    def choose(self, name: str, default: Any, allowed: tuple[Any, ...]) -> Any:
        """The value of ``name``, which must be one of ``allowed``."""
        value = self.get(name, default)
        if value not in allowed:
            raise NemoImportError(f"{self.key(name)}: {value!r} is not supported {allowed}")
        return value

    def ignore(self, *names: str) -> None:
        """Keys that do not change inference or our model (read and dropped)."""
        self.seen.update(names)

    def finish(self) -> None:
        """Raise on the first key nobody read: an option we do not know how to map."""
        for name in self.data:
            if name not in self.seen:
                raise NemoImportError(f"{self.key(name)}: unknown option, cannot import it")


def _resolve(root: dict[str, Any], value: Any, where: str) -> Any:
    """Resolve an OmegaConf ``${a.b.c}`` reference (absolute, ``model.`` prefix optional)."""
    if not (isinstance(value, str) and value.startswith("${") and value.endswith("}")):
        return value
    parts = value[2:-1].split(".")
    if parts and parts[0] == "model" and "model" not in root:
        parts = parts[1:]
    node: Any = root
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            raise NemoImportError(f"{where}: cannot resolve the interpolation {value}")
        node = node[part]
    return _resolve(root, node, where)


def _target(section: _Section, suffix: str) -> None:
    """Check ``_target_`` (or ``cls``) names the NeMo class ``suffix``."""
    target = section.get("_target_") or section.get("cls") or ""
    if not str(target).endswith(suffix):
        raise NemoImportError(f"{section.key('_target_')}: {target!r} is not supported ({suffix})")


def _check_model(cfg: dict[str, Any]) -> None:
    """The top level: an ``EncDecCTCModel`` with a character vocabulary."""
    target = str(cfg.get("target", "EncDecCTCModel"))
    if not target.endswith("EncDecCTCModel"):
        raise NemoImportError(
            f"target: {target!r} is not supported (only EncDecCTCModel with characters)"
        )
    if "tokenizer" in cfg:
        raise NemoImportError("tokenizer: subword (BPE/WPE) models are not supported")
    for name in ("preprocessor", "encoder", "decoder"):
        if name not in cfg:
            raise NemoImportError(f"{name}: missing from model_config.yaml")


def _log_guard(value: Any, where: str) -> float:
    if value == "tiny":
        return float(torch.finfo(torch.float32).tiny)
    if value == "eps":
        return float(torch.finfo(torch.float32).eps)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise NemoImportError(f"{where}: {value!r} is not supported (a number > 0, tiny or eps)")


def _check_preprocessor_options(pre: _Section) -> None:
    """Options that must keep the value whose behaviour our front-end reproduces."""
    pad_to = pre.get("pad_to", 16)
    if not (isinstance(pad_to, int) and pad_to >= 0) and pad_to != "max":
        raise NemoImportError(f"preprocessor.pad_to: {pad_to!r} is not supported")
    pre.expect("frame_splicing", (1,), 1, "frame stacking")
    pre.expect("exact_pad", (False,), False, "only centred STFT frames")
    pre.expect("stft_exact_pad", (False,), False, "only centred STFT frames")
    pre.expect("stft_conv", (False,), False, "only torch.stft")
    pre.expect("use_torchaudio", (False,), False, "only NeMo's own filterbank")
    pre.expect("use_grads", (False,), False, "changes the magnitude guard")
    pre.expect("nb_augmentation_prob", (0, 0.0), 0.0, "narrow-band augmentation")
    # pad_to/pad_value only pad the feature tensor; masked convolutions never see the padding.
    pre.ignore("pad_value", "rng", "nb_max_freq", "_target_", "cls")


def frontend_config(cfg: dict[str, Any]) -> FrontendConfig:
    """Our front-end for NeMo's ``AudioToMelSpectrogramPreprocessor`` options."""
    pre = _Section(cfg, cfg["preprocessor"], "preprocessor")
    _target(pre, "AudioToMelSpectrogramPreprocessor")
    rate = int(pre.get("sample_rate", 16000))
    win = pre.get("n_window_size") or int(pre.get("window_size", 0.02) * rate)
    hop = pre.get("n_window_stride") or int(pre.get("window_stride", 0.01) * rate)
    window = pre.choose("window", "hann", tuple(_WINDOWS))
    normalize = pre.choose("normalize", "per_feature", ("per_feature", None, "None", "none"))
    guard_type = pre.choose("log_zero_guard_type", "add", ("add", "clamp"))
    mel_norm = pre.choose("mel_norm", "slaney", ("slaney", None))
    _check_preprocessor_options(pre)
    try:
        out = FrontendConfig(
            sample_rate_hz=rate,
            dither=float(pre.get("dither", 1e-5)),
            frame_length_ms=1000.0 * win / rate,
            frame_shift_ms=1000.0 * hop / rate,
            snip_edges=False,
            center=True,
            center_end_frame=False,  # NeMo counts L // hop frames
            pad_mode="zeros",
            remove_dc_offset=False,
            preemphasis=float(pre.get("preemph", 0.97) or 0.0),
            preemphasis_mode="signal",
            window=_WINDOWS[window],  # type: ignore[arg-type]
            window_periodic=False,
            n_fft=int(pre.get("n_fft") or 2 ** math.ceil(math.log2(win))),
            spectrum_power=float(pre.get("mag_power", 2.0)),
            features="fbank",
            num_mel_bins=int(pre.get("features", pre.get("nfilt", 64))),
            low_freq_hz=float(pre.get("lowfreq", 0.0) or 0.0),
            high_freq_hz=float(pre.get("highfreq") or 0.0),
            mel_scale="slaney",
            mel_norm="slaney" if mel_norm == "slaney" else "none",
            mel_triangles="hz",
            log=("guard" if guard_type == "add" else "floor") if pre.get("log", True) else "none",
            log_eps=_log_guard(
                pre.get("log_zero_guard_value", 2**-24), pre.key("log_zero_guard_value")
            ),
            normalize="per_feature" if normalize == "per_feature" else "none",
            normalize_eps=NEMO_NORMALIZE_EPS,
        )
    except ValueError as err:
        raise NemoImportError(f"preprocessor: cannot be mapped: {err}") from None
    pre.finish()
    return out


def _single(section: _Section, name: str, default: int) -> int:
    """NeMo writes kernel/stride/dilation as one-element lists."""
    value = section.get(name, [default])
    value = value if isinstance(value, list) else [value]
    if len(value) != 1 or not isinstance(value[0], int):
        raise NemoImportError(f"{section.key(name)}: {value!r} is not supported (one integer)")
    return value[0]


def nemo_kernel_size(kernel: int, factor: float) -> int:
    """NeMo's ``compute_new_kernel_size``: ``max(int(kernel * factor), 1)`` rounded up to odd."""
    size = max(int(kernel * float(factor)), 1)
    return size + 1 if size % 2 == 0 else size


def block_config(root: dict[str, Any], data: Any, where: str, residual_mode: str) -> BlockConfig:
    """One ``encoder.jasper[i]`` entry as our :class:`BlockConfig`."""
    blk = _Section(root, data, where)
    mode = blk.choose("residual_mode", residual_mode, ("add", "stride_add"))
    blk.expect("groups", (1,), 1, "grouped convolutions")
    blk.expect("heads", (-1,), -1, "multi-head depthwise convolutions")
    blk.expect("se_context_size", (-1,), -1, "only global squeeze-and-excitation context")
    blk.expect("future_context", (-1,), -1, "only symmetric padding")
    blk.expect("quantize", (False,), False, "quantised convolutions")
    blk.ignore("se_interpolation_mode")  # used only with a limited SE context
    kernel = nemo_kernel_size(_single(blk, "kernel", 11), blk.get("kernel_size_factor", 1.0))
    try:
        out = BlockConfig(
            filters=int(blk.require("filters")),
            repeat=int(blk.require("repeat")),
            kernel=kernel,
            stride=_single(blk, "stride", 1),
            dilation=_single(blk, "dilation", 1),
            dropout=float(blk.get("dropout", 0.0)),
            residual=bool(blk.get("residual", False)),
            residual_dense=bool(blk.get("residual_dense", False)),
            residual_mode=mode,
            separable=bool(blk.get("separable", False)),
            stride_last=bool(blk.get("stride_last", False)),
            se=bool(blk.get("se", False)),
            se_reduction_ratio=int(blk.get("se_reduction_ratio", 8)),
        )
    except ValueError as err:
        raise NemoImportError(f"{where}: cannot be mapped: {err}") from None
    blk.finish()
    return out


def encoder_config(cfg: dict[str, Any], num_features: int) -> EncoderConfig:
    """Our encoder for NeMo's ``ConvASREncoder`` options."""
    enc = _Section(cfg, cfg["encoder"], "encoder")
    _target(enc, "ConvASREncoder")
    activation = enc.choose("activation", "relu", _SUPPORTED_ACTIVATIONS)
    feat_in = enc.require("feat_in")
    if feat_in != num_features:
        raise NemoImportError(
            f"encoder.feat_in: {feat_in} does not match preprocessor.features {num_features}"
        )
    enc.expect("normalization_mode", ("batch",), "batch", "only batch norm")
    enc.expect("conv_mask", (True,), True, "unmasked convolutions let padding leak in")
    enc.expect("frame_splicing", (1,), 1, "frame stacking")
    enc.expect("quantize", (False,), False, "quantised convolutions")
    enc.ignore("norm_groups", "_target_", "cls")
    init = enc.get("init_mode", "xavier_uniform")
    mode = enc.get("residual_mode", "add")
    blocks = enc.require("jasper")
    if not isinstance(blocks, list) or not blocks:
        raise NemoImportError("encoder.jasper: expected a non-empty list of blocks")
    configs = tuple(
        block_config(cfg, b, f"encoder.jasper[{i}]", mode) for i, b in enumerate(blocks)
    )
    enc.finish()
    return EncoderConfig(
        blocks=configs,
        activation=activation,
        init=init if init in _SUPPORTED_INITS else "xavier_uniform",
    )


def labels_of(cfg: dict[str, Any], in_channels: int) -> tuple[str, ...]:
    """The character vocabulary of NeMo's ``ConvASRDecoder`` (blank not included)."""
    dec = _Section(cfg, cfg["decoder"], "decoder")
    _target(dec, "ConvASRDecoder")
    dec.expect("add_blank", (True,), True, "the CTC blank must be added last")
    dec.ignore("init_mode", "_target_", "cls")
    labels = dec.get("vocabulary", cfg.get("labels"))
    if not isinstance(labels, list) or not labels:
        raise NemoImportError("decoder.vocabulary: expected a non-empty list of characters")
    for i, symbol in enumerate(labels):
        if not isinstance(symbol, str) or len(symbol) != 1:
            raise NemoImportError(
                f"decoder.vocabulary[{i}]: {symbol!r} is not one character (subword models are "
                "not supported)"
            )
    if len(set(labels)) != len(labels):
        raise NemoImportError("decoder.vocabulary: has duplicate characters")
    num_classes = dec.get("num_classes", len(labels))
    if num_classes not in (-1, len(labels)):
        raise NemoImportError(
            f"decoder.num_classes: {num_classes} does not match the {len(labels)} labels"
        )
    feat_in = dec.get("feat_in", in_channels)
    if feat_in != in_channels:
        raise NemoImportError(f"decoder.feat_in: {feat_in} != encoder output {in_channels}")
    dec.finish()
    return tuple(labels)


def map_config(cfg: dict[str, Any]) -> tuple[ModelConfig, tuple[str, ...]]:
    """Our model config and NeMo's labels for a parsed ``model_config.yaml``."""
    _check_model(cfg)
    frontend = frontend_config(cfg)
    encoder = encoder_config(cfg, frontend.num_features)
    return ModelConfig(encoder=encoder, frontend=frontend), labels_of(cfg, encoder.out_channels)
