"""Notification channels, registered by name (the ``Channel`` enum's values).

>>> from tradeassist.providers.channels import OutgoingMessage, channel_names, get_channel
>>> channel_names()
('EMAIL', 'SLACK', 'TELEGRAM', 'WEBPUSH')
>>> result = get_channel("webpush").send(OutgoingMessage("Subject", "Body"), "anyone")
>>> result.status.value, result.error.split(" (")[0]
('PERMANENT', 'WEBPUSH: the target is not a push subscription')

``get_channel(name, **options)`` builds a new instance (names are case-insensitive);
options go to the channel's constructor (``timeout``, ``settings``, ``token``...). A
channel's ``send(message, target)`` never raises for a delivery problem: it returns a
``DeliveryResult`` (SENT, RETRYABLE with an optional ``retry_after``, or PERMANENT), with a
redacted ``error``. Register another channel with ``register_channel(name, factory)``.
"""

from __future__ import annotations

from collections.abc import Callable

from ...core.errors import ConfigError
from .base import (
    Channel,
    DeliveryResult,
    DeliveryStatus,
    OutgoingMessage,
    retry_after_from_http_error,
    truncate,
)
from .email import EmailChannel, SmtpSettings, build_email
from .slack import SlackChannel, slack_payload
from .telegram import TelegramChannel
from .webpush import VapidKey, WebPushChannel, generate_vapid_keys, parse_subscription

_factories: dict[str, Callable[..., Channel]] = {
    EmailChannel.name: EmailChannel,
    TelegramChannel.name: TelegramChannel,
    SlackChannel.name: SlackChannel,
    WebPushChannel.name: WebPushChannel,
}


def get_channel(name: str, **options: object) -> Channel:
    """A new instance of the channel registered as ``name`` (any case); ``ConfigError`` if none."""
    try:
        factory = _factories[str(name).strip().upper()]
    except KeyError:
        known = ", ".join(channel_names())
        raise ConfigError(f"unknown notification channel {name!r}; known channels: {known}") from None
    return factory(**options)


def channel_names() -> tuple[str, ...]:
    return tuple(sorted(_factories))


def register_channel(name: str, factory: Callable[..., Channel]) -> None:
    _factories[name.strip().upper()] = factory


__all__ = [
    "Channel",
    "DeliveryResult",
    "DeliveryStatus",
    "EmailChannel",
    "OutgoingMessage",
    "SlackChannel",
    "SmtpSettings",
    "TelegramChannel",
    "VapidKey",
    "WebPushChannel",
    "build_email",
    "channel_names",
    "generate_vapid_keys",
    "get_channel",
    "parse_subscription",
    "register_channel",
    "retry_after_from_http_error",
    "slack_payload",
    "truncate",
]
