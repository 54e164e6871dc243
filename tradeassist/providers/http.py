"""One small HTTP helper over httpx for every provider that talks to the network.

Why a helper and not bare httpx: every caller needs the same three guarantees.

* Nothing waits forever. Connect, read, write and pool timeouts are explicit; retries are
  capped by a number of attempts *and* by a total budget of seconds spent waiting between
  them; a whole call (every attempt, every wait, every byte read) has a deadline. A server
  that asks us (``Retry-After``) to come back later than the budget allows fails the call at
  once, with a message saying so.
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

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

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
            return _Failure(f"no answer within the {policy.deadline:g} s deadline", timeout=True)
        timeout = httpx.Timeout(
            connect=min(policy.connect_timeout, remaining),
            read=min(policy.read_timeout, remaining),
            write=min(policy.write_timeout, remaining),
            pool=min(policy.pool_timeout, remaining),
        )
        idempotent = method in IDEMPOTENT
        try:
            with (
                httpx.Client(timeout=timeout, transport=self._transport, follow_redirects=True) as client,
                client.stream(
                    method, url, params=params, headers=headers, json=json_body, content=content, data=data
                ) as response,
            ):
                return self._read(response, deadline, hidden, policy, idempotent)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return _Failure(
                f"could not connect ({_describe(exc, hidden)})",
                retryable=True,
                timeout=isinstance(exc, httpx.TimeoutException),
            )
        except httpx.TimeoutException as exc:
            return _Failure(
                f"timed out waiting for the server ({_describe(exc, hidden)})",
                retryable=idempotent,
                timeout=True,
            )
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
                return _Failure(
                    f"the answer did not finish within the {policy.deadline:g} s deadline", timeout=True
                )
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
