"""A folder of audio files plus a transcripts file (``id TAB text [TAB speaker]``) -> manifests.

The layout is ``<root>/<id>.<ext>`` (FLAC, WAV, MP3, OGG or Opus at any rate; channels are
averaged) and a TSV whose lines are ``<id>\\t<text>[\\t<speaker>[\\t<anything>...]]``. Without a
speaker column the speaker is the id's first ``-`` field (LibriSpeech ids,
``<speaker>-<chapter>-<utt>``). Texts go through :func:`asr.text.normalize.normalize_text` (mixed
case, punctuation and digits become the LibriSpeech convention). With ``audio_out`` every file not
already 16-bit-or-better mono FLAC/WAV at the wanted rate is converted once into
``<audio_out>/<id>.flac``, so that training does not decode MP3 or resample 48 kHz audio on every
epoch.

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
from collections.abc import Iterable, Mapping
from pathlib import Path

from asr.data.manifest import Utterance, write_manifest
from asr.errors import AsrError
from asr.io.atomic import atomic_open
from asr.io.audio import AudioError, audio_info, load_audio, save_audio
from asr.io.outputs import check_output_file
from asr.text.normalize import normalize_text

AUDIO_EXTENSIONS = (".flac", ".wav", ".mp3", ".ogg", ".opus")
NATIVE_EXTENSIONS = (".flac", ".wav")  # read directly by training when the rate matches
SPLIT_HEADER = "speaker\tsubset"


class TranscribedError(AsrError):
    """A transcripts file, split list or audio file that cannot be used; names file and line."""


def speaker_of(utt_id: str) -> str:
    """The speaker of a LibriSpeech-style id: ``"103-1240-0000"`` -> ``"103"``."""
    return utt_id.split("-", 1)[0]


def read_transcripts(path: str | Path) -> list[tuple[str, str]]:
    """``(id, text)`` of every non-blank line ``id<TAB>text[<TAB>...]`` of ``path``.

    Raises:
        TranscribedError: ``path:LINE: ...`` for a line without a tab, an empty id or text, or
            a repeated id.
    """
    return [(utt_id, text) for utt_id, text, _ in read_transcript_rows(path)]


def read_transcript_rows(path: str | Path) -> list[tuple[str, str, str]]:
    """``(id, text, speaker)`` of every non-blank line ``id<TAB>text[<TAB>speaker[<TAB>...]]``.

    The speaker is the third column when present and non-empty, else :func:`speaker_of` the id.
    Further columns (a split name, a note) are ignored.

    Raises:
        TranscribedError: ``path:LINE: ...`` for a line without a tab, an empty id or text, or
            a repeated id.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise TranscribedError(f"{path}: cannot read ({err})") from None
    rows: list[tuple[str, str, str]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split("\t")]
        if len(fields) < 2 or not fields[0] or not fields[1]:
            raise TranscribedError(f"{path}:{number}: expected 'id<TAB>text[<TAB>speaker]'")
        utt_id, text = fields[0], fields[1]
        if utt_id in seen:
            raise TranscribedError(f"{path}:{number}: id {utt_id!r} repeats line {seen[utt_id]}")
        seen[utt_id] = number
        speaker = fields[2] if len(fields) > 2 and fields[2] else speaker_of(utt_id)
        rows.append((utt_id, text, speaker))
    return rows


def read_id_list(path: str | Path) -> set[str]:
    """Utterance ids to leave out: a JSONL manifest's ids, or each line's first field.

    Raises:
        TranscribedError: an unreadable file, or a manifest line without an id.
    """
    path = Path(path)
    if path.suffix == ".jsonl":
        from asr.data.manifest import ManifestError, read_manifest

        try:
            utts = read_manifest(path)
        except ManifestError as err:
            raise TranscribedError(str(err)) from None
        missing = [n for n, utt in enumerate(utts, 1) if not utt.utt_id]
        if missing:
            raise TranscribedError(f"{path}:{missing[0]}: no utt_id (needed to exclude it)")
        return {str(utt.utt_id) for utt in utts}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise TranscribedError(f"{path}: cannot read ({err})") from None
    return {line.split()[0] for line in lines if line.strip() and not line.startswith("#")}


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
        for name in (f"{utt_id}{ext}", f"{utt_id}{ext.upper()}"):
            if (root / name).is_file():
                return root / name
    return None


def _converted(audio: Path, utt_id: str, audio_out: Path, sample_rate: int) -> tuple[Path, float]:
    """``audio`` as 16-bit mono FLAC at ``sample_rate`` in ``audio_out`` (made once, atomically).

    Files already FLAC/WAV, mono and at ``sample_rate`` are used in place. Returns the path the
    manifest should name and its duration in seconds.
    """
    info = audio_info(audio)
    native = audio.suffix.lower() in NATIVE_EXTENSIONS and info.channels == 1
    if native and info.sample_rate == sample_rate:
        return audio, info.duration_s
    target = audio_out / f"{utt_id}.flac"
    if not target.is_file():
        samples, _ = load_audio(audio, sample_rate)
        save_audio(target, samples, sample_rate, subtype="PCM_16")  # atomic
    return target, audio_info(target).duration_s


def _selected(
    rows: list[tuple[str, str, str]],
    speakers: dict[str, str] | None,
    split: str | Path | None,
    subset: str | None,
    exclude: set[str],
) -> list[tuple[str, str, str]]:
    kept = []
    for utt_id, text, speaker in rows:
        if utt_id in exclude:
            continue
        if speakers is not None:
            if speaker not in speakers:
                raise TranscribedError(f"{split}: speaker {speaker!r} ({utt_id}) is not listed")
            if speakers[speaker] != subset:
                continue
        kept.append((utt_id, text, speaker))
    return kept


def prepare_transcribed(
    root: str | Path,
    transcripts: str | Path,
    out: str | Path,
    split: str | Path | None = None,
    subset: str | None = None,
    overwrite: bool = False,
    exclude: Iterable[str | Path] = (),
    audio_out: str | Path | None = None,
    sample_rate: int = 16000,
) -> list[Utterance]:
    """Write the manifest ``out`` for the audio files of ``root`` listed in ``transcripts``.

    Args:
        root: folder holding ``<id>.<ext>`` for each transcript id (``AUDIO_EXTENSIONS``, either
            case).
        transcripts: ``id<TAB>text[<TAB>speaker]`` file; texts go through
            :func:`asr.text.normalize.normalize_text`; the speaker defaults to the id's first ``-``
            field.
        out: manifest to write (atomically); an existing one is kept unless ``overwrite``.
        split: optional speaker split list; with ``subset``, only that subset's speakers.
        subset: the subset of ``split`` to keep (both or neither must be given).
        overwrite: rewrite an existing manifest.
        exclude: files of utterance ids to leave out (:func:`read_id_list`: a JSONL manifest, or
            one id per line), e.g. evaluation clips or utterances another manifest already has.
        audio_out: when given, a folder where files that are not mono FLAC/WAV at
            ``sample_rate`` are converted once (16-bit FLAC); the manifest names the converted
            files. None (default): the manifest names the originals.
        sample_rate: the rate, Hz, ``audio_out`` conversions target (default 16000).
    Returns:
        The utterances written (empty when ``out`` existed and was kept).
    Raises:
        TranscribedError: a bad transcripts/split line, a speaker missing from the split, a
            missing or unreadable audio file (named), or an empty selection.
    """
    root, out = Path(root), Path(out)
    if (split is None) != (subset is None):
        raise TranscribedError("prepare: give both split and subset, or neither")
    rate_ok = isinstance(sample_rate, int) and 1000 <= sample_rate <= 192000
    if audio_out is not None and not rate_ok:
        raise TranscribedError(f"prepare: sample rate must be 1000..192000 Hz, got {sample_rate}")
    if out.exists() and not overwrite:
        return []
    exclude_files = [Path(path) for path in exclude]
    inputs = [transcripts, *exclude_files] + ([] if split is None else [split])
    check_output_file(out, overwrite=True, inputs=inputs)  # fail before reading the audio
    speakers = read_speaker_split(split) if split is not None else None
    excluded = set().union(*(read_id_list(path) for path in exclude_files))
    rows = _selected(read_transcript_rows(transcripts), speakers, split, subset, excluded)
    if audio_out is not None:
        Path(audio_out).mkdir(parents=True, exist_ok=True)
    utterances = []
    for utt_id, text, speaker in rows:
        audio = _audio_file(root, utt_id)
        if audio is None:
            raise TranscribedError(f"{root}: no audio file for {utt_id} ({transcripts})")
        try:
            if audio_out is None:
                duration = audio_info(audio).duration_s
            else:
                audio, duration = _converted(audio, utt_id, Path(audio_out), sample_rate)
        except AudioError as err:
            raise TranscribedError(str(err)) from None
        utterances.append(
            Utterance(str(audio.resolve()), duration, normalize_text(text), 0.0, utt_id, speaker)
        )
    if not utterances:
        raise TranscribedError(f"{transcripts}: no utterance of subset {subset!r}")
    write_manifest(out, utterances)
    return utterances
