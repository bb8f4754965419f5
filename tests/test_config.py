"""Strict YAML <-> frozen dataclass configs."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from asr import config
from asr.config import ConfigError


@dataclasses.dataclass(frozen=True)
class Inner:
    kernel: tuple[int, ...] = (3, 5)
    act: Literal["relu", "gelu"] = "relu"


@dataclasses.dataclass(frozen=True)
class Outer:
    rate_hz: int = 16000
    coef: float = 0.97
    name: str | None = None
    inner: Inner = dataclasses.field(default_factory=Inner)


def test_round_trip(tmp_path):
    cfg = Outer(rate_hz=8000, coef=1, name="x", inner=Inner(kernel=(7,), act="gelu"))
    config.save(cfg, tmp_path / "c.yaml")
    back = config.load(Outer, tmp_path / "c.yaml")
    assert back == cfg
    assert isinstance(back.coef, float) and back.inner.kernel == (7,)


def test_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text("rate_hz: 8000\n")
    cfg = config.load(Outer, tmp_path / "c.yaml", ["inner.kernel=[9, 11]", "name=abc"])
    assert cfg == Outer(rate_hz=8000, name="abc", inner=Inner(kernel=(9, 11)))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("rate: 8000\n", "unknown key 'rate'"),
        ("rate_hz: fast\n", "rate_hz: expected an integer"),
        ("rate_hz: 8000.5\n", "rate_hz: expected an integer"),
        ("coef: true\n", "coef: expected a number"),
        ("inner: {act: tanh}\n", "inner.act: expected one of"),
        ("inner: {kernel: [3, x]}\n", "inner.kernel[1]: expected an integer"),
        ("inner: {bogus: 1}\n", "inner: unknown key 'bogus'"),
        ("rate_hz: [\n", "invalid YAML"),
        ("- 1\n", "mapping"),
    ],
)
def test_errors_name_file_and_field(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        config.load(Outer, path)
    msg = str(info.value)
    assert str(path) in msg and fragment in msg and "\n" not in msg


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        config.load(Outer, tmp_path / "nope.yaml")


def test_atomic_write_leaves_no_temp_on_error(tmp_path):
    from asr.io.atomic import atomic_open

    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("new")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_cli_help_and_error_is_one_line(capsys):
    from asr.cli import main

    assert main([]) == 2


def test_scientific_notation_without_dot_is_a_float(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("coef: 5e-3\n")
    cfg = config.load(Outer, path, ["rate_hz=16000", "coef=1E4"])
    assert cfg.coef == 1e4
    assert config.load(Outer, path).coef == 5e-3


def test_error_location_format(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner: {act: tanh}\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: inner\.act: expected one of"):
        config.load(Outer, path)


def test_override_list_items():
    data = {"blocks": [{"k": 1}, {"k": 2}]}
    out = config.apply_overrides(data, ["blocks.1.k=5", "new.deep=1"])
    assert out == {"blocks": [{"k": 1}, {"k": 5}], "new": {"deep": 1}}
    assert data["blocks"][1]["k"] == 2
    with pytest.raises(ConfigError, match="no item '7'"):
        config.apply_overrides(data, ["blocks.7.k=1"])
    with pytest.raises(ConfigError, match="not a section"):
        config.apply_overrides(data, ["blocks.0.k.x=1"])


def test_atomic_files_get_umask_permissions(tmp_path):
    import os

    from asr.io.atomic import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
