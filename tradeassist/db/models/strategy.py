"""§3 Strategy: sleeves, versions with archived policy and manifesto, the portfolios each version
governs, targets, constituents."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, ForeignKey, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ...core.enums import StrategyStatus
from .base import enum_field, fk_field, id_field, json_field, money_field, text_field, ts_field


class Sleeve(SQLModel, table=True):
    __tablename__ = "sleeves"

    sleeve_code: str = Field(sa_column=Column(String(32), primary_key=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    description: str | None = text_field()


class StrategyVersion(SQLModel, table=True):
    """One version = one policy + one manifesto.

    Uniqueness is on the (policy, manifesto) pair rather than on each hash alone, so a new
    policy can keep the same manifesto (and vice versa) without a second identical version.
    """

    __tablename__ = "strategy_versions"
    __table_args__ = (UniqueConstraint("policy_sha256", "manifesto_sha256", name="uq_strategy_content"),)

    strategy_version_id: int | None = id_field()
    version_label: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    status: StrategyStatus = enum_field(StrategyStatus, default=StrategyStatus.DRAFT)
    policy_sha256: str = Field(
        sa_column=Column(String(64), ForeignKey("policy_archives.policy_sha256"), nullable=False)
    )
    manifesto_sha256: str = Field(
        sa_column=Column(String(64), ForeignKey("manifesto_archives.manifesto_sha256"), nullable=False)
    )
    created_by_user_id: int = fk_field("users.user_id")
    created_at: datetime = ts_field(now=True)
    approved_at: datetime | None = ts_field(nullable=True)


class StrategyVersionPortfolio(SQLModel, table=True):
    """Added table: the portfolios a strategy version governs (its scope).

    Written once, with the version (``strategy add --portfolio``, by default every portfolio
    the author owns), and never changed: a stream table, append-only by trigger. A portfolio
    is governed by the version most recently approved for it while that version stays
    APPROVED (``services.strategy.governing_version``): one version at most, and approving a
    version never changes the strategy of a portfolio outside its scope. Migration 0005 gave
    every version older than scopes a scope of every portfolio that existed then: the old
    meaning, one strategy for all.
    """

    __tablename__ = "strategy_version_portfolios"

    strategy_version_id: int = fk_field("strategy_versions.strategy_version_id", primary_key=True)
    portfolio_id: int = fk_field("portfolios.portfolio_id", primary_key=True)


class PolicyArchive(SQLModel, table=True):
    __tablename__ = "policy_archives"

    policy_sha256: str = Field(sa_column=Column(String(64), primary_key=True))
    policy_json: dict[str, Any] = json_field()
    created_at: datetime = ts_field(now=True)


class ManifestoArchive(SQLModel, table=True):
    __tablename__ = "manifesto_archives"

    manifesto_sha256: str = Field(sa_column=Column(String(64), primary_key=True))
    manifesto_md: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = ts_field(now=True)


class SleeveTarget(SQLModel, table=True):
    __tablename__ = "sleeve_targets"

    strategy_version_id: int = fk_field("strategy_versions.strategy_version_id", primary_key=True)
    sleeve_code: str = Field(
        sa_column=Column(String(32), ForeignKey("sleeves.sleeve_code"), primary_key=True)
    )
    target_weight: Decimal = money_field()


class PortfolioConstituent(SQLModel, table=True):
    __tablename__ = "portfolio_constituents"

    portfolio_id: int = fk_field("portfolios.portfolio_id", primary_key=True)
    listing_id: int = fk_field("instrument_listings.listing_id", primary_key=True)
    sleeve_code: str = Field(sa_column=Column(String(32), ForeignKey("sleeves.sleeve_code"), nullable=False))
    is_monitored: bool = Field(default=True, nullable=False)
    include_in_calcs: bool = Field(default=True, nullable=False)
    created_at: datetime = ts_field(now=True)
