"""NovoGrad against a hand computation, and the learning-rate schedule."""

from __future__ import annotations

import math

import pytest
import torch

from asr.config import ConfigError, from_dict
from asr.train.optim import NovoGrad, OptimConfig, build_optimizer, lr_at


def test_novograd_matches_hand_computation():
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = NovoGrad([w], lr=0.1, betas=(0.9, 0.5), eps=0.0, weight_decay=0.01)
    grads = [torch.tensor([3.0, 4.0]), torch.tensor([0.0, 1.0])]
    # by hand
    ref = torch.tensor([1.0, -2.0])
    m = torch.zeros(2)
    v = None
    for g in grads:
        n2 = float((g**2).sum())
        v = n2 if v is None else 0.5 * v + 0.5 * n2
        d = g / math.sqrt(v) + 0.01 * ref
        m = 0.9 * m + 0.1 * d
        ref = ref - 0.1 * m
    for g in grads:
        w.grad = g.clone()
        opt.step()
    assert torch.allclose(w.detach(), ref, atol=1e-7)


def test_novograd_is_invariant_to_gradient_scale():
    results = []
    for scale in (1.0, 1000.0):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        opt = NovoGrad(model.parameters(), lr=0.05)
        x, y = torch.randn(32, 4), torch.randn(32, 1)
        for _ in range(5):
            opt.zero_grad()
            (scale * ((model(x) - y) ** 2).mean()).backward()
            opt.step()
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(results[0], results[1], atol=1e-5)


@pytest.mark.parametrize("name", ["adamw", "novograd"])
def test_optimizers_fit_least_squares(name):
    torch.manual_seed(0)
    x = torch.randn(256, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    model = torch.nn.Linear(3, 1)
    opt = build_optimizer(model.parameters(), OptimConfig(name=name, lr=0.05, weight_decay=0.0))
    for _ in range(400):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3


def test_schedule_shapes():
    cfg = OptimConfig(lr=1.0, warmup_steps=10, hold_steps=5, schedule="cosine", min_lr=0.1)
    assert lr_at(0, 100, cfg) == pytest.approx(0.1)
    assert lr_at(9, 100, cfg) == pytest.approx(1.0)
    assert lr_at(14, 100, cfg) == 1.0
    assert lr_at(15 + 85 // 2, 100, cfg) == pytest.approx(0.55, abs=0.02)
    assert lr_at(100, 100, cfg) == pytest.approx(0.1)
    poly = OptimConfig(lr=1.0, schedule="polynomial", power=2.0)
    assert lr_at(50, 100, poly) == pytest.approx(0.25)
    assert lr_at(70, 100, OptimConfig(lr=2.0, schedule="constant")) == 2.0


def test_bad_optim_config():
    with pytest.raises(ConfigError, match=r"optim\.lr"):
        from_dict(OptimConfig, {"lr": "fast"}, "optim")
    with pytest.raises(ConfigError, match="min_lr"):
        from_dict(OptimConfig, {"lr": 1e-3, "min_lr": 1.0}, "optim")
