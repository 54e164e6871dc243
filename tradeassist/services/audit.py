"""The audit trail: every state change made through a service writes one row, in the same
transaction as the change. Details never hold secrets (see ``scrub``).

A refused access is audited too: ``record_denial`` is registered with the database layer
(``db.engine.on_access_denied``) when this module is imported, and the unit of work calls it
after rolling the refused work back."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from ..core.errors import AccessDenied
from ..core.redaction import scrub
from ..db.engine import on_access_denied
from ..db.models import AuditEvent, User


def record(
    session: Session,
    *,
    actor: User | None,
    action: str,
    entity_type: str,
    entity_id: object = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor_user_id=actor.user_id if actor is not None else None,
        action=action,
        entity_type=entity_type,
        entity_id=None if entity_id is None else str(entity_id),
        details=scrub(details or {}),
    )
    session.add(event)
    session.flush()
    return event


@on_access_denied
def record_denial(session: Session, error: AccessDenied) -> AuditEvent:
    """Audit a refused access (written after the refused work was rolled back)."""
    actor_user_id = error.context.get("actor_user_id")
    event = AuditEvent(
        actor_user_id=actor_user_id if isinstance(actor_user_id, int) else None,
        action="ACCESS_DENIED",
        entity_type=str(error.context.get("entity_type", "portfolio")),
        entity_id=None if error.context.get("entity_id") is None else str(error.context["entity_id"]),
        details={"operation": error.context.get("operation"), "message": error.message},
    )
    session.add(event)
    session.flush()
    return event
