"""LibriSpeech (openslr 12) audio subsets and LM resources (openslr 11): download and manifests.

Layout after extraction (every subset tarball unpacks into the same ``LibriSpeech/`` root)::

    <root>/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
    <root>/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac

Each ``.trans.txt`` line is ``<utt_id> <TRANSCRIPT>``. :func:`prepare_subset` turns a subset
into one JSONL manifest (``<out>/<subset>.jsonl``, see :mod:`asr.data.manifest`) with the
duration read from the FLAC header, ``utt_id`` and ``speaker``. The synthetic corpus builder
writes the same layout, so it is prepared by the same code.

The md5 checksums are the ones openslr publishes in ``resources/12/md5sum.txt`` (audio); those
of the openslr 11 files are the values used by the pytorch-database-prep and ESPnet LibriSpeech
scripts (openslr 11 itself lists none on its page).

Example::

    root = download_subset("dev-clean", "data/librispeech")            # verified + extracted
    result = prepare_subset("data/librispeech", "dev-clean", "data/manifests")
    print(result.manifest, result.num_utterances, result.hours)
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from asr.data.manifest import ManifestError, Utterance, read_manifest, write_manifest
from asr.errors import AsrError
from asr.io.audio import AudioError, audio_info
from asr.io.download import DownloadError, Resource, extract_tar, fetch

OPENSLR_12 = "https://www.openslr.org/resources/12"
OPENSLR_11 = "https://www.openslr.org/resources/11"

# Audio subsets and the md5 of their tarballs (openslr resources/12/md5sum.txt).
SUBSET_MD5 = {
    "dev-clean": "42e2234ba48799c1f50f24a7926300a1",
    "dev-other": "c8d0bcc9cca99d4f8b62fcc847357931",
    "test-clean": "32fa31d27d2e1cad72775fee3f4849a9",
    "test-other": "fb5a50374b501bb3bac4815ee91d3135",
    "train-clean-100": "2a93770f6d5c6c964bc36631d331a522",
    "train-clean-360": "c0e676e450a7ff2f54aeade5171606fa",
    "train-other-500": "d1a0fd59409feb2c614ce4d30c387708",
}
SUBSETS = tuple(SUBSET_MD5)

# Language-model resources (openslr 11) and their md5.
LM_MD5 = {
    "librispeech-lm-norm.txt.gz": "c83c64c726a1aedfe65f80aa311de402",
    "librispeech-vocab.txt": "bf3cc7a50112831ed8b0afa40cae96a5",
}
LM_RESOURCES = tuple(LM_MD5)


class LibriSpeechError(AsrError):
    """A LibriSpeech folder or transcript that cannot be used; names the file and line."""


def subset_resource(subset: str) -> Resource:
    """The openslr 12 tarball of ``subset`` (one of :data:`SUBSETS`)."""
    if subset not in SUBSET_MD5:
        known = ", ".join(SUBSETS)
        raise LibriSpeechError(f"unknown LibriSpeech subset {subset!r} (known: {known})")
    return Resource(f"{subset}.tar.gz", OPENSLR_12, SUBSET_MD5[subset])


def lm_resource(name: str) -> Resource:
    """The openslr 11 LM file ``name`` (one of :data:`LM_RESOURCES`)."""
    if name not in LM_MD5:
        known = ", ".join(LM_RESOURCES)
        raise LibriSpeechError(f"unknown LibriSpeech LM resource {name!r} (known: {known})")
    return Resource(name, OPENSLR_11, LM_MD5[name])


def _subset_marker(dest: Path, subset: str) -> Path:
    return dest / "LibriSpeech" / f".{subset}.complete"


def download_subset(
    subset: str,
    dest: str | Path,
    mirror: str | None = None,
    source: str | Path | None = None,
    progress: bool = True,
    keep_tarball: bool = True,
    md5_overrides: Mapping[str, str] | None = None,
) -> Path:
    """Download (or take from ``source``), verify and extract one subset; skip if done.

    Args:
        subset: one of :data:`SUBSETS`.
        dest: folder that receives the tarball and ``LibriSpeech/<subset>/``.
        mirror: base URL replacing openslr 12 (``<mirror>/<subset>.tar.gz``).
        source: a local folder holding ``<subset>.tar.gz``, or that tarball itself.
        progress: show progress bars.
        keep_tarball: keep a downloaded tarball after extraction (a local ``source`` is never
            deleted).
        md5_overrides: file name -> md5 replacing the published checksum (e.g. from
            :func:`asr.io.download.read_md5_file`, for a mirror of repacked files).

    Returns:
        ``dest/LibriSpeech/<subset>``.
    """
    resource = _with_md5(subset_resource(subset), md5_overrides)
    dest = Path(dest)
    out = dest / "LibriSpeech" / subset
    marker = _subset_marker(dest, subset)
    if marker.is_file() and out.is_dir():
        return out
    tarball = fetch(resource, dest, mirror=mirror, source=source, progress=progress)
    extract_tar(tarball, dest, marker=marker)
    if not out.is_dir():
        marker.unlink()
        raise DownloadError(f"{tarball}: archive has no LibriSpeech/{subset}/ folder")
    if not keep_tarball and source is None:
        tarball.unlink()
    return out


def download_lm(
    names: tuple[str, ...] | list[str],
    dest: str | Path,
    mirror: str | None = None,
    source: str | Path | None = None,
    progress: bool = True,
    md5_overrides: Mapping[str, str] | None = None,
) -> list[Path]:
    """Download (or copy from ``source``) and verify LM resources into ``dest``; skip if done.

    ``md5_overrides`` (file name -> md5) replaces published checksums, as in
    :func:`download_subset`.
    """
    resources = [_with_md5(lm_resource(name), md5_overrides) for name in names]
    return [
        fetch(res, dest, mirror=mirror, source=source, progress=progress, copy=True)
        for res in resources
    ]


def _with_md5(resource: Resource, md5_overrides: Mapping[str, str] | None) -> Resource:
    """``resource`` with its md5 replaced when ``md5_overrides`` lists its file name."""
    if md5_overrides and resource.name in md5_overrides:
        return dataclasses.replace(resource, md5=md5_overrides[resource.name])
    return resource


@dataclass(frozen=True)
class PrepareResult:
    """What :func:`prepare_subset` wrote."""

    # The manifest written (or found, when skipped).
    manifest: Path
    # Utterances in the manifest.
    num_utterances: int
    # Total audio, in hours.
    hours: float
    # Utterances listed in a transcript whose audio file is missing (skip_missing=True).
    skipped: tuple[str, ...] = field(default=())
    # True when the manifest already existed and nothing was done.
    was_done: bool = False


def find_subset_dir(root: str | Path, subset: str) -> Path:
    """``root/LibriSpeech/<subset>`` or ``root/<subset>`` (the first that exists)."""
    root = Path(root)
    for candidate in (root / "LibriSpeech" / subset, root / subset):
        if candidate.is_dir():
            return candidate
    raise LibriSpeechError(f"{root}: no LibriSpeech/{subset}/ or {subset}/ folder")


def _numbered_dirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.name)


def read_transcripts(trans: Path) -> list[tuple[int, str, str]]:
    """Lines ``(line_number, utt_id, text)`` of one ``<speaker>-<chapter>.trans.txt``."""
    prefix = trans.name[: -len(".trans.txt")] + "-"
    out = []
    try:
        lines = trans.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise LibriSpeechError(f"{trans}: cannot read transcript: {err}") from None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        utt_id, _, text = line.strip().partition(" ")
        if not utt_id.startswith(prefix) or not text.strip():
            raise LibriSpeechError(
                f"{trans}:{lineno}: expected '{prefix}<utt> <TRANSCRIPT>', got {line.strip()!r}"
            )
        out.append((lineno, utt_id, " ".join(text.split())))
    return out


def _chapter_utterances(
    chapter: Path, speaker: str, skip_missing: bool, skipped: list[str]
) -> list[Utterance]:
    trans = chapter / f"{speaker}-{chapter.name}.trans.txt"
    if not trans.is_file():
        raise LibriSpeechError(f"{chapter}: no transcript file {trans.name}")
    utts = []
    for lineno, utt_id, text in read_transcripts(trans):
        audio = chapter / f"{utt_id}.flac"
        if not audio.is_file():
            if skip_missing:
                skipped.append(utt_id)
                continue
            raise LibriSpeechError(
                f"{trans}:{lineno}: audio for {utt_id} not found: {audio} "
                "(use --skip-missing to leave it out)"
            )
        try:
            duration = audio_info(audio).duration_s
        except AudioError as err:
            raise LibriSpeechError(f"{trans}:{lineno}: {err}") from None
        utts.append(Utterance(str(audio.resolve()), duration, text, 0.0, utt_id, speaker))
    return utts


def collect_subset(
    subset_dir: str | Path, skip_missing: bool = False, progress: bool = True
) -> tuple[list[Utterance], list[str]]:
    """All utterances of a LibriSpeech-format subset folder, sorted by speaker/chapter/utt.

    Returns ``(utterances, skipped_utt_ids)``; a transcript line whose FLAC is missing is a
    :class:`LibriSpeechError` naming the transcript and line unless ``skip_missing``.
    """
    subset_dir = Path(subset_dir)
    chapters = [
        (speaker.name, chapter)
        for speaker in _numbered_dirs(subset_dir)
        for chapter in _numbered_dirs(speaker)
    ]
    if not chapters:
        raise LibriSpeechError(f"{subset_dir}: no <speaker>/<chapter>/ folders")
    utts: list[Utterance] = []
    skipped: list[str] = []
    bar = tqdm(chapters, desc=subset_dir.name, unit="chapter", disable=not progress, leave=False)
    for speaker, chapter in bar:
        utts.extend(_chapter_utterances(chapter, speaker, skip_missing, skipped))
    if not utts:
        raise LibriSpeechError(f"{subset_dir}: no utterances with audio")
    return utts, skipped


def prepare_subset(
    root: str | Path,
    subset: str,
    out_dir: str | Path,
    skip_missing: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> PrepareResult:
    """Write ``out_dir/<subset>.jsonl`` from a LibriSpeech-format subset; skip if it exists.

    Args:
        root: folder holding ``LibriSpeech/<subset>/`` (or ``<subset>/`` directly).
        subset: subset folder name (any name: synthetic corpora use their own).
        out_dir: where the manifest goes.
        skip_missing: leave out (and report) utterances whose audio file is missing instead
            of failing.
        overwrite: rewrite an existing manifest.
        progress: show a progress bar.
    """
    from asr.io.outputs import OVERWRITE_FLAG, check_output_file

    manifest = Path(out_dir) / f"{subset}.jsonl"
    if manifest.is_file() and not overwrite:
        try:
            utts = read_manifest(manifest)
        except ManifestError as err:
            raise ManifestError(
                f"{err}; not replaced: pass {OVERWRITE_FLAG} to rewrite {manifest}"
            ) from None
        hours = sum(u.duration for u in utts) / 3600
        return PrepareResult(manifest, len(utts), hours, was_done=True)
    check_output_file(manifest, overwrite=True)  # a folder there, or unwritable: fail now
    utts, skipped = collect_subset(find_subset_dir(root, subset), skip_missing, progress)
    for utt_id in skipped:
        print(f"warning: {subset}: skipped {utt_id}: audio file missing", file=sys.stderr)
    write_manifest(manifest, utts)
    hours = sum(u.duration for u in utts) / 3600
    return PrepareResult(manifest, len(utts), hours, tuple(skipped))
