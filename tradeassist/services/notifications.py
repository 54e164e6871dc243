"""The notification outbox: rows written with the event, delivered later by ``dispatch``.

``enqueue`` adds a PENDING row in the caller's transaction, so a notification exists exactly
when the event it tells of was committed. A row whose ``dedup_key`` was used for the same user
and channel within ``window`` (by a PENDING or SENT row) is stored SUPPRESSED: kept, never
sent. ``dispatch`` (``tradeassist notify dispatch``, from cron) sends each due PENDING row
through its channel provider, one row at a time and with no transaction open while a channel
talks to its server:

1. *claim* (a short transaction): the row's ``attempts`` + 1 and ``next_attempt_at`` moved a
   lease ahead (ten minutes, longer than any channel's deadline), so another dispatcher
   started meanwhile leaves it alone (on PostgreSQL it also skips rows locked by one);
2. *send* through the channel (every channel bounds each network step with a timeout and the
   whole exchange with a deadline);
3. *record* (a short transaction): SENT with ``sent_at``; RETRYABLE: PENDING again with
   ``next_attempt_at = now + max(Retry-After, backoff)``, the backoff doubling from one
   minute, and FAILED once ``max_attempts`` are used; PERMANENT: FAILED. ``last_error`` is
   the channel's redacted reason, masked again for every secret in the environment.

A dispatcher that dies between 1 and 3 leaves the row to be sent again when its lease ends:
delivery is at least once. Tokens, passwords and webhook URLs never reach a log line, an
error or ``notify list`` (a Slack target is shown masked).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ..core.enums import Channel, NotificationStatus
from ..core.errors import ValidationError
from ..core.jsonutil import dumps, loads_decimal
from ..core.redaction import MASK, environment_secrets, redact
from ..core.timeutil import ensure_utc, utcnow
from ..db.engine import unit_of_work
from ..db.models import Notification, Portfolio, User
from ..providers.channels import Channel as ChannelProvider
from ..providers.channels import DeliveryResult, DeliveryStatus, OutgoingMessage, get_channel
from ..providers.channels.webpush import describe_target

log = logging.getLogger(__name__)

PENDING, SENT = NotificationStatus.PENDING, NotificationStatus.SENT
FAILED, SUPPRESSED = NotificationStatus.FAILED, NotificationStatus.SUPPRESSED
DEFAULT_WINDOW = timedelta(hours=24)
MAX_ATTEMPTS = 5
BACKOFF = timedelta(minutes=1)
MAX_BACKOFF = timedelta(hours=6)
LEASE = timedelta(minutes=10)
MAX_ERROR = 1000


def _status(value: NotificationStatus | str) -> NotificationStatus:
    try:
        return NotificationStatus(str(getattr(value, "value", value)).upper())
    except ValueError:
        raise ValidationError(
            f"status {value!r}: expected one of {', '.join(s.value for s in NotificationStatus)}"
        ) from None


def _channel(value: Channel | str) -> Channel:
    try:
        return Channel(str(getattr(value, "value", value)).strip().upper())
    except ValueError:
        raise ValidationError(
            f"channel {value!r}: expected one of {', '.join(c.value for c in Channel)}"
        ) from None


# --------------------------------------------------------------------------------------------
# Enqueueing
# --------------------------------------------------------------------------------------------
def enqueue(
    session: Session,
    *,
    user_id: int,
    portfolio_id: int | None,
    channel: Channel | str,
    target: str,
    payload: Mapping[str, Any],
    dedup_key: str | None = None,
    window: timedelta = DEFAULT_WINDOW,
    now: datetime | None = None,
) -> Notification:
    """Add a notification in the caller's transaction. ``payload`` needs a ``subject``; its
    ``body`` (or ``text``) is the message, ``html`` an optional HTML body. A ``dedup_key`` seen
    within ``window`` for the same user and channel makes this row SUPPRESSED."""
    kind = _channel(channel)
    target = (target or "").strip()
    if not target:
        raise ValidationError("a notification needs a target (an address, a chat id or a webhook URL)")
    body = loads_decimal(dumps(dict(payload)))  # as the JSON column gives it back
    if not str(body.get("subject") or "").strip():
        raise ValidationError("a notification's payload needs a subject")
    if dedup_key is not None and not 0 < len(dedup_key) <= 200:
        raise ValidationError("a dedup_key is 1 to 200 characters")
    now = ensure_utc(now) if now is not None else utcnow()
    status = PENDING
    if dedup_key is not None and _duplicate(session, user_id, kind, dedup_key, now - window) is not None:
        status = SUPPRESSED
    row = Notification(
        user_id=user_id,
        portfolio_id=portfolio_id,
        channel=kind,
        target=target,
        payload=body,
        status=status,
        created_at=now,
        dedup_key=dedup_key,
    )
    session.add(row)
    session.flush()
    return row


def _duplicate(
    session: Session, user_id: int, channel: Channel, key: str, since: datetime
) -> Notification | None:
    # Only rows that were (or will be) delivered count: a suppressed duplicate does not extend
    # the window, and a failed one does not silence a later attempt to tell the user.
    return session.exec(
        select(Notification)
        .where(
            Notification.user_id == user_id,
            Notification.channel == channel,
            Notification.dedup_key == key,
            col(Notification.status).in_((PENDING, SENT)),
            Notification.created_at >= since,
        )
        .limit(1)
    ).first()


# --------------------------------------------------------------------------------------------
# Dispatching
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    notification_id: int
    channel: str
    status: str  # SENT, PENDING (to be retried) or FAILED
    attempts: int
    error: str | None = None
    next_attempt_at: datetime | None = None

    def row(self) -> dict[str, Any]:
        return {
            "notification_id": self.notification_id,
            "channel": self.channel,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "error": self.error,
        }


@dataclass(frozen=True)
class DispatchReport:
    deliveries: tuple[Delivery, ...] = field(default_factory=tuple)

    def _count(self, status: NotificationStatus) -> int:
        return sum(1 for d in self.deliveries if d.status == status.value)

    @property
    def sent(self) -> int:
        return self._count(SENT)

    @property
    def retrying(self) -> int:
        return self._count(PENDING)

    @property
    def failed(self) -> int:
        return self._count(FAILED)

    def counts(self) -> dict[str, int]:
        return {
            "attempted": len(self.deliveries),
            "sent": self.sent,
            "retrying": self.retrying,
            "failed": self.failed,
        }


def backoff_delay(attempts: int, base: timedelta = BACKOFF) -> timedelta:
    """``base`` doubled for each attempt after the first, at most six hours."""
    return min(base * (2 ** max(0, attempts - 1)), MAX_BACKOFF)


def message_for(payload: Mapping[str, Any]) -> OutgoingMessage:
    """The message a payload describes: ``subject``, ``body`` or ``text``, optional ``html``."""
    text = payload.get("body") or payload.get("text") or ""
    if not text:
        shown = {k: v for k, v in payload.items() if k not in ("subject", "html") and v is not None}
        text = "\n".join(f"{k}: {v}" for k, v in shown.items())
    return OutgoingMessage(
        subject=str(payload.get("subject") or ""), text=str(text), html=payload.get("html")
    )


def _claim(
    engine: Engine, now: datetime, seen: set[int], channels: set[Channel] | None, user_id: int | None = None
) -> tuple[Any, ...] | None:
    with unit_of_work(engine) as session:
        query = select(Notification).where(
            Notification.status == PENDING,
            or_(col(Notification.next_attempt_at).is_(None), col(Notification.next_attempt_at) <= now),
        )
        if seen:
            query = query.where(col(Notification.notification_id).notin_(seen))
        if channels is not None:
            query = query.where(col(Notification.channel).in_(channels))
        if user_id is not None:
            query = query.where(col(Notification.user_id) == user_id)
        row = session.exec(
            query.order_by(col(Notification.notification_id)).limit(1).with_for_update(skip_locked=True)
        ).first()
        if row is None:
            return None
        row.attempts += 1
        row.next_attempt_at = now + LEASE
        session.add(row)
        return (row.notification_id, row.channel, row.target, dict(row.payload), row.attempts)


def _send(
    provider: ChannelProvider, channel: Channel, target: str, payload: Mapping[str, Any]
) -> DeliveryResult:
    try:
        message = message_for(payload)
    except ValidationError as exc:
        return DeliveryResult.permanent(channel.value, f"the notification cannot be sent: {exc}")
    try:
        return provider.send(message, target)
    except Exception as exc:  # a channel's own bug: keep dispatching the others, try again later
        return DeliveryResult.retry(channel.value, f"{type(exc).__name__}: {exc}")


def _record(
    engine: Engine,
    notification_id: int,
    attempts: int,
    result: DeliveryResult,
    now: datetime,
    *,
    max_attempts: int,
    backoff: timedelta,
    secrets: set[str],
) -> Delivery:
    error = redact(result.error, secrets)[:MAX_ERROR] if result.error else None
    with unit_of_work(engine) as session:
        row = session.exec(
            select(Notification)
            .where(Notification.notification_id == notification_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        if row.status is not PENDING or row.attempts != attempts:  # another dispatcher took over
            return Delivery(notification_id, row.channel.value, row.status.value, row.attempts, error)
        if result.status is DeliveryStatus.SENT:
            row.status, row.sent_at, row.next_attempt_at, row.last_error = SENT, now, None, None
        elif result.status is DeliveryStatus.RETRYABLE and attempts < max_attempts:
            wait = backoff_delay(attempts, backoff)
            if result.retry_after is not None:
                wait = max(wait, timedelta(seconds=result.retry_after))
            row.next_attempt_at, row.last_error = now + wait, error
        else:
            if result.status is DeliveryStatus.RETRYABLE:
                error = f"gave up after {attempts} attempts: {error}"[:MAX_ERROR]
            row.status, row.next_attempt_at, row.last_error = FAILED, None, error
        session.add(row)
        return Delivery(
            notification_id,
            row.channel.value,
            row.status.value,
            attempts,
            row.last_error,
            row.next_attempt_at,
        )


def dispatch(
    engine: Engine,
    *,
    now: datetime | None = None,
    limit: int | None = None,
    channels: Mapping[str, ChannelProvider] | None = None,
    only: set[Channel | str] | None = None,
    timeout: float | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    backoff: timedelta = BACKOFF,
    for_user_id: int | None = None,
) -> DispatchReport:
    """Send every due PENDING notification (at most ``limit``), each through its channel.

    ``for_user_id``: only that user's notifications (what a user other than the administrator
    may send: never another person's, through a server of his choosing).

    ``channels`` maps channel names to provider instances to use (others are built with
    ``get_channel``, with ``timeout`` when given); ``only`` restricts which channels are sent.
    ``now`` fixes the clock (what is due, and the times recorded).
    """
    if max_attempts < 1:
        raise ValidationError("max_attempts must be at least 1")
    clock = (lambda: ensure_utc(now)) if now is not None else utcnow
    providers: dict[Channel, ChannelProvider] = {
        _channel(name): provider for name, provider in (channels or {}).items()
    }
    wanted = {_channel(c) for c in only} if only is not None else None
    secrets = environment_secrets()
    seen: set[int] = set()
    deliveries: list[Delivery] = []
    while limit is None or len(deliveries) < limit:
        claimed = _claim(engine, clock(), seen, wanted, for_user_id)
        if claimed is None:
            break
        notification_id, channel, target, payload, attempts = claimed
        seen.add(notification_id)
        if channel not in providers:
            options = {"timeout": timeout} if timeout is not None else {}
            providers[channel] = get_channel(channel.value, **options)
        result = _send(providers[channel], channel, target, payload)
        delivery = _record(
            engine,
            notification_id,
            attempts,
            result,
            clock(),
            max_attempts=max_attempts,
            backoff=backoff,
            secrets=secrets,
        )
        log.info(
            "notification %s (%s): %s after %d attempt(s)%s",
            notification_id,
            channel.value,
            delivery.status,
            attempts,
            f": {delivery.error}" if delivery.error else "",
        )
        deliveries.append(delivery)
    return DispatchReport(tuple(deliveries))


# --------------------------------------------------------------------------------------------
# Listing
# --------------------------------------------------------------------------------------------
def shown_target(channel: Channel, target: str) -> str:
    """The target safe to show: a webhook URL (its path is the secret) reduced to its host; a
    push subscription (its endpoint's path and its ``auth`` key are secrets) to its origin."""
    if channel is Channel.WEBPUSH:
        return describe_target(target)
    if channel is Channel.SLACK or target.lower().startswith(("http://", "https://")):
        parts = urlsplit(target)
        return f"{parts.scheme}://{parts.hostname or ''}/{MASK}"
    return target


def list_notifications(
    session: Session, *, actor: User, status: NotificationStatus | str | None = None
) -> list[dict[str, Any]]:
    """The actor's notifications (every user's for the bootstrap admin), newest first."""
    query = select(Notification)
    if not actor.is_bootstrap_admin:
        query = query.where(Notification.user_id == actor.user_id)
    if status is not None:
        query = query.where(Notification.status == _status(status))
    rows = session.exec(query.order_by(col(Notification.notification_id).desc())).all()
    users = {u.user_id: u.email for u in session.exec(select(User)).all()}
    names = {p.portfolio_id: p.name for p in session.exec(select(Portfolio)).all()}
    secrets = environment_secrets()
    return [
        {
            "notification_id": n.notification_id,
            "user": users.get(n.user_id),
            "portfolio": names.get(n.portfolio_id) if n.portfolio_id is not None else None,
            "channel": n.channel.value,
            "target": shown_target(n.channel, n.target),
            "status": n.status.value,
            "event": n.payload.get("event"),
            "subject": n.payload.get("subject"),
            "attempts": n.attempts,
            "created_at": n.created_at,
            "sent_at": n.sent_at,
            "next_attempt_at": n.next_attempt_at,
            "last_error": redact(n.last_error, secrets) if n.last_error else None,
            "dedup_key": n.dedup_key,
        }
        for n in rows
    ]
