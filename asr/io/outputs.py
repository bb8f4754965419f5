"""Output paths: checked before a command does its work, never clobbering what it did not write.

The rule every command follows: it never deletes or overwrites anything it did not create unless
the user asks with ``--overwrite``, and it finds out before doing the work (not after hours of
it) that the output cannot be written. These helpers do the checking; each failure is one
:class:`OutputError` line naming the path.

Example::

    out = check_output_file(args.out, overwrite=args.overwrite, inputs=args.text)
    ... long computation ...
    atomic_write_text(out, result)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from asr.errors import AsrError

# The flag every command uses to allow replacing an existing output.
OVERWRITE_FLAG = "--overwrite"


class OutputError(AsrError):
    """An output path that cannot or must not be written; the message names it."""


def _nearest_existing(path: Path) -> Path:
    """``path`` itself or its closest ancestor that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def check_writable(path: str | Path) -> None:
    """Raise unless a file or folder named ``path`` could be created (or replaced) now.

    Probes by creating and removing a temporary file in the closest existing ancestor folder,
    which is what the atomic writers do later (so ``/proc/x``, a read-only mount or a missing
    permission fail here, before the work). Nothing is left behind.
    """
    shown = path
    path = Path(path).absolute()
    folder = _nearest_existing(path.parent)
    if not folder.is_dir():
        raise OutputError(f"{shown}: cannot write there: {folder} is not a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=".asr-write-probe.", dir=folder)
    except OSError as err:
        raise OutputError(f"{shown}: cannot write in {folder}: {err.strerror or err}") from None
    os.close(fd)
    os.unlink(name)


def same_or_inside(a: Path, b: Path) -> bool:
    """Whether ``a`` is ``b`` or lies inside the folder ``b`` (both resolved)."""
    a, b = a.resolve(), b.resolve()
    return a == b or a.is_relative_to(b)


def check_output_file(
    path: str | Path, overwrite: bool = False, inputs: Iterable[str | Path] = ()
) -> Path:
    """Check that the output file ``path`` may be written; returns it.

    Args:
        path: the file a command will write (atomically) when its work is done.
        overwrite: allow replacing an existing file (the user passed ``--overwrite``).
        inputs: files the command reads: the output may never be one of them, even with
            ``overwrite`` (the result would replace the data it was computed from).
    Raises:
        OutputError: ``path`` is a folder, one of ``inputs``, exists without ``overwrite``, or
            its folder cannot be written.
    """
    return check_output_files([path], overwrite, inputs)[0]


def check_output_files(
    paths: Iterable[str | Path], overwrite: bool = False, inputs: Iterable[str | Path] = ()
) -> list[Path]:
    """Check that every file of ``paths`` (all that one run may write) may be written.

    Args:
        paths: the files a command will write, e.g. ``<name>.txt`` per input in a folder.
        overwrite: allow replacing existing files (the user passed ``--overwrite``).
        inputs: files the command reads: no output may be one of them, even with ``overwrite``.
    Returns:
        ``paths`` as :class:`Path` objects.
    Raises:
        OutputError: naming the first path that is a folder or an input; else, without
            ``overwrite``, the first that exists (and how many do); else a folder that cannot
            be written.
    """
    paths = [Path(p) for p in paths]
    sources = {Path(s).resolve() for s in inputs if Path(s).exists()}
    existing = []
    for path in paths:
        if not path.exists():
            continue
        if path.resolve() in sources:
            raise OutputError(f"{path}: the output is also an input; write it somewhere else")
        if path.is_dir():
            raise OutputError(f"{path}: is a folder; the output must be a file")
        existing.append(path)
    if existing and not overwrite:
        count = f" ({len(existing)} of the {len(paths)} files this run writes)"
        them = "it" if len(existing) == 1 else "them"
        raise OutputError(
            f"{existing[0]}: exists{count if len(paths) > 1 else ''}; "
            f"pass {OVERWRITE_FLAG} to replace {them}"
        )
    probes: dict[Path, Path] = {}  # one per folder: its first file
    for path in paths:
        probes.setdefault(path.parent, path)
    for path in probes.values():
        check_writable(path)
    return paths
