"""The one training engine: both trainers (acoustic model, LSTM LM) resume bitwise through it.

Each run is killed inside the engine's step (after a mid-epoch checkpoint), resumed by a fresh
trainer, and must log exactly the losses of an uninterrupted run and export exactly its weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from asr.text.tokenizer import CharTokenizer
from asr.train.engine import Engine
from tests.tone_corpus import TINY_MODEL, make_corpus

KILL_AT_STEP = 4  # the newest checkpoint then is step 3 (mid-epoch for both trainers)


def _acoustic(folder: Path, exp: Path):
    """An acoustic trainer with validation, EMA and gradient accumulation."""
    from asr.train.acoustic import AcousticTrainer
    from asr.train.config import load_train_config

    cfg = {
        "model": TINY_MODEL,
        "data": {
            "train_manifest": str(make_corpus(folder / "audio", 16, seed=1, name="train")),
            "valid_manifest": str(make_corpus(folder / "audio", 4, seed=2, name="valid")),
            "max_batch_seconds": 4.0,
            "num_buckets": 2,
        },
        "optim": {"name": "adamw", "lr": 1e-2, "warmup_steps": 2},
        "engine": {
            "epochs": 3,
            "grad_accum": 2,
            "ema_decay": 0.5,
            "checkpoint_every_steps": 3,
            "log_every_steps": 1,
            "average_best": 2,
            "device": "cpu",
        },
    }
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return AcousticTrainer(load_train_config(path), CharTokenizer(), exp), "model"


def _lm(folder: Path, exp: Path):
    """An LM trainer with dropout, validated at every checkpoint."""
    from asr.train.config import load_lm_train_config
    from asr.train.lm import LMTrainer

    text = folder / "train.txt"
    words = ["THE", "CAT", "SAT", "ON", "A", "MAT", "AND", "IT", "WAS", "GOOD", "FOR", "ME", "TOO"]
    lines = [" ".join(words[(i * 7 + j * 3) % 13] for j in range(1 + i % 9)) for i in range(300)]
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    overrides = ["model.embedding_dim=16", "model.hidden_size=24", "model.dropout=0.2",
                 "data.text_format=lines", "data.buffer_sentences=64", "data.max_batch_tokens=256",
                 "data.max_sentence_tokens=100", "data.valid_per_mille=100",
                 "engine.max_steps=10", "engine.checkpoint_every_steps=3",
                 "engine.log_every_steps=1", "optim.warmup_steps=2",
                 "engine.device=cpu"]  # fmt: skip
    cfg = load_lm_train_config("conf/lm/small_char.yaml", overrides)
    return LMTrainer(cfg, CharTokenizer(), [text], exp), "lm"


def _log(exp: Path) -> list[dict]:
    rows = [json.loads(line) for line in (exp / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.endswith("_per_s")} for r in rows]  # not timing


@pytest.mark.parametrize("build", [_acoustic, _lm], ids=["acoustic", "lm"])
def test_both_trainers_resume_bitwise_through_the_engine(tmp_path, monkeypatch, build):
    trainer, out_name = build(tmp_path, tmp_path / "full")
    assert isinstance(trainer.engine, Engine)
    full_out = trainer.run()
    original = Engine.forward_backward

    def killed(self, batch):
        if self.step == KILL_AT_STEP:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(Engine, "forward_backward", killed)
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path, tmp_path / "cut")[0].run()
    monkeypatch.setattr(Engine, "forward_backward", original)
    assert (tmp_path / "cut" / "checkpoints" / "latest").read_text().strip() == "step-00000003"
    resumed = build(tmp_path, tmp_path / "cut")[0]
    cut_out = resumed.run(resume=True)
    assert resumed.engine.step == trainer.engine.step > KILL_AT_STEP
    assert _log(tmp_path / "cut") == _log(tmp_path / "full")  # train and valid, bitwise
    assert any("valid/loss" in r for r in _log(tmp_path / "full"))
    assert full_out.name == cut_out.name == out_name
    want = load_file(str(full_out / "model.safetensors"))
    got = load_file(str(cut_out / "model.safetensors"))
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)


def test_logs_are_plain_lines_without_a_terminal(tmp_path, capsys):
    """Not a terminal (a log file): no progress bar redraws, one line per logged step."""
    trainer, _ = _lm(tmp_path, tmp_path / "exp")
    trainer.run()
    out, err = capsys.readouterr()
    assert "\r" not in out + err and "it/s" not in out + err  # tqdm's redraws and rate
    steps = [r["step"] for r in _log(tmp_path / "exp") if "train/loss" in r]
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [int(line.split(" step ")[1].split(":")[0]) for line in lines] == steps
