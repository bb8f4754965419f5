"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

A reader never sees a half-written checkpoint, manifest or output: either the old file or the
new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from asr.errors import AsrError


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class OutputExistsError(AsrError, FileExistsError):
    """An exclusive atomic write found its file already there (another writer made it)."""


def _file_mode(path: Path) -> int:
    """The permissions of a replaced file (kept), else the usual ones of a new file."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~current_umask()


def _claim(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` only if no file has it (a hard link fails if it exists)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError(
            f"{path}: appeared while this run worked (another run writing it?); not replaced"
        ) from None
    except OSError:  # no hard links here (some network or FUSE file systems): claim the name
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise OutputExistsError(
                f"{path}: appeared while this run worked (another run writing it?); not replaced"
            ) from None
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_path(path: str | Path, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    Use it for writers that want a file name (``torch.save``, ``safetensors``, ``soundfile``)::

        with atomic_path("model.safetensors") as tmp:
            save_file(tensors, tmp)

    A replaced file keeps its permissions. With ``exclusive`` an existing ``path`` is never
    replaced: :class:`OutputExistsError` if one appeared meanwhile (checked and claimed in one
    step, so of two runs writing the same new file the second fails instead of replacing).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode(path))  # mkstemp makes 0600: the old file's, else the usual
        if exclusive:
            _claim(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(
    path: str | Path, mode: str = "w", encoding: str | None = "utf-8", exclusive: bool = False
) -> Iterator[IO]:
    """Open a temporary file for writing; it replaces ``path`` when the block ends without error
    (with ``exclusive``: only if no ``path`` exists then, :func:`atomic_path`)."""
    if "b" in mode:
        encoding = None
    with atomic_path(path, exclusive) as tmp, open(tmp, mode, encoding=encoding) as fh:
        yield fh


def atomic_write_text(path: str | Path, text: str, exclusive: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (``exclusive``: :func:`atomic_path`)."""
    with atomic_open(path, "w", exclusive=exclusive) as fh:
        fh.write(text)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
