"""The Kaldi "yesno" corpus (openslr resource 1): 60 WAV files -> train/test manifests.

``waves_yesno.tar.gz`` unpacks to ``waves_yesno/<l1>_<l2>_..._<l8>.wav`` (8 kHz, one speaker,
8 words each); the file name is the transcript, 1 = YES and 0 = NO.

Splits (both 30/30, both from the file names sorted in byte order):

- ``"kaldi"`` (default): the first 30 files train, the last 30 test, as Kaldi's
  ``egs/yesno/s5/local/create_yesno_waves_test_train.pl`` does with the ``ls`` listing.
- ``"icefall"``: even positions train, odd positions test, as lhotse's yesno recipe (used by
  icefall's ``egs/yesno``) does.

The split is recorded in ``out_dir/.yesno-split`` beside the manifests; preparing the folder
again with another split is refused (``--overwrite`` rewrites it).

openslr publishes no checksum for this tarball, so a download is not md5-verified (a warning
says so; a local tarball, ``source``, gets none); instead the extracted folder must hold exactly
60 well-named WAV files.
"""

from __future__ import annotations

import re
from pathlib import Path

from asr.data.manifest import Utterance, read_manifest, write_manifest
from asr.errors import AsrError
from asr.io.atomic import atomic_write_text
from asr.io.audio import AudioError, audio_info
from asr.io.download import Resource, extract_tar, fetch
from asr.io.outputs import OVERWRITE_FLAG, check_output_file

OPENSLR_1 = "https://www.openslr.org/resources/1"
# md5=None: openslr publishes none for resource 1.
YESNO_RESOURCE = Resource("waves_yesno.tar.gz", OPENSLR_1, None)
NUM_FILES = 60
SPLITS = ("kaldi", "icefall")
WORDS = {"0": "NO", "1": "YES"}
_NAME = re.compile(r"^[01](_[01]){7}$")


class YesNoError(AsrError):
    """A yesno folder or file that cannot be used; names the path."""


def download_yesno(
    dest: str | Path,
    mirror: str | None = None,
    source: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Download (or take from ``source``) and extract the tarball; returns ``dest/waves_yesno``.

    Args:
        dest: folder receiving the tarball and ``waves_yesno/``.
        mirror: base URL replacing openslr 1.
        source: a local folder holding ``waves_yesno.tar.gz``, or the tarball itself.
        progress: show a progress bar.
    """
    dest = Path(dest)
    out = dest / "waves_yesno"
    marker = dest / ".waves_yesno.complete"
    if marker.is_file() and out.is_dir():
        return out
    tarball = fetch(
        YESNO_RESOURCE, dest, mirror=mirror, source=source, progress=progress,
        warn_unchecked=source is None,  # the user's own file: its 60 WAV files are checked below
    )  # fmt: skip
    extract_tar(tarball, dest, marker=marker)
    try:
        find_wavs(out)
    except YesNoError:
        marker.unlink()
        raise
    return out


def find_wavs(root: str | Path) -> list[Path]:
    """The 60 WAV files of ``root`` (the ``waves_yesno`` folder or its parent), sorted."""
    root = Path(root)
    folder = root / "waves_yesno" if (root / "waves_yesno").is_dir() else root
    if not folder.is_dir():
        raise YesNoError(f"{root}: folder not found")
    wavs = sorted(folder.glob("*.wav"), key=lambda p: p.name)
    if len(wavs) != NUM_FILES:
        raise YesNoError(f"{folder}: expected {NUM_FILES} .wav files, found {len(wavs)}")
    for wav in wavs:
        if not _NAME.match(wav.stem):
            raise YesNoError(f"{wav}: file name is not 8 labels 0/1 joined by '_'")
    return wavs


def transcript(path: str | Path) -> str:
    """The words of a yesno file from its name: ``1_0_...`` -> ``"YES NO ..."``."""
    stem = Path(path).stem
    if not _NAME.match(stem):
        raise YesNoError(f"{path}: file name is not 8 labels 0/1 joined by '_'")
    return " ".join(WORDS[label] for label in stem.split("_"))


def split_files(wavs: list[Path], split: str = "kaldi") -> tuple[list[Path], list[Path]]:
    """``(train, test)``, 30 files each, from the sorted file list (see the module docstring)."""
    wavs = sorted(wavs, key=lambda p: p.name)
    if split == "kaldi":
        half = len(wavs) // 2
        return wavs[:half], wavs[half:]
    if split == "icefall":
        return wavs[::2], wavs[1::2]
    raise YesNoError(f"unknown yesno split {split!r} (known: {', '.join(SPLITS)})")


def _utterance(wav: Path) -> Utterance:
    try:
        duration = audio_info(wav).duration_s
    except AudioError as err:
        raise YesNoError(str(err)) from None
    return Utterance(str(wav.resolve()), duration, transcript(wav), 0.0, wav.stem, None)


SPLIT_STAMP = ".yesno-split"  # in the manifests' folder: the split they were written with


def _prepared_split(out_dir: Path, paths: dict[str, Path]) -> str | None:
    """The split of existing manifests: the stamp, else worked out from their utt_ids."""
    stamp = out_dir / SPLIT_STAMP
    if stamp.is_file():
        return stamp.read_text().strip()
    try:
        train = [u.utt_id or "" for u in read_manifest(paths["train"])]
        test = [u.utt_id or "" for u in read_manifest(paths["test"])]
    except AsrError:
        return None
    names = [Path(f"{i}.wav") for i in sorted(train + test)]
    for split in SPLITS:
        if [p.stem for p in split_files(names, split)[0]] == train:
            return split
    return None


def prepare_yesno(
    root: str | Path, out_dir: str | Path, split: str = "kaldi", overwrite: bool = False
) -> dict[str, Path]:
    """Write ``out_dir/train.jsonl`` and ``out_dir/test.jsonl``; skip when both exist.

    Args:
        root: the extracted ``waves_yesno`` folder or its parent.
        out_dir: where the manifests go.
        split: ``"kaldi"`` or ``"icefall"`` (see the module docstring).
        overwrite: rewrite existing manifests.

    Returns:
        ``{"train": path, "test": path}``.
    """
    out_dir = Path(out_dir)
    paths = {"train": out_dir / "train.jsonl", "test": out_dir / "test.jsonl"}
    if split not in SPLITS:
        raise YesNoError(f"unknown yesno split {split!r} (known: {', '.join(SPLITS)})")
    existing = [p for p in paths.values() if p.exists()]
    if not overwrite and len(existing) == len(paths) and all(p.is_file() for p in existing):
        done = _prepared_split(out_dir, paths)
        if done not in (None, split):
            raise YesNoError(
                f"{out_dir}: holds manifests of the {done} split, not {split}; pass "
                f"{OVERWRITE_FLAG} to rewrite them with the {split} split"
            )
        return paths
    if not overwrite and existing:  # not both: not a finished run of ours, so not ours
        raise YesNoError(f"{existing[0]}: exists; pass {OVERWRITE_FLAG} to rewrite it")
    for path in paths.values():
        check_output_file(path, overwrite=True)  # a folder there, or unwritable: fail now
    train, test = split_files(find_wavs(root), split)
    for name, files in (("train", train), ("test", test)):
        write_manifest(paths[name], [_utterance(wav) for wav in files])
    atomic_write_text(out_dir / SPLIT_STAMP, split + "\n")
    return paths
