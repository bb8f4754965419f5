"""What to recognise: audio files, folders and manifests expanded into :class:`AudioItem` s.

One collector serves ``asr transcribe``, ``asr decode`` and ``asr features``: a folder is searched
recursively for :data:`AUDIO_SUFFIXES`, a ``.jsonl``/``.json`` file is read as a manifest, and
anything else is taken as an audio file. Every item has one identity, :attr:`AudioItem.name`
(:func:`asr.data.manifest.utterance_id`); :func:`distinct_names` tells apart the items of one
run that share it (``a/x.flac`` and ``b/x.flac`` are ``a/x`` and ``b/x``), or refuses.

Example::

    items, errors = collect_inputs(["talk.flac", "corpus/", "data/test.jsonl"])
    for item in items:
        print(item.name, item.path, item.offset_s, item.duration_s)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
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
    # Where it was listed, for messages ("data.jsonl utterance 3"); None: given as a file.
    origin: str | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def source(self) -> str | Waveform:
        """What to read: the in-memory audio, else the file (:func:`asr.io.audio.load_audio`)."""
        return self.audio if self.audio is not None else self.path

    @property
    def name(self) -> str:
        """The utterance identity (:func:`asr.data.manifest.utterance_id`)."""
        return utterance_id(self.path, self.offset_s, self.utt_id)

    @property
    def where(self) -> str:
        """The item in a message: its manifest line, else its file (and offset)."""
        if self.origin is not None:
            return self.origin
        return f"{self.path}@{self.offset_s:g}" if self.offset_s else self.path

    @classmethod
    def from_utterance(cls, utt: Utterance, origin: str | None = None) -> AudioItem:
        """The item of a manifest line (a duration of 0 means "to the end of the file")."""
        duration = utt.duration if utt.duration > 0 else None
        return cls(
            utt.audio_filepath, utt.offset, duration, utt.utt_id, utt.text, utt.speaker,
            origin=origin,
        )  # fmt: skip


def audio_files(folder: str | Path) -> list[Path]:
    """Files below ``folder`` (recursively) with one of :data:`AUDIO_SUFFIXES`, sorted."""
    found = (p for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    return sorted(p for p in found if p.is_file())


def manifest_items(path: str | Path, require_text: bool = True) -> list[AudioItem]:
    """The items of a JSONL manifest, in order (:class:`asr.data.manifest.ManifestError` when
    a line is bad; a line without ``text`` is bad unless ``require_text`` is False, as for
    audio to transcribe)."""
    utterances = read_manifest(path, require_text=require_text)
    return [
        AudioItem.from_utterance(u, f"{path} utterance {k}") for k, u in enumerate(utterances, 1)
    ]


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
        return manifest_items(path, require_text=False)  # audio to transcribe: no reference
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


def _folder_names(items: Sequence[AudioItem]) -> list[str]:
    """The names of ``items`` (one derived name, e.g. ``x``, shared) prefixed with as few of
    their parent folders as tell them apart (``a/x`` and ``b/x``); when no folder does (``x.wav``
    and ``x.flac`` in one folder), with the file names' suffixes (``a/x.wav``, ``a/x.flac``)."""
    paths = [Path(os.path.abspath(item.path)) for item in items]
    deepest = max(len(path.parts) - 2 for path in paths)  # folders below the root
    tries = [(d, False) for d in range(1, deepest + 1)] + [(d, True) for d in range(deepest + 1)]
    names = [item.name for item in items]
    for depth, suffix in tries:
        names = [_folder_name(path, item, depth, suffix) for path, item in zip(paths, items)]
        if len(set(names)) == len(names):
            break
    return names


def _folder_name(path: Path, item: AudioItem, depth: int, suffix: bool) -> str:
    """``item``'s name after ``depth`` parent folders of ``path`` (``suffix``: its file name)."""
    base = path.name if suffix else path.stem
    base = f"{base}@{item.offset_s:g}" if item.offset_s else base
    folders = path.parent.parts[1:]
    return "/".join([*folders[max(len(folders) - depth, 0) :], base])


def _clash(first: AudioItem, second: AudioItem, name: str) -> InputError:
    if first.utt_id is None and second.utt_id is None:
        why = "the same file from the same start given twice"
    else:
        why = "ids must be unique (asr score pairs utterances by id)"
    return InputError(f"{first.where} and {second.where} are both named {name!r}: {why}")


def distinct_names(items: Sequence[AudioItem]) -> list[str]:
    """One distinct name per item, whatever their order (the ids of ``asr transcribe``'s output).

    An item keeps :attr:`AudioItem.name` unless an item without an explicit id (a file, a
    manifest line without ``utt_id``) shares it: those are then told apart by their parent
    folders, as few as needed (``a/x.flac``, ``b/x.flac`` and ``a/x-2.flac`` are ``a/x``,
    ``b/x`` and ``x-2``; an explicit id ``x`` stays ``x``).

    Raises:
        InputError: two items that cannot be told apart (the same file and offset twice, an
            explicit id given twice, or a folder-derived name that another item has), naming
            both.
    """
    names = [item.name for item in items]
    groups: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        groups.setdefault(name, []).append(index)
    for name, members in groups.items():
        if len(members) < 2:
            continue
        explicit = [i for i in members if items[i].utt_id is not None]
        if len(explicit) > 1:
            raise _clash(items[explicit[0]], items[explicit[1]], name)
        derived = [i for i in members if items[i].utt_id is None]
        renamed: dict[str, int] = {}
        for index, new in zip(derived, _folder_names([items[i] for i in derived])):
            if new in renamed:  # the same path: nothing tells them apart
                raise _clash(items[renamed[new]], items[index], name)
            renamed[new] = index
            names[index] = new
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            raise _clash(items[seen[name]], items[index], name)
        seen[name] = index
    return names
