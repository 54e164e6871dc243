"""Strategy scope: which portfolios each strategy version governs.

* ``strategy_version_portfolios`` (strategy_version_id, portfolio_id): a stream table, written
  once with its version. Until now one approved version governed every portfolio; every
  version that exists is given a scope of every portfolio that exists, so an upgraded
  database goes on recommending exactly as before.
* ``task_runs.strategy_version_id`` has been in the schema since the baseline (a nullable
  foreign key to ``strategy_versions``); from now on it is the version that governed the run's
  portfolio. Nothing to change in the table.

Revision ID: 0005_strategy_scope
Revises: 0004_runs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tradeassist.db import immutability

revision = "0005_strategy_scope"
down_revision = "0004_runs"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "strategy_version_portfolios",
        sa.Column("strategy_version_id", _ID, nullable=False),
        sa.Column("portfolio_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(["portfolio_id"], ["portfolios.portfolio_id"]),
        sa.ForeignKeyConstraint(["strategy_version_id"], ["strategy_versions.strategy_version_id"]),
        sa.PrimaryKeyConstraint("strategy_version_id", "portfolio_id"),
    )
    # The old meaning: every version governed every portfolio (one approved at a time).
    op.execute(
        "INSERT INTO strategy_version_portfolios (strategy_version_id, portfolio_id) "
        "SELECT v.strategy_version_id, p.portfolio_id FROM strategy_versions v CROSS JOIN portfolios p"
    )
    # The new table is a stream table: its triggers (and every other table's, again).
    immutability.install(op.get_bind())


def downgrade() -> None:
    op.drop_table("strategy_version_portfolios")
    immutability.install(op.get_bind())
