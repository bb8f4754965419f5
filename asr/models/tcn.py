"""QuartzNet/Jasper/Citrinet-style temporal convolution encoder with length masking.

The layout mirrors NeMo's ``ConvASREncoder``/``JasperBlock`` module for module, so that a NeMo
checkpoint maps onto ours by renaming one prefix (``encoder.encoder.N.`` -> ``encoder.blocks.N.``)
with every other key and tensor shape identical:

- ``blocks.N.mconv``: for each of the R repeats, ``[depthwise MaskedConv1d,] MaskedConv1d,
  BatchNorm1d`` followed (except after the last repeat) by ``activation, Dropout``; then an optional
  ``SqueezeExcite``. Every ``MaskedConv1d`` holds its ``nn.Conv1d`` as ``.conv`` (no bias).
- ``blocks.N.res``: one ``[MaskedConv1d 1x1, BatchNorm1d]`` list per residual input, present only
  when the block is residual; it is added to the last repeat's batch-norm output.
- ``blocks.N.mout``: ``activation, Dropout`` applied after the residual sum.

Masking: every convolution zeroes the input frames at or beyond each utterance's length first, so
padding never reaches a valid output frame; lengths are updated by each convolution's stride.
Batch norm is NeMo's plain ``BatchNorm1d`` (eps 1e-3, momentum 0.1): in eval mode it uses running
statistics and is a per-channel affine map, so an utterance's output is the same alone or inside
a padded batch; in training its batch statistics include the padded frames (whose conv outputs
are zero beyond a kernel's reach of the last valid frame), exactly as NeMo trains. Squeeze-and-
excitation averages over valid frames only.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from torch import Tensor, nn

from asr.models.fftconv import fft_depthwise_conv1d, use_fft_depthwise

Activation = Literal["relu", "hardtanh", "selu", "swish", "silu", "gelu", "tanh"]
BATCH_NORM_EPS = 1e-3  # NeMo's JasperBlock value; the published checkpoints were trained with it.
BATCH_NORM_MOMENTUM = 0.1


@dataclasses.dataclass(frozen=True)
class BlockConfig:
    """One Jasper block: ``repeat`` sub-blocks of conv -> batch norm -> activation -> dropout."""

    filters: int  # output channels of every sub-block
    repeat: int = 1  # R: number of conv sub-blocks
    kernel: int = 11  # kernel width in frames (odd, so "same" padding is exact)
    stride: int = 1  # time stride of each sub-block's (depthwise) conv (see stride_last)
    dilation: int = 1  # kernel dilation (stride and dilation cannot both exceed 1)
    dropout: float = 0.0  # dropout probability after each activation
    residual: bool = False  # add a 1x1 conv + batch norm of the block input to the last repeat
    residual_dense: bool = False  # Jasper DR: residuals from every earlier dense block's output
    residual_mode: Literal["add", "stride_add"] = "add"  # stride_add: the residual conv strides
    separable: bool = True  # time-channel separable (depthwise + pointwise) instead of dense conv
    stride_last: bool = False  # only the last repeat strides (else every repeat does)
    se: bool = False  # squeeze-and-excitation over the last repeat's output (Citrinet)
    se_reduction_ratio: int = 8  # SE bottleneck: filters // ratio hidden units

    def __post_init__(self) -> None:
        checks = [
            (self.filters >= 1, "filters must be >= 1"),
            (self.repeat >= 1, "repeat must be >= 1"),
            (self.kernel >= 1 and self.kernel % 2 == 1, "kernel must be odd and >= 1"),
            (self.stride >= 1, "stride must be >= 1"),
            (self.dilation >= 1, "dilation must be >= 1"),
            (not (self.stride > 1 and self.dilation > 1), "stride and dilation cannot both be > 1"),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)"),
            (self.se_reduction_ratio >= 1, "se_reduction_ratio must be >= 1"),
            (self.filters // self.se_reduction_ratio >= 1 or not self.se, "SE hidden size is 0"),
            (self.residual or not self.residual_dense, "residual_dense needs residual: true"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{message}, got {self}")


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """The encoder: a sequence of blocks (prologue, B x R body, epilogue)."""

    blocks: tuple[BlockConfig, ...]  # in order; the first one usually strides by 2
    activation: Activation = "relu"  # NeMo's activation names; "hardtanh" is nn.Hardtanh()
    # conv/linear weight initialisation (batch norm: weight 1, bias 0). NeMo uses xavier_uniform
    # (with NovoGrad), which makes depthwise kernels about sqrt(channels) times smaller than
    # kaiming (torch counts their fan_out as channels x taps). With AdamW, our default optimiser,
    # kaiming leaves the CTC plateau several times sooner; with NovoGrad, xavier does
    # (bench/RESULTS.md, "Acoustic model: leaving the CTC plateau"). conf/model/quartznet_*.yaml
    # keep NeMo's xavier.
    init: Literal["xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"] = (
        "kaiming_uniform"
    )

    def __post_init__(self) -> None:
        if not self.blocks:
            raise ValueError("blocks must not be empty")

    @property
    def out_channels(self) -> int:
        """Channels of the encoder output (the last block's filters)."""
        return self.blocks[-1].filters

    @property
    def subsampling(self) -> int:
        """Total time stride of the encoder."""
        total = 1
        for block in self.blocks:
            per_block = block.stride if block.stride_last else block.stride**block.repeat
            total *= per_block
        return total


def make_activation(name: str) -> nn.Module:
    """The activation module for a NeMo activation name (in-place where possible)."""
    table = {
        "relu": lambda: nn.ReLU(inplace=True),
        "hardtanh": lambda: nn.Hardtanh(inplace=True),
        "selu": lambda: nn.SELU(inplace=True),
        "swish": lambda: nn.SiLU(inplace=True),
        "silu": lambda: nn.SiLU(inplace=True),
        "gelu": nn.GELU,
        "tanh": nn.Tanh,
    }
    return table[name]()


def sequence_mask(lengths: Tensor, max_len: int) -> Tensor:
    """Boolean mask (batch, max_len), True at frames ``t < lengths[b]``."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def conv_output_lengths(
    lengths: Tensor, kernel: int, stride: int = 1, dilation: int = 1, padding: int | None = None
) -> Tensor:
    """Output lengths of a 1-D convolution (padding defaults to "same": dilation*(kernel-1)//2).

    Args:
        lengths: (batch,) input lengths.
    Returns:
        (batch,) ``floor((L + 2p - d(k-1) - 1) / s) + 1``; unchanged for stride 1 and odd kernels.
    """
    if padding is None:
        padding = dilation * (kernel - 1) // 2
    if stride == 1 and 2 * padding == dilation * (kernel - 1):
        return lengths
    span = dilation * (kernel - 1)
    return torch.div(lengths + 2 * padding - span - 1, stride, rounding_mode="floor") + 1


class MaskedConv1d(nn.Module):
    """A ``nn.Conv1d`` with "same" padding that zeroes padded input frames first.

    Long depthwise kernels on CPU run as FFT products (``asr.models.fftconv``): the same
    result to float rounding, several times faster for 33-87 taps.

    Args:
        in_channels, out_channels, kernel_size, stride=1, dilation=1, groups=1, bias=False: as
            for ``nn.Conv1d``; padding is ``dilation * (kernel_size - 1) // 2``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv1d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        # ONNX export only: a pointwise conv as a matrix product (see conv1d_for_export)
        self.export_as_matmul = False

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """(batch,) output lengths for (batch,) input lengths."""
        conv = self.conv
        return conv_output_lengths(
            lengths, conv.kernel_size[0], conv.stride[0], conv.dilation[0], conv.padding[0]
        )

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """x: (batch, channels, time), lengths: (batch,) -> (batch, out, time'), lengths'."""
        x = x * sequence_mask(lengths, x.shape[-1]).unsqueeze(1).to(x.dtype)
        conv = self.conv
        if torch.onnx.is_in_onnx_export():
            y = conv1d_for_export(x, conv, self.export_as_matmul)
        elif use_fft_depthwise(x, conv):
            y = fft_depthwise_conv1d(
                x, conv.weight, conv.stride[0], conv.dilation[0], conv.padding[0]
            )
        else:
            y = conv(x)
        return y, self.output_lengths(lengths)


def conv1d_for_export(x: Tensor, conv: nn.Conv1d, matmul: bool = False) -> Tensor:
    """``conv(x)`` in the form ONNX export uses: a 2-D convolution over ``(batch, channels, 1,
    time)``, since onnxruntime runs 2-D convolutions (depthwise ones included) in its blocked
    NCHWc kernels, 2-3x faster than its 1-D ones; with ``matmul``, a pointwise convolution
    (kernel 1, stride 1, no groups) as a matrix product over ``(batch, time, channels)``,
    which onnxruntime's dynamic int8 quantisation runs 2x faster than float32 (its int8
    convolutions are 5x slower). Same result as ``conv(x)``.

    Args:
        x: ``(batch, in_channels, time)``.
        conv: a ``nn.Conv1d`` with integer padding and zero padding mode.
        matmul: pointwise convolutions as matrix products.
    Returns:
        ``(batch, out_channels, time')``.
    """
    pointwise = conv.kernel_size[0] == 1 and conv.stride[0] == 1 and conv.groups == 1
    if matmul and pointwise:
        y = (x.transpose(1, 2) @ conv.weight[:, :, 0].t()).transpose(1, 2)
        return y if conv.bias is None else y + conv.bias[:, None]
    y = nn.functional.conv2d(
        x.unsqueeze(2),
        conv.weight.unsqueeze(2),
        conv.bias,
        stride=(1, conv.stride[0]),
        padding=(0, conv.padding[0]),  # type: ignore[index]
        dilation=(1, conv.dilation[0]),
        groups=conv.groups,
    )
    return y.squeeze(2)


class SqueezeExcite(nn.Module):
    """Citrinet squeeze-and-excitation: scale channels by a gate computed from the masked mean.

    Args:
        channels: input/output channels.
        reduction_ratio: the bottleneck has ``channels // reduction_ratio`` units.
        activation: the bottleneck's activation name.
    """

    def __init__(self, channels: int, reduction_ratio: int, activation: str = "relu") -> None:
        super().__init__()
        hidden = channels // reduction_ratio
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            make_activation(activation),
            nn.Linear(hidden, channels, bias=False),
        )

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """x: (batch, channels, time) -> same shape, padded frames zero; lengths unchanged."""
        mask = sequence_mask(lengths, x.shape[-1]).unsqueeze(1)
        x = x.masked_fill(~mask, 0.0)
        denom = lengths.clamp(min=1).to(x.dtype)[:, None]
        mean = x.sum(dim=-1) / denom  # (batch, channels)
        gate = torch.sigmoid(self.fc(mean)).unsqueeze(-1)
        return x * gate, lengths


def _conv_bn(
    in_ch: int, out_ch: int, kernel: int, stride: int, dilation: int, separable: bool
) -> list[nn.Module]:
    """[depthwise,] conv, batch norm -- NeMo's ``_get_conv_bn_layer`` order."""
    layers: list[nn.Module] = []
    if separable:
        layers.append(MaskedConv1d(in_ch, in_ch, kernel, stride, dilation, groups=in_ch))
        layers.append(MaskedConv1d(in_ch, out_ch, 1))
    else:
        layers.append(MaskedConv1d(in_ch, out_ch, kernel, stride, dilation))
    layers.append(nn.BatchNorm1d(out_ch, eps=BATCH_NORM_EPS, momentum=BATCH_NORM_MOMENTUM))
    return layers


class ConvBlock(nn.Module):
    """One Jasper/QuartzNet block (see the module docstring for the layer layout).

    Args:
        in_channels: channels of the block input.
        cfg: the block's options.
        activation: activation name.
        residual_channels: channels of each residual input (dense residual: several), default
            ``[in_channels]`` when ``cfg.residual``.
    """

    def __init__(
        self,
        in_channels: int,
        cfg: BlockConfig,
        activation: str = "relu",
        residual_channels: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        channels = in_channels
        for index in range(cfg.repeat):
            last = index == cfg.repeat - 1
            stride = cfg.stride if (last or not cfg.stride_last) else 1
            layers += _conv_bn(
                channels, cfg.filters, cfg.kernel, stride, cfg.dilation, cfg.separable
            )
            if not last:
                layers += [make_activation(activation), nn.Dropout(cfg.dropout)]
            channels = cfg.filters
        if cfg.se:
            layers.append(SqueezeExcite(cfg.filters, cfg.se_reduction_ratio, activation))
        self.mconv = nn.ModuleList(layers)
        self.res: nn.ModuleList | None = None
        if cfg.residual:
            res_stride = cfg.stride if cfg.residual_mode == "stride_add" else 1
            panes = residual_channels or [in_channels]
            self.res = nn.ModuleList(
                nn.ModuleList(_conv_bn(ch, cfg.filters, 1, res_stride, 1, separable=False))
                for ch in panes
            )
        self.mout = nn.Sequential(make_activation(activation), nn.Dropout(cfg.dropout))

    def forward(self, xs: list[Tensor], lengths: Tensor) -> tuple[list[Tensor], Tensor]:
        """xs: inputs, each (batch, channels_i, time); the last one feeds the convolutions,
        all of them feed the residual branches (one each). Returns the dense list ``xs + [out]``
        for a dense-residual block, else ``[out]``; out: (batch, filters, time'), lengths'."""
        out, out_lengths = xs[-1], lengths
        for layer in self.mconv:
            if isinstance(layer, (MaskedConv1d, SqueezeExcite)):
                out, out_lengths = layer(out, out_lengths)
            else:
                out = layer(out)
        if self.res is not None:
            for x_res, branch in zip(xs, self.res):
                conv, norm = branch
                out = out + norm(conv(x_res, lengths)[0])
        out = self.mout(out)
        if self.res is not None and self.cfg.residual_dense:
            return [*xs, out], out_lengths
        return [out], out_lengths

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """(batch,) lengths after this block's strided convolutions."""
        for layer in self.mconv:
            if isinstance(layer, MaskedConv1d):
                lengths = layer.output_lengths(lengths)
        return lengths


class Encoder(nn.Module):
    """The convolutional encoder (NeMo ``ConvASREncoder`` equivalent).

    Args:
        cfg: the encoder options.
        in_features: channels of the input features (e.g. 64 mel bands).
    """

    def __init__(self, cfg: EncoderConfig, in_features: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.in_features = in_features
        blocks = []
        channels = in_features
        dense_panes: list[int] = []
        for block_cfg in cfg.blocks:
            residual_channels = None
            if block_cfg.residual_dense:
                dense_panes.append(channels)
                residual_channels = list(dense_panes)
            blocks.append(ConvBlock(channels, block_cfg, cfg.activation, residual_channels))
            channels = block_cfg.filters
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = channels
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """NeMo's ``init_weights``: conv/linear weights by ``cfg.init``; batch norm to identity."""
        init = {
            "xavier_uniform": lambda w: nn.init.xavier_uniform_(w, gain=1.0),
            "xavier_normal": lambda w: nn.init.xavier_normal_(w, gain=1.0),
            "kaiming_uniform": lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
            "kaiming_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
        }[self.cfg.init]
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.Linear)):
                init(module.weight)
            elif isinstance(module, nn.BatchNorm1d):
                module.reset_running_stats()
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """x: (batch, in_features, time), lengths: (batch,) ->
        (batch, out_channels, time / subsampling), (batch,) output lengths."""
        xs = [x]
        for block in self.blocks:
            xs, lengths = block(xs, lengths)
        return xs[-1], lengths

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """(batch,) encoder output lengths for (batch,) feature lengths, without running it."""
        for block in self.blocks:
            lengths = block.output_lengths(lengths)
        return lengths
