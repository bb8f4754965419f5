"""asr: an end-to-end conv-CTC speech recognition toolkit.

Audio -> front-end (``asr.frontend``) -> temporal-convolution CTC acoustic model (``asr.models``)
-> CTC prefix beam search fused with an LSTM language model (``asr.decode``, ``asr.lm``) -> WER.
"""

__version__ = "0.1.0"
# What the module __getattr__ below gives (and dir(asr) lists).
_API = ("load_model", "transcribe", "Model")


def __getattr__(name: str) -> object:
    """``asr.load_model(name_or_path) -> Model`` and ``asr.transcribe(audio, model="default",
    **decoding)`` (:mod:`asr.api`), imported on first use so that ``import asr`` does not import
    torch. (The low-level loader returning ``(network, tokenizer)`` is
    :func:`asr.models.io.load_model`.)"""
    if name in _API:
        from asr import api

        return getattr(api, name)
    raise AttributeError(f"module 'asr' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names and the API's, imported on first use (:func:`__getattr__`)."""
    return sorted({*globals(), *_API})
