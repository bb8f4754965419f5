"""The training benches (bench/train.py, convergence.py, lm.py, loader.py) measure the training
engine: each core function runs the real trainer for a few steps on a tiny input and reads the
engine's log (bench/engine_run.py)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from asr.data.manifest import read_manifest
from asr.lm.lstm import LSTMLMConfig
from asr.models import fftconv
from asr.text.tokenizer import CharTokenizer
from bench import convergence, engine_run, loader
from bench import lm as lm_bench
from bench import train as train_bench
from tests.tone_corpus import TINY_MODEL, make_corpus

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py; engine threads reset


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Six tone utterances (1-2 s each) in ``data/manifests/train.jsonl``, ``data/lang_char``
    their tokenizer, ``data/tiny.yaml`` a tiny model."""
    root = tmp_path_factory.mktemp("data")
    make_corpus(root / "manifests", 6, seed=3, name="train")
    CharTokenizer().save(root / "lang_char")
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY_MODEL))
    return root


def _tiny_trainer(corpus: Path, **engine):
    from asr.models.ctc import load_model_config
    from asr.train.acoustic import AcousticTrainer
    from asr.train.config import DataConfig, TrainConfig

    data = DataConfig(str(corpus / "manifests" / "train.jsonl"), max_batch_seconds=5.0)
    cfg = TrainConfig(
        load_model_config(corpus / "tiny.yaml"), data, engine=engine_run.engine_config(**engine)
    )
    return lambda exp: AcousticTrainer(cfg, CharTokenizer(), exp)


def test_run_engine_reads_every_step_back_from_the_log(corpus, tmp_path):
    run = engine_run.run_engine(_tiny_trainer(corpus, max_steps=3, epochs=100), tmp_path / "exp")
    assert [s.step for s in run.steps] == [1, 2, 3]
    assert all(s.work > 0.5 and s.seconds > 0 and s.loss > 0 for s in run.steps)
    total = sum(s.work for s in run.steps[1:]) / sum(s.seconds for s in run.steps[1:])
    assert run.rate(skip=1) == pytest.approx(total)
    assert run.seconds(1) == pytest.approx(run.steps[0].seconds)
    assert run.losses() == [s.loss for s in run.steps]
    assert run.params > 1000 and (tmp_path / "exp" / "model").is_dir()  # trained and exported
    with pytest.raises(ValueError, match="no step left"):
        run.rate(skip=3)
    with pytest.raises(ValueError, match="log every step"):
        engine_run.run_engine(_tiny_trainer(corpus, max_steps=2, log_every_steps=2))


def test_random_letters_have_the_asked_length():
    text = engine_run.random_letters(17, random.Random(0))
    assert len(text) == 17 and text == " ".join(text.split()) and text.replace(" ", "").isalpha()
    assert text[5] == " " and CharTokenizer().encode(text)  # the default tokenizer takes it
    assert engine_run.random_letters(6, random.Random(0))[-1] != " "


def test_train_bench_times_the_engine_per_mode(corpus, tmp_path):
    manifest, what = train_bench.batch_manifest(4.0, tmp_path, samples=tmp_path / "none")
    utts = read_manifest(manifest)
    assert what == "8 noise utterances" and len(utts) == 8
    assert sum(u.duration for u in utts) == pytest.approx(0.9 * 4.0, rel=0.01)
    assert all(len(u.text) == int(u.duration * train_bench.CHARS_PER_SECOND) for u in utts)
    span = fftconv.FFT_MIN_SPAN
    for mode in ("direct", "eager"):
        warm, rate, params = train_bench.measure(corpus / "tiny.yaml", manifest, 1, mode, 1, 2)
        assert warm > 0 and rate > 0 and params > 1000
    assert span == fftconv.FFT_MIN_SPAN  # direct mode restores the FFT threshold
    with pytest.raises(ValueError, match="mode 'jit'"):
        train_bench.measure(corpus / "tiny.yaml", manifest, 1, "jit", 1, 2)


def test_train_bench_reports_a_failure_as_a_row(tmp_path, capsys):
    args = train_bench.parse_args(["--steps", "1", "--warmup", "0"])
    manifest, _ = train_bench.batch_manifest(2.0, tmp_path, samples=tmp_path / "none")
    row = train_bench.run_one(str(tmp_path / "absent.yaml"), 1, "eager", manifest, args)
    assert row[:4] == ["absent", "-", 1, "eager"] and str(row[5]).startswith("failed: ")
    assert "FAILED" in capsys.readouterr().out


def test_convergence_bench_compares_inits_through_the_engine(corpus, capsys):
    argv = [
        "--model",
        str(corpus / "tiny.yaml"),
        "--manifest",
        str(corpus / "manifests" / "train.jsonl"),
    ]
    argv += ["--utterances", "4", "--steps", "4", "--batch-utts", "2", "--no-write"]
    argv += ["--inits", "xavier_uniform,kaiming_uniform", "--optimizers", "adamw:1e-3"]
    convergence.main(argv)
    out = capsys.readouterr().out
    assert "first 4 utterances" in out and "| init | optimiser | loss 1-4 |" in out
    rows = [line.split(" | ") for line in out.splitlines() if "| adamw:1e-3 |" in line]
    assert [r[0] for r in rows] == ["| xavier_uniform", "| kaiming_uniform"]
    assert all(float(r[2].strip(" |")) > 0 for r in rows)  # the mean loss of updates 1-4


def test_convergence_curve_windows_and_repeatability(corpus):
    from asr.models.ctc import load_model_config

    cfg = load_model_config(corpus / "tiny.yaml")
    optim = convergence.parse_optimizer("novograd:1e-2")
    assert (optim.name, optim.betas, optim.schedule) == ("novograd", (0.95, 0.5), "constant")
    manifest = corpus / "manifests" / "train.jsonl"
    tok = CharTokenizer()
    first = convergence.train_curve(cfg, tok, optim, manifest, 2, 5, window=2)
    assert len(first) == 3 and all(w > 0 for w in first)  # windows 1-2, 3-4, 5
    assert convergence.train_curve(cfg, tok, optim, manifest, 2, 5, window=2) == pytest.approx(
        first, rel=1e-4
    )  # same seed, same batches
    with pytest.raises(SystemExit, match="adamw:LR or novograd:LR"):
        convergence.parse_optimizer("sgd:1")


def test_lm_bench_trains_through_the_engine():
    cfg = LSTMLMConfig(embedding_dim=16, hidden_size=16, num_layers=1, dropout=0.0)
    rate = lm_bench.bench_training(cfg, CharTokenizer(), 512, 2)
    assert rate > 100  # tokens per second of a 16-unit LSTM


def test_loader_bench_model_side_is_the_engine(corpus):
    utts = read_manifest(corpus / "manifests" / "train.jsonl")
    cfg = loader.augment_config([utts[0].audio_filepath])
    got = loader.measure_model(utts, cfg, batch_s=4.0, steps=1)
    assert got["steps"] == 1 and got["audio_s"] > 0.5 and got["wall_s"] > 0
    assert got["params"] > 1_000_000  # conf/model/small.yaml
