"""Downloads that survive bad networks: resume, checksums, atomic completion, safe extraction.

- :func:`download` fetches a URL into a file with a progress bar. Bytes arrive in ``<file>.part``;
  a dropped connection is resumed with an HTTP ``Range`` request (within the call, up to
  ``retries`` times, and on the next call if the process died). A server that ignores ``Range``
  (answers 200 instead of 206) makes the download restart from byte 0. When complete, the md5
  and/or sha256 is checked and the ``.part`` file is renamed onto the destination, so the
  destination only ever holds a whole, verified file.
- :func:`fetch` resolves where a :class:`Resource` comes from: a mirror base URL (default: the
  resource's own, e.g. openslr), a local folder holding the files, or a local file path.
- :func:`extract_tar` unpacks a tarball safely (no absolute paths, no ``..``, no links out of
  the destination, no device files, no compression bomb: bounded member count and expansion)
  and leaves a marker file so a second call skips the work.

Every failure is a :class:`DownloadError`: one line naming the URL or path and the reason.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from asr.atomic import atomic_path
from asr.errors import AsrError

# extract_tar's bounds: the archive may expand to at most MAX_EXTRACT_RATIO times its size on
# disk (or MIN_EXTRACT_BYTES, whichever is larger), counting 512 bytes per member header, and
# hold at most MAX_TAR_MEMBERS members (tarfile keeps an object per member in memory). Corpus
# tarballs of FLAC expand ~1x, of WAV or text a few times, with under 200 k members (LibriSpeech
# train-other-500); a gzip bomb of zeros expands ~1000x.
MAX_EXTRACT_RATIO = 20
MIN_EXTRACT_BYTES = 1 << 30
MAX_TAR_MEMBERS = 500_000
TAR_HEADER_BYTES = 512

# Bytes read from the network or disk per step.
CHUNK_BYTES = 1 << 20
# Socket timeout for connecting and for each read, in seconds.
TIMEOUT_S = 60.0
# Times a dropped connection is resumed within one download() call.
RETRIES = 3
# Pause before retry k is RETRY_PAUSE_S * k seconds.
RETRY_PAUSE_S = 1.0
USER_AGENT = "asr-download/0.1 (+https://github.com/)"


class DownloadError(AsrError):
    """A download, checksum or extraction failure; the message names the URL or path."""


@dataclass(frozen=True)
class Resource:
    """A file published at ``<base_url>/<name>`` with a known checksum."""

    # File name on the server and on disk, e.g. "dev-clean.tar.gz".
    name: str
    # Default mirror base URL, e.g. "https://www.openslr.org/resources/12".
    base_url: str
    # Published md5 (hex), or None when no checksum is published (a warning is printed).
    md5: str | None


class _DroppedError(Exception):
    """The connection ended before the whole file arrived (resumable)."""


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
    path: str | Path, md5: str | None, what: str | None = None, sha256: str | None = None
) -> None:
    """Raise :class:`DownloadError` unless ``path``'s md5 is ``md5`` and its sha256 is
    ``sha256`` (each checked when given; neither given: warn, no check).

    ``what`` (default: the path) names the file in the messages, e.g. the URL it came from.
    """
    what = what or str(path)
    if md5 is None and sha256 is None:
        print(
            f"warning: {what}: no published md5 or sha256 checksum; not verified", file=sys.stderr
        )
        return
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is None:
            continue
        actual = file_digest(path, algorithm)
        if actual != expected.lower():
            raise DownloadError(
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


def _open_url(url: str, offset: int, timeout_s: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and offset:
            raise _DroppedError("server refused the resume range") from None
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise DownloadError(f"{url}: cannot connect: {err.reason}") from None
    except (OSError, http.client.HTTPException) as err:
        raise _DroppedError(f"{type(err).__name__}: {err}") from None


def _resume_offset(response: http.client.HTTPResponse, offset: int) -> int:
    """Where the response body starts: ``offset`` for a matching 206, else 0 (restart)."""
    if not offset or response.status != 206:
        return 0
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return offset if match and int(match.group(1)) == offset else 0


def _fetch_into(url: str, part: Path, timeout_s: float, progress: bool) -> None:
    """Append the rest of ``url`` to ``part`` (or restart it); _DroppedError when cut short."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open_url(url, offset, timeout_s)
    except _DroppedError:
        if not offset:
            raise
        part.unlink()  # 416: the partial file cannot be resumed; start again
        offset = 0
        response = _open_url(url, offset, timeout_s)
    with response:
        start = _resume_offset(response, offset)
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        bar = tqdm(
            total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name[: -len(".part")], disable=not progress, leave=False,
        )  # fmt: skip
        with bar, open(part, "ab" if start else "wb") as fh:
            try:
                while chunk := response.read(CHUNK_BYTES):
                    fh.write(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as err:
                raise _DroppedError(f"{type(err).__name__}: {err}") from None
    size = part.stat().st_size
    if total is not None and size < total:
        raise _DroppedError(f"connection closed after {size} of {total} bytes")
    if total is not None and size > total:
        part.unlink()
        raise DownloadError(f"{url}: received {size} bytes, more than the {total} announced")


def download(
    url: str,
    dest: str | Path,
    md5: str | None = None,
    progress: bool = True,
    retries: int = RETRIES,
    timeout_s: float = TIMEOUT_S,
    sha256: str | None = None,
) -> Path:
    """Download ``url`` to ``dest``: resumable, checksum-verified, atomic. Returns ``dest``.

    Args:
        url: http(s) URL of the file.
        dest: destination file; an existing one is verified against ``md5`` and kept.
        md5: expected hex md5 (None: not checked; neither md5 nor sha256: a warning).
        progress: show a tqdm progress bar on stderr.
        retries: how many times a dropped connection is resumed before giving up (the
            ``.part`` file is kept, so running again resumes too).
        timeout_s: socket timeout for connecting and for each read.
        sha256: expected hex sha256 (None: not checked). A mismatching download is deleted.
    """
    dest = Path(dest)
    if dest.is_file():
        verify_md5(dest, md5, f"{dest} (delete it to download {url} again)", sha256)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch_into(url, part, timeout_s, progress)
            break
        except _DroppedError as err:
            if attempt == retries:
                have = part.stat().st_size if part.exists() else 0
                raise DownloadError(
                    f"{url}: download interrupted ({err}); {have} bytes kept in {part}, "
                    "run again to resume"
                ) from None
            time.sleep(RETRY_PAUSE_S * attempt)
    try:
        verify_md5(part, md5, url, sha256)
    except DownloadError:
        part.unlink()
        raise
    with open(part, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(part, dest)
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
    """
    dest_dir = Path(dest_dir)
    if source is None:
        url = f"{(mirror or resource.base_url).rstrip('/')}/{resource.name}"
        return download(url, dest_dir / resource.name, resource.md5, progress=progress)
    path = _local_file(resource.name, Path(source))
    target = dest_dir / resource.name
    if copy and target.is_file():  # copied before (or the source is the target): check it
        verify_md5(target, resource.md5, f"{target} (delete it to copy {path} again)")
        return target
    verify_md5(path, resource.md5)
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
