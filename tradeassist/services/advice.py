"""From the book of record to a recommendation, and back again.

``prepare_inputs`` reads everything a recommendation depends on (holdings and cash as of the
moment, the latest good price of each listing with its age and source, the FX rates behind
foreign prices, the constituents' sleeves, the freeze state, the approved policy) into the
engine's frozen ``PortfolioState`` and a canonical *input snapshot*: a plain JSON dict whose
SHA-256 is the run's ``input_hash``. ``recommend`` is then pure, and
``recommend_from_snapshot`` recomputes the same recommendation from the snapshot alone, which
is what ``tradeassist runs replay`` (``tradeassist.services.run_history``) compares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, select

from ..core.enums import TaskKind, TradeAction
from ..core.errors import NotFound, ValidationError
from ..core.jsonutil import plain, sha256_of
from ..core.money import ZERO, to_decimal
from ..core.timeutil import ensure_utc, london_date, utcnow
from ..db.models import (
    FxRate,
    InstrumentListing,
    Portfolio,
    PortfolioConstituent,
    User,
)
from ..db.models import (
    Recommendation as RecommendationRow,
)
from ..db.models import (
    RecommendationLine as LineRow,
)
from ..engine import book as bk
from ..engine.model import PortfolioState, Position, Recommendation, state_from_dict, state_to_dict
from ..engine.recommend import recommend as engine_recommend
from ..engine.tax.proposals import TaxContext, apply_tax, context_from_dict, context_to_dict
from ..policy import Policy, parse_stored_policy, policy_sha256, policy_to_dict
from . import governance, ledger, prices
from .access import portfolio_for
from .strategy_versions import governing_strategy
from .tax.proposals import tax_context

SNAPSHOT_SCHEMA = 1


@dataclass(frozen=True)
class RunInputs:
    """What one recommendation is computed from. ``snapshot`` alone is enough to redo it."""

    portfolio_id: int
    portfolio: str
    kind: TaskKind
    as_of: datetime
    strategy_version_id: int
    policy: Policy
    state: PortfolioState
    snapshot: Mapping[str, Any]
    listing_ids: Mapping[tuple[str, str], int]
    tax: TaxContext | None = None  # a general account's: capital gains on the proposed sales

    @property
    def input_hash(self) -> str:
        return sha256_of(self.snapshot)


@dataclass(frozen=True)
class _Priced:
    """The listings the portfolio holds or maps, as engine positions, with the prices and FX
    rates behind them (for the snapshot) and the id of each (ticker, exchange)."""

    listings: Mapping[int, InstrumentListing]
    positions: tuple[Position, ...]
    prices: list[dict[str, Any]]
    fx: list[dict[str, Any]]
    keys: dict[tuple[str, str], int]


def parse_kind(value: TaskKind | str) -> TaskKind:
    try:
        return TaskKind(str(value).upper())
    except ValueError:
        raise ValidationError(
            f"kind {value!r}: expected one of {', '.join(k.value for k in TaskKind)}"
        ) from None


def book_as_of(session: Session, portfolio_id: int, as_of: datetime) -> bk.Book:
    """Cash and holdings at ``as_of``: the snapshots for now (no entry is ever in the future),
    else the ledger replayed up to that moment."""
    if as_of >= utcnow():
        stored = ledger.snapshot_book(session, portfolio_id)
        if stored is not None:
            return stored
    listings = ledger.load_listings(session)
    quotes = {k: v.quote for k, v in listings.items()}
    # load_timeline gives plain tuples in Entry's layout: named here, where fields are read.
    timeline = [
        e for e in map(bk.Entry._make, ledger.load_timeline(session, portfolio_id)) if e.entry_time <= as_of
    ]
    day = london_date(as_of)
    actions = [a for a in ledger.load_actions(session, listings) if a.effective <= day]
    outcome = bk.replay(
        timeline, quotes=quotes, actions=actions, watch={e.corrects for e in timeline if e.corrects}
    )
    return outcome.book


def _fx_used(session: Session, currency: str, on: datetime) -> dict[str, Any] | None:
    rate = session.exec(
        select(FxRate)
        .where(FxRate.base_currency == "GBP", FxRate.quote_currency == currency, FxRate.as_of <= on)
        .order_by(col(FxRate.as_of).desc())
        .limit(1)
    ).first()
    if rate is None:
        return None
    return {"pair": f"GBP{currency}", "rate": rate.rate, "as_of": rate.as_of, "source_id": rate.source_id}


# --------------------------------------------------------------------------------------------
# Preparing the inputs, step by step
# --------------------------------------------------------------------------------------------
def _portfolio(session: Session, portfolio: str | Portfolio, actor: User | None) -> Portfolio:
    """The portfolio itself, or by name (the actor needs access to it)."""
    if isinstance(portfolio, Portfolio):
        return portfolio
    if actor is not None:
        return portfolio_for(session, actor, portfolio, "compute a recommendation")
    found = session.exec(select(Portfolio).where(Portfolio.name == portfolio)).first()
    if found is None:
        raise NotFound(f"no portfolio named {portfolio!r}")
    return found


def contribution_amount(contribution: Decimal | str | None, what: str = "contribution") -> Decimal:
    """A contribution in pounds (none: £0); refused when negative or not a number."""
    amount = to_decimal(contribution, what=what) if contribution not in (None, "") else ZERO
    if amount < ZERO:
        raise ValidationError(f"{what} must not be negative")
    return amount


def _position(
    lst: InstrumentListing,
    mapping: PortfolioConstituent | None,
    holding: bk.Holding | None,
    price: prices.LatestPrice | None,
) -> Position:
    return Position(
        ticker=lst.ticker,
        exchange=lst.exchange,
        # No constituent row: a sleeve no policy targets, so the engine treats the
        # holding as untargeted (the policy's ``untargeted`` says what to do with it).
        sleeve=mapping.sleeve_code if mapping else "UNMAPPED",
        units=holding.units if holding else ZERO,
        price_gbp=price.price_gbp if price else None,
        # A stale price is told apart from a user lock: the engine never trades on it
        # and treats a held listing priced so as unpriced (the policy's ``unpriced``).
        tradeable=bool(mapping and mapping.is_monitored),
        include_in_calcs=bool(mapping.include_in_calcs) if mapping else True,
        price_stale=bool(price is not None and price.is_stale),
    )


def _price_row(lst: InstrumentListing, price: prices.LatestPrice) -> dict[str, Any]:
    return {
        "ticker": lst.ticker,
        "exchange": lst.exchange,
        "price_point_id": price.price_point_id,
        "price_gbp": price.price_gbp,
        "as_of": price.as_of_time,
        "source": price.source,
        "age_business_days": price.age_business_days,
        "is_stale": price.is_stale,
    }


def _listings(session: Session, listing_ids: list[int]) -> dict[int, InstrumentListing]:
    if not listing_ids:
        return {}
    found = session.exec(select(InstrumentListing).where(col(InstrumentListing.listing_id).in_(listing_ids)))
    return {lst.listing_id: lst for lst in found.all() if lst.listing_id is not None}


def _priced(session: Session, portfolio_id: int, book: bk.Book, as_of: datetime, policy: Policy) -> _Priced:
    """Every listing the portfolio maps or holds, by ticker and exchange, priced as of ``as_of``."""
    constituents = {
        c.listing_id: c
        for c in session.exec(
            select(PortfolioConstituent).where(PortfolioConstituent.portfolio_id == portfolio_id)
        ).all()
    }
    listing_ids = sorted(set(constituents) | set(book.holdings))
    listings = _listings(session, listing_ids)
    latest = prices.latest_good_prices(
        session, listing_ids, as_of, max_age_business_days=policy.max_price_age_business_days
    )
    positions: list[Position] = []
    price_rows: list[dict[str, Any]] = []
    fx_rows: list[dict[str, Any]] = []
    keys: dict[tuple[str, str], int] = {}
    for listing_id in sorted(listing_ids, key=lambda i: (listings[i].ticker, listings[i].exchange)):
        lst = listings[listing_id]
        price = latest.get(listing_id)
        positions.append(_position(lst, constituents.get(listing_id), book.holdings.get(listing_id), price))
        keys[(lst.ticker, lst.exchange)] = listing_id
        if price is None:
            continue
        price_rows.append(_price_row(lst, price))
        if lst.trading_currency != "GBP":
            fx = _fx_used(session, lst.trading_currency, price.as_of_time)
            if fx is not None and fx not in fx_rows:
                fx_rows.append(fx)
    return _Priced(listings, tuple(positions), price_rows, fx_rows, keys)


def book_facts(book: bk.Book, priced: _Priced) -> dict[str, Any]:
    """What the snapshot keeps of one portfolio's book and prices beside its engine state (for
    people and audits; the engine reads the state): holdings with their cost, cash, the prices
    and FX rates used."""
    return {
        "holdings": [
            {
                "ticker": priced.listings[i].ticker,
                "exchange": priced.listings[i].exchange,
                "units": h.units,
                "cost_base": h.cost,
            }
            for i, h in sorted(book.holdings.items())
        ],
        "cash": book.cash,
        "prices": priced.prices,
        "fx": priced.fx,
    }


def strategy_facts(strategy_version_id: int | None, policy: Policy) -> dict[str, Any]:
    """The snapshot's ``strategy``: the version and its effective policy, with its hash."""
    return {
        "strategy_version_id": strategy_version_id,
        "policy_sha256": policy_sha256(policy),
        "policy": policy_to_dict(policy),
    }


def _snapshot(
    parameters: dict[str, Any],
    strategy_version_id: int | None,
    policy: Policy,
    read: PortfolioRead,
) -> dict[str, Any]:
    """The canonical input snapshot: plain JSON, enough to recompute the recommendation."""
    snapshot = {
        "schema": SNAPSHOT_SCHEMA,
        "parameters": parameters,
        "strategy": strategy_facts(strategy_version_id, policy),
        "state": state_to_dict(read.state),
        **book_facts(read.book, read.priced),
    }
    if read.tax is not None:
        snapshot["tax"] = context_to_dict(read.tax)
    result: dict[str, Any] = plain(snapshot)
    return result


@dataclass(frozen=True)
class PortfolioRead:
    """One portfolio as of a moment, read for a recommendation: its book, its listings priced,
    the engine's state (with this run's contribution) and, for a general account, the tax
    context of its sales (None for an ISA or SIPP)."""

    portfolio: Portfolio
    book: bk.Book
    priced: _Priced
    state: PortfolioState
    tax: TaxContext | None

    @property
    def listing_ids(self) -> Mapping[tuple[str, str], int]:
        return self.priced.keys


def read_portfolio(
    session: Session, folio: Portfolio, policy: Policy, as_of: datetime, contribution: Decimal
) -> PortfolioRead:
    """Read ``folio`` as of ``as_of`` into the engine's state (what ``prepare_inputs`` and the
    household's inputs both do for each portfolio)."""
    assert folio.portfolio_id is not None  # read from the database
    book = book_as_of(session, folio.portfolio_id, as_of)
    priced = _priced(session, folio.portfolio_id, book, as_of, policy)
    frozen = governance.is_frozen(session, folio.portfolio_id)
    state = PortfolioState(
        cash_gbp=book.cash, positions=priced.positions, contribution_gbp=contribution, frozen=frozen
    )
    tax = tax_context(session, folio, london_date(as_of), [(p.ticker, p.exchange) for p in priced.positions])
    return PortfolioRead(folio, book, priced, state, tax)


def prepare_inputs(
    session: Session,
    *,
    portfolio: str | Portfolio,
    kind: TaskKind | str,
    as_of: datetime | None = None,
    contribution: Decimal | str | None = None,
    actor: User | None = None,
    policy: Policy | None = None,
    strategy_version_id: int | None = None,
) -> RunInputs:
    """Read the portfolio as of ``as_of`` (default now) into the engine's input.

    The policy is the effective policy of the version governing the portfolio
    (``strategy.governing_strategy``); ``policy`` previews a draft policy instead (the
    strategy notebook). ``RunInputs.strategy_version_id`` (and the snapshot's) is the
    governing version, which a run records as ``task_runs.strategy_version_id``.
    """
    kind = parse_kind(kind)
    as_of = ensure_utc(as_of) if as_of is not None else utcnow()
    folio = _portfolio(session, portfolio, actor)
    assert folio.portfolio_id is not None  # read from the database
    if policy is None:
        governing = governing_strategy(session, folio)
        policy, strategy_version_id = governing.policy, governing.version.strategy_version_id
    amount = contribution_amount(contribution)
    read = read_portfolio(session, folio, policy, as_of, amount)
    parameters = {"portfolio": folio.name, "kind": kind.value, "as_of": as_of, "contribution": amount}
    snapshot = _snapshot(parameters, strategy_version_id, policy, read)
    return RunInputs(
        portfolio_id=folio.portfolio_id,
        portfolio=folio.name,
        kind=kind,
        as_of=as_of,
        strategy_version_id=strategy_version_id or 0,
        policy=policy,
        state=read.state,
        snapshot=snapshot,
        listing_ids=read.listing_ids,
        tax=read.tax,
    )


# --------------------------------------------------------------------------------------------
# Recommending, and storing the recommendation
# --------------------------------------------------------------------------------------------
def recommend(inputs: RunInputs) -> Recommendation:
    """The engine's recommendation for these inputs (pure); in a general account, with the
    capital gains of its sales estimated (``engine.tax.proposals``)."""
    recommendation = engine_recommend(inputs.state, inputs.policy, inputs.kind)
    if inputs.tax is None:
        return recommendation
    return apply_tax(recommendation, inputs.tax, london_date(inputs.as_of))


def recommend_from_snapshot(snapshot: Mapping[str, Any]) -> Recommendation:
    """Recompute from a stored input snapshot alone: no database, no clock."""
    if snapshot.get("schema") != SNAPSHOT_SCHEMA:
        raise ValidationError(f"input snapshot schema {snapshot.get('schema')!r} is not {SNAPSHOT_SCHEMA}")
    policy = parse_stored_policy(snapshot["strategy"]["policy"])
    state = state_from_dict(snapshot["state"])
    recommendation = engine_recommend(state, policy, parse_kind(snapshot["parameters"]["kind"]))
    if "tax" not in snapshot:  # an ISA or SIPP, or a snapshot from before tax estimates
        return recommendation
    as_of = london_date(datetime.fromisoformat(snapshot["parameters"]["as_of"]))
    return apply_tax(recommendation, context_from_dict(snapshot["tax"]), as_of)


def store_recommendation(
    session: Session,
    *,
    run_id: int | None,
    portfolio_id: int,
    recommendation: Recommendation,
    listing_ids: Mapping[tuple[str, str], int] | None = None,
) -> RecommendationRow | None:
    """Store a recommendation with its lines (DRAFT). A recommendation without any line
    ("no action") is not stored: the run's output summary says so."""
    if not recommendation.lines:
        return None
    ids = dict(listing_ids or {})
    row = RecommendationRow(
        run_id=run_id,
        portfolio_id=portfolio_id,
        headline=recommendation.headline[:500],
        rationale=plain(recommendation.rationale),
        constraints_report=plain(recommendation.constraints_report),
    )
    session.add(row)
    session.flush()
    assert row.recommendation_id is not None  # flushed
    for line in recommendation.lines:
        listing_id = ids.get((line.ticker, line.exchange))
        if listing_id is None:
            listing_id = ledger_listing_id(session, line.ticker, line.exchange)
        session.add(
            LineRow(
                recommendation_id=row.recommendation_id,
                listing_id=listing_id,
                action=TradeAction(line.action),
                amount_base=line.amount_base,
                estimated_units=line.estimated_units,
                suppressed_by_min_trade=line.suppressed_by_min_trade,
                reason_code=line.reason_code,
            )
        )
    session.flush()
    return row


def ledger_listing_id(session: Session, ticker: str, exchange: str) -> int:
    listing = session.exec(
        select(InstrumentListing).where(
            InstrumentListing.ticker == ticker, InstrumentListing.exchange == exchange
        )
    ).first()
    if listing is None or listing.listing_id is None:
        raise NotFound(f"unknown listing {ticker} on {exchange}")
    return listing.listing_id
