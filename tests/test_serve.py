"""asr serve: the WebSocket protocol, limits, malformed frames, HTTP transcription, health."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import numpy as np
import pytest

import asr

aiohttp = pytest.importorskip("aiohttp")
from aiohttp.test_utils import TestServer  # noqa: E402

from asr.serve.app import ServeConfig, Server  # noqa: E402
from asr.streaming import StreamConfig  # noqa: E402

SAMPLE = Path(asr.__file__).parent / "pretrained" / "samples" / "synth-test.flac"


@pytest.fixture(scope="module")
def model() -> asr.Model:
    return asr.load_model("default", device="cpu")


def _pcm() -> tuple[np.ndarray, int]:
    import soundfile as sf

    x, rate = sf.read(SAMPLE, dtype="int16")
    return x, rate


def _serve(model: asr.Model, check, **limits) -> None:
    async def main() -> None:
        server = Server(model, ServeConfig(**limits), {"decoder": "greedy"})
        async with TestServer(server.app) as ts, aiohttp.ClientSession() as session:
            await check(server, ts, session)

    asyncio.run(main())


async def _stream(ws, x: np.ndarray, rate: int, block: int = 3200) -> list[dict]:
    await ws.send_json({"type": "start", "sample_rate": rate, "encoding": "pcm_s16le"})
    assert (await ws.receive_json())["type"] == "ready"
    for i in range(0, len(x), block):
        await ws.send_bytes(x[i : i + block].tobytes())
    await ws.send_json({"type": "end"})
    return [json.loads(m.data) async for m in ws]


def test_stream_health_and_transcribe(model: asr.Model) -> None:
    x, rate = _pcm()

    async def check(server, ts, session) -> None:
        health = await (await session.get(ts.make_url("/health"))).json()
        assert health["status"] == "ok" and health["sample_rate"] == 16000
        async with session.ws_connect(ts.make_url("/ws")) as ws:
            messages = await _stream(ws, x, rate)
        kinds = [m["type"] for m in messages]
        assert "partial" in kinds and kinds[-1] == "end" and kinds[-2] == "final"
        final = messages[-2]
        assert len(final["text"].split()) >= 8 and final["words"][0]["start"] >= 0
        body = SAMPLE.read_bytes()
        res = await session.post(ts.make_url("/transcribe?decoder=greedy"), data=body)
        assert res.status == 200 and len((await res.json())["text"].split()) >= 8
        res = await session.post(ts.make_url("/transcribe"), data=b"not audio")
        assert res.status == 400 and (await res.json())["type"] == "error"
        page = await session.get(ts.make_url("/"))
        assert "AudioWorklet" in await page.text() or "audioWorklet" in await page.text()

    _serve(model, check)


@pytest.mark.parametrize(
    ("first", "second", "expect"),
    [
        ("{bad", None, "malformed JSON"),
        (b"\x00\x01", None, "first message"),
        ({"type": "start", "sample_rate": 12}, None, "sample_rate"),
        ({"type": "start", "sample_rate": 16000, "evil": 1}, None, "unknown start fields"),
        ({"type": "start", "sample_rate": 16000}, b"\x00\x01\x02", "multiple of 2"),
        ({"type": "start", "sample_rate": 16000}, {"type": "dance"}, "expected binary"),
    ],
)
def test_malformed_messages_get_clean_errors(model, first, second, expect) -> None:
    async def send(ws, message) -> None:
        if isinstance(message, bytes):
            await ws.send_bytes(message)
        elif isinstance(message, str):
            await ws.send_str(message)
        else:
            await ws.send_json(message)

    async def check(server, ts, session) -> None:
        async with session.ws_connect(ts.make_url("/ws")) as ws:
            await send(ws, first)
            if second is not None:
                assert (await ws.receive_json())["type"] == "ready"
                await send(ws, second)
            msg = await ws.receive_json()
            assert msg["type"] == "error" and expect in msg["message"]
        await asyncio.sleep(0.05)
        assert server.active == 0

    _serve(model, check)


def test_limits_busy_idle_and_size(model: asr.Model) -> None:
    async def check(server, ts, session) -> None:
        async with session.ws_connect(ts.make_url("/ws")) as first:
            await first.send_json({"type": "start", "sample_rate": 16000})
            assert (await first.receive_json())["type"] == "ready"
            async with session.ws_connect(ts.make_url("/ws")) as second:
                msg = await second.receive_json()
                assert msg["type"] == "error" and "busy" in msg["message"]
            msg = await first.receive_json(timeout=5)  # idle timeout
            assert msg["type"] == "error" and "idle" in msg["message"]
        async with session.ws_connect(ts.make_url("/ws")) as ws:
            await ws.send_json({"type": "start", "sample_rate": 16000})
            await ws.receive_json()
            await ws.send_bytes(b"\x00" * 5000)  # over max_message_bytes
            msg = await ws.receive()
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) or (
                msg.type == aiohttp.WSMsgType.TEXT and "error" in msg.data
            )

    _serve(model, check, max_streams=1, idle_timeout_s=0.5, max_message_bytes=4096)


def test_pool_threads_start_with_the_server(model: asr.Model) -> None:
    before = {t for t in threading.enumerate() if t.name.startswith("asr-serve")}
    server = Server(model, ServeConfig(workers=3))
    try:
        started = {t for t in threading.enumerate() if t.name.startswith("asr-serve")} - before
        assert len(started) == 3  # all of them, before any stream (the pool starts them lazily)
    finally:
        server.pool.shutdown(wait=True)


def test_vanishing_clients_leak_nothing(model: asr.Model) -> None:
    x, rate = _pcm()

    async def check(server, ts, session) -> None:
        for _ in range(3):
            ws = await session.ws_connect(ts.make_url("/ws"))
            await ws.send_json({"type": "start", "sample_rate": rate})
            await ws.receive_json()
            await ws.send_bytes(x[:16000].tobytes())
            await ws.close()  # mid-stream
        for _ in range(50):
            if server.active == 0:
                break
            await asyncio.sleep(0.1)
        assert server.active == 0
        pool_threads = [t for t in threading.enumerate() if t.name.startswith("asr-serve")]
        assert len(pool_threads) <= server.cfg.workers
        tasks = [t for t in asyncio.all_tasks() if "websocket" in repr(t.get_coro())]
        assert not tasks
        async with session.ws_connect(ts.make_url("/ws")) as ws:  # still serving
            messages = await _stream(ws, x, rate)
        assert messages[-1]["type"] == "end"

    _serve(model, check)


def test_commands_are_registered() -> None:
    from asr.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["serve", "--decoder", "greedy"])
    assert args.host == "127.0.0.1"
    args = parser.parse_args(["stream", "-", "--rate", "8000"])
    assert args.input == "-" and args.rate == 8000


def test_stream_flags_reach_the_stream_config() -> None:
    from asr.cli import build_parser
    from asr.cli.stream import stream_config

    parser = build_parser()
    for command in (["serve"], ["stream", "-"]):
        config = stream_config(parser.parse_args(command))
        assert config == StreamConfig()  # the flags' defaults are the library's
        assert config.provisional and config.endpoint_silence_s == 0.35
        config = stream_config(parser.parse_args([*command, "--no-provisional"]))
        assert not config.provisional
