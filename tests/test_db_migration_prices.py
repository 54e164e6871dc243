"""Migration 0010 on a database that holds prices (issue #17): every point is kept (revision 0),
listings become amendable in their market-data settings only, and the way down is refused once
a price was replaced (points are never deleted), on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from tests.support.migrations import database_at, downgrade
from tradeassist.db import migrate


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def old_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database migrated to 0009 with a listing and two prices, on each backend."""
    with database_at(request, tmp_path, "0009_run_leases") as engine:
        _prices(engine)
        yield engine


def _prices(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO instruments (isin, instrument_type, created_at) "
            "VALUES ('GB0004082847', 'STOCK', '2024-01-01 00:00:00')"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO instrument_listings (instrument_id, ticker, exchange, trading_currency, "
            "quote_scale, is_primary, created_at) "
            "VALUES (1, 'STAN', 'XLON', 'GBP', 'GBX', FALSE, '2024-01-01 00:00:00')"
        ))  # fmt: skip
        conn.execute(text("INSERT INTO market_data_sources (name) VALUES ('stooq')"))
        for day, price in (("2024-01-02", "613.6"), ("2024-01-03", "615.2")):
            conn.execute(text(
                "INSERT INTO price_points (listing_id, as_of, source_id, is_close, raw_price, raw_currency, "
                "raw_quote_scale, normalized_price_base, quality_flags, usable) VALUES "
                f"(1, '{day} 23:59:59.999999', 1, TRUE, '{price}', 'GBP', 'GBX', '6.136', '[]', TRUE)"
            ))  # fmt: skip


def _points(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(text("SELECT price_point_id, raw_price FROM price_points ORDER BY 1"))
        ]


def test_0010_keeps_every_point_and_makes_only_the_settings_amendable(old_engine: Engine) -> None:
    before = _points(old_engine)
    migrate.upgrade(old_engine)
    assert migrate.current_revision(old_engine) == migrate.head_revision()
    assert _points(old_engine) == before
    with old_engine.begin() as conn:
        assert conn.execute(text("SELECT DISTINCT revision FROM price_points")).scalars().all() == [0]
        conn.execute(
            text("UPDATE instrument_listings SET price_provider = 'stooq', source_priority = '[\"csv\"]'")
        )
    for statement in (
        "UPDATE instrument_listings SET quote_scale = 'GBP'",
        "DELETE FROM instrument_listings",
        "UPDATE price_points SET raw_price = '1'",
    ):
        with pytest.raises(DBAPIError, match="append-only"), old_engine.begin() as conn:
            conn.execute(text(statement))
    with old_engine.begin() as conn:  # the same key again: the next revision of it
        conn.execute(text(
            "INSERT INTO price_points (listing_id, as_of, source_id, is_close, raw_price, raw_currency, "
            "raw_quote_scale, normalized_price_base, quality_flags, usable, revision) SELECT listing_id, "
            "as_of, source_id, is_close, '614', raw_currency, raw_quote_scale, '6.14', '[]', TRUE, 1 "
            "FROM price_points WHERE price_point_id = 1"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO price_supersessions (price_point_id, superseded_by_point_id, listing_id, reason, "
            "created_at) VALUES (1, 3, 1, 'wrong close', '2024-01-04 00:00:00')"
        ))  # fmt: skip
    for wrong in ("(2, 2, 1", "(2, 1, 1"):  # itself; another day's point of no higher revision
        with (
            pytest.raises(DBAPIError, match="the next revision of the same listing"),
            old_engine.begin() as conn,
        ):
            conn.execute(text(
                "INSERT INTO price_supersessions (price_point_id, superseded_by_point_id, listing_id, "
                f"reason, created_at) VALUES {wrong}, 'hide it', '2024-01-04 00:00:00')"
            ))  # fmt: skip
    with pytest.raises(RuntimeError, match="1 stored prices were replaced"):
        downgrade(old_engine, "0009_run_leases")
    assert len(_points(old_engine)) == 3


def test_0010_goes_down_and_up_again_while_nothing_was_replaced(old_engine: Engine) -> None:
    before = _points(old_engine)
    migrate.upgrade(old_engine)
    downgrade(old_engine, "0009_run_leases")
    assert migrate.current_revision(old_engine) == "0009_run_leases"
    assert _points(old_engine) == before
    with pytest.raises(DBAPIError, match="append-only"), old_engine.begin() as conn:
        conn.execute(text("UPDATE instrument_listings SET price_provider = 'stooq'"))
    migrate.upgrade(old_engine)
    assert _points(old_engine) == before
