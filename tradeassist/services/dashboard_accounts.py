"""The dashboard's accounts: holdings valued, every account together, income by tax year.

``account_holdings`` values each holding of one account as a recommendation would (the book
at ``as_of``, each listing's latest usable close by ``prices.latest_good_prices``): units,
price, market value, book cost (the Section 104 pool, fees in), unrealised gain and weight of
the valued holdings plus cash. A holding without a usable close has no value, gain or weight
(never zero) and says why, since when and what to do, in the value chart's words
(``dashboard_notes.missing_price_sentence``); one valued at an older close because later ones
were flagged, or at a close older than the strategy allows, is valued and says so.

``household`` is every account the actor may see: each one's value and the total, the
allocation of each approved strategy across the accounts it governs
(``engine.accounts.drift_across``, the rules of a recommendation's drift), and the income of
all of them by tax year (``income_by_tax_year``, summed from ``services.income``).

``account_dashboard`` is one account's whole dashboard: ``dashboard.gather``'s charts with the
holdings and the income by tax year. Everything reads inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlmodel import Session

from ..core.enums import TaskKind
from ..core.errors import NotFound
from ..core.money import CONTEXT, ZERO
from ..core.timeutil import ensure_utc, london_date, utcnow
from ..db.models import Portfolio, User
from ..engine import book as bk
from ..engine import income as inc
from ..engine.accounts import drift_across
from ..engine.model import PortfolioState
from ..engine.value_series import PriceGap, price_gaps
from ..policy import DriftBands
from . import access, advice, income, ledger, prices, registry
from .dashboard import DashboardData, SleeveRow, gather, ledger_events
from .dashboard_notes import flagged_sentence, long_date, missing_price_sentence, units_phrase
from .dashboard_prices import PriceHistory, last_close_day, price_history
from .strategy_versions import ApprovedStrategy, governing_strategy

PRICED, NO_PRICE, STALE, FLAGGED = "priced", "no price", "stale price", "flagged close"


@dataclass(frozen=True)
class HoldingRow:
    """One holding valued: GBP throughout; ``value``, ``gain`` and ``weight`` are None without a
    usable price (never zero); ``note`` says what is wrong with the price, and what to do."""

    ticker: str
    exchange: str
    name: str | None
    units: Decimal
    book_cost: Decimal  # the Section 104 pool, fees included
    price_gbp: Decimal | None = None  # the latest usable close per unit
    price_day: date | None = None
    value: Decimal | None = None
    weight: float | None = None  # of the account's valued holdings plus cash
    status: str = PRICED  # PRICED, NO_PRICE, STALE or FLAGGED
    note: str | None = None

    @property
    def label(self) -> str:
        return f"{self.ticker}:{self.exchange}"

    @property
    def gain(self) -> Decimal | None:
        """Unrealised gain: value minus book cost."""
        return None if self.value is None else self.value - self.book_cost

    @property
    def gain_fraction(self) -> float | None:
        gain = self.gain
        return None if gain is None or self.book_cost <= ZERO else float(gain / self.book_cost)


@dataclass(frozen=True)
class AccountHoldings:
    """One account's holdings at a moment, valued; its total leaves out what has no price."""

    portfolio: str
    tax_treatment: str
    as_of: datetime | None  # None: now
    cash: Decimal
    holdings: tuple[HoldingRow, ...]
    strategy: str | None = None  # the label of the approved version governing it

    @property
    def holdings_value(self) -> Decimal:
        return sum((row.value for row in self.holdings if row.value is not None), ZERO)

    @property
    def total(self) -> Decimal:
        """Valued holdings plus cash."""
        return self.holdings_value + self.cash

    @property
    def unpriced(self) -> tuple[HoldingRow, ...]:
        return tuple(row for row in self.holdings if row.value is None)

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(row.note for row in self.holdings if row.note)


@dataclass(frozen=True)
class IncomeYear:
    """Dividends and interest received in one UK tax year, exact."""

    tax_year: str  # "2023-24"
    dividends: Decimal
    interest: Decimal

    @property
    def total(self) -> Decimal:
        return self.dividends + self.interest


@dataclass(frozen=True)
class StrategyAllocation:
    """One approved strategy's sleeves against their targets across the accounts it governs."""

    strategy: str
    portfolios: tuple[str, ...]
    sleeves: tuple[SleeveRow, ...]
    bands: DriftBands
    note: str | None = None  # the holdings it leaves out for want of a price


@dataclass(frozen=True)
class Household:
    """Every account the actor may see, together."""

    as_of: datetime | None
    accounts: tuple[AccountHoldings, ...]
    allocations: tuple[StrategyAllocation, ...]
    income: tuple[IncomeYear, ...]
    notes: tuple[str, ...]  # the accounts no allocation counts, and why (each account's
    # holdings say what has no price themselves: ``AccountHoldings.notes``)

    @property
    def total(self) -> Decimal:
        return sum((a.total for a in self.accounts), ZERO)

    @property
    def cash(self) -> Decimal:
        return sum((a.cash for a in self.accounts), ZERO)


@dataclass(frozen=True)
class AccountDashboard:
    """One account's dashboard: the charts' data, its holdings valued, its income by tax year."""

    data: DashboardData
    holdings: AccountHoldings
    income: tuple[IncomeYear, ...]


# --- one account --------------------------------------------------------------------------------


def account_dashboard(
    session: Session, *, actor: User, portfolio: str, as_of: datetime | None = None
) -> AccountDashboard:
    """``dashboard.gather`` with the holdings valued and the income by tax year."""
    data = gather(session, actor=actor, portfolio=portfolio, as_of=as_of)
    folio = access.portfolio_for(session, actor, portfolio, "read the dashboard")
    assert folio.portfolio_id is not None  # read from the database
    held = _account(session, actor, folio, data.as_of, _governing(session, folio))
    return AccountDashboard(data, held, income_by_tax_year(session, [folio.portfolio_id], until=data.as_of))


def account_holdings(
    session: Session, *, actor: User, portfolio: str, as_of: datetime | None = None
) -> AccountHoldings:
    """One account's holdings valued at ``as_of`` (else now)."""
    folio = access.portfolio_for(session, actor, portfolio, "read the dashboard")
    moment = ensure_utc(as_of) if as_of is not None else None
    return _account(session, actor, folio, moment, _governing(session, folio))


def _governing(session: Session, folio: Portfolio) -> ApprovedStrategy | None:
    try:
        return governing_strategy(session, folio)
    except NotFound:
        return None


def _book(session: Session, portfolio_id: int, as_of: datetime | None) -> bk.Book:
    if as_of is None:
        stored = ledger.snapshot_book(session, portfolio_id)
        if stored is not None:
            return stored
    return advice.book_as_of(session, portfolio_id, as_of or utcnow())


def _account(
    session: Session, actor: User, folio: Portfolio, as_of: datetime | None, approved: ApprovedStrategy | None
) -> AccountHoldings:
    assert folio.portfolio_id is not None  # read from the database
    book = _book(session, folio.portfolio_id, as_of)
    listings = ledger.load_listings(session)
    max_age = prices.DEFAULT_MAX_AGE_BUSINESS_DAYS
    if approved is not None:
        max_age = approved.policy.max_price_age_business_days
    latest = prices.latest_good_prices(session, book.holdings, as_of, max_age_business_days=max_age)
    names = {n.listing_id: n.name for n in income.listing_names(session, listings)}
    why = _Explainer(session, actor, folio, listings, as_of)
    rows = []
    held = sorted(book.holdings.items(), key=lambda i: (listings[i[0]].ticker, listings[i[0]].exchange))
    for listing_id, holding in held:
        info = listings[listing_id]
        row = HoldingRow(info.ticker, info.exchange, names.get(listing_id), holding.units, holding.cost)
        rows.append(why.valued(row, latest.get(listing_id)))
    total = sum((row.value for row in rows if row.value is not None), ZERO) + book.cash
    if total > ZERO:
        rows = [replace(r, weight=float(r.value / total)) if r.value is not None else r for r in rows]
    return AccountHoldings(
        portfolio=folio.name,
        tax_treatment=folio.tax_treatment.value,
        as_of=as_of,
        cash=book.cash,
        holdings=tuple(rows),
        strategy=approved.version.version_label if approved else None,
    )


class _Explainer:
    """Values a holding at its latest usable close, and says what is wrong with its prices: reads
    each priced listing's closes after that one (flagged ones leave it on an older price), and
    the ledger and the whole history only for a holding without a price."""

    def __init__(
        self,
        session: Session,
        actor: User,
        folio: Portfolio,
        listings: Mapping[int, ledger.ListingInfo],
        as_of: datetime | None,
    ) -> None:
        self.session, self.actor, self.folio, self.listings = session, actor, folio, listings
        self.as_of = as_of
        self.end = last_close_day(as_of or utcnow())
        self._actions: list[bk.Action] | None = None

    @property
    def actions(self) -> list[bk.Action]:
        if self._actions is None:
            self._actions = list(ledger.load_actions(self.session, self.listings))
        return self._actions

    def valued(self, row: HoldingRow, price: prices.LatestPrice | None) -> HoldingRow:
        if price is None:
            return replace(row, status=NO_PRICE, note=self.missing(row))
        valued = replace(
            row,
            price_gbp=price.price_gbp,
            price_day=price.as_of,
            value=CONTEXT.multiply(row.units, price.price_gbp),
        )
        history = self.history(row, after=price.as_of)
        flagged = history.unusable()
        stale = self.stale(row, price, history) if price.is_stale else None
        if len(flagged):
            said = flagged_sentence(history, flagged, row.units)
            return replace(valued, status=FLAGGED, note=f"{said} {stale}" if stale else said)
        if stale:
            return replace(valued, status=STALE, note=stale)
        return valued

    def history(self, row: HoldingRow, *, after: date | None = None) -> PriceHistory:
        """The listing's closes after ``after`` (all without it) up to the last close day."""
        listing = registry.get_listing(self.session, row.ticker, row.exchange)
        assert listing.listing_id is not None  # read from the database
        start = after + timedelta(days=1) if after is not None else None
        points = prices.list_prices(
            self.session, ticker=row.ticker, exchange=row.exchange, start=start, end=self.end
        )
        instrument = self.listings[listing.listing_id].quote.instrument_id
        closes = [p for p in points if p["is_close"]]
        unit = listing.quote_scale
        history = price_history(row.ticker, row.exchange, unit, closes, self.actions, instrument)
        return replace(history, provider=listing.price_provider)

    def missing(self, row: HoldingRow) -> str:
        """The value chart's sentence: since when the holding has had no price, and what to do."""
        entries = ledger.list_entries(self.session, actor=self.actor, portfolio=self.folio)
        if self.as_of is not None:
            entries = [e for e in entries if e["entry_time"] <= self.as_of]
        events = ledger_events(entries, self.listings, self.actions)
        day = london_date(self.as_of or utcnow())
        gaps = price_gaps(events, {}, end=day) if events else ()
        gap = next((g for g in gaps if g.listing == row.label), None)
        gap = gap or PriceGap(row.label, day, day, row.units, None)
        return missing_price_sentence(replace(gap, units=row.units), self.history(row), self.folio.name)

    def stale(self, row: HoldingRow, price: prices.LatestPrice, history: PriceHistory) -> str:
        command = f"tradeassist prices import FILE --ticker {row.ticker} --exchange {row.exchange}"
        fetch = f"import newer prices with `{command} --format csv`"
        if history.provider:
            fetch = (
                f'run `tradeassist prices refresh --portfolio "{self.folio.name}"` (its price provider is '
                f"{history.provider}) or {fetch}"
            )
        return (
            f"{row.ticker} on {row.exchange} ({units_phrase(row.units)}): its last usable close, of "
            f"{long_date(price.as_of)}, is {price.age_business_days} business days old (more than the "
            f"{price.max_age_business_days} allowed), so it is valued at that close and no recommendation "
            f"will trade it; {fetch}."
        )


# --- every account together ---------------------------------------------------------------------


def household(session: Session, *, actor: User, as_of: datetime | None = None) -> Household:
    """Every account ``actor`` may see at ``as_of`` (else now): values, allocations, income."""
    moment = ensure_utc(as_of) if as_of is not None else None
    folios = [p for p in access.accessible_portfolios(session, actor) if p.portfolio_id is not None]
    accounts, notes = [], []
    governed: dict[int, tuple[ApprovedStrategy, list[tuple[str, PortfolioState]]]] = {}
    for folio in folios:
        approved = _governing(session, folio)
        account = _account(session, actor, folio, moment, approved)
        accounts.append(account)
        if approved is None:
            notes.append(
                f"{folio.name} has no approved strategy, so no allocation counts it: add one with "
                f"`tradeassist strategy add --label LABEL --policy FILE --manifesto FILE --portfolio "
                f'"{folio.name}"` and approve it with `tradeassist strategy approve LABEL`.'
            )
            continue
        vid = approved.version.strategy_version_id
        assert vid is not None  # read from the database
        inputs = advice.prepare_inputs(
            session,
            portfolio=folio,
            kind=TaskKind.WEEKLY_REVIEW,
            as_of=moment,
            actor=actor,
            policy=approved.policy,
            strategy_version_id=vid,
        )
        governed.setdefault(vid, (approved, []))[1].append((folio.name, inputs.state))
    allocations = tuple(_allocation(approved, members) for approved, members in governed.values())
    ids = [p.portfolio_id for p in folios if p.portfolio_id is not None]
    return Household(
        as_of=moment,
        accounts=tuple(accounts),
        allocations=allocations,
        income=income_by_tax_year(session, ids, until=moment),
        notes=tuple(notes),
    )


def _allocation(
    approved: ApprovedStrategy, members: Sequence[tuple[str, PortfolioState]]
) -> StrategyAllocation:
    policy = approved.policy
    sleeves = tuple(
        SleeveRow(
            sleeve=row.sleeve,
            target=row.target,
            value_gbp=row.value_gbp,
            weight=float(row.weight),
            drift=float(row.drift),
            breached=row.breached,
        )
        for row in drift_across([state for _, state in members], policy)
    )
    left_out = [
        f"{p.ticker} on {p.exchange} ({units_phrase(p.units)}) in {name}"
        for name, state in members
        for p in state.positions
        if p.units > ZERO and not p.valued
    ]
    note = (
        f"The allocation leaves out what has no price, never counting it as zero: {', '.join(left_out)}."
        if left_out
        else None
    )
    return StrategyAllocation(
        strategy=approved.version.version_label,
        portfolios=tuple(name for name, _ in members),
        sleeves=sleeves,
        bands=policy.drift_bands,
        note=note,
    )


# --- income -------------------------------------------------------------------------------------


def income_by_tax_year(
    session: Session, portfolio_ids: Iterable[int], *, until: datetime | None = None
) -> tuple[IncomeYear, ...]:
    """Dividends and interest of these portfolios per tax year, oldest first (entries at or
    before ``until`` when given). No access check: callers pass the portfolios they checked."""
    ids = sorted(set(portfolio_ids))
    if not ids:
        return ()
    years: dict[str, dict[str, Decimal]] = {}
    for (year, _portfolio), sums in income.totals(
        income.income_by_listing(session, portfolio_ids=ids, until=until)
    ).items():
        found = years.setdefault(year, dict.fromkeys(income.KINDS, ZERO))
        for kind, amount in sums.items():
            found[kind] = CONTEXT.add(found[kind], amount)
    return tuple(
        IncomeYear(year, sums[inc.DIVIDEND], sums[inc.INTEREST]) for year, sums in sorted(years.items())
    )
