"""JSONL manifests: one utterance a line, with NeMo-compatible keys.

Each line is a JSON object with ``audio_filepath`` (str), ``duration`` (seconds, number >= 0) and
``text`` (str), plus the optional ``offset`` (seconds into the file, default 0), ``utt_id`` and
``speaker``. Other keys are allowed and ignored (NeMo manifests carry e.g. ``lang``). Blank lines
are skipped. A line without ``duration`` (a hand-written ``{audio_filepath, text}``) gets the
audio file's length from its header (less ``offset``). A relative ``audio_filepath`` is
resolved against the manifest's own folder, so a corpus folder with its manifests can be moved
as a whole.

Anything wrong with a line raises :class:`ManifestError`, one line naming the manifest path and
line number: bad JSON, a missing key, a wrong type, a negative or non-finite duration/offset and,
when checked, a missing audio file.

Example::

    utts = read_manifest("data/dev-clean.jsonl")
    short = filter_by_duration(utts, max_duration=16.0)
    write_manifest("data/dev-clean-short.jsonl", short)
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from asr.errors import AsrError
from asr.io.atomic import atomic_open

REQUIRED_KEYS = ("audio_filepath", "text")  # duration: read from the audio file when absent


class ManifestError(AsrError):
    """A manifest that cannot be used; the message names the path, line number and reason."""


@dataclass(frozen=True)
class Utterance:
    """One manifest line: a whole audio file or a segment of it, and its transcript."""

    # Path of the audio file (absolute after reading; as given when constructed by hand).
    audio_filepath: str
    # Length of the utterance in seconds (of the segment when offset/duration cut a file).
    duration: float
    # Transcript.
    text: str
    # Start of the utterance in the audio file, in seconds.
    offset: float = 0.0
    # Unique utterance id (LibriSpeech: "<speaker>-<chapter>-<utt>"), if known.
    utt_id: str | None = None
    # Speaker id, if known.
    speaker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written for this utterance (optional keys only when set)."""
        out: dict[str, Any] = {
            "audio_filepath": self.audio_filepath,
            "duration": self.duration,
            "text": self.text,
        }
        if self.offset:
            out["offset"] = self.offset
        if self.utt_id is not None:
            out["utt_id"] = self.utt_id
        if self.speaker is not None:
            out["speaker"] = self.speaker
        return out

    @property
    def name(self) -> str:
        """The utterance's identity: ``utt_id``, else :func:`utterance_id` of its audio."""
        return utterance_id(self.audio_filepath, self.offset, self.utt_id)


def utterance_id(
    audio_filepath: str | Path, offset_s: float = 0.0, utt_id: str | None = None
) -> str:
    """The one identity of an utterance everywhere (decoding, transcription, features, training).

    Args:
        audio_filepath: its audio file.
        offset_s: where it starts in the file, seconds (default 0.0).
        utt_id: an explicit id (a manifest's ``utt_id``); returned as it is when given.
    Returns:
        ``utt_id``, else the file name without suffix, followed by ``@<offset>`` (``%g``
        seconds) when the utterance does not start at 0: ``"talk"``, ``"talk@12.5"``.
    """
    if utt_id is not None:
        return utt_id
    stem = Path(audio_filepath).stem
    return f"{stem}@{offset_s:g}" if offset_s else stem


def _number(obj: dict[str, Any], key: str, where: str, default: float | None = None) -> float:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ManifestError(f"{where}: '{key}' must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ManifestError(f"{where}: '{key}' must be finite, got {value!r}")
    if value < 0:
        raise ManifestError(f"{where}: '{key}' must be >= 0, got {value!r}")
    return float(value)


def _optional_id(obj: dict[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ManifestError(f"{where}: '{key}' must be a string, got {value!r}")
    return str(value)


def _duration_from_file(audio: str, offset: float, where: str) -> float:
    """The length of ``audio`` after ``offset`` (seconds), for a line without ``duration``."""
    from asr.io.audio import AudioError, audio_info

    try:
        length = audio_info(audio).duration_s
    except AudioError as err:
        msg = f"{where}: no 'duration', and the audio cannot be read: {err}"
        raise ManifestError(msg) from None
    if offset >= length:
        raise ManifestError(
            f"{where}: no 'duration', and 'offset' {offset:g} s is beyond the end of {audio} "
            f"({length:.3f} s)"
        )
    return round(length - offset, 6)


def parse_line(
    line: str, where: str, base_dir: Path | None = None, require_text: bool = True
) -> Utterance:
    """Parse one manifest line; ``where`` ("path:line") prefixes any error message.

    A relative ``audio_filepath`` is joined to ``base_dir`` when given. Without
    ``require_text`` (audio to transcribe, no reference needed) a missing ``text`` reads as "".
    """
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise ManifestError(f"{where}: bad JSON: {err.msg} (column {err.colno})") from None
    if not isinstance(obj, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if not require_text:
        obj.setdefault("text", "")
    missing = [key for key in REQUIRED_KEYS if key not in obj]
    if missing:
        raise ManifestError(f"{where}: missing key {', '.join(repr(k) for k in missing)}")
    audio = obj["audio_filepath"]
    if not isinstance(audio, str) or not audio:
        raise ManifestError(f"{where}: 'audio_filepath' must be a non-empty string, got {audio!r}")
    if not isinstance(obj["text"], str):
        raise ManifestError(f"{where}: 'text' must be a string, got {obj['text']!r}")
    if base_dir is not None and not os.path.isabs(audio):
        audio = os.path.normpath(base_dir / audio)
    offset = _number(obj, "offset", where, default=0.0)
    if "duration" in obj:
        duration = _number(obj, "duration", where)
    else:
        duration = _duration_from_file(audio, offset, where)
    return Utterance(
        audio_filepath=audio,
        duration=duration,
        text=obj["text"],
        offset=offset,
        utt_id=_optional_id(obj, "utt_id", where),
        speaker=_optional_id(obj, "speaker", where),
    )


def iter_manifest(
    path: str | Path, check_files: bool = False, require_text: bool = True
) -> Iterator[Utterance]:
    """Yield the utterances of a manifest one by one (relative audio paths made absolute).

    Args:
        path: the JSONL manifest.
        check_files: also raise :class:`ManifestError` for an audio file that does not exist
            (default False: one ``stat`` per line; :func:`validate_manifest` turns it on).
        require_text: every line needs its ``text`` (default True; False: missing reads "").
    """
    path = Path(path)
    base_dir = path.resolve().parent
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ManifestError(f"{where}: not UTF-8 text ({err.reason})") from None
            if not line.strip():
                continue
            utt = parse_line(line, where, base_dir, require_text)
            if check_files and not os.path.isfile(utt.audio_filepath):
                raise ManifestError(f"{where}: audio file not found: {utt.audio_filepath}")
            yield utt


def read_manifest(
    path: str | Path, check_files: bool = False, require_text: bool = True
) -> list[Utterance]:
    """Read a whole manifest (see :func:`iter_manifest`)."""
    return list(iter_manifest(path, check_files=check_files, require_text=require_text))


def validate_manifest(path: str | Path) -> list[Utterance]:
    """Read a manifest checking every line, that every audio file exists and utt_ids are unique.

    Returns the utterances; raises :class:`ManifestError` naming the first bad line.
    """
    utts: list[Utterance] = []
    seen: dict[str, int] = {}
    path = Path(path)
    lineno = 0
    for utt in iter_manifest(path, check_files=True):
        utts.append(utt)
        lineno += 1
        if utt.utt_id is None:
            continue
        if utt.utt_id in seen:
            raise ManifestError(
                f"{path}: duplicate utt_id {utt.utt_id!r} "
                f"(utterances {seen[utt.utt_id]} and {lineno})"
            )
        seen[utt.utt_id] = lineno
    return utts


def _relative_audio(utt: Utterance, out_dir: Path) -> Utterance:
    audio = utt.audio_filepath
    if os.path.isabs(audio):
        audio = os.path.relpath(audio, out_dir)
    return Utterance(audio, utt.duration, utt.text, utt.offset, utt.utt_id, utt.speaker)


def write_manifest(
    path: str | Path, utterances: Iterable[Utterance], relative: bool = False
) -> int:
    """Write utterances to a JSONL manifest atomically; returns the number written.

    Args:
        path: output manifest (parent folders are created).
        utterances: what to write, in order.
        relative: write absolute audio paths relative to the manifest's folder (default False),
            so the folder can be moved with its manifests.
    """
    path = Path(path)
    out_dir = path.resolve().parent
    count = 0
    with atomic_open(path, "w") as fh:
        for utt in utterances:
            if relative:
                utt = _relative_audio(utt, out_dir)
            fh.write(json.dumps(utt.to_dict(), ensure_ascii=False) + "\n")
            count += 1
    return count


def filter_by_duration(
    utterances: Iterable[Utterance],
    min_duration: float | None = None,
    max_duration: float | None = None,
) -> list[Utterance]:
    """Keep utterances with ``min_duration <= duration <= max_duration`` (None: no bound)."""
    if min_duration is not None and max_duration is not None and min_duration > max_duration:
        raise ManifestError(
            f"filter_by_duration: min_duration {min_duration} > max_duration {max_duration}"
        )
    return [
        utt
        for utt in utterances
        if (min_duration is None or utt.duration >= min_duration)
        and (max_duration is None or utt.duration <= max_duration)
    ]


def concat_manifests(
    inputs: Sequence[str | Path], output: str | Path | None = None, relative: bool = False
) -> list[Utterance]:
    """Concatenate manifests in order; write them to ``output`` when given.

    Relative audio paths of each input are resolved against that input's folder, so the result
    is correct wherever ``output`` lives (absolute paths, or relative to ``output`` when
    ``relative``). Duplicate utt_ids across inputs are an error.
    """
    utts: list[Utterance] = []
    seen: dict[str, str] = {}
    for path in inputs:
        for utt in iter_manifest(path):
            if utt.utt_id is not None:
                if utt.utt_id in seen:
                    raise ManifestError(
                        f"{path}: utt_id {utt.utt_id!r} already in {seen[utt.utt_id]}"
                    )
                seen[utt.utt_id] = str(path)
            utts.append(utt)
    if output is not None:
        write_manifest(output, utts, relative=relative)
    return utts


@dataclass(frozen=True)
class MixInput:
    """One input of a mix: ``IN[:TIMES][@PREFIX]`` (``asr prepare mix``)."""

    path: str  # the manifest
    times: int = 1  # how often its utterances repeat
    prefix: str = ""  # put before its utterance and speaker ids ("": none)


def parse_mix_input(spec: str) -> MixInput:
    """Parse ``IN[:TIMES][@PREFIX]``: a manifest, an optional repeat count and id prefix
    (letters, digits, ``_``, ``.``). ManifestError naming ``spec`` when the prefix is bad or
    the manifest is missing; a ``:`` not followed by digits belongs to the path."""
    item, at, prefix = spec.rpartition("@") if "@" in spec else (spec, "", "")
    if at and not re.fullmatch(r"[A-Za-z0-9_.]+", prefix):
        raise ManifestError(f"{spec}: a prefix is letters, digits, '_' or '.'")
    path, sep, times = item.rpartition(":")
    if not sep or not times.isdigit():
        path, times = item, "1"
    if not Path(path).is_file():
        raise ManifestError(f"{path}: no such manifest")
    return MixInput(path, int(times), prefix)


def mix_manifests(
    inputs: Sequence[tuple[str | Path, int]],
    output: str | Path | None = None,
    prefixes: Sequence[str] = (),
) -> list[Utterance]:
    """Concatenate manifests, each repeated ``times`` (oversampling a small corpus in a mix).

    Args:
        inputs: ``(manifest, times)`` pairs, ``times >= 1``.
        output: manifest to write (atomically), or None.
        prefixes: one per input (default: none), put before its utterance and speaker ids with
            a ``-`` (two corpora that number their speakers alike, e.g. two synthetic corpora).
    Returns:
        The utterances; the k-th repeat (k >= 2) of an utterance with an id gets ``<id>~k``, so
        ids stay unique (duplicates across inputs are an error, as in :func:`concat_manifests`).
    """
    utts: list[Utterance] = []
    for i, (path, times) in enumerate(inputs):
        if times < 1:
            raise ManifestError(f"{path}: repeat count must be >= 1, got {times}")
        once = concat_manifests([path])
        if i < len(prefixes) and prefixes[i]:
            once = [_prefixed(u, prefixes[i]) for u in once]
        for k in range(1, times + 1):
            suffix = f"~{k}" if k > 1 else ""
            utts.extend(
                replace(u, utt_id=u.utt_id + suffix) if u.utt_id and suffix else u for u in once
            )
    seen: set[str] = set()
    for utt in utts:
        if utt.utt_id is not None:
            if utt.utt_id in seen:
                raise ManifestError(
                    f"mix: utt_id {utt.utt_id!r} occurs in two inputs (give one a prefix: IN@P)"
                )
            seen.add(utt.utt_id)
    if output is not None:
        write_manifest(output, utts)
    return utts


def _prefixed(utt: Utterance, prefix: str) -> Utterance:
    """``utt`` with ``<prefix>-`` before its utterance and speaker ids (those it has)."""
    utt_id = f"{prefix}-{utt.utt_id}" if utt.utt_id is not None else None
    speaker = f"{prefix}-{utt.speaker}" if utt.speaker is not None else None
    return replace(utt, utt_id=utt_id, speaker=speaker)


def total_duration(utterances: Iterable[Utterance]) -> float:
    """Sum of the utterance durations, in seconds."""
    return sum(utt.duration for utt in utterances)


def iter_texts(manifests: Iterable[str], text_files: Iterable[str]) -> Iterator[str]:
    """Transcripts of the manifests, then the non-empty lines of the text files (.gz allowed):
    the training text of a tokenizer (``asr tokenizer``)."""
    for manifest in manifests:
        for utt in iter_manifest(manifest):
            yield utt.text
    for name in text_files:
        opener = gzip.open if name.endswith(".gz") else open
        with opener(name, "rt", encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    yield line
