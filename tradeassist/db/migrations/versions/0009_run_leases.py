"""Runs never hang: a claim carries its worker's lease, and a dead run is retried once (issue #16,
item 7).

``task_run_claims`` gains

* ``attempt`` (1 for every existing claim) and ``retry_of`` (the dead run a retry stands in
  for): the unique key becomes (task, slot, attempt), so the one retry of a slot is a claim of
  its own, keyed like the first;
* ``worker_process`` (boot id, pid namespace, pid and start time of the claiming process: the
  liveness check on the same machine) and ``lease_expires_at``, renewed by the worker while
  its run executes. NULL on the claims made before this revision (a run left RUNNING by an
  older version counts as expired a day after it was claimed).

``lease_expires_at`` is the table's one mutable column: the table moves from the stream tables
to the guarded ones (``immutability.GUARDED_TABLES``); DELETE and every other column stay
refused. On PostgreSQL the stream table's trigger is dropped, the guarded ones installed, and
logins are granted UPDATE of that column alone (``row_security.install``).

SQLite cannot change a unique constraint in place. Batch mode would drop the table, which
``task_runs`` refers to: with foreign keys on (every connection of ours), that drop fails as
soon as one run exists. So the rows are copied aside, the table is dropped and re-created with
foreign keys checked at commit (``PRAGMA defer_foreign_keys``), and the rows are copied back:
each returning row clears the references the drop left dangling, and a row that went missing
would fail the commit. Dropping the table fires no trigger; the append-only triggers are
installed again afterwards.

Revision ID: 0009_run_leases
Revises: 0008_row_security
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tradeassist.db.types
from tradeassist.db import immutability, row_security

revision = "0009_run_leases"
down_revision = "0008_row_security"
branch_labels = None
depends_on = None

TABLE = "task_run_claims"
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OLD_COLUMNS = "run_id, task_id, slot_at, claimed_at, worker, manual"
_COPY = "_task_run_claims_0009"


def _columns(*, leases: bool) -> list[sa.SchemaItem]:
    columns: list[sa.SchemaItem] = [
        sa.Column("run_id", ID, autoincrement=True, nullable=False),
        sa.Column("task_id", ID, nullable=False),
        sa.Column("slot_at", tradeassist.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", tradeassist.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("manual", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["task_definitions.task_id"]),
        sa.PrimaryKeyConstraint("run_id"),
    ]
    if leases:
        columns += [
            sa.Column("attempt", sa.Integer(), server_default=sa.text("1"), nullable=False),
            sa.Column("retry_of", ID, nullable=True),
            sa.Column("worker_process", sa.String(length=200), nullable=True),
            sa.Column("lease_expires_at", tradeassist.db.types.UTCDateTime(timezone=True), nullable=True),
            sa.ForeignKeyConstraint(["retry_of"], [f"{TABLE}.run_id"]),
            sa.UniqueConstraint("task_id", "slot_at", "attempt", name="uq_task_slot_attempt"),
        ]
    else:
        columns.append(sa.UniqueConstraint("task_id", "slot_at", name="uq_task_slot"))
    return columns


def _sqlite_rebuild(*, leases: bool) -> None:
    """Re-create the table with the old rows (see the module's docstring)."""
    bind = op.get_bind()
    bind.exec_driver_sql("PRAGMA defer_foreign_keys = ON")  # until this transaction commits
    bind.exec_driver_sql(f"CREATE TEMP TABLE {_COPY} AS SELECT {OLD_COLUMNS} FROM {TABLE}")
    op.drop_table(TABLE)
    op.create_table(TABLE, *_columns(leases=leases))
    bind.exec_driver_sql(f"INSERT INTO {TABLE} ({OLD_COLUMNS}) SELECT {OLD_COLUMNS} FROM {_COPY}")
    bind.exec_driver_sql(f"DROP TABLE {_COPY}")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _sqlite_rebuild(leases=True)
    else:
        bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS trg_{TABLE}_no_change ON {TABLE}")
        op.add_column(TABLE, sa.Column("attempt", sa.Integer(), server_default=sa.text("1"), nullable=False))
        op.add_column(TABLE, sa.Column("retry_of", ID, nullable=True))
        op.add_column(TABLE, sa.Column("worker_process", sa.String(length=200), nullable=True))
        op.add_column(
            TABLE,
            sa.Column("lease_expires_at", tradeassist.db.types.UTCDateTime(timezone=True), nullable=True),
        )
        op.create_foreign_key(f"{TABLE}_retry_of_fkey", TABLE, TABLE, ["retry_of"], ["run_id"])
        op.drop_constraint("uq_task_slot", TABLE, type_="unique")
        op.create_unique_constraint("uq_task_slot_attempt", TABLE, ["task_id", "slot_at", "attempt"])
    immutability.install(bind)
    row_security.install(bind)


_STREAM_TRIGGERS = {
    "sqlite": [
        f"DROP TRIGGER IF EXISTS trg_{TABLE}_fixed_columns",
        f"CREATE TRIGGER trg_{TABLE}_no_update BEFORE UPDATE ON {TABLE} "
        f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: UPDATE refused'); END",
    ],
    "postgresql": [
        f"DROP TRIGGER IF EXISTS trg_{TABLE}_fixed_columns ON {TABLE}",
        f"DROP TRIGGER IF EXISTS trg_{TABLE}_no_delete ON {TABLE}",
        f"CREATE OR REPLACE TRIGGER trg_{TABLE}_no_change BEFORE UPDATE OR DELETE ON {TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION tradeassist_refuse_change()",
        f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{row_security.GROUP_ROLE}') "
        f"THEN REVOKE UPDATE ON {TABLE} FROM {row_security.GROUP_ROLE}; END IF; END $$",
    ],
}


def downgrade() -> None:
    bind = op.get_bind()
    retries = bind.exec_driver_sql(f"SELECT COUNT(*) FROM {TABLE} WHERE attempt > 1").scalar()
    if retries:
        # Claims are never deleted: a retry shares its slot with the run it retried, which the
        # old key (task, slot) cannot hold.
        raise RuntimeError(
            f"cannot downgrade below 0009_run_leases: {retries} retried runs hold their slot twice"
        )
    if bind.dialect.name == "sqlite":
        _sqlite_rebuild(leases=False)
        immutability.install(bind)
    else:
        op.drop_constraint("uq_task_slot_attempt", TABLE, type_="unique")
        op.create_unique_constraint("uq_task_slot", TABLE, ["task_id", "slot_at"])
        op.drop_constraint(f"{TABLE}_retry_of_fkey", TABLE, type_="foreignkey")
        for column in ("lease_expires_at", "worker_process", "retry_of", "attempt"):
            op.drop_column(TABLE, column)
    # The table is a stream table again, as the code of that revision has it.
    for statement in _STREAM_TRIGGERS[bind.dialect.name]:
        bind.exec_driver_sql(statement)
