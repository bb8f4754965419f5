"""Downloads that survive bad networks: resume, checksums, atomic completion, safe extraction.

- :func:`download` fetches a URL into a file with a progress bar (only on a terminal). Bytes
  arrive in ``<file>.part``; a dropped connection is resumed with an HTTP ``Range`` request
  (within the call, up to ``retries`` times, and on the next call if the process died), only
  against the same version of the file (``If-Range``, see :mod:`asr.io.transfer`): a server
  that ignores it, or answers 200 instead of 206, makes the download restart from byte 0. With
  an expected size, a download far from it is refused and never read past it; the free disk
  space is checked first. When complete, the md5 and/or sha256 is checked and the ``.part`` file
  is renamed onto the destination, so the destination only ever holds a whole, verified file.
- :func:`fetch` resolves where a :class:`Resource` comes from: a mirror base URL (default: the
  resource's own, e.g. openslr), a local folder holding the files, or a local file path.
- :func:`extract_tar` unpacks a tarball safely (no absolute paths, no ``..``, no links out of
  the destination, no device files, no compression bomb: bounded member count and expansion)
  and leaves a marker file so a second call skips the work.

Every failure is a :class:`DownloadError`: one line naming the URL or path and the reason.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tarfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from asr.io.atomic import atomic_path
from asr.io.transfer import (
    CHUNK_BYTES,
    TIMEOUT_S,
    ChecksumError,
    DownloadError,
    DroppedError,
    InterruptedDownloadError,
    LocalError,
    Plan,
    check_size,
    discard,
    entity_file,
    fetch_into,
    local_error,
)

__all__ = [
    "ChecksumError",
    "DownloadError",
    "InterruptedDownloadError",
    "LocalError",
    "Resource",
    "download",
    "extract_tar",
    "fetch",
    "file_digest",
    "md5sum",
    "read_md5_file",
    "sha256sum",
    "verify_md5",
]

# extract_tar's bounds: the archive may expand to at most MAX_EXTRACT_RATIO times its size on
# disk (or MIN_EXTRACT_BYTES, whichever is larger), counting 512 bytes per member header, and
# hold at most MAX_TAR_MEMBERS members (tarfile keeps an object per member in memory). Corpus
# tarballs of FLAC expand ~1x, of WAV or text a few times, with under 200 k members (LibriSpeech
# train-other-500); a gzip bomb of zeros expands ~1000x.
MAX_EXTRACT_RATIO = 20
MIN_EXTRACT_BYTES = 1 << 30
MAX_TAR_MEMBERS = 500_000
TAR_HEADER_BYTES = 512

# Times a dropped connection is resumed within one download() call.
RETRIES = 3
# Pause before retry k is RETRY_PAUSE_S * k seconds.
RETRY_PAUSE_S = 1.0


@dataclass(frozen=True)
class Resource:
    """A file published at ``<base_url>/<name>`` with a known checksum."""

    # File name on the server and on disk, e.g. "dev-clean.tar.gz".
    name: str
    # Default mirror base URL, e.g. "https://www.openslr.org/resources/12".
    base_url: str
    # Published md5 (hex), or None when no checksum is published (a warning is printed).
    md5: str | None


def file_digest(path: str | Path, algorithm: str, chunk_bytes: int = CHUNK_BYTES) -> str:
    """Hex digest (``algorithm``: "md5" or "sha256") of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def md5sum(path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> str:
    """Hex md5 of a file, read in chunks."""
    return file_digest(path, "md5", chunk_bytes)


def sha256sum(path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> str:
    """Hex sha256 of a file, read in chunks."""
    return file_digest(path, "sha256", chunk_bytes)


def verify_md5(
    path: str | Path,
    md5: str | None,
    what: str | None = None,
    sha256: str | None = None,
    warn: bool = True,
) -> None:
    """Raise :class:`ChecksumError` unless ``path``'s md5 is ``md5`` and its sha256 is
    ``sha256`` (each checked when given; neither given: a warning unless not ``warn``).

    ``what`` (default: the path) names the file in the messages, e.g. the URL it came from.
    """
    what = what or str(path)
    if md5 is None and sha256 is None:
        if warn:
            message = f"warning: {what}: no published md5 or sha256 checksum; not verified"
            print(message, file=sys.stderr)
        return
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is None:
            continue
        actual = file_digest(path, algorithm)
        if actual != expected.lower():
            raise ChecksumError(
                f"{what}: {algorithm} mismatch: expected {expected.lower()}, got {actual}"
            )


def read_md5_file(path: str | Path) -> dict[str, str]:
    """File name -> hex md5 from an ``md5sum``-style file (``<md5>  <name>`` lines).

    Used to override published checksums, e.g. for a private mirror holding repacked files.
    Blank lines and lines starting with ``#`` are ignored; ``*name`` (binary mode) is accepted.
    """
    table: dict[str, str] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DownloadError(f"{path}: cannot read md5 file: {err}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2 or not re.fullmatch(r"[0-9a-fA-F]{32}", fields[0]):
            raise DownloadError(f"{path}:{number}: expected '<md5>  <file name>', got {line!r}")
        table[PurePosixPath(fields[1].lstrip("*")).name] = fields[0].lower()
    return table


def _transfer(url: str, part: Path, plan: Plan, retries: int) -> None:
    """Fetch ``url`` into ``part``, resuming a dropped connection up to ``retries`` times."""
    for attempt in range(retries + 1):
        try:
            fetch_into(url, part, plan)
            return
        except DroppedError as err:
            if attempt < retries:
                time.sleep(RETRY_PAUSE_S * attempt)
                continue
            if not plan.resumable(part):  # this server does not say which version it sends
                discard(part)
                raise InterruptedDownloadError(
                    f"{url}: download interrupted ({err}); the server does not identify the "
                    "file's version (no ETag or Last-Modified), so nothing is kept to resume: "
                    "run again to retry"
                ) from None
            have = part.stat().st_size
            raise InterruptedDownloadError(
                f"{url}: download interrupted ({err}); {have} bytes kept in {part}, "
                "run again to resume"
            ) from None


def download(
    url: str,
    dest: str | Path,
    md5: str | None = None,
    progress: bool = True,
    retries: int = RETRIES,
    timeout_s: float = TIMEOUT_S,
    sha256: str | None = None,
    expected_bytes: int | None = None,
    warn_unchecked: bool = True,
) -> Path:
    """Download ``url`` to ``dest``: resumable, checksum-verified, atomic. Returns ``dest``.

    Args:
        url: http(s) URL of the file.
        dest: destination file; an existing one is verified against ``md5`` and kept.
        md5: expected hex md5 (None: not checked; neither md5 nor sha256: a warning).
        progress: show a tqdm progress bar on stderr (never when stderr is not a terminal).
        retries: how many times a dropped connection is resumed before giving up (the
            ``.part`` file is kept, so running again resumes too).
        timeout_s: socket timeout for connecting and for each read.
        sha256: expected hex sha256 (None: not checked). A mismatching download is deleted.
        expected_bytes: approximate size: a file announced or arriving outside a factor
            ``SIZE_SLACK`` of it is refused, and no more than that is read (None: unknown).
        warn_unchecked: warn when neither md5 nor sha256 is given (a caller that checks the
            file itself passes False).
    Raises:
        DownloadError (ChecksumError, InterruptedDownloadError, LocalError: see each): one line.
    """
    dest = Path(dest)
    if dest.is_file():
        where = f"{dest} (delete it to download {url} again)"
        verify_md5(dest, md5, where, sha256, warn=warn_unchecked)
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise local_error(dest.parent, "create the download folder", err) from None
    part = dest.with_name(dest.name + ".part")
    checked = md5 is not None or sha256 is not None
    plan = Plan(timeout_s, progress, checked, expected_bytes)
    _transfer(url, part, plan, retries)
    check_size(url, part, plan)
    try:
        verify_md5(part, md5, url, sha256, warn=warn_unchecked)
    except DownloadError:
        discard(part)
        raise
    try:
        with open(part, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(part, dest)
    except OSError as err:
        raise local_error(dest, "write the download", err) from None
    entity_file(part).unlink(missing_ok=True)
    return dest


def _local_file(name: str, source: Path) -> Path:
    if source.is_dir():
        path = source / name
        if not path.is_file():
            raise DownloadError(f"{source}: source folder has no {name}")
        return path
    if source.is_file():
        if source.name != name:
            raise DownloadError(f"{source}: source file is not {name}")
        return source
    raise DownloadError(f"{source}: source not found (expected a folder or {name})")


def fetch(
    resource: Resource,
    dest_dir: str | Path,
    mirror: str | None = None,
    source: str | Path | None = None,
    progress: bool = True,
    copy: bool = False,
    warn_unchecked: bool = True,
) -> Path:
    """Get a verified local copy of ``resource``; returns its path.

    Args:
        resource: what to get.
        dest_dir: folder that receives downloads (``dest_dir/<name>``).
        mirror: base URL replacing ``resource.base_url`` (the file is ``<mirror>/<name>``).
        source: a local folder holding ``<name>`` or the local file itself, used instead of
            the network; it is verified and used in place unless ``copy``.
        progress: show progress bars.
        copy: copy a local source into ``dest_dir`` (atomically) instead of using it in place.
        warn_unchecked: warn when ``resource`` has no checksum (False: the caller checks the
            file's contents itself).
    """
    dest_dir = Path(dest_dir)
    warn = warn_unchecked
    if source is None:
        url = f"{(mirror or resource.base_url).rstrip('/')}/{resource.name}"
        dest = dest_dir / resource.name
        return download(url, dest, resource.md5, progress=progress, warn_unchecked=warn)
    path = _local_file(resource.name, Path(source))
    target = dest_dir / resource.name
    if copy and target.is_file():  # copied before (or the source is the target): check it
        verify_md5(target, resource.md5, f"{target} (delete it to copy {path} again)", warn=warn)
        return target
    verify_md5(path, resource.md5, warn=warn)
    if not copy:
        return path
    with atomic_path(target) as tmp:
        tmp.unlink()
        try:
            os.link(path, tmp)  # same file system: no copy needed
        except OSError:
            shutil.copyfile(path, tmp)
    return target


def _check_member(member: tarfile.TarInfo, root: Path, tarball: Path) -> None:
    """Raise unless extracting ``member`` under ``root`` is safe."""
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or member.name.startswith(("/", "\\")):
        raise DownloadError(f"{tarball}: unsafe path in archive: {member.name!r}")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise DownloadError(f"{tarball}: unsupported member type in archive: {member.name!r}")
    if member.issym() or member.islnk():
        base = root if member.islnk() else (root / name).parent
        target = (base / member.linkname).resolve()
        if not target.is_relative_to(root.resolve()):
            raise DownloadError(
                f"{tarball}: link {member.name!r} points outside the destination: "
                f"{member.linkname!r}"
            )


def extract_tar(
    tarball: str | Path, dest_dir: str | Path, marker: str | Path | None = None
) -> bool:
    """Extract a (gzip/bz2/xz) tarball into ``dest_dir`` unless already done.

    Args:
        tarball: the archive.
        dest_dir: where its members go (created).
        marker: file written after a complete extraction and checked before starting
            (default ``dest_dir/.<tarball name>.extracted``).

    Returns:
        True if it extracted, False if the marker showed it was already done.
    """
    tarball, dest_dir = Path(tarball), Path(dest_dir)
    marker = Path(marker) if marker else dest_dir / f".{tarball.name}.extracted"
    if marker.is_file():
        return False
    dest_dir.mkdir(parents=True, exist_ok=True)
    kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    allowed = max(MIN_EXTRACT_BYTES, MAX_EXTRACT_RATIO * tarball.stat().st_size)
    total = 0
    try:
        with tarfile.open(tarball, "r|*") as tar:  # one streaming pass over the archive
            for count, member in enumerate(tar, start=1):
                _check_member(member, dest_dir, tarball)
                total += TAR_HEADER_BYTES + max(0, member.size)
                if count > MAX_TAR_MEMBERS or total > allowed:
                    raise DownloadError(
                        f"{tarball}: expands beyond {MAX_TAR_MEMBERS} members or "
                        f"{allowed / 2**30:.1f} GB ({MAX_EXTRACT_RATIO}x its size): refusing a "
                        f"compression bomb (stopped at {member.name!r})"
                    )
                tar.extract(member, dest_dir, **kwargs)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DownloadError(f"{tarball}: cannot extract: {err}") from None
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{tarball.name}\n", encoding="utf-8")
    return True
