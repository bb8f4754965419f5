"""Weight averaging: the float64 mean of state dicts, and of exported acoustic-model folders.

One pure function, :func:`average_states`, averages state dicts; checkpoint averaging at the end
of training (:func:`asr.train.checkpoint.average_model_states`) and model-folder averaging
(:func:`average_model_dirs`, ``asr average``: a "model soup" of fine-tunes of one model) both
use it.

Example::

    from asr.models.average import average_model_dirs
    average_model_dirs(["exp/am_ft1/model", "exp/am_ft2/model"], "exp/am_avg/model")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from asr import config as config_io
from asr.io.folders import (
    ACOUSTIC_MODEL,
    ModelFileError,
    check_dtype,
    check_model_out,
    source_kind,
)
from asr.io.outputs import same_or_inside
from asr.models.ctc import CTCModel
from asr.models.io import ExportedConfig, export_model, load_model, read_exported_config
from asr.text.tokenizer import Tokenizer, load_tokenizer, vocab_difference


class StateMismatchError(ValueError):
    """The state at position ``index`` has other keys, shapes or kinds than the first one."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


def average_states(states: Iterable[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The mean of several state dicts, read one at a time (only the running sum is kept).

    Floating tensors are summed in float64 and divided by the count, then cast to the dtype of
    the last state's tensor; other tensors (integer buffers such as batch norm's
    ``num_batches_tracked``) are taken from the last state.

    Args:
        states: the state dicts (any iterable, e.g. a generator that loads them lazily); each
            must have the keys, shapes and floating/integer kinds of the first.
    Returns:
        The averaged state dict (CPU or the inputs' device), keys in the last state's order.
    Raises:
        StateMismatchError: a state differs from the first (``.index`` says which, from 0).
        ValueError: ``states`` is empty.
    """
    total: dict[str, torch.Tensor] = {}
    last: dict[str, torch.Tensor] = {}
    count = 0
    for index, state in enumerate(states):
        if last:
            _check_like(index, state, last)
        for key, value in state.items():
            if value.is_floating_point():
                acc = value.detach().to(torch.float64)
                total[key] = total[key] + acc if key in total else acc
            last[key] = value
        count += 1
    if not count:
        raise ValueError("no states to average")
    return {
        key: (total[key] / count).to(value.dtype) if key in total else value
        for key, value in last.items()
    }


def _check_like(index: int, state: Mapping[str, torch.Tensor], ref: dict) -> None:
    """Raise StateMismatchError unless ``state`` has the keys, shapes and kinds of ``ref``."""
    missing, unexpected = sorted(set(ref) - set(state)), sorted(set(state) - set(ref))
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise StateMismatchError(index, f"other tensors than the first input: {what}")
    for key, value in state.items():
        if value.shape != ref[key].shape:
            raise StateMismatchError(
                index, f"{key} has shape {tuple(value.shape)}, the first {tuple(ref[key].shape)}"
            )
        if value.is_floating_point() != ref[key].is_floating_point():
            raise StateMismatchError(index, f"{key} is {value.dtype}, the first {ref[key].dtype}")


def first_difference(a: Any, b: Any, where: str) -> str | None:
    """None when the plain values ``a`` and ``b`` (dicts, lists, scalars) are equal, else the
    dotted path of the first difference and both values: ``"model.encoder.blocks[1].filters:
    48 vs 64"`` (lists of different lengths: their lengths)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            diff = first_difference(a.get(key), b.get(key), f"{where}.{key}")
            if diff is not None:
                return diff
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} vs {len(b)} entries"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            diff = first_difference(x, y, f"{where}[{i}]")
            if diff is not None:
                return diff
        return None
    return None if a == b else f"{where}: {a!r} vs {b!r}"


def _check_same_model(model_dirs: Sequence[Path]) -> tuple[ExportedConfig, Tokenizer]:
    """Raise ModelFileError naming the first folder whose architecture config or tokenizer
    vocabulary differs from the first folder's (only configs and tokenizers are read); returns
    the first folder's exported config and tokenizer."""
    first = read_exported_config(model_dirs[0])
    tokenizer = load_tokenizer(model_dirs[0])
    reference = {"vocab_size": first.vocab_size, "model": config_io.to_dict(first.model)}
    for path in model_dirs[1:]:
        exported = read_exported_config(path)
        plain = {"vocab_size": exported.vocab_size, "model": config_io.to_dict(exported.model)}
        diff = first_difference(reference, plain, "config")
        if diff is not None:
            raise ModelFileError(
                f"{path}: architecture differs from {model_dirs[0]} ({diff[len('config.') :]}); "
                "only fine-tunes of one model can be averaged"
            )
        diff = vocab_difference(tokenizer.vocab, load_tokenizer(path).vocab, ("first", "this"))
        if diff is not None:
            raise ModelFileError(
                f"{path}: tokenizer vocabulary differs from {model_dirs[0]}'s ({diff})"
            )
    return first, tokenizer


def average_model_dirs(
    model_dirs: Sequence[str | Path],
    out: str | Path,
    dtype: str = "float32",
    overwrite: bool = False,
) -> Path:
    """Write the weight average of exported acoustic models (a "model soup") to ``out``.

    Floating tensors are averaged in float64 (:func:`average_states`) from the float32 weights
    the loader gives (a float16 folder is read exactly); integer buffers come from the last
    folder, the tokenizer from the first. A folder given twice counts twice.

    Args:
        model_dirs: two or more exported acoustic-model folders with the same architecture
            config (``config.yaml``'s ``model`` and ``vocab_size``) and tokenizer vocabulary.
        out: the model folder to write (new or empty; an exported acoustic model with
            ``overwrite``; never one of ``model_dirs``). Checked before any weights are read.
        dtype: stored parameter dtype, "float32" (default), "float16" or "bfloat16".
        overwrite: the user passed ``--overwrite``.
    Returns:
        ``Path(out)``.
    Raises:
        ModelFileError: fewer than two folders, a folder that is not an acoustic model, a
            mismatched architecture or vocabulary (naming the first folder that differs and
            what differs), or an ``out`` that may not be written.
    """
    dirs = [Path(d) for d in model_dirs]
    if len(dirs) < 2:
        raise ModelFileError(f"averaging needs at least 2 model folders, got {len(dirs)}")
    check_dtype(dtype)
    for path in dirs:
        if source_kind(path) != ACOUSTIC_MODEL:
            raise ModelFileError(f"{path}: is an LSTM LM folder, not an acoustic model")
        if same_or_inside(Path(out), path):
            raise ModelFileError(f"{out}: the output folder is or lies inside the input {path}")
    check_model_out(out, ACOUSTIC_MODEL, overwrite=overwrite, sources=tuple(dirs))
    exported, tokenizer = _check_same_model(dirs)
    states = (load_model(path)[0].state_dict() for path in dirs)
    try:
        state = average_states(states)
    except StateMismatchError as err:  # not expected: equal configs load equal tensors
        raise ModelFileError(f"{dirs[err.index]}: {err}") from None
    model = CTCModel(exported.model, exported.vocab_size, load_stats=False)
    model.load_state_dict(state, strict=True)
    return export_model(model.eval(), tokenizer, out, dtype=dtype)  # type: ignore[arg-type]
