"""Writing transcripts: plain text, TSV, JSON with word timings, SRT/VTT subtitles, prediction
manifest, or all of them (``all``: txt, tsv, json, srt and vtt next to each other).

Plain text and TSV hold one line per segment: a new line after a pause of at least
:data:`TEXT_LINES` ``max_gap_s`` seconds (our models write no punctuation, so pauses stand for
sentence ends), or before the line grows past ``max_line_chars`` characters. TSV is whisper's:
a ``start<TAB>end<TAB>text`` header, then times in integer milliseconds.

Where the output goes (``--out``):

* nothing: standard output;
* an existing folder, or a path ending in ``/``: one file per input, ``<name>.<ext>`` (its id:
  the manifest's ``utt_id`` or the file name without suffix; inputs sharing a file name are
  told apart by their folders, ``a/x`` and ``b/x`` in files ``a_x.<ext>`` and ``b_x.<ext>``:
  :func:`asr.data.inputs.distinct_names`), written as soon as that input is done;
* any other path: one file for all inputs, written atomically at the end.

Names never depend on the order of the inputs, and two inputs never share a name, an id or a
file: a clash left (an id given twice, ``a/x`` next to a file ``a_x.flac``) is refused before
the work starts.

A file that cannot be written (a full disk) stops the run with one line naming it
(:class:`OutputError`); the files written before are kept, and the text that file would have
held goes to standard output instead, so the decoded result is not lost.

Every file a run may write is known before it starts (:meth:`OutputWriter.files`), so the
caller checks them all up front (``asr transcribe``: none may exist without ``--overwrite``).

One input in a stream (stdout or a file) is written as its own file would be (``txt``: the text,
one segment a line). One stream holding several inputs is: ``txt`` Kaldi-style ``<name> <text>``
lines, one per input (``asr score`` reads them), ``json`` a list of objects, ``manifest`` one
JSON line each. Subtitles (``srt``, ``vtt``) and ``tsv`` hold one input, so several inputs need
a folder; ``all`` always writes into a folder.

JSON object per input::

    {"audio_filepath": "talk.flac", "duration": 3600.0, "text": "...",
     "words": [{"text": "HELLO", "start": 0.52, "end": 0.84, "confidence": 0.97}, ...],
     "chunks": [{"start": 0.0, "end": 29.71, "text": "..."}, ...]}

Manifest line (NeMo ``transcribe_speech.py`` style; ``text`` only when a reference is known)::

    {"audio_filepath": "talk.flac", "duration": 3600.0, "pred_text": "...", "utt_id": "talk"}
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from asr.inference.subtitles import (
    Cue,
    SubtitleStyle,
    format_srt,
    format_vtt,
    make_cues,
    wrap_lines,
)
from asr.inference.transcribe import TranscribeError, Transcript
from asr.io.atomic import OutputExistsError, atomic_write_text
from asr.io.outputs import OutputError

# Output formats and the suffix of their files.
FORMATS = {
    "txt": ".txt",
    "tsv": ".tsv",
    "json": ".json",
    "srt": ".srt",
    "vtt": ".vtt",
    "manifest": ".jsonl",
}
# What --format all writes for each input (a manifest describes a corpus, not one input).
ALL_FORMATS = ("txt", "tsv", "json", "srt", "vtt")
# Formats holding one input per file (several inputs need a folder).
_ONE_INPUT = ("tsv", "srt", "vtt")
# Lines of plain text and TSV: a new line after a pause or before it grows too long.
TEXT_LINES = SubtitleStyle(
    max_line_chars=100, max_lines=1, max_cue_s=float("inf"), max_gap_s=0.8, min_cue_s=0.0
)


def transcript_json(t: Transcript) -> dict[str, Any]:
    """The JSON object of one transcript (see the module docstring)."""
    record: dict[str, Any] = {"audio_filepath": t.item.path, "duration": round(t.duration_s, 3)}
    if t.item.offset_s:
        record["offset"] = t.item.offset_s
    if t.error is not None:
        record["error"] = t.error
        return record
    record["text"] = t.text
    record["words"] = [
        {"text": w.text, "start": w.start, "end": w.end, "confidence": w.confidence}
        for w in t.words
    ]
    record["chunks"] = [{"start": c.start, "end": c.end, "text": c.text} for c in t.chunks]
    return record


def manifest_record(t: Transcript) -> dict[str, Any]:
    """The prediction-manifest line of one transcript."""
    record: dict[str, Any] = {"audio_filepath": t.item.path, "duration": round(t.duration_s, 3)}
    if t.item.offset_s:
        record["offset"] = t.item.offset_s
    if t.item.text is not None:
        record["text"] = t.item.text
    record["pred_text"] = t.text
    record["utt_id"] = t.item.name
    if t.error is not None:
        record["error"] = t.error
    return record


def subtitle_cues(t: Transcript, style: SubtitleStyle | None = None) -> list[Cue]:
    """Cues from the word timings, or from the chunks when the decoder gave no timings.

    Args:
        t: the transcript.
        style: how words are grouped (default: subtitles, :class:`SubtitleStyle`).
    """
    if t.words:
        return make_cues(t.words, style)
    return make_cues((c for c in t.chunks if c.text), style)


def text_lines(t: Transcript) -> list[Cue]:
    """The segments of plain text and TSV (:data:`TEXT_LINES`), one line of text each."""
    width = TEXT_LINES.max_line_chars
    return [
        Cue(cue.start, cue.end, (line,))
        for cue in subtitle_cues(t, TEXT_LINES)
        for line in wrap_lines(" ".join(cue.lines), width, 1)  # a long chunk without timings
    ]


def format_tsv(lines: list[Cue]) -> str:
    """whisper's TSV: a ``start<TAB>end<TAB>text`` header, times in integer milliseconds."""
    rows = ["start\tend\ttext"]
    for line in lines:
        text = " ".join(line.lines).replace("\t", " ")
        rows.append(f"{round(1000 * line.start)}\t{round(1000 * line.end)}\t{text}")
    return "\n".join(rows) + "\n"


def render(t: Transcript, fmt: str) -> str:
    """One transcript as a complete file's text in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "txt":
        return "".join(" ".join(line.lines) + "\n" for line in text_lines(t)) or "\n"
    if fmt == "tsv":
        return format_tsv(text_lines(t))
    if fmt == "json":
        return json.dumps(transcript_json(t), ensure_ascii=False, indent=1) + "\n"
    if fmt == "srt":
        return format_srt(subtitle_cues(t))
    if fmt == "vtt":
        return format_vtt(subtitle_cues(t))
    if fmt == "manifest":
        return json.dumps(manifest_record(t), ensure_ascii=False) + "\n"
    raise TranscribeError(f"unknown output format {fmt!r} (known: {', '.join(FORMATS)})")


def _file_stem(name: str) -> str:
    """An utterance id as a file name in the output folder (no path separators, not empty)."""
    return re.sub(r"[\\/]", "_", name) or "audio"


def _kaldi_id(name: str) -> str:
    """An id as the first field of a Kaldi-style line (no white space)."""
    return re.sub(r"\s+", "_", name)


def _kaldi_line(t: Transcript) -> str:
    return f"{_kaldi_id(t.item.name)} {t.text}\n"


def _check_distinct(ids: Sequence[str], keys: Sequence[str], what: str) -> None:
    """Refuse two ids that would share one ``what`` (the file names of a folder run)."""
    seen: dict[str, str] = {}
    for name, key in zip(ids, keys):
        if key in seen:
            raise TranscribeError(
                f"the inputs named {seen[key]!r} and {name!r} would both have the {what} "
                f"{key!r}: give them distinct ids (a manifest's utt_id)"
            )
        seen[key] = name


class OutputWriter:
    """Writes transcripts as they arrive to stdout, a folder or one file (module docstring).

    Args:
        fmt: one of :data:`FORMATS`, or ``all`` (:data:`ALL_FORMATS`, into a folder).
        out: None (stdout), a folder, or a file. A folder is created with its first file.
        names: the names (:attr:`asr.data.inputs.AudioItem.name`) of the transcripts that will
            come, in the order :meth:`add` receives them (one stream of subtitles holds one).
        stdout: the stream used when ``out`` is None.
        overwrite: replace files that exist when written; False: a file that appeared since
            the run's up-front check (another run writing it) is an :class:`OutputError`,
            never replaced.

    A file output is written only when some transcript succeeded: when every input failed,
    an existing file is left as it was and no empty file is made.
    """

    def __init__(
        self,
        fmt: str,
        out: str | Path | None,
        names: Sequence[str],
        stdout: TextIO | None = None,
        overwrite: bool = True,
    ) -> None:
        if fmt not in FORMATS and fmt != "all":
            known = ", ".join([*FORMATS, "all"])
            raise TranscribeError(f"unknown output format {fmt!r} (known: {known})")
        self.fmt, self.num_items = fmt, len(names)
        self.stdout = stdout or sys.stdout
        self.folder: Path | None = None
        self.file: Path | None = None
        if out is not None:
            text = str(out)
            if Path(out).is_dir() or text.endswith(("/", "\\")):
                self.folder = Path(out)
            else:
                self.file = Path(out)
        if self.folder is None and fmt == "all":
            raise TranscribeError(
                f"--format all writes {', '.join(ALL_FORMATS)} files for each input: give --out "
                "a folder (an existing one, or a path ending in /)"
            )
        if self.folder is None and fmt in _ONE_INPUT and self.num_items > 1:
            raise TranscribeError(
                f"--format {fmt} writes one file per input: with {self.num_items} inputs give "
                "--out a folder (an existing one, or a path ending in /)"
            )
        # the ids (distinct: asr.data.inputs.distinct_names) and, in a folder, their files
        self.ids = list(names)
        self.stems = [_file_stem(name) for name in self.ids]
        _check_distinct(self.ids, self.ids, "id")
        if self.folder is not None:
            _check_distinct(self.ids, self.stems, "output file name")
        elif fmt == "txt" and self.num_items > 1:
            _check_distinct(self.ids, [_kaldi_id(n) for n in self.ids], "Kaldi-style id")
        self.parts: list[str] = []
        self.records: list[dict[str, Any]] = []
        self.written: list[Path] = []
        self.count = 0  # transcripts added
        self.succeeded = 0  # ...of which without an error
        self.overwrite = overwrite

    def _folder_files(self, name: str) -> dict[str, Path]:
        """Format -> file of the input ``name`` in the output folder."""
        assert self.folder is not None
        formats = ALL_FORMATS if self.fmt == "all" else (self.fmt,)
        return {fmt: self.folder / (name + FORMATS[fmt]) for fmt in formats}

    def files(self) -> list[Path]:
        """Every file this writer may write, known before the first transcript comes (for
        :func:`asr.io.outputs.check_output_files`); none for standard output."""
        if self.folder is not None:
            return [path for stem in self.stems for path in self._folder_files(stem).values()]
        return [] if self.file is None else [self.file]

    def add(self, t: Transcript) -> None:
        """Write (or queue) the next transcript; failed ones appear only in manifests and JSON."""
        name, stem = self.ids[self.count], self.stems[self.count]
        self.count += 1
        self.succeeded += t.error is None
        t = dataclasses.replace(t, item=dataclasses.replace(t.item, utt_id=name))
        if self.folder is not None:
            if t.error is None:  # the folder is made with its first file
                for fmt, path in self._folder_files(stem).items():
                    self._write(path, render(t, fmt))
                    self.written.append(path)
            return
        if self.fmt == "json":
            self.records.append(transcript_json(t))
            return
        if t.error is not None and self.fmt != "manifest":
            return
        if self.fmt == "txt" and self.num_items > 1:
            text = _kaldi_line(t)
        else:
            text = render(t, self.fmt)
        if self.file is None:  # a progress bar on the terminal is cleared first, then redrawn
            tqdm.write(text, file=self.stdout, end="")
            self.stdout.flush()
        else:
            self.parts.append(text)

    def close(self) -> list[Path]:
        """Finish the single output (JSON list, the file); returns the files written."""
        if self.folder is not None:
            return self.written
        if self.fmt == "json":
            data: Any = self.records[0] if self.num_items == 1 and self.records else self.records
            self.parts = [json.dumps(data, ensure_ascii=False, indent=1) + "\n"]
            if self.file is None:
                self.stdout.write(self.parts[0])
                return []
        if self.file is None or not self.succeeded:  # nothing transcribed: nothing replaced
            return []
        self._write(self.file, "".join(self.parts))
        return [self.file]

    def _write(self, path: Path, text: str) -> None:
        """Write one file atomically; without ``overwrite`` only if it still does not exist.

        A file that cannot be written (a full disk): its text goes to standard output instead,
        then a one-line :class:`OutputError` naming it (the files written before are kept).
        """
        try:
            atomic_write_text(path, text, exclusive=not self.overwrite)
        except OutputExistsError as err:
            raise OutputError(f"{err}; pass --overwrite to replace it") from None
        except OSError as err:
            tqdm.write(text, file=self.stdout, end="")
            self.stdout.flush()
            why = err.strerror or str(err)
            kept = len(self.written)
            before = f"; the {kept} file(s) written before it are kept" if kept else ""
            raise OutputError(
                f"{path}: cannot write it ({why}): its text is on standard output instead{before}"
            ) from None
