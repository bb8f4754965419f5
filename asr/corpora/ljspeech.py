"""LJSpeech (keithito.com/LJ-Speech-Dataset) or any subset of it -> one JSONL manifest.

A LJSpeech folder holds ``metadata.csv`` and ``wavs/<clip>.wav`` (22.05 kHz, one reader).
Each line of ``metadata.csv`` is ``clip|raw text|normalised text`` with ``|`` separators and no
quoting. The manifest's ``text`` is column 3 (LJSpeech's own expansion of numbers and
abbreviations) through :func:`asr.text.normalize.normalize_text` (upper case, LibriSpeech
conventions). LJSpeech has no official split: every listed clip goes into the one manifest, in file
order.
"""

from __future__ import annotations

from pathlib import Path

from asr.data.manifest import Utterance, write_manifest
from asr.errors import AsrError
from asr.io.audio import AudioError, audio_info
from asr.io.outputs import check_output_file
from asr.text.normalize import normalize_text

METADATA_FILE = "metadata.csv"
FIELDS = 3  # clip id, raw text, normalised text


class LJSpeechError(AsrError):
    """A LJSpeech folder, metadata line or clip that cannot be used; names the file and line."""


def read_metadata(path: str | Path) -> list[tuple[str, str]]:
    """``(clip id, normalised text)`` of every line of ``metadata.csv``.

    Raises:
        LJSpeechError: ``path:LINE: ...`` for a line without 3 ``|``-separated fields, an
            empty id or text, or a repeated id.
    """
    path = Path(path)
    rows: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise LJSpeechError(f"{path}: cannot read ({err})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split("|")
        where = f"{path}:{number}"
        if len(fields) != FIELDS:
            raise LJSpeechError(
                f"{where}: expected {FIELDS} '|'-separated fields, got {len(fields)}"
            )
        clip, text = fields[0].strip(), fields[2].strip() or fields[1].strip()
        if not clip or not text:
            raise LJSpeechError(f"{where}: empty clip id or text")
        if clip in seen:
            raise LJSpeechError(f"{where}: clip {clip!r} repeats line {seen[clip]}")
        seen[clip] = number
        rows.append((clip, text))
    return rows


def prepare_ljspeech(root: str | Path, out: str | Path, overwrite: bool = False) -> Path:
    """Write the manifest ``out`` (JSONL) for the LJSpeech folder ``root``; kept if it exists.

    Args:
        root: folder holding ``metadata.csv`` and ``wavs/``.
        out: manifest file to write (atomically).
        overwrite: rewrite an existing manifest.
    Returns:
        ``Path(out)``.
    Raises:
        LJSpeechError: missing metadata, a bad line, or a listed clip that is missing or
            unreadable (named with its metadata line).
    """
    root, out = Path(root), Path(out)
    if out.is_file() and not overwrite:
        return out
    metadata = root / METADATA_FILE
    # a folder there, an input, or unwritable: fail before the work
    check_output_file(out, overwrite=True, inputs=[metadata])
    if not metadata.is_file():
        raise LJSpeechError(f"{metadata}: not found (not a LJSpeech folder)")
    utterances = []
    for clip, text in read_metadata(metadata):
        wav = root / "wavs" / f"{clip}.wav"
        try:
            info = audio_info(wav)
        except AudioError as err:
            raise LJSpeechError(f"{metadata}: clip {clip}: {err}") from None
        utterances.append(
            Utterance(
                str(wav.resolve()), info.duration_s, normalize_text(text), utt_id=clip, speaker="LJ"
            )
        )
    write_manifest(out, utterances)
    return out
