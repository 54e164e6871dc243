"""Market data additions (owned by the market data work).

* ``price_points.usable``: whether the point may feed valuations, decided at ingest.
* ``ix_price_points_latest``: (listing_id, is_close, as_of, price_point_id), read backwards
  for the latest good close per listing as of a date.
* ``price_point_rechecks``: the current verdict on stored points that a later re-check
  (accepted level, recorded split, late FX) changed; ``price_points`` itself stays append-only.

Revision ID: 0003_market
Revises: 0002_ledger
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tradeassist.db.types
from tradeassist.db import immutability

revision = "0003_market"
down_revision = "0002_ledger"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Flags that make a point unusable (tradeassist.engine.normalize.BLOCKING_FLAGS).
_BLOCKING = ("scale_suspect", "currency_mismatch", "non_positive", "missing_fx")


def upgrade() -> None:
    with op.batch_alter_table("price_points", schema=None) as batch_op:
        batch_op.add_column(sa.Column("usable", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index(
            "ix_price_points_latest", ["listing_id", "is_close", "as_of", "price_point_id"], unique=False
        )
    _backfill_usable()
    op.create_table(
        "price_point_rechecks",
        sa.Column("price_point_id", _ID, autoincrement=False, nullable=False),
        sa.Column("quality_flags", tradeassist.db.types.JSONDoc(), nullable=False),
        sa.Column("normalized_price_base", tradeassist.db.types.ExactDecimal(), nullable=True),
        sa.Column("usable", sa.Boolean(), nullable=False),
        sa.Column("cause", sa.String(length=64), nullable=False),
        sa.Column("rechecked_at", tradeassist.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["price_point_id"], ["price_points.price_point_id"]),
        sa.PrimaryKeyConstraint("price_point_id"),
    )
    # Re-create the append-only triggers after any table change (SQLite batch mode rebuilds tables).
    immutability.install(op.get_bind())


def _backfill_usable() -> None:
    """Points stored before this revision: usable unless flagged or not normalised.

    ``price_points`` refuses UPDATE by trigger; the trigger is set aside for this one statement
    (SQLite: dropped, and re-created by ``immutability.install`` below; PostgreSQL: disabled).
    """
    bind = op.get_bind()
    if bind.exec_driver_sql("SELECT COUNT(*) FROM price_points").scalar() == 0:
        return
    flags_text = "quality_flags" if bind.dialect.name == "sqlite" else "CAST(quality_flags AS TEXT)"
    clean = " AND ".join(f"{flags_text} NOT LIKE '%{flag}%'" for flag in _BLOCKING)
    update = f"UPDATE price_points SET usable = (normalized_price_base IS NOT NULL AND {clean})"
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS trg_price_points_no_update")
        bind.exec_driver_sql(update)
    else:
        bind.exec_driver_sql("ALTER TABLE price_points DISABLE TRIGGER trg_price_points_no_change")
        bind.exec_driver_sql(update)
        bind.exec_driver_sql("ALTER TABLE price_points ENABLE TRIGGER trg_price_points_no_change")


def downgrade() -> None:
    op.drop_table("price_point_rechecks")
    with op.batch_alter_table("price_points", schema=None) as batch_op:
        batch_op.drop_index("ix_price_points_latest")
        batch_op.drop_column("usable")
    immutability.install(op.get_bind())
