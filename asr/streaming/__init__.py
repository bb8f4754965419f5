"""Streaming recognition: audio in chunks of any size, partial and final results as it arrives.

- :mod:`asr.streaming.features`: front-end features computed incrementally (exact) and
  normalised by the statistics seen so far.
- :mod:`asr.streaming.encoder`: the conv acoustic model on chunks with cached left context and
  a small look-ahead (:func:`receptive_field`: where it is exact).
- :mod:`asr.streaming.decoder`: greedy and the prefix beam search + LSTM LM, resumable, and the
  greedy extension that makes provisional partials.
- :mod:`asr.streaming.endpoint`: VAD endpointing (:mod:`asr.inference.vad`'s detectors, frame by
frame).
- :mod:`asr.streaming.session`: :class:`Stream` (``accept``, ``partial``, ``finals``,
  ``finish``) and :func:`open_stream` (``model.stream()``).
"""

from asr.streaming.encoder import ChunkConfig, ChunkedEncoder, receptive_field
from asr.streaming.features import StreamingError
from asr.streaming.session import Stream, StreamConfig, StreamResult, open_stream

__all__ = [
    "ChunkConfig",
    "ChunkedEncoder",
    "Stream",
    "StreamConfig",
    "StreamResult",
    "StreamingError",
    "open_stream",
    "receptive_field",
]
