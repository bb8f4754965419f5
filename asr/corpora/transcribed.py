"""A folder of audio files plus a transcripts file (``id TAB text``) -> manifests, split by speaker.

This is the layout of ``../shared/data/librispeech-samples``: ``<root>/<id>.flac`` and a TSV whose
lines are ``<id>\\t<TEXT>``. Ids follow LibriSpeech (``<speaker>-<chapter>-<utt>``), so the
speaker is the id's first ``-`` field.

A split list (TSV with header ``speaker\\tsubset``) assigns every speaker to one subset, so the
subsets are speaker-disjoint by construction. :func:`make_speaker_split` draws one, balanced by
sex when a LibriSpeech ``SPEAKERS.TXT`` is given; the list is meant to be committed and reused.

Example::

    split = make_speaker_split(speakers, {"dev": 55}, sexes=read_speaker_sexes("SPEAKERS.TXT"))
    write_speaker_split("real_split.tsv", split)
    prepare_transcribed(root, "train-clean-100.transcripts.tsv", "real_dev.jsonl",
                        split="real_split.tsv", subset="dev")
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path

from asr.atomic import atomic_open
from asr.audio import AudioError, audio_info
from asr.data.manifest import Utterance, write_manifest
from asr.errors import AsrError
from asr.outputs import check_output_file
from asr.text import normalize_text

AUDIO_EXTENSIONS = (".flac", ".wav")
SPLIT_HEADER = "speaker\tsubset"


class TranscribedError(AsrError):
    """A transcripts file, split list or audio file that cannot be used; names file and line."""


def speaker_of(utt_id: str) -> str:
    """The speaker of a LibriSpeech-style id: ``"103-1240-0000"`` -> ``"103"``."""
    return utt_id.split("-", 1)[0]


def read_transcripts(path: str | Path) -> list[tuple[str, str]]:
    """``(id, text)`` of every non-blank line ``id<TAB>text`` of ``path``.

    Raises:
        TranscribedError: ``path:LINE: ...`` for a line without a tab, an empty id or text, or
            a repeated id.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise TranscribedError(f"{path}: cannot read ({err})") from None
    rows: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        utt_id, tab, text = line.partition("\t")
        utt_id, text = utt_id.strip(), text.strip()
        if not tab or not utt_id or not text:
            raise TranscribedError(f"{path}:{number}: expected 'id<TAB>text'")
        if utt_id in seen:
            raise TranscribedError(f"{path}:{number}: id {utt_id!r} repeats line {seen[utt_id]}")
        seen[utt_id] = number
        rows.append((utt_id, text))
    return rows


def read_speaker_sexes(path: str | Path) -> dict[str, str]:
    """Speaker id -> ``"M"``/``"F"`` from LibriSpeech's ``SPEAKERS.TXT`` (``;``: comment lines)."""
    sexes: dict[str, str] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        fields = [field.strip() for field in line.split("|")]
        if line.startswith(";") or len(fields) < 2 or fields[1] not in ("M", "F"):
            continue
        sexes[fields[0]] = fields[1]
    return sexes


def make_speaker_split(
    speakers: list[str],
    sizes: Mapping[str, int],
    rest: str = "train",
    sexes: Mapping[str, str] | None = None,
    seed: int = 0,
) -> dict[str, str]:
    """Assign each speaker to one subset: ``sizes[subset]`` speakers each, the others to ``rest``.

    Args:
        speakers: speaker ids (duplicates are ignored).
        sizes: subset -> number of speakers, e.g. ``{"dev": 55}``.
        rest: the subset of every speaker not drawn.
        sexes: speaker -> "M"/"F"; when given, each drawn subset alternates the sexes so it is
            balanced (as far as the pool allows).
        seed: the random draw's seed.
    Returns:
        speaker -> subset, in sorted speaker order.
    """
    pool = sorted(set(speakers))
    if sum(sizes.values()) > len(pool):
        raise TranscribedError(f"split: {sum(sizes.values())} speakers asked, {len(pool)} exist")
    rng = random.Random(seed)
    rng.shuffle(pool)
    by_sex: dict[str, list[str]] = {}
    for speaker in pool:
        by_sex.setdefault((sexes or {}).get(speaker, "?"), []).append(speaker)
    split: dict[str, str] = {}
    for subset, size in sizes.items():
        drawn = 0
        while drawn < size:
            for group in sorted(by_sex, key=lambda sex: -len(by_sex[sex])):
                if by_sex[group] and drawn < size:
                    split[by_sex[group].pop()] = subset
                    drawn += 1
    for speaker in pool:
        split.setdefault(speaker, rest)
    return dict(sorted(split.items()))


def write_speaker_split(path: str | Path, split: Mapping[str, str]) -> Path:
    """Write ``speaker<TAB>subset`` lines (with a header) atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(SPLIT_HEADER + "\n")
        for speaker, subset in split.items():
            handle.write(f"{speaker}\t{subset}\n")
    return Path(path)


def read_speaker_split(path: str | Path) -> dict[str, str]:
    """speaker -> subset from a split list written by :func:`write_speaker_split`."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise TranscribedError(f"{path}: cannot read ({err})") from None
    if not lines or lines[0].strip() != SPLIT_HEADER:
        raise TranscribedError(f"{path}:1: expected the header {SPLIT_HEADER!r}")
    split: dict[str, str] = {}
    for number, line in enumerate(lines[1:], 2):
        fields = line.split("\t")
        if len(fields) != 2 or not all(f.strip() for f in fields):
            raise TranscribedError(f"{path}:{number}: expected 'speaker<TAB>subset'")
        if fields[0] in split:
            raise TranscribedError(f"{path}:{number}: speaker {fields[0]!r} listed twice")
        split[fields[0].strip()] = fields[1].strip()
    return split


def _audio_file(root: Path, utt_id: str) -> Path | None:
    for ext in AUDIO_EXTENSIONS:
        if (root / f"{utt_id}{ext}").is_file():
            return root / f"{utt_id}{ext}"
    return None


def prepare_transcribed(
    root: str | Path,
    transcripts: str | Path,
    out: str | Path,
    split: str | Path | None = None,
    subset: str | None = None,
    overwrite: bool = False,
) -> list[Utterance]:
    """Write the manifest ``out`` for the audio files of ``root`` listed in ``transcripts``.

    Args:
        root: folder holding ``<id>.flac`` (or ``.wav``) for each transcript id.
        transcripts: ``id<TAB>text`` file; texts go through :func:`asr.text.normalize_text`.
        out: manifest to write (atomically); an existing one is kept unless ``overwrite``.
        split: optional speaker split list; with ``subset``, only that subset's speakers.
        subset: the subset of ``split`` to keep (both or neither must be given).
        overwrite: rewrite an existing manifest.
    Returns:
        The utterances written (empty when ``out`` existed and was kept).
    Raises:
        TranscribedError: a bad transcripts/split line, a speaker missing from the split, a
            missing or unreadable audio file (named), or an empty selection.
    """
    root, out = Path(root), Path(out)
    if (split is None) != (subset is None):
        raise TranscribedError("prepare: give both split and subset, or neither")
    if out.exists() and not overwrite:
        return []
    inputs = [transcripts] if split is None else [transcripts, split]
    check_output_file(out, overwrite=True, inputs=inputs)  # fail before reading the audio
    speakers = read_speaker_split(split) if split is not None else None
    utterances = []
    for utt_id, text in read_transcripts(transcripts):
        speaker = speaker_of(utt_id)
        if speakers is not None:
            if speaker not in speakers:
                raise TranscribedError(f"{split}: speaker {speaker!r} ({utt_id}) is not listed")
            if speakers[speaker] != subset:
                continue
        audio = _audio_file(root, utt_id)
        if audio is None:
            raise TranscribedError(f"{root}: no audio file for {utt_id} ({transcripts})")
        try:
            duration = audio_info(audio).duration_s
        except AudioError as err:
            raise TranscribedError(str(err)) from None
        utterances.append(
            Utterance(str(audio.resolve()), duration, normalize_text(text), 0.0, utt_id, speaker)
        )
    if not utterances:
        raise TranscribedError(f"{transcripts}: no utterance of subset {subset!r}")
    write_manifest(out, utterances)
    return utterances
