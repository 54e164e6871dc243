"""Snapshots checked, not trusted.

``cash_snapshots`` and ``holding_snapshots`` are writable by design, so a posting that advances
them (the incremental path, ``timeline``) first checks what it builds on against the ledger:

* the cash, always: the snapshot's balance must equal the sum of the portfolio's
  ``cash_amount_base`` (no corporate action moves cash), summed exactly: by PostgreSQL's
  NUMERIC ``SUM``; on SQLite, where the column is text and ``SUM`` would go through floats, in
  Python over the texts one query hands back;
* the pools the batch takes units out of (a SELL, a TRANSFER out): whether it is refused, and
  the cost a transfer carries into another portfolio, depend on them. They are replayed from
  those listings' entries alone (a pool depends on its own entries and on the corporate actions
  of its instrument, and an ISIN change brings in the old instrument's listings too).

A difference refuses the batch with the figures and the command that repairs the snapshots
(``tradeassist ledger rebuild``). A back-dated batch or a correction replays the whole ledger
and never reads the snapshots. ``verify_snapshots`` (``tradeassist ledger verify``) compares
every snapshot row with a full replay.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from ...core.enums import CorporateActionType
from ...core.errors import LedgerError
from ...core.money import ZERO, decimal_str, format_gbp
from ...db.models import CashSnapshot, Portfolio, User
from ...engine import book as bk
from .. import access
from .model import ENTRIES, E, H, ListingInfo
from .reads import load_listings, load_timeline
from .snapshots import replay_portfolio


@dataclass(frozen=True)
class SnapshotCheck:
    """One snapshot row against a replay of the ledger (``snapshot``: ``cash``, ``holding``, or
    ``ledger`` when the ledger itself does not replay). ``problem`` is None when they agree."""

    portfolio: str
    snapshot: str
    ticker: str | None = None
    exchange: str | None = None
    stored_units: Decimal | None = None
    ledger_units: Decimal | None = None
    stored_cost_base: Decimal | None = None
    ledger_cost_base: Decimal | None = None
    stored_avg_cost_base: Decimal | None = None
    ledger_avg_cost_base: Decimal | None = None
    stored_cash_balance: Decimal | None = None
    ledger_cash_balance: Decimal | None = None
    problem: str | None = None

    @property
    def matches(self) -> bool:
        return self.problem is None

    def as_row(self) -> dict[str, Any]:
        return {**asdict(self), "matches": self.matches}


# --- the ledger's figures ------------------------------------------------------------------


def ledger_cash(session: Session, portfolio_id: int) -> Decimal:
    """The portfolio's cash as its ledger gives it: the exact sum of ``cash_amount_base``."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        total = session.execute(
            select(func.sum(E.cash_amount_base)).where(E.portfolio_id == portfolio_id)
        ).scalar()
        return total if total is not None else ZERO
    # SQLite keeps the exact text; its SUM would convert each to a float. One string of every
    # text costs a third less than a row per entry.
    texts = connection.exec_driver_sql(
        f"SELECT group_concat({E.cash_amount_base.name}, ' ') FROM {ENTRIES.name} "
        f"WHERE {E.portfolio_id.name} = ?",
        (portfolio_id,),
    ).scalar()
    return sum(map(Decimal, texts.split()), ZERO) if texts else ZERO


def _pool_listings(
    listing_ids: Iterable[int], listings: Mapping[int, ListingInfo], actions: Iterable[bk.Action]
) -> set[int]:
    """The listings whose entries decide the pools of ``listing_ids``: every listing of their
    instruments and of any instrument an ISIN change moved into one of them (transitively)."""
    instruments = {listings[i].quote.instrument_id for i in listing_ids}
    changes = [a for a in actions if a.action_type is CorporateActionType.ISIN_CHANGE]
    grown = True
    while grown:
        grown = False
        for action in changes:
            if action.target_instrument_id in instruments and action.instrument_id not in instruments:
                instruments.add(action.instrument_id)
                grown = True
    return {i for i, info in listings.items() if info.quote.instrument_id in instruments}


def ledger_pools(
    session: Session,
    portfolio_id: int,
    listing_ids: Iterable[int],
    listings: Mapping[int, ListingInfo],
    actions: Sequence[bk.Action],
) -> tuple[set[int], bk.Replay]:
    """The pools of ``listing_ids`` replayed from their own entries (and those that feed them
    through ISIN changes): which listings were replayed, and the replay (its cash means nothing:
    the other listings' entries are left out, so it starts with enough never to go negative)."""
    wanted = _pool_listings(listing_ids, listings, actions)
    rows = load_timeline(session, portfolio_id, wanted)
    headroom = sum((abs(r[3]) for r in rows), ZERO)
    quotes = {k: v.quote for k, v in listings.items()}
    start = bk.Book(headroom)
    return wanted, bk.replay(rows, quotes=quotes, actions=actions, start=start)


# --- the messages --------------------------------------------------------------------------


def _money(value: Decimal | None, other: Decimal | None) -> str:
    """£1,234.56, or the exact figure where the penny would hide the difference."""
    if value is None:
        return "none"
    if other is not None and value != other and format_gbp(value) == format_gbp(other):
        return format_gbp(value, exact=True)
    return format_gbp(value)


def _pool(
    units: Decimal | None, cost: Decimal | None, other_cost: Decimal | None, avg: Decimal | None
) -> str:
    if units is None:
        return "none"
    text = f"{decimal_str(units.normalize())} units costing {_money(cost, other_cost)}"
    return text if avg is None else f"{text}, {format_gbp(avg, exact=True)} each"


def _repair(portfolio: str) -> str:
    return f"run `tradeassist ledger rebuild --portfolio {shlex.quote(portfolio)}`"


def cash_problem(portfolio: str, stored: Decimal | None, ledger: Decimal) -> str | None:
    if stored == ledger:
        return None
    return (
        f"the cash snapshot of portfolio {portfolio} ({_money(stored, ledger)}) does not match "
        f"its ledger ({_money(ledger, stored)}): {_repair(portfolio)}"
    )


def holding_problem(
    portfolio: str,
    info: ListingInfo,
    stored: tuple[Decimal, Decimal | None, Decimal | None] | None,
    ledger: bk.Holding | None,
) -> str | None:
    """``stored``: units, cost and average cost as the snapshot row has them (None: no row)."""
    mine = (ledger.units, ledger.cost, ledger.avg_cost) if ledger is not None else None
    if stored == mine:
        return None
    units, cost, avg = stored if stored is not None else (None, None, None)
    theirs = mine or (None, None, None)
    show_avg = stored is not None and mine is not None and stored[:2] == mine[:2]  # only the average differs
    return (
        f"the holding snapshot of {info.ticker} ({info.exchange}) in portfolio {portfolio} "
        f"({_pool(units, cost, theirs[1], avg if show_avg else None)}) does not match its ledger "
        f"({_pool(theirs[0], theirs[1], cost, theirs[2] if show_avg else None)}): {_repair(portfolio)}"
    )


# --- checking what a posting builds on -----------------------------------------------------


def check_start(
    session: Session,
    portfolio_id: int,
    start: bk.Book,
    new: Sequence[bk.Entry],
    listings: Mapping[int, ListingInfo],
    actions: Sequence[bk.Action],
) -> None:
    """Refuse (``LedgerError``) to advance ``start``, the stored snapshots, unless its cash and
    the pools ``new`` takes units out of agree with the ledger."""
    cash = ledger_cash(session, portfolio_id)
    if cash != start.cash:
        raise LedgerError(cash_problem(_name(session, portfolio_id), start.cash, cash))
    drawn = {
        e.listing_id
        for e in new
        if e.listing_id is not None
        and e.units is not None
        and (e.entry_type is bk.SELL or (e.entry_type is bk.TRANSFER and e.units < ZERO))
    }
    if not drawn:
        return
    replayed, outcome = ledger_pools(session, portfolio_id, drawn, listings, actions)
    if outcome.issues:
        issue = outcome.issues[0]
        name = _name(session, portfolio_id)
        raise LedgerError(f"the ledger of {name!r} does not replay: entry {issue.key}: {issue.reason}")
    for listing_id in sorted(replayed):
        held, ours = start.holdings.get(listing_id), outcome.book.holdings.get(listing_id)
        if held != ours:
            stored = (held.units, held.cost, held.avg_cost) if held is not None else None
            name = _name(session, portfolio_id)
            raise LedgerError(holding_problem(name, listings[listing_id], stored, ours))


def _name(session: Session, portfolio_id: int) -> str:
    folio = session.get(Portfolio, portfolio_id)
    return folio.name if folio is not None else str(portfolio_id)


# --- ledger verify -------------------------------------------------------------------------


def verify_snapshots(
    session: Session, *, actor: User, portfolio: str | Portfolio | None = None
) -> list[SnapshotCheck]:
    """Every snapshot row of ``portfolio`` (default: every portfolio ``actor`` may see) against a
    replay of its ledger: one check per cash row and per holding either side has."""
    if portfolio is not None:
        folios = [access.portfolio_for(session, actor, portfolio, "verify snapshots")]
    else:
        folios = access.accessible_portfolios(session, actor)
    listings = load_listings(session)
    checks: list[SnapshotCheck] = []
    for folio in folios:
        assert folio.portfolio_id is not None
        checks += _verify_portfolio(session, folio.portfolio_id, folio.name, listings)
    return checks


def _verify_portfolio(
    session: Session, portfolio_id: int, name: str, listings: Mapping[int, ListingInfo]
) -> list[SnapshotCheck]:
    outcome, _count = replay_portfolio(session, portfolio_id)
    if outcome.issues:
        issue = outcome.issues[0]
        reason = f"the ledger of portfolio {name} does not replay: entry {issue.key}: {issue.reason}"
        return [SnapshotCheck(name, "ledger", problem=reason)]
    book = outcome.book
    stored_cash = session.execute(
        select(col(CashSnapshot.cash_balance)).where(col(CashSnapshot.portfolio_id) == portfolio_id)
    ).scalar()
    checks = [
        SnapshotCheck(
            name,
            "cash",
            stored_cash_balance=stored_cash,
            ledger_cash_balance=book.cash,
            problem=cash_problem(name, stored_cash, book.cash),
        )
    ]
    stored = {
        listing_id: (units, cost, avg)
        for listing_id, units, avg, cost in session.execute(
            select(H.listing_id, H.units, H.avg_cost_base, H.cost_base).where(H.portfolio_id == portfolio_id)
        )
    }
    for listing_id in sorted(set(stored) | set(book.holdings), key=lambda i: (listings[i].ticker, i)):
        info, row, ours = listings[listing_id], stored.get(listing_id), book.holdings.get(listing_id)
        checks.append(
            SnapshotCheck(
                name,
                "holding",
                info.ticker,
                info.exchange,
                stored_units=row[0] if row else None,
                ledger_units=ours.units if ours else None,
                stored_cost_base=row[1] if row else None,
                ledger_cost_base=ours.cost if ours else None,
                stored_avg_cost_base=row[2] if row else None,
                ledger_avg_cost_base=ours.avg_cost if ours else None,
                problem=holding_problem(name, info, row, ours),
            )
        )
    return checks
