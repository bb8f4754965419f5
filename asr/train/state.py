"""Nested training state <-> safetensors + JSON, with no pickle anywhere.

Optimizer, scheduler, sampler and RNG states are nested dicts/lists/tuples of tensors, numbers and
strings. :func:`flatten_state` moves every tensor (and NumPy array) into a flat ``name -> tensor``
dict for safetensors and leaves a JSON-able skeleton with references in its place;
:func:`unflatten_state` puts them back. :func:`save_state` / :func:`load_state` write and read
the pair (``<stem>.safetensors`` + ``<stem>.json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from asr.errors import AsrError
from asr.io.atomic import atomic_path, atomic_write_text

_TENSOR = "__tensor__"
_NDARRAY = "__ndarray__"
_TUPLE = "__tuple__"
_INTKEYS = "__intkeys__"


class StateError(AsrError):
    """A training state file is missing, unreadable or inconsistent."""


def flatten_state(state: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split ``state`` into a JSON-able skeleton and a flat dict of tensors.

    Args:
        state: nested dicts (str or int keys), lists, tuples, tensors, NumPy arrays, numbers,
            strings, booleans and None.

    Returns:
        ``(skeleton, tensors)``: tensors are stored contiguously under keys ``"t0"``, ``"t1"``, ...
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, torch.Tensor):
            key = f"t{len(tensors)}"
            tensors[key] = node.detach().cpu().contiguous().clone()
            return {_TENSOR: key}
        if isinstance(node, np.ndarray):
            key = f"t{len(tensors)}"
            tensors[key] = torch.from_numpy(np.ascontiguousarray(node).copy())
            return {_NDARRAY: key}
        if isinstance(node, dict):
            if all(isinstance(k, str) for k in node):
                return {k: walk(v) for k, v in node.items()}
            if all(isinstance(k, int) for k in node):
                return {_INTKEYS: [[k, walk(v)] for k, v in node.items()]}
            raise TypeError(f"state dict keys must be all str or all int: {list(node)[:3]}")
        if isinstance(node, tuple):
            return {_TUPLE: [walk(v) for v in node]}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, np.generic):
            return node.item()
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        raise TypeError(f"cannot store {type(node).__name__} in a training state")

    return walk(state), tensors


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if _TENSOR in node:
                return tensors[node[_TENSOR]]
            if _NDARRAY in node:
                return tensors[node[_NDARRAY]].numpy()
            if _TUPLE in node:
                return tuple(walk(v) for v in node[_TUPLE])
            if _INTKEYS in node:
                return {int(k): walk(v) for k, v in node[_INTKEYS]}
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(skeleton)


def save_state(state: Any, stem: str | Path) -> None:
    """Write ``state`` to ``<stem>.safetensors`` and ``<stem>.json`` atomically (JSON last)."""
    stem = Path(stem)
    skeleton, tensors = flatten_state(state)
    with atomic_path(stem.with_suffix(".safetensors")) as tmp:
        save_file(tensors, str(tmp))
    atomic_write_text(stem.with_suffix(".json"), json.dumps(skeleton))


def load_state(stem: str | Path) -> Any:
    """Read a state written by :func:`save_state`; errors name the file."""
    stem = Path(stem)
    json_path, st_path = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    try:
        skeleton = json.loads(json_path.read_text(encoding="utf-8"))
        tensors = load_file(str(st_path))
    except FileNotFoundError as err:
        raise StateError(f"{err.filename}: training state file is missing") from None
    except (OSError, ValueError, SafetensorError) as err:
        raise StateError(f"{stem}: cannot read training state: {err}") from None
    try:
        return unflatten_state(skeleton, tensors)
    except KeyError as err:
        raise StateError(f"{st_path}: tensor {err} referenced by {json_path} is missing") from None
