"""Voice-activity detection over audio of any length, and cut points for chunked decoding.

The detector streams: a file (or a segment of it) is read in blocks of ``VadConfig.block_s``
seconds with :func:`asr.io.audio.load_audio`, so memory holds one block of audio plus one float per
10 ms frame (1.4 MB per hour), never the whole recording.

Two backends decide which frames are speech:

* ``energy``: frame energy in dB above a robust local noise floor (a low percentile of the frame
  energies in a sliding window), with hysteresis (enter speech above ``threshold_db``, leave it
  below ``threshold_db - hysteresis_db``).
* ``webrtc``: Google's WebRTC GMM detector (``pip install webrtcvad-wheels``), on 16-bit PCM at
  8/16/32/48 kHz (other rates are resampled to 16 kHz block by block).

``auto`` (the default) picks ``webrtc`` when the package is importable, else ``energy``. The raw
decisions are smoothed the same way for both: pauses shorter than ``min_silence_s`` are bridged,
bursts shorter than ``min_speech_s`` dropped, and each region padded by ``pad_s``.

:func:`split_points` then chooses where to cut a long recording into chunks of at most
``max_chunk_s`` seconds: in the longest pause of the second half of each window, else in the
latest pause, else (no pause at all) at the lowest-energy frame of the second half.

Example::

    vad = detect_speech("talk.flac")                  # VadResult: speech regions, energies
    cuts = split_points(vad, max_chunk_s=30.0)        # [0.0, 27.31, 55.02, ..., duration]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Literal

import numpy as np

from asr.errors import AsrError
from asr.io.audio import AudioSource, audio_info, load_audio, resample

# Analysis frame (and hop) of both backends, milliseconds (webrtcvad takes 10, 20 or 30).
FRAME_MS = 10
# Energies are clamped at this level (digital silence would be -inf dB), dB re full scale.
_MIN_DB = -120.0
# Rates webrtcvad accepts natively; others are resampled to 16 kHz.
_WEBRTC_RATES = (8000, 16000, 32000, 48000)


class VadError(AsrError):
    """Voice-activity detection cannot run: bad options or a missing backend."""


@dataclasses.dataclass(frozen=True)
class VadConfig:
    """Options of :func:`detect_speech`."""

    backend: Literal["auto", "energy", "webrtc"] = "auto"  # auto: webrtc when installed
    threshold_db: float = 12.0  # energy: enter speech this far above the noise floor
    hysteresis_db: float = 6.0  # energy: leave speech below threshold_db - hysteresis_db
    noise_percentile: float = 10.0  # energy: the floor is this percentile of frame energies
    noise_window_s: float = 30.0  # energy: ... within a window this long around each frame
    min_floor_db: float = -70.0  # the floor is never below this (dBFS): digital silence
    webrtc_mode: int = 2  # webrtc aggressiveness, 0 (least) to 3 (most)
    min_speech_s: float = 0.1  # speech bursts shorter than this are dropped
    min_silence_s: float = 0.3  # pauses shorter than this are bridged
    pad_s: float = 0.1  # speech regions are widened by this much on both sides
    block_s: float = 30.0  # audio read per block, seconds

    def __post_init__(self) -> None:
        if self.backend not in ("auto", "energy", "webrtc"):
            raise ValueError(f"backend must be auto, energy or webrtc, got {self.backend!r}")
        if self.hysteresis_db < 0 or self.hysteresis_db > self.threshold_db:
            raise ValueError("hysteresis_db must be in [0, threshold_db]")
        if not 0 <= self.noise_percentile <= 100:
            raise ValueError(f"noise_percentile must be in [0, 100], got {self.noise_percentile}")
        if self.webrtc_mode not in (0, 1, 2, 3):
            raise ValueError(f"webrtc_mode must be 0, 1, 2 or 3, got {self.webrtc_mode}")
        for name in ("min_speech_s", "min_silence_s", "pad_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.block_s < 1.0 or self.noise_window_s <= 0:
            raise ValueError("block_s must be >= 1 and noise_window_s > 0")


@dataclasses.dataclass(frozen=True)
class Segment:
    """A time interval in seconds (relative to the start of what was analysed)."""

    start: float  # seconds
    end: float  # seconds, > start


@dataclasses.dataclass(frozen=True, eq=False)
class VadResult:
    """What :func:`detect_speech` found."""

    duration_s: float  # length of the analysed audio, seconds
    frame_s: float  # frame hop, seconds (FRAME_MS at the file's rate, to the sample)
    energies_db: np.ndarray  # (frames,) float32 frame energies, dB re full scale
    floor_db: np.ndarray  # (frames,) float32 noise floor, dB
    speech: tuple[Segment, ...]  # speech regions after smoothing and padding, in order
    backend: str  # "energy" or "webrtc"

    def loud(self, start_s: float, end_s: float, margin_db: float) -> bool:
        """Whether any frame in [start_s, end_s) is ``margin_db`` or more above the floor."""
        a = max(0, int(start_s / self.frame_s))
        b = max(a + 1, math.ceil(end_s / self.frame_s))
        return bool(np.any(self.energies_db[a:b] >= self.floor_db[a:b] + margin_db))


def webrtc_available() -> bool:
    """Whether the optional ``webrtcvad`` module can be imported."""
    try:
        import webrtcvad  # noqa: F401
    except ImportError:
        return False
    return True


def _resolve_backend(name: str) -> str:
    if name == "auto":
        return "webrtc" if webrtc_available() else "energy"
    if name == "webrtc" and not webrtc_available():
        raise VadError(
            "VAD backend 'webrtc' needs the webrtcvad package (pip install webrtcvad-wheels)"
        )
    return name


def iter_blocks(
    path: AudioSource, block_samples: int, offset_s: float = 0.0, duration_s: float | None = None
) -> Iterator[tuple[np.ndarray, int]]:
    """Read ``path`` (or its segment) in consecutive blocks of ``block_samples`` samples.

    Yields:
        ``(samples (block_samples,) float32 mono, rate)``; the last block may be shorter.
    """
    info = audio_info(path)
    rate = info.sample_rate
    first = round(offset_s * rate)
    end = info.num_samples
    if duration_s is not None:
        end = min(end, first + round(duration_s * rate))
    pos = first
    while pos < end:
        count = min(block_samples, end - pos)
        samples, _ = load_audio(path, offset_s=pos / rate, duration_s=count / rate)
        yield samples[:count], rate
        pos += count


def frame_energies_db(samples: np.ndarray, frame_samples: int) -> np.ndarray:
    """Mean-square energy in dB of consecutive frames; a short last frame is kept.

    Args:
        samples: (samples,) float audio in [-1, 1].
        frame_samples: frame length = hop, samples.
    Returns:
        (ceil(samples / frame_samples),) float32, clamped below at -120 dB.
    """
    n = len(samples)
    frames = -(-n // frame_samples)
    padded = np.zeros(frames * frame_samples, dtype=np.float64)
    padded[:n] = samples
    power = (padded.reshape(frames, frame_samples) ** 2).sum(axis=1)
    counts = np.full(frames, frame_samples, dtype=np.float64)
    if frames and n % frame_samples:
        counts[-1] = n % frame_samples
    db = 10.0 * np.log10(np.maximum(power / counts, 10 ** (_MIN_DB / 10)))
    return db.astype(np.float32)


class _WebrtcFrames:
    """WebRTC speech flags for consecutive blocks of one file."""

    def __init__(self, mode: int, rate: int) -> None:
        import webrtcvad

        self.vad = webrtcvad.Vad(mode)
        self.file_rate = rate
        self.rate = rate if rate in _WEBRTC_RATES else 16000
        self.frame = self.rate * FRAME_MS // 1000

    def flags(self, samples: np.ndarray, frames: int) -> np.ndarray:
        """(frames,) bool: speech per 10 ms frame of ``samples`` (at the file's rate)."""
        if self.rate != self.file_rate:
            samples = resample(samples, self.file_rate, self.rate)
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
        # Resampled, a block can hold a few samples more than ``frames`` 10 ms frames at the
        # WebRTC rate (the file's frame is rounded to whole samples, e.g. 111 at 11070 Hz):
        # drop them, or pad a short last frame with zeros.
        pcm = pcm[: frames * self.frame]
        pcm = np.concatenate([pcm, np.zeros(frames * self.frame - len(pcm), dtype="<i2")])
        out = np.zeros(frames, dtype=bool)
        for i in range(frames):
            chunk = pcm[i * self.frame : (i + 1) * self.frame]
            if len(chunk) == self.frame:
                out[i] = self.vad.is_speech(chunk.tobytes(), self.rate)
        return out


def noise_floor_db(
    energies_db: np.ndarray, frame_s: float, window_s: float, percentile: float, min_db: float
) -> np.ndarray:
    """Robust local noise floor: ``percentile`` of the energies within ``window_s`` around
    each frame (computed once a second and interpolated), never below ``min_db``.

    Args:
        energies_db: (frames,) frame energies.
    Returns:
        (frames,) float32.
    """
    n = len(energies_db)
    step = max(1, round(1.0 / frame_s))
    half = max(1, round(window_s / frame_s / 2))
    centres = np.arange(0, n, step)
    if len(centres) == 0:
        return np.zeros(0, dtype=np.float32)
    values = [np.percentile(energies_db[max(0, c - half) : c + half], percentile) for c in centres]
    floor = np.interp(np.arange(n), centres, values)
    return np.maximum(floor, min_db).astype(np.float32)


def hysteresis(above_on: np.ndarray, above_off: np.ndarray) -> np.ndarray:
    """Frames in speech: enter where ``above_on``, stay while ``above_off``; (frames,) bool."""
    out = np.zeros(len(above_on), dtype=bool)
    active = False
    for i in range(len(above_on)):
        active = bool(above_on[i]) or (active and bool(above_off[i]))
        out[i] = active
    return out


def flags_to_regions(flags: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True in a (frames,) bool array as ``(start, end)`` frame pairs, end exclusive."""
    padded = np.concatenate([[False], flags.astype(bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def smooth_regions(
    regions: list[tuple[int, int]], frames: int, min_silence: int, min_speech: int, pad: int
) -> list[tuple[int, int]]:
    """Bridge pauses shorter than ``min_silence``, drop bursts shorter than ``min_speech``, pad
    by ``pad`` frames each side (merging overlaps, clamped to [0, frames]). All in frames."""
    bridged: list[tuple[int, int]] = []
    for a, b in regions:
        if bridged and a - bridged[-1][1] < min_silence:
            bridged[-1] = (bridged[-1][0], b)
        else:
            bridged.append((a, b))
    padded: list[tuple[int, int]] = []
    for a, b in bridged:
        if b - a < min_speech:
            continue
        a, b = max(0, a - pad), min(frames, b + pad)
        if padded and a <= padded[-1][1]:
            padded[-1] = (padded[-1][0], b)
        else:
            padded.append((a, b))
    return padded


def detect_speech(
    path: AudioSource,
    cfg: VadConfig | None = None,
    offset_s: float = 0.0,
    duration_s: float | None = None,
) -> VadResult:
    """Find the speech regions of an audio file (or of its segment), reading it in blocks.

    Args:
        path: audio file in any format :func:`asr.io.audio.load_audio` reads (or a
            :class:`asr.io.audio.Waveform`).
        cfg: options (default :class:`VadConfig`).
        offset_s, duration_s: analyse only this segment (default the whole file); times in the
            result are relative to ``offset_s``.
    Raises:
        AudioError: the file cannot be read. VadError: ``webrtc`` requested but not installed.
    """
    cfg = cfg or VadConfig()
    backend = _resolve_backend(cfg.backend)
    rate = audio_info(path).sample_rate
    frame_samples = max(1, round(rate * FRAME_MS / 1000))
    block = frame_samples * max(1, round(cfg.block_s * rate / frame_samples))
    webrtc = _WebrtcFrames(cfg.webrtc_mode, rate) if backend == "webrtc" else None
    energies, flags, total = [], [], 0
    for samples, _ in iter_blocks(path, block, offset_s, duration_s):
        energies.append(frame_energies_db(samples, frame_samples))
        if webrtc is not None:
            flags.append(webrtc.flags(samples, len(energies[-1])))
        total += len(samples)
    energy = np.concatenate(energies) if energies else np.zeros(0, dtype=np.float32)
    frame_s = frame_samples / rate
    floor = noise_floor_db(
        energy, frame_s, cfg.noise_window_s, cfg.noise_percentile, cfg.min_floor_db
    )
    if webrtc is not None:
        speech = np.concatenate(flags)
    else:
        on = energy >= floor + cfg.threshold_db
        speech = hysteresis(on, energy >= floor + cfg.threshold_db - cfg.hysteresis_db)
    regions = smooth_regions(
        flags_to_regions(speech),
        len(energy),
        min_silence=round(cfg.min_silence_s / frame_s),
        min_speech=round(cfg.min_speech_s / frame_s),
        pad=round(cfg.pad_s / frame_s),
    )
    duration = total / rate
    segments = tuple(Segment(a * frame_s, min(b * frame_s, duration)) for a, b in regions)
    return VadResult(duration, frame_s, energy, floor, segments, backend)


def pauses(vad: VadResult) -> list[Segment]:
    """The silences: before the first speech region, between regions, after the last one."""
    edges = [0.0] + [t for seg in vad.speech for t in (seg.start, seg.end)] + [vad.duration_s]
    return [Segment(a, b) for a, b in zip(edges[::2], edges[1::2]) if b > a]


def _forced_cut(vad: VadResult, lo_s: float, hi_s: float) -> float:
    """Start time of the lowest-energy frame starting in [lo_s, hi_s] (no pause to cut in)."""
    lo = math.ceil(lo_s / vad.frame_s - 1e-9)
    hi = max(lo, math.floor(hi_s / vad.frame_s + 1e-9))
    window = vad.energies_db[lo : hi + 1]
    if len(window) == 0:
        return hi_s
    return min(hi_s, (lo + int(np.argmin(window))) * vad.frame_s)


def _next_cut(vad: VadResult, gaps: list[Segment], pos: float, max_chunk_s: float) -> float:
    """Where the chunk starting at ``pos`` should end (at most ``pos + max_chunk_s``)."""
    limit = pos + max_chunk_s
    half = pos + max_chunk_s / 2
    min_len = min(1.0, max_chunk_s / 4)
    candidates = []  # (pause length, cut time)
    for gap in gaps:
        if gap.start >= limit:
            break
        cut = min((max(gap.start, pos) + gap.end) / 2, limit)
        if cut > pos + min_len:
            candidates.append((min(gap.end, limit) - max(gap.start, pos), cut))
    late = [c for c in candidates if c[1] >= half]
    if late:
        return max(late)[1]
    if candidates:
        return max(c[1] for c in candidates)
    return _forced_cut(vad, half, limit)


def split_points(vad: VadResult, max_chunk_s: float) -> list[float]:
    """Cut times (seconds) splitting the analysed audio into chunks of at most ``max_chunk_s``.

    Each cut lies in the middle of a pause where one exists in the window (the longest pause of
    the window's second half is preferred, so chunks are long and cut at sentence breaks);
    without any pause, the cut is forced at the lowest-energy frame of the second half.

    Returns:
        ``[0.0, c1, ..., vad.duration_s]``, increasing; consecutive points are at most
        ``max_chunk_s`` apart.
    """
    if max_chunk_s <= 0:
        raise VadError(f"max_chunk_s must be > 0, got {max_chunk_s}")
    gaps = pauses(vad)
    cuts = [0.0]
    while vad.duration_s - cuts[-1] > max_chunk_s:
        pos = cuts[-1]
        gaps = [g for g in gaps if g.end > pos]
        cut = _next_cut(vad, gaps, pos, max_chunk_s)
        cuts.append(cut if cut > pos else pos + max_chunk_s)
    cuts.append(vad.duration_s)
    return cuts
