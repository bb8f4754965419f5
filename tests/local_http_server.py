"""A local HTTP server on 127.0.0.1 for download tests: Range support, dropped connections.

Used by tests/test_download.py and tests/test_librispeech.py; no internet needed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class ServerState:
    """What the server serves and what it saw."""

    # URL path ("/dev-clean.tar.gz") -> file bytes.
    files: dict[str, bytes] = field(default_factory=dict)
    # Paths whose next request gets half the body and then a closed connection.
    drop_once: set[str] = field(default_factory=set)
    # Answer 200 with the whole file even when a Range is asked for.
    ignore_range: bool = False
    # (path, Range header or None) of every request, in order.
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    base_url: str = ""

    def ranges(self, path: str) -> list[str | None]:
        """The Range headers of the requests for ``path``."""
        return [rng for p, rng in self.requests if p == path]


def _handler(state: ServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            state.requests.append((self.path, rng))
            data = state.files.get(self.path)
            if data is None:
                self.send_error(404, "Not Found")
                return
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", rng or "")
            if match and not state.ignore_range:
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.path in state.drop_once:
                state.drop_once.discard(self.path)
                body = body[: len(body) // 2]
                self.close_connection = True
            self.wfile.write(body)

    return Handler


@contextmanager
def serve(state: ServerState) -> Iterator[ServerState]:
    """Run a server for ``state`` in a thread; ``state.base_url`` is set while it runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
