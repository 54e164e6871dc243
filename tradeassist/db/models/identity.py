"""§1 Core reference and tenancy: users, portfolios, memberships."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from ...core.enums import TaxTreatment
from .base import enum_field, fk_field, id_field, ts_field


class User(SQLModel, table=True):
    __tablename__ = "users"

    user_id: int | None = id_field()
    email: str = Field(sa_column=Column(String(320), nullable=False, unique=True))
    password_hash: str = Field(sa_column=Column(String(512), nullable=False))
    is_enabled: bool = Field(default=True, nullable=False)
    is_bootstrap_admin: bool = Field(default=False, nullable=False)
    created_at: datetime = ts_field(now=True)
    last_login_at: datetime | None = ts_field(nullable=True)
    # Added column: the user's own PostgreSQL login role (``db.row_security``); NULL on SQLite.
    db_role: str | None = Field(
        default=None, sa_column=Column(String(63), nullable=True, unique=True, index=True)
    )


class Portfolio(SQLModel, table=True):
    __tablename__ = "portfolios"

    portfolio_id: int | None = id_field()
    owner_user_id: int = fk_field("users.user_id", index=True)
    name: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    broker: str = Field(sa_column=Column(String(100), nullable=False))
    base_currency: str = Field(default="GBP", sa_column=Column(String(3), nullable=False))
    tax_treatment: TaxTreatment = enum_field(TaxTreatment)
    created_at: datetime = ts_field(now=True)


class PortfolioMembership(SQLModel, table=True):
    __tablename__ = "portfolio_memberships"
    # The primary key (portfolio_id, user_id) is the model's uniqueness rule.

    portfolio_id: int = fk_field("portfolios.portfolio_id", primary_key=True)
    user_id: int = fk_field("users.user_id", primary_key=True)
    created_at: datetime = ts_field(now=True)
