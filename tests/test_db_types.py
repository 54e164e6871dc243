"""Exact decimals and UTC timestamps round-trip on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError

from tradeassist.core.errors import ValidationError
from tradeassist.core.money import round_cash, to_decimal
from tradeassist.db.types import ExactDecimal, UTCDateTime

metadata = MetaData()
probe = Table(
    "decimal_probe",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("value", ExactDecimal()),
    Column("at", UTCDateTime()),
)


@pytest.fixture
def probe_engine(engine: Engine) -> Engine:
    metadata.create_all(engine)
    return engine


def _roundtrip(engine: Engine, value: Decimal) -> Decimal:
    with engine.begin() as conn:
        pk = conn.execute(insert(probe).values(value=value)).inserted_primary_key[0]
    with engine.connect() as conn:
        return conn.execute(select(probe.c.value).where(probe.c.id == pk)).scalar_one()


decimals = st.decimals(
    allow_nan=False, allow_infinity=False, min_value=Decimal("-1e20"), max_value=Decimal("1e20"), places=None
).filter(lambda d: abs(d.as_tuple().exponent) < 40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=decimals)
def test_decimal_round_trips_exactly(probe_engine: Engine, value: Decimal) -> None:
    assert _roundtrip(probe_engine, value) == value


def test_the_value_sqlite_numeric_would_corrupt(probe_engine: Engine) -> None:
    value = Decimal("1234567890123456.78")
    assert _roundtrip(probe_engine, value) == value
    if probe_engine.dialect.name == "sqlite":
        # What a plain NUMERIC column does on SQLite, for contrast.
        with probe_engine.begin() as conn:
            conn.execute(text("CREATE TABLE float_probe (v NUMERIC)"))
            conn.execute(text("INSERT INTO float_probe VALUES ('1234567890123456.78')"))
            stored = conn.execute(text("SELECT v FROM float_probe")).scalar_one()
        assert Decimal(str(stored)) != value


def test_a_million_pennies_do_not_drift(probe_engine: Engine) -> None:
    total = sum((Decimal("0.01") for _ in range(1_000_000)), Decimal("0"))
    assert _roundtrip(probe_engine, total) == Decimal("10000.00")


@pytest.mark.parametrize(
    "bad", [0.1, float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity"), "1.5"]
)
def test_floats_nan_and_infinities_are_refused(probe_engine: Engine, bad: object) -> None:
    with pytest.raises(StatementError) as info, probe_engine.begin() as conn:
        conn.execute(insert(probe).values(value=bad))
    assert isinstance(info.value.orig, ValidationError)


@pytest.mark.parametrize("bad", [0.1, float("nan"), float("inf"), "NaN", "inf", True, None, [1]])
def test_to_decimal_refuses_non_numbers(bad: object) -> None:
    with pytest.raises(ValidationError):
        to_decimal(bad)


def test_to_decimal_reads_thousands_separators_and_pound_signs() -> None:
    assert to_decimal("£1,234.50") == Decimal("1234.50")
    assert to_decimal(" -12 ") == Decimal("-12")


@pytest.mark.parametrize(
    ("amount", "rounded"),
    [("2.345", "2.34"), ("2.355", "2.36"), ("-2.345", "-2.34"), ("0.005", "0.00"), ("0.015", "0.02")],
)
def test_cash_rounds_half_even_to_the_penny(amount: str, rounded: str) -> None:
    assert round_cash(Decimal(amount)) == Decimal(rounded)


def test_timestamps_are_stored_and_read_in_utc(probe_engine: Engine) -> None:
    london_summer = datetime(2026, 7, 1, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    with probe_engine.begin() as conn:
        pk = conn.execute(insert(probe).values(at=london_summer)).inserted_primary_key[0]
    with probe_engine.connect() as conn:
        back = conn.execute(select(probe.c.at).where(probe.c.id == pk)).scalar_one()
    assert back == london_summer
    assert back.tzinfo is not None and back.utcoffset() == timedelta(0)
    assert back == datetime(2026, 7, 1, 8, 30, tzinfo=UTC)


def test_naive_timestamps_are_refused(probe_engine: Engine) -> None:
    with pytest.raises(StatementError), probe_engine.begin() as conn:
        conn.execute(insert(probe).values(at=datetime(2026, 1, 1)))
