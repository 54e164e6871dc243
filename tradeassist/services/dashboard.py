"""What the dashboard shows, gathered read-only through the services and the engine.

``gather(session, actor=..., portfolio=...)`` reads inside the caller's transaction and returns
plain values and DataFrames (``DashboardData``) that ``tradeassist.presentation.figures`` draws:

* the daily value series (``engine.value_series``) replayed from the ledger entries and the
  usable GBP closes, with contributions marked;
* what it cannot value, in words (``dashboard_notes``): a holding is never valued at zero for
  want of a price; the chart then covers the latest stretch of days on which every holding
  has a price, or says why there is none (``DashboardData.value_note``);
* each sleeve's weight against its target and its drift, with the approved policy's bands
  (``engine.valuation.drift_report`` on the same input a recommendation is computed from);
* each listing's price history in its quote unit, flagged points kept (with their flags) and a
  split-adjusted column (``dashboard_prices``);
* time-weighted return, XIRR and the drawdown of the time-weighted index;
* the open alerts and the freeze state;
* income this tax year, dividends and interest (``services.income``; ``income_note``).

Splits and merges: the ledger's units are as booked, the prices as quoted, so both are put on
today's basis (units times num/den, prices times den/num for every later split) before
valuing; an ISIN change is not followed here (the old listing keeps its last close).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlmodel import Session

from ..core.enums import EntryType, TaskKind
from ..core.errors import NotFound, ValidationError
from ..core.money import CONTEXT, ZERO
from ..core.timeutil import ensure_utc, london_date
from ..db.models import Portfolio, User
from ..engine import book as bk
from ..engine import performance as perf
from ..engine.valuation import drift_report
from ..engine.value_series import LedgerEvent, PriceGap, ValuedSeries, value_series_where_priced
from ..policy import DriftBands
from . import access, advice, governance, income, ledger
from .dashboard_notes import allocation_note, long_date, missing_price_sentence, sentence, value_note
from .dashboard_prices import PriceHistory, gbp_closes, last_close_day, price_histories, price_history

__all__ = [
    "DashboardData",
    "Performance",
    "PriceHistory",
    "SleeveRow",
    "gather",
    "gbp_closes",
    "last_close_day",
    "ledger_events",
    "long_date",
    "missing_price_sentence",
    "performance_of",
    "price_histories",
    "price_history",
]


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
class Performance:
    twr: perf.PeriodReturn
    xirr: float | None  # None when the flows have no rate (e.g. nothing invested yet)
    drawdown: perf.Drawdown
    drawdown_series: pd.Series  # TWR index over its running high, minus 1 (0 at a high)


@dataclass(frozen=True)
class DashboardData:
    portfolio: str
    as_of: datetime | None
    values: pd.DataFrame | None  # value_series columns; None before the first ledger entry or
    # when no stretch of days has a price for every holding (``value_note`` says why)
    sleeves: tuple[SleeveRow, ...]
    bands: DriftBands | None  # None without an approved strategy
    prices: Mapping[str, PriceHistory]
    performance: Performance | None
    alerts: Sequence[Mapping[str, Any]]
    freeze: Mapping[str, Any]
    holdings: Sequence[Mapping[str, Any]]
    cash: Decimal
    notes: tuple[str, ...] = field(default_factory=tuple)  # what could not be shown, and why, in words
    value_gaps: tuple[PriceGap, ...] = ()  # listings held on days without a usable close
    value_note: str | None = None  # what the value chart leaves out, or why there is none
    values_start_late: bool = False  # the value chart starts after the first ledger entry
    allocation_note: str | None = None  # holdings the weights leave out for want of a price
    income_note: str | None = None  # "Income this tax year (2025-26): dividends £X, interest £Y."


@dataclass(frozen=True)
class _Values:
    """The value part of the dashboard: the series, its returns, and what they leave out."""

    values: pd.DataFrame | None = None
    performance: Performance | None = None
    valued: ValuedSeries | None = None
    note: str | None = None


@dataclass(frozen=True)
class _Allocation:
    sleeves: tuple[SleeveRow, ...] = ()
    bands: DriftBands | None = None
    note: str | None = None


def gather(session: Session, *, actor: User, portfolio: str, as_of: datetime | None = None) -> DashboardData:
    """Everything the dashboard shows of ``portfolio`` (as of ``as_of``, else now), read-only."""
    folio = access.portfolio_for(session, actor, portfolio, "read the dashboard")
    assert folio.portfolio_id is not None  # read from the database
    as_of = ensure_utc(as_of) if as_of is not None else None
    notes: list[str] = []
    listings = ledger.load_listings(session)
    actions = ledger.load_actions(session, listings)
    entries = ledger.list_entries(session, actor=actor, portfolio=folio)
    if as_of is not None:
        entries = [e for e in entries if e["entry_time"] <= as_of]
    traded = {(e["ticker"], e["exchange"]) for e in entries if e["ticker"]}
    histories = price_histories(session, folio, listings, actions, as_of=as_of, also=traded)
    shown = _values(entries, listings, actions, histories, folio.name, notes)
    allocation = _allocation(session, actor, folio, as_of, notes)
    valued = shown.valued
    return DashboardData(
        portfolio=folio.name,
        as_of=as_of,
        values=shown.values,
        sleeves=allocation.sleeves,
        bands=allocation.bands,
        prices=histories,
        performance=shown.performance,
        alerts=governance.list_alerts(session, actor=actor, portfolio=folio.name, open_only=True),
        freeze=governance.freeze_status(session, folio.portfolio_id).row(folio.name),
        holdings=ledger.holdings(session, actor=actor, portfolio=folio),
        cash=ledger.cash(session, actor=actor, portfolio=folio)["cash_balance"],
        notes=tuple(notes),
        value_gaps=valued.gaps if valued is not None else (),
        value_note=shown.note,
        values_start_late=valued.starts_late if valued is not None else False,
        allocation_note=allocation.note,
        income_note=income.income_this_tax_year(session, folio.portfolio_id, as_of),
    )


def _values(
    entries: Sequence[Mapping[str, Any]],
    listings: Mapping[int, ledger.ListingInfo],
    actions: Sequence[bk.Action],
    histories: Mapping[str, PriceHistory],
    portfolio: str,
    notes: list[str],
) -> _Values:
    """The value series where every holding has a price, and its returns; notes go to ``notes``."""
    if not entries:
        note = "No ledger entries yet: import a broker file or load the demo."
        notes.append(note)
        return _Values(note=note)
    events = ledger_events(entries, listings, actions)
    try:
        valued = value_series_where_priced(events, gbp_closes(histories))
    except ValidationError as exc:
        note = sentence(f"The value chart could not be drawn: {exc}")
        notes.append(note)
        return _Values(note=note)
    said = value_note(valued, histories, events, portfolio, notes)
    performance = None
    if valued.values is not None:
        try:
            performance = performance_of(valued.values)
        except ValidationError as exc:
            notes.append(sentence(f"Returns could not be computed: {exc}"))
    return _Values(values=valued.values, performance=performance, valued=valued, note=said)


def _allocation(
    session: Session, actor: User, folio: Portfolio, as_of: datetime | None, notes: list[str]
) -> _Allocation:
    """Each sleeve against its target and bands, as a recommendation would see it."""
    try:
        inputs = advice.prepare_inputs(
            session, portfolio=folio, kind=TaskKind.WEEKLY_REVIEW, as_of=as_of, actor=actor
        )
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
        note = allocation_note(inputs.state.positions)
    except NotFound as exc:
        notes.append(sentence(f"No allocation or drift: {exc}"))
        return _Allocation()
    if note:
        notes.append(note)
    return _Allocation(sleeves=sleeves, bands=inputs.policy.drift_bands, note=note)


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


def ledger_events(
    entries: Sequence[Mapping[str, Any]],
    listings: Mapping[int, ledger.ListingInfo],
    actions: Sequence[bk.Action],
) -> list[LedgerEvent]:
    """The ledger's entries as the value series replays them, units on today's basis."""
    instrument_of = {(i.ticker, i.exchange): i.quote.instrument_id for i in listings.values()}
    events = []
    for e in entries:
        day = london_date(e["entry_time"])
        key = f"{e['ticker']}:{e['exchange']}" if e["ticker"] else None
        kind = EntryType(e["entry_type"])
        units = e["units"] or ZERO
        if kind is EntryType.SELL:
            units = -units  # the ledger books a SELL's units as sold (> 0; a reversal's < 0)
        if units and key is not None:
            factor = bk.split_factor(actions, instrument_of[(e["ticker"], e["exchange"])], day)
            units = CONTEXT.divide(units, factor) if factor != 1 else units
        events.append(LedgerEvent(day, kind, key, units, e["cash_amount_base"]))
    return events
