"""Book of record additions (owned by the ledger work).

Revision ID: 0002_ledger
Revises: 0001_baseline
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tradeassist.db.types
from tradeassist.db import immutability

revision = "0002_ledger"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The Section 104 pool's exact total cost, so snapshots can be advanced without a replay.
    with op.batch_alter_table("holding_snapshots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cost_base", tradeassist.db.types.ExactDecimal(), nullable=True))
    # The cost an in-specie TRANSFER of units brings in.
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cost_base", tradeassist.db.types.ExactDecimal(), nullable=True))
    # Re-create the append-only triggers after any table change (SQLite batch mode rebuilds tables).
    immutability.install(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_column("cost_base")
    with op.batch_alter_table("holding_snapshots", schema=None) as batch_op:
        batch_op.drop_column("cost_base")
    immutability.install(op.get_bind())
