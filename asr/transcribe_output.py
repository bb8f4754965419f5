"""Writing transcripts: plain text, JSON with word timings, SRT/VTT subtitles, prediction manifest.

Where the output goes (``--out``):

* nothing: standard output;
* an existing folder, or a path ending in ``/``: one file per input, ``<name>.<ext>`` (the
  manifest's ``utt_id`` or the file name without suffix; ``-2``, ``-3`` ... on a clash),
  written as soon as that input is done;
* any other path: one file for all inputs, written atomically at the end.

One stream holding several inputs is: ``txt`` Kaldi-style ``<name> <text>`` lines (``asr score``
reads them), ``json`` a list of objects, ``manifest`` one JSON line each. Subtitles (``srt``,
``vtt``) hold one input, so several inputs need a folder.

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
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from asr.atomic import atomic_write_text
from asr.subtitles import Cue, format_srt, format_vtt, make_cues
from asr.transcription import TranscribeError, Transcript

# Output formats and the suffix of their files.
FORMATS = {"txt": ".txt", "json": ".json", "srt": ".srt", "vtt": ".vtt", "manifest": ".jsonl"}


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


def subtitle_cues(t: Transcript) -> list[Cue]:
    """Cues from the word timings, or from the chunks when the decoder gave no timings."""
    if t.words:
        return make_cues(t.words)
    return make_cues(c for c in t.chunks if c.text)


def render(t: Transcript, fmt: str) -> str:
    """One transcript as a complete file's text in ``fmt`` (txt, json, srt, vtt, manifest)."""
    if fmt == "txt":
        return t.text + "\n"
    if fmt == "json":
        return json.dumps(transcript_json(t), ensure_ascii=False, indent=1) + "\n"
    if fmt == "srt":
        return format_srt(subtitle_cues(t))
    if fmt == "vtt":
        return format_vtt(subtitle_cues(t))
    if fmt == "manifest":
        return json.dumps(manifest_record(t), ensure_ascii=False) + "\n"
    raise TranscribeError(f"unknown output format {fmt!r} (known: {', '.join(FORMATS)})")


def _kaldi_line(t: Transcript) -> str:
    name = re.sub(r"\s+", "_", t.item.name)
    return f"{name} {t.text}\n"


class OutputWriter:
    """Writes transcripts as they arrive to stdout, a folder or one file (module docstring).

    Args:
        fmt: one of :data:`FORMATS`.
        out: None (stdout), a folder, or a file.
        num_items: how many transcripts will come (one stream of subtitles holds one).
        stdout: the stream used when ``out`` is None.
    """

    def __init__(
        self, fmt: str, out: str | Path | None, num_items: int, stdout: TextIO | None = None
    ) -> None:
        if fmt not in FORMATS:
            raise TranscribeError(f"unknown output format {fmt!r} (known: {', '.join(FORMATS)})")
        self.fmt, self.num_items = fmt, num_items
        self.stdout = stdout or sys.stdout
        self.folder: Path | None = None
        self.file: Path | None = None
        if out is not None:
            text = str(out)
            if Path(out).is_dir() or text.endswith(("/", "\\")):
                self.folder = Path(out)
                self.folder.mkdir(parents=True, exist_ok=True)
            else:
                self.file = Path(out)
        if self.folder is None and fmt in ("srt", "vtt") and num_items > 1:
            raise TranscribeError(
                f"--format {fmt} writes one file per input: with {num_items} inputs give "
                "--out a folder (an existing one, or a path ending in /)"
            )
        self.names: set[str] = set()
        self.parts: list[str] = []
        self.records: list[dict[str, Any]] = []
        self.written: list[Path] = []

    def _unique_name(self, name: str) -> str:
        return self._unique(re.sub(r"[\\/]", "_", name) or "audio")

    def _unique(self, name: str) -> str:
        candidate, n = name, 1
        while candidate in self.names:
            n += 1
            candidate = f"{name}-{n}"
        self.names.add(candidate)
        return candidate

    def add(self, t: Transcript) -> None:
        """Write (or queue) one transcript; failed ones appear only in manifests and JSON."""
        if self.folder is not None:
            if t.error is None:
                path = self.folder / (self._unique_name(t.item.name) + FORMATS[self.fmt])
                atomic_write_text(path, render(t, self.fmt))
                self.written.append(path)
            return
        # one stream: ids stay unique too (two inputs x.flac in different folders: x, x-2)
        t = dataclasses.replace(
            t, item=dataclasses.replace(t.item, utt_id=self._unique(t.item.name))
        )
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
        if self.file is None:
            return []
        self.file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.file, "".join(self.parts))
        return [self.file]
