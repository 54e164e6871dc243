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
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

import httpx

from ..core.errors import ProviderError
from ..core.redaction import BOT_TOKEN, MASK, SENSITIVE_PARAMETER, redact

log = logging.getLogger(__name__)

USER_AGENT = "tradeassist/0.1 (+https://github.com/; httpx)"
_BEARER = re.compile(r"(?i)^(bearer|basic|token|bot)\s+")

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Answers that say the request was not processed, so even a POST may be sent again.
_NOT_PROCESSED = frozenset({429, 503})


# --------------------------------------------------------------------------------------------
# Redaction
# --------------------------------------------------------------------------------------------
def redact_url(url: str | httpx.URL, secrets: Iterable[str | None] = ()) -> str:
    """The URL safe to show: sensitive query values, user-info passwords and bot tokens masked."""
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return redact(text, secrets)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    query = "&".join(_mask_query_part(part) for part in parts.query.split("&")) if parts.query else ""
    path = BOT_TOKEN.sub(rf"\1{MASK}", parts.path)
    return redact(urlunsplit((parts.scheme, netloc, path, query, parts.fragment)), secrets)


def _mask_query_part(part: str) -> str:
    name, sep, _value = part.partition("=")
    if sep and SENSITIVE_PARAMETER.search(unquote_plus(name)):
        return f"{name}={MASK}"
    return part


def secrets_in(
    url: str | httpx.URL,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> set[str]:
    """The secret values carried by a request: sensitive query values, auth headers, bot tokens."""
    found: set[str] = set()
    parsed = httpx.URL(str(url))
    for name, value in list(parsed.params.multi_items()) + list((params or {}).items()):
        if value is not None and SENSITIVE_PARAMETER.search(str(name)):
            found.add(str(value))
    if parsed.password:
        found.add(parsed.password)
    for match in re.finditer(r"/bot(\d+:[A-Za-z0-9_-]+)", parsed.path):
        found.add(match.group(1))
    for name, value in (headers or {}).items():
        if value and SENSITIVE_PARAMETER.search(name):
            found.add(value)
            found.add(_BEARER.sub("", value))
    return {s for s in found if s}


class RedactingFilter(logging.Filter):
    """Masks secret-looking URL parts in a logger's records (httpx logs whole URLs at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def _install_log_filters() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


_install_log_filters()


# --------------------------------------------------------------------------------------------
# Policy, response, errors
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HttpPolicy:
    """Timeouts and retry limits, in seconds. The defaults suit a daily price refresh."""

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    write_timeout: float = 30.0
    pool_timeout: float = 5.0
    max_attempts: int = 4
    backoff_initial: float = 0.5
    backoff_factor: float = 2.0
    backoff_max: float = 10.0
    jitter: float = 0.1  # up to this fraction is added to each backoff, to spread clients apart
    max_total_wait: float = 30.0  # seconds slept between attempts, all retries together
    deadline: float = 120.0  # the whole call: attempts, waits and reading the body
    max_body_bytes: int = 64 * 1024 * 1024
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        for name in ("connect_timeout", "read_timeout", "write_timeout", "pool_timeout", "deadline"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.backoff_max, self.backoff_initial * self.backoff_factor ** (attempt - 1))
        return base * (1 + self.jitter * rand())


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A successful (2xx/3xx) answer, fully read. ``url`` is already redacted."""

    status: int
    url: str
    headers: Mapping[str, str] = field(hash=False)
    content: bytes
    encoding: str = "utf-8"

    @property
    def text(self) -> str:
        return self.content.decode(self.encoding, errors="replace")

    def json(self, **kwargs: Any) -> Any:
        return json.loads(self.content, **kwargs)


class HttpError(ProviderError):
    """The HTTP request failed."""

    def __init__(
        self, message: str, *, url: str, status: int | None = None, attempts: int = 1, body: str = ""
    ) -> None:
        super().__init__(message, url=url, status=status, attempts=attempts)
        self.url = url
        self.status = status
        self.attempts = attempts
        self.body = body


class HttpTimeout(HttpError):
    """The server did not answer in time."""


@dataclass(slots=True)
class _Failure:
    reason: str
    status: int | None = None
    body: str = ""
    retry_after: float | None = None
    retryable: bool = False
    timeout: bool = False


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (``now`` is epoch)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": HTTP dates are GMT
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - now)
    return max(0.0, seconds) if seconds == seconds else None  # NaN check


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
        shown = redact_url(httpx.URL(url, params=params) if params else url, hidden)
        policy = self.policy
        started = self._clock()
        deadline = started + policy.deadline
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
            delay = failure.retry_after
            budget = min(policy.max_total_wait - waited, deadline - self._clock())
            if delay is not None and delay > budget:
                raise HttpError(
                    f"{method} {shown}: {failure.reason}; the server asks us to retry after "
                    f"{delay:.0f} s, beyond the {max(budget, 0):.0f} s this call may still wait",
                    url=shown,
                    status=failure.status,
                    attempts=attempt,
                    body=failure.body,
                )
            if delay is None:
                delay = policy.backoff(attempt, self._rand)
                if delay > budget:
                    break
            log.warning(
                "%s %s: %s (attempt %d of %d); retrying in %.2f s",
                method,
                shown,
                failure.reason,
                attempt,
                policy.max_attempts,
                delay,
            )
            self._sleep(delay)
            waited += delay
        error = HttpTimeout if failure.timeout else HttpError
        tries = f" after {attempt} attempts" if attempt > 1 else ""
        body = f" (body: {failure.body})" if failure.body else ""
        raise error(
            f"{method} {shown}: {failure.reason}{tries}{body}",
            url=shown,
            status=failure.status,
            attempts=attempt,
            body=failure.body,
        )

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
                headers=MappingProxyType({k.lower(): v for k, v in response.headers.items()}),
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
