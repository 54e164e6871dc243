"""The dashboard's prices: each listing's stored closes, as quoted and on today's unit basis.

``price_histories`` reads every listing a portfolio holds or maps (and the ones its ledger
traded) into a ``PriceHistory`` each: the closes as quoted, flagged points kept with their
flags, a split-adjusted column and the GBP price where it could be normalised.
``gbp_closes`` turns them into the usable GBP closes ``engine.value_series`` values with.

Splits and merges: prices are put on today's basis (times den/num for every later split); an
ISIN change is not followed here (the old listing keeps its last close).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlmodel import Session

from ..core.money import CONTEXT
from ..core.timeutil import end_of_london_day, london_date
from ..db.models import Portfolio
from ..engine import book as bk
from . import ledger, prices, registry


@dataclass(frozen=True)
class PriceHistory:
    """One listing's stored closes, oldest first.

    ``frame`` is indexed by date with columns ``price`` (as quoted, in ``unit``),
    ``price_adjusted`` (on today's unit basis after splits), ``price_gbp`` (normalised, None when
    the point could not be), ``usable`` and ``flags`` (a comma-separated text, empty when clean).
    """

    ticker: str
    exchange: str
    unit: str
    frame: pd.DataFrame
    provider: str | None = None  # the listing's price provider, None when it has none

    @property
    def key(self) -> str:
        return f"{self.ticker}:{self.exchange}"

    def unusable(self, first: date | None = None, last: date | None = None) -> pd.DataFrame:
        """Flagged closes not used for values (on days with no usable close), within the days."""
        frame = self.frame
        days = pd.DatetimeIndex(frame.index).normalize()
        good_days = set(days[frame["usable"].to_numpy(dtype=bool)])
        keep = ~frame["usable"].to_numpy(dtype=bool) & ~days.isin(list(good_days))
        if first is not None:
            keep &= days >= pd.Timestamp(first)
        if last is not None:
            keep &= days <= pd.Timestamp(last)
        return frame[keep]

    @property
    def flagged(self) -> pd.DataFrame:
        return self.frame[self.frame["flags"] != ""]


def price_histories(
    session: Session,
    folio: Portfolio,
    listings: Mapping[int, ledger.ListingInfo],
    actions: Sequence[bk.Action],
    *,
    as_of: datetime | None = None,
    also: Collection[tuple[str, str]] = (),
) -> dict[str, PriceHistory]:
    """Every listing the portfolio holds or maps, and those in ``also`` (ticker, exchange: the
    ledger's), by ``TICKER:EXCHANGE``."""
    assert folio.portfolio_id is not None  # read from the database
    end = last_close_day(as_of) if as_of is not None else None
    out = {}
    chosen = [listing for listing, _held, _mapped in prices.portfolio_listings(session, folio.portfolio_id)]
    known = {(listing.ticker, listing.exchange) for listing in chosen}
    chosen += [registry.get_listing(session, t, x) for t, x in sorted(set(also) - known)]
    for listing in chosen:
        assert listing.listing_id is not None  # read from the database
        rows = [
            r
            for r in prices.list_prices(session, ticker=listing.ticker, exchange=listing.exchange, end=end)
            if r["is_close"]
        ]
        instrument = listings[listing.listing_id].quote.instrument_id
        history = price_history(
            listing.ticker, listing.exchange, listing.quote_scale, rows, actions, instrument
        )
        out[history.key] = replace(history, provider=listing.price_provider)
    return dict(sorted(out.items()))


def last_close_day(as_of: datetime) -> date:
    """The last day whose close is known at ``as_of``: a close stands at the end of its London
    day, as ``prices.latest_good_prices`` counts it."""
    day = london_date(as_of)
    return day if end_of_london_day(day) <= as_of else day - timedelta(days=1)


def price_history(
    ticker: str,
    exchange: str,
    unit: str,
    rows: Sequence[Mapping[str, Any]],
    actions: Sequence[bk.Action],
    instrument_id: int,
) -> PriceHistory:
    """A listing's price rows (``prices.list_prices``'s) as a ``PriceHistory``."""
    days = [r["as_of"] for r in rows]
    raw = [r["raw_price"] for r in rows]
    adjusted = [p for _, p in bk.split_adjusted(zip(days, raw, strict=True), actions, instrument_id)]
    frame = pd.DataFrame(
        {
            "price": raw,
            "price_adjusted": adjusted,
            "price_gbp": [r["normalized_price_base"] for r in rows],
            "usable": [bool(r["usable"]) for r in rows],
            "values_portfolio": [bool(r.get("values_portfolio", r["usable"])) for r in rows],
            "flags": [", ".join(r["quality_flags"]) for r in rows],
            "source": [r["source"] for r in rows],
        },
        index=pd.DatetimeIndex(pd.to_datetime(days), name="date"),
    )
    return PriceHistory(ticker=ticker, exchange=exchange, unit=unit, frame=frame)


def gbp_closes(histories: Mapping[str, PriceHistory]) -> dict[str, pd.Series]:
    """Usable GBP closes per listing on today's unit basis: each day's close from the source that
    values the portfolio (``price_sources``)."""
    out = {}
    for key, history in histories.items():
        frame = history.frame
        chosen = frame["values_portfolio"] if "values_portfolio" in frame else frame["usable"]
        good = frame[frame["usable"] & chosen & frame["price_gbp"].notna()]
        factors = [
            CONTEXT.divide(adj, raw) if raw else Decimal(1)
            for adj, raw in zip(good["price_adjusted"], good["price"], strict=True)
        ]
        gbp = [CONTEXT.multiply(p, f) for p, f in zip(good["price_gbp"], factors, strict=True)]
        series = pd.Series(gbp, index=good.index, dtype=object)
        out[key] = series[~series.index.duplicated(keep="last")]
    return out
