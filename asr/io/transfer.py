"""One HTTP transfer into a ``.part`` file, safe against hostile or broken servers.

Used by :func:`asr.io.download.download` (read that first). What a transfer guarantees:

- resume only against the same file: the first answer's strong ``ETag`` (else its
  ``Last-Modified``) is noted in ``<file>.part.json`` and a resume sends it as ``If-Range``; an
  answer that is not a 206 of that version (a server that ignores ``Range`` or ``If-Range``, a
  file changed on the server) restarts from byte 0. A partial file with no noted version is
  resumed only when a checksum will verify the result, else restarted;
- bounded size: with an expected size, an announced ``Content-Length`` outside a factor
  :data:`SIZE_SLACK` of it is refused before any byte is read, and no more than that is read
  from a body without a length; without one, the free disk space bounds it. The free space is
  checked (``shutil.disk_usage``) before the body is read;
- no progress bar when stderr is not a terminal (logs, pipes, CI).
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from tqdm import tqdm

from asr.errors import AsrError
from asr.io.atomic import atomic_write_text

# Bytes read from the network or disk per step.
CHUNK_BYTES = 1 << 20
# Socket timeout for connecting and for each read, in seconds.
TIMEOUT_S = 60.0
USER_AGENT = "asr-download/0.1 (+https://github.com/)"
# With an expected size (the registry's, approximate), a download must lie between it divided
# and multiplied by SIZE_SLACK: a login page (kB) or an endless body (TB) is far outside.
SIZE_SLACK = 2.0
# Free disk space a download must leave.
FREE_MARGIN_BYTES = 64 << 20


class DownloadError(AsrError):
    """A download, checksum or extraction failure; the message names the URL or path."""


class ChecksumError(DownloadError):
    """A file whose md5 or sha256 is not the expected one."""


class InterruptedDownloadError(DownloadError):
    """A download cut short; its ``.part`` file is kept when the next call can resume it."""


class LocalError(DownloadError):
    """The local side failed: a folder that cannot be written, not enough free disk space."""


class DroppedError(Exception):
    """The connection ended before the whole file arrived (resumable)."""


def _open_url(
    url: str, offset: int, timeout_s: float, if_range: str | None = None
) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if if_range:  # the server sends the whole file (200) unless it is still this version
            headers["If-Range"] = if_range
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and offset:
            raise DroppedError("server refused the resume range") from None
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise DownloadError(f"{url}: cannot connect: {err.reason}") from None
    except (OSError, http.client.HTTPException) as err:
        raise DroppedError(f"{type(err).__name__}: {err}") from None


def _resume_offset(response: http.client.HTTPResponse, offset: int) -> int:
    """Where the response body starts: ``offset`` for a matching 206, else 0 (restart)."""
    if not offset or response.status != 206:
        return 0
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return offset if match and int(match.group(1)) == offset else 0


def _size(count: float) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{int(count)} bytes"


def entity_file(part: Path) -> Path:
    """Where the version of the file being downloaded into ``part`` is noted (for If-Range)."""
    return part.with_name(part.name + ".json")


def _entity(headers: Message) -> dict[str, str]:
    """What identifies this version of the file: its strong ETag and its Last-Modified."""
    found = {}
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):  # a weak ETag cannot be used in If-Range
        found["etag"] = etag
    if headers.get("Last-Modified"):
        found["last_modified"] = headers["Last-Modified"]
    return found


def _saved_entity(part: Path) -> dict[str, str]:
    try:
        data = json.loads(entity_file(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {key: data[key] for key in ("etag", "last_modified") if isinstance(data.get(key), str)}


def _same_entity(saved: dict[str, str], headers: Message) -> bool:
    """True when a 206 answer is a part of the version ``saved`` was noted from."""
    now = _entity(headers)
    key = "etag" if "etag" in saved else "last_modified"
    return key not in saved or now.get(key) == saved[key]


def discard(part: Path) -> None:
    """Delete a partial download and its note."""
    for path in (part, entity_file(part)):
        path.unlink(missing_ok=True)


def local_error(path: Path, what: str, err: OSError) -> LocalError:
    return LocalError(f"{path}: cannot {what}: {err.strerror or err}")


@dataclass(frozen=True)
class Plan:
    """How one :func:`download` runs."""

    timeout_s: float
    progress: bool
    checked: bool  # an md5/sha256 verifies the result: a partial file may be resumed blindly
    expected: int | None = None  # approximate size in bytes (None: unknown)

    @property
    def min_bytes(self) -> int:
        return int(self.expected / SIZE_SLACK) if self.expected else 0

    @property
    def max_bytes(self) -> int | None:
        return int(self.expected * SIZE_SLACK) if self.expected else None

    def resumable(self, part: Path) -> bool:
        """True when ``part`` can be resumed: its version is known, or a checksum will tell."""
        return part.is_file() and (self.checked or bool(_saved_entity(part)))


def _open_resuming(url: str, part: Path, plan: Plan) -> tuple[http.client.HTTPResponse, int]:
    """Open ``url``, resuming ``part`` only against the same version of the file (If-Range and
    the answer's ETag/Last-Modified); returns the response and the byte its body starts at."""
    offset = part.stat().st_size if plan.resumable(part) else 0
    saved = _saved_entity(part) if offset else {}
    if_range = saved.get("etag", saved.get("last_modified"))
    try:
        response = _open_url(url, offset, plan.timeout_s, if_range)
    except DroppedError:
        if not offset:
            raise
        offset = 0  # 416: the partial file cannot be resumed; start again
        response = _open_url(url, 0, plan.timeout_s)
    start = _resume_offset(response, offset)
    if start and not _same_entity(saved, response.headers):  # a server ignoring If-Range
        response.close()
        start, response = 0, _open_url(url, 0, plan.timeout_s)
    if not start:
        discard(part)
        entity = _entity(response.headers)
        if entity:
            try:
                atomic_write_text(entity_file(part), json.dumps(entity) + "\n")
            except OSError as err:
                response.close()
                raise local_error(part.parent, "write the download", err) from None
    return response, start


def _byte_cap(url: str, part: Path, total: int | None, start: int, plan: Plan) -> int:
    """The most bytes ``part`` may hold: refuses an announced size far from the expected one or
    larger than the free disk space."""
    if total is not None and (plan.max_bytes is not None and total > plan.max_bytes):
        raise DownloadError(
            f"{url}: the server announces {_size(total)}, far more than the {_size(plan.expected)}"
            " expected: refused"
        )
    if total is not None and total < plan.min_bytes:
        raise DownloadError(
            f"{url}: the server announces {_size(total)}, far less than the {_size(plan.expected)}"
            " expected (a web page or an error message?): refused"
        )
    try:
        free = shutil.disk_usage(part.parent).free
    except OSError as err:
        raise local_error(part.parent, "read the free disk space", err) from None
    need = (total if total is not None else plan.expected or 0) - start
    if need + FREE_MARGIN_BYTES > free:
        raise LocalError(
            f"{part.parent}: not enough free disk space for {url}: it needs {_size(need)}, "
            f"{_size(free)} are free ({_size(FREE_MARGIN_BYTES)} must stay free)"
        )
    cap = start + free - FREE_MARGIN_BYTES
    return min(cap, plan.max_bytes) if plan.max_bytes is not None else cap


def _copy_body(
    url: str, response: http.client.HTTPResponse, part: Path, start: int, plan: Plan
) -> int | None:
    """Append ``response``'s body to ``part``; returns the file's announced total size."""
    length = response.headers.get("Content-Length")
    total = start + int(length) if length and length.isdigit() else None
    try:
        cap = _byte_cap(url, part, total, start, plan)
    except DownloadError as err:
        if not start or not isinstance(err, LocalError):  # keep a partial file to resume
            discard(part)
        raise
    # disable=None: no bar when stderr is not a terminal (a log file, a pipe).
    bar = tqdm(
        total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
        desc=part.name[: -len(".part")], disable=None if plan.progress else True, leave=False,
    )  # fmt: skip
    try:
        fh = open(part, "ab" if start else "wb")  # noqa: SIM115 (closed by the with below)
    except OSError as err:
        raise local_error(part, "write the download", err) from None
    with bar, fh:
        size = start
        while True:
            try:
                chunk = response.read(CHUNK_BYTES)
            except (OSError, http.client.HTTPException) as err:
                raise DroppedError(f"{type(err).__name__}: {err}") from None
            if not chunk:
                return total
            size += len(chunk)
            if size > cap:
                discard(part)
                why = "more than expected" if cap == plan.max_bytes else "the disk would fill"
                raise DownloadError(f"{url}: over {_size(cap)} arrived ({why}): refused")
            try:
                fh.write(chunk)
            except OSError as err:
                raise local_error(part, "write the download", err) from None
            bar.update(len(chunk))


def fetch_into(url: str, part: Path, plan: Plan) -> None:
    """Append the rest of ``url`` to ``part`` (or restart it); DroppedError when cut short."""
    response, start = _open_resuming(url, part, plan)
    with response:
        total = _copy_body(url, response, part, start, plan)
    size = part.stat().st_size
    if total is not None and size < total:
        raise DroppedError(f"connection closed after {size} of {total} bytes")
    if total is not None and size > total:
        discard(part)
        raise DownloadError(f"{url}: received {size} bytes, more than the {total} announced")


def check_size(url: str, part: Path, plan: Plan) -> None:
    """Refuse a finished download far smaller than expected (sent without a length)."""
    size = part.stat().st_size
    if size < plan.min_bytes:
        discard(part)
        raise DownloadError(
            f"{url}: only {_size(size)} arrived, far less than the {_size(plan.expected or 0)} "
            "expected (a web page, an error message, or a connection cut short?): refused"
        )
