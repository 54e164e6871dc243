"""§5 Book of record: batches, entries (the single source of truth) and snapshots."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from ...core.enums import BatchType, EntryType
from .base import enum_field, fk_field, id_field, json_field, money_field, text_field, ts_field


class LedgerBatch(SQLModel, table=True):
    """Added columns: ``source_name`` and ``source_sha256`` (the imported file and its content
    hash, so importing the same file again adds nothing) and ``recommendation_id`` (the
    recommendation whose execution this batch records)."""

    __tablename__ = "ledger_batches"
    __table_args__ = (UniqueConstraint("portfolio_id", "source_sha256", name="uq_batch_source"),)

    ledger_batch_id: int | None = id_field()
    portfolio_id: int = fk_field("portfolios.portfolio_id", index=True)
    label: str = Field(sa_column=Column(String(200), nullable=False))
    batch_type: BatchType = enum_field(BatchType)
    created_by_user_id: int = fk_field("users.user_id")
    created_at: datetime = ts_field(now=True)
    source_name: str | None = text_field(length=500)
    source_sha256: str | None = text_field(length=64)
    recommendation_id: int | None = fk_field("recommendations.recommendation_id", nullable=True)


class LedgerEntry(SQLModel, table=True):
    """Added columns: ``corrects_entry_id``, the entry a MANUAL_FIX compensating entry corrects;
    ``cost_base``, for a TRANSFER of units in, the Section 104 cost (GBP) the units bring
    (an in-specie transfer from another account or portfolio; NULL elsewhere)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_portfolio_time", "portfolio_id", "entry_time"),
        Index("ix_ledger_entries_portfolio_ref", "portfolio_id", "external_ref"),
    )

    ledger_entry_id: int | None = id_field()
    ledger_batch_id: int = fk_field("ledger_batches.ledger_batch_id", index=True)
    portfolio_id: int = fk_field("portfolios.portfolio_id")
    entry_time: datetime = ts_field()
    entry_type: EntryType = enum_field(EntryType)
    listing_id: int | None = fk_field("instrument_listings.listing_id", nullable=True)
    units: Decimal | None = money_field(nullable=True)
    price: Decimal | None = money_field(nullable=True)
    fees_base: Decimal = money_field(default=Decimal("0"))
    cash_amount_base: Decimal = money_field()
    original_currency: str | None = text_field(length=3)
    original_amount: Decimal | None = money_field(nullable=True)
    notes: str | None = text_field()
    external_ref: str | None = text_field(length=200)
    corrects_entry_id: int | None = fk_field("ledger_entries.ledger_entry_id", nullable=True)
    cost_base: Decimal | None = money_field(nullable=True)


class HoldingSnapshot(SQLModel, table=True):
    """``avg_cost_base`` is the Section 104 pooled average cost per unit in GBP, fees included,
    to 10 decimal places. Added column: ``cost_base``, the pool's total cost (GBP), kept
    exactly so that applying later entries to the snapshot gives what a rebuild gives (NULL
    only on rows written before the column existed; such a portfolio is replayed in full)."""

    __tablename__ = "holding_snapshots"

    portfolio_id: int = fk_field("portfolios.portfolio_id", primary_key=True)
    listing_id: int = fk_field("instrument_listings.listing_id", primary_key=True)
    units: Decimal = money_field()
    avg_cost_base: Decimal | None = money_field(nullable=True)
    cost_base: Decimal | None = money_field(nullable=True)
    updated_at: datetime = ts_field(now=True)


class CashSnapshot(SQLModel, table=True):
    __tablename__ = "cash_snapshots"

    portfolio_id: int = fk_field("portfolios.portfolio_id", primary_key=True)
    currency: str = Field(default="GBP", sa_column=Column(String(3), nullable=False))
    cash_balance: Decimal = money_field(default=Decimal("0"))
    updated_at: datetime = ts_field(now=True)


class PortfolioSummary(SQLModel, table=True):
    __tablename__ = "portfolio_summaries"

    portfolio_id: int = fk_field("portfolios.portfolio_id", primary_key=True)
    as_of: datetime = ts_field()
    total_value_base: Decimal = money_field()
    weights_by_sleeve: dict[str, Any] = json_field()
    drift_by_sleeve: dict[str, Any] = json_field()
    updated_at: datetime = ts_field(now=True)


__all__ = [
    "CashSnapshot",
    "HoldingSnapshot",
    "LedgerBatch",
    "LedgerEntry",
    "PortfolioSummary",
]
