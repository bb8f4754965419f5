"""What to recognise: audio files, folders and manifests expanded into :class:`AudioItem` s.

One collector serves ``asr transcribe``, ``asr decode`` and ``asr features``: a folder is searched
recursively for :data:`AUDIO_SUFFIXES`, a ``.jsonl``/``.json`` file is read as a manifest, and
anything else is taken as an audio file. Every item has one identity, :attr:`AudioItem.name`
(:func:`asr.data.manifest.utterance_id`).

Example::

    items, errors = collect_inputs(["talk.flac", "corpus/", "data/test.jsonl"])
    for item in items:
        print(item.name, item.path, item.offset_s, item.duration_s)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import soundfile as sf

from asr.data.manifest import Utterance, read_manifest, utterance_id
from asr.errors import AsrError
from asr.io.audio import Waveform

# File suffixes searched for in folders (libsndfile's formats; RAW needs parameters: skipped).
AUDIO_SUFFIXES = frozenset(
    {f".{name.lower()}" for name in sf.available_formats() if name != "RAW"}
    | {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".sph"}
)
# File suffixes read as manifests.
MANIFEST_SUFFIXES = frozenset({".jsonl", ".json"})


@dataclasses.dataclass(frozen=True)
class AudioItem:
    """One thing to recognise: a whole audio file (or audio in memory), or a segment of it."""

    path: str  # audio file
    offset_s: float = 0.0  # start of the segment in the file, seconds
    duration_s: float | None = None  # length of the segment; None: to the end of the file
    utt_id: str | None = None  # explicit id (a manifest's), else derived from path and offset
    text: str | None = None  # reference transcript (manifests)
    speaker: str | None = None  # speaker id (manifests)
    # Audio in memory (an array given to asr.transcribe); ``path`` then only names it.
    audio: Waveform | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def source(self) -> str | Waveform:
        """What to read: the in-memory audio, else the file (:func:`asr.io.audio.load_audio`)."""
        return self.audio if self.audio is not None else self.path

    @property
    def name(self) -> str:
        """The utterance identity (:func:`asr.data.manifest.utterance_id`)."""
        return utterance_id(self.path, self.offset_s, self.utt_id)

    @classmethod
    def from_utterance(cls, utt: Utterance) -> AudioItem:
        """The item of a manifest line (a duration of 0 means "to the end of the file")."""
        duration = utt.duration if utt.duration > 0 else None
        return cls(utt.audio_filepath, utt.offset, duration, utt.utt_id, utt.text, utt.speaker)


def audio_files(folder: str | Path) -> list[Path]:
    """Files below ``folder`` (recursively) with one of :data:`AUDIO_SUFFIXES`, sorted."""
    found = (p for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    return sorted(p for p in found if p.is_file())


def manifest_items(path: str | Path) -> list[AudioItem]:
    """The items of a JSONL manifest, in order (:class:`asr.data.manifest.ManifestError` when
    a line is bad)."""
    return [AudioItem.from_utterance(u) for u in read_manifest(path)]


class InputError(AsrError):
    """An input that gives nothing to recognise (an empty folder)."""


def expand_input(entry: str | Path) -> list[AudioItem]:
    """The items of one input: a folder's audio files, a manifest's lines, or the file itself.

    Raises:
        InputError: a folder without audio files; ManifestError: a bad manifest.
    """
    path = Path(entry)
    if path.is_dir():
        found = [AudioItem(str(p)) for p in audio_files(path)]
        if not found:
            raise InputError(f"{path}: no audio files in this folder")
        return found
    if path.suffix.lower() in MANIFEST_SUFFIXES:
        return manifest_items(path)
    return [AudioItem(str(path))]


def collect_inputs(inputs: Iterable[str | Path]) -> tuple[list[AudioItem], list[str]]:
    """Expand files, folders (recursively, by audio suffix) and manifests (``.jsonl``/``.json``).

    Args:
        inputs: paths as the user gave them.
    Returns:
        (items in input order, one error message per input that gave nothing: an empty
        folder or an unreadable manifest). A missing file becomes an item (it fails when it
        is read, with the other per-file errors).
    """
    items: list[AudioItem] = []
    errors: list[str] = []
    for entry in inputs:
        try:
            items.extend(expand_input(entry))
        except AsrError as err:
            errors.append(str(err))
    return items, errors
