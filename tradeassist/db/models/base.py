"""Column helpers shared by every model module."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, String
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field, SQLModel

from ...core.timeutil import utcnow
from ..types import ExactDecimal, JSONDoc, UTCDateTime

# Pydantic builds each model's validator when its class is created: for the model's ~40 tables
# that was most of a command's start-up (0.77 s of importing the models, 0.48 s deferred, on
# this machine under load). ``defer_build`` builds a validator the first time it is used, and
# the table models are rarely validated at all. Set before any model class is defined (every
# model module imports this one first).
SQLModel.model_config["defer_build"] = True

# BIGINT on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" is the fast rowid alias.
ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")


def id_field() -> Any:
    return Field(default=None, sa_column=Column(ID_TYPE, primary_key=True, autoincrement=True))


def fk_field(target: str, *, nullable: bool = False, primary_key: bool = False, index: bool = False) -> Any:
    return Field(
        default=None,
        sa_column=Column(
            ID_TYPE, ForeignKey(target), nullable=nullable, primary_key=primary_key, index=index
        ),
    )


def money_field(*, nullable: bool = False, default: Decimal | None = None) -> Any:
    return Field(default=default, sa_column=Column(ExactDecimal(), nullable=nullable))


def ts_field(*, nullable: bool = False, now: bool = False, index: bool = False) -> Any:
    kwargs: dict[str, Any] = {"default_factory": utcnow} if now else {"default": None}
    return Field(**kwargs, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def json_field(*, nullable: bool = False, default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSONDoc(), nullable=nullable))


def enum_field(enum: type[Enum], *, nullable: bool = False, default: Any = None) -> Any:
    """An enumeration stored as its string value, with a CHECK constraint listing the values."""
    sa_type = SAEnum(
        enum,
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
        length=max(len(m.value) for m in enum) + 8,
        values_callable=lambda e: [m.value for m in e],
        name=f"ck_{enum.__name__.lower()}",
    )
    return Field(default=default, sa_column=Column(sa_type, nullable=nullable))


def text_field(*, nullable: bool = True, length: int | None = None, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(String(length), nullable=nullable, index=index))


__all__ = ["datetime", "id_field"]
