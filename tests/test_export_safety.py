"""``asr export`` keeps what a model folder decodes with, survives a kill, and fails in one line.

Issue 25 items 3 (decode.yaml and lm/ carried over, torch and ONNX), 10 (what a killed
``export --overwrite`` leaves is recovered by the next run) and 12 (a full disk: one line, the
old folder kept).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asr.cli import main
from asr.pretrained import DEFAULT_MODEL_DIR

SAMPLE = DEFAULT_MODEL_DIR.parent / "samples" / "ljspeech-LJ001-0001.flac"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _transcript(tmp_path: Path, name: str, *model: str) -> str:
    out = tmp_path / f"{name}.txt"
    assert main(["transcribe", str(SAMPLE), "--no-progress", *model, "--out", str(out)]) == 0
    return out.read_text()


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture(scope="module")
def source_text(tmp_path_factory) -> str:
    return _transcript(tmp_path_factory.mktemp("src"), "src", "--model", str(DEFAULT_MODEL_DIR))


def test_export_carries_decode_config_and_lm(tmp_path, source_text) -> None:
    out = tmp_path / "exported"
    assert main(["export", str(DEFAULT_MODEL_DIR), str(out)]) == 0
    assert (out / "decode.yaml").read_bytes() == (DEFAULT_MODEL_DIR / "decode.yaml").read_bytes()
    assert sorted(p.name for p in (out / "lm").iterdir()) == [
        "lm.yaml",
        "model.safetensors",
        "tokenizer.yaml",
    ]
    assert _transcript(tmp_path, "exported", "--model", str(out)) == source_text
    # the export is itself a replaceable model folder (lm/ and decode.yaml are ours)
    assert main(["export", str(DEFAULT_MODEL_DIR), str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_onnx_export_carries_decode_config_and_lm(tmp_path, source_text) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    out = tmp_path / "ox"
    assert main(["export", str(DEFAULT_MODEL_DIR), str(out), "--format", "onnx"]) == 0
    assert (out / "decode.yaml").is_file() and (out / "lm" / "lm.yaml").is_file()
    onnx = ["--backend", "onnxruntime", "--model", str(out), "--threads", "1"]
    assert _transcript(tmp_path, "onnx", *onnx) == source_text
    assert (
        main(["export", str(DEFAULT_MODEL_DIR), str(out), "--format", "onnx", "--overwrite"]) == 0
    )


def test_next_run_recovers_a_folder_set_aside_by_a_killed_export(tmp_path, capsys) -> None:
    model = tmp_path / "mm"
    assert main(["export", str(DEFAULT_MODEL_DIR), str(model)]) == 0
    before = (model / "model.safetensors").read_bytes()
    dead = _dead_pid()
    # killed between the two renames of --overwrite: the old folder hidden, no new one yet
    os.replace(model, tmp_path / f".mm.old-{dead}")
    (tmp_path / f".mm.{dead}.abc_123x.tmp").mkdir()  # its temporary folder
    (tmp_path / f".mm.{dead}.abc_123x.tmp" / "model.safetensors").write_bytes(b"partial")
    alive = tmp_path / f".mm.{os.getppid()}.zzzzzzzz.tmp"  # a running writer's: kept
    alive.mkdir()
    # the next run finds the folder back (and refuses to replace it without --overwrite)
    assert main(["export", str(DEFAULT_MODEL_DIR), str(model)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (model / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, "mm"]


def test_recovery_replaces_nothing_of_anyone_else(tmp_path) -> None:
    model = tmp_path / "mm"
    assert main(["export", str(DEFAULT_MODEL_DIR), str(model)]) == 0
    dead = _dead_pid()
    # an old copy left when the new folder was already in place: removed
    os.replace(model, tmp_path / f".mm.old-{dead}")
    assert main(["export", str(DEFAULT_MODEL_DIR), str(tmp_path / "other")]) == 0
    assert main(["export", str(DEFAULT_MODEL_DIR), str(model)]) == 2  # restored first
    assert main(["export", str(DEFAULT_MODEL_DIR), str(model), "--overwrite"]) == 0
    assert not (tmp_path / f".mm.old-{dead}").exists()
    # names that look like ours but hold a user's file, or a live process's: kept
    user = tmp_path / f".mm.old-{dead}"
    user.mkdir()
    (user / "thesis.txt").write_text("mine")
    live = tmp_path / f".mm.old-{os.getppid()}"
    live.mkdir()
    assert main(["export", str(DEFAULT_MODEL_DIR), str(model), "--overwrite"]) == 0
    assert (user / "thesis.txt").read_text() == "mine" and live.is_dir()


def test_full_disk_is_one_line_and_keeps_the_old_folder(tmp_path, monkeypatch, capsys) -> None:
    import asr.models.io

    out = tmp_path / "m"
    assert main(["export", str(DEFAULT_MODEL_DIR), str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    monkeypatch.setattr(asr.models.io, "save_file", _full_disk)
    assert main(["export", str(DEFAULT_MODEL_DIR), str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and str(out) in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary folder left


def test_full_disk_in_onnx_export_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    pytest.importorskip("onnx")
    import asr.onnx.export

    monkeypatch.setattr(asr.onnx.export, "_export", _full_disk)
    out = tmp_path / "ox"
    assert main(["export", str(DEFAULT_MODEL_DIR), str(out), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing half-written left
