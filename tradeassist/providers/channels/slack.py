"""SLACK: an incoming webhook; the target is the webhook URL.

``POST <webhook>`` with JSON ``{"text": ..., "blocks": [...]}``: ``text`` is the fallback
(notifications, old clients), the blocks show the subject as a header and the text body as
a section. Slack answers ``200`` with the body ``ok``; anything else is a failure: ``429``
(with ``Retry-After``) and ``5xx`` are retryable, other answers (``400 invalid_payload``,
``403 invalid_token``, ``404 no_service``, ``410 channel_is_archived``, a 2xx body other than
``ok``) are permanent.

The webhook URL embeds its token (``/services/T.../B.../<secret>``): it is masked in every
error, and a log filter on httpx's logger (which logs each request URL at INFO) masks it too,
both by the Slack path shape and by the exact URLs being sent right now. Plain ``http`` is
accepted for loopback hosts only (a local test server); anything else must be ``https``.

Each network step waits at most ``timeout`` (default 10 s) and the whole send, retries
included, at most ``deadline`` (default three times the timeout: 30 s), however slowly the
server sends its headers or body (``HttpClient``); past it the send is retryable.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from ...core.redaction import MASK, redact
from ..http import HttpClient, HttpError, HttpPolicy, HttpTimeout
from .base import DeliveryResult, OutgoingMessage, channel_policy, retry_after_from_http_error, truncate

log = logging.getLogger(__name__)

NAME = "SLACK"
DEFAULT_TIMEOUT = 10.0
MAX_HEADER = 150  # Slack's limit for a header block's text
MAX_SECTION = 3000  # ... and for a section's text
MAX_TEXT = 40000
# /services/T000/B000/XXXX (Slack), also the /workflows/ and /triggers/ forms.
_WEBHOOK_PATH = re.compile(r"(/(?:services|workflows|triggers)/)[A-Za-z0-9_/-]+")

_in_flight: dict[str, int] = {}
_in_flight_lock = threading.Lock()


def mask_webhooks(text: str) -> str:
    """``text`` with every webhook URL being sent now, and every Slack webhook path, masked."""
    with _in_flight_lock:
        urls = list(_in_flight)
    text = redact(text, urls)
    return _WEBHOOK_PATH.sub(rf"\1{MASK}", text)


class WebhookLogFilter(logging.Filter):
    """Masks webhook URLs in httpx's request log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = mask_webhooks(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def _install_log_filter() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, WebhookLogFilter) for f in logger.filters):
        logger.addFilter(WebhookLogFilter())


_install_log_filter()


@contextmanager
def _sending(url: str) -> Iterator[None]:
    with _in_flight_lock:
        _in_flight[url] = _in_flight.get(url, 0) + 1
    try:
        yield
    finally:
        with _in_flight_lock:
            _in_flight[url] -= 1
            if not _in_flight[url]:
                del _in_flight[url]


def _mrkdwn_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(message: OutgoingMessage) -> dict[str, Any]:
    """``{"text", "blocks"}``: a header with the subject and sections with the text body."""
    body = _mrkdwn_escape(message.text.strip())
    fallback = truncate(f"{_mrkdwn_escape(message.subject)}\n\n{body}" if body else message.subject, MAX_TEXT)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(message.subject, MAX_HEADER)}}
    ]
    body = truncate(body, MAX_SECTION * 10)
    for start in range(0, len(body), MAX_SECTION):
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": body[start : start + MAX_SECTION]}}
        )
    return {"text": fallback, "blocks": blocks}


def _check_url(url: str) -> str | None:
    """Why ``url`` is not a usable webhook URL, or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "the webhook URL is not a URL"
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and host:
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return None
        return "the webhook URL must use https (plain http only to a loopback address)"
    return "the webhook URL must be an https:// URL"


class SlackChannel:
    name = NAME

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float | None = None,
        policy: HttpPolicy | None = None,
        client: HttpClient | None = None,
    ) -> None:
        self._client = client or HttpClient(policy or channel_policy(timeout, deadline))

    def send(self, message: OutgoingMessage, target: str) -> DeliveryResult:
        url = str(target).strip()
        problem = _check_url(url)
        if problem:
            return DeliveryResult.permanent(NAME, f"SLACK: {problem}")
        hidden = _url_secrets(url)
        with _sending(url):
            try:
                response = self._client.post(url, json=slack_payload(message), secrets=hidden)
            except HttpError as exc:
                result = _failure(exc, hidden)
            else:
                answer = response.text.strip()
                if answer == "ok":
                    result = DeliveryResult.ok(NAME)
                else:
                    shown = mask_webhooks(redact(truncate(" ".join(answer.split()), 200), hidden))
                    result = DeliveryResult.permanent(
                        NAME, f"SLACK: the webhook answered {response.status} {shown!r}, not 'ok'"
                    )
            if result.sent:
                log.info("slack message %r sent", message.subject)
            else:
                log.warning("slack message not sent: %s", result.error)
        return result


def _url_secrets(url: str) -> list[str]:
    """The URL's path (and query): with the host, enough to post to the channel.

    Masking the path rather than the whole URL keeps the host in errors, which helps.
    """
    parts = urlsplit(url)
    path = parts.path.strip("/")
    secrets = [path] if len(path) >= 8 else [url]
    secrets.extend(segment for segment in path.split("/") if len(segment) >= 12)
    if parts.query:
        secrets.append(parts.query)
    return secrets


def _failure(exc: HttpError, hidden: list[str]) -> DeliveryResult:
    error = mask_webhooks(redact(f"SLACK: {exc}", hidden))
    if exc.status == 429 or isinstance(exc, HttpTimeout) or exc.status is None or exc.status >= 500:
        return DeliveryResult.retry(NAME, error, retry_after_from_http_error(exc))
    return DeliveryResult.permanent(NAME, error)
