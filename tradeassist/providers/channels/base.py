"""What a notification channel is given and what it answers.

A channel only delivers: the outbox service owns the notification rows, their
PENDING -> SENT / FAILED / SUPPRESSED states and the backoff between attempts. So ``send``
never raises for a delivery problem (a server down, a refused recipient, a missing setting):
it answers a ``DeliveryResult`` saying whether trying again later may help, and after how
long if the server said so. Every error text in a result is already redacted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol, runtime_checkable

from ...core.errors import ValidationError
from ..http import HttpPolicy

# An RFC 5322 msg-id-ish token: no brackets, spaces or quotes, so "cid:<id>" in HTML resolves.
_CONTENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+-]*(@[A-Za-z0-9.-]+)?")
_MIME_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message, as every channel receives it.

    ``inline_images`` are ``(content_id, png_bytes)`` pairs that ``html`` shows with
    ``<img src="cid:content_id">``; ``attachments`` are ``(filename, mime_type, bytes)``.
    Chat channels send ``subject`` and ``text`` only; email sends everything.
    """

    subject: str
    text: str
    html: str | None = None
    inline_images: tuple[tuple[str, bytes], ...] = ()
    attachments: tuple[tuple[str, str, bytes], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject", " ".join(str(self.subject).split()))
        object.__setattr__(self, "inline_images", tuple(tuple(i) for i in self.inline_images))
        object.__setattr__(self, "attachments", tuple(tuple(a) for a in self.attachments))
        if not self.subject:
            raise ValidationError("message: the subject is empty")
        if not isinstance(self.text, str):
            raise ValidationError("message: the text body must be a string")
        if self.inline_images and not self.html:
            raise ValidationError("message: inline images need an HTML body that shows them (cid:...)")
        seen: set[str] = set()
        for image in self.inline_images:
            if len(image) != 2 or not isinstance(image[1], bytes):
                raise ValidationError("message: an inline image is (content_id, png bytes)")
            cid = image[0]
            if not isinstance(cid, str) or not _CONTENT_ID.fullmatch(cid):
                raise ValidationError(
                    f"message: inline image content id {cid!r}: use letters, digits and . _ % + - only"
                )
            if cid in seen:
                raise ValidationError(f"message: inline image content id {cid!r} appears twice")
            seen.add(cid)
        for attachment in self.attachments:
            if len(attachment) != 3 or not isinstance(attachment[2], bytes):
                raise ValidationError("message: an attachment is (filename, mime type, bytes)")
            filename, mime_type, _data = attachment
            if not isinstance(filename, str) or not filename.strip() or "/" in filename or "\\" in filename:
                raise ValidationError(f"message: attachment filename {filename!r} is not a plain file name")
            if not isinstance(mime_type, str) or not _MIME_TYPE.fullmatch(mime_type):
                raise ValidationError(f"message: attachment {filename}: {mime_type!r} is not a MIME type")


class DeliveryStatus(StrEnum):
    SENT = "SENT"
    RETRYABLE = "RETRYABLE"  # trying again later may work (server down, rate limited, timed out)
    PERMANENT = "PERMANENT"  # it will fail the same way until someone changes something


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What happened to one delivery. ``error`` is redacted: safe to log, store and show."""

    channel: str
    status: DeliveryStatus
    error: str | None = None
    retry_after: float | None = None  # seconds, when the server said how long to wait
    provider_message_id: str | None = None

    @property
    def sent(self) -> bool:
        return self.status is DeliveryStatus.SENT

    @property
    def retryable(self) -> bool:
        return self.status is DeliveryStatus.RETRYABLE

    @classmethod
    def ok(cls, channel: str, provider_message_id: str | None = None) -> DeliveryResult:
        return cls(channel, DeliveryStatus.SENT, provider_message_id=provider_message_id)

    @classmethod
    def retry(cls, channel: str, error: str, retry_after: float | None = None) -> DeliveryResult:
        return cls(channel, DeliveryStatus.RETRYABLE, error=error, retry_after=retry_after)

    @classmethod
    def permanent(cls, channel: str, error: str) -> DeliveryResult:
        return cls(channel, DeliveryStatus.PERMANENT, error=error)


@runtime_checkable
class Channel(Protocol):
    """Delivers a message to one target (an email address, a chat id, a webhook URL)."""

    name: str

    def send(self, message: OutgoingMessage, target: str) -> DeliveryResult: ...


def retry_after_from_http_error(exc: Exception) -> float | None:
    """The server's ``Retry-After`` (seconds) carried by an ``HttpError``, when it can be known.

    ``HttpClient`` honours ``Retry-After`` itself while the wait fits its budget; beyond that it
    fails at once and names the wait in its message ("...retry after N s, beyond..."), which
    is the only place it is kept today.
    """
    value = getattr(exc, "retry_after", None)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = re.search(r"retry after (\d+(?:\.\d+)?) s\b", str(exc))
    return float(match.group(1)) if match else None


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """``text`` cut to at most ``limit`` characters, marked with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ellipsis))].rstrip() + ellipsis


def channel_policy(
    timeout: float, deadline: float | None = None, *, retry_statuses: frozenset[int] | None = None
) -> HttpPolicy:
    """A webhook's HTTP policy: short timeouts, three attempts, at most 5 s spent waiting
    (a longer ``Retry-After`` goes back to the outbox), the whole send within ``deadline``
    (default three times ``timeout``); ``retry_statuses`` as HttpPolicy's unless given."""
    policy = HttpPolicy(
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
        pool_timeout=timeout,
        deadline=deadline if deadline is not None else 3 * timeout,
        max_attempts=3,
        max_total_wait=5.0,
    )
    return policy if retry_statuses is None else replace(policy, retry_statuses=retry_statuses)
