"""Exported model directories: ``model.safetensors`` + ``config.yaml`` + tokenizer files.

Layout of a model directory::

    model.safetensors   weights and batch-norm statistics (safetensors: no pickle anywhere)
    config.yaml         format, version, vocab_size, weight dtype, model config (front-end inlined)
    <tokenizer files>   written by ``Tokenizer.save`` and read by ``load_tokenizer``

The directory is written next to its destination under a temporary name and renamed into place
(:mod:`asr.io.folders`), so a reader sees either the old model or the complete new one. A folder
may also hold its recommended decoding, ``decode.yaml`` and ``lm/`` (an exported LSTM LM), which
``asr export`` carries over.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from asr import config as config_io
from asr.io.folders import (
    CONFIG_FILE,
    LSTM_LM,
    WEIGHTS_FILE,
    ModelFileError,
    check_dtype,
    check_format,
    check_model_out,
    make_temp_dir,
    replace_dir,
    source_kind,
    write_error,
)
from asr.models.ctc import CTCModel, ModelConfig

if TYPE_CHECKING:
    from asr.text.tokenizer import Tokenizer

FORMAT = "asr-ctc-model"
VERSION = 1


@dataclasses.dataclass(frozen=True)
class ExportedConfig:
    """The ``config.yaml`` of an exported model."""

    vocab_size: int  # output symbols including the blank; must equal the tokenizer's
    model: ModelConfig  # front-end and encoder
    format: str = FORMAT  # always "asr-ctc-model"
    version: int = VERSION  # layout version of the directory
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"  # stored parameter dtype

    def __post_init__(self) -> None:
        check_format(self.format, self.version, FORMAT, VERSION)


def _export_state(model: CTCModel, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Tensors to store: parameters cast to ``dtype`` (front-end kept float32), buffers as is."""
    params = {name for name, _ in model.named_parameters()}
    state = {}
    for name, tensor in model.state_dict().items():
        if name.startswith("spec_augment."):
            continue
        tensor = tensor.detach().cpu()
        if name in params and not name.startswith("frontend.") and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        state[name] = tensor.contiguous().clone()
    return state


def export_model(
    model: CTCModel,
    tokenizer: Tokenizer,
    out_dir: str | Path,
    dtype: Literal["float32", "float16", "bfloat16"] = "float32",
    decoding_from: str | Path | None = None,
) -> Path:
    """Write ``model`` and ``tokenizer`` to the directory ``out_dir`` atomically.

    Args:
        model: the model to export (any device; weights are copied to CPU).
        tokenizer: its tokenizer; ``tokenizer.vocab_size`` must equal ``model.vocab_size``.
        out_dir: destination folder; an existing exported model there is replaced (a folder
            holding anything else is refused: see :func:`check_model_out`).
        dtype: parameter storage dtype; "float16" halves the file (the loader computes in
            float32). Batch-norm statistics and front-end tensors stay float32.
        decoding_from: a model folder whose ``decode.yaml`` and ``lm/`` are written too (the
            LM in ``dtype``: :func:`asr.lm.io.carry_decoding`).
    Returns:
        ``Path(out_dir)``.
    """
    weight_dtype = check_dtype(dtype)
    if tokenizer.vocab_size != model.vocab_size:
        raise ModelFileError(
            f"tokenizer has {tokenizer.vocab_size} symbols but the model outputs {model.vocab_size}"
        )
    out_dir = Path(out_dir)
    dest = out_dir.resolve()  # "." has no name to derive the temporary folder's name from
    tmp = make_temp_dir(dest, out_dir)
    try:
        state = _export_state(model, weight_dtype)
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT})
        exported = ExportedConfig(vocab_size=model.vocab_size, model=model.cfg, dtype=dtype)
        config_io.save(exported, tmp / CONFIG_FILE)
        tokenizer.save(tmp)
        if decoding_from is not None:
            from asr.lm.io import carry_decoding

            carry_decoding(decoding_from, tmp, dtype)
        replace_dir(tmp, dest)
    except (OSError, SafetensorError) as err:
        raise write_error(out_dir, err) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def read_exported_config(model_dir: str | Path) -> ExportedConfig:
    """Read and validate ``config.yaml`` of a model directory (ConfigError names the field)."""
    path = Path(model_dir) / CONFIG_FILE
    return config_io.from_dict(ExportedConfig, config_io.read_yaml(path), where=f"{path}:")


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[CTCModel, Tokenizer]:
    """Load an exported model directory without unpickling anything.

    Args:
        path: the model directory (or its ``config.yaml`` / ``model.safetensors``).
        device: where to put the model; it is returned in eval mode, float32.
    Returns:
        (model, tokenizer).
    Raises:
        ModelFileError / ConfigError: missing files, bad config, weights that do not fit.
    """
    from asr.text.tokenizer import load_tokenizer

    model_dir = Path(path)
    if model_dir.is_file():
        model_dir = model_dir.parent
    if not (model_dir / CONFIG_FILE).is_file():
        raise ModelFileError(f"{model_dir}: not a model directory (no {CONFIG_FILE})")
    exported = read_exported_config(model_dir)
    tokenizer = load_tokenizer(model_dir)
    if tokenizer.vocab_size != exported.vocab_size:
        raise ModelFileError(
            f"{model_dir}: tokenizer has {tokenizer.vocab_size} symbols, "
            f"{CONFIG_FILE} says vocab_size {exported.vocab_size}"
        )
    model = CTCModel(exported.model, exported.vocab_size, load_stats=False)
    _load_weights(model, model_dir / WEIGHTS_FILE)
    return model.to(device).eval(), tokenizer


def _load_weights(model: CTCModel, weights: Path) -> None:
    """Copy the safetensors tensors into ``model`` (cast to its dtype), strictly."""
    try:
        state = load_file(str(weights))
    except (OSError, SafetensorError) as err:
        raise ModelFileError(f"{weights}: cannot read weights: {err}") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise ModelFileError(f"{weights}: weights do not match the config: {what}")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise ModelFileError(
                f"{weights}: {name} has shape {tuple(tensor.shape)}, "
                f"the config needs {tuple(expected[name].shape)}"
            )
    model.load_state_dict(state, strict=True)


def export_folder(src: str | Path, out: str | Path, dtype: str, overwrite: bool = False) -> str:
    """Rewrite the model or LM folder ``src`` into ``out`` with ``dtype`` weights; returns the
    kind written ("acoustic model" or "LSTM LM"). ``out`` is checked first
    (:func:`asr.io.folders.check_model_out`); ``overwrite`` allows replacing an exported folder
    of the same kind."""
    from asr.lm.io import load_lm, save_lm

    src = Path(src)
    kind = source_kind(src)
    if Path(out).resolve() == src.resolve():
        raise ModelFileError(f"{out}: the output folder must differ from the source")
    check_model_out(out, kind, overwrite=overwrite, sources=(src,))
    if kind == LSTM_LM:
        lm, tokenizer = load_lm(src)
        save_lm(lm, tokenizer, out, dtype=dtype)  # type: ignore[arg-type]
        return kind
    model, tokenizer = load_model(src)
    export_model(model, tokenizer, out, dtype=dtype, decoding_from=src)  # type: ignore[arg-type]
    return kind
