"""The captioning page in headless Chromium: its fake microphone plays a WAV of a bundled sample
and captions must appear. Skips where Chromium or aiohttp is absent."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import asr

aiohttp = pytest.importorskip("aiohttp")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

SAMPLE = Path(asr.__file__).parent / "pretrained" / "samples" / "synth-test.flac"
TIMEOUT_S = 40.0  # from the click on "Start" to the first matching final line
# Character similarity of a final line to the offline greedy transcript of the same audio: the
# stream differs a little (chunked encoder, browser resampling); another sentence scores ~0.2.
MIN_SIMILARITY = 0.6


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


@contextlib.contextmanager
def _server(model: asr.Model) -> Iterator[int]:
    """``asr serve`` (greedy decoding) on a free loopback port in a thread; yields the port."""
    from aiohttp import web

    from asr.serve.app import Server

    loop = asyncio.new_event_loop()
    started = threading.Event()
    ready: dict = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(Server(model, decoding={"decoder": "greedy"}).app)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            ready["port"] = runner.addresses[0][1]
            started.set()
            loop.run_forever()
        finally:
            started.set()
            loop.run_until_complete(runner.cleanup())
            loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        started.wait(30)
        assert "port" in ready, "the server did not start"
        yield ready["port"]
    finally:
        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=15)


@contextlib.contextmanager
def _chromium(url: str, wav: Path) -> Iterator[int]:
    """Headless Chromium on ``url`` with ``wav`` as its microphone; yields the DevTools port.
    The browser (its whole process group) and its profile are removed on exit."""
    profile = Path(tempfile.mkdtemp(prefix="asr-chromium-"))
    args = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--autoplay-policy=no-user-gesture-required",
        f"--user-data-dir={profile}", "--remote-debugging-port=0", url,
    ]  # fmt: skip
    browser = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(300):
            if port_file.is_file() and port_file.read_text().strip():
                break
            assert browser.poll() is None, f"chromium exited with {browser.returncode}"
            time.sleep(0.1)
        else:
            raise AssertionError("chromium did not open its DevTools port")
        yield int(port_file.read_text().split()[0])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(browser.pid, signal.SIGTERM)
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(browser.pid, signal.SIGKILL)
            browser.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # renderers left behind, if any
            os.killpg(browser.pid, signal.SIGKILL)
        shutil.rmtree(profile, ignore_errors=True)


async def _captions(debug_port: int, url: str, reference: str, timeout_s: float) -> dict:
    """Wait for the page at ``url`` to load, click "Start", and poll the page until a final
    line close to ``reference`` appears or ``timeout_s`` pass; returns the page's state."""
    async with aiohttp.ClientSession() as session:
        targets = await (await session.get(f"http://127.0.0.1:{debug_port}/json")).json()
        page = next(t for t in targets if t["type"] == "page" and t["url"].startswith(url))
        async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            ids = iter(range(1, 10**6))

            async def evaluate(expr: str) -> object:
                i = next(ids)
                params = {"expression": expr, "returnByValue": True, "awaitPromise": True}
                await ws.send_json({"id": i, "method": "Runtime.evaluate", "params": params})
                while True:
                    msg = await ws.receive(timeout=30)
                    assert msg.type == aiohttp.WSMsgType.TEXT, f"DevTools closed: {msg}"
                    reply = json.loads(msg.data)
                    if reply.get("id") == i:
                        result = reply.get("result", {})
                        if "exceptionDetails" in result:
                            return None
                        return result.get("result", {}).get("value")

            state_js = (
                "JSON.stringify({href: location.href, ready: document.readyState,"
                " status: document.getElementById('status')?.textContent ?? null,"
                " finals: [...document.querySelectorAll('#lines .final')]"
                ".map((e) => e.textContent),"
                " partial: document.getElementById('partial')?.textContent ?? null})"
            )

            async def state() -> dict:
                return json.loads(str(await evaluate(state_js) or "{}"))

            # The target may still be on about:blank (readyState "complete") before it navigates.
            loaded = time.monotonic() + 20
            while not (
                (s := await state()).get("href", "").startswith(url)
                and s.get("ready") == "complete"
                and s.get("status") == "idle"
            ):
                assert time.monotonic() < loaded, f"the page did not load: {s}"
                await asyncio.sleep(0.1)
            await evaluate("document.getElementById('start').click()")
            deadline = time.monotonic() + timeout_s
            while True:
                s = await state()
                finals = s.get("finals") or []
                done = any(_similarity(f, reference) >= MIN_SIMILARITY for f in finals)
                if done or str(s.get("status")).startswith("error") or time.monotonic() > deadline:
                    return s
                await asyncio.sleep(0.25)


def test_page_captions_the_fake_microphone(tmp_path: Path) -> None:
    import soundfile as sf

    from asr.io.audio import load_audio, resample

    model = asr.load_model("default", device="cpu")
    reference = model.transcribe(SAMPLE, decoder="greedy").text
    assert len(reference.split()) >= 4
    samples, rate = load_audio(SAMPLE)
    # Chromium loops the file from when the microphone opens; the page connects its worklet a
    # little later, so lead with silence to let the first utterance arrive whole.
    silence = np.zeros(16000, np.float32)
    audio = np.concatenate([silence, resample(samples, rate, 16000), silence])
    wav = tmp_path / "mic.wav"
    sf.write(wav, audio, 16000, subtype="PCM_16")
    with _server(model) as port:
        url = f"http://127.0.0.1:{port}/"
        with _chromium(url, wav) as debug_port:
            page = asyncio.run(_captions(debug_port, url, reference, TIMEOUT_S))
    assert page.get("status") == "listening", page
    finals = page.get("finals") or []
    best = max(finals, key=lambda f: _similarity(f, reference), default="")
    assert _similarity(best, reference) >= MIN_SIMILARITY, (
        f"no final caption like {reference!r}: {page}"
    )
    assert len(best.split()) >= 4, best
