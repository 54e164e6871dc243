"""§2 Registry: canonical instruments (ISIN) and their venue listings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from ...core.enums import InstrumentType
from .base import enum_field, fk_field, id_field, text_field, ts_field


class Instrument(SQLModel, table=True):
    __tablename__ = "instruments"

    instrument_id: int | None = id_field()
    isin: str = Field(sa_column=Column(String(12), nullable=False, unique=True))
    instrument_type: InstrumentType = enum_field(InstrumentType)
    name: str | None = text_field(length=300)
    created_at: datetime = ts_field(now=True)


class InstrumentListing(SQLModel, table=True):
    """A (ticker, exchange) pair names one listing; currency and quote scale belong here.

    Added column: ``price_provider`` (nullable), the registered provider that
    ``prices refresh`` uses for this listing, with ``provider_symbol`` as its symbol.
    """

    __tablename__ = "instrument_listings"
    __table_args__ = (UniqueConstraint("ticker", "exchange", name="uq_listing_ticker_exchange"),)

    listing_id: int | None = id_field()
    instrument_id: int = fk_field("instruments.instrument_id", index=True)
    ticker: str = Field(sa_column=Column(String(32), nullable=False))
    exchange: str = Field(sa_column=Column(String(16), nullable=False))
    trading_currency: str = Field(sa_column=Column(String(3), nullable=False))
    quote_scale: str = Field(sa_column=Column(String(8), nullable=False))
    provider_symbol: str | None = text_field(length=64)
    price_provider: str | None = text_field(length=32)
    is_primary: bool = Field(default=False, nullable=False)
    created_at: datetime = ts_field(now=True)
