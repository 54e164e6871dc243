"""Instruments by ISIN and listings by (ticker, exchange)."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from tradeassist.core.errors import AlreadyExists, NotFound, ValidationError
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import User
from tradeassist.services import registry


def test_instruments_and_listings(engine: Engine, admin: User) -> None:
    with unit_of_work(engine) as s:
        actor = s.get(User, admin.user_id)
        registry.add_instrument(s, actor=actor, isin="ie00bk5bqt80", instrument_type="etf", name="VWRP")
        registry.add_listing(
            s,
            actor=actor,
            isin="IE00BK5BQT80",
            ticker="vwrp",
            exchange="xlon",
            currency="GBP",
            quote_scale="GBP",
            provider_symbol="VWRP.UK",
            price_provider="stooq",
        )
        registry.add_instrument(s, actor=actor, isin="IE00B3RBWM25", instrument_type="ETF")
        registry.add_listing(
            s,
            actor=actor,
            isin="IE00B3RBWM25",
            ticker="VWRL",
            exchange="XLON",
            currency="GBP",
            quote_scale="GBp",
        )
    with unit_of_work(engine, readonly=True) as s:
        rows = registry.list_listings(s)
        assert [(r["ticker"], r["quote_scale"], r["isin"]) for r in rows] == [
            ("VWRL", "GBX", "IE00B3RBWM25"),
            ("VWRP", "GBP", "IE00BK5BQT80"),
        ]
        assert registry.get_listing(s, "vwrp", "XLON").price_provider == "stooq"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"isin": "IE00BK5BQT81"}, ValidationError, "check digit"),
        ({"isin": "GB0000000009"}, NotFound, "unknown ISIN"),
        ({"quote_scale": "USD"}, ValidationError, "quote scale"),
        ({"exchange": "London Stock Exchange"}, ValidationError, "MIC"),
        ({"price_provider": "bloomberg"}, ValidationError, "price provider"),
        ({"ticker": "VWRP"}, AlreadyExists, "exists already"),
    ],
)
def test_bad_listings_are_refused_clearly(engine: Engine, admin: User, kwargs, error, message) -> None:
    with unit_of_work(engine) as s:
        actor = s.get(User, admin.user_id)
        registry.add_instrument(s, actor=actor, isin="IE00BK5BQT80", instrument_type="ETF")
        registry.add_listing(
            s,
            actor=actor,
            isin="IE00BK5BQT80",
            ticker="VWRP",
            exchange="XLON",
            currency="GBP",
            quote_scale="GBP",
        )
    args = {
        "isin": "IE00BK5BQT80",
        "ticker": "VWRA",
        "exchange": "XLON",
        "currency": "GBP",
        "quote_scale": "GBP",
    } | kwargs
    with pytest.raises(error, match=message), unit_of_work(engine) as s:
        registry.add_listing(s, actor=s.get(User, admin.user_id), **args)
