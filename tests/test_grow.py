"""asr.models.grow: a deepened or widened model computes what the source did; a deepened one's
inserted batch norms hold the block inputs' statistics (checked against a brute-force numpy
mean/variance); a widened one's channel copies part ways after one training step."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from asr.models.ctc import CTCModel, ModelConfig, load_model_config
from asr.models.grow import deepen, deepen_config, growable_blocks, widen, widen_config
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


def test_widen_config_and_errors() -> None:
    cfg = _model().cfg
    assert [b.filters for b in widen_config(cfg, 20).encoder.blocks] == [20, 20, 20, 20, 24]
    assert [b.filters for b in widen_config(cfg, 32, [4]).encoder.blocks] == [16] * 4 + [32]
    with pytest.raises(ValueError, match="width must exceed"):
        widen_config(cfg, 16)
    with pytest.raises(ValueError, match="of one width"):
        widen_config(cfg, 40, [3, 4])
    with pytest.raises(ValueError, match="of one width"):
        widen_config(cfg, 40, [7])
    dense = dataclasses.replace(cfg.encoder.blocks[1], residual_dense=True)  # Jasper DR is refused
    blocks = (cfg.encoder.blocks[0], dense, *cfg.encoder.blocks[2:])
    dr = dataclasses.replace(cfg, encoder=dataclasses.replace(cfg.encoder, blocks=blocks))
    with pytest.raises(ValueError, match="dense-residual"):
        widen_config(dr, 20)


@pytest.mark.parametrize("width", [20, 40])  # 40: more new channels than old, copied twice
def test_widened_model_computes_the_same(width: int, tmp_path: Path) -> None:
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    wide = widen(model, width)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert wide.encoder.blocks[1].mconv[1].conv.weight.shape == (width, width, 1)
    waves, lengths = torch.randn(2, 8000) * 0.1, torch.tensor([8000, 5200])
    with torch.no_grad():
        want, want_len = model(waves, lengths)
        got, got_len = wide(waves, lengths)
        assert torch.equal(got_len, want_len)
        torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-5)
        # training mode too (on a second pair: it moves the running statistics): a batch's
        # statistics of copied channels are the originals'
        train_a = _model().train()
        train_b = widen(train_a, width).train()
        torch.testing.assert_close(
            train_b(waves, lengths)[0], train_a(waves, lengths)[0], atol=2e-5, rtol=1e-5
        )
    export_model(wide, CharTokenizer(), tmp_path / "m")
    loaded, _ = load_model(tmp_path / "m")
    assert loaded.cfg == wide.cfg
    with torch.no_grad():
        torch.testing.assert_close(loaded(waves, lengths)[0], want, atol=2e-5, rtol=1e-5)


def _copies(bn: torch.nn.BatchNorm1d, old: int) -> list[tuple[int, int]]:
    """(new channel, old channel) pairs whose batch-norm parameters and statistics are equal."""
    rows = torch.stack([bn.weight, bn.bias, bn.running_mean, bn.running_var], dim=1).detach()
    return [
        (j, i) for j in range(old, len(rows)) for i in range(old) if torch.equal(rows[j], rows[i])
    ]


def test_widened_copies_part_ways_in_training() -> None:
    """Each new channel starts as a copy of an old one; the random split of the weights that read
    them gives the copies different gradients (equal shares would keep them equal forever)."""
    wide = widen(_model(), 24, seed=3)
    bn = wide.encoder.blocks[1].mconv[2]  # the first sub-block's batch norm
    pairs = _copies(bn, 16)
    assert sorted(j for j, _ in pairs) == list(range(16, 24))  # every new channel, once
    assert len({i for _, i in pairs}) == 8  # 8 distinct old channels (no replacement)
    wide.train()
    optim = torch.optim.SGD(wide.parameters(), lr=0.1)
    waves, lengths = torch.randn(2, 8000) * 0.1, torch.tensor([8000, 5200])
    logp, _ = wide(waves, lengths)
    (logp[..., 1:].exp() ** 2).sum().backward()  # any loss that depends on the channels
    optim.step()
    moved = [(j, i) for j, i in pairs if not torch.equal(bn.weight[j], bn.weight[i])]
    assert moved == pairs
