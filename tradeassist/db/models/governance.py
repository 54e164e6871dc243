"""§8 Governance and safety: freezes, alerts, the notification outbox, the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, String
from sqlmodel import Field, SQLModel

from ...core.enums import Channel, NotificationStatus, Severity
from .base import enum_field, fk_field, id_field, json_field, text_field, ts_field


class FreezeState(SQLModel, table=True):
    __tablename__ = "freeze_states"

    portfolio_id: int = fk_field("portfolios.portfolio_id", primary_key=True)
    is_frozen: bool = Field(default=False, nullable=False)
    reason_code: str | None = text_field(length=64)
    reason_detail: str | None = text_field()
    set_by_user_id: int | None = fk_field("users.user_id", nullable=True)
    set_at: datetime | None = ts_field(nullable=True)
    cleared_by_user_id: int | None = fk_field("users.user_id", nullable=True)
    cleared_at: datetime | None = ts_field(nullable=True)


class Alert(SQLModel, table=True):
    """``portfolio_id`` is nullable here: a suspect price of a listing no portfolio holds still
    raises an alert, with no portfolio."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_portfolio_open", "portfolio_id", "resolved_at"),)

    alert_id: int | None = id_field()
    portfolio_id: int | None = fk_field("portfolios.portfolio_id", nullable=True)
    run_id: int | None = fk_field("task_runs.run_id", nullable=True)
    severity: Severity = enum_field(Severity)
    code: str = Field(sa_column=Column(String(64), nullable=False))
    message: str = Field(sa_column=Column(String(2000), nullable=False))
    context: dict[str, Any] = json_field()
    created_at: datetime = ts_field(now=True)
    resolved_at: datetime | None = ts_field(nullable=True)


class Notification(SQLModel, table=True):
    """An outbox row. Added columns for delivery: ``attempts``, ``next_attempt_at``,
    ``last_error`` (redacted) and ``dedup_key`` (duplicates within a window are suppressed)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_status", "status", "next_attempt_at"),)

    notification_id: int | None = id_field()
    user_id: int = fk_field("users.user_id")
    portfolio_id: int | None = fk_field("portfolios.portfolio_id", nullable=True)
    channel: Channel = enum_field(Channel)
    target: str = Field(sa_column=Column(String(1000), nullable=False))
    payload: dict[str, Any] = json_field()
    status: NotificationStatus = enum_field(NotificationStatus, default=NotificationStatus.PENDING)
    created_at: datetime = ts_field(now=True)
    sent_at: datetime | None = ts_field(nullable=True)
    attempts: int = Field(default=0, nullable=False)
    next_attempt_at: datetime | None = ts_field(nullable=True)
    last_error: str | None = text_field()
    dedup_key: str | None = text_field(length=200, index=True)


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_entity", "entity_type", "entity_id"),)

    audit_event_id: int | None = id_field()
    actor_user_id: int | None = fk_field("users.user_id", nullable=True)
    action: str = Field(sa_column=Column(String(64), nullable=False))
    entity_type: str = Field(sa_column=Column(String(64), nullable=False))
    entity_id: str | None = text_field(length=200)
    occurred_at: datetime = ts_field(now=True)
    details: dict[str, Any] = json_field()
