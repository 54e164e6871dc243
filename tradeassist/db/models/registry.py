"""§2 Registry: canonical instruments (ISIN) and their venue listings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from ...core.enums import InstrumentType
from .base import enum_field, fk_field, id_field, json_field, text_field, ts_field


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

    Added column (revision 0010): ``source_priority`` (nullable JSON list of source names), the
    order in which sources value the listing when several have a usable close on one day
    (None: the default order, see ``services.price_sources``).

    Amendable (``listing set``, audited): ``price_provider``, ``provider_symbol``,
    ``is_primary`` and ``source_priority``; the database refuses a change to any other column
    (``immutability.GUARDED_TABLES``). The instrument, ticker, exchange, trading currency and
    quote scale are the listing's identity: the book's trade prices and every stored price are
    in that unit, so a listing registered with the wrong one is replaced by a new listing,
    never edited.
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
    source_priority: list[str] | None = json_field(nullable=True, default_factory=lambda: None)
