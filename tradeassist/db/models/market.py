"""§4 Market data: sources, prices, FX rates, corporate actions, accepted price levels.

Added by the market data work (revision 0003_market): ``price_points.usable`` (see
:class:`PricePoint`), and the snapshot table ``price_point_rechecks`` (see
:class:`PricePointRecheck`); by revision 0010: ``price_points.revision`` and
``price_supersessions``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlmodel import Field, SQLModel

from ...core.enums import CorporateActionType
from .base import ID_TYPE, enum_field, fk_field, id_field, json_field, money_field, text_field, ts_field


class MarketDataSource(SQLModel, table=True):
    __tablename__ = "market_data_sources"

    source_id: int | None = id_field()
    name: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    notes: str | None = text_field()


class PricePoint(SQLModel, table=True):
    """A price as a feed gave it, normalised and checked at ingest; never changed afterwards.

    A daily close of date D is stored with ``as_of`` = the end of D in Europe/London (what
    ``--as-of D`` means), so "as of D" includes D's close and nothing later.

    Added column: ``usable`` (ingest time): True when no blocking quality flag is set and
    ``normalized_price_base`` is known, i.e. the point may feed valuations. A later re-check
    (an accepted level, a recorded split, FX imported after the price) never rewrites the
    point: it writes a :class:`PricePointRecheck` row that readers join.
    "The latest good close per listing as of a date" reads the unique key's index (listing_id,
    as_of, ...) backwards from the date. (Revision 0003 added a second index for it,
    ``ix_price_points_latest``; 0010 dropped it: the key's index serves the read as well, and
    every insert paid for both.)

    Added column (revision 0010): ``revision``, 0 for the first point of a key and one more for
    each point that supersedes it (``prices import --replace``; see :class:`PriceSupersession`).
    The model's key (listing, as_of, source, is_close) therefore holds among *current* points:
    the database key is that plus ``revision``, and a superseded point is kept, never changed.
    """

    __tablename__ = "price_points"
    __table_args__ = (
        UniqueConstraint("listing_id", "as_of", "source_id", "is_close", "revision", name="uq_price_point"),
    )

    price_point_id: int | None = id_field()
    listing_id: int = fk_field("instrument_listings.listing_id")
    as_of: datetime = ts_field()
    source_id: int = fk_field("market_data_sources.source_id")
    is_close: bool = Field(default=True, nullable=False)
    raw_price: Decimal = money_field()
    raw_currency: str = Field(sa_column=Column(String(3), nullable=False))
    raw_quote_scale: str = Field(sa_column=Column(String(8), nullable=False))
    normalized_price_base: Decimal | None = money_field(nullable=True)
    quality_flags: list[str] = json_field(default_factory=list)
    usable: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    revision: int = Field(default=0, sa_column=Column(SmallInteger, nullable=False, server_default=text("0")))


class PriceSupersession(SQLModel, table=True):
    """Added table (stream): a stored point replaced by a later one of the same key.

    A price stored in the wrong unit (or simply wrong) is never changed or deleted: a later
    import with ``--replace`` and a reason stores the right value as a new point (the next
    ``revision`` of the same listing, as_of, source and is_close) and records here which point
    it supersedes, who did it and why (audited as ``PRICES_REPLACED``). Readers skip superseded
    points: valuations use the newest point of a key. ``listing_id`` repeats the point's, so
    row security can judge the row on its own.
    """

    __tablename__ = "price_supersessions"

    price_point_id: int = Field(
        sa_column=Column(
            ID_TYPE, ForeignKey("price_points.price_point_id"), primary_key=True, autoincrement=False
        )
    )
    superseded_by_point_id: int = Field(
        sa_column=Column(ID_TYPE, ForeignKey("price_points.price_point_id"), nullable=False, unique=True)
    )
    listing_id: int = fk_field("instrument_listings.listing_id")
    reason: str = Field(sa_column=Column(String(500), nullable=False))
    replaced_by_user_id: int | None = fk_field("users.user_id", nullable=True)
    created_at: datetime = ts_field(now=True)


class PricePointRecheck(SQLModel, table=True):
    """Added table (snapshot, mutable): the current verdict on a stored point, where it differs
    from the verdict at ingest.

    ``price_points`` is append-only and its ``quality_flags`` are what the checks said when the
    point arrived. When the user accepts a new level or records a split, the listing's points
    from that date on are checked again; when FX rates arrive after prices were flagged
    ``missing_fx``, those prices are normalised again. A point whose verdict then differs from
    its ingest-time one gets a row here (``quality_flags``, ``normalized_price_base``,
    ``usable``, what caused it and when); a point whose verdict returns to the ingest-time one
    loses its row. Readers take the row's values over the point's (``COALESCE``).
    """

    __tablename__ = "price_point_rechecks"

    price_point_id: int = Field(
        sa_column=Column(
            ID_TYPE, ForeignKey("price_points.price_point_id"), primary_key=True, autoincrement=False
        )
    )
    quality_flags: list[str] = json_field(default_factory=list)
    normalized_price_base: Decimal | None = money_field(nullable=True)
    usable: bool = Field(default=False, nullable=False)
    cause: str = Field(sa_column=Column(String(64), nullable=False))
    rechecked_at: datetime = ts_field(now=True)


class FxRate(SQLModel, table=True):
    __tablename__ = "fx_rates"
    __table_args__ = (
        UniqueConstraint("base_currency", "quote_currency", "as_of", "source_id", name="uq_fx_rate"),
    )

    fx_rate_id: int | None = id_field()
    base_currency: str = Field(sa_column=Column(String(3), nullable=False))
    quote_currency: str = Field(sa_column=Column(String(3), nullable=False))
    as_of: datetime = ts_field()
    rate: Decimal = money_field()
    source_id: int = fk_field("market_data_sources.source_id")


class CorporateAction(SQLModel, table=True):
    __tablename__ = "corporate_actions"

    corp_action_id: int | None = id_field()
    instrument_id: int = fk_field("instruments.instrument_id", index=True)
    action_type: CorporateActionType = enum_field(CorporateActionType)
    effective_date: date = Field(sa_column=Column(Date, nullable=False))
    ratio_num: Decimal | None = money_field(nullable=True)
    ratio_den: Decimal | None = money_field(nullable=True)
    new_instrument_id: int | None = fk_field("instruments.instrument_id", nullable=True)
    notes: str | None = text_field()


class PriceLevelAcceptance(SQLModel, table=True):
    """Added table: the user's explicit acceptance of a new price level for a listing.

    A level change that no recorded split explains stays suspect until the user records the
    corporate action or accepts the new level from ``effective_date`` (audited).
    """

    __tablename__ = "price_level_acceptances"
    __table_args__ = (Index("ix_price_level_acceptances_listing", "listing_id", "effective_date"),)

    acceptance_id: int | None = id_field()
    listing_id: int = fk_field("instrument_listings.listing_id")
    effective_date: date = Field(sa_column=Column(Date, nullable=False))
    accepted_by_user_id: int = fk_field("users.user_id")
    reason: str | None = text_field()
    details: dict[str, Any] = json_field()
    created_at: datetime = ts_field(now=True)
