"""asr: an end-to-end conv-CTC speech recognition toolkit.

Audio -> front-end (``asr.frontend``) -> temporal-convolution CTC acoustic model (``asr.models``)
-> CTC prefix beam search fused with an LSTM language model (``asr.decode``, ``asr.lm``) -> WER.
"""

__version__ = "0.1.0"
