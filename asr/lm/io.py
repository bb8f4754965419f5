"""Exported LM folders: ``model.safetensors`` + ``lm.yaml`` + tokenizer files, no pickle.

Layout::

    model.safetensors   the LSTM LM's weights
    lm.yaml             format, version, vocab_size, weight dtype, architecture (LSTMLMConfig)
    tokenizer.yaml ...  the tokenizer the LM was trained with (``Tokenizer.save``)

The folder is written under a temporary name and renamed into place (atomic replace).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Literal

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from asr import config as config_io
from asr.io.folders import (
    DECODE_FILE,
    LM_DIR,
    check_dtype,
    check_format,
    make_temp_dir,
    replace_dir,
    write_error,
)
from asr.lm.base import LMError
from asr.lm.int8 import int8_available
from asr.lm.lstm import LSTMLM, LSTMLMConfig
from asr.text.tokenizer import Tokenizer, load_tokenizer, vocab_difference

FORMAT = "asr-lstm-lm"
VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "lm.yaml"


@dataclasses.dataclass(frozen=True)
class ExportedLM:
    """The ``lm.yaml`` of an exported LM."""

    vocab_size: int  # output symbols including id 0 (</s>); must equal the tokenizer's
    model: LSTMLMConfig  # the architecture
    format: str = FORMAT  # always "asr-lstm-lm"
    version: int = VERSION  # layout version
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"  # stored weight dtype

    def __post_init__(self) -> None:
        check_format(self.format, self.version, FORMAT, VERSION)


def save_lm(
    model: LSTMLM,
    tokenizer: Tokenizer,
    out_dir: str | Path,
    dtype: Literal["float32", "float16", "bfloat16"] = "float32",
) -> Path:
    """Write ``model`` and ``tokenizer`` into the folder ``out_dir`` atomically.

    Args:
        model: the LM (any device; weights are copied to CPU).
        tokenizer: its tokenizer; the vocabularies must be equal.
        out_dir: destination folder; an existing exported LM there is replaced (a folder
            holding anything else is refused: see :func:`asr.io.folders.check_model_out`).
        dtype: weight storage dtype, default "float32"; "float16" halves the file (the loader
            computes in float32).
    Returns:
        ``Path(out_dir)``.
    """
    weight_dtype = check_dtype(dtype, LMError)
    diff = vocab_difference(model.vocab, tokenizer.vocab)
    if diff is not None:
        raise LMError(f"cannot export: model and tokenizer vocabularies differ: {diff}")
    out_dir = Path(out_dir)
    dest = out_dir.resolve()  # "." has no name to derive the temporary folder's name from
    tmp = make_temp_dir(dest, out_dir)
    try:
        state = {
            k: v.detach()
            .cpu()
            .to(weight_dtype if v.is_floating_point() else v.dtype)
            .contiguous()
            .clone()
            for k, v in model.state_dict().items()
        }
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT})
        config_io.save(ExportedLM(len(model.vocab), model.cfg, dtype=dtype), tmp / CONFIG_FILE)
        tokenizer.save(tmp)
        replace_dir(tmp, dest)
    except (OSError, SafetensorError) as err:
        raise write_error(out_dir, err) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def carry_decoding(
    src: str | Path, dest: str | Path, dtype: Literal["float32", "float16", "bfloat16"]
) -> None:
    """Copy a model folder's recommended decoding into the folder ``dest`` being exported: its
    ``decode.yaml`` and its ``lm/`` LSTM LM (re-saved with ``dtype`` weights), when it has them
    (:func:`asr.pretrained.bundled_decoding` reads them back; an LM is only used with its
    decode.yaml, so ``lm/`` alone is not carried)."""
    src, dest = Path(src), Path(dest)
    if not (src / DECODE_FILE).is_file():
        return
    shutil.copyfile(src / DECODE_FILE, dest / DECODE_FILE)
    if is_lstm_lm_dir(src / LM_DIR):
        lm, tokenizer = load_lm(src / LM_DIR)
        save_lm(lm, tokenizer, dest / LM_DIR, dtype=dtype)


def is_lstm_lm_dir(path: str | Path) -> bool:
    """True when ``path`` is a folder holding an exported LSTM LM."""
    return (Path(path) / CONFIG_FILE).is_file()


def load_lm(
    path: str | Path, device: str | torch.device = "cpu", int8: bool = False
) -> tuple[LSTMLM, Tokenizer]:
    """Load an exported LM folder (eval mode) and its tokenizer.

    Args:
        path: the exported LM folder.
        device: where the weights go (default "cpu").
        int8: decoding steps on CPU run their recurrent products in int8 (:mod:`asr.lm.int8`,
            about 2x faster, log-probs ~0.01 off); default False (float32).
    Raises:
        LMError / ConfigError / TokenizerError: missing files, bad YAML, wrong sizes; the
            message names the file.
    """
    path = Path(path)
    cfg_path = path / CONFIG_FILE
    if int8 and not int8_available():
        raise LMError(
            f"{path}: int8 steps need torch's x86/fbgemm int8 engine (this build has none)"
        )
    if not path.is_dir():
        raise LMError(f"{path}: language model folder not found")
    if not cfg_path.is_file():
        raise LMError(f"{cfg_path}: not found (not an exported LSTM LM folder)")
    exported = config_io.from_dict(ExportedLM, config_io.read_yaml(cfg_path), where=str(cfg_path))
    tokenizer = load_tokenizer(path)
    if tokenizer.vocab_size != exported.vocab_size:
        raise LMError(
            f"{cfg_path}: vocab_size {exported.vocab_size} but the tokenizer in {path} has "
            f"{tokenizer.vocab_size} symbols"
        )
    model = LSTMLM(exported.model, tokenizer.vocab)
    weights = path / WEIGHTS_FILE
    try:
        state = load_file(str(weights))
    except FileNotFoundError:
        raise LMError(f"{weights}: not found") from None
    except (SafetensorError, OSError) as err:
        raise LMError(f"{weights}: cannot read safetensors file ({err})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise LMError(f"{weights}: weights do not match {cfg_path} ({first})") from None
    model.int8 = int8
    return model.to(device).eval(), tokenizer
