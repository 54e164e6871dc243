"""Secrets never leak from an HTTP call: what a request carries that is secret, and its URL
safe to show.

API keys in query strings, ``Authorization`` headers and tokens in URL paths (Telegram's
``/bot<token>/``) are masked in every exception, log line and message. httpx itself logs
every request URL at INFO, so importing this module adds a redacting filter to the ``httpx``
and ``httpcore`` loggers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

import httpx

from ..core.redaction import BOT_TOKEN, MASK, SENSITIVE_PARAMETER, redact

_BEARER = re.compile(r"(?i)^(bearer|basic|token|bot)\s+")


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
