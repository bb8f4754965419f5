"""``asr serve``: many concurrent recognition streams over WebSocket, whole-file transcription
over HTTP, a health endpoint and a captioning page, on aiohttp.

Routes: ``GET /`` the page (``static/index.html``), ``GET /ws`` the streaming protocol
(:mod:`asr.serve.protocol`, ``docs/streaming.md``), ``POST /transcribe`` an audio file in the
body -> the JSON of ``asr transcribe --format json``, ``GET /health``.

The model is shared; each stream has its own :class:`asr.streaming.Stream`, advanced in a
thread pool of ``workers`` threads (one torch thread each). A stream's messages are handled
one after the other and the next frame is read only when the previous one is processed, so a
client that sends faster than the server computes is slowed by TCP (backpressure). Limits:
``max_streams`` concurrent streams (more are refused with an ``error``), ``max_message_bytes``
per WebSocket message, ``max_stream_s`` of audio per stream, ``idle_timeout_s`` between
messages, ``max_upload_bytes`` per HTTP upload. When a client vanishes its handler returns
and its stream is dropped: no task or thread is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import WSMsgType, web

from asr.errors import AsrError
from asr.serve.protocol import ProtocolError, decode_pcm, error, parse_json, parse_start
from asr.streaming import Stream, StreamConfig

if TYPE_CHECKING:
    from asr.api import Model

STATIC = Path(__file__).parent / "static"


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """Options of the server (``asr serve`` flags)."""

    host: str = "127.0.0.1"  # loopback only unless asked otherwise
    port: int = 8000
    max_streams: int = 8  # concurrent WebSocket streams
    max_message_bytes: int = 1 << 20  # per WebSocket message
    max_stream_s: float = 3600.0  # audio per stream, seconds
    idle_timeout_s: float = 30.0  # longest wait for a client message
    max_upload_bytes: int = 100 << 20  # POST /transcribe body
    workers: int = 2  # threads running model and decoder steps
    stream: StreamConfig = dataclasses.field(default_factory=StreamConfig)


def _started_pool(workers: int) -> ThreadPoolExecutor:
    """A pool whose ``workers`` threads all run from now on (ThreadPoolExecutor starts them
    lazily, when tasks overlap), so the server's thread count is fixed from start-up and a
    thread that outlives a stream is a leak, not the pool filling up."""
    pool = ThreadPoolExecutor(workers, thread_name_prefix="asr-serve")
    barrier = threading.Barrier(workers)
    for wait in [pool.submit(barrier.wait, timeout=30.0) for _ in range(workers)]:
        wait.result()
    return pool


class Server:
    """The aiohttp application around one loaded model.

    Args:
        model: the loaded model (shared by all streams).
        config: limits and streaming options.
        decoding: default decoding options (``asr transcribe``'s; a client may override
            :data:`asr.serve.protocol.CLIENT_OPTIONS`).
    """

    def __init__(
        self, model: Model, config: ServeConfig | None = None, decoding: dict | None = None
    ) -> None:
        self.model = model
        self.cfg = config or ServeConfig()
        self.decoding = {k: v for k, v in (decoding or {}).items() if v is not None}
        self.pool = _started_pool(self.cfg.workers)
        self.active = 0
        self.served = 0
        self.app = web.Application(client_max_size=self.cfg.max_upload_bytes)
        self.app.add_routes(
            [
                web.get("/", self.index),
                web.get("/health", self.health),
                web.get("/ws", self.websocket),
                web.post("/transcribe", self.transcribe),
                web.static("/static", STATIC),
            ]
        )
        self.app.on_cleanup.append(self._cleanup)

    async def _cleanup(self, app: web.Application) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, lambda: fn(*args, **kwargs))

    async def index(self, request: web.Request) -> web.StreamResponse:
        """The captioning page."""
        return web.FileResponse(STATIC / "index.html")

    async def health(self, request: web.Request) -> web.Response:
        """Liveness and load: ``{"status": "ok", "streams": n, ...}``."""
        return web.json_response(
            {
                "status": "ok",
                "model": str(self.model.path),
                "sample_rate": self.model.sample_rate,
                "streams": self.active,
                "max_streams": self.cfg.max_streams,
                "served": self.served,
            }
        )

    async def transcribe(self, request: web.Request) -> web.Response:
        """Whole-file transcription: the request body is an audio file."""
        data = await request.read()
        if not data:
            return web.json_response(error("empty body: POST the audio file"), status=400)
        options = dict(self.decoding)
        try:
            for key, value in request.query.items():
                options.update(
                    parse_start(
                        {
                            "type": "start",
                            "sample_rate": 16000,
                            key: value if key == "decoder" else json.loads(value),
                        }
                    ).decoding
                )
        except (ProtocolError, ValueError) as err:
            return web.json_response(error(f"bad query: {err}"), status=400)
        with tempfile.NamedTemporaryFile(suffix=".audio") as tmp:
            tmp.write(data)
            tmp.flush()
            try:
                result = await self._run(self.model.transcribe, tmp.name, **options)
            except AsrError as err:
                message = str(err).replace(tmp.name, "<upload>")
                return web.json_response(error(message), status=400)
        from asr.inference.writers import transcript_json

        body = transcript_json(result)
        body.pop("path", None)
        return web.json_response(body)

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One recognition stream (see :mod:`asr.serve.protocol`)."""
        ws = web.WebSocketResponse(max_msg_size=self.cfg.max_message_bytes, heartbeat=20.0)
        await ws.prepare(request)
        if self.active >= self.cfg.max_streams:
            await ws.send_json(error(f"server busy: {self.cfg.max_streams} streams running"))
            await ws.close(code=1013)
            return ws
        self.active += 1
        try:
            await self._session(ws)
        except ProtocolError as err:
            await _send(ws, error(str(err)))
        except AsrError as err:
            await _send(ws, error(str(err)))
        except asyncio.TimeoutError:
            await _send(ws, error(f"idle for {self.cfg.idle_timeout_s:g} s"))
        finally:
            self.active -= 1
            self.served += 1
            await ws.close()
        return ws

    async def _receive(self, ws: web.WebSocketResponse) -> Any:
        return await asyncio.wait_for(ws.receive(), self.cfg.idle_timeout_s)

    async def _open(self, ws: web.WebSocketResponse) -> tuple[Stream, Any, Any] | None:
        msg = await self._receive(ws)
        if msg.type != WSMsgType.TEXT:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return None
            raise ProtocolError('the first message must be a JSON "start" message')
        start = parse_start(parse_json(msg.data))
        options = {**self.decoding, **start.decoding}
        model = self.model

        def build() -> Stream:
            decoder = model.decoder(model.decode_spec(**options))
            return Stream(model.network, model.tokenizer, decoder, self.cfg.stream)

        stream = await self._run(build)
        resampler = None
        if start.sample_rate != model.sample_rate:
            import soxr

            resampler = soxr.ResampleStream(start.sample_rate, model.sample_rate, 1, "float32")
        await ws.send_json({"type": "ready", "sample_rate": model.sample_rate, "decoding": options})
        return stream, start, resampler

    async def _session(self, ws: web.WebSocketResponse) -> None:
        opened = await self._open(ws)
        if opened is None:
            return
        stream, start, resampler = opened
        received = 0
        while True:
            msg = await self._receive(ws)
            if msg.type == WSMsgType.BINARY:
                samples = decode_pcm(msg.data, start.encoding)
                received += len(samples)
                if received > self.cfg.max_stream_s * start.sample_rate:
                    raise ProtocolError(f"stream longer than {self.cfg.max_stream_s:g} s")
                if resampler is not None:
                    samples = resampler.resample_chunk(samples)
                for result in await self._run(stream.accept, samples):
                    await ws.send_json(result.as_dict())
            elif msg.type == WSMsgType.TEXT:
                message = parse_json(msg.data)
                if message["type"] != "end":
                    raise ProtocolError(f'expected binary audio or "end", got {message["type"]!r}')
                if resampler is not None:
                    await self._run(
                        stream.accept, resampler.resample_chunk(np.zeros(0, np.float32), last=True)
                    )
                for result in await self._run(stream.finish):
                    await ws.send_json(result.as_dict())
                await ws.send_json(
                    {"type": "end", "duration": round(stream.samples / stream.sample_rate, 3)}
                )
                return
            elif msg.type == WSMsgType.ERROR:
                raise ProtocolError(f"bad frame: {ws.exception()}")
            else:  # the client closed or vanished
                return


async def _send(ws: web.WebSocketResponse, message: dict) -> None:
    """Send unless the connection is already gone."""
    if not ws.closed:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_json(message)
