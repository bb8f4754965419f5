"""The download cache of named models: fetch once, verify, convert, then work offline.

:func:`fetch_entry` makes a registry entry usable and returns its local path:

1. already in the cache (``$ASR_CACHE``, default ``~/.cache/asr``): returned at once, no network
   (a read-only cache works for what it holds);
2. else the file is downloaded into ``<cache>/downloads`` by :func:`asr.io.download.download`
   (a progress bar on a terminal, HTTP Range resume, checksum check, atomic rename; a file
   failing its checksum is deleted), from ``<base>/<file>`` when a base URL is given
   (``--base-url`` or ``$ASR_BASE_URL``: mirrors, air-gapped sites, tests), else from the
   entry's URLs in turn;
3. converted into the cache: a ``.nemo`` is imported with :func:`asr.models.nemo_import.import_nemo`
   (weights-only loading) into ``<cache>/models/<name>``; a gzipped ARPA is unpacked into
   ``<cache>/lm/<name>/``; the download is then deleted. One process fetches an entry at a
   time (a lock in ``<cache>/locks``); the others wait and then find it cached.

Checksums: the publisher's sha256 or md5 when the registry has one. Otherwise trust on first
use: the sha256 of the first download that passes the checks below and converts is recorded in
``<cache>/downloads/<file>.sha256`` (the message says where), and any later download of that
file (after the cache entry was deleted, say) must match it; deleting that file resets it.

What arrives is checked before it is converted or trusted: its size within a factor 2 of the
registry's ``size_mb`` (an announced size outside it is refused before reading, and no more is
read; see :mod:`asr.io.transfer`, which also resumes only against the same version of the
file); not a web page (a login or error page); a ``.nemo`` a whole tar archive holding
``model_config.yaml`` and ``model_weights.ckpt``; an ARPA file that starts with ``\\data\\`` and
unpacks to the end. A download failing these is deleted and nothing is recorded.

Errors are one line: a cache that is a file or cannot be written (``$ASR_CACHE``), no server
reachable, a bad download, a checksum mismatch (saying how to reset a recorded one).

Example::

    entry = read_registry().get("quartznet15x5")
    model_dir = fetch_entry(entry)          # downloads and imports once; later calls are offline
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import os
import sys
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from asr.io.atomic import atomic_open, atomic_write_text
from asr.io.download import (
    ChecksumError,
    DownloadError,
    InterruptedDownloadError,
    LocalError,
    download,
    sha256sum,
)
from asr.pretrained.registry import KENLM, NEMO, RegistryEntry

# Environment variables: the cache folder, and a base URL replacing the publishers' URLs.
CACHE_ENV = "ASR_CACHE"
BASE_URL_ENV = "ASR_BASE_URL"
# The cache folder when $ASR_CACHE is unset.
DEFAULT_CACHE = Path("~/.cache/asr")
# Bytes copied per step when unpacking a gzipped ARPA.
_UNPACK_CHUNK_BYTES = 1 << 20
# The members a .nemo archive must hold, and how an ARPA file starts.
_NEMO_MEMBERS = ("model_config.yaml", "model_weights.ckpt")
_ARPA_START = b"\\data\\"
# How a web page starts (a login or error page served instead of the file).
_WEB_PAGE_STARTS = (b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")


def cache_dir(cache: str | Path | None = None) -> Path:
    """The cache folder: ``cache``, else ``$ASR_CACHE``, else ``~/.cache/asr``."""
    chosen = cache or os.environ.get(CACHE_ENV) or DEFAULT_CACHE
    return Path(chosen).expanduser()


def base_url(override: str | None = None) -> str | None:
    """The base URL replacing the publishers' URLs: ``override``, else ``$ASR_BASE_URL``."""
    chosen = override or os.environ.get(BASE_URL_ENV) or None
    return chosen.rstrip("/") if chosen else None


def entry_path(entry: RegistryEntry, cache: str | Path | None = None) -> Path:
    """Where ``entry`` lives once fetched: a model folder (nemo) or an ARPA file (kenlm)."""
    root = cache_dir(cache)
    if entry.kind == NEMO:
        return root / "models" / entry.name
    if entry.kind == KENLM:
        return root / "lm" / entry.name / entry.file.removesuffix(".gz")
    raise DownloadError(f"{entry.name}: a {entry.kind} entry is not downloaded")


def is_cached(entry: RegistryEntry, cache: str | Path | None = None) -> bool:
    """True when ``entry`` is ready in the cache (no network needed)."""
    path = entry_path(entry, cache)
    try:
        return (path / "config.yaml").is_file() if entry.kind == NEMO else path.is_file()
    except OSError:  # a cache folder that cannot be read: not cached
        return False


class BadDownloadError(DownloadError):
    """A download that is not the file it should be (a web page, a cut archive)."""


def _urls(entry: RegistryEntry, base: str | None) -> list[str]:
    return [f"{base}/{entry.file}"] if base else list(entry.urls)


def _record_file(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _cache_folder(root: Path, sub: str) -> Path:
    """``root/sub``, created; one-line errors for a cache that is a file or not writable."""
    folder = root / sub
    try:
        if root.exists() and not root.is_dir():
            raise NotADirectoryError(20, "not a folder")
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise LocalError(
            f"{root}: the model cache (${CACHE_ENV}) cannot be used: {err.strerror or err}; set "
            f"{CACHE_ENV} to a writable folder (default {DEFAULT_CACHE})"
        ) from None
    return folder


def _check_file(entry: RegistryEntry, path: Path) -> None:
    """Raise :class:`BadDownloadError` unless ``path`` looks like ``entry``'s file: not a web
    page, a whole ``.nemo`` tar with its two members, or an ARPA file's start."""
    with open(path, "rb") as fh:
        head = fh.read(512).lstrip().lower()
    if head.startswith(_WEB_PAGE_STARTS):
        raise BadDownloadError(f"is a web page (a login or error page?), not {entry.file}")
    if entry.kind == NEMO:
        try:  # reading every member header: a file cut short fails here
            with tarfile.open(path, "r:*") as tar:
                names = {member.name.removeprefix("./") for member in tar}
        except (OSError, EOFError, tarfile.TarError, zlib.error) as err:
            raise BadDownloadError(f"is not a whole .nemo (tar) archive: {err}") from None
        missing = [name for name in _NEMO_MEMBERS if name not in names]
        if missing:
            raise BadDownloadError(f"is not a .nemo archive: no {missing[0]} in it")
    elif entry.kind == KENLM:
        opener = gzip.open if path.name.endswith(".gz") else open
        try:
            with opener(path, "rb") as fh:
                start = fh.read(1 << 16).lstrip()
        except (OSError, EOFError, zlib.error) as err:
            raise BadDownloadError(f"is not a gzipped ARPA file: {err}") from None
        if not start.startswith(_ARPA_START):
            raise BadDownloadError(r"is not an ARPA file: it does not start with \data\ ")


def _download(entry: RegistryEntry, dest: Path, base: str | None, progress: bool) -> None:
    """Download ``entry``'s file to ``dest`` from the first URL that serves a good one."""
    record = _record_file(dest)
    recorded = record.read_text(encoding="utf-8").split()[0] if record.is_file() else None
    sha256 = entry.sha256 or recorded
    expected = round(entry.size_mb * 1e6) or None
    reasons = []
    for url in _urls(entry, base):
        try:
            download(url, dest, md5=entry.md5, sha256=sha256, progress=progress,
                     expected_bytes=expected, warn_unchecked=False)  # fmt: skip
        except ChecksumError as err:
            if entry.sha256 or recorded is None:
                raise
            raise ChecksumError(
                f"{err} (recorded on the first download, trust on first use, in {record}); "
                f"if the publisher has changed the file, delete {record} and run again"
            ) from None
        except (InterruptedDownloadError, LocalError):
            raise  # a partial file kept for resuming, or a local problem: not the server's
        except DownloadError as err:
            reasons.append(str(err))
            continue
        try:
            _check_file(entry, dest)
            return
        except BadDownloadError as err:
            dest.unlink()
            reasons.append(f"{url}: {err} (deleted)")
    raise DownloadError(
        f"model {entry.name!r} is not in the cache ({dest.parent.parent}) and cannot be "
        f"downloaded: {'; '.join(reasons)}; to use another server (a mirror, an air-gapped "
        f"site) pass --base-url URL or set {BASE_URL_ENV}: it must serve {entry.file}"
    )


def _record_first_use(entry: RegistryEntry, dest: Path) -> None:
    """Trust on first use: record the sha256 of a download that checked out and converted."""
    record = _record_file(dest)
    if entry.published_checksum or record.is_file():
        return
    digest = sha256sum(dest)
    atomic_write_text(record, f"{digest}  {entry.file}\n")
    print(
        f"{entry.name}: the publisher gives no checksum; recorded this download's sha256 "
        f"{digest} in {record} (trust on first use: later downloads must match it; delete "
        "that file to trust a new version)",
        file=sys.stderr,
    )


def _unpack_arpa(source: Path, target: Path) -> None:
    """Write the ARPA ``source`` (gzipped or not) to ``target`` atomically.

    Raises:
        BadDownloadError: ``source`` cannot be read to its end (cut short, not gzip).
    """
    opener = gzip.open if source.name.endswith(".gz") else open
    target.parent.mkdir(parents=True, exist_ok=True)
    with opener(source, "rb") as src, atomic_open(target, "wb") as out:
        while True:
            try:
                chunk = src.read(_UNPACK_CHUNK_BYTES)
            except (OSError, EOFError, zlib.error) as err:
                raise BadDownloadError(f"cannot unpack the ARPA file: {err}") from None
            if not chunk:
                break
            out.write(chunk)


def _convert(entry: RegistryEntry, dest: Path, target: Path) -> None:
    """Import the ``.nemo`` or unpack the ARPA ``dest`` into ``target``; a download that
    cannot be read to its end is deleted (BadDownloadError)."""
    if entry.kind == NEMO:
        from asr.models.nemo_import import import_nemo

        import_nemo(dest, target, case=entry.case)
        return
    try:
        _unpack_arpa(dest, target)
    except BadDownloadError as err:
        dest.unlink()
        raise BadDownloadError(f"{dest}: {err} (deleted; nothing recorded)") from None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created): one process fetches an entry at a time."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def fetch_entry(
    entry: RegistryEntry,
    cache: str | Path | None = None,
    base: str | None = None,
    progress: bool = True,
) -> Path:
    """The local path of ``entry``, downloading and converting it on first use.

    Args:
        entry: a ``nemo`` or ``kenlm`` registry entry.
        cache: the cache folder (default :func:`cache_dir`).
        base: base URL replacing the entry's URLs (default :func:`base_url`: ``$ASR_BASE_URL``).
        progress: show a progress bar while downloading (only when stderr is a terminal).
    Returns:
        a model folder (nemo) or an ARPA file (kenlm), inside the cache.
    Raises:
        DownloadError: not cached and no server serving a good file (names the URLs, the
            reasons and the override), a checksum mismatch (the bad file is deleted), an
            interrupted download (kept to resume), a cache that cannot be written;
            NemoImportError: a ``.nemo`` that cannot be imported.
    """
    target = entry_path(entry, cache)
    if is_cached(entry, cache):
        return target
    root = cache_dir(cache)
    lock = _cache_folder(root, "locks") / f"{entry.name}.lock"
    dest = _cache_folder(root, "downloads") / entry.file
    try:
        with _locked(lock):
            if is_cached(entry, cache):  # another process fetched it while we waited
                return target
            _download(entry, dest, base_url(base), progress)
            _convert(entry, dest, target)
            _record_first_use(entry, dest)
            dest.unlink()
    except OSError as err:
        raise LocalError(
            f"{err.filename or root}: cannot write in the model cache (${CACHE_ENV}={root}): "
            f"{err.strerror or err}"
        ) from None
    return target
