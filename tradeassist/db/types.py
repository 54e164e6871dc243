"""Column types that keep money exact and time in UTC on both SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Numeric, String
from sqlalchemy.types import TypeDecorator

from ..core.errors import ValidationError
from ..core.limits import MAX_STORED_INTEGER_DIGITS, shown, stored_number_problem
from ..core.money import decimal_str

# Any int wider than this has more digits than a numeric column holds (log2(10) > 3.3).
_WIDEST_INT_BITS = MAX_STORED_INTEGER_DIGITS * 34 // 10


class ExactDecimal(TypeDecorator):
    """A Decimal stored exactly: plain text on SQLite, unconstrained NUMERIC on PostgreSQL.

    SQLite has no decimal type: its NUMERIC affinity silently stores a float, so
    1234567890123456.78 would come back as ...456.75. Text keeps every digit.
    Floats, NaN and infinities are refused before they reach the database, and so is a
    value wider than PostgreSQL's ``numeric`` holds (131,072 digits before the point, 16,383
    after: ``core.limits.stored_number_problem``), on both databases alike: a one-line
    ``ValidationError`` rather than PostgreSQL's "numeric field overflow", and never a
    million-digit string on SQLite. (The readers' own bounds, ``core.limits``, are far
    tighter; this is the last line.)
    """

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, Decimal | int):
            raise ValidationError(
                f"exact decimal column: {type(value).__name__} {value!r} refused; use Decimal or int"
            )
        if isinstance(value, int) and value.bit_length() > _WIDEST_INT_BITS:
            raise ValidationError("exact decimal column: an integer too wide for a numeric column refused")
        value = Decimal(value)
        problem = stored_number_problem(value)
        if problem:
            raise ValidationError(f"exact decimal column: {shown(value)} {problem}; refused")
        if dialect.name == "postgresql":
            return value
        return decimal_str(value)

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, Decimal):
            return value
        return Decimal(str(value))

    @property
    def python_type(self) -> type:
        return Decimal


class UTCDateTime(TypeDecorator):
    """An aware datetime, stored in UTC (timestamptz on PostgreSQL), always read back aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise ValidationError(f"timestamp column: {value!r} is not a datetime")
        if value.tzinfo is None:
            raise ValidationError(f"timestamp column: {value.isoformat()} has no time zone")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def python_type(self) -> type:
        return datetime


class JSONDoc(TypeDecorator):
    """JSON whose Decimals are written as strings (the engine's serializer does that)."""

    impl = JSON
    cache_ok = True
