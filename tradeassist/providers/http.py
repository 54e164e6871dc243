"""One small HTTP helper over httpx for every provider that talks to the network.

Why a helper and not bare httpx: every caller needs the same three guarantees.

* Nothing waits forever. A whole call (every attempt, every wait, connecting, sending,
  the status line, the headers, every byte of the body) has one deadline
  (``HttpPolicy.deadline``) that a server cannot extend: every socket operation waits at
  most ``min(its own timeout, time left)`` (the connection pool's network backend,
  ``_DeadlineBackend``, caps each one), so a server that drips its headers one byte every
  few seconds is dropped when the deadline passes, with one line naming the URL and the
  deadline. Connect, read, write and pool timeouts bound each operation besides; retries
  are capped by a number of attempts *and* by a total budget of seconds spent waiting
  between them. A server that asks us (``Retry-After``) to come back later than the budget
  allows fails the call at once, with a message saying so. Only the name lookup (the
  system resolver's own timeouts) is outside the deadline.
* Transient failures are retried: 429 and 5xx answers and connection failures, with
  exponential backoff, honouring ``Retry-After`` (seconds or an HTTP date). A read that
  times out or breaks is retried only for idempotent methods: a POST may have been
  processed, so it is retried only when it surely was not (connect failures, 429, 503).
* Secrets never leak. API keys in query strings, ``Authorization`` headers and tokens in URL
  paths (Telegram's ``/bot<token>/``) are masked in every exception, log line and message.
  Errors are raised outside ``except`` blocks so the httpx exception (which holds the
  request and its URL) is not chained onto ours. httpx itself logs every request URL at
  INFO, so importing this module adds a redacting filter to the ``httpx`` and ``httpcore``
  loggers.

The policy, response and errors live in ``http_policy``, the redaction in ``http_redaction``;
this module is the client and re-exports them.
"""

from __future__ import annotations

import functools
import logging
import random
import socket
import ssl
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from ..core.frozen import FrozenDict
from ..core.redaction import redact
from .http_policy import HttpError, HttpPolicy, HttpResponse, HttpTimeout, parse_retry_after
from .http_redaction import RedactingFilter, redact_url, secrets_in

__all__ = [
    "IDEMPOTENT",
    "USER_AGENT",
    "HttpClient",
    "HttpError",
    "HttpPolicy",
    "HttpResponse",
    "HttpTimeout",
    "RedactingFilter",
    "parse_retry_after",
    "redact",
    "redact_url",
    "secrets_in",
]

log = logging.getLogger(__name__)

USER_AGENT = "tradeassist/0.1 (+https://github.com/; httpx)"

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# What the network backend says when it stops a call: its deadline, not a per-read timeout.
_DEADLINE_PASSED = "the call's deadline passed"
_WRITE_PIECE = 64 * 1024  # a request body is sent in pieces, each within the time left
# Answers that say the request was not processed, so even a POST may be sent again.
_NOT_PROCESSED = frozenset({429, 503})


@dataclass(slots=True)
class _Failure:
    """Why an attempt failed, and whether another may be made."""

    reason: str
    status: int | None = None
    body: str = ""
    retry_after: float | None = None
    retryable: bool = False
    timeout: bool = False


@dataclass(frozen=True, slots=True)
class _Call:
    """A request as messages name it: the method and the redacted URL."""

    method: str
    shown: str

    def error(self, failure: _Failure, attempts: int) -> HttpError:
        """The error for a call that could not succeed, after ``attempts`` attempts."""
        error = HttpTimeout if failure.timeout else HttpError
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        body = f" (body: {failure.body})" if failure.body else ""
        return error(
            f"{self.method} {self.shown}: {failure.reason}{tries}{body}",
            url=self.shown,
            status=failure.status,
            attempts=attempts,
            body=failure.body,
        )


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------
class HttpClient:
    """Retrying, deadline-bound, secret-redacting HTTP. Opens connections per call only.

    ``sleep``, ``clock`` (monotonic) and ``wallclock`` (epoch, for HTTP-date ``Retry-After``)
    can be replaced in tests; ``transport`` goes to httpx (e.g. ``httpx.MockTransport``).
    """

    def __init__(
        self,
        policy: HttpPolicy | None = None,
        *,
        secrets: Iterable[str | None] = (),
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy or HttpPolicy()
        self._secrets = frozenset(s for s in secrets if s)
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self._transport = _Borrowed(transport) if transport is not None else None
        self._sleep = sleep
        self._clock = clock
        self._wallclock = wallclock
        self._rand = rand

    def get(self, url: str, **kwargs: Any) -> HttpResponse:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> HttpResponse:
        return self.request("POST", url, **kwargs)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        data: Mapping[str, Any] | None = None,
        secrets: Iterable[str | None] = (),
    ) -> HttpResponse:
        """Send the request, retrying transient failures; raise ``HttpError`` when it cannot succeed."""
        method = method.upper()
        params = {k: v for k, v in (params or {}).items() if v is not None}
        all_headers = {**self._headers, **(headers or {})}
        hidden = set(self._secrets) | {s for s in secrets if s} | secrets_in(url, params, all_headers)
        call = _Call(method, redact_url(httpx.URL(url, params=params) if params else url, hidden))
        policy = self.policy
        deadline = self._clock() + policy.deadline
        waited = 0.0
        failure = _Failure("not attempted")
        attempt = 0
        while attempt < policy.max_attempts:
            attempt += 1
            outcome = self._attempt(
                method, url, params, all_headers, json, content, data, deadline, hidden, policy
            )
            if isinstance(outcome, HttpResponse):
                return outcome
            failure = outcome
            if not failure.retryable or attempt >= policy.max_attempts:
                break
            budget = min(policy.max_total_wait - waited, deadline - self._clock())
            delay = self._retry_delay(call, failure, attempt, budget)
            if delay is None:
                break
            self._sleep(delay)
            waited += delay
        raise call.error(failure, attempt)

    def _retry_delay(self, call: _Call, failure: _Failure, attempt: int, budget: float) -> float | None:
        """Seconds to wait before the next attempt, or None to give up: the server's
        ``Retry-After`` (beyond ``budget``: the call fails at once, saying so), else the backoff
        (beyond ``budget``: give up)."""
        policy = self.policy
        delay = failure.retry_after
        if delay is not None and delay > budget:
            raise HttpError(
                f"{call.method} {call.shown}: {failure.reason}; the server asks us to retry after "
                f"{delay:.0f} s, beyond the {max(budget, 0):.0f} s this call may still wait",
                url=call.shown,
                status=failure.status,
                attempts=attempt,
                body=failure.body,
            )
        if delay is None:
            delay = policy.backoff(attempt, self._rand)
            if delay > budget:
                return None
        log.warning(
            "%s %s: %s (attempt %d of %d); retrying in %.2f s",
            call.method,
            call.shown,
            failure.reason,
            attempt,
            policy.max_attempts,
            delay,
        )
        return delay

    def _attempt(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any],
        headers: Mapping[str, str],
        json_body: Any,
        content: bytes | str | None,
        data: Mapping[str, Any] | None,
        deadline: float,
        hidden: set[str],
        policy: HttpPolicy,
    ) -> HttpResponse | _Failure:
        remaining = deadline - self._clock()
        if remaining <= 0:
            return _deadline_failure(policy)
        timeout = httpx.Timeout(
            connect=min(policy.connect_timeout, remaining),
            read=min(policy.read_timeout, remaining),
            write=min(policy.write_timeout, remaining),
            pool=min(policy.pool_timeout, remaining),
        )
        transport = self._transport or _DeadlineTransport(_Deadline(deadline, self._clock), url)
        idempotent = method in IDEMPOTENT
        try:
            with (
                httpx.Client(timeout=timeout, transport=transport, follow_redirects=True) as client,
                client.stream(
                    method, url, params=params, headers=headers, json=json_body, content=content, data=data
                ) as response,
            ):
                return self._read(response, deadline, hidden, policy, idempotent)
        except httpx.TimeoutException as exc:
            if str(exc) == _DEADLINE_PASSED or self._clock() >= deadline:
                return _deadline_failure(policy)
            if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
                return _Failure(f"could not connect ({_describe(exc, hidden)})", retryable=True, timeout=True)
            return _Failure(
                f"timed out waiting for the server ({_describe(exc, hidden)})",
                retryable=idempotent,
                timeout=True,
            )
        except httpx.ConnectError as exc:
            return _Failure(f"could not connect ({_describe(exc, hidden)})", retryable=True)
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            return _Failure(f"connection failed ({_describe(exc, hidden)})", retryable=idempotent)
        except httpx.HTTPError as exc:
            return _Failure(f"request failed ({_describe(exc, hidden)})")

    def _read(
        self,
        response: httpx.Response,
        deadline: float,
        hidden: set[str],
        policy: HttpPolicy,
        idempotent: bool,
    ) -> HttpResponse | _Failure:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > policy.max_body_bytes:
                return _Failure(f"the answer is larger than {policy.max_body_bytes} bytes")
            chunks.append(chunk)
            if self._clock() > deadline:
                return _deadline_failure(policy)
        content = b"".join(chunks)
        status = response.status_code
        encoding = response.charset_encoding or "utf-8"
        if status < 400:
            return HttpResponse(
                status=status,
                url=redact_url(response.url, hidden),
                headers=FrozenDict({k.lower(): v for k, v in response.headers.items()}),
                content=content,
                encoding=encoding,
            )
        body = redact(" ".join(content[:600].decode(encoding, errors="replace").split())[:300], hidden)
        retryable = status in policy.retry_statuses and (idempotent or status in _NOT_PROCESSED)
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self._wallclock())
        reason = f"HTTP {status} {response.reason_phrase}".rstrip()
        return _Failure(reason, status=status, body=body, retry_after=retry_after, retryable=retryable)


def _deadline_failure(policy: HttpPolicy) -> _Failure:
    return _Failure(
        f"no complete answer within the {policy.deadline:g} s deadline (connect, headers and body)",
        timeout=True,
    )


# --------------------------------------------------------------------------------------------
# The deadline, enforced on every socket operation
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Deadline:
    """The end of a call on the client's monotonic clock."""

    at: float
    clock: Callable[[], float]

    def cap(self, timeout: float | None, expired: type[Exception]) -> float:
        """``timeout`` cut to the time left; ``expired`` (an httpcore timeout) once none is left."""
        left = self.at - self.clock()
        if left <= 0:
            raise expired(_DEADLINE_PASSED)
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake waits at most the time left.

    httpcore passes each operation its own timeout (read, write, connect), which a server
    that sends one byte just inside it can renew forever; capping each one at the time left
    makes the deadline hold whatever the server does.
    """

    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.cap(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # httpcore's own write loops over send() with the same timeout each time: in pieces,
        # a server that reads slowly cannot stretch one large write past the deadline.
        for start in range(0, len(buffer), _WRITE_PIECE):
            piece = buffer[start : start + _WRITE_PIECE]
            self._inner.write(piece, self._deadline.cap(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        # The handshake is one operation: Python bounds all of it by the socket's timeout.
        wait = self._deadline.cap(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, wait), self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend with every operation capped by the call's deadline.

    A host with several addresses is tried one address at a time, each connect waiting at
    most the time left (``socket.create_connection`` would give each the whole timeout).
    """

    def __init__(self, deadline: _Deadline) -> None:
        self._inner = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            found = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        error: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            wait = self._deadline.cap(timeout, httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(address, port, wait, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            return _DeadlineStream(stream, self._deadline)
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        wait = self._deadline.cap(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, wait, socket_options), self._deadline)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verifying context (certifi, ``SSL_CERT_FILE``/``SSL_CERT_DIR``), built
    once: building it costs about 0.1 s, and a context is safe to share between threads."""
    return httpx.create_ssl_context()


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx's own transport (its request mapping and error translation) over a connection
    pool whose network backend keeps ``deadline``. Made per attempt, like the pool.

    httpx takes no network backend, so the pool it builds is replaced by one that has ours
    (``_pool`` is the attribute ``HTTPTransport.handle_request`` and ``close`` use; the
    header-drip tests in ``tests/test_deadlines.py`` fail if a new httpx moves it). An HTTP
    proxy from the environment (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``)
    is used as httpx would; so is the deadline, through it.
    """

    def __init__(self, deadline: _Deadline, url: str) -> None:
        context = _tls_context()
        super().__init__(verify=context)
        backend = _DeadlineBackend(deadline)
        proxy = _environment_proxy(url)
        if proxy is None:
            self._pool = httpcore.ConnectionPool(ssl_context=context, network_backend=backend)
        else:
            self._pool = httpcore.HTTPProxy(
                proxy_url=httpcore.URL(
                    scheme=proxy.url.raw_scheme,
                    host=proxy.url.raw_host,
                    port=proxy.url.port,
                    target=proxy.url.raw_path,
                ),
                proxy_auth=proxy.raw_auth,
                proxy_headers=proxy.headers.raw,
                ssl_context=context,
                network_backend=backend,
            )


def _environment_proxy(url: str) -> httpx.Proxy | None:
    """The HTTP(S) proxy the environment names for ``url``, if any (others are not supported)."""
    proxies = urllib.request.getproxies()
    target = httpx.URL(url)
    chosen = proxies.get(target.scheme) or proxies.get("all")
    if not chosen or urllib.request.proxy_bypass(target.host):
        return None
    proxy = httpx.Proxy(chosen if "://" in chosen else f"http://{chosen}")
    return proxy if proxy.url.scheme in ("http", "https") else None


class _Borrowed(httpx.BaseTransport):
    """A caller's transport, used by each per-call httpx.Client but closed only by its owner."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._inner.handle_request(request)

    def close(self) -> None:
        pass


def _describe(exc: Exception, hidden: set[str]) -> str:
    text = str(exc) or type(exc).__name__
    return redact(f"{type(exc).__name__}: {text}" if str(exc) else text, hidden)
