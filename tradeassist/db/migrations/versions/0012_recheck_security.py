"""Price re-checks judged like the prices they re-judge (row security on PostgreSQL).

``price_point_rechecks`` holds a later verdict on a stored price (after an accepted level, a
split, late FX rates): whether the point is usable and what it is worth in GBP. It was a
shared table, readable and writable by every login, so one person's login could make a price
in another person's portfolio usable or unusable with raw SQL. Its rows are now written only
where the point's listing touches no portfolio the login may not use (as ``price_points``
itself; the bootstrap admin's login may write any), and read by every login. Nothing changes on
SQLite (its boundary is the file's permissions).

Revision ID: 0012_recheck_security
Revises: 0011_household_runs
"""

from __future__ import annotations

from alembic import op

from tradeassist.db import row_security

revision = "0012_recheck_security"
down_revision = "0011_household_runs"
branch_labels = None
depends_on = None

TABLE = "price_point_rechecks"


def upgrade() -> None:
    row_security.install(op.get_bind())


def downgrade() -> None:
    bind = op.get_bind()
    if not row_security.is_postgresql(bind):
        return
    for policy in row_security.POLICIES[TABLE]:
        name = f"{row_security.POLICY_PREFIX}{TABLE}_{policy.name}"
        bind.exec_driver_sql(f'DROP POLICY IF EXISTS "{name}" ON {TABLE}')
    bind.exec_driver_sql(f"ALTER TABLE {TABLE} DISABLE ROW LEVEL SECURITY")
