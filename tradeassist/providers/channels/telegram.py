"""TELEGRAM: the Bot API's ``sendMessage``; the target is the chat id.

``POST {base}/bot{token}/sendMessage`` with JSON ``{chat_id, text, parse_mode}``. The token
comes from ``TRADEASSIST_TELEGRAM_BOT_TOKEN``, the base URL from
``TRADEASSIST_TELEGRAM_BASE_URL`` (default https://api.telegram.org, e.g. a local Bot API
server). The subject is sent in bold above the text body (``parse_mode`` HTML, the text
escaped); the text is cut to Telegram's 4096 characters. Images and attachments are not sent:
a chat gets the summary, the email gets the report.

Flood control answers ``429`` with ``{"ok": false, "error_code": 429, "parameters":
{"retry_after": N}}``: the channel does not retry that itself but returns a retryable result
with ``retry_after`` N, for the outbox to honour. The token sits in the URL path, so it is
masked in every error (``http.redact`` knows ``/bot<token>/``) and must look like a bot token
(``123456:ABC...``) for the log filters to recognise it.

Each network step waits at most ``timeout`` (default 10 s) and the whole send, retries
included, at most ``deadline`` (default three times the timeout: 30 s), however slowly the
server sends its headers or body (``HttpClient``); past it the send is retryable.
"""

from __future__ import annotations

import html
import json
import logging
import re
from typing import Any

from ...core.config import secret, settings
from ...core.errors import ConfigError
from ...core.redaction import redact
from ..http import HttpClient, HttpError, HttpPolicy, HttpTimeout
from .base import DeliveryResult, OutgoingMessage, channel_policy, retry_after_from_http_error, truncate

log = logging.getLogger(__name__)

NAME = "TELEGRAM"
DEFAULT_BASE_URL = "https://api.telegram.org"
MAX_TEXT = 4096
DEFAULT_TIMEOUT = 10.0
_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")
_CHAT_ID = re.compile(r"-?\d+|@[A-Za-z0-9_]{5,}")


def format_text(message: OutgoingMessage, limit: int = MAX_TEXT) -> str:
    """``<b>subject</b>`` and the escaped text body, at most ``limit`` characters once escaped.

    The raw text is cut (never inside an escaped entity such as ``&amp;``), as little as fits.
    """
    head = f"<b>{html.escape(truncate(message.subject, limit // 4), quote=False)}</b>"
    body = message.text.strip()

    def render(cut: int) -> str:
        shown = truncate(body, cut)
        return f"{head}\n\n{html.escape(shown, quote=False)}" if shown else head

    if len(render(len(body))) <= limit:
        return render(len(body))
    low, high = 0, len(body) - 1  # the longest cut that fits, by bisection
    while low < high:
        middle = (low + high + 1) // 2
        if len(render(middle)) <= limit:
            low = middle
        else:
            high = middle - 1
    return render(low)


class TelegramChannel:
    name = NAME

    def __init__(
        self,
        token: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float | None = None,
        policy: HttpPolicy | None = None,
        client: HttpClient | None = None,
    ) -> None:
        self._token = token
        self._base_url = base_url
        # 429 is not retried here: the outbox waits what the server asks.
        self._client = client or HttpClient(
            policy or channel_policy(timeout, deadline, retry_statuses=frozenset({500, 502, 503, 504}))
        )

    def _settings(self) -> tuple[str, str]:
        token = (self._token or secret(settings().telegram_bot_token) or "").strip()
        if not token:
            raise ConfigError("TELEGRAM: TRADEASSIST_TELEGRAM_BOT_TOKEN is not set")
        if not _TOKEN.fullmatch(token):
            raise ConfigError("TELEGRAM: the bot token does not look like 123456:ABC... (check it)")
        base = self._base_url or settings().telegram_base_url or DEFAULT_BASE_URL
        base = base.rstrip("/")
        return token, base

    def send(self, message: OutgoingMessage, target: str) -> DeliveryResult:
        try:
            token, base = self._settings()
        except ConfigError as exc:
            return DeliveryResult.permanent(NAME, str(exc))
        chat_id = str(target).strip()
        if not _CHAT_ID.fullmatch(chat_id):
            return DeliveryResult.permanent(
                NAME, f"TELEGRAM: {chat_id!r} is not a chat id (a number, or @channelname)"
            )
        payload = {"chat_id": chat_id, "text": format_text(message), "parse_mode": "HTML"}
        try:
            response = self._client.post(f"{base}/bot{token}/sendMessage", json=payload, secrets=[token])
        except HttpError as exc:
            result = _failure(exc, token)
        else:
            result = _success(response.content, token)
        if result.sent:
            log.info("telegram message %r sent to chat %s", message.subject, chat_id)
        else:
            log.warning("telegram message to chat %s not sent: %s", chat_id, result.error)
        return result


def _body_json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _success(content: bytes, token: str) -> DeliveryResult:
    body = _body_json(content.decode("utf-8", "replace"))
    if body.get("ok") is True:
        found = body.get("result")
        result: dict[str, Any] = found if isinstance(found, dict) else {}
        message_id = result.get("message_id")
        return DeliveryResult.ok(NAME, None if message_id is None else str(message_id))
    description = redact(str(body.get("description") or content[:200].decode("utf-8", "replace")), [token])
    return DeliveryResult.permanent(
        NAME, f"TELEGRAM: the Bot API did not confirm the message ({description})"
    )


def _failure(exc: HttpError, token: str) -> DeliveryResult:
    body = _body_json(exc.body)
    error = redact(f"TELEGRAM: {exc}", [token])
    if exc.status == 429:
        found = body.get("parameters")
        parameters: dict[str, Any] = found if isinstance(found, dict) else {}
        retry_after = parameters.get("retry_after")
        if not isinstance(retry_after, int | float) or isinstance(retry_after, bool):
            retry_after = retry_after_from_http_error(exc)
        return DeliveryResult.retry(NAME, error, None if retry_after is None else float(retry_after))
    if isinstance(exc, HttpTimeout) or exc.status is None or exc.status >= 500:
        return DeliveryResult.retry(NAME, error, retry_after_from_http_error(exc))
    return DeliveryResult.permanent(NAME, error)
