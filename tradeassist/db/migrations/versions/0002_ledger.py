"""Book of record additions (owned by the ledger work).

Revision ID: 0002_ledger
Revises: 0001_baseline
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

from tradeassist.db import immutability

revision = "0002_ledger"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Re-create the append-only triggers after any table change (SQLite batch mode rebuilds tables).
    immutability.install(op.get_bind())


def downgrade() -> None:
    pass
