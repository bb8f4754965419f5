"""The training loop: it learns, resumes exactly after SIGKILL, and DDP equals one process."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.tone_corpus import TINY_MODEL, make_corpus

ROOT = Path(__file__).resolve().parents[1]


def _write_config(folder: Path, **changes) -> Path:
    train = make_corpus(folder / "audio", 24, seed=1, name="train")
    valid = make_corpus(folder / "audio", 6, seed=2, name="valid")
    cfg = {
        "model": TINY_MODEL,
        "data": {
            "train_manifest": str(train),
            "valid_manifest": str(valid),
            "max_batch_seconds": 5.0,
            "num_buckets": 2,
        },
        "optim": {"name": "adamw", "lr": 1e-2, "warmup_steps": 5, "weight_decay": 0.0},
        "engine": {"epochs": 4, "log_every_steps": 1, "average_best": 2, "device": "cpu"},
    }
    cfg = copy.deepcopy(cfg)  # changes must not reach the shared TINY_MODEL
    for key, value in changes.items():
        node = cfg
        *parents, last = key.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    from asr.text.tokenizer import CharTokenizer

    out = tmp_path_factory.mktemp("tok")
    CharTokenizer().save(out)
    return out


def _losses(exp: Path) -> dict[int, float]:
    out = {}
    for line in (exp / "log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "train/loss" in rec:
            out[rec["step"]] = rec["train/loss"]
    return out


def _asr(*args: str, env: dict | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "asr", *args],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_inline_model_names_a_frontend_preset(tmp_path):
    from asr.config import ConfigError
    from asr.frontend.module import load_config
    from asr.train.config import load_train_config

    (tmp_path / "conf").mkdir()
    preset = ROOT / "conf" / "frontend" / "nemo_mel64.yaml"
    (tmp_path / "conf" / "fe.yaml").write_text(preset.read_text())
    config = _write_config(tmp_path, **{"model.frontend": "conf/fe.yaml"})
    cfg = load_train_config(config, ["data.sorted_epochs=1"])
    assert cfg.model.frontend == load_config(preset)
    assert cfg.data.sorted_epochs == 1
    with pytest.raises(ConfigError, match="sorted_epochs"):
        load_train_config(config, ["data.sorted_epochs=-1"])


def test_best_metric_reaches_the_checkpoint_manager(tmp_path, tokenizer_dir):
    from asr.config import ConfigError
    from asr.text.tokenizer import load_tokenizer
    from asr.train.acoustic import AcousticTrainer
    from asr.train.config import load_train_config

    config = _write_config(tmp_path)
    cfg = load_train_config(config, ["engine.best_metric=cer"])
    trainer = AcousticTrainer(cfg, load_tokenizer(tokenizer_dir), tmp_path / "exp")
    assert trainer.engine.checkpoints.metric == "cer"
    assert load_train_config(config).best_metric == "wer"
    with pytest.raises(ConfigError, match="best_metric"):
        load_train_config(config, ["engine.best_metric=bleu"])


def test_training_learns_and_exports(tmp_path, tokenizer_dir):
    from asr.models.io import load_model
    from asr.train.acoustic import train
    from asr.train.config import load_train_config

    # one full batch per epoch: 80 steps of full-batch training learn the tones (at 1e-2 the
    # kaiming-initialised tiny model ends at WER 0.82; 2e-2, 3e-2 and 5e-2 all reach 0)
    overrides = ["engine.epochs=80", "data.max_batch_seconds=100", "data.num_buckets=1"]
    overrides.append("optim.lr=3e-2")
    cfg = load_train_config(_write_config(tmp_path), overrides)
    out = train(cfg, tokenizer_dir, tmp_path / "exp")
    losses = _losses(tmp_path / "exp")
    first, last = losses[min(losses)], losses[max(losses)]
    assert last < 0.3 * first, losses
    records = [json.loads(x) for x in (tmp_path / "exp" / "log.jsonl").read_text().splitlines()]
    wers = [r["valid/wer"] for r in records if "valid/wer" in r]
    assert len(wers) == 80 and wers[0] >= 0.8 and wers[-1] <= 0.1, wers
    model, tok = load_model(out)
    assert tok.vocab_size == model.vocab_size == 29
    assert (tmp_path / "exp" / "curves.png").stat().st_size > 1000


def test_kill_and_resume_continues_the_same_losses(tmp_path, tokenizer_dir):
    config = _write_config(tmp_path, **{"engine.checkpoint_every_steps": 3, "engine.epochs": 3})
    ref = _asr(
        "train",
        "--config",
        str(config),
        "--tokenizer",
        str(tokenizer_dir),
        "--exp",
        str(tmp_path / "ref"),
    )
    assert ref.wait(timeout=600) == 0, ref.stdout.read()
    expected = _losses(tmp_path / "ref")
    victim = _asr(
        "train",
        "--config",
        str(config),
        "--tokenizer",
        str(tokenizer_dir),
        "--exp",
        str(tmp_path / "run"),
    )
    ckpt = tmp_path / "run" / "checkpoints"
    deadline = time.time() + 600
    while not any(p.name >= "step-00000007" for p in ckpt.glob("step-*")):
        assert victim.poll() is None and time.time() < deadline, "run ended before the kill"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    resumed = _asr(
        "train",
        "--config",
        str(config),
        "--tokenizer",
        str(tokenizer_dir),
        "--exp",
        str(tmp_path / "run"),
        "--resume",
    )
    output = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, output
    assert "resumed from step" in output
    got = _losses(tmp_path / "run")
    assert got.keys() == expected.keys()
    for step in expected:
        assert got[step] == pytest.approx(expected[step], rel=1e-4, abs=1e-5), step


def _first_step_record(exp: Path) -> dict:
    for line in (exp / "log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["step"] == 1 and "train/loss" in rec:
            return rec
    raise AssertionError(f"no step-1 record in {exp}")


def test_ddp_two_gloo_ranks_equal_one_process_with_accumulation(tmp_path, tokenizer_dir):
    """Rank r of 2 takes batches r, r+2, ...; one process accumulating 2 batches per step sees
    the same two batches, so the averaged gradient (its norm) and the mean loss must agree."""
    config = _write_config(tmp_path, **{"engine.max_steps": 1, "engine.epochs": 1})
    no_dropout = [f"model.encoder.blocks.{i}.dropout=0.0" for i in range(3)]
    common = ["--config", str(config), "--tokenizer", str(tokenizer_dir)]
    single = _asr(
        "train", *common, "--exp", str(tmp_path / "one"), "engine.grad_accum=2", *no_dropout
    )
    assert single.wait(timeout=600) == 0, single.stdout.read()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--master_port=29517",
            "-m",
            "asr",
            "train",
            *common,
            "--exp",
            str(tmp_path / "two"),
            *no_dropout,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ddp.returncode == 0, ddp.stdout + ddp.stderr
    one, two = _first_step_record(tmp_path / "one"), _first_step_record(tmp_path / "two")
    assert two["train/loss"] == pytest.approx(one["train/loss"], rel=1e-5)
    assert two["train/grad_norm"] == pytest.approx(one["train/grad_norm"], rel=1e-4)
    assert not (tmp_path / "two" / "model").exists() or (tmp_path / "two" / "model").is_dir()


def test_ema_checkpoints_resume_and_average_without_validation(tmp_path, tokenizer_dir):
    """With EMA on, checkpoints hold the EMA weights (raw ones in the train state), a resumed
    run continues the same losses, and with no validation set the newest checkpoints are
    averaged into the exported model."""
    from safetensors.torch import load_file

    from asr.text.tokenizer import load_tokenizer
    from asr.train.acoustic import AcousticTrainer
    from asr.train.checkpoint import load_checkpoint
    from asr.train.config import load_train_config

    config = _write_config(tmp_path)
    base = [
        "engine.ema_decay=0.9",
        "data.valid_manifest=null",
        "optim.schedule=constant",
        "engine.average_best=2",
        "engine.checkpoint_every_steps=2",
        "engine.epochs=1",
    ]
    tok = load_tokenizer(tokenizer_dir)

    def run(exp: str, max_steps: int, resume: bool = False):
        cfg = load_train_config(config, [*base, f"engine.max_steps={max_steps}"])
        return AcousticTrainer(cfg, tok, tmp_path / exp).run(resume=resume)

    out = run("ref", 6)
    run("cut", 4)
    run("cut", 6, resume=True)
    assert _losses(tmp_path / "cut") == pytest.approx(_losses(tmp_path / "ref"), rel=1e-5)
    ckpts = sorted((tmp_path / "ref" / "checkpoints").glob("step-*"))
    assert [p.name for p in ckpts] == ["step-00000004", "step-00000006"]
    weights, state, _ = load_checkpoint(ckpts[-1])
    key = "head.conv.weight"
    assert not torch.equal(weights[key], state["model_raw"][key])
    expected = (load_file(str(ckpts[0] / "model.safetensors"))[key] + weights[key]) / 2
    assert torch.allclose(load_file(str(out / "model.safetensors"))[key], expected, atol=1e-6)
