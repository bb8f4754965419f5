"""Depthwise 1-D convolution by FFT, for the long kernels of QuartzNet/Jasper blocks on CPU.

PyTorch's CPU depthwise ``conv1d`` (oneDNN, or the per-channel fallback) costs O(time x kernel)
per channel and is slow for kernels of 33-87 taps: on one core, a QuartzNet-style training step
spent most of its time there. By the convolution theorem the same cross-correlation is an
element-wise product of real FFTs, O(time log time) per channel whatever the kernel, and autograd
differentiates it. Results equal ``torch.nn.functional.conv1d(..., groups=channels)`` to float
rounding (about 1e-6 relative in float32).
"""

from __future__ import annotations

import torch
from torch import Tensor

FFT_MIN_SPAN = 25  # taps (dilation * (kernel - 1) + 1) from which the FFT path beats direct conv
FFT_DTYPES = (torch.float32, torch.float64)


def use_fft_depthwise(x: Tensor, conv: torch.nn.Conv1d) -> bool:
    """Whether ``fft_depthwise_conv1d`` should replace ``conv(x)``: a depthwise convolution with
    no bias and zero padding, a kernel spanning at least ``FFT_MIN_SPAN`` taps, and a float32/64
    CPU input (cuDNN's depthwise kernels are fast; half-precision FFTs are not accurate) at
    least one kernel span long."""
    span = conv.dilation[0] * (conv.kernel_size[0] - 1) + 1
    return (
        conv.groups == conv.in_channels == conv.out_channels
        and conv.groups > 1
        and conv.bias is None
        and conv.padding_mode == "zeros"
        and isinstance(conv.padding[0], int)
        and conv.padding[0] < span
        and span >= FFT_MIN_SPAN
        and x.shape[-1] + 2 * conv.padding[0] >= span
        and x.device.type == "cpu"
        and x.dtype in FFT_DTYPES
    )


def fft_depthwise_conv1d(
    x: Tensor, weight: Tensor, stride: int = 1, dilation: int = 1, padding: int = 0
) -> Tensor:
    """Depthwise cross-correlation, as ``F.conv1d(x, weight, None, stride, padding, dilation,
    groups=channels)``.

    Args:
        x: (batch, channels, time) input.
        weight: (channels, 1, kernel) one filter per channel.
        stride: output step in input frames (default 1).
        dilation: spacing of the kernel taps (default 1).
        padding: zero frames added at both ends (default 0).

    Returns:
        (batch, channels, (time + 2 * padding - span) // stride + 1), with
        ``span = dilation * (kernel - 1) + 1``.
    """
    channels, _, kernel = weight.shape
    taps = weight[:, 0]
    if dilation > 1:
        taps = weight.new_zeros(channels, dilation * (kernel - 1) + 1)
        taps[:, ::dilation] = weight[:, 0]
    span = taps.shape[-1]
    time = x.shape[-1]
    out_len = (time + 2 * padding - span) // stride + 1
    if out_len <= 0:
        raise ValueError(f"input of {time} frames is shorter than the kernel span {span}")
    n_fft = 1 << (time + span - 2).bit_length()  # >= time + span - 1: no circular wrap-around
    spectrum = torch.fft.rfft(x, n_fft) * torch.fft.rfft(taps.flip(-1), n_fft)
    full = torch.fft.irfft(spectrum, n_fft)  # full[j] = sum_k x[j - span + 1 + k] * taps[k]
    start = span - 1 - padding
    return full[..., start : start + (out_len - 1) * stride + 1 : stride]
