"""Local HTTP servers for provider tests: scripted answers on 127.0.0.1, a server that never
answers, and a retry policy small enough that failure paths run in milliseconds."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tradeassist.providers.http import HttpPolicy


# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class ScriptedServer:
    """Answers each path with its list of replies in order; the last one repeats."""

    def __init__(self, routes: dict[str, Reply | list[Reply]]) -> None:
        self._routes = {path: list(r) if isinstance(r, list) else [r] for path, r in routes.items()}
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._answer(self)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                server._answer(self)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def hits(self, path: str) -> int:
        return sum(1 for s in self.seen if s.path == path)

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        self.seen.append(Seen(handler.command, parts.path, parse_qs(parts.query), dict(handler.headers)))
        replies = self._routes.get(parts.path)
        if not replies:
            reply = Reply(404, "Not Found")
        else:
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
        body = reply.body.encode("utf-8") if isinstance(reply.body, str) else reply.body
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@contextmanager
def silent_server() -> Iterator[str]:
    """Accepts TCP connections (via the listen backlog) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def fast_policy(**overrides: float) -> HttpPolicy:
    """Tiny timeouts and backoffs so failure paths run in milliseconds."""
    values: dict = dict(
        connect_timeout=1.0,
        read_timeout=1.0,
        write_timeout=1.0,
        pool_timeout=1.0,
        max_attempts=3,
        backoff_initial=0.01,
        backoff_max=0.05,
        jitter=0.0,
        max_total_wait=2.0,
        deadline=5.0,
    )
    values.update(overrides)
    return HttpPolicy(**values)
