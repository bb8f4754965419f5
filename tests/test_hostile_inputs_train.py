"""``asr train`` / ``asr train-lm`` against hostile command lines (issue 25, items 14 and 22):
an --exp that is an input, and KEY=VALUE overrides on both sides of the options."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from asr.cli import main
from asr.text.tokenizer import CharTokenizer
from tests.tone_corpus import TINY_MODEL, make_corpus


@pytest.fixture()
def setup(tmp_path: Path) -> dict[str, Path]:
    data = tmp_path / "data"
    make_corpus(data, 2, seed=1, name="train")
    CharTokenizer().save(data / "lang")
    config = tmp_path / "train.yaml"
    cfg = {"model": TINY_MODEL, "data": {"train_manifest": str(data / "train.jsonl")},
           "engine": {"device": "cpu"}}  # fmt: skip
    config.write_text(yaml.safe_dump(cfg))
    return {"data": data, "lang": data / "lang", "config": config}


def _train(setup: dict[str, Path], exp: Path, *extra: str) -> list[str]:
    return ["train", "--config", str(setup["config"]), "--tokenizer", str(setup["lang"]),
            "--exp", str(exp), *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("exp", "where"),
    [
        ("data/lang", "is the tokenizer"),
        ("data/lang/sub", "is inside the tokenizer"),
        ("data", "contains the tokenizer"),
    ],
)
def test_exp_that_is_an_input_is_refused(setup, capsys, monkeypatch, exp, where):
    """Old: training wrote checkpoints into the tokenizer or data folder."""
    monkeypatch.setattr("asr.train.acoustic.run_distributed", lambda *a, **k: pytest.fail("ran"))
    before = sorted(p.name for p in setup["data"].rglob("*"))
    assert main(_train(setup, setup["data"].parent / exp)) == 2
    err = capsys.readouterr().err
    assert where in err and "--exp" in err and err.count("\n") == 1, err
    assert sorted(p.name for p in setup["data"].rglob("*")) == before


def test_train_lm_exp_inside_the_text_folder_is_refused(setup, capsys):
    text = setup["data"] / "lm.txt"
    text.write_text("A B\n")
    argv = ["train-lm", "--config", "conf/lm/small_char.yaml", "--tokenizer", "char",
            "--text", str(text), "--exp", str(setup["data"])]  # fmt: skip
    assert main(argv) == 2
    assert "contains the training text" in capsys.readouterr().err


def test_the_library_guards_itself(setup) -> None:
    """The check lives in the training functions, not only in the commands: the Python API
    refuses an --exp that holds an input too (acoustic model and LM)."""
    from asr.io.outputs import OutputError
    from asr.train.acoustic import train
    from asr.train.config import load_lm_train_config, load_train_config
    from asr.train.lm import train_lm

    cfg = load_train_config(setup["config"], [])
    with pytest.raises(OutputError, match="contains the tokenizer folder"):
        train(cfg, setup["lang"], setup["data"])
    text = setup["data"] / "lm.txt"
    text.write_text("A B\n")
    lm_cfg = load_lm_train_config("conf/lm/small_char.yaml", [])
    with pytest.raises(OutputError, match="contains the training text"):
        train_lm(lm_cfg, "char", [text], setup["data"])
    assert not (setup["data"] / "checkpoints").exists()


def test_overrides_on_both_sides_of_exp(setup, tmp_path, monkeypatch):
    """Old: ``optim.lr=1 --exp E engine.seed=3`` failed with the top-level usage."""
    seen = {}
    monkeypatch.setattr("asr.train.acoustic.train", lambda cfg, *a, **k: seen.update(cfg=cfg))
    argv = ["train", "--config", str(setup["config"]), "optim.lr=0.5", "--tokenizer",
            str(setup["lang"]), "--exp", str(tmp_path / "exp"), "engine.seed=3"]  # fmt: skip
    assert main(argv) == 0
    assert seen["cfg"].optim.lr == 0.5 and seen["cfg"].engine.seed == 3
    with pytest.raises(SystemExit):
        main([*argv, "--bogus"])  # an unknown option is still an error
