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

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from ..db.models import AuditEvent, Instrument, User

Actor: TypeAlias = User
"""The acting user, as every service takes it (``identity.acting_user`` finds it)."""


VERSION_TABLE = "alembic_version"  # where Alembic (db.migrate) keeps the schema's revision


def has_schema(engine: Engine) -> bool:
    """Whether the database has been initialised (``tradeassist init``, or the demo): it has a
    schema revision. Read without Alembic (``db.migrate.current_revision`` says which one):
    every command asks, and importing Alembic would add about a quarter to a read command's
    start-up."""
    with engine.execution_options(tradeassist_readonly=True).connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return False
        return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).first() is not None


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
