"""Int8 matrix products for the LSTM LM's decoding step on CPU (dynamic quantisation).

In fused beam search almost all of the LM's time goes to the recurrent matrix products of
:meth:`asr.lm.lstm.LSTMLM.step`, one ``(prefixes, size) x (size, 4 hidden)`` product per layer.
torch's quantised ``linear_dynamic`` (fbgemm / x86 engines) runs them with int8 weights,
quantised once per output row (symmetric, per channel), and activations quantised per call:
1.5-2x the speed of float32 GEMMs on AVX2 machines, with gate pre-activations within ~2 %.
torch 2.13 marks quantised tensors as deprecated (its warning is silenced here); where a build
lacks them, :func:`int8_available` is False and asking for int8 is a one-line error.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

INT8_ENGINES = ("x86", "fbgemm")  # quantised engines whose linear_dynamic runs per-channel int8


def int8_available() -> bool:
    """Whether this torch build can run :class:`Int8Linear` (an fbgemm/x86 engine is present)."""
    engines = torch.backends.quantized.supported_engines
    has_ops = hasattr(torch.ops.quantized, "linear_dynamic")
    return has_ops and any(e in engines for e in INT8_ENGINES)


class Int8Linear:
    """``x @ weight.T + bias`` with ``weight`` stored as int8, one scale per output row.

    Args:
        weight: ``(out, in)`` float weight (quantised here, once).
        bias: ``(out,)`` float bias or None.
    """

    def __init__(self, weight: Tensor, bias: Tensor | None = None) -> None:
        if not int8_available():
            raise RuntimeError(
                f"int8 LM steps need one of torch's quantised engines {INT8_ENGINES}; this "
                f"build has {torch.backends.quantized.supported_engines}"
            )
        weight = weight.detach().float().cpu()
        scales = (weight.abs().amax(dim=1) / 127.0).clamp_min(1e-12).double()
        zero_points = torch.zeros(weight.shape[0], dtype=torch.long)
        bias = None if bias is None else bias.detach().float().cpu()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*are deprecated", category=UserWarning)
            qweight = torch.quantize_per_channel(weight, scales, zero_points, 0, torch.qint8)
            self.packed = torch.ops.quantized.linear_prepack(qweight, bias)

    def __call__(self, x: Tensor) -> Tensor:
        """``(batch, in)`` float32 -> ``(batch, out)`` float32."""
        return torch.ops.quantized.linear_dynamic(x.float().contiguous(), self.packed)
