"""Append-only that outside tools cannot bypass (issue #16, item 4).

On SQLite every protected table (stream and guarded) gains a BEFORE INSERT trigger refusing a
row whose primary key or unique key is held already, and every guarded table with a unique key
on mutable columns (``portfolios.name``, ``task_definitions.name``) a BEFORE UPDATE trigger
refusing to move it onto another row's. ``INSERT OR REPLACE`` and ``UPDATE OR REPLACE`` delete
the row they collide with, and that delete fires the delete trigger only with
``recursive_triggers`` on, which the ``sqlite3`` shell and Python's ``sqlite3`` module leave
off: the new triggers refuse the statement before any row is deleted, whatever the connection.

No table or row changes: ``immutability.install`` drops and re-creates the triggers. On
PostgreSQL it re-creates the same functions and triggers as before (``CREATE OR REPLACE``);
an ``ON CONFLICT DO UPDATE`` there fires the update trigger already.

Revision ID: 0007_insert_guards
Revises: 0006_dividends
"""

from __future__ import annotations

from alembic import op

from tradeassist.db import immutability

revision = "0007_insert_guards"
down_revision = "0006_dividends"
branch_labels = None
depends_on = None


def upgrade() -> None:
    immutability.install(op.get_bind())


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for table in (*immutability.STREAM_TABLES, *immutability.GUARDED_TABLES):
            for name in ("existing_key", "key_taken"):
                bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS trg_{table}_{name}")
