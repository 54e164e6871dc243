"""What the dashboard shows, gathered read-only through the services and the engine.

``load(portfolio)`` opens one read-only unit of work; ``gather(session, actor=..., portfolio=...)``
is the same inside a caller's transaction. The result is plain values and DataFrames that the
pure builders of ``tradeassist.ui.figures`` draw:

* the daily value series (``engine.value_series``) replayed from the ledger entries and the
  usable GBP closes, with contributions marked;
* what it cannot value, in words: a holding is never valued at zero for want of a price. Each
  listing held on days before its first usable close (none stored, or only flagged ones) is
  named with its units, since when, and what to do (``missing_price_sentence``); the chart
  then covers the latest stretch of days on which every holding has a price, or says why
  there is none (``DashboardData.value_note``). Flagged closes that leave a held listing on an
  older price are named too, and so are the holdings the allocation leaves out for want of a
  price. ``notes_markdown`` puts every note in words for the notebook;
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

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..core.enums import EntryType, TaskKind
from ..core.errors import NotFound, ValidationError
from ..core.money import CONTEXT, ZERO
from ..core.timeutil import end_of_london_day, ensure_utc, london_date
from ..db.models import Portfolio, User
from ..engine import book as bk
from ..engine import performance as perf
from ..engine.valuation import drift_report
from ..engine.value_series import (
    LedgerEvent,
    PriceGap,
    ValuedSeries,
    units_held,
    value_series_where_priced,
)
from ..policy import DriftBands
from ..services import access, advice, governance, ledger, prices, registry
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
    traded = {(e["ticker"], e["exchange"]) for e in entries if e["ticker"]}
    histories = price_histories(session, folio, listings, actions, as_of=as_of, also=traded)

    values = performance = None
    valued: ValuedSeries | None = None
    value_note = allocation_note = None
    if entries:
        events = _events(entries, listings, actions)
        try:
            valued = value_series_where_priced(events, _closes(histories))
        except ValidationError as exc:
            value_note = _sentence(f"The value chart could not be drawn: {exc}")
            notes.append(value_note)
        else:
            values = valued.values
            value_note = _value_note(valued, histories, events, folio.name, notes)
            if values is not None:
                try:
                    performance = performance_of(values)
                except ValidationError as exc:
                    notes.append(_sentence(f"Returns could not be computed: {exc}"))
    else:
        value_note = "No ledger entries yet: import a broker file or load the demo."
        notes.append(value_note)

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
        allocation_note = _allocation_note(inputs.state.positions)
        if allocation_note:
            notes.append(allocation_note)
    except NotFound as exc:
        notes.append(_sentence(f"No allocation or drift: {exc}"))

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
        value_gaps=valued.gaps if valued is not None else (),
        value_note=value_note,
        values_start_late=valued.starts_late if valued is not None else False,
        allocation_note=allocation_note,
    )


# --- what cannot be valued, in words ----------------------------------------------------------


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else f"{text}."


def long_date(day: date) -> str:
    """4 September 2022."""
    return f"{day.day} {day:%B %Y}"


def _units(units: Decimal) -> str:
    text = format(units.normalize(), "f")
    return f"{text} unit" if units == 1 else f"{text} units"


def _flags(rows: pd.DataFrame) -> str:
    flags = sorted({flag.strip() for text in rows["flags"] for flag in str(text).split(",") if flag.strip()})
    return ", ".join(flags) or "not usable"


def _closes_phrase(rows: pd.DataFrame) -> str:
    days = [pd.Timestamp(d).date() for d in rows.index]
    if len(days) == 1:
        return f"its close of {long_date(days[0])} is"
    return f"its {len(days)} closes from {long_date(min(days))} to {long_date(max(days))} are"


def _fix_flagged(rows: pd.DataFrame) -> str:
    them = "it" if len(rows) == 1 else "them"
    return (
        f"check {them} against the broker, then record the split with `tradeassist corporate-action add` "
        f"or accept the new level with `tradeassist prices accept-level`"
    )


def missing_price_sentence(gap: PriceGap, history: PriceHistory | None, portfolio: str) -> str:
    """One sentence: which listing, how many units, since when, and what to do.

    "XDWL on XLON (12 units) has no price from 4 September 2022: import prices with
    `tradeassist prices import FILE --ticker XDWL --exchange XLON --format csv`; it has no
    price provider, so `tradeassist prices refresh` skips it."
    """
    held = f"{gap.ticker} on {gap.exchange} ({_units(gap.units)})"
    flagged = history.unusable(last=gap.until) if history is not None else pd.DataFrame()
    usable = "usable " if len(flagged) else ""
    command = f"`tradeassist prices import FILE --ticker {gap.ticker} --exchange {gap.exchange} --format csv`"
    if gap.first_close is None:
        when = f"{held} has no {usable}price from {long_date(gap.since)}"
    else:
        when = (
            f"{held} had no {usable}price from {long_date(gap.since)} to {long_date(gap.until)} "
            f"(its first usable close is on {long_date(gap.first_close)})"
        )
    if len(flagged):
        unused = f"{_closes_phrase(flagged)} flagged ({_flags(flagged)}) and not used"
        return f"{when}: {unused}; {_fix_flagged(flagged)}."
    if gap.first_close is not None:
        return f"{when}: import the earlier prices with {command}."
    if history is not None and history.provider:
        return (
            f'{when}: run `tradeassist prices refresh --portfolio "{portfolio}"` (its price provider '
            f"is {history.provider}) or import prices with {command}."
        )
    return (
        f"{when}: import prices with {command}; it has no price provider, so "
        f"`tradeassist prices refresh` skips it."
    )


def _value_note(
    valued: ValuedSeries,
    histories: Mapping[str, PriceHistory],
    events: Sequence[LedgerEvent],
    portfolio: str,
    notes: list[str],
) -> str | None:
    """What the value chart leaves out, or why there is none; each sentence also goes to ``notes``."""
    missing = [missing_price_sentence(gap, histories.get(gap.listing), portfolio) for gap in valued.gaps]
    notes.extend(missing)
    parts = []
    if valued.values is None or valued.shown is None:
        parts.append("No value chart: no stretch of days has a price for every holding.")
    elif valued.gaps:
        first, last = valued.shown
        if last < valued.end:
            parts.append(
                f"The value chart covers {long_date(first)} to {long_date(last)} only: the latest days "
                f"on which every holding has a price."
            )
        else:
            parts.append(
                f"The value chart starts on {long_date(first)}, the first day from which every holding "
                f"has a price."
            )
    parts.extend(missing)
    if valued.values is not None and valued.shown is not None:
        flagged = _flagged_in_view(valued.shown, histories, events)
        notes.extend(flagged)
        parts.extend(flagged)
    return " ".join(parts) or None


def _flagged_in_view(
    shown: tuple[date, date], histories: Mapping[str, PriceHistory], events: Sequence[LedgerEvent]
) -> list[str]:
    """Held listings whose flagged closes in the chart's days leave them on an older close."""
    out = []
    for key, history in histories.items():
        rows = history.unusable(*shown)
        held = [d for d in (pd.Timestamp(x).date() for x in rows.index) if units_held(events, key, d) != ZERO]
        if not held:
            continue
        rows = rows[[pd.Timestamp(x).date() in held for x in rows.index]]
        units = units_held(events, key, held[-1])
        out.append(
            f"{history.ticker} on {history.exchange} ({_units(units)}): {_closes_phrase(rows)} flagged "
            f"({_flags(rows)}) and not used, so the value uses the last usable close before it; "
            f"{_fix_flagged(rows)}."
        )
    return out


def _allocation_note(positions: Sequence[Any]) -> str | None:
    """The held listings the weights leave out for want of a price, in words."""
    unpriced = [p for p in positions if p.units > ZERO and p.price_gbp is None]
    if not unpriced:
        return None
    names = ", ".join(f"{p.ticker} on {p.exchange} ({_units(p.units)})" for p in unpriced)
    return f"The allocation leaves out what has no price, never counting it as zero: {names}."


def notes_markdown(data: DashboardData) -> str:
    """Every note of the dashboard as Markdown for the notebook: words, never a Python tuple."""
    if not data.notes:
        return "Nothing is missing: every holding has a price on every day shown."
    lines = "\n".join(f"- {note}" for note in data.notes)
    return f"**What the dashboard cannot show, and why**\n\n{lines}"


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
    also: Collection[tuple[str, str]] = (),
) -> dict[str, PriceHistory]:
    """Every listing the portfolio holds or maps, and those in ``also`` (ticker, exchange: the
    ledger's), by ``TICKER:EXCHANGE``."""
    end = last_close_day(as_of) if as_of is not None else None
    out = {}
    chosen = [listing for listing, _held, _mapped in prices.portfolio_listings(session, folio.portfolio_id)]  # type: ignore[arg-type]
    known = {(listing.ticker, listing.exchange) for listing in chosen}
    chosen += [registry.get_listing(session, t, x) for t, x in sorted(set(also) - known)]
    for listing in chosen:
        rows = [
            r
            for r in prices.list_prices(session, ticker=listing.ticker, exchange=listing.exchange, end=end)
            if r["is_close"]
        ]
        instrument = listings[listing.listing_id].quote.instrument_id  # type: ignore[index]
        history = _history(listing.ticker, listing.exchange, listing.quote_scale, rows, actions, instrument)
        out[history.key] = replace(history, provider=listing.price_provider)
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
        kind = EntryType(e["entry_type"])
        units = e["units"] or ZERO
        if kind is EntryType.SELL:
            units = -units  # the ledger books a SELL's units as sold (> 0; a reversal's < 0)
        if units and key is not None:
            factor = bk.split_factor(actions, instrument_of[(e["ticker"], e["exchange"])], day)
            units = CONTEXT.divide(units, factor) if factor != 1 else units
        events.append(LedgerEvent(day, kind, key, units, e["cash_amount_base"]))
    return events


def performance_note(data: DashboardData) -> str | None:
    """Over which days the returns are measured when that is not every day of the ledger, or why
    there are none."""
    if data.performance is None:
        if data.value_gaps:
            return (
                "No returns: they need a value on every day, and no stretch of days has a price "
                "for every holding (see the value chart)."
            )
        return data.value_note
    if not data.value_gaps or data.values is None:
        return None
    first, last = (pd.Timestamp(data.values.index[i]).date() for i in (0, -1))
    return (
        f"Measured from {long_date(first)} to {long_date(last)} only, the days on which every holding "
        f"has a price; see the value chart for what is missing."
    )


def figures_for(data: DashboardData, *, split_adjusted: bool = False) -> dict[str, Any]:
    """Every dashboard chart, in the order the notebook shows them, by a short name."""
    from . import figures

    charts = {
        "value": figures.value_figure(
            data.values,
            title=f"{data.portfolio}: value over time",
            note=data.value_note,
            start_value_as_paid_in=data.values_start_late,
        ),
        "allocation": figures.allocation_figure(data.sleeves, note=data.allocation_note),
        "drift": figures.drift_figure(data.sleeves, data.bands, note=data.allocation_note),
        "performance": figures.performance_figure(data.performance, note=performance_note(data)),
        "alerts": figures.alerts_figure(data.alerts, data.freeze),
    }
    for key, history in data.prices.items():
        charts[f"price {key}"] = figures.price_figure(history, split_adjusted=split_adjusted)
    return charts
