"""The download cache of named models: fetch once, verify, convert, then work offline.

:func:`fetch_entry` makes a registry entry usable and returns its local path:

1. already in the cache (``$ASR_CACHE``, default ``~/.cache/asr``): returned at once, no network;
2. else the file is downloaded into ``<cache>/downloads`` by :func:`asr.corpora.download.download`
   (progress bar, HTTP Range resume, checksum check, atomic rename; a file failing its checksum
   is deleted), from ``<base>/<file>`` when a base URL is given (``--base-url`` or
   ``$ASR_BASE_URL``: mirrors, air-gapped sites, tests), else from the entry's URLs in turn;
3. converted into the cache: a ``.nemo`` is imported with :func:`asr.models.nemo_import.import_nemo`
   (weights-only loading) into ``<cache>/models/<name>``; a gzipped ARPA is unpacked into
   ``<cache>/lm/<name>/``; the download is then deleted. One process fetches an entry at a
   time (a lock in ``<cache>/locks``); the others wait and then find it cached.

Checksums: the publisher's sha256 or md5 when the registry has one. Otherwise trust on first
use: the sha256 of the first complete download is recorded in ``<cache>/downloads/<file>.sha256``
and any later download of that file (after the cache entry was deleted, say) must match it.

Example::

    entry = read_registry().get("quartznet15x5")
    model_dir = fetch_entry(entry)          # downloads and imports once; later calls are offline
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import os
import shutil
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

from asr.atomic import atomic_open, atomic_write_text
from asr.corpora.download import DownloadError, download, sha256sum
from asr.pretrained.registry import KENLM, NEMO, RegistryEntry

# Environment variables: the cache folder, and a base URL replacing the publishers' URLs.
CACHE_ENV = "ASR_CACHE"
BASE_URL_ENV = "ASR_BASE_URL"
# The cache folder when $ASR_CACHE is unset.
DEFAULT_CACHE = Path("~/.cache/asr")
# Bytes copied per step when unpacking a gzipped ARPA.
_UNPACK_CHUNK_BYTES = 1 << 20


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
    return (path / "config.yaml").is_file() if entry.kind == NEMO else path.is_file()


def _urls(entry: RegistryEntry, base: str | None) -> list[str]:
    return [f"{base}/{entry.file}"] if base else list(entry.urls)


def _record_file(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _download(entry: RegistryEntry, dest: Path, base: str | None, progress: bool) -> None:
    """Download ``entry``'s file to ``dest`` from the first URL that works, verified."""
    record = _record_file(dest)
    recorded = record.read_text(encoding="utf-8").split()[0] if record.is_file() else None
    sha256 = entry.sha256 or recorded
    urls, reasons = _urls(entry, base), []
    for url in urls:
        try:
            download(url, dest, md5=entry.md5, sha256=sha256, progress=progress)
            break
        except DownloadError as err:
            if "mismatch" in str(err) or "interrupted" in str(err):
                raise  # a bad file or a partial one kept for resuming: not a mirror problem
            reasons.append(str(err))
    else:
        raise DownloadError(
            f"model {entry.name!r} is not in the cache ({dest.parent.parent}) and cannot be "
            f"downloaded: {'; '.join(reasons)}; to use another server (a mirror, an air-gapped "
            f"site) pass --base-url URL or set {BASE_URL_ENV}: it must serve {entry.file}"
        )
    if not entry.published_checksum and recorded is None:
        digest = sha256sum(dest)
        atomic_write_text(record, f"{digest}  {entry.file}\n")
        print(
            f"{entry.name}: the publisher gives no checksum; recorded sha256 {digest} in "
            f"{record} (trust on first use: later downloads must match it)",
            file=sys.stderr,
        )


def _unpack_arpa(source: Path, target: Path) -> None:
    """Write the ARPA ``source`` (gzipped or not) to ``target`` atomically."""
    opener = gzip.open if source.name.endswith(".gz") else open
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with opener(source, "rb") as src, atomic_open(target, "wb") as out:
            shutil.copyfileobj(src, out, _UNPACK_CHUNK_BYTES)
    except (OSError, EOFError, zlib.error) as err:
        raise DownloadError(f"{source}: cannot unpack the ARPA file: {err}") from None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created): one process fetches an entry at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
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
        progress: show a progress bar while downloading.
    Returns:
        a model folder (nemo) or an ARPA file (kenlm), inside the cache.
    Raises:
        DownloadError: not cached and no server reachable (names the URL and the override), a
            checksum mismatch (the bad file is deleted), an interrupted download (kept to
            resume); NemoImportError: a ``.nemo`` that cannot be imported.
    """
    target = entry_path(entry, cache)
    if is_cached(entry, cache):
        return target
    with _locked(cache_dir(cache) / "locks" / f"{entry.name}.lock"):
        if is_cached(entry, cache):  # another process fetched it while we waited
            return target
        dest = cache_dir(cache) / "downloads" / entry.file
        _download(entry, dest, base_url(base), progress)
        if entry.kind == NEMO:
            from asr.models.nemo_import import import_nemo

            import_nemo(dest, target, case=entry.case)
        else:
            _unpack_arpa(dest, target)
        dest.unlink()
    return target
