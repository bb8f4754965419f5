"""Optimisers (AdamW, NovoGrad) and learning-rate schedules (warm-up, hold, cosine/polynomial).

The schedule is a pure function of the step, :func:`lr_at`, so resuming needs nothing but the step
count; the trainer sets every parameter group's ``lr`` before each optimizer step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and learning-rate schedule options."""

    name: Literal["adamw", "novograd"] = "adamw"  # which optimiser
    lr: float = 1e-3  # peak learning rate (after warm-up)
    betas: tuple[float, float] = (
        0.9,
        0.98,
    )  # moment decay rates (NovoGrad: QuartzNet used 0.95, 0.5)
    eps: float = 1e-8  # added to the denominator for numerical stability
    weight_decay: float = 1e-3  # decoupled weight decay (AdamW) / NovoGrad's weight decay
    schedule: Literal["constant", "cosine", "polynomial"] = "cosine"  # decay after warm-up + hold
    warmup_steps: int = 0  # linear warm-up from 0 to lr over this many steps
    hold_steps: int = 0  # steps kept at lr after the warm-up
    min_lr: float = 0.0  # learning rate reached at the last step
    power: float = 2.0  # exponent of the polynomial decay

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must lie in [0, 1), got {self.betas}")
        if self.warmup_steps < 0 or self.hold_steps < 0:
            raise ValueError("warmup_steps and hold_steps must be >= 0")
        if not 0.0 <= self.min_lr <= self.lr:
            raise ValueError(f"min_lr must lie in [0, lr], got {self.min_lr}")


def lr_at(step: int, total_steps: int, cfg: OptimConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of a run of ``total_steps`` steps.

    Linear warm-up to ``cfg.lr`` over ``warmup_steps``, constant for ``hold_steps``, then
    ``constant``, ``cosine`` or ``polynomial`` decay to ``min_lr`` at ``total_steps``.
    """
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    decay_start = cfg.warmup_steps + cfg.hold_steps
    if step < decay_start:
        return cfg.lr
    span = max(1, total_steps - decay_start)
    progress = min(1.0, (step - decay_start) / span)
    if cfg.schedule == "cosine":
        factor = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        factor = (1.0 - progress) ** cfg.power
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * factor


class NovoGrad(torch.optim.Optimizer):
    """NovoGrad (Ginsburg et al., 2019): Adam-like with a per-layer second moment.

    For each parameter tensor with gradient ``g``::

        v = ||g||^2                          on the first step
        v = beta2 * v + (1 - beta2) ||g||^2  afterwards
        d = g / (sqrt(v) + eps) + weight_decay * w
        m = beta1 * m + (1 - beta1) * d      (grad_averaging) or  m = beta1 * m + d
        w = w - lr * m

    Args:
        params: parameters or parameter groups.
        lr: learning rate (default 1e-3).
        betas: ``(beta1, beta2)`` (default ``(0.95, 0.98)``).
        eps: denominator term (default 1e-8).
        weight_decay: weight decay added to the normalised gradient (default 0).
        grad_averaging: scale the normalised gradient by ``1 - beta1`` (default True).
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.95, 0.98),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        grad_averaging: bool = True,
    ) -> None:
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, grad_averaging=grad_averaging
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        """Perform one optimisation step."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.float()
                state = self.state[p]
                norm_sq = grad.pow(2).sum()
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)
                    state["exp_avg_sq"] = norm_sq.clone()
                else:
                    state["exp_avg_sq"].mul_(beta2).add_(norm_sq, alpha=1.0 - beta2)
                state["step"] += 1
                update = grad / (state["exp_avg_sq"].sqrt() + group["eps"])
                if group["weight_decay"]:
                    update.add_(p.float(), alpha=group["weight_decay"])
                if group["grad_averaging"]:
                    update.mul_(1.0 - beta1)
                state["exp_avg"].mul_(beta1).add_(update)
                p.add_(state["exp_avg"].to(p.dtype), alpha=-group["lr"])
        return loss


def build_optimizer(params: Iterable, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Create the optimiser ``cfg.name`` for ``params``."""
    if cfg.name == "novograd":
        return NovoGrad(
            params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay
        )
    return torch.optim.AdamW(
        params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
