"""A scripted HTTP server on 127.0.0.1 for download tests: servers that lie, change or never end.

Each request gets the next :class:`Answer` of the script (the last one repeats): a file version
with its ETag, and what the server does wrong (ignores Range or If-Range, cuts the body, sends
no or a false Content-Length, sends an endless body). Used by tests/test_download.py and
tests/test_pretrained_cache.py; no internet needed. tests/local_http_server.py is the honest one.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# An endless body stops after this many bytes (or when the client leaves), so a test ends.
ENDLESS_CAP_BYTES = 16 << 20
_ENDLESS_CHUNK = bytes(64 << 10)


@dataclass
class Answer:
    """One answer: the file as it is on the server now, and how it is (mis)served."""

    data: bytes  # the whole file; a honoured Range sends a part of it
    etag: str | None = None  # ETag header (None: none sent)
    honour_range: bool = True  # False: 200 and the whole file even when a Range is asked for
    honour_if_range: bool = True  # False: a Range is served even when If-Range names another
    send_length: bool = True  # False: no Content-Length; the body ends when the server closes
    length: int | None = None  # a Content-Length to announce instead of the true one
    cut_after: int | None = None  # send this many body bytes, then close the connection
    endless: bool = False  # after the data, send zeros until the client leaves
    content_type: str = "application/octet-stream"


@dataclass
class Script:
    """What the server answers, in order, and what it was asked."""

    answers: list[Answer]
    # (Range, If-Range) header of every request, in order.
    requests: list[tuple[str | None, str | None]] = field(default_factory=list)
    base_url: str = ""  # while the server runs; every path serves the file
    url: str = ""  # base_url + "/file.bin"

    def next_answer(self) -> Answer:
        return self.answers[min(len(self.requests) - 1, len(self.answers) - 1)]


def _start_byte(answer: Answer, rng: str | None, if_range: str | None) -> int | None:
    """The byte a 206 answer starts at, or None for a 200 with the whole file."""
    match = re.fullmatch(r"bytes=(\d+)-", rng or "")
    if not match or not answer.honour_range:
        return None
    if answer.honour_if_range and if_range is not None and if_range != answer.etag:
        return None  # another version than the client has: the whole file (RFC 9110 If-Range)
    return int(match.group(1))


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            script.requests.append((self.headers.get("Range"), self.headers.get("If-Range")))
            answer = script.next_answer()
            start = _start_byte(answer, *script.requests[-1])
            body = answer.data[start or 0 :]
            if start is None:
                self.send_response(200)
            else:
                self.send_response(206)
                size = len(answer.data)
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            if answer.etag:
                self.send_header("ETag", answer.etag)
            self.send_header("Content-Type", answer.content_type)
            if answer.send_length:
                self.send_header("Content-Length", str(answer.length or len(body)))
            self.end_headers()
            self._send(answer, body)

        def _send(self, answer: Answer, body: bytes) -> None:
            self.close_connection = True
            try:
                self.wfile.write(body[: answer.cut_after])
                sent = len(body)
                while answer.endless and sent < ENDLESS_CAP_BYTES:
                    self.wfile.write(_ENDLESS_CHUNK)
                    sent += len(_ENDLESS_CHUNK)
            except OSError:  # the client left (it refused the body): what a test wants
                pass

    return Handler


@contextmanager
def serve_script(answers: list[Answer]) -> Iterator[Script]:
    """Serve ``answers`` in a thread; ``script.url`` is set while it runs."""
    script = Script(list(answers))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    script.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    script.url = f"{script.base_url}/file.bin"
    try:
        yield script
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
