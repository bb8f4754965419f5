"""The registry of models asr gets by name: ``registry.yaml`` read into frozen dataclasses.

The registry is data (``asr/pretrained/registry.yaml``): one entry per name with where the file
is published, its size, the publisher's checksum (or none: trust on first use, see
:mod:`asr.pretrained.cache`), licence, citation and the WER its authors published. Nothing here
touches the network.

Example::

    registry = read_registry()                 # the bundled registry.yaml
    entry = registry.get("quartznet15x5")      # RegistryError listing the known names if unknown
    print(entry.kind, entry.file, entry.urls[0], entry.wer)
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Literal

from asr import config as config_io
from asr.errors import AsrError

# The registry shipped with the package.
REGISTRY_FILE = Path(__file__).resolve().parent / "registry.yaml"
# Entry kinds: the bundled model folder, a NeMo .nemo to import, a KenLM word n-gram ARPA.
BUNDLED, NEMO, KENLM = "bundled", "nemo", "kenlm"
# A name: what users type after --model / --lm (lower case, digits, '-', '_', '.').
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_HEX = {"sha256": re.compile(r"[0-9a-f]{64}"), "md5": re.compile(r"[0-9a-f]{32}")}


class RegistryError(AsrError):
    """An unknown model name, or a registry file with a bad entry."""


@dataclasses.dataclass(frozen=True)
class RegistryEntry:
    """One named model or language model (the fields of ``registry.yaml``)."""

    kind: Literal["bundled", "nemo", "kenlm"]  # what the file is and how it becomes usable
    description: str  # one line: what it is
    file: str  # file name on the server (a base-URL override serves <base>/<file>)
    urls: tuple[str, ...]  # where the publisher serves it, first tried first (bundled: none)
    size_mb: float  # approximate download size, MB (a download outside half to twice it is refused)
    licence: str  # the publisher's licence, or where it is stated
    citation: str  # what to cite
    wer: str | None = None  # WER published by its authors (None: not recorded here)
    wer_source: str = ""  # where that WER is published
    sha256: str | None = None  # publisher's sha256 (None: trust on first use unless md5)
    md5: str | None = None  # publisher's md5 (None: not published)
    case: Literal["upper", "keep"] = "upper"  # nemo: import-nemo --case
    name: str = ""  # the entry's name (filled in from its key)

    @property
    def published_checksum(self) -> bool:
        """True when the publisher's sha256 or md5 is recorded."""
        return self.sha256 is not None or self.md5 is not None


def _check(entry: RegistryEntry, where: str) -> None:
    """Raise :class:`RegistryError` for a bad name, file name, URL or checksum."""
    if not _NAME.fullmatch(entry.name):
        raise RegistryError(f"{where} bad name {entry.name!r} (lower case, digits, - _ .)")
    if "/" in entry.file or entry.file in ("", ".", ".."):
        raise RegistryError(f"{where} file: must be a plain file name, got {entry.file!r}")
    for url in entry.urls:
        if not url.startswith(("https://", "http://")) or not url.endswith("/" + entry.file):
            raise RegistryError(f"{where} urls: {url!r} is not an http(s) URL of {entry.file}")
    if entry.kind != BUNDLED and not entry.urls:
        raise RegistryError(f"{where} urls: a {entry.kind} entry needs at least one URL")
    if entry.kind != BUNDLED and not entry.size_mb > 0:  # downloads are checked against it
        raise RegistryError(f"{where} size_mb: must be a size > 0 in MB, got {entry.size_mb!r}")
    for algorithm, value in (("sha256", entry.sha256), ("md5", entry.md5)):
        if value is not None and not _HEX[algorithm].fullmatch(value):
            raise RegistryError(f"{where} {algorithm}: not a lower-case hex digest: {value!r}")


@dataclasses.dataclass(frozen=True)
class Registry:
    """The entries of a registry file, by name, in file order."""

    entries: dict[str, RegistryEntry]  # name -> entry
    path: Path  # the file they were read from

    def get(self, name: str, kind: str | None = None) -> RegistryEntry:
        """The entry ``name`` (of ``kind`` when given).

        Raises:
            RegistryError: unknown name (the message lists the known names of that kind).
        """
        entry = self.entries.get(name)
        if entry is None or (kind is not None and entry.kind != kind):
            raise RegistryError(
                f"unknown model name {name!r} (known: {', '.join(self.names(kind))})"
            )
        return entry

    def names(self, kind: str | None = None) -> list[str]:
        """The names (of ``kind`` when given), in file order."""
        return [n for n, e in self.entries.items() if kind is None or e.kind == kind]


def read_registry(path: str | Path = REGISTRY_FILE) -> Registry:
    """Read and check a registry YAML (default: the bundled ``registry.yaml``).

    Raises:
        RegistryError / asr.config.ConfigError: one line naming the file, entry and field.
    """
    data = config_io.read_yaml(path)
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: expected a mapping of names to entries")
    entries = {}
    for name, fields in data.items():
        where = f"{path}: {name}:"
        if not isinstance(fields, dict):
            raise RegistryError(f"{where} expected a mapping of fields")
        entry = config_io.from_dict(RegistryEntry, {**fields, "name": str(name)}, where=where)
        _check(entry, where)
        entries[entry.name] = entry
    return Registry(entries, Path(path))
