"""What an HTTP call may spend and what it gives back: the policy, the response, the errors.

Nothing waits forever: connect, read, write and pool timeouts are explicit; retries are
capped by a number of attempts *and* by a total budget of seconds spent waiting between them;
a whole call has a deadline. ``parse_retry_after`` reads a server's ``Retry-After``.
"""

from __future__ import annotations

import email.utils
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from ..core.errors import ProviderError


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
