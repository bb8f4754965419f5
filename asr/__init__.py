"""asr: an end-to-end conv-CTC speech recognition toolkit.

Audio -> front-end (``asr.frontend``) -> temporal-convolution CTC acoustic model (``asr.models``)
-> CTC prefix beam search fused with an LSTM language model (``asr.decode``, ``asr.lm``) -> WER.
"""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``asr.load_model(path, device="cpu") -> (model, tokenizer)``, imported on first use so that
    ``import asr`` does not import torch."""
    if name == "load_model":
        from asr.models.io import load_model

        return load_model
    raise AttributeError(f"module 'asr' has no attribute {name!r}")
