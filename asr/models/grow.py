"""Deepen or widen a trained encoder without changing what it computes (Net2Net for conv blocks).

A trained model that has stopped improving for want of capacity can be made deeper and trained
on, instead of trained again from scratch: :func:`deepen` gives every chosen residual block
``extra`` more sub-blocks, inserted in front of its existing ones, each set to the identity:

* the (depthwise) convolution is a unit impulse at the centre tap, the pointwise one the
  identity matrix, so the pair passes its input through ("same" padding: the centre tap has
  offset 0 at any dilation);
* the batch norm's running statistics are the per-channel mean ``m`` and variance ``v`` of the
  block's input measured on calibration audio, and its affine weight and bias are
  ``sqrt(v + eps)`` and ``m``: the identity in eval mode exactly, and in training mode as far as
  a batch's statistics match the calibration audio's;
* the ReLU after it passes the block input unchanged, because that input is itself the output of
  the previous block's ReLU (so only blocks after the first, in a ReLU encoder, can grow).

The old layers keep their weights; the residual branches and the head are untouched.

:func:`widen` (Net2WiderNet) gives the chosen blocks more filters: each new channel copies an old
one wherever it is produced (convolution rows, batch norms, squeeze-excite gates), and every
layer that reads the widened stream splits each old input weight among the copies with random
shares that sum to one, so the output is unchanged and training can pull the copies apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from asr.models.ctc import CTCModel, ModelConfig
from asr.models.tcn import ConvBlock, MaskedConv1d, SqueezeExcite, sequence_mask


def growable_blocks(cfg: ModelConfig) -> list[int]:
    """Indices of the encoder blocks :func:`deepen` can grow: residual, stride 1, not the first
    (its input is the features, not a ReLU output), in an encoder whose activation is ReLU."""
    enc = cfg.encoder
    if enc.activation != "relu":
        return []
    return [i for i, b in enumerate(enc.blocks) if i > 0 and b.residual and b.stride == 1]


def deepen_config(cfg: ModelConfig, extra: int, blocks: list[int] | None = None) -> ModelConfig:
    """``cfg`` with ``extra`` more repeats in each of ``blocks`` (default: every growable block).

    Raises:
        ValueError: ``extra`` < 1, or a block that cannot grow (see :func:`growable_blocks`).
    """
    if extra < 1:
        raise ValueError(f"extra must be >= 1, got {extra}")
    allowed = growable_blocks(cfg)
    chosen = allowed if blocks is None else blocks
    bad = [i for i in chosen if i not in allowed]
    if bad or not chosen:
        raise ValueError(
            f"blocks {bad or chosen} cannot grow: only residual stride-1 blocks after the first "
            f"of a ReLU encoder can (here {allowed})"
        )
    new_blocks = tuple(
        dataclasses.replace(b, repeat=b.repeat + extra) if i in chosen else b
        for i, b in enumerate(cfg.encoder.blocks)
    )
    return dataclasses.replace(cfg, encoder=dataclasses.replace(cfg.encoder, blocks=new_blocks))


@torch.no_grad()
def block_input_stats(
    model: CTCModel, batches: Iterable[tuple[Tensor, Tensor]], blocks: list[int]
) -> dict[int, tuple[Tensor, Tensor]]:
    """Per-channel mean and variance of each block's input over the valid frames of ``batches``.

    Args:
        model: the trained model (run in eval mode).
        batches: ``(waveforms (batch, samples), lengths (batch,))`` pairs of calibration audio.
        blocks: encoder block indices.
    Returns:
        ``{block: (mean (channels,), var (channels,))}``, float64.
    """
    sums: dict[int, list[Tensor | float]] = {}

    def hook(index: int):
        def record(_module: nn.Module, args: tuple) -> None:
            xs, lengths = args
            x = xs[-1].double()
            mask = sequence_mask(lengths, x.shape[-1]).unsqueeze(1).to(x.dtype)
            acc = sums.setdefault(index, [0.0, 0.0, 0.0])  # frames, sum, sum of squares
            acc[0] = acc[0] + mask.sum()
            acc[1] = acc[1] + (x * mask).sum(dim=(0, 2))
            acc[2] = acc[2] + (x * x * mask).sum(dim=(0, 2))

        return record

    handles = [model.encoder.blocks[i].register_forward_pre_hook(hook(i)) for i in blocks]
    was_training = model.training
    model.eval()
    try:
        for waveforms, lengths in batches:
            model(waveforms, lengths)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if len(sums) != len(blocks):
        raise ValueError("no calibration audio: batches was empty")
    stats = {}
    for index, (count, total, squares) in sums.items():
        mean = total / count
        stats[index] = (mean, (squares / count - mean * mean).clamp_min(0.0))
    return stats


def _set_identity(layers: list[nn.Module], mean: Tensor, var: Tensor) -> None:
    """Make one inserted sub-block's convs and batch norm the identity (see the module doc)."""
    for layer in layers:
        if isinstance(layer, MaskedConv1d):
            weight = layer.conv.weight  # (out, in / groups, kernel)
            weight.zero_()
            centre = weight.shape[-1] // 2
            if layer.conv.groups == 1:
                weight[:, :, centre] = torch.eye(weight.shape[0], dtype=weight.dtype)
            else:
                weight[:, 0, centre] = 1.0
        elif isinstance(layer, nn.BatchNorm1d):
            layer.running_mean.copy_(mean)
            layer.running_var.copy_(var)
            layer.weight.copy_(torch.sqrt(var + layer.eps))
            layer.bias.copy_(mean)


@torch.no_grad()
def deepen(
    model: CTCModel,
    extra: int,
    batches: Iterable[tuple[Tensor, Tensor]],
    blocks: list[int] | None = None,
) -> CTCModel:
    """A deeper copy of ``model`` that computes the same log-probabilities (in eval mode).

    Args:
        model: the trained model; left unchanged.
        extra: sub-blocks to insert in front of each grown block's existing ones (>= 1).
        batches: calibration audio, ``(waveforms (batch, samples), lengths (batch,))`` pairs
            (a few minutes of training speech), for the inserted batch norms' statistics.
        blocks: encoder block indices to grow; None (default): every growable block.
    Returns:
        The new model (eval mode, float32, on the CPU); its ``cfg`` holds the new repeats.
    """
    new_cfg = deepen_config(model.cfg, extra, blocks)  # validates blocks
    grown = growable_blocks(model.cfg) if blocks is None else list(blocks)
    stats = block_input_stats(model, batches, grown)
    new = CTCModel(new_cfg, model.vocab_size, load_stats=False).eval()
    # layers inserted in front of each grown block's mconv (conv, [pointwise,] BN, ReLU, dropout)
    inserted = {
        i: len(new.encoder.blocks[i].mconv) - len(model.encoder.blocks[i].mconv) for i in grown
    }
    state = new.state_dict()
    for key, tensor in model.state_dict().items():
        if not key.startswith("spec_augment."):
            state[_shifted_key(key, inserted)] = tensor.detach().cpu()
    new.load_state_dict(state)
    for index, count in inserted.items():
        block: ConvBlock = new.encoder.blocks[index]
        mean, var = stats[index]
        _set_identity(list(block.mconv)[:count], mean.float(), var.float())
    return new


def _shifted_key(key: str, inserted: dict[int, int]) -> str:
    """``encoder.blocks.B.mconv.I.*`` of a grown block B -> ``I + inserted[B]``."""
    parts = key.split(".")
    if parts[:2] != ["encoder", "blocks"] or parts[3] != "mconv" or int(parts[2]) not in inserted:
        return key
    parts[4] = str(int(parts[4]) + inserted[int(parts[2])])
    return ".".join(parts)


# --- Net2WiderNet ------------------------------------------------------------------------------


def widen_config(cfg: ModelConfig, width: int, blocks: list[int] | None = None) -> ModelConfig:
    """``cfg`` with ``width`` filters in each of ``blocks`` (default: every block as wide as the
    first one, the encoder's main width).

    Raises:
        ValueError: the chosen blocks differ in width, ``width`` is not larger, or a block is
            dense-residual (Jasper DR: not supported).
    """
    enc = cfg.encoder
    chosen = _wide_blocks(cfg, blocks)
    old = enc.blocks[chosen[0]].filters
    if width <= old:
        raise ValueError(f"width must exceed the blocks' {old} filters, got {width}")
    new_blocks = tuple(
        dataclasses.replace(b, filters=width) if i in chosen else b
        for i, b in enumerate(enc.blocks)
    )
    return dataclasses.replace(cfg, encoder=dataclasses.replace(enc, blocks=new_blocks))


def _wide_blocks(cfg: ModelConfig, blocks: list[int] | None) -> list[int]:
    enc = cfg.encoder
    if any(b.residual_dense for b in enc.blocks):
        raise ValueError("dense-residual encoders (Jasper DR) cannot be widened")
    main = enc.blocks[0].filters
    chosen = (
        [i for i, b in enumerate(enc.blocks) if b.filters == main] if blocks is None else blocks
    )
    widths = {enc.blocks[i].filters for i in chosen if 0 <= i < len(enc.blocks)}
    if not chosen or len(widths) != 1 or any(not 0 <= i < len(enc.blocks) for i in chosen):
        raise ValueError(f"blocks {chosen}: choose existing blocks of one width (here {main})")
    return sorted(chosen)


@dataclasses.dataclass(frozen=True)
class _Mapping:
    """New channel j copies old channel ``index[j]``; ``index[j] == j`` for the old ones."""

    index: Tensor  # (new,) int64
    counts: Tensor  # (old,) replicas of each old channel, >= 1


def _mapping(old: int, new: int, gen: torch.Generator) -> _Mapping:
    extra = torch.cat([torch.randperm(old, generator=gen) for _ in range(-(-(new - old) // old))])
    index = torch.cat([torch.arange(old), extra[: new - old]])
    return _Mapping(index, torch.bincount(index, minlength=old))


def _replicate(t: Tensor, dim: int, m: _Mapping | None) -> Tensor:
    """Rows (``dim``) of ``t`` copied for the new channels; unchanged when ``m`` is None."""
    return t if m is None else t.index_select(dim, m.index)


def _split_inputs(weight: Tensor, m: _Mapping | None, gen: torch.Generator) -> Tensor:
    """Input columns (dim 1) copied, each old column's weight split at random among its copies
    (shares in [0.5, 1.5], normalised per output row): the sum over the copies equals the old
    weight, so the layer's output is unchanged, and the copies' gradients differ, so training
    can tell them apart (equal shares would keep them identical forever)."""
    if m is None:
        return weight
    share = torch.rand(weight.shape[0], len(m.index), generator=gen, dtype=torch.float64) + 0.5
    total = torch.zeros(weight.shape[0], len(m.counts), dtype=torch.float64)
    total.index_add_(1, m.index, share)
    share = (share / total[:, m.index]).to(weight.dtype)
    return weight.index_select(1, m.index) * share.view(*share.shape, *[1] * (weight.dim() - 2))


@torch.no_grad()
def widen(model: CTCModel, width: int, blocks: list[int] | None = None, seed: int = 0) -> CTCModel:
    """A wider copy of ``model`` that computes the same log-probabilities (Net2WiderNet).

    Every chosen block gets ``width`` filters; each new channel copies an old one (drawn without
    replacement while old channels last) in every convolution, batch norm and squeeze-excite
    that produces it, and the layers that read a widened stream split each old input weight at
    random among its copies (:func:`_split_inputs`), the CTC head included. The residual sums
    stay consistent because all chosen blocks share one channel mapping.

    Args:
        model: the trained model; left unchanged.
        width: the new number of filters, larger than the chosen blocks' (one width for all).
        blocks: encoder block indices; None (default): every block as wide as the first.
        seed: seed of the channel choice and the weight shares (default 0).
    Returns:
        The new model (eval mode, float32, on the CPU); its ``cfg`` holds the new widths.
    """
    chosen = _wide_blocks(model.cfg, blocks)
    new_cfg = widen_config(model.cfg, width, chosen)
    gen = torch.Generator().manual_seed(seed)
    mapping = _mapping(model.cfg.encoder.blocks[chosen[0]].filters, width, gen)
    new = CTCModel(new_cfg, model.vocab_size, load_stats=False).eval()
    state = new.state_dict()
    for key, tensor in model.state_dict().items():
        if not key.startswith(("encoder.", "head.", "spec_augment.")):
            state[key] = tensor.detach().cpu()
    new.load_state_dict(state)
    in_map: _Mapping | None = None
    for index, (src, dst) in enumerate(zip(model.encoder.blocks, new.encoder.blocks)):
        out_map = mapping if index in chosen else None
        _widen_layers(list(src.mconv), list(dst.mconv), in_map, out_map, gen)
        for src_branch, dst_branch in zip(src.res or [], dst.res or []):
            _widen_layers(list(src_branch), list(dst_branch), in_map, out_map, gen)
        in_map = out_map
    new.head.conv.weight.copy_(_split_inputs(model.head.conv.weight, in_map, gen))
    new.head.conv.bias.copy_(model.head.conv.bias)
    return new


def _widen_layers(
    src: list[nn.Module],
    dst: list[nn.Module],
    in_map: _Mapping | None,
    out_map: _Mapping | None,
    gen: torch.Generator,
) -> None:
    """Copy one block's layer list (``mconv`` or a residual branch) into its wider twin."""
    current = in_map  # the mapping of the stream the next layer reads
    for s, d in zip(src, dst):
        if isinstance(s, MaskedConv1d) and s.conv.groups > 1:  # depthwise: channel by channel
            d.conv.weight.copy_(_replicate(s.conv.weight, 0, current))
        elif isinstance(s, MaskedConv1d):
            weight = _split_inputs(s.conv.weight, current, gen)
            d.conv.weight.copy_(_replicate(weight, 0, out_map))
            current = out_map
        elif isinstance(s, nn.BatchNorm1d):
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(d, name).copy_(_replicate(getattr(s, name), 0, current))
            d.num_batches_tracked.copy_(s.num_batches_tracked)
        elif isinstance(s, SqueezeExcite):  # its bottleneck grows with the width: the new
            hidden = s.fc[0].weight.shape[0]  # units read the input but write nothing yet
            d.fc[0].weight[:hidden].copy_(_split_inputs(s.fc[0].weight, current, gen))
            d.fc[2].weight.zero_()
            d.fc[2].weight[:, :hidden].copy_(_replicate(s.fc[2].weight, 0, current))
