"""FFT depthwise convolution against torch's direct conv1d (values and gradients)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from asr.models import fftconv
from asr.models.fftconv import fft_depthwise_conv1d, use_fft_depthwise
from asr.models.tcn import MaskedConv1d


@pytest.mark.parametrize(
    "kernel,stride,dilation,padding,time",
    [
        (33, 1, 1, 16, 200),  # QuartzNet "same" padding
        (25, 1, 1, 12, 25),  # input exactly one span long
        (87, 1, 2, 86, 301),  # dilated, NeMo's last block
        (33, 3, 1, 16, 250),  # strided first block
        (34, 2, 1, 16, 97),  # even kernel, odd length
        (40, 1, 1, 0, 64),  # no padding
        (29, 1, 3, 5, 300),  # padding smaller than the span
    ],
)
def test_matches_direct_conv_and_its_gradients(kernel, stride, dilation, padding, time):
    gen = torch.Generator().manual_seed(kernel * time + stride)
    x = torch.randn(3, 6, time, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 1, kernel, generator=gen, dtype=torch.float64, requires_grad=True)
    ref = F.conv1d(x, w, None, stride, padding, dilation, groups=6)
    out = fft_depthwise_conv1d(x, w, stride, dilation, padding)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)
    upstream = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    grads_ref = torch.autograd.grad(ref, (x, w), upstream)
    grads = torch.autograd.grad(out, (x, w), upstream)
    for got, want in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def test_float32_error_is_rounding_level():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 192, 1000, generator=gen)
    w = torch.randn(192, 1, 63, generator=gen) / 8
    ref = F.conv1d(x, w, None, 1, 31, 1, groups=192)
    out = fft_depthwise_conv1d(x, w, 1, 1, 31)
    assert (out - ref).abs().max() <= 1e-5 * ref.abs().max()


def test_too_short_input_is_an_error():
    with pytest.raises(ValueError, match="shorter than the kernel span 33"):
        fft_depthwise_conv1d(torch.zeros(1, 2, 10), torch.zeros(2, 1, 33), padding=0)


def test_which_convolutions_take_the_fft_path():
    x = torch.zeros(1, 8, 100)

    def conv(**kw):
        args = {"in_channels": 8, "out_channels": 8, "kernel_size": 33, "groups": 8}
        args |= {"bias": False, "padding": 16} | kw
        return torch.nn.Conv1d(**args)

    assert use_fft_depthwise(x, conv())
    assert use_fft_depthwise(x.double(), conv())
    assert not use_fft_depthwise(x, conv(kernel_size=11, padding=5))  # short kernel: direct
    assert use_fft_depthwise(x, conv(kernel_size=13, padding=12, dilation=2))  # span 25
    assert not use_fft_depthwise(x, conv(groups=1))  # dense
    assert not use_fft_depthwise(x, conv(bias=True))
    assert not use_fft_depthwise(x, conv(padding_mode="reflect"))
    assert not use_fft_depthwise(x.half(), conv().half())
    assert not use_fft_depthwise(x.to("meta"), conv())  # not CPU
    assert not use_fft_depthwise(x[..., :20], conv(padding=0))  # shorter than the kernel


def test_masked_conv_is_the_same_on_both_paths(monkeypatch):
    torch.manual_seed(0)
    layer = MaskedConv1d(16, 16, 51, stride=1, dilation=1, groups=16)
    x = torch.randn(3, 16, 120)
    lengths = torch.tensor([120, 77, 30])
    fft_out, fft_lengths = layer(x, lengths)
    monkeypatch.setattr(fftconv, "FFT_MIN_SPAN", 10**9)  # force torch's direct conv
    direct_out, direct_lengths = layer(x, lengths)
    assert torch.equal(fft_lengths, direct_lengths)
    torch.testing.assert_close(fft_out, direct_out, rtol=1e-5, atol=1e-5)
