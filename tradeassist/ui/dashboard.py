"""What the dashboard shows, gathered read-only through the services and the engine.

``load(portfolio)`` opens one read-only unit of work; ``gather(session, actor=..., portfolio=...)``
is the same inside a caller's transaction. The result is plain values and DataFrames that the
pure builders of ``tradeassist.ui.figures`` draw:

* the daily value series (``engine.value_series``) replayed from the ledger entries and the
  usable GBP closes, with contributions marked;
* each sleeve's weight against its target and its drift, with the approved policy's bands
  (``engine.valuation.drift_report`` on the same input a recommendation is computed from);
* each listing's price history in its quote unit, flagged points kept (with their flags) and a
  split-adjusted column;
* time-weighted return, XIRR and the drawdown of the time-weighted index;
* the open alerts and the freeze state.

Splits and merges: the ledger's units are as booked, the prices as quoted, so both are put on
today's basis (units times num/den, prices times den/num for every later split) before
valuing; an ISIN change is not followed here (the old listing keeps its last close).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..db.models import Portfolio, User
from ..engine import book as bk
from ..engine import performance as perf
from ..engine.valuation import drift_report
from ..engine.value_series import LedgerEvent, value_series
from ..enums import EntryType, TaskKind
from ..errors import NotFound, ValidationError
from ..money import CONTEXT, ZERO
from ..policy import DriftBands
from ..services import access, advice, governance, ledger, prices
from ..timeutil import end_of_london_day, ensure_utc, london_date
from .common import work


@dataclass(frozen=True)
class SleeveRow:
    """A sleeve's weight (of holdings plus cash) against its target; ``drift`` = weight - target."""

    sleeve: str
    target: Decimal
    value_gbp: Decimal
    weight: float
    drift: float
    breached: bool

    def band(self, bands: DriftBands) -> tuple[float, float | None]:
        """Half-widths of the absolute band and of the relative one (None when it is not tighter)."""
        absolute = float(bands.absolute)
        if self.target <= ZERO:
            return absolute, None
        relative = float(bands.relative * self.target)
        return absolute, relative if relative < absolute else None


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

    @property
    def key(self) -> str:
        return f"{self.ticker}:{self.exchange}"

    @property
    def flagged(self) -> pd.DataFrame:
        return self.frame[self.frame["flags"] != ""]


@dataclass(frozen=True)
class Performance:
    twr: perf.PeriodReturn
    xirr: float | None  # None when the flows have no rate (e.g. nothing invested yet)
    drawdown: perf.Drawdown
    drawdown_series: pd.Series  # TWR index over its running high, minus 1 (0 at a high)


@dataclass(frozen=True)
class DashboardData:
    portfolio: str
    as_of: datetime | None
    values: pd.DataFrame | None  # value_series columns; None before the first ledger entry
    sleeves: tuple[SleeveRow, ...]
    bands: DriftBands | None  # None without an approved strategy
    prices: Mapping[str, PriceHistory]
    performance: Performance | None
    alerts: Sequence[Mapping[str, Any]]
    freeze: Mapping[str, Any]
    holdings: Sequence[Mapping[str, Any]]
    cash: Decimal
    notes: tuple[str, ...] = field(default_factory=tuple)  # what could not be shown, and why


def load(
    portfolio: str, *, engine: Engine | str | None = None, as_of: datetime | None = None
) -> DashboardData:
    """Gather the dashboard in one read-only transaction (the configured database by default)."""
    with work(engine, readonly=True) as (session, actor):
        return gather(session, actor=actor, portfolio=portfolio, as_of=as_of)


def gather(session: Session, *, actor: User, portfolio: str, as_of: datetime | None = None) -> DashboardData:
    folio = access.portfolio_for(session, actor, portfolio, "read the dashboard")
    as_of = ensure_utc(as_of) if as_of is not None else None
    notes: list[str] = []
    listings = ledger.load_listings(session)
    actions = ledger.load_actions(session, listings)
    entries = ledger.list_entries(session, actor=actor, portfolio=folio)
    if as_of is not None:
        entries = [e for e in entries if e["entry_time"] <= as_of]
    histories = price_histories(session, folio, listings, actions, as_of=as_of)

    values = performance = None
    if entries:
        try:
            values = value_series(_events(entries, listings, actions), _closes(histories))
            performance = performance_of(values)
        except ValidationError as exc:
            notes.append(f"value series: {exc}")
    else:
        notes.append("no ledger entries yet: import a broker file or load the demo")

    sleeves: tuple[SleeveRow, ...] = ()
    bands = None
    try:
        inputs = advice.prepare_inputs(
            session, portfolio=folio, kind=TaskKind.WEEKLY_REVIEW, as_of=as_of, actor=actor
        )
        bands = inputs.policy.drift_bands
        sleeves = tuple(
            SleeveRow(
                sleeve=row.sleeve,
                target=row.target,
                value_gbp=row.value_gbp,
                weight=float(row.weight),
                drift=float(row.drift),
                breached=row.breached,
            )
            for row in drift_report(inputs.state, inputs.policy)
        )
    except NotFound as exc:
        notes.append(f"allocation: {exc}")

    return DashboardData(
        portfolio=folio.name,
        as_of=as_of,
        values=values,
        sleeves=sleeves,
        bands=bands,
        prices=histories,
        performance=performance,
        alerts=governance.list_alerts(session, actor=actor, portfolio=folio.name, open_only=True),
        freeze=governance.freeze_status(session, folio.portfolio_id).row(folio.name),
        holdings=ledger.holdings(session, actor=actor, portfolio=folio),
        cash=ledger.cash(session, actor=actor, portfolio=folio)["cash_balance"],
        notes=tuple(notes),
    )


def performance_of(values: pd.DataFrame) -> Performance:
    """TWR, XIRR and drawdown over the whole value series."""
    index = perf.twr_index(values)
    try:
        xirr: float | None = perf.money_weighted_return(values)
    except ValidationError:
        xirr = None
    return Performance(
        twr=perf.time_weighted_return(values),
        xirr=xirr,
        drawdown=perf.max_drawdown(index),
        drawdown_series=(index / index.cummax() - 1).rename("drawdown"),
    )


# --- prices ---------------------------------------------------------------------------------


def price_histories(
    session: Session,
    folio: Portfolio,
    listings: Mapping[int, ledger.ListingInfo],
    actions: Sequence[bk.Action],
    *,
    as_of: datetime | None = None,
) -> dict[str, PriceHistory]:
    """Every listing the portfolio holds or maps, by ``TICKER:EXCHANGE``."""
    end = last_close_day(as_of) if as_of is not None else None
    out = {}
    for listing, _held, _mapped in prices.portfolio_listings(session, folio.portfolio_id):  # type: ignore[arg-type]
        rows = [
            r
            for r in prices.list_prices(session, ticker=listing.ticker, exchange=listing.exchange, end=end)
            if r["is_close"]
        ]
        instrument = listings[listing.listing_id].quote.instrument_id  # type: ignore[index]
        history = _history(listing.ticker, listing.exchange, listing.quote_scale, rows, actions, instrument)
        out[history.key] = history
    return dict(sorted(out.items()))


def last_close_day(as_of: datetime) -> date:
    """The last day whose close is known at ``as_of``: a close stands at the end of its London
    day, as ``prices.latest_good_prices`` counts it."""
    day = london_date(as_of)
    return day if end_of_london_day(day) <= as_of else day - timedelta(days=1)


def _history(
    ticker: str,
    exchange: str,
    unit: str,
    rows: Sequence[Mapping[str, Any]],
    actions: Sequence[bk.Action],
    instrument_id: int,
) -> PriceHistory:
    days = [r["as_of"] for r in rows]
    raw = [r["raw_price"] for r in rows]
    adjusted = [p for _, p in bk.split_adjusted(zip(days, raw, strict=True), actions, instrument_id)]
    frame = pd.DataFrame(
        {
            "price": raw,
            "price_adjusted": adjusted,
            "price_gbp": [r["normalized_price_base"] for r in rows],
            "usable": [bool(r["usable"]) for r in rows],
            "flags": [", ".join(r["quality_flags"]) for r in rows],
            "source": [r["source"] for r in rows],
        },
        index=pd.DatetimeIndex(pd.to_datetime(days), name="date"),
    )
    return PriceHistory(ticker=ticker, exchange=exchange, unit=unit, frame=frame)


def _closes(histories: Mapping[str, PriceHistory]) -> dict[str, pd.Series]:
    """Usable GBP closes per listing on today's unit basis (the last source of a day wins)."""
    out = {}
    for key, history in histories.items():
        good = history.frame[history.frame["usable"] & history.frame["price_gbp"].notna()]
        factors = [
            CONTEXT.divide(adj, raw) if raw else Decimal(1)
            for adj, raw in zip(good["price_adjusted"], good["price"], strict=True)
        ]
        gbp = [CONTEXT.multiply(p, f) for p, f in zip(good["price_gbp"], factors, strict=True)]
        series = pd.Series(gbp, index=good.index, dtype=object)
        out[key] = series[~series.index.duplicated(keep="last")]
    return out


# --- ledger ---------------------------------------------------------------------------------


def _events(
    entries: Sequence[Mapping[str, Any]],
    listings: Mapping[int, ledger.ListingInfo],
    actions: Sequence[bk.Action],
) -> list[LedgerEvent]:
    instrument_of = {(i.ticker, i.exchange): i.quote.instrument_id for i in listings.values()}
    events = []
    for e in entries:
        day = london_date(e["entry_time"])
        key = f"{e['ticker']}:{e['exchange']}" if e["ticker"] else None
        units = e["units"] or ZERO
        if units and key is not None:
            factor = bk.split_factor(actions, instrument_of[(e["ticker"], e["exchange"])], day)
            units = CONTEXT.divide(units, factor) if factor != 1 else units
        kind = EntryType(e["entry_type"])
        events.append(LedgerEvent(day, kind, key, units, e["cash_amount_base"]))
    return events


def figures_for(data: DashboardData, *, split_adjusted: bool = False) -> dict[str, Any]:
    """Every dashboard chart, in the order the notebook shows them, by a short name."""
    from . import figures

    charts = {
        "value": figures.value_figure(data.values, title=f"{data.portfolio}: value over time"),
        "allocation": figures.allocation_figure(data.sleeves),
        "drift": figures.drift_figure(data.sleeves, data.bands),
        "performance": figures.performance_figure(data.performance),
        "alerts": figures.alerts_figure(data.alerts, data.freeze),
    }
    for key, history in data.prices.items():
        charts[f"price {key}"] = figures.price_figure(history, split_adjusted=split_adjusted)
    return charts
