"""A household's runs: one task run per account, linked (issue #19, item 3).

A household task (a GLOBAL task naming a strategy over several accounts) solves one problem
for every account of the strategy and records one run per account, each with at most one
recommendation, as the data model has it:

* ``task_runs.household_run_id`` (nullable; FK to ``task_runs``): on every run of a household,
  the id of its first run (the run the task's claim made: that run's own id on itself); NULL
  on every other run. The runs of one household share it, their input hash and their slot.
* ``task_run_claims.member`` (0 for every existing claim): a run's id is its claim's, so each
  further run of a household is a claim of its own, of the same task, slot and attempt, with
  ``member`` 1, 2, ...; the unique key becomes (task, slot, attempt, member). Only the first
  run's claim (member 0) is taken by a runner: the others are written with their runs, in the
  transaction that records the household.

SQLite cannot change a unique constraint in place: ``task_run_claims`` is rebuilt as
``0009_run_leases`` rebuilt it (rows copied aside, the table dropped and re-created with foreign
keys checked at commit, the rows copied back with their ids), and the append-only triggers are
installed again afterwards. ``task_runs`` gains its column in place on both databases.

Revision ID: 0011_household_runs
Revises: 0010_price_revisions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tradeassist.db.types
from tradeassist.db import immutability, row_security

revision = "0011_household_runs"
down_revision = "0010_price_revisions"
branch_labels = None
depends_on = None

CLAIMS = "task_run_claims"
RUNS = "task_runs"
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OLD_COLUMNS = (
    "run_id, task_id, slot_at, claimed_at, worker, manual, attempt, retry_of, worker_process, "
    "lease_expires_at"
)
OLD_KEY = ("task_id", "slot_at", "attempt")
_COPY = "_task_run_claims_0011"
INDEX = "ix_task_runs_household_run_id"


def _columns(*, members: bool) -> list[sa.SchemaItem]:
    columns: list[sa.SchemaItem] = [
        sa.Column("run_id", ID, autoincrement=True, nullable=False),
        sa.Column("task_id", ID, nullable=False),
        sa.Column("slot_at", tradeassist.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", tradeassist.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("manual", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("attempt", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("retry_of", ID, nullable=True),
        sa.Column("worker_process", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", tradeassist.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["task_definitions.task_id"]),
        sa.ForeignKeyConstraint(["retry_of"], [f"{CLAIMS}.run_id"]),
        sa.PrimaryKeyConstraint("run_id"),
    ]
    if members:
        columns += [
            sa.Column("member", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
            sa.UniqueConstraint(*OLD_KEY, "member", name="uq_task_slot_attempt_member"),
        ]
    else:
        columns.append(sa.UniqueConstraint(*OLD_KEY, name="uq_task_slot_attempt"))
    return columns


def _sqlite_rebuild(*, members: bool) -> None:
    """Re-create the claims with the old rows (see the module's docstring)."""
    bind = op.get_bind()
    bind.exec_driver_sql("PRAGMA defer_foreign_keys = ON")  # until this transaction commits
    bind.exec_driver_sql(f"CREATE TEMP TABLE {_COPY} AS SELECT {OLD_COLUMNS} FROM {CLAIMS}")
    op.drop_table(CLAIMS)
    op.create_table(CLAIMS, *_columns(members=members))
    bind.exec_driver_sql(f"INSERT INTO {CLAIMS} ({OLD_COLUMNS}) SELECT {OLD_COLUMNS} FROM {_COPY}")
    bind.exec_driver_sql(f"DROP TABLE {_COPY}")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _sqlite_rebuild(members=True)
        # In place: SQLite adds a column with its own REFERENCES clause (NULL on every row).
        bind.exec_driver_sql(
            f"ALTER TABLE {RUNS} ADD COLUMN household_run_id INTEGER REFERENCES {RUNS} (run_id)"
        )
    else:
        op.add_column(
            CLAIMS, sa.Column("member", sa.SmallInteger(), server_default=sa.text("0"), nullable=False)
        )
        op.drop_constraint("uq_task_slot_attempt", CLAIMS, type_="unique")
        op.create_unique_constraint("uq_task_slot_attempt_member", CLAIMS, [*OLD_KEY, "member"])
        op.add_column(RUNS, sa.Column("household_run_id", ID, nullable=True))
        op.create_foreign_key(f"{RUNS}_household_run_id_fkey", RUNS, RUNS, ["household_run_id"], ["run_id"])
    op.create_index(INDEX, RUNS, ["household_run_id"], unique=False)
    immutability.install(bind)
    row_security.install(bind)


def downgrade() -> None:
    bind = op.get_bind()
    members = bind.exec_driver_sql(f"SELECT COUNT(*) FROM {RUNS} WHERE household_run_id IS NOT NULL").scalar()
    if members:
        # Runs are never deleted: the runs of a household share their task, slot and attempt,
        # which the old key of the claims cannot hold.
        raise RuntimeError(f"cannot downgrade below 0011_household_runs: {members} runs belong to households")
    op.drop_index(INDEX, table_name=RUNS)
    if bind.dialect.name == "sqlite":
        _sqlite_rebuild(members=False)
        bind.exec_driver_sql(f"ALTER TABLE {RUNS} DROP COLUMN household_run_id")
    else:
        op.drop_constraint(f"{RUNS}_household_run_id_fkey", RUNS, type_="foreignkey")
        op.drop_column(RUNS, "household_run_id")
        op.drop_constraint("uq_task_slot_attempt_member", CLAIMS, type_="unique")
        op.create_unique_constraint("uq_task_slot_attempt", CLAIMS, list(OLD_KEY))
        op.drop_column(CLAIMS, "member")
    immutability.install(bind)
    row_security.install(bind)
