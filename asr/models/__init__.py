"""Acoustic models: the QuartzNet/Jasper encoder (``tcn``), the CTC model and loss (``ctc``) and
exported model directories (``io``).

Example::

    from asr.models import CTCModel, ctc_loss, export_model, load_model_config
    model = CTCModel(load_model_config("conf/model/small.yaml"), tokenizer.vocab_size)
    log_probs, out_lengths = model(waveforms, lengths)      # (batch, frames, vocab), (batch,)
    loss = ctc_loss(log_probs, out_lengths, targets, target_lengths)
    export_model(model, tokenizer, "exp/model")              # safetensors + config.yaml + tokenizer
    model, tokenizer = load_model("exp/model")               # eval mode, no unpickling
    # (asr.load_model("exp/model") gives an asr.api.Model: .network, .tokenizer, .transcribe)

The names below are imported on first use, so ``import asr.models.tcn`` stays independent of the
front-end.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "BlockConfig": "asr.models.tcn",
    "EncoderConfig": "asr.models.tcn",
    "Encoder": "asr.models.tcn",
    "CTCModel": "asr.models.ctc",
    "ModelConfig": "asr.models.ctc",
    "ctc_loss": "asr.models.ctc",
    "load_model_config": "asr.models.ctc",
    "export_model": "asr.models.io",
    "load_model": "asr.models.io",
    "ModelFileError": "asr.models.io",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'asr.models' has no attribute {name!r}")
