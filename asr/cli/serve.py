"""``asr serve``: a recognition server (WebSocket streams, HTTP transcription, a captioning page).

    asr serve                        # http://127.0.0.1:8000/ captions the microphone
    asr serve --decoder greedy --max-streams 16 --port 9000

Protocol: docs/streaming.md. Needs the ``serve`` extra (``pip install 'asr[serve]'``).
"""

from __future__ import annotations

import argparse

from asr.cli._options import add_decoding_arguments, add_model_arguments
from asr.cli.stream import add_stream_arguments, stream_config
from asr.errors import AsrError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` subcommand."""
    p = subparsers.add_parser(
        "serve",
        help="serve streaming recognition (WebSocket), transcription (HTTP) and a caption page",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="default 8000")
    p.add_argument("--max-streams", type=int, default=8, help="concurrent streams (default 8)")
    p.add_argument("--max-message-kb", type=int, default=1024, help="per message (default 1024)")
    p.add_argument("--max-stream-s", type=float, default=3600.0, help="audio per stream (3600)")
    p.add_argument("--idle-timeout", type=float, default=30.0, help="seconds (default 30)")
    p.add_argument("--workers", type=int, default=2, help="compute threads (default 2)")
    add_stream_arguments(p)
    add_model_arguments(p, backend=False)
    add_decoding_arguments(p, decoders=("greedy", "beam"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the model and serve until interrupted."""
    try:
        from aiohttp import web
    except ImportError:
        raise AsrError("asr serve needs aiohttp: pip install 'asr[serve]'") from None
    import torch

    from asr.cli._options import decoding_options, load_for_decoding
    from asr.serve.app import ServeConfig, Server

    options = decoding_options(args)
    model, _, _ = load_for_decoding(args, options, progress=True)
    if args.threads <= 0:
        torch.set_num_threads(1)  # parallelism comes from the worker threads
    cfg = ServeConfig(
        host=args.host,
        port=args.port,
        max_streams=args.max_streams,
        max_message_bytes=args.max_message_kb * 1024,
        max_stream_s=args.max_stream_s,
        idle_timeout_s=args.idle_timeout,
        workers=args.workers,
        stream=stream_config(args),
    )
    server = Server(model, cfg, options)
    print(f"asr serve: http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
    web.run_app(server.app, host=args.host, port=args.port, print=None)
    return 0
