"""Market data additions (owned by the market data work).

Revision ID: 0003_market
Revises: 0002_ledger
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

from tradeassist.db import immutability

revision = "0003_market"
down_revision = "0002_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Re-create the append-only triggers after any table change (SQLite batch mode rebuilds tables).
    immutability.install(op.get_bind())


def downgrade() -> None:
    pass
