"""Training never loses or mixes a user's runs, and never hands back NaN (issue 17, items 3, 4, 7,
8, 9, 11): each test reproduces a failure of the old code (rc 0 with a mixed or NaN model, or a
traceback) and checks the one-line error or the recovery that replaced it."""

from __future__ import annotations

import errno
import json
import math
import os
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from asr.text.tokenizer import CharTokenizer
from asr.train.checkpoint import non_finite
from asr.train.engine import DivergedError, Engine
from asr.train.exp import ExperimentError
from asr.train.state import StateError
from tests.tone_corpus import TINY_MODEL, make_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tones")
    make_corpus(folder, 8, seed=1, name="train")
    return folder / "train.jsonl"


def _acoustic(exp: Path, corpus: Path, *overrides: str):
    """A tiny acoustic trainer: 2 batches per epoch, a checkpoint every 2 steps."""
    from asr.train.acoustic import AcousticTrainer
    from asr.train.config import load_train_config

    cfg = {
        "model": TINY_MODEL,
        "data": {"train_manifest": str(corpus), "max_batch_seconds": 6.0, "num_buckets": 1},
        "optim": {"lr": 1e-2, "schedule": "constant"},
        "engine": {
            "epochs": 2,
            "checkpoint_every_steps": 2,
            "log_every_steps": 1,
            "keep_last": 5,
            "device": "cpu",
        },
    }
    path = corpus.parent / f"train-{abs(hash(str(exp)))}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return AcousticTrainer(load_train_config(path, list(overrides)), CharTokenizer(), exp)


def _lm(exp: Path, corpus: Path, *overrides: str):
    """A tiny LM trainer: 6 steps, a checkpoint every 2."""
    from asr.train.config import load_lm_train_config
    from asr.train.lm import LMTrainer

    text = exp.parent / "lm.txt"
    text.write_text("".join(f"THE CAT {'SAT ' * (i % 4)}ON A MAT\n" for i in range(200)))
    base = ["model.embedding_dim=8", "model.hidden_size=8", "data.text_format=lines",
            "data.max_batch_tokens=128", "data.max_sentence_tokens=60",
            "data.buffer_sentences=32", "engine.max_steps=6",
            "engine.checkpoint_every_steps=2", "engine.log_every_steps=1", "engine.keep_last=5",
            "engine.device=cpu", "optim.schedule=constant"]  # fmt: skip
    cfg = load_lm_train_config("conf/lm/small_char.yaml", base + list(overrides))
    return LMTrainer(cfg, CharTokenizer(), [text], exp)


BUILDERS = pytest.mark.parametrize("build", [_acoustic, _lm], ids=["acoustic", "lm"])


def _records(exp: Path) -> list[dict]:
    return [json.loads(line) for line in (exp / "log.jsonl").read_text().splitlines()]


def _snapshot(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


# ------------------------------------------------------------------------ item 3: never mix
@BUILDERS
def test_second_run_in_an_experiment_needs_resume_or_overwrite(tmp_path, corpus, build):
    """Old: a new run into a used exp ran (rc 0), pruned its own new checkpoints (the old steps
    counted as newer), exported the old weights and emptied log.jsonl."""
    exp = tmp_path / "exp"
    build(exp, corpus).run()
    (exp / "notes.txt").write_text("mine\n")
    before = _snapshot(exp)
    with pytest.raises(ExperimentError, match=r"exp: holds a training run .*--resume.*--exp"):
        build(exp, corpus, "engine.seed=7").run()
    assert _snapshot(exp) == before  # nothing written, nothing removed
    build(exp, corpus, "engine.seed=7").run(overwrite=True)
    assert (exp / "notes.txt").read_text() == "mine\n"  # not a run's file: kept
    steps = sorted(p.name for p in (exp / "checkpoints").glob("step-*"))
    assert steps and all(int(s[5:]) <= 6 for s in steps)
    assert _snapshot(exp) != before


def test_overwrite_removes_only_what_a_run_writes(tmp_path, corpus):
    exp = tmp_path / "exp"
    (exp / "checkpoints").mkdir(parents=True)
    (exp / "checkpoints" / "thesis.pdf").write_bytes(b"%PDF")
    (exp / "log.jsonl").write_text("{}\n")
    before = _snapshot(exp)
    with pytest.raises(ExperimentError, match=r"thesis\.pdf.*refusing to remove"):
        _acoustic(exp, corpus).run(overwrite=True)
    assert _snapshot(exp) == before


def test_resume_with_a_changed_architecture_is_one_line(tmp_path, corpus):
    """Old: ``RuntimeError: Error(s) in loading state_dict ... size mismatch`` traceback."""
    exp = tmp_path / "exp"
    _acoustic(exp, corpus, "engine.max_steps=2").run()
    changed = _acoustic(exp, corpus, "model.encoder.blocks.0.filters=24", "engine.max_steps=4")
    with pytest.raises(StateError, match=r"step-00000002: the checkpoint does not fit") as err:
        changed.run(resume=True)
    assert "\n" not in str(err.value) and "config.yaml" in str(err.value)


# -------------------------------------------------------------------- item 4: no NaN models
def _poison(monkeypatch, steps: set[int]) -> None:
    """Make the task's loss NaN at the given optimizer steps (a diverged batch)."""
    original = Engine.forward_backward

    def forward_backward(self, batch):
        if self.step not in steps:
            return original(self, batch)
        task_loss = self.task.loss

        def nan_loss(forward, b):
            loss, weight, work = task_loss(forward, b)
            return loss * float("nan"), weight, work

        self.task.loss = nan_loss
        try:
            return original(self, batch)
        finally:
            del self.task.loss

    monkeypatch.setattr(Engine, "forward_backward", forward_backward)


@BUILDERS
def test_non_finite_steps_are_skipped_and_logged_as_nan(tmp_path, corpus, build, monkeypatch):
    """Old: NaN gradients were applied (53 of 62 tensors NaN), the export was NaN, rc 0, and the
    log said ``train/loss: 0.0``."""
    _poison(monkeypatch, {1, 2})
    exp = tmp_path / "exp"
    trainer = build(exp, corpus)
    out = trainer.run()
    records = {r["step"]: r for r in _records(exp) if "train/loss" in r}
    assert math.isnan(records[2]["train/loss"]) and math.isnan(records[3]["train/loss"])
    assert records[2]["train/skipped_steps"] == 1 and "train/skipped_steps" not in records[1]
    assert math.isfinite(records[4]["train/loss"])
    assert not non_finite(trainer.model.state_dict())
    assert not non_finite(load_file(str(out / "model.safetensors")))


@BUILDERS
def test_a_diverged_run_stops_and_keeps_the_last_good_checkpoint(
    tmp_path, corpus, build, monkeypatch
):
    _poison(monkeypatch, set(range(2, 100)))
    exp = tmp_path / "exp"
    trainer = build(exp, corpus, "engine.max_nonfinite_steps=2")
    with pytest.raises(DivergedError, match=r"2 steps in a row .*step-00000002.*optim.lr"):
        trainer.run()
    assert not (exp / "model").exists() and not (exp / "lm").exists()  # nothing exported
    assert (exp / "checkpoints" / "latest").read_text().strip() == "step-00000002"
    for ckpt in (exp / "checkpoints").glob("step-*"):
        assert not non_finite(load_file(str(ckpt / "model.safetensors")))


def test_huge_learning_rate_never_writes_non_finite_weights(tmp_path, corpus):
    """The issue's case: ``optim.lr=1e12`` exported a NaN model with rc 0."""
    exp = tmp_path / "exp"
    overrides = ("optim.lr=1e12", "engine.max_nonfinite_steps=3", "engine.epochs=8")
    trainer = _acoustic(exp, corpus, *overrides)
    with pytest.raises(DivergedError, match="training diverged"):
        trainer.run()
    assert not (exp / "model").exists()
    for ckpt in (exp / "checkpoints").glob("step-*"):
        assert not non_finite(load_file(str(ckpt / "model.safetensors")))
    losses = [r["train/loss"] for r in _records(exp) if "train/loss" in r]
    assert 0.0 not in losses, losses  # a NaN was once summed as 0.0


def test_a_run_with_most_steps_skipped_exports_nothing(tmp_path, corpus, monkeypatch):
    """Issue 25 item 4: ``optim.lr=1e30`` skipped 14 of 15 steps as NaN, exited 0 and exported
    a useless model (the streak limit was never reached)."""
    _poison(monkeypatch, {1, 2, 3, 5, 6, 7})  # 6 of 8 steps, never 4 in a row
    exp = tmp_path / "exp"
    trainer = _acoustic(exp, corpus, "engine.epochs=4", "engine.max_nonfinite_steps=4")
    with pytest.raises(DivergedError, match=r"6 of 8 steps were skipped.*nothing exported"):
        trainer.run()
    assert not (exp / "model").exists()


# -------------------------------------------------------- items 8, 9: resume that recovers
def test_resume_falls_back_from_a_truncated_checkpoint(tmp_path, corpus, capsys):
    """Old: a ``SafetensorError`` traceback."""
    exp = tmp_path / "exp"
    _acoustic(exp, corpus, "engine.max_steps=4").run()
    newest = exp / "checkpoints" / "step-00000004" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])
    capsys.readouterr()
    trainer = _acoustic(exp, corpus, "engine.max_steps=4")
    trainer.run(resume=True)
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("resume:")]
    assert len(said) == 1 and "step-00000004" in said[0], said
    assert "resuming from step-00000002" in said[0]
    assert (exp / "checkpoints" / "unreadable-step-00000004").is_dir()  # kept, set aside
    assert (exp / "checkpoints" / "latest").read_text().strip() == "step-00000004"  # retrained


def test_no_readable_checkpoint_is_one_line(tmp_path, corpus):
    exp = tmp_path / "exp"
    _acoustic(exp, corpus, "engine.max_steps=2").run()
    (exp / "checkpoints" / "step-00000002" / "train.json").write_text("{not json")
    with pytest.raises(StateError, match="no readable checkpoint"):
        _acoustic(exp, corpus, "engine.max_steps=4").run(resume=True)


def test_failed_checkpoint_save_leaves_nothing_and_resume_ignores_leftovers(
    tmp_path, corpus, monkeypatch
):
    """Old: a full disk during a save left ``.step-*.tmp-PID`` folders forever (OSError
    traceback); the next run neither cleaned nor ignored them."""
    import asr.train.checkpoint as checkpoint

    exp = tmp_path / "exp"
    real_save = checkpoint.save_file
    calls = []

    def full_disk(tensors, path, *a, **k):
        calls.append(path)
        if len(calls) == 3:  # step 2's two checkpoints (every 2 steps, epoch end), then step 4
            Path(path).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(tensors, path, *a, **k)

    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    with pytest.raises(StateError, match=r"step-00000004: cannot write checkpoint: No space"):
        _acoustic(exp, corpus).run()
    monkeypatch.setattr(checkpoint, "save_file", real_save)
    names = os.listdir(exp / "checkpoints")
    assert sorted(names) == ["latest", "step-00000002"], names
    dead = exp / "checkpoints" / ".step-00000009.tmp-999999999"  # of a killed process
    dead.mkdir()
    (dead / "model.safetensors").write_bytes(b"half")
    _acoustic(exp, corpus).run(resume=True)
    assert not dead.exists()
    assert (exp / "model" / "model.safetensors").is_file()


def test_unwritable_experiment_fails_before_training(tmp_path, corpus, monkeypatch):
    from asr.io.outputs import OutputError

    (tmp_path / "f").write_text("a file\n")
    ran = []
    monkeypatch.setattr(Engine, "forward_backward", lambda *a: ran.append(1))
    with pytest.raises(OutputError, match="f/exp"):
        _acoustic(tmp_path / "f" / "exp", corpus).run()
    assert not ran


# ------------------------------------------------------------------ items 7, 11: the config
def test_device_must_be_known_and_cuda_must_exist(tmp_path, corpus, monkeypatch):
    """Old: ``device: tpu`` / ``gpu`` trained on the CPU silently; so did ``cuda`` without CUDA
    under torchrun-less runs."""
    from asr.config import ConfigError
    from asr.train.distributed import DeviceError, init_distributed

    for bad in ("tpu", "gpu"):
        with pytest.raises(ConfigError, match=rf"device: expected one of .*{bad}"):
            _acoustic(tmp_path / "exp", corpus, f"engine.device={bad}")
        with pytest.raises(ConfigError, match=rf"device: expected one of .*{bad}"):
            _lm(tmp_path / "exp", corpus, f"engine.device={bad}")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="device: cuda, but torch sees no usable CUDA"):
        init_distributed("cuda")
    with pytest.raises(DeviceError, match="no usable CUDA"):
        _acoustic(tmp_path / "exp", corpus, "engine.device=cuda")
    assert init_distributed("auto").device.type == "cpu"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("optim.lr=.nan", "optim.lr"),
        ("optim.lr=.inf", "optim.lr"),
        ("optim.min_lr=-.inf", "optim.min_lr"),
        ("engine.grad_clip=.nan", "engine.grad_clip"),
        ("engine.ema_decay=.nan", "engine.ema_decay"),
        ("data.max_batch_seconds=.nan", "data.max_batch_seconds"),
        ("model.frontend.num_mel_bins=-5", "num_mel_bins"),
        ("engine.max_nonfinite_steps=0", "max_nonfinite_steps"),
    ],
)
def test_numeric_fields_are_finite_and_named(tmp_path, corpus, override, field):
    """Old: ``lr: .nan`` was blamed on ``min_lr`` (or accepted), ``num_mel_bins: -5`` on
    ``num_ceps``."""
    from asr.config import ConfigError

    with pytest.raises(ConfigError) as err:
        _acoustic(tmp_path / "exp", corpus, override)
    message = str(err.value)
    assert field in message and "\n" not in message, message
    assert "num_ceps" not in message and "min_lr" not in message.replace(field, ""), message
