"""Exported model directories: round trip, fp16 export, atomic replacement, clear errors."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import asr
from asr.config import ConfigError
from asr.io.folders import ModelFileError
from asr.models.ctc import CTCModel, ModelConfig, load_model_config
from asr.models.io import export_model, load_model
from asr.models.tcn import BlockConfig, EncoderConfig
from asr.text.tokenizer import CharTokenizer

ROOT = Path(__file__).resolve().parents[1]


def _model(seed: int = 0, vocab_size: int = 29) -> CTCModel:
    torch.manual_seed(seed)
    frontend = dataclasses.replace(
        load_model_config(ROOT / "conf" / "model" / "small.yaml").frontend, num_mel_bins=40
    )
    encoder = EncoderConfig(
        (
            BlockConfig(48, 1, 11, stride=2),
            BlockConfig(48, 2, 7, residual=True, se=True),
            BlockConfig(64, 1, 1, separable=False),
        )
    )
    model = CTCModel(ModelConfig(encoder=encoder, frontend=frontend), vocab_size)
    for m in model.modules():  # trained-looking batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.num_batches_tracked.fill_(7)
    return model.eval()


def _audio() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return torch.randn(2, 8000, generator=gen) * 0.1, torch.tensor([8000, 5000])


def test_round_trip_equal_outputs(tmp_path):
    model, tok = _model(), CharTokenizer()
    out = export_model(model, tok, tmp_path / "m")
    assert sorted(p.name for p in out.iterdir()) == [
        "config.yaml",
        "model.safetensors",
        "tokenizer.yaml",
    ]
    api_model = asr.load_model(out, device="cpu")
    loaded, loaded_tok = api_model.network, api_model.tokenizer
    assert api_model.sample_rate == model.cfg.frontend.sample_rate_hz
    assert not loaded.training and loaded_tok.vocab == tok.vocab
    assert loaded.cfg == model.cfg
    waves, lengths = _audio()
    with torch.no_grad():
        a, a_len = model(waves, lengths)
        b, b_len = loaded(waves, lengths)
    assert torch.equal(a, b) and torch.equal(a_len, b_len)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["vocab_size"] == 29 and config["dtype"] == "float32"
    assert config["model"]["frontend"]["num_mel_bins"] == 40  # front-end saved with the model


def test_fp16_export_is_half_size_and_close(tmp_path):
    model, tok = _model(), CharTokenizer()
    full = export_model(model, tok, tmp_path / "fp32")
    half = export_model(model, tok, tmp_path / "fp16", dtype="float16")
    size32 = (full / "model.safetensors").stat().st_size
    size16 = (half / "model.safetensors").stat().st_size
    assert size16 < 0.6 * size32
    stored = load_file(str(half / "model.safetensors"))
    assert stored["head.conv.weight"].dtype == torch.float16
    assert stored["encoder.blocks.0.mconv.2.running_var"].dtype == torch.float32
    loaded, _ = load_model(half)
    assert next(loaded.parameters()).dtype == torch.float32
    waves, lengths = _audio()
    with torch.no_grad():
        a, _ = model(waves, lengths)
        b, _ = loaded(waves, lengths)
    torch.testing.assert_close(a, b, atol=2e-2, rtol=0)
    assert (a.argmax(-1) == b.argmax(-1)).float().mean() > 0.95
    # `asr export` rewrites an exported folder the same way
    from asr.cli import main

    assert main(["export", str(full), str(tmp_path / "cli16"), "--dtype", "float16"]) == 0
    cli = load_file(str(tmp_path / "cli16" / "model.safetensors"))
    assert all(torch.equal(cli[k], stored[k]) for k in stored) and cli.keys() == stored.keys()


def test_export_replaces_existing_model_atomically(tmp_path):
    tok = CharTokenizer()
    export_model(_model(seed=0), tok, tmp_path / "m")
    export_model(_model(seed=1), tok, tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp or backup left
    loaded, _ = load_model(tmp_path / "m" / "config.yaml")
    expected = _model(seed=1).state_dict()["head.conv.weight"]
    assert torch.equal(loaded.state_dict()["head.conv.weight"], expected)


def test_exported_folders_get_umask_permissions(tmp_path):
    """Not mkdtemp's 0700: a model folder is readable by whoever may read its parent."""
    import os
    import stat

    from asr.lm.io import save_lm
    from asr.lm.lstm import LSTMLM, LSTMLMConfig

    tok = CharTokenizer()
    old = os.umask(0o022)
    try:
        export_model(_model(), tok, tmp_path / "m")
        save_lm(LSTMLM(LSTMLMConfig(8, 8, 1), tok.vocab), tok, tmp_path / "lm")
    finally:
        os.umask(old)
    for folder in (tmp_path / "m", tmp_path / "lm"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755
        for f in folder.iterdir():
            assert stat.S_IMODE(f.stat().st_mode) == 0o644, f


def test_spec_augment_is_not_exported(tmp_path):
    model = _model()
    model.spec_augment = torch.nn.Identity()
    export_model(model, CharTokenizer(), tmp_path / "m")
    assert load_model(tmp_path / "m")[0].spec_augment is None


def test_export_rejects_vocab_mismatch(tmp_path):
    with pytest.raises(ModelFileError, match="tokenizer has 29 symbols"):
        export_model(_model(vocab_size=30), CharTokenizer(), tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_load_errors_are_one_line(tmp_path):
    export_model(_model(), CharTokenizer(), tmp_path / "m")
    with pytest.raises(ModelFileError, match="not a model directory"):
        load_model(tmp_path / "nowhere")
    # Config that no longer fits the weights.
    config_path = tmp_path / "m" / "config.yaml"
    original = config_path.read_text()
    config = yaml.safe_load(original)
    config["model"]["encoder"]["blocks"][1]["filters"] = 32
    config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(ModelFileError, match="has shape"):
        load_model(tmp_path / "m")
    # A wrong type in the config names the field.
    config["model"]["encoder"]["blocks"][1]["filters"] = "many"
    config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"model\.encoder\.blocks\[1\]\.filters"):
        load_model(tmp_path / "m")
    config_path.write_text(original)
    # Truncated weights.
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="cannot read weights") as err:
        load_model(tmp_path / "m")
    assert "\n" not in str(err.value)


def test_import_asr_does_not_import_torch():
    code = "import sys, asr; assert 'torch' not in sys.modules, 'import asr imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
