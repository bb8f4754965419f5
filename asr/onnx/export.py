"""Export acoustic models and LSTM LMs to self-describing ONNX folders.

Layout of an exported folder::

    model.onnx      the graph (float32, or dynamic int8 with ``quantize="int8"``)
    config.json     what the graph is: kind, inputs/outputs with shapes, sample rate, frame
                    shift, vocabulary, the model config, exporter, opset
    <tokenizer>     ``tokenizer.yaml`` (and ``tokenizer.model`` for sentencepiece)
    decode.yaml     (acoustic model) the source folder's recommended decoding, when it has one,
    lm/             with its LSTM LM as an exported LM folder (float32 safetensors), which
                    :func:`asr.pretrained.bundled_decoding` finds for the onnxruntime backend too

Acoustic model graph: ``waveforms (batch, samples) float32``, ``lengths (batch,) int64`` ->
``log_probs (batch, frames, vocab) float32`` (natural log, blank = 0, padded frames hold
garbage), ``out_lengths (batch,) int64``. The front-end is inside the graph
(:mod:`asr.onnx.frontend`); batch and samples are dynamic axes. The one front-end option with
no graph form, spectral denoising, gives the split export: the graph takes ``features (batch,
frames, features)`` and ``feature_lengths``, ``config.json`` says ``frontend_in_graph: false``
and holds what rebuilds the front-end (the model config, global CMVN statistics), and
:class:`asr.onnx.runtime.OnnxCTCModel` computes the features with :mod:`asr.frontend`.

LSTM LM graph, one decoding step for B prefixes: ``tokens (B,) int64``, ``h (B, layers, out)``,
``c (B, layers, hidden)`` float32 -> ``log_probs (B, vocab)`` (column 0 is ``</s>``), ``h_out``,
``c_out``. The initial state of an empty prefix is zeros followed by one step on token 0
(``<s>``); see ``config.json``.

Exporter: torch's TorchScript-based ``torch.onnx.export(..., dynamo=False)``, opset 17, with
``dynamic_axes``: it traces our length arithmetic into dynamic shapes (it needs the ``onnx``
package). The dynamo exporter is not used: it also needs ``onnxscript`` and gains nothing here.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from asr import config as config_io
from asr.models.tcn import MaskedConv1d
from asr.onnx import OnnxError, require
from asr.onnx.frontend import GraphFrontend

FORMAT = "asr-onnx"
VERSION = 1
OPSET = 17
EXPORTER = "torch.onnx.export (TorchScript-based, dynamo=False)"
ONNX_ACOUSTIC = "ONNX acoustic model"
ONNX_LM = "ONNX LSTM LM"
Quantize = Literal["none", "int8"]


class AcousticGraph(nn.Module):
    """What is exported for an acoustic model: the graph front-end (when ``with_frontend``)
    then the encoder and head.

    Args:
        model: a :class:`asr.models.ctc.CTCModel` (put in eval mode, float32).
        with_frontend: waveforms in (default); False: features in (the split export).
        pointwise_matmul: pointwise convolutions as matrix products (for int8 quantisation:
            :func:`asr.models.tcn.conv1d_for_export`).
    """

    def __init__(
        self, model: nn.Module, with_frontend: bool = True, pointwise_matmul: bool = False
    ) -> None:
        super().__init__()
        self.model = model.float().eval()
        self.frontend = GraphFrontend(model.frontend) if with_frontend else None
        for module in model.modules():
            if isinstance(module, MaskedConv1d):
                module.export_as_matmul = pointwise_matmul

    def forward(self, inputs: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """waveforms ``(batch, samples)`` (or features ``(batch, frames, feats)`` without the
        front-end), lengths ``(batch,)`` -> log_probs ``(batch, frames', vocab)``,
        out_lengths ``(batch,)``."""
        if self.frontend is not None:
            inputs, lengths = self.frontend(inputs, lengths)
        return self.model.forward_features(inputs, lengths)


class LMStepGraph(nn.Module):
    """What is exported for an LSTM LM: one step, ``(tokens, h, c) -> (log_probs, h, c)``.

    Args:
        lm: a :class:`asr.lm.lstm.LSTMLM` (float32 steps are exported, whatever ``lm.int8``).
    """

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm.float().eval()
        self.lm.int8 = False

    def forward(self, tokens: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """tokens ``(B,)``, h ``(B, layers, out)``, c ``(B, layers, hidden)`` ->
        log_probs ``(B, vocab)``, h', c'."""
        log_probs, state = self.lm._step_hx(tokens, (h, c))
        return log_probs, state.tensors[0], state.tensors[1]


def _export(module: nn.Module, args: tuple, path: Path, names: dict[str, dict[int, str]]) -> None:
    """``torch.onnx.export`` with the inputs then outputs of ``names`` (name -> dynamic axes)."""
    inputs = list(names)[: len(args)]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints from shapes
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=list(names)[len(args) :],
            dynamic_axes=names,
            opset_version=OPSET,
            dynamo=False,
        )


def _acoustic(src: Path, tmp: Path, int8: bool = False) -> dict:
    """Export the acoustic model folder ``src`` into ``tmp`` (``int8``: in the form int8
    quantisation runs fast); returns its config.json fields."""
    from asr.models.io import load_model

    model, tokenizer = load_model(src)
    split = model.cfg.frontend.denoise.method != "none"  # no graph form: features in
    graph = AcousticGraph(model, with_frontend=not split, pointwise_matmul=int8)
    rate = model.cfg.frontend.sample_rate_hz
    if split:
        example = (torch.randn(2, 100, model.frontend.num_features), torch.tensor([100, 75]))
        inputs = {
            "features": ["batch", "feature_frames", "features", "float32, asr.frontend's"],
            "feature_lengths": ["batch", "int64 valid frames per row"],
        }
    else:
        example = (torch.randn(2, rate) * 0.1, torch.tensor([rate, rate * 3 // 4]))
        inputs = {
            "waveforms": ["batch", "samples", "float32 mono at sample_rate_hz, zero-padded"],
            "lengths": ["batch", "int64 valid samples per row"],
        }
    signal, lengths = inputs  # names of the two inputs
    names = {
        signal: {0: "batch", 1: inputs[signal][1]},
        lengths: {0: "batch"},
        "log_probs": {0: "batch", 1: "frames"},
        "out_lengths": {0: "batch"},
    }
    _export(graph, example, tmp / "model.onnx", names)
    tokenizer.save(tmp)
    return {
        "kind": ONNX_ACOUSTIC,
        "inputs": inputs,
        "outputs": {
            "log_probs": ["batch", "frames", "vocab", "float32 natural-log CTC posteriors"],
            "out_lengths": ["batch", "int64 valid frames per row"],
        },
        "frontend_in_graph": not split,
        **(_frontend_stats(model.frontend) if split else {}),
        "sample_rate_hz": rate,
        "frame_shift_s": model.frame_shift_s,
        "blank_id": 0,
        "num_parameters": model.num_parameters(),
        "vocab": list(tokenizer.vocab),
        "model": config_io.to_dict(model.cfg),
    }


def _frontend_stats(frontend: nn.Module) -> dict:
    """config.json fields a split export needs to rebuild the front-end: its global CMVN
    statistics (the rest follows from the model config)."""
    if frontend.cfg.normalize != "global":
        return {}
    return {name: frontend.get_buffer(name).tolist() for name in ("cmvn_mean", "cmvn_std")}


def _lm(src: Path, tmp: Path) -> dict:
    """Export the LSTM LM folder ``src`` into ``tmp``; returns its config.json fields."""
    from asr.lm.io import load_lm

    lm, tokenizer = load_lm(src)
    cfg = lm.cfg
    example = (
        torch.tensor([0, 1]),
        torch.zeros(2, cfg.num_layers, cfg.output_size),
        torch.zeros(2, cfg.num_layers, cfg.hidden_size),
    )
    names = {
        "tokens": {0: "batch"},
        "h": {0: "batch"},
        "c": {0: "batch"},
        "log_probs": {0: "batch"},
        "h_out": {0: "batch"},
        "c_out": {0: "batch"},
    }
    _export(LMStepGraph(lm), example, tmp / "model.onnx", names)
    tokenizer.save(tmp)
    return {
        "kind": ONNX_LM,
        "inputs": {
            "tokens": ["batch", "int64 token appended to each prefix"],
            "h": ["batch", cfg.num_layers, cfg.output_size, "float32"],
            "c": ["batch", cfg.num_layers, cfg.hidden_size, "float32"],
        },
        "outputs": {
            "log_probs": ["batch", "vocab", "float32 log P(next token | prefix); 0 is </s>"],
            "h_out": ["batch", cfg.num_layers, cfg.output_size, "float32"],
            "c_out": ["batch", cfg.num_layers, cfg.hidden_size, "float32"],
        },
        "initial_state": "h = c = zeros, then one step with token 0 (<s>)",
        "bos_id": 0,
        "eos_id": 0,
        "vocab": list(tokenizer.vocab),
        "lm": config_io.to_dict(cfg),
    }


def quantize_int8(path: Path) -> None:
    """Replace the ONNX file ``path`` by its dynamic int8 quantisation (onnxruntime's
    ``quantize_dynamic``: int8 weights per output channel, activations quantised per call).

    Quantised: matrix products (the acoustic model's pointwise convolutions are exported as
    such for it: :func:`asr.models.tcn.conv1d_for_export`; the LM's gate products). Kept in
    float32: convolutions (onnxruntime's int8 convolutions are several times slower than its
    float32 ones) and the front-end (its mel product feeds a logarithm, where int8 rounding of
    quiet bands would be amplified).
    """
    quantization = require("onnxruntime.quantization")
    onnx = require("onnx")
    graph = onnx.load(str(path)).graph
    keep_float = [node.name for node in graph.node if node.name.startswith("/frontend/")]
    out = path.with_name(path.stem + ".int8.onnx")
    logger = logging.getLogger()  # the quantiser logs advice at WARNING on the root logger
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        quantization.quantize_dynamic(
            str(path),
            str(out),
            weight_type=quantization.QuantType.QInt8,
            per_channel=True,
            # 7-bit weights: u8 x s8 products cannot saturate the 16-bit sums of AVX2 CPUs
            # without VNNI (with 8 bits the int8 model drifts there: 7 % of frames flip)
            reduce_range=True,
            nodes_to_exclude=keep_float,
            op_types_to_quantize=["MatMul"],
        )
    finally:
        logger.setLevel(level)
    out.replace(path)


def export_onnx(
    src: str | Path, out: str | Path, quantize: Quantize = "none", overwrite: bool = False
) -> str:
    """Export the acoustic model or LSTM LM folder ``src`` as an ONNX folder ``out``.

    Args:
        src: an exported model folder (``config.yaml``) or LSTM LM folder (``lm.yaml``).
        out: the folder to write (new or empty; ``overwrite`` replaces an ONNX folder of the
            same kind, nothing else: :func:`asr.io.folders.check_model_out`).
        quantize: "none" (float32) or "int8" (dynamic quantisation of the weights).
        overwrite: the user passed ``--overwrite``.
    Returns:
        the kind written (``ONNX acoustic model`` or ``ONNX LSTM LM``).
    Raises:
        ModelFileError / OnnxError: bad source or output folder, missing extra, an option the
            graph cannot express.
    """
    from asr.io.folders import (
        LSTM_LM,
        check_model_out,
        make_temp_dir,
        replace_dir,
        source_kind,
        write_error,
    )
    from asr.lm.io import carry_decoding

    src = Path(src)
    kind = ONNX_LM if source_kind(src) == LSTM_LM else ONNX_ACOUSTIC
    require("onnx")  # torch's exporter writes the graph with it
    if quantize not in ("none", "int8"):
        raise OnnxError(f"--quantize must be none or int8, got {quantize!r}")
    dest = check_model_out(out, kind, overwrite=overwrite, sources=(src,))
    tmp = make_temp_dir(dest, out)
    try:
        int8 = quantize == "int8"
        fields = _lm(src, tmp) if kind == ONNX_LM else _acoustic(src, tmp, int8)
        if quantize == "int8":
            quantize_int8(tmp / "model.onnx")
        config = {
            "format": FORMAT,
            "version": VERSION,
            **fields,
            "weights": "int8 (dynamic quantisation)" if quantize == "int8" else "float32",
            "quantize": quantize,
            "source": str(src),
            "exporter": EXPORTER,
            "opset": OPSET,
            "torch": torch.__version__,
        }
        (tmp / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
        if kind == ONNX_ACOUSTIC:  # its decode.yaml and lm/ (float32 weights, as the graph's)
            carry_decoding(src, tmp, "float32")
        replace_dir(tmp, dest)
    except OSError as err:
        raise write_error(out, err) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return kind
