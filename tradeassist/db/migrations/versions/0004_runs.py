"""Task run additions (owned by the runs work).

* ``task_run_claims.manual``: a claim made by ``tasks run`` (a person asked for the run now)
  rather than by the schedule; the schedule's catch-up computes from scheduled claims only.

Revision ID: 0004_runs
Revises: 0003_market
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tradeassist.db import immutability

revision = "0004_runs"
down_revision = "0003_market"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_run_claims", schema=None) as batch_op:
        batch_op.add_column(sa.Column("manual", sa.Boolean(), server_default=sa.false(), nullable=False))
    # Re-create the append-only triggers after any table change (SQLite batch mode rebuilds tables).
    immutability.install(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("task_run_claims", schema=None) as batch_op:
        batch_op.drop_column("manual")
    immutability.install(op.get_bind())
