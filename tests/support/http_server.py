"""Local HTTP servers for provider tests: scripted answers on 127.0.0.1, a server that never
answers, and a retry policy small enough that failure paths run in milliseconds."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tradeassist.providers.http import HttpPolicy

# --------------------------------------------------------------------------------------------
ANY_PATH = "*"  # a route that answers every path without a route of its own


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None  # None: the server's default


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""

    def json(self) -> object:
        return json.loads(self.body)


class ScriptedServer:
    """Answers each path with its list of replies in order; the last one repeats. A route
    ``"PATH?NAME=VALUE"`` answers the requests to PATH whose query has NAME=VALUE."""

    def __init__(
        self, routes: dict[str, Reply | list[Reply]], *, content_type: str = "text/plain; charset=utf-8"
    ) -> None:
        self._routes = {path: list(r) if isinstance(r, list) else [r] for path, r in routes.items()}
        self._content_type = content_type
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._answer(self)

            def do_POST(self) -> None:
                server._answer(self, self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def hits(self, path: str) -> int:
        return sum(1 for s in self.seen if s.path == path)

    def _answer(self, handler: BaseHTTPRequestHandler, body: bytes = b"") -> None:
        parts = urlsplit(handler.path)
        query, headers = parse_qs(parts.query), dict(handler.headers)
        self.seen.append(Seen(handler.command, parts.path, query, headers, body))
        # "PATH?NAME=VALUE" answers the requests with that query value first (requests sent
        # at once, such as a refresh's downloads, arrive in any order).
        keyed = (f"{parts.path}?{name}={value}" for name, values in query.items() for value in values)
        chosen = next((key for key in keyed if key in self._routes), parts.path)
        replies = self._routes.get(chosen) or self._routes.get(ANY_PATH)
        if not replies:
            reply = Reply(404, "Not Found")
        else:
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
        payload = reply.body.encode("utf-8") if isinstance(reply.body, str) else reply.body
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.content_type or self._content_type)
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class RecordingServer(ScriptedServer):
    """Answers every request, whatever its path, with the next of ``replies`` (the last one
    repeats), as JSON unless a reply says otherwise; ``seen`` keeps each request's body."""

    def __init__(self, replies: list[Reply]) -> None:
        super().__init__({ANY_PATH: list(replies)}, content_type="application/json")


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
