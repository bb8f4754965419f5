"""Compute front-end features for many files and store them: one safetensors file per utterance.

Inputs (:func:`collect_jobs`) are audio files, folders (searched recursively for audio files)
and JSONL manifests (``.jsonl``/``.json``; segments with ``offset``/``duration`` are cut out).
:func:`extract_features` writes, into an output folder:

- ``<utt_id>.safetensors``: tensor ``features`` of shape ``(frames, num_features)`` float32, with
  metadata ``utt_id``, ``audio_filepath``, ``offset``, ``duration``, ``sample_rate``;
- ``index.jsonl``: one line per stored utterance (``utt_id``, ``features_filepath`` relative to the
  folder, ``num_frames``, ``num_features``, ``audio_filepath``, ``offset``, ``duration`` and, from
  manifests, ``text``/``speaker``);
- ``frontend.yaml``: the front-end config used.

The output folder must be new or empty, or (with ``overwrite``) a features folder written
before (only those files in it); anything else is refused before any work
(:func:`check_features_out`). A failing utterance (unreadable audio, too short for one frame,
duplicate id) is recorded and skipped; the others go on. Every file is written atomically. A
file that cannot be written (a full disk) stops the run with one :class:`FeatureError` line
naming it; the feature files written before are kept (the index is then not written).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from asr.data.inputs import MANIFEST_SUFFIXES, expand_input
from asr.errors import AsrError
from asr.io.atomic import atomic_open, atomic_path
from asr.io.audio import audio_info, load_audio
from asr.io.outputs import OVERWRITE_FLAG, check_writable

# A manifest duration within this of the file's length (offset 0) means "the whole file".
WHOLE_FILE_TOLERANCE_S = 0.02
INDEX_NAME = "index.jsonl"
CONFIG_NAME = "frontend.yaml"
FAILURES_NAME = "failures.txt"  # written by ``asr features`` when inputs failed
FEATURES_KEY = "features"

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


class FeatureError(AsrError):
    """An input that cannot be turned into features (the message names it and the reason)."""


@dataclass(frozen=True)
class Job:
    """One utterance to compute."""

    utt_id: str  # output name (made file-system safe) and index id
    audio_filepath: str  # audio file
    offset: float = 0.0  # segment start, seconds
    duration: float | None = None  # segment length, seconds; None: to the end of the file
    text: str | None = None  # transcript (manifest inputs)
    speaker: str | None = None  # speaker id (manifest inputs)
    source: str = ""  # where the job came from, for error messages ("m.jsonl:3" or the path)


@dataclass(frozen=True)
class Failure:
    """An input or utterance that failed."""

    source: str  # file, folder, or manifest:line
    message: str  # one-line reason


@dataclass(frozen=True)
class ExtractResult:
    """What :func:`extract_features` did."""

    written: int  # utterances stored
    failures: tuple[Failure, ...]  # inputs and utterances that failed
    index_path: Path  # the index.jsonl written


def safe_name(utt_id: str) -> str:
    """``utt_id`` as a file name: characters other than ``A-Za-z0-9._@+-`` become ``_``."""
    name = _UNSAFE.sub("_", utt_id).lstrip(".")
    return name or "_"


def collect_jobs(inputs: Iterable[str | Path]) -> tuple[list[Job], list[Failure]]:
    """Expand audio files, folders and manifests into jobs; unusable inputs become failures.

    Inputs are expanded by :func:`asr.data.inputs.expand_input` (folders searched recursively
    for its audio suffixes); ids are :func:`asr.data.manifest.utterance_id` (a manifest's
    ``utt_id``, else the audio stem, ``@offset`` added for segments). A missing input is a
    failure here, before any work.
    """
    jobs: list[Job] = []
    failures: list[Failure] = []
    for entry in inputs:
        path = Path(entry)
        try:
            if not path.exists():
                raise FeatureError(f"{path}: no such file or folder")
            found = expand_input(path)
        except AsrError as err:
            failures.append(Failure(str(path), str(err)))
            continue
        manifest = not path.is_dir() and path.suffix.lower() in MANIFEST_SUFFIXES
        for number, it in enumerate(found, start=1):
            source = f"{path}:{number}" if manifest else it.path
            jobs.append(
                Job(it.name, it.path, it.offset_s, it.duration_s, it.text, it.speaker, source)
            )
    return jobs, failures


def _load(job: Job, sample_rate: int) -> np.ndarray:
    """The job's samples at ``sample_rate``: the whole file, or the segment it names."""
    offset, duration = job.offset, job.duration
    if offset == 0 and duration is not None:
        whole = audio_info(job.audio_filepath).duration_s
        if abs(whole - duration) <= WHOLE_FILE_TOLERANCE_S:
            duration = None
    samples, _ = load_audio(job.audio_filepath, sample_rate, offset_s=offset, duration_s=duration)
    return samples


def compute_job(frontend: torch.nn.Module, job: Job) -> torch.Tensor:
    """Features ``(frames, num_features)`` float32 of one job with ``frontend`` (eval mode)."""
    samples = _load(job, frontend.cfg.sample_rate_hz)
    wave = torch.from_numpy(samples)[None, :]
    lengths = torch.tensor([wave.shape[1]])
    if int(frontend.num_frames(lengths)[0]) <= 0:  # checked first: an empty batch is no input
        raise FeatureError(
            f"{job.audio_filepath}: too short for one frame ({len(samples)} samples)"
        )
    with torch.inference_mode():
        feats, frames = frontend(wave, lengths)
    return feats[0, : int(frames[0])].float().contiguous()


def save_features(path: str | Path, features: torch.Tensor, metadata: dict[str, str]) -> None:
    """Write ``features`` ``(frames, num_features)`` to a safetensors file, atomically."""
    with atomic_path(path) as tmp:
        save_file({FEATURES_KEY: features}, str(tmp), metadata=metadata)


def load_features(path: str | Path) -> torch.Tensor:
    """Read the ``(frames, num_features)`` features stored by :func:`save_features`."""
    try:
        tensors = load_file(str(path))
    except FileNotFoundError:
        raise FeatureError(f"{path}: no such features file") from None
    except Exception as err:  # safetensors raises its own SafetensorError for bad files
        raise FeatureError(f"{path}: not a safetensors features file ({err})") from None
    if FEATURES_KEY not in tensors:
        raise FeatureError(f"{path}: no '{FEATURES_KEY}' tensor (has {sorted(tensors)})")
    return tensors[FEATURES_KEY]


def _index_entry(job: Job, name: str, feats: torch.Tensor) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "utt_id": job.utt_id,
        "features_filepath": name,
        "num_frames": int(feats.shape[0]),
        "num_features": int(feats.shape[1]),
        "audio_filepath": job.audio_filepath,
        "offset": job.offset,
        "duration": job.duration,
    }
    if job.text is not None:
        entry["text"] = job.text
    if job.speaker is not None:
        entry["speaker"] = job.speaker
    return entry


def check_features_out(out_dir: str | Path, overwrite: bool = False) -> Path:
    """Check, before any work, that features may be written into ``out_dir``; returns it.

    Allowed: a new or empty folder, or with ``overwrite`` a features folder written before
    (holding only ``*.safetensors``, ``index.jsonl``, ``frontend.yaml`` and ``failures.txt``).
    A folder holding anything else is refused whatever the flag, and so is one that cannot be
    written.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FeatureError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        ours = {INDEX_NAME, CONFIG_NAME, FAILURES_NAME}
        foreign = sorted(
            p.name
            for p in out.iterdir()
            if not p.is_file() or not (p.name in ours or p.suffix == ".safetensors")
        )
        if foreign or not ((out / INDEX_NAME).is_file() or (out / CONFIG_NAME).is_file()):
            holds = f"it holds {', '.join(foreign[:3])}" if foreign else f"no {INDEX_NAME}"
            raise FeatureError(
                f"{out}: not a features folder ({holds}); refusing to write into it, whatever "
                "the flags: choose a new or empty folder"
            )
        if not overwrite:
            raise FeatureError(
                f"{out}: holds features already; pass {OVERWRITE_FLAG} to replace them"
            )
    check_writable(out / INDEX_NAME)
    return out


@contextlib.contextmanager
def _writing(path: Path, done: int) -> Iterator[None]:
    """Turn a failed write of ``path`` (a full disk), after ``done`` utterances were stored,
    into one :class:`FeatureError` line."""
    try:
        yield
    except (OSError, SafetensorError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise FeatureError(
            f"{path}: cannot write it ({why}); stopped: the {done} feature file(s) written "
            f"before are kept, {INDEX_NAME} is not written (free some space, then run again "
            f"with {OVERWRITE_FLAG})"
        ) from None


def extract_features(
    frontend: torch.nn.Module,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    progress: bool = True,
    overwrite: bool = False,
) -> ExtractResult:
    """Compute and store features for every utterance in ``inputs`` (see the module docstring).

    Args:
        frontend: an :class:`asr.frontend.Frontend` (put in eval mode here: no dither).
        inputs: audio files, folders and JSONL manifests.
        out_dir: output folder (created), checked first (:func:`check_features_out`).
        progress: show a tqdm progress bar on stderr (default True).
        overwrite: replace the files of a features folder written before (default False).
    """
    from tqdm import tqdm

    from asr import config as config_io

    out_dir = check_features_out(out_dir, overwrite)
    jobs, failures = collect_jobs(inputs)
    if not jobs:  # nothing to compute: an error, and no empty index written
        reasons = "; ".join(f.message for f in failures) or "no inputs"
        raise FeatureError(f"no audio to compute features of: {reasons}")
    frontend = frontend.eval()
    with _writing(out_dir / CONFIG_NAME, 0):
        out_dir.mkdir(parents=True, exist_ok=True)
        config_io.save(frontend.cfg, out_dir / CONFIG_NAME)
    seen: dict[str, str] = {}
    entries = []
    for job in tqdm(jobs, desc="features", unit="utt", disable=not progress, dynamic_ncols=True):
        name = safe_name(job.utt_id) + ".safetensors"
        try:
            if name in seen:
                raise FeatureError(
                    f"duplicate utterance id '{job.utt_id}' (also from {seen[name]})"
                )
            seen[name] = job.source
            feats = compute_job(frontend, job)
        except AsrError as err:
            failures.append(Failure(job.source, str(err)))
            continue
        metadata = {
            "utt_id": job.utt_id,
            "audio_filepath": job.audio_filepath,
            "offset": repr(job.offset),
            "duration": repr(job.duration),
            "sample_rate": str(frontend.cfg.sample_rate_hz),
        }
        with _writing(out_dir / name, len(entries)):
            save_features(out_dir / name, feats, metadata)
        entries.append(_index_entry(job, name, feats))
    index_path = out_dir / INDEX_NAME
    with _writing(index_path, len(entries)), atomic_open(index_path) as fh:
        for entry in entries:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return ExtractResult(len(entries), tuple(failures), index_path)
