"""onnxruntime backends: an exported acoustic model and an exported LSTM LM step.

:class:`OnnxCTCModel` offers what :mod:`asr.inference.forward` and :mod:`asr.inference.transcribe`
use of a :class:`asr.models.ctc.CTCModel` (``cfg``, ``vocab_size``, ``frame_shift_s``, ``device``,
``eval()``, ``model(waveforms, lengths)``), so every decoder runs unchanged on its log-probs.
:class:`OnnxLSTMLM` is an :class:`asr.lm.base.LanguageModel` whose steps run in onnxruntime.

Example::

    model, tokenizer = load_onnx_model("exp/model_onnx", threads=1)
    log_probs, lengths = model(waveforms, lengths)      # torch tensors in, torch tensors out
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from asr import config as config_io
from asr.lm.base import LanguageModel, LMState
from asr.onnx import OnnxError, require
from asr.onnx.export import FORMAT, ONNX_ACOUSTIC, ONNX_LM, VERSION


def read_onnx_config(folder: str | Path, kind: str) -> dict[str, Any]:
    """The ``config.json`` of an ONNX export folder of ``kind`` (checked: format, version,
    kind, ``model.onnx`` present); a one-line :class:`OnnxError` naming the file otherwise."""
    folder = Path(folder)
    path = folder / "config.json"
    if not (folder / "model.onnx").is_file() or not path.is_file():
        raise OnnxError(
            f"{folder}: not an ONNX export folder (no model.onnx with config.json); make one "
            f"with: asr export --format onnx MODEL_DIR {folder}"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise OnnxError(f"{path}: cannot read: {err}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise OnnxError(f"{path}: format is not {FORMAT!r}")
    if data.get("version") != VERSION:
        raise OnnxError(f"{path}: version {data.get('version')!r}, this asr reads {VERSION}")
    if data.get("kind") != kind:
        raise OnnxError(f"{path}: holds an {data.get('kind')}, not an {kind}")
    return data


def make_session(path: str | Path, threads: int = 0) -> Any:
    """An onnxruntime CPU ``InferenceSession`` for ``path`` with ``threads`` intra-op threads
    (0: onnxruntime's default) and all graph optimisations."""
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(threads, 0)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types
        raise OnnxError(f"{path}: onnxruntime cannot load it: {str(err).splitlines()[0]}") from None


class OnnxCTCModel:
    """An exported acoustic model run by onnxruntime (CPU).

    Args:
        folder: an ONNX export folder of an acoustic model (``asr export --format onnx``).
        threads: onnxruntime intra-op threads (0: its default).
    """

    def __init__(self, folder: str | Path, threads: int = 0) -> None:
        from asr.models.ctc import ModelConfig

        self.folder = Path(folder)
        self.config = read_onnx_config(self.folder, ONNX_ACOUSTIC)
        where = f"{self.folder / 'config.json'}: model"
        self.cfg = config_io.from_dict(ModelConfig, self.config["model"], where=where)
        self.vocab_size = len(self.config["vocab"])
        self.frame_shift_s = float(self.config["frame_shift_s"])
        self.device = torch.device("cpu")
        self.session = make_session(self.folder / "model.onnx", threads)
        self.frontend = None if self.config["frontend_in_graph"] else self._frontend()

    def _frontend(self) -> Any:
        """The front-end of a split export (:mod:`asr.onnx.export`), in eval mode."""
        from asr.frontend import Frontend

        frontend = Frontend(self.cfg.frontend, load_stats=False).eval()
        for name in ("cmvn_mean", "cmvn_std"):
            if name in self.config:
                frontend.get_buffer(name).copy_(torch.tensor(self.config[name]))
        return frontend

    def num_parameters(self, trainable_only: bool = True) -> int:
        """Parameters of the exported model (from ``config.json``)."""
        return int(self.config.get("num_parameters", 0))

    def eval(self) -> OnnxCTCModel:
        """No-op (the graph is an eval-mode model); returns ``self``."""
        return self

    def __call__(self, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """waveforms ``(batch, samples)``, lengths ``(batch,)`` -> log_probs ``(batch, frames,
        vocab)`` float32, out_lengths ``(batch,)`` int64 (CPU torch tensors)."""
        waveforms, lengths = waveforms.detach().float().cpu(), lengths.detach().long().cpu()
        if self.frontend is not None:  # split export: features in
            with torch.inference_mode():
                waveforms, lengths = self.frontend(waveforms, lengths)
        names = list(self.config["inputs"])
        feed = {names[0]: waveforms.numpy(), names[1]: lengths.numpy()}
        log_probs, out_lengths = self.session.run(None, feed)
        return torch.from_numpy(log_probs), torch.from_numpy(out_lengths)


class OnnxLSTMLM(LanguageModel):
    """An exported LSTM LM step run by onnxruntime: the decoders' LM interface.

    Args:
        folder: an ONNX export folder of an LSTM LM.
        threads: onnxruntime intra-op threads (0: its default).
    """

    def __init__(self, folder: str | Path, threads: int = 0) -> None:
        self.folder = Path(folder)
        self.config = read_onnx_config(self.folder, ONNX_LM)
        self.vocab = list(self.config["vocab"])
        lm = self.config["lm"]
        self._shapes = (lm["num_layers"], lm["proj_size"] or lm["hidden_size"], lm["hidden_size"])
        self.session = make_session(self.folder / "model.onnx", threads)

    def run(self, tokens: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One step: tokens ``(B,)``, h ``(B, layers, out)``, c ``(B, layers, hidden)`` ->
        log_probs ``(B, vocab)``, h', c' (CPU float32 tensors)."""
        feed = {
            "tokens": tokens.detach().long().cpu().numpy(),
            "h": h.detach().float().cpu().numpy(),
            "c": c.detach().float().cpu().numpy(),
        }
        return tuple(torch.from_numpy(np.asarray(x)) for x in self.session.run(None, feed))  # type: ignore[return-value]

    @torch.no_grad()
    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> LMState:
        """``batch_size`` empty prefixes: zeros, then one step on ``<s>`` (id 0)."""
        layers, out, hidden = self._shapes
        zeros = torch.zeros(1, layers, out), torch.zeros(1, layers, hidden)
        log_probs, h, c = self.run(torch.zeros(1, dtype=torch.long), *zeros)
        one = LMState((h, c), log_probs)
        return self.select_state(one, torch.zeros(batch_size, dtype=torch.long))

    @torch.no_grad()
    def step(self, tokens: Tensor, state: LMState) -> tuple[Tensor, LMState]:
        """One batched step for B prefixes (see :meth:`LanguageModel.step`)."""
        log_probs, h, c = self.run(tokens, *state.tensors)
        return log_probs, LMState((h, c), log_probs)


def load_onnx_model(path: str | Path, threads: int = 0) -> tuple[OnnxCTCModel, Any]:
    """(model, tokenizer) of an ONNX export folder of an acoustic model; a model folder
    (safetensors) is first exported into a temporary folder (a few seconds).

    Args:
        path: the folder (``asr export --format onnx``, or a model folder).
        threads: onnxruntime intra-op threads (0: its default).
    """
    import tempfile

    from asr.io.folders import ACOUSTIC_MODEL, model_dir_kind
    from asr.onnx.export import export_onnx
    from asr.text.tokenizer import load_tokenizer

    require("onnxruntime")
    if model_dir_kind(path) == ACOUSTIC_MODEL:
        with tempfile.TemporaryDirectory(prefix="asr-onnx-") as tmp:
            export_onnx(path, Path(tmp) / "model")
            return load_onnx_model(Path(tmp) / "model", threads)
    model = OnnxCTCModel(path, threads)
    tokenizer = load_tokenizer(path)
    if tokenizer.vocab_size != model.vocab_size:
        raise OnnxError(
            f"{path}: tokenizer has {tokenizer.vocab_size} symbols, config.json {model.vocab_size}"
        )
    return model, tokenizer
