"""Read transcript files for scoring: JSONL manifests, Kaldi ``text`` files, sclite trn, plain text.

Formats (:func:`read_transcripts`, ``fmt="auto"`` picks one by suffix, then by content):

- ``jsonl``: one JSON object a line (NeMo/asr manifests, ``asr decode`` output). The text is
  ``text_key`` (default: ``pred_text`` when the line has it, else ``text``); the id is ``utt_id``,
  else ``audio_filepath`` (resolved against the file's folder, plus ``@offset`` when the line has a
  non-zero offset); ``id_key`` forces one of the two. Suffixes ``.jsonl``/``.json``, or a first
  line starting with ``{``.
- ``kaldi``: ``utt-id text...`` a line (the text may be empty). Auto-detected when every first
  token contains a digit and no line looks like trn.
- ``trn``: sclite ``text... (utt-id)`` a line. Suffix ``.trn``, or every line ends in ``(...)``.
- ``plain``: one utterance a line, matched with the other file by line number; an empty line is
  an empty transcript.

Keyed formats return ``{utt_id: text}`` (file order); plain returns a list. A duplicate id, bad
JSON or a line without its text key raises :class:`~asr.scoring.ScoreError` naming file and line.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Literal

from asr.scoring import ScoreError

Format = Literal["auto", "jsonl", "kaldi", "trn", "plain"]
FORMATS = ("auto", "jsonl", "kaldi", "trn", "plain")

_TRN_LINE = re.compile(r"^(.*?)\s*\(([^()\s]+)\)\s*$")
_JSONL_SUFFIXES = (".jsonl", ".json")


def _lines(path: Path) -> list[str]:
    """The file's lines without line endings (a final newline does not add an empty line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScoreError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ScoreError(f"{path}: is a directory, not a transcript file") from None
    except UnicodeDecodeError as err:
        raise ScoreError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise ScoreError(f"{path}: cannot read ({err.strerror})") from None
    return text.splitlines()


def detect_format(path: Path, lines: list[str]) -> str:
    """Guess the format of a transcript file from its suffix, then its content."""
    suffix = path.suffix.lower()
    if suffix in _JSONL_SUFFIXES:
        return "jsonl"
    if suffix == ".trn":
        return "trn"
    content = [line for line in lines if line.strip()]
    if content and content[0].lstrip().startswith("{"):
        return "jsonl"
    if content and all(_TRN_LINE.match(line) for line in content):
        return "trn"
    if content and all(any(c.isdigit() for c in line.split()[0]) for line in content):
        return "kaldi"
    return "plain"


def _add(
    out: dict[str, str], first_line: dict[str, int], key: str, text: str, path: Path, number: int
) -> None:
    """Add one utterance; a duplicate id is an error naming both lines."""
    if key in out:
        raise ScoreError(
            f"{path}:{number}: duplicate utterance id '{key}' (first on line {first_line[key]})"
        )
    out[key] = text
    first_line[key] = number


def _jsonl_id(obj: dict, path: Path, where: str, id_key: str | None) -> str:
    utt_id = obj.get("utt_id")
    if id_key == "utt_id" and utt_id is None:
        raise ScoreError(f"{where}: no 'utt_id' (matching by utt_id)")
    if utt_id is not None and id_key != "audio_filepath":
        return str(utt_id)
    audio = obj.get("audio_filepath")
    if not isinstance(audio, str):
        wanted = "'audio_filepath'" if id_key else "'utt_id' or 'audio_filepath'"
        raise ScoreError(f"{where}: needs {wanted} to match utterances")
    if not os.path.isabs(audio):
        audio = os.path.join(path.parent, audio)
    key = os.path.normpath(os.path.abspath(audio))
    offset = obj.get("offset", 0)
    return f"{key}@{offset}" if offset else key


def _read_jsonl(
    path: Path, lines: list[str], text_key: str | None, id_key: str | None
) -> dict[str, str]:
    out: dict[str, str] = {}
    first: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise ScoreError(f"{where}: bad JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(obj, dict):
            raise ScoreError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        key = text_key or ("pred_text" if "pred_text" in obj else "text")
        text = obj.get(key)
        if not isinstance(text, str):
            raise ScoreError(f"{where}: missing or non-string '{key}'")
        _add(out, first, _jsonl_id(obj, path, where, id_key), text, path, number)
    return out


def _read_kaldi(path: Path, lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    first: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        parts = line.strip().split(maxsplit=1)
        if not parts:
            continue
        _add(out, first, parts[0], parts[1] if len(parts) > 1 else "", path, number)
    return out


def _read_trn(path: Path, lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    first: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        match = _TRN_LINE.match(line)
        where = f"{path}:{number}"
        if not match:
            raise ScoreError(f"{where}: not a trn line 'text (utt-id)': {line[:60]!r}")
        _add(out, first, match.group(2), match.group(1).strip(), path, number)
    return out


def resolve_format(path: str | Path, fmt: Format = "auto") -> str:
    """The format :func:`read_transcripts` would use for ``path``."""
    path = Path(path)
    return detect_format(path, _lines(path)) if fmt == "auto" else fmt


def jsonl_all_have(path: str | Path, key: str) -> bool:
    """Whether every non-blank line of a JSONL file is an object with ``key`` (bad JSON: no)."""
    for line in _lines(Path(path)):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            return False
        if not isinstance(obj, dict) or obj.get(key) is None:
            return False
    return True


def read_transcripts(
    path: str | Path,
    fmt: Format = "auto",
    text_key: str | None = None,
    id_key: Literal["utt_id", "audio_filepath"] | None = None,
) -> dict[str, str] | list[str]:
    """Read a transcript file: ``{utt_id: text}`` for keyed formats, a list for plain text.

    Args:
        path: the file.
        fmt: "auto" (default), "jsonl", "kaldi", "trn" or "plain" (see the module docstring).
        text_key: JSONL key holding the text; None (default) takes ``pred_text`` when present,
            else ``text``.
        id_key: JSONL key that identifies a line: "utt_id", "audio_filepath", or None (default:
            ``utt_id`` where the line has one, else ``audio_filepath``).
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise ScoreError(f"{path}: unknown transcript format {fmt!r} (one of {', '.join(FORMATS)})")
    lines = _lines(path)
    if fmt == "auto":
        fmt = detect_format(path, lines)
    if fmt == "jsonl":
        return _read_jsonl(path, lines, text_key, id_key)
    if fmt == "kaldi":
        return _read_kaldi(path, lines)
    if fmt == "trn":
        return _read_trn(path, lines)
    return [line.strip() for line in lines]
