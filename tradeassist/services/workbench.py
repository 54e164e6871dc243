"""What the command line and the workbench (the notebooks' views) read through the services.

They touch no table and no migration themselves: the acting user's type is ``Actor``,
whether the database has its schema yet is ``has_schema``, the instruments are
``list_instruments``, and the audit entries an action wrote are ``audit_trail`` (what the
approval view's fills grid starts with is ``fill_estimates``'s). Readers take the caller's
session and never commit. Light on purpose: every command imports it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from ..db.migrate import current_revision
from ..db.models import AuditEvent, Instrument, User

Actor: TypeAlias = User
"""The acting user, as every service takes it (``identity.acting_user`` finds it)."""


def has_schema(engine: Engine) -> bool:
    """Whether the database has been initialised (``tradeassist init``, or the demo)."""
    return current_revision(engine) is not None


def list_instruments(session: Session) -> list[dict[str, Any]]:
    """Every instrument, by ISIN: id, ISIN, type and name."""
    return [
        {
            "instrument_id": i.instrument_id,
            "isin": i.isin,
            "instrument_type": i.instrument_type.value,
            "name": i.name,
        }
        for i in session.exec(select(Instrument).order_by(Instrument.isin)).all()
    ]


@contextmanager
def audit_trail() -> Iterator[list[str]]:
    """The actions of the audit entries written while inside, as they are flushed (whichever
    session writes them: a service may open its own). A listener, because a session's identity
    map holds its objects weakly and would forget them."""
    actions: list[str] = []

    def seen(_session: Session, instance: Any) -> None:
        if isinstance(instance, AuditEvent):
            actions.append(instance.action)

    event.listen(Session, "pending_to_persistent", seen)
    try:
        yield actions
    finally:
        event.remove(Session, "pending_to_persistent", seen)
