"""Bad prices are replaceable and listings amendable (issue #17, items 3 to 5).

* ``price_points.revision`` (0 for every existing point): a later import with ``--replace``
  stores the right value as the next revision of the same key, so the unique key becomes
  (listing, as_of, source, is_close, revision). The model's key holds among current points.
* ``price_supersessions`` (stream): which point a later one supersedes, who did it and why.
* ``ix_price_points_latest`` is dropped: the unique key's index (listing, as_of, ...) serves
  the latest-close read as well, and every insert paid for both (price ingest, item 8).
* ``instrument_listings.source_priority`` (nullable JSON): the order in which sources value
  the listing. The table moves from the stream tables to the guarded ones: its market-data
  settings (provider, provider symbol, primary flag, source priority) may change (audited by
  ``listing set``); its identity (instrument, ticker, exchange, currency, quote scale) may not.

SQLite cannot change a unique constraint in place: ``price_points`` is rebuilt as
``0009_run_leases`` rebuilds its table (rows copied aside, table dropped and re-created with
foreign keys checked at commit, rows copied back with their ids), and the append-only
triggers are installed again afterwards.

Revision ID: 0010_price_revisions
Revises: 0009_run_leases
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tradeassist.db.types
from tradeassist.db import immutability, row_security

revision = "0010_price_revisions"
down_revision = "0009_run_leases"
branch_labels = None
depends_on = None

TABLE = "price_points"
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OLD_COLUMNS = (
    "price_point_id, listing_id, as_of, source_id, is_close, raw_price, raw_currency, "
    "raw_quote_scale, normalized_price_base, quality_flags, usable"
)
OLD_KEY = ("listing_id", "as_of", "source_id", "is_close")
_COPY = "_price_points_0010"


def _columns(*, revisions: bool) -> list[sa.SchemaItem]:
    columns: list[sa.SchemaItem] = [
        sa.Column("price_point_id", ID, autoincrement=True, nullable=False),
        sa.Column("listing_id", ID, nullable=False),
        sa.Column("as_of", tradeassist.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source_id", ID, nullable=False),
        sa.Column("is_close", sa.Boolean(), nullable=False),
        sa.Column("raw_price", tradeassist.db.types.ExactDecimal(), nullable=False),
        sa.Column("raw_currency", sa.String(length=3), nullable=False),
        sa.Column("raw_quote_scale", sa.String(length=8), nullable=False),
        sa.Column("normalized_price_base", tradeassist.db.types.ExactDecimal(), nullable=True),
        sa.Column("quality_flags", tradeassist.db.types.JSONDoc(), nullable=False),
        sa.Column("usable", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(["listing_id"], ["instrument_listings.listing_id"]),
        sa.ForeignKeyConstraint(["source_id"], ["market_data_sources.source_id"]),
        sa.PrimaryKeyConstraint("price_point_id"),
    ]
    if revisions:
        columns += [
            sa.Column("revision", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
            sa.UniqueConstraint(*OLD_KEY, "revision", name="uq_price_point"),
        ]
    else:
        columns.append(sa.UniqueConstraint(*OLD_KEY, name="uq_price_point"))
    return columns


def _sqlite_rebuild(*, revisions: bool) -> None:
    bind = op.get_bind()
    bind.exec_driver_sql("PRAGMA defer_foreign_keys = ON")  # until this transaction commits
    bind.exec_driver_sql(f"CREATE TEMP TABLE {_COPY} AS SELECT {OLD_COLUMNS} FROM {TABLE}")
    op.drop_table(TABLE)
    op.create_table(TABLE, *_columns(revisions=revisions))
    bind.exec_driver_sql(f"INSERT INTO {TABLE} ({OLD_COLUMNS}) SELECT {OLD_COLUMNS} FROM {_COPY}")
    bind.exec_driver_sql(f"DROP TABLE {_COPY}")
    if not revisions:
        op.create_index(
            "ix_price_points_latest",
            TABLE,
            ["listing_id", "is_close", "as_of", "price_point_id"],
            unique=False,
        )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _sqlite_rebuild(revisions=True)
    else:
        op.add_column(
            TABLE, sa.Column("revision", sa.SmallInteger(), server_default=sa.text("0"), nullable=False)
        )
        op.drop_constraint("uq_price_point", TABLE, type_="unique")
        op.create_unique_constraint("uq_price_point", TABLE, [*OLD_KEY, "revision"])
        op.drop_index("ix_price_points_latest", table_name=TABLE)
        bind.exec_driver_sql(
            "DROP TRIGGER IF EXISTS trg_instrument_listings_no_change ON instrument_listings"
        )
    op.add_column(
        "instrument_listings", sa.Column("source_priority", tradeassist.db.types.JSONDoc(), nullable=True)
    )
    op.create_table(
        "price_supersessions",
        sa.Column("price_point_id", ID, autoincrement=False, nullable=False),
        sa.Column("superseded_by_point_id", ID, nullable=False),
        sa.Column("listing_id", ID, nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("replaced_by_user_id", ID, nullable=True),
        sa.Column("created_at", tradeassist.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["price_point_id"], ["price_points.price_point_id"]),
        sa.ForeignKeyConstraint(["superseded_by_point_id"], ["price_points.price_point_id"]),
        sa.ForeignKeyConstraint(["listing_id"], ["instrument_listings.listing_id"]),
        sa.ForeignKeyConstraint(["replaced_by_user_id"], ["users.user_id"]),
        sa.PrimaryKeyConstraint("price_point_id"),
        sa.UniqueConstraint("superseded_by_point_id"),
    )
    for statement in _GUARD[bind.dialect.name]:
        bind.exec_driver_sql(statement)
    immutability.install(bind)
    row_security.install(bind)


# A supersession names two points of the same key, the new one the next revision, and the
# points' listing: otherwise a row could hide any stored price (the readers skip superseded
# points) or claim another listing than its points'.
_SAME_KEY = (
    "SELECT 1 FROM price_points AS o JOIN price_points AS n ON n.listing_id = o.listing_id "
    "AND n.as_of = o.as_of AND n.source_id = o.source_id AND n.is_close = o.is_close "
    "AND n.revision = o.revision + 1 WHERE o.price_point_id = NEW.price_point_id "
    "AND n.price_point_id = NEW.superseded_by_point_id AND o.listing_id = NEW.listing_id"
)
_REFUSAL = "price_supersessions: the new point must be the next revision of the same listing, day and source"
_GUARD = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS trg_price_supersessions_same_key BEFORE INSERT ON price_supersessions "
        f"WHEN NOT EXISTS ({_SAME_KEY}) BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END"
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION tradeassist_supersession_same_key() RETURNS trigger AS $$ "
        f"BEGIN IF NOT EXISTS ({_SAME_KEY}) THEN RAISE EXCEPTION USING ERRCODE = 'check_violation', "
        f"MESSAGE = '{_REFUSAL}'; END IF; RETURN NEW; END; $$ LANGUAGE plpgsql",
        "CREATE OR REPLACE TRIGGER trg_price_supersessions_same_key BEFORE INSERT ON price_supersessions "
        "FOR EACH ROW EXECUTE FUNCTION tradeassist_supersession_same_key()",
    ],
}


def downgrade() -> None:
    bind = op.get_bind()
    replaced = bind.exec_driver_sql("SELECT COUNT(*) FROM price_supersessions").scalar()
    if replaced:
        # Points are never deleted: a replaced key holds two points, which the old key cannot.
        raise RuntimeError(
            f"cannot downgrade below 0010_price_revisions: {replaced} stored prices were replaced"
        )
    op.drop_table("price_supersessions")
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql("DROP FUNCTION IF EXISTS tradeassist_supersession_same_key()")
        # The listings were shared before: no row security, no column grant.
        bind.exec_driver_sql("ALTER TABLE instrument_listings DISABLE ROW LEVEL SECURITY")
        for policy in bind.exec_driver_sql(
            "SELECT policyname FROM pg_catalog.pg_policies WHERE schemaname = current_schema() "
            "AND tablename = 'instrument_listings'"
        ).scalars():
            bind.exec_driver_sql(f'DROP POLICY IF EXISTS "{policy}" ON instrument_listings')
    if bind.dialect.name == "sqlite":
        _sqlite_rebuild(revisions=False)
        immutability.install(bind)
        # The listings are a stream table again, as the code of that revision has it.
        for name in ("fixed_columns", "key_taken"):
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS trg_instrument_listings_{name}")
        bind.exec_driver_sql("ALTER TABLE instrument_listings DROP COLUMN source_priority")
        for verb in ("UPDATE", "DELETE"):
            bind.exec_driver_sql(
                f"CREATE TRIGGER IF NOT EXISTS trg_instrument_listings_no_{verb.lower()} BEFORE {verb} "
                f"ON instrument_listings BEGIN SELECT RAISE(ABORT, "
                f"'instrument_listings is append-only: {verb} refused'); END"
            )
        return
    op.drop_constraint("uq_price_point", TABLE, type_="unique")
    op.create_unique_constraint("uq_price_point", TABLE, list(OLD_KEY))
    op.drop_column(TABLE, "revision")
    op.create_index(
        "ix_price_points_latest", TABLE, ["listing_id", "is_close", "as_of", "price_point_id"], unique=False
    )
    op.drop_column("instrument_listings", "source_priority")
    for statement in (
        "DROP TRIGGER IF EXISTS trg_instrument_listings_fixed_columns ON instrument_listings",
        "DROP TRIGGER IF EXISTS trg_instrument_listings_no_delete ON instrument_listings",
        "CREATE OR REPLACE TRIGGER trg_instrument_listings_no_change BEFORE UPDATE OR DELETE ON "
        "instrument_listings FOR EACH ROW EXECUTE FUNCTION tradeassist_refuse_change()",
    ):
        bind.exec_driver_sql(statement)
