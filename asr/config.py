"""Frozen dataclasses <-> YAML, with strict key and type checks.

Every component's options are a frozen dataclass. This module turns a mapping (from YAML or
command-line overrides) into such a dataclass, refusing unknown keys and values of the wrong type
with a one-line :class:`ConfigError` that names the file and the dotted field, and writes a
dataclass back to YAML atomically.

Supported field types: ``bool``, ``int``, ``float`` (ints are accepted; NaN and infinities are
not), ``str``, ``Literal[...]``,
``Optional[X]`` / ``X | None``, ``tuple[X, ...]``, ``tuple[X, Y]``, ``list[X]``, ``dict[str, X]``
and nested dataclasses.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from asr.errors import AsrError
from asr.io.atomic import atomic_write_text

T = TypeVar("T")


class ConfigError(AsrError):
    """A configuration file or override is invalid (unknown key, wrong type, bad YAML)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` (no dot) as a float, as YAML 1.2 does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _loc(where: str) -> str:
    """The location without the trailing colon of a top-level ``"file.yaml:"``."""
    return where.rstrip(":")


def _join(where: str, name: str) -> str:
    """``"file.yaml:" + "lr"`` -> ``"file.yaml: lr"``; ``"optim" + "lr"`` -> ``"optim.lr"``."""
    return f"{where} {name}" if where.endswith(":") else f"{where}.{name}"


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against type ``tp`` and convert containers; raise ConfigError otherwise."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError:
                pass
        raise ConfigError(f"{_loc(where)}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value in args and type(value) is type(next(a for a in args if a == value)):
            return value
        raise ConfigError(f"{_loc(where)}: expected one of {list(args)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{_loc(where)}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{_loc(where)}: expected a list, got {value!r}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ConfigError(f"{_loc(where)}: expected {len(args)} items, got {len(value)}")
            items = [_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_tp = args[0] if args else Any
            items = [_convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{_loc(where)}: expected a mapping, got {value!r}")
        val_tp = args[1] if args else Any
        return {str(k): _convert(v, val_tp, _join(where, str(k))) for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{_loc(where)}: expected a number, got {value!r}")
        if not math.isfinite(value):  # .nan / .inf pass every `x <= 0` style range check
            raise ConfigError(f"{_loc(where)}: expected a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{_loc(where)}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{_loc(where)}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{_loc(where)}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{_loc(where)}: unsupported field type {_type_name(tp)}")


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``, checking every key and type.

    Args:
        cls: a (frozen) dataclass type.
        data: mapping of field name to value; missing fields take their defaults.
        where: prefix used in error messages, e.g. ``"conf/model/small.yaml: model"``.

    Raises:
        ConfigError: on an unknown key, a missing required key or a value of the wrong type.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{_loc(where)}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{_loc(where)}: unknown key {unknown[0]!r} (valid keys: {', '.join(sorted(fields))})"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(value, hints[name], _join(where, name))
    try:
        return cls(**kwargs)
    except TypeError as err:  # missing required field
        raise ConfigError(f"{_loc(where)}: {err}") from None
    except ValueError as err:  # __post_init__ validation
        raise ConfigError(f"{_loc(where)}: {err}") from None


def to_dict(obj: Any) -> dict[str, Any]:
    """Turn a dataclass (recursively) into plain dicts/lists suitable for YAML."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(obj)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or bad YAML is a one-line ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config: {err.strerror or err}") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{line} invalid YAML: {getattr(err, 'problem', err)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at the top level")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse one ``a.b.c=value`` override; the value is YAML (``1e-3``, ``true``, ``[3, 5]``)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.load(raw, Loader=_Loader) if raw.strip() else ""
    except yaml.YAMLError:
        raise ConfigError(f"override {text!r}: value is not valid YAML") from None
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with ``key.sub=value`` overrides applied.

    Missing sections are created; a number selects a list item (``encoder.blocks.0.kernel=33``).
    """
    import copy

    out = copy.deepcopy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node: Any = out
        for depth, k in enumerate(keys):
            last = depth == len(keys) - 1
            if isinstance(node, list):
                if not k.isdigit() or int(k) >= len(node):
                    raise ConfigError(f"override {text!r}: no item {k!r} in a list of {len(node)}")
                if last:
                    node[int(k)] = value
                node = node[int(k)]
            elif isinstance(node, dict):
                if last:
                    node[k] = value
                elif node.get(k) is None:
                    node[k] = {}
                node = node[k]
            else:
                raise ConfigError(f"override {text!r}: {keys[depth - 1]!r} is not a section")
    return out


def load(cls: type[T], path: str | Path, overrides: list[str] | None = None) -> T:
    """Load dataclass ``cls`` from a YAML file, applying ``key=value`` overrides."""
    data = apply_overrides(read_yaml(path), overrides or [])
    return from_dict(cls, data, where=f"{path}:")


def save(obj: Any, path: str | Path) -> None:
    """Write dataclass ``obj`` to ``path`` as YAML, atomically."""
    text = yaml.safe_dump(to_dict(obj), sort_keys=False, default_flow_style=None)
    atomic_write_text(path, text)
