"""Alembic environment: migrations run on the connection ``tradeassist.db.migrate`` passes in."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from tradeassist.db import models  # noqa: F401  (registers every table)

target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
