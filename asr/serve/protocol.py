"""The ``asr serve`` WebSocket protocol: parsing and checking client messages
(``docs/streaming.md`` documents it).

Client -> server: one JSON ``start`` message, then binary frames of PCM, then JSON ``end``::

    {"type": "start", "sample_rate": 48000, "encoding": "pcm_s16le",
     "decoder": "beam", "beam_size": 8}

Server -> client: ``ready``, then ``partial`` / ``final`` results
(:meth:`asr.streaming.StreamResult.as_dict`), ``end`` after the client's ``end``, and
``error`` (then the connection closes) for anything malformed or over a limit.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from asr.errors import AsrError

ENCODINGS = {"pcm_s16le": ("<i2", 2), "pcm_f32le": ("<f4", 4)}
# Decoding options a client may set (those of `asr transcribe` that need no server files).
CLIENT_OPTIONS = {"decoder": str, "beam_size": int, "alpha": float, "beta": float}
MAX_RATE = 192000


class ProtocolError(AsrError):
    """A client message breaks the protocol; the message is sent back as an ``error``."""


@dataclasses.dataclass(frozen=True)
class StartMessage:
    """What a client asked for in its ``start`` message."""

    sample_rate: int  # Hz of the PCM the client sends
    encoding: str  # a key of ENCODINGS
    decoding: dict[str, Any]  # decoding options (:data:`CLIENT_OPTIONS`)


def parse_json(text: str) -> dict[str, Any]:
    """A JSON object with a string ``type``, or :class:`ProtocolError`."""
    try:
        message = json.loads(text)
    except json.JSONDecodeError as err:
        raise ProtocolError(f"malformed JSON: {err.msg}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError('a text message must be a JSON object with a "type"')
    return message


def parse_start(message: dict[str, Any]) -> StartMessage:
    """Check a ``start`` message (see the module docstring)."""
    if message.get("type") != "start":
        raise ProtocolError(f'expected a "start" message, got {message.get("type")!r}')
    rate = message.get("sample_rate")
    if isinstance(rate, bool) or not isinstance(rate, int) or not 4000 <= rate <= MAX_RATE:
        raise ProtocolError(f"sample_rate must be an integer in [4000, {MAX_RATE}], got {rate!r}")
    encoding = message.get("encoding", "pcm_s16le")
    if encoding not in ENCODINGS:
        raise ProtocolError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    decoding = {}
    unknown = set(message) - {"type", "sample_rate", "encoding", *CLIENT_OPTIONS}
    if unknown:
        raise ProtocolError(f"unknown start fields: {', '.join(sorted(unknown))}")
    for name, kind in CLIENT_OPTIONS.items():
        if name in message:
            value = message[name]
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if kind is str:
                ok = value in ("greedy", "beam")
            elif kind is int:
                ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 64
            if not ok:
                raise ProtocolError(f"bad value for {name}: {value!r}")
            decoding[name] = value
    return StartMessage(rate, encoding, decoding)


def decode_pcm(data: bytes, encoding: str) -> np.ndarray:
    """``(samples,)`` float32 from a binary frame; :class:`ProtocolError` when malformed."""
    dtype, width = ENCODINGS[encoding]
    if len(data) % width:
        raise ProtocolError(f"a {encoding} frame must hold a multiple of {width} bytes")
    samples = np.frombuffer(data, dtype=dtype)
    if encoding == "pcm_s16le":
        return samples.astype(np.float32) / 32768.0
    samples = samples.astype(np.float32)
    if not np.isfinite(samples).all():
        raise ProtocolError("pcm_f32le frame holds NaN or Inf")
    return np.clip(samples, -1.0, 1.0)


def error(message: str) -> dict[str, str]:
    """The ``error`` message sent to a client."""
    return {"type": "error", "message": message}
