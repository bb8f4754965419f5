"""Read transcript files for scoring: JSONL manifests, Kaldi ``text`` files, sclite trn, plain text.

Formats (:func:`read_transcripts`, ``fmt="auto"`` picks one by suffix, then by content):

- ``jsonl``: one JSON object a line (NeMo/asr manifests, ``asr decode`` output). The text is
  ``text_key`` (default: ``pred_text`` when the line has it, else ``text``); the id is ``utt_id``,
  else ``audio_filepath`` (resolved against the file's folder, plus ``@offset`` when the line has a
  non-zero offset); ``id_key`` forces one of the two. Suffixes ``.jsonl``/``.json``, or a first
  line starting with ``{``.
- ``kaldi``: ``utt-id text...`` a line (the text may be empty). Auto-detected when the first
  words look like ids: every one holds a digit, ``-`` or ``_``, or every one has lower-case
  letters while the text after them has none (``alpha A B C``), and no line looks like trn.
- ``trn``: sclite ``text... (utt-id)`` a line. Suffix ``.trn``, or every line ends in ``(...)``.
- ``plain``: one utterance a line, matched with the other file by line number; an empty line is
  an empty transcript.

Keyed formats return ``{utt_id: text}`` (file order); plain returns a list. A duplicate id, bad
JSON or a line without its text key raises :class:`~asr.scoring.wer.ScoreError` naming file and
line.

A reference and a hypothesis are best detected together (:func:`detect_pair_formats`, what
``asr score`` does): a file pair whose first words could be ids that pair differently from line
numbers is refused rather than guessed, and the ``note`` says which pairing was chosen when the
data left room for doubt.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from asr.scoring.wer import ScoreError

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
    return "kaldi" if _FirstWords.of(lines).id_like else "plain"


_ID_MARK = re.compile(r"[0-9_-]")


@dataclass(frozen=True)
class _FirstWords:
    """The first word of every non-blank line of a kaldi-or-plain file, and what they look like."""

    words: tuple[str, ...]  # in line order
    unique: bool  # no word starts two lines
    id_like: bool  # every one has a digit, - or _; or every one has lower-case letters and the
    # text after them has letters, none lower-case (``utt-3 HELLO``, ``alpha A B C``)

    @classmethod
    def of(cls, lines: list[str]) -> _FirstWords:
        parts = [line.split() for line in lines if line.strip()]
        words = tuple(p[0] for p in parts)
        rest = "".join(w for p in parts for w in p[1:])
        marked = all(_ID_MARK.search(w) for w in words)
        cased = all(any(c.islower() for c in w) for w in words) and (
            any(c.isalpha() for c in rest) and not any(c.islower() for c in rest)
        )
        return cls(words, len(set(words)) == len(words), bool(words) and (marked or cased))


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


@dataclass(frozen=True)
class Pairing:
    """Formats of a reference and a hypothesis file, detected together."""

    ref_format: str  # jsonl, kaldi, trn or plain
    hyp_format: str  # the same for the hypothesis
    note: str | None = None  # how they are paired, when the data left room for doubt


_WHICH = "pass --format kaldi to pair by utterance id or --format plain to pair by line number"


def detect_pair_formats(
    ref: str | Path, hyp: str | Path, ref_fmt: Format = "auto", hyp_fmt: Format = "auto"
) -> Pairing:
    """Formats of a reference and a hypothesis file, ``auto`` ones detected from both files.

    Each file is first detected alone (:func:`detect_format`). Two files that are each Kaldi
    text or plain text are then decided together, so that lines are never paired by number
    when their first words are ids that disagree:

    - first words that look like ids (module docstring) in both files: Kaldi;
    - first words that look like ids in one file only: Kaldi for both when the other file's
      first words are unique and share one with them (the ids then must match), else as
      detected alone (the pairing then fails: ids on one side only);
    - otherwise plain text; but when each file's first words are unique and some start lines
      of both files, ids and line numbers could disagree: one that starts another line number
      in the other file is a :class:`ScoreError` asking for ``--format``, else the note says
      that lines were paired by number (the first words scored as words).

    Raises:
        ScoreError: unreadable file, unknown format, or first words that could be ids either way.
    """
    ref, hyp = Path(ref), Path(hyp)
    for path, fmt in ((ref, ref_fmt), (hyp, hyp_fmt)):
        if fmt not in FORMATS:
            known = ", ".join(FORMATS)
            raise ScoreError(f"{path}: unknown transcript format {fmt!r} (one of {known})")
    ref_lines, hyp_lines = _lines(ref), _lines(hyp)
    r_fmt = detect_format(ref, ref_lines) if ref_fmt == "auto" else ref_fmt
    h_fmt = detect_format(hyp, hyp_lines) if hyp_fmt == "auto" else hyp_fmt
    open_r = ref_fmt == "auto" and r_fmt in ("kaldi", "plain")
    open_h = hyp_fmt == "auto" and h_fmt in ("kaldi", "plain")
    if not (open_r and open_h):
        if open_r or open_h:  # one side open, the other given or jsonl/trn
            r_fmt, h_fmt = _one_side_open(r_fmt, h_fmt, ref_lines, hyp_lines, open_r)
        return Pairing(r_fmt, h_fmt)
    return _both_open(_FirstWords.of(ref_lines), _FirstWords.of(hyp_lines), ref, hyp)


def _one_side_open(
    r_fmt: str, h_fmt: str, ref_lines: list[str], hyp_lines: list[str], open_r: bool
) -> tuple[str, str]:
    """An open (kaldi-or-plain) file against a Kaldi file: Kaldi too when its first words are
    unique and share one with the other's ids; otherwise as detected alone."""
    other = h_fmt if open_r else r_fmt
    if other != "kaldi":
        return r_fmt, h_fmt
    mine = _FirstWords.of(ref_lines if open_r else hyp_lines)
    theirs = _FirstWords.of(hyp_lines if open_r else ref_lines)
    if mine.unique and set(mine.words) & set(theirs.words):
        return "kaldi", "kaldi"
    return r_fmt, h_fmt


def _both_open(r: _FirstWords, h: _FirstWords, ref: Path, hyp: Path) -> Pairing:
    """The decision of :func:`detect_pair_formats` for two kaldi-or-plain files."""
    if r.id_like and h.id_like:
        return Pairing("kaldi", "kaldi")
    if r.id_like or h.id_like:
        ids, other = (r, h) if r.id_like else (h, r)
        if other.unique and set(ids.words) & set(other.words):
            return Pairing("kaldi", "kaldi")
        return Pairing("kaldi" if r.id_like else "plain", "kaldi" if h.id_like else "plain")
    if not (r.unique and h.unique and set(r.words) & set(h.words)):
        return Pairing("plain", "plain")
    where = {word: number for number, word in enumerate(h.words, start=1)}
    for number, word in enumerate(r.words, start=1):
        if where.get(word, number) != number:
            raise ScoreError(
                f"{hyp}: cannot tell whether the first word of a line is an utterance id: "
                f"'{word}' starts line {number} of {ref} but line {where[word]} of {hyp}; "
                f"{_WHICH}"
            )
    if r.words == h.words:
        note = (
            f"every line of {ref} and {hyp} starts with the same word: scored as plain text "
            "paired by line number, the first words counted; if they are utterance ids, pass "
            "--format kaldi"
        )
    else:
        note = (
            f"{ref} and {hyp} scored as plain text, paired by line number (the first words do "
            "not look like utterance ids); if they are, pass --format kaldi"
        )
    return Pairing("plain", "plain", note)


def pair_single(
    refs: dict[str, str] | list[str], hyps: dict[str, str] | list[str]
) -> tuple[dict[str, str] | list[str], dict[str, str] | list[str], str | None]:
    """One keyed utterance against one line without an id (``asr transcribe file.flac`` prints
    the text alone): the line takes the id. Returns both sides and the id given, or None."""
    for keyed, plain in ((refs, hyps), (hyps, refs)):
        if isinstance(keyed, dict) and isinstance(plain, list) and len(keyed) == len(plain) == 1:
            (key,) = keyed
            named = {key: plain[0]}
            return (refs, named, key) if keyed is refs else (named, hyps, key)
    return refs, hyps, None
