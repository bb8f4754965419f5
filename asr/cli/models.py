"""``asr models``: the models and language models asr gets by name, and whether they are cached.

Without NAME: a table (name, size, cached, checksum; then what it is, the WER its authors
published and the licence), as wide as the terminal and at most 100 characters.
With NAME: that entry in full (URLs, checksum, citation, where the WER is published, cache path);
``--download`` fetches it into the cache now (for later offline use).

Names work wherever a model or LM is asked for: ``asr transcribe talk.flac --model
quartznet15x5 --lm librispeech-3gram``, ``asr.load_model("quartznet15x5")``. The first use
downloads (resumable, checksum-checked) and converts into the cache ($ASR_CACHE, default
~/.cache/asr); later uses are offline. Entries without a publisher's checksum are trusted on
first use: the sha256 of the first download is recorded and later downloads must match it.

Examples::

    asr models
    asr models quartznet15x5
    asr models quartznet15x5 --download --base-url http://mirror.local/asr
"""

from __future__ import annotations

import argparse
import shutil
import textwrap
from typing import TYPE_CHECKING

from asr.cli._options import add_base_url_argument

if TYPE_CHECKING:
    from asr.pretrained.registry import Registry, RegistryEntry


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``models`` subcommand."""
    p = subparsers.add_parser(
        "models",
        help="list the pretrained models and language models available by name",
        description=__doc__.split("\n\n", 1)[1].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", nargs="?", help="show this entry in full")
    p.add_argument("--download", action="store_true", help="fetch NAME into the cache now")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_base_url_argument(p)
    p.set_defaults(func=run)


def _size(mb: float) -> str:
    return f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{mb:g} MB"


def _checksum(entry: RegistryEntry) -> str:
    if entry.sha256:
        return f"sha256 {entry.sha256} (publisher's)"
    if entry.md5:
        return f"md5 {entry.md5} (publisher's)"
    if entry.kind == "bundled":
        return "none needed (shipped with asr)"
    return "none published: trust on first use (sha256 of the first download recorded)"


def _short_checksum(entry: RegistryEntry) -> str:
    if entry.kind == "bundled":
        return "-"
    return "publisher's" if entry.published_checksum else "trust on first use"


def _cached(entry: RegistryEntry) -> str:
    from asr.pretrained.cache import is_cached

    return "bundled" if entry.kind == "bundled" else ("yes" if is_cached(entry) else "no")


# Widest table: the terminal's width, at most this many characters (and this when not a terminal).
MAX_WIDTH = 100


def _entry_lines(e: RegistryEntry, width: int) -> list[str]:
    """One entry of the table: name, size, cached and checksum on a line, then what it is, the
    WER its authors published and the licence, each wrapped to ``width`` under the name."""
    head = f"{e.name:<21} {_size(e.size_mb):>7}  {_cached(e):<8} {_short_checksum(e)}"
    lines = textwrap.wrap(head, width, subsequent_indent="    ")
    for text in (e.description, f"WER (its authors): {e.wer or '-'}", f"licence: {e.licence}"):
        lines += textwrap.wrap(text, width, initial_indent="  ", subsequent_indent="    ")
    return lines


def table_width() -> int:
    """The terminal's width, at most :data:`MAX_WIDTH` (that when not a terminal), at least 40."""
    return max(40, min(MAX_WIDTH, shutil.get_terminal_size((MAX_WIDTH, 24)).columns))


def table(registry: Registry, width: int | None = None) -> str:
    """The table of ``registry``: a few lines per entry, none wider than ``width`` (default
    :func:`table_width`)."""
    width = width or table_width()
    lines = [f"{'name':<21} {'size':>7}  {'cached':<8} checksum"]
    for entry in registry.entries.values():
        lines += _entry_lines(entry, width)
    return "\n".join(lines)


def details(entry: RegistryEntry) -> str:
    """Every field of ``entry``, one per line."""
    from asr.pretrained.cache import entry_path

    where = "asr/pretrained/default" if entry.kind == "bundled" else str(entry_path(entry))
    fields = [
        ("name", entry.name),
        ("what", f"{entry.description} ({entry.kind})"),
        ("file", entry.file),
        ("urls", " ".join(entry.urls) or "-"),
        ("size", f"about {_size(entry.size_mb)}"),
        ("checksum", _checksum(entry)),
        ("licence", entry.licence),
        ("citation", entry.citation),
        ("WER", f"{entry.wer or '-'} (source: {entry.wer_source or '-'})"),
        ("cached", f"{_cached(entry)}: {where}"),
    ]
    return "\n".join(f"{key + ':':10s} {value}" for key, value in fields)


def run(args: argparse.Namespace) -> int:
    """Print the table, or one entry (downloading it with --download)."""
    from asr.errors import AsrError
    from asr.pretrained.cache import fetch_entry
    from asr.pretrained.registry import read_registry

    registry = read_registry()
    if args.name is None:
        if args.download:
            raise AsrError("--download needs a NAME (see the table: asr models)")
        width = table_width()
        print(table(registry, width))
        note = (
            "Sizes are approximate. 'trust on first use': the publisher gives no checksum; the "
            "sha256 of the first download is recorded in the cache and later downloads must "
            "match it. URLs, checksums, citations, WER sources: asr models NAME"
        )
        print("\n" + textwrap.fill(note, width))
        return 0
    entry = registry.get(args.name)
    if args.download and entry.kind != "bundled":
        fetch_entry(entry, base=args.base_url, progress=not args.no_progress)
    print(details(entry))
    return 0
