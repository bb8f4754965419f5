"""``asr stream``: recognise audio as it arrives, printing partial and final results.

Input is an audio file (fed as fast as possible, or at real-time pace with ``--realtime``) or
``-``: raw 16-bit little-endian mono PCM on standard input, e.g. from a microphone::

    arecord -q -f S16_LE -r 16000 -c 1 | asr stream -
    sox -d -q -t raw -e signed -b 16 -c 1 -r 16000 - | asr stream -
    asr stream talk.flac --realtime --format jsonl

Decoding options are those of ``asr transcribe`` (greedy or beam + LSTM LM; default: the model
folder's recommended decoding).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from asr.cli._options import add_decoding_arguments, add_model_arguments

if TYPE_CHECKING:
    from asr.streaming import StreamConfig, StreamResult


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``stream`` subcommand."""
    p = subparsers.add_parser(
        "stream",
        help="recognise a file or live PCM from stdin chunk by chunk (partial + final results)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="audio file, or - for raw s16le mono PCM on stdin")
    p.add_argument("--rate", type=int, help="stdin sample rate, Hz (default: the model's)")
    p.add_argument("--realtime", action="store_true", help="feed a file at real-time pace")
    p.add_argument("--block-s", type=float, default=0.1, help="audio per read (default 0.1 s)")
    p.add_argument("--format", choices=("text", "jsonl"), default="text", help="default text")
    p.add_argument("--no-partials", action="store_true", help="print final results only")
    add_stream_arguments(p)
    add_model_arguments(p, backend=False)
    add_decoding_arguments(p, decoders=("greedy", "beam"))
    p.set_defaults(func=run)


def add_stream_arguments(p: argparse.ArgumentParser) -> None:
    """Chunking and endpointing flags (shared with ``asr serve``)."""
    g = p.add_argument_group("streaming")
    g.add_argument("--chunk-s", type=float, default=0.24, help="audio per step (default 0.24)")
    g.add_argument("--left-s", type=float, default=2.0, help="left context (default 2.0 s)")
    g.add_argument("--right-s", type=float, default=0.48, help="look-ahead (default 0.48 s)")
    g.add_argument(
        "--endpoint-silence",
        type=float,
        default=0.35,
        help="silence ending an utterance (default 0.35 s)",
    )
    g.add_argument("--no-endpoint", action="store_true", help="one utterance until the end")
    g.add_argument(
        "--no-provisional",
        action="store_true",
        help="partials only from frames whose look-ahead has arrived (later, less compute)",
    )


def stream_config(args: argparse.Namespace) -> StreamConfig:
    """The :class:`asr.streaming.StreamConfig` of :func:`add_stream_arguments`' flags."""
    from asr.streaming import ChunkConfig, StreamConfig

    chunk = ChunkConfig(args.chunk_s, args.left_s, args.right_s)
    return StreamConfig(
        chunk=chunk,
        endpoint=not args.no_endpoint,
        endpoint_silence_s=args.endpoint_silence,
        provisional=not args.no_provisional,
    )


def _file_blocks(path: str, rate: int, block: int, realtime: bool) -> Iterator[np.ndarray]:
    from asr.io.audio import load_audio, resample

    samples, file_rate = load_audio(path)
    samples = resample(samples, file_rate, rate)
    start = time.monotonic()
    for pos in range(0, len(samples), block):
        if realtime:
            delay = start + pos / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield samples[pos : pos + block]


def _stdin_blocks(in_rate: int, rate: int, block: int) -> Iterator[np.ndarray]:
    import soxr

    resampler = soxr.ResampleStream(in_rate, rate, 1, dtype="float32") if in_rate != rate else None
    reader = sys.stdin.buffer
    leftover = b""
    while True:
        data = reader.read(block * 2)
        last = not data
        data, leftover = leftover + data, b""
        if len(data) % 2:
            data, leftover = data[:-1], data[-1:]
        x = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        if resampler is not None:
            x = resampler.resample_chunk(x, last=last)
        if len(x):
            yield x
        if last:
            return


def _print(result: StreamResult, fmt: str, partials: bool) -> None:
    if not result.final and not partials:
        return
    if fmt == "jsonl":
        print(json.dumps(result.as_dict()), flush=True)
        return
    kind = "final  " if result.final else "partial"
    print(f"{kind} [{result.start:7.2f} {result.end:7.2f}] {result.text}", flush=True)


def run(args: argparse.Namespace) -> int:
    """Stream the input through the model; returns the exit code."""
    from asr.cli._options import decoding_options, load_for_decoding
    from asr.streaming import Stream

    config = stream_config(args)
    model, _, decoder = load_for_decoding(args, decoding_options(args), progress=True)
    stream = Stream(model.network, model.tokenizer, decoder, config)
    rate = model.sample_rate
    block = max(1, round(args.block_s * rate))
    if args.input == "-":
        blocks = _stdin_blocks(args.rate or rate, rate, block)
    else:
        blocks = _file_blocks(args.input, rate, block, args.realtime)
    for samples in blocks:
        for result in stream.accept(samples):
            _print(result, args.format, not args.no_partials)
    for result in stream.finish():
        _print(result, args.format, True)
    return 0
