"""Column types that keep money exact and time in UTC on both SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Numeric, String
from sqlalchemy.types import TypeDecorator

from ..core.errors import ValidationError
from ..core.money import decimal_str


class ExactDecimal(TypeDecorator):
    """A Decimal stored exactly: plain text on SQLite, unconstrained NUMERIC on PostgreSQL.

    SQLite has no decimal type: its NUMERIC affinity silently stores a float, so
    1234567890123456.78 would come back as ...456.75. Text keeps every digit.
    Floats, NaN and infinities are refused before they reach the database.
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
        value = Decimal(value)
        if not value.is_finite():
            raise ValidationError(f"exact decimal column: {value!r} is not finite")
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
