"""ONNX export of acoustic models and LSTM LMs, and an onnxruntime backend for inference.

- :mod:`asr.onnx.frontend`: the front-end as export-friendly tensor ops (framing by index
  arithmetic, the spectrum as one strided convolution with a DFT-matrix kernel: no FFT).
- :mod:`asr.onnx.export`: ``export_onnx`` writes a self-describing folder (``model.onnx``,
  ``config.json``, tokenizer files) for an acoustic model or an LSTM LM (one decoding step).
- :mod:`asr.onnx.runtime`: :class:`OnnxCTCModel`, an exported acoustic model run by
  onnxruntime behind the interface :mod:`asr.inference.forward` uses, and :class:`OnnxLMStep`.

``onnx`` and ``onnxruntime`` are optional (``pip install 'asr[onnx]'``); importing this package
needs neither.
"""

from __future__ import annotations

from asr.errors import AsrError

EXTRA_HINT = "pip install 'asr[onnx]'"


class OnnxError(AsrError):
    """An ONNX export or onnxruntime run cannot be done (missing extra, unsupported option)."""


def require(module: str):
    """Import ``module`` (``onnx``, ``onnxruntime`` ...) or raise a one-line :class:`OnnxError`
    naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise OnnxError(f"{top} is not installed: {EXTRA_HINT}") from None
