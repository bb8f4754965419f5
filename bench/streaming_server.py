"""The server side of the streaming bench (:mod:`bench.streaming`): ``asr serve`` on loopback,
real-time WebSocket clients, capacity rounds and the bounded load test."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import asr
from bench.report import markdown_table
from bench.streaming_data import (
    BLOCK_S,
    CONFIGS,
    DECODINGS,
    EXPECTED_ERRORS,
    GOAL_FINAL_S,
    GOAL_PARTIAL_S,
    KEEP_UP_LAG_S,
    PAD_S,
    RATE,
    ROOT,
    SILENCE_S,
    Latency,
    Timeline,
    Utt,
    clip,
    pair,
    quantiles,
    simulate,
    verdict,
)


class Loopback:
    """``asr serve`` in a subprocess on a free 127.0.0.1 port, its /proc numbers, and clients."""

    def __init__(self, session: Any, idle_timeout_s: float, max_streams: int, log: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "asr", "serve", "--port", str(port)]
        cmd += ["--max-streams", str(max_streams), "--idle-timeout", str(idle_timeout_s)]
        self.session, self.log = session, log.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"

    def _status(self, key: str) -> int:
        lines = Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
        return next(int(line.split()[1]) for line in lines if line.startswith(key + ":"))

    def rss_mb(self) -> float:
        return self._status("VmRSS") / 1024

    def threads(self) -> int:
        return self._status("Threads")

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def streams(self) -> int:
        async with self.session.get(self.url + "/health") as res:
            return int((await res.json())["streams"])

    async def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                await self.streams()
                return
            except OSError:
                await asyncio.sleep(0.2)
        raise RuntimeError(f"asr serve did not start: {Path(self.log.name).read_text()[-2000:]}")

    async def wait_idle(self, timeout_s: float = 15.0) -> int:
        """Active streams, once they are 0 or ``timeout_s`` passed."""
        deadline = time.monotonic() + timeout_s
        while (active := await self.streams()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return active

    def stop(self) -> None:
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self.proc.kill()  # nothing when it has exited
        self.proc.wait()
        self.log.close()

    async def stream(
        self, pcm: np.ndarray, dec: dict, speed: float = 1.0, delay_s: float = 0.0
    ) -> Timeline:
        """Stream ``pcm`` over /ws at ``speed`` x real time; a :class:`Timeline`."""
        await asyncio.sleep(delay_s)
        block, tl = round(BLOCK_S * RATE), Timeline([], len(pcm) / RATE)
        async with self.session.ws_connect(self.url + "/ws") as ws:
            await ws.send_json({"type": "start", "sample_rate": RATE, **dec})
            if (ready := await ws.receive_json(timeout=60))["type"] != "ready":
                raise RuntimeError(f"server answered {ready}")
            t0 = time.monotonic()
            reader = asyncio.create_task(_collect(ws, lambda: (time.monotonic() - t0) * speed, tl))
            for pos in range(0, len(pcm), block):
                piece = pcm[pos : pos + block]
                await asyncio.sleep(
                    max(0.0, (pos + len(piece)) / RATE / speed + t0 - time.monotonic())
                )
                if reader.done():
                    break
                await ws.send_bytes(piece.astype("<i2").tobytes())
            if not reader.done():
                await ws.send_json({"type": "end"})
            await asyncio.wait_for(reader, 120)
        return tl

    async def bad_client(self, pcm: np.ndarray, kind: str, idle_s: float, speed: float) -> bool:
        """Misbehave after 1 s of audio; True when the server answered as documented."""
        async with self.session.ws_connect(self.url + "/ws") as ws:
            await ws.send_json({"type": "start", "sample_rate": RATE, "decoder": "greedy"})
            await ws.receive_json(timeout=60)
            for pos in range(0, RATE, round(BLOCK_S * RATE)):
                await ws.send_bytes(pcm[pos : pos + round(BLOCK_S * RATE)].tobytes())
                await asyncio.sleep(BLOCK_S / speed)
            if kind == "disconnect":  # the server's clean-up is checked afterwards
                await ws.close()
                return True
            if kind != "stall":
                await (ws.send_bytes(b"\0" * 3) if kind == "odd frame" else ws.send_str("{bad"))
            while (msg := await ws.receive(timeout=idle_s + 10)).type.name == "TEXT":
                if (data := json.loads(msg.data))["type"] == "error":  # partials may come first
                    return EXPECTED_ERRORS[kind] in data["message"]
            return False


async def _collect(ws: Any, clock: Callable[[], float], tl: Timeline) -> None:
    async for msg in ws:
        if msg.type.name != "TEXT":
            break
        data, now = json.loads(msg.data), clock()
        if data["type"] == "error":
            raise RuntimeError(data["message"])
        if data["type"] == "end":
            tl.done_s = now
            return
        tl.events.append((now, data))


async def _sample_rss(srv: Loopback, peak: list[float]) -> None:
    while True:
        peak[0] = max(peak[0], srv.rss_mb())
        await asyncio.sleep(0.1)


async def capacity_round(srv: Loopback, utts: Sequence[Utt], dec: dict, n: int, args: Any) -> list:
    """``n`` concurrent real-time streams (``args.capacity_s`` s each, starts spread)."""
    await srv.wait_idle()
    rss0, cpu0, wall0 = srv.rss_mb(), srv.cpu_s(), time.monotonic()
    peak, chosen = [rss0], [utts[i % len(utts)] for i in range(n)]
    sampler = asyncio.create_task(_sample_rss(srv, peak))
    pcms, speed = [clip(u, args.capacity_s) for u in chosen], args.speed
    jobs = [srv.stream(x, dec, speed, i * BLOCK_S / n / speed) for i, x in enumerate(pcms)]
    tls = await asyncio.gather(*jobs)
    sampler.cancel()
    cpu, wall, lat = srv.cpu_s() - cpu0, time.monotonic() - wall0, Latency()
    for tl, u in zip(tls, chosen):
        lat.add(tl, u.onset_s, SILENCE_S)
    q = quantiles(lat.lag) or (0.0, 0.0)
    goals = verdict(lat.first_partial, GOAL_PARTIAL_S) == verdict(lat.final, GOAL_FINAL_S) == "yes"
    lag = f"{q[0]:.2f} / {q[1]:.2f} / {max(lat.lag, default=0.0):.2f}"
    row = [n, lag, f"{max(tl.done_s - tl.audio_s for tl in tls):.2f}", pair(lat.first_partial)]
    row += [pair(lat.final), f"{cpu / wall:.2f}", f"{cpu / sum(tl.audio_s for tl in tls):.3f}"]
    row += [f"{peak[0] - rss0:.0f} ({(peak[0] - rss0) / n:.1f})"]
    return [*row, "yes" if q[1] <= KEEP_UP_LAG_S else "no", "yes" if goals else "no"]


async def capacity(srv: Loopback, utts: Sequence[Utt], args: Any) -> str:
    """Rounds of growing N per decoder until results lag; the table."""
    rows, best = [], []
    for name, dec in DECODINGS.items():
        for n in sorted({n for n in (1, 2, 4, 8, *range(12, 65, 4)) if n <= args.max_streams}):
            rows.append([name, *await capacity_round(srv, utts, dec, n, args)])
            print(rows[-1], flush=True)
            if rows[-1][-2] == "no":
                break
        kept = [r[1] for r in rows if r[0] == name and r[-2] == "yes"]
        best.append(f"{name}: {max(kept, default=0)} (tried up to {rows[-1][1]})")
    header = ["decoder", "streams", "lag med / p90 / max s", "drain s", "first partial s"]
    header += ["final s", "server cores", "CPU s / audio s", "RSS above idle MB (per stream)"]
    table = markdown_table([*header, "keeps up", "meets goals"], rows)
    return f"{table}\n\nLargest N that keeps up: {'; '.join(best)}."


async def load_test(srv: Loopback, model: asr.Model, utts: Sequence[Utt], args: Any) -> dict:
    """4 good clients (greedy and beam + LSTM in turn) and 4 misbehaving ones, all at once."""
    decs = list(DECODINGS.values())
    good = [(clip(utts[i % len(utts)], args.load_s), decs[i % 2]) for i in range(4)]
    wants = [simulate(model.stream(CONFIGS["default"], **d), pcm).text() for pcm, d in good]
    await srv.wait_idle()
    threads0, rss0 = srv.threads(), srv.rss_mb()
    jobs = [srv.stream(pcm, d, args.speed) for pcm, d in good]
    for k, kind in enumerate(["disconnect", *EXPECTED_ERRORS]):
        jobs.append(srv.bad_client(utts[k % len(utts)].pcm, kind, args.idle_timeout, args.speed))
    peak, start = [rss0], time.monotonic()
    sampler = asyncio.create_task(_sample_rss(srv, peak))
    bound = args.load_s / args.speed + PAD_S + args.idle_timeout + 30
    out = await asyncio.wait_for(asyncio.gather(*jobs, return_exceptions=True), bound)
    elapsed, active = time.monotonic() - start, await srv.wait_idle()
    sampler.cancel()
    await asyncio.sleep(0.5)
    alive = await srv.stream(clip(utts[0], 1.0), DECODINGS["greedy"], 4.0)
    res = {"elapsed": elapsed, "active": active, "alive": alive.done_s > 0, "bad": len(out) - 4}
    res["good"] = sum(isinstance(o, Timeline) and o.done_s > 0 for o in out[:4])
    res["same"] = sum(isinstance(o, Timeline) and o.text() == w for o, w in zip(out[:4], wants))
    res["bad_ok"], res["distinct"] = sum(o is True for o in out[4:]), len(set(wants))
    res["errors"] = [repr(o) for o in out if isinstance(o, BaseException)]
    res["threads"], res["rss"] = (threads0, srv.threads()), (rss0, peak[0], srv.rss_mb())
    return res


def load_passed(res: dict) -> bool:
    good = res["good"] == res["same"] == 4 and res["bad_ok"] == res["bad"] and res["alive"]
    return good and res["active"] == 0 and res["threads"][1] <= res["threads"][0]


def render_load(res: dict) -> str:
    (t0, t1), (r0, rp, r1) = res["threads"], res["rss"]
    text = (
        f"8 clients at once, done in {res['elapsed']:.1f} s. 4 well-behaved (greedy and beam + "
        f"LSTM in turn): {res['good']}/4 got their finals and `end`; {res['same']}/4 finals equal "
        f"what the same audio gives alone in-process ({res['distinct']} distinct texts). 1 "
        "disconnects mid-stream, 1 sends an odd-length frame, 1 bad JSON, 1 stalls: "
        f"{res['bad_ok']}/{res['bad']} answered as documented. After: {res['active']} active "
        f"streams, server threads {t0} -> {t1}, RSS {r0:.0f} MB -> peak {rp:.0f} -> {r1:.0f} MB; "
        f"a new stream afterwards {'served' if res['alive'] else 'FAILED'}. "
        f"Verdict: {'PASS' if load_passed(res) else 'FAIL'}."
    )
    return text + ("".join(f" Client exception: {e}." for e in res["errors"]))


async def measure_server(model: asr.Model, utts: Sequence[Utt], args: Any, log: Path) -> dict:
    """Latency, capacity and the load test over one ``asr serve`` subprocess."""
    import aiohttp

    out: dict[str, Any] = {"latency": {}, "capacity": ""}
    async with aiohttp.ClientSession() as session:
        srv = Loopback(session, args.idle_timeout, max(args.max_streams, 8) + 8, log)
        try:
            await srv.wait_ready()
            out["idle_rss"] = srv.rss_mb()
            short = [u for u in utts if u.speech_s <= args.server_max_s][: args.server_utts]
            for name, dec in DECODINGS.items():
                lat, texts = Latency(), []
                for u in short:
                    texts.append((tl := await srv.stream(u.pcm, dec, args.speed)).text())
                    lat.add(tl, u.onset_s, SILENCE_S)
                out["latency"][name] = (lat, dict(zip((u.utt_id for u in short), texts)))
            if args.max_streams > 0:
                out["capacity"] = await capacity(srv, utts, args)
            out["load"] = await load_test(srv, model, utts, args)
        finally:
            srv.stop()
    return out
