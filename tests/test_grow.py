"""asr.models.grow: a deepened model computes what the source did; its inserted batch norms hold
the block inputs' statistics (checked against a brute-force numpy mean/variance)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from asr.models.ctc import CTCModel, ModelConfig, load_model_config
from asr.models.grow import deepen, deepen_config, growable_blocks
from asr.models.io import export_model, load_model
from asr.models.tcn import BlockConfig, EncoderConfig, MaskedConv1d
from asr.text.tokenizer import CharTokenizer

ROOT = Path(__file__).resolve().parents[1]


def _model(activation: str = "relu") -> CTCModel:
    torch.manual_seed(0)
    frontend = dataclasses.replace(
        load_model_config(ROOT / "conf" / "model" / "small.yaml").frontend,
        num_mel_bins=24,
        dither=0.0,
    )
    encoder = EncoderConfig(
        (
            BlockConfig(16, 1, 11, stride=2),
            BlockConfig(16, 2, 7, residual=True, se=True),
            BlockConfig(16, 1, 5, dilation=2, residual=True, separable=False),
            BlockConfig(16, 1, 5, stride=2, residual=True, residual_mode="stride_add"),
            BlockConfig(24, 1, 1, separable=False),
        ),
        activation=activation,
    )
    model = CTCModel(ModelConfig(encoder=encoder, frontend=frontend), 29)
    with torch.no_grad():
        for m in model.modules():  # trained-looking batch norms
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return model.eval()


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(5)
    return [
        (torch.randn(3, 9000, generator=gen) * 0.1, torch.tensor([9000, 6100, 3000])),
        (torch.randn(2, 7000, generator=gen) * 0.2, torch.tensor([7000, 4500])),
    ]


def test_growable_blocks_and_config() -> None:
    cfg = _model().cfg
    assert growable_blocks(cfg) == [1, 2]  # block 0 sees features; block 3 strides
    grown = deepen_config(cfg, 2)
    assert [b.repeat for b in grown.encoder.blocks] == [1, 4, 3, 1, 1]
    assert [b.repeat for b in deepen_config(cfg, 1, [2]).encoder.blocks] == [1, 2, 2, 1, 1]
    with pytest.raises(ValueError, match="extra must be >= 1"):
        deepen_config(cfg, 0)
    with pytest.raises(ValueError, match=r"blocks \[0, 3\] cannot grow"):
        deepen_config(cfg, 1, [0, 1, 3])
    with pytest.raises(ValueError, match="cannot grow"):
        deepen_config(_model("hardtanh").cfg, 1)


@pytest.mark.parametrize("extra", [1, 3])
def test_deepened_model_computes_the_same(extra: int, tmp_path: Path) -> None:
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grown = deepen(model, extra, _batches())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert grown.num_parameters() > model.num_parameters()
    waves, lengths = torch.randn(2, 8000) * 0.1, torch.tensor([8000, 5200])  # unseen audio
    with torch.no_grad():
        want, want_len = model(waves, lengths)
        got, got_len = grown(waves, lengths)
    assert torch.equal(got_len, want_len)
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-5)
    # and through an exported folder (the new repeats are in its config.yaml)
    export_model(grown, CharTokenizer(), tmp_path / "m")
    loaded, _ = load_model(tmp_path / "m")
    assert loaded.cfg == grown.cfg
    with torch.no_grad():
        torch.testing.assert_close(loaded(waves, lengths)[0], want, atol=2e-5, rtol=1e-5)


def test_inserted_batch_norms_hold_the_block_input_statistics() -> None:
    model = _model()
    inputs: dict[int, list[np.ndarray]] = {1: [], 2: []}

    def keep(index: int):
        def hook(_module, args) -> None:
            xs, lens = args
            for row, n in zip(xs[-1].numpy(), lens.tolist()):
                inputs[index].append(row[:, :n])  # (channels, valid frames)

        return hook

    handles = [model.encoder.blocks[i].register_forward_pre_hook(keep(i)) for i in (1, 2)]
    with torch.no_grad():
        for waves, lengths in _batches():
            model(waves, lengths)
    for h in handles:
        h.remove()
    grown = deepen(model, 2, _batches())
    for index, frames in inputs.items():
        x = np.concatenate(frames, axis=1).astype(np.float64)
        mean, var = x.mean(axis=1), x.var(axis=1)
        layers = list(grown.encoder.blocks[index].mconv)
        norms = [m for m in layers if isinstance(m, torch.nn.BatchNorm1d)]
        old_norms = len(
            [m for m in model.encoder.blocks[index].mconv if isinstance(m, torch.nn.BatchNorm1d)]
        )
        assert len(norms) == old_norms + 2
        for bn in norms[:2]:
            np.testing.assert_allclose(bn.running_mean.numpy(), mean, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(bn.running_var.numpy(), var, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(bn.weight.detach().numpy(), np.sqrt(var + bn.eps), rtol=1e-4)
            np.testing.assert_allclose(bn.bias.detach().numpy(), mean, rtol=1e-4, atol=1e-6)
        convs = [m for m in layers if isinstance(m, MaskedConv1d)]
        first = convs[0].conv.weight.detach()
        centre = first.shape[-1] // 2
        assert first[..., centre].abs().sum() == first.shape[0]  # one unit tap per channel
        assert first.abs().sum() == first.shape[0]
    # the old layers moved behind the inserted ones, weights intact
    old_last = model.encoder.blocks[1].mconv[-2]  # the SE module sits last: compare the BN
    new_last = grown.encoder.blocks[1].mconv[-2]
    assert torch.equal(old_last.weight, new_last.weight)


def test_deepen_needs_calibration_audio() -> None:
    with pytest.raises(ValueError, match="no calibration audio"):
        deepen(_model(), 1, [])
