"""Each person's own PostgreSQL login, and row-level security by portfolio (issue #16, item 1).

* ``users.db_role`` (nullable, unique): the PostgreSQL login role of the user, the acting user
  of any connection made as that role. On both databases (the schema is the same); SQLite has
  no roles and leaves it NULL.
* PostgreSQL only (``row_security.install``): the NOLOGIN group role ``tradeassist_user``
  (created when missing: the migrating role needs CREATEROLE once), its privileges (SELECT and
  INSERT, UPDATE of mutable columns and snapshot rows, no TRUNCATE, no DDL), the functions
  saying who a login is, and the row-level security policies on every portfolio-scoped table.
  The tables stay owned by the migrating role, which the policies do not restrict.

The append-only triggers are installed again: ``db_role`` is a mutable column of ``users``
(the owner maps an existing user to a login), and its unique index is a key the SQLite insert
guard checks.

Revision ID: 0008_row_security
Revises: 0007_insert_guards
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tradeassist.db import immutability, row_security

revision = "0008_row_security"
down_revision = "0007_insert_guards"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("db_role", sa.String(length=63), nullable=True))
    op.create_index(op.f("ix_users_db_role"), "users", ["db_role"], unique=True)
    bind = op.get_bind()
    immutability.install(bind)
    row_security.install(bind)


def downgrade() -> None:
    bind = op.get_bind()
    row_security.uninstall(bind)
    if bind.dialect.name == "sqlite":
        # The insert guard names the column: the triggers go first (install re-creates them).
        triggers = bind.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'users'"
        ).scalars()
        for name in list(triggers):
            bind.exec_driver_sql(f'DROP TRIGGER "{name}"')
    op.drop_index(op.f("ix_users_db_role"), table_name="users")
    # SQLite 3.35+ drops a column in place (batch mode would rebuild the table every other
    # table refers to); nothing else refers to this one.
    op.execute("ALTER TABLE users DROP COLUMN db_role")
    immutability.install(bind)
