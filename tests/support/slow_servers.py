"""Misbehaving servers on 127.0.0.1, for the deadline tests: they accept a connection and then
never finish answering, in three ways, over HTTP or SMTP.

* ``SILENT``: accepts the connection, reads what it is sent, never sends a byte.
* ``SLOW_HEADERS``: HTTP: the status line and headers, one byte every ``interval`` seconds,
  without end (header after header). SMTP: the greeting, the same way (a ``220-`` line after
  another). A per-read timeout longer than the interval never fires.
* ``SLOW_BODY``: HTTP: the headers at once (``Content-Length`` 1 MB), then the body one byte
  every ``interval`` seconds. SMTP: the greeting at once, then every reply one byte at a time
  (``250-`` lines without end), so the client hangs on its EHLO.

And one more, for what a client sends rather than what it reads:

* ``NOT_READING``: HTTP: accepts and never reads (nor answers). SMTP: answers every command
  at once up to ``DATA`` (``354``), then never reads again. Its receive buffer is small, so a
  large body soon fills the socket buffers and the client's send blocks.

``DripServer(kind, protocol)`` is a context manager; ``url`` (HTTP), ``port`` and
``connections`` (how many were accepted, and how many were open at once at most) tell a test
what happened. Every thread is a daemon and stops when the server does.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from collections.abc import Iterator

SILENT = "silent"
SLOW_HEADERS = "slow-headers"
SLOW_BODY = "slow-body"
KINDS = (SILENT, SLOW_HEADERS, SLOW_BODY)
NOT_READING = "not-reading"
HTTP = "http"
SMTP = "smtp"


def _http_headers_forever() -> Iterator[bytes]:
    yield b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
    for number in itertools.count():
        yield f"X-Drip-{number}: still coming\r\n".encode()


def _http_body_forever() -> Iterator[bytes]:
    yield b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n"
    while True:
        yield b"D" * 64


def _smtp_greeting_forever() -> Iterator[bytes]:
    while True:
        yield b"220-drip.example greets you very slowly\r\n"


def _smtp_replies_forever() -> Iterator[bytes]:
    yield b"220 drip.example ESMTP\r\n"
    while True:
        yield b"250-drip.example is still thinking\r\n"


_SCRIPTS = {
    (HTTP, SLOW_HEADERS): (_http_headers_forever, 0),
    (HTTP, SLOW_BODY): (_http_body_forever, 1),  # the first piece goes at once
    (SMTP, SLOW_HEADERS): (_smtp_greeting_forever, 0),
    (SMTP, SLOW_BODY): (_smtp_replies_forever, 1),
}


class DripServer:
    """A server of one ``kind`` (``SILENT``, ``SLOW_HEADERS``, ``SLOW_BODY``) speaking ``protocol``."""

    def __init__(self, kind: str, protocol: str = HTTP, *, interval: float = 0.2) -> None:
        if kind not in (*KINDS, NOT_READING) or protocol not in (HTTP, SMTP):
            raise ValueError(f"unknown server kind {kind!r} or protocol {protocol!r}")
        self.kind, self.protocol, self.interval = kind, protocol, interval
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if kind == NOT_READING:  # accepted sockets inherit it
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.accepted = 0
        self.most_at_once = 0

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> DripServer:
        self._spawn(self._accept_loop)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with self._lock:
            for conn in self._open:
                _close(conn)
        for thread in self._threads:
            thread.join(timeout=2)
        self._listener.close()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                # A client that closed one connection and opened the next is not two at once,
                # however late the busy machine lets the first one's thread notice the close.
                self._open = {c for c in self._open if not _peer_closed(c)}
                self._open.add(conn)
                self.accepted += 1
                self.most_at_once = max(self.most_at_once, len(self._open))
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        gone = threading.Event()  # the client closed, or the server stops
        if self.kind == NOT_READING:
            with contextlib.suppress(OSError):
                if self.protocol == SMTP:
                    _converse_until_data(conn)
            self._stop.wait()
        else:
            if self.kind != SILENT:
                self._spawn(self._drip, conn, gone)
            self._drain(conn)
        gone.set()
        with self._lock:
            self._open.discard(conn)
        _close(conn)

    def _drip(self, conn: socket.socket, gone: threading.Event) -> None:
        script, at_once = _SCRIPTS[self.protocol, self.kind]
        pieces = script()
        try:
            for piece in itertools.islice(pieces, at_once):
                conn.sendall(piece)
            for piece in pieces:
                for byte in piece:
                    if gone.wait(self.interval):
                        return
                    conn.sendall(bytes([byte]))
        except OSError:
            return  # the client gave up and closed: that is the point

    def _drain(self, conn: socket.socket) -> None:
        """Read (and drop) what the client sends until it closes or the server stops."""
        conn.settimeout(0.05)
        while not self._stop.is_set():
            try:
                if not conn.recv(65536):
                    return
            except TimeoutError:
                continue
            except OSError:
                return


def _converse_until_data(conn: socket.socket) -> None:
    conn.sendall(b"220 stall.example ESMTP\r\n")
    for line in conn.makefile("rb"):
        verb = line[:4].upper()
        if verb == b"DATA":
            conn.sendall(b"354 go ahead\r\n")
            return
        conn.sendall(b"250 ok\r\n")


def _peer_closed(conn: socket.socket) -> bool:
    """Whether the client has closed its end (its FIN is waiting to be read), without blocking
    or consuming anything."""
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, TimeoutError):  # nothing to read: still open
        return False
    except OSError:
        return True


def _close(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()
