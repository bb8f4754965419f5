"""Language models for shallow fusion: the batched scoring interface, the LSTM LM, n-grams.

``from asr.lm import LanguageModel, LMState, load_lm`` gives the decoder everything it needs:
see :mod:`asr.lm.base` for the interface (id 0, the CTC blank, is the sentence boundary).
"""

from asr.lm.base import BOUNDARY_ID, LanguageModel, LMError, LMState

__all__ = ["BOUNDARY_ID", "LMError", "LMState", "LanguageModel", "load_lm", "save_lm"]


def __getattr__(name: str):
    if name in ("load_lm", "save_lm"):
        from asr.lm import io

        return getattr(io, name)
    raise AttributeError(name)
