"""The training configs (issue 26, items 1 and 3): one ``engine:`` section of one type in both
configs, the model's front-end the one source of the sample rate, and the old layout a one-line
error saying what to change."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml

from asr.config import ConfigError
from asr.text.tokenizer import CharTokenizer
from asr.train.config import LMTrainConfig, TrainConfig, load_lm_train_config, load_train_config
from asr.train.engine_config import EngineConfig
from tests.tone_corpus import TINY_MODEL, make_corpus

ROOT = Path(__file__).resolve().parents[1]
LM_CONF = ROOT / "conf" / "lm" / "small_char.yaml"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("tones"), 4, seed=1, name="train")


def _am_yaml(folder: Path, corpus: Path, **top) -> Path:
    cfg = {
        "model": copy.deepcopy(TINY_MODEL),
        "data": {"train_manifest": str(corpus), "max_batch_seconds": 6.0, "num_buckets": 1},
        "engine": {"max_steps": 1, "device": "cpu"},
        **top,
    }
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    return message


# ------------------------------------------------------------------ item 3: one engine section
def test_both_configs_have_one_engine_section_of_one_type():
    for cls in (TrainConfig, LMTrainConfig):
        field = {f.name: f for f in dataclasses.fields(cls)}["engine"]
        assert field.type in (EngineConfig, "EngineConfig")
        assert field.default_factory() == EngineConfig()  # the same defaults in both
    am, lm = TrainConfig.__dataclass_fields__, LMTrainConfig.__dataclass_fields__
    engine_keys = {f.name for f in dataclasses.fields(EngineConfig)}
    assert not engine_keys & (set(am) | set(lm))  # declared once, not beside the section


def test_lm_training_gets_every_engine_setting(tmp_path):
    """Old: train-lm had no grad_accum, ema_decay or compile."""
    from asr.train.lm import LMTrainer

    text = tmp_path / "lm.txt"
    text.write_text("".join(f"THE CAT {'SAT ' * (i % 4)}ON A MAT\n" for i in range(120)))
    overrides = ["model.embedding_dim=8", "model.hidden_size=8", "data.text_format=lines",
                 "data.max_batch_tokens=128", "data.max_sentence_tokens=60",
                 "data.buffer_sentences=32", "engine.max_steps=2",
                 "engine.checkpoint_every_steps=1", "engine.device=cpu", "engine.threads=0",
                 "engine.grad_accum=2", "engine.ema_decay=0.9", "engine.grad_clip=5"]  # fmt: skip
    cfg = load_lm_train_config(LM_CONF, overrides)
    assert (cfg.engine.grad_accum, cfg.engine.ema_decay, cfg.engine.grad_clip) == (2, 0.9, 5.0)
    trainer = LMTrainer(cfg, CharTokenizer(), [text], tmp_path / "exp")
    assert trainer.engine.cfg is cfg.engine  # read by the engine as it is, not copied
    assert trainer.engine.ema is not None and trainer.engine.checkpoints.metric == "loss"
    trainer.run()
    assert (tmp_path / "exp" / "lm" / "model.safetensors").is_file()
    saved = yaml.safe_load((tmp_path / "exp" / "config.yaml").read_text())
    assert saved["engine"]["grad_accum"] == 2 and "grad_accum" not in saved


def test_engine_overrides_and_unknown_keys(tmp_path, corpus):
    path = _am_yaml(tmp_path, corpus)
    cfg = load_train_config(path, ["engine.grad_clip=5", "engine.best_metric=cer"])
    assert cfg.engine.grad_clip == 5.0 and cfg.best_metric == "cer"
    assert load_train_config(path).best_metric == "wer"  # the trainer's own by default
    assert load_lm_train_config(LM_CONF).best_metric == "loss"
    with pytest.raises(ConfigError, match=r"train\.yaml: engine: unknown key 'grad_cilp'") as err:
        load_train_config(path, ["engine.grad_cilp=5"])
    _one_line(err)
    with pytest.raises(ConfigError, match=r"engine\.best_metric must be one of loss, ppl") as err:
        load_lm_train_config(LM_CONF, ["engine.best_metric=wer"])
    _one_line(err)
    with pytest.raises(ConfigError, match=r"engine: .*max_nonfinite_steps"):
        load_lm_train_config(LM_CONF, ["engine.max_nonfinite_steps=0"])


@pytest.mark.parametrize("key", ["epochs", "grad_clip", "device", "seed", "threads"])
def test_engine_keys_at_the_top_level_are_one_line_errors(tmp_path, corpus, key):
    """The layout before the engine section: in the YAML or as an override, both trainers."""
    value = {"device": "cpu"}.get(key, 1)
    path = _am_yaml(tmp_path, corpus, **{key: value})
    want = rf"train\.yaml: '{key}' is an engine setting: move it under 'engine:'"
    with pytest.raises(ConfigError, match=want) as err:
        load_train_config(path)
    assert f"engine.{key}=" in _one_line(err)
    with pytest.raises(ConfigError, match=rf"small_char\.yaml: '{key}' is an engine setting"):
        load_lm_train_config(LM_CONF, [f"{key}={value}"])


# ------------------------------------------------------------- item 1: one sample-rate source
def test_data_sample_rate_is_an_error_even_when_equal(tmp_path, corpus):
    path = _am_yaml(tmp_path, corpus)
    for rate in (16000, 8000):  # the model's rate and another: both refused
        with pytest.raises(ConfigError, match=r"data\.sample_rate_hz is gone: delete it") as err:
            load_train_config(path, [f"data.sample_rate_hz={rate}"])
        assert "model.frontend.sample_rate_hz" in _one_line(err)


def test_training_reads_audio_at_the_models_rate(tmp_path, corpus):
    from asr.train.acoustic import AcousticTrainer

    path = _am_yaml(tmp_path, corpus)
    overrides = ["model.frontend.sample_rate_hz=8000", f"data.valid_manifest={corpus}"]
    cfg = load_train_config(path, overrides)
    trainer = AcousticTrainer(cfg, CharTokenizer(), tmp_path / "exp")
    assert trainer.sample_rate_hz == 8000
    assert trainer.loader.dataset.sample_rate == trainer.valid.sample_rate == 8000
    example, utt = trainer.loader.dataset[0], trainer.loader.dataset.utterances[0]
    assert abs(len(example.waveform) - utt.duration * 8000) <= 8  # resampled from 16 kHz


def test_every_training_yaml_in_the_repo_loads():
    """Recipes' acoustic and LM configs, in the engine-section layout; yesno's rate is its
    model's (8 kHz), given once."""
    pretrained = str(ROOT / "asr" / "pretrained" / "default")
    am = sorted((ROOT / "egs").glob("*/conf/train*.yaml"))
    assert len(am) >= 7
    for path in am:
        cfg = load_train_config(path, [f"init_from={pretrained}"] if "real" in path.name else [])
        assert cfg.engine.epochs >= 1, path
    for path in sorted((ROOT / "conf" / "lm").glob("*.yaml")):
        assert load_lm_train_config(path).engine.max_steps > 0, path
    yesno = ROOT / "egs" / "yesno" / "conf"
    assert load_train_config(yesno / "train.yaml").model.frontend.sample_rate_hz == 8000
    assert "sample_rate_hz" not in (yesno / "train.yaml").read_text()
