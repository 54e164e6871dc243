"""Executing a recommendation: the fills the user made at the broker, posted to the ledger.

REVIEWED -> EXECUTED: the fills become one ``EXECUTION`` ledger batch linked to the
recommendation, in the caller's transaction: if the ledger refuses a fill (selling more than is
held, cash below zero) nothing is changed once the caller rolls back. Every problem with the
fills is named at once, each fill as the user typed it (``fill 2 (VWRP:XLON)``), and a price
ten times off the line's estimate (pence typed as pounds, or the reverse) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from ..core.enums import BatchType, EntryType, TradeAction
from ..core.errors import LedgerError, ValidationError
from ..core.limits import MAX_PRICE
from ..core.money import ZERO, decimal_str, format_gbp, round_cash, to_decimal
from ..core.timeutil import ensure_utc, utcnow
from ..db.models import Portfolio, Recommendation, User
from ..engine import book as bk
from . import audit, governance, ledger
from .recommendation_records import DRAFT, EXECUTED, REVIEWED, lines_of, load, refuse_state, set_status

# A fill whose GBP price per unit is this many times off the line's estimate is a typing
# mistake (pence typed as pounds, or the reverse), not a market move.
PRICE_SANITY_FACTOR = Decimal(10)
_ENTRY_NUMBER = re.compile(r"(?<!ledger )\bentry (\d+)\b")  # a new entry, not a stored one


@dataclass(frozen=True)
class Fill:
    """One execution at the broker, as on the contract note.

    ``price`` is in the listing's quote scale (pence for a GBX listing, dollars for a USD one);
    ``fees_base`` in GBP. A listing quoted in another currency than GBP needs
    ``consideration_base``, the GBP value the broker charged or paid before fees (V1 keeps no
    FX on entries); for a GBP or GBX listing it is units x price, rounded to the penny.
    """

    ticker: str
    exchange: str
    action: TradeAction | str
    units: Decimal | str
    price: Decimal | str
    fees_base: Decimal | str = ZERO
    executed_at: datetime | None = None
    consideration_base: Decimal | str | None = None

    @classmethod
    def parse(cls, text: str, executed_at: datetime | None = None) -> Fill:
        """``TICKER:EXCHANGE:ACTION:UNITS:PRICE:FEES[:CONSIDERATION_GBP]`` (the CLI's ``--fill``)."""
        parts = [part.strip() for part in text.split(":")]
        if len(parts) not in (6, 7) or not all(parts[:6]):
            raise ValidationError(
                f"--fill {text!r}: expected TICKER:EXCHANGE:ACTION:UNITS:PRICE:FEES "
                "(and :CONSIDERATION_GBP for a listing not quoted in GBP or pence)"
            )
        return cls(
            ticker=parts[0],
            exchange=parts[1],
            action=parts[2],
            units=parts[3],
            price=parts[4],
            fees_base=parts[5],
            executed_at=executed_at,
            consideration_base=parts[6] if len(parts) == 7 and parts[6] else None,
        )


# --------------------------------------------------------------------------------------------
# From fills to ledger entries
# --------------------------------------------------------------------------------------------
def _fill_entries(
    session: Session, reco: Recommendation, lines: list[dict[str, Any]], fills: Sequence[Fill], now: datetime
) -> tuple[list[ledger.NewEntry], list[str]]:
    """The ledger entries for ``fills`` in book order, and which fill each one is; every problem
    named at once."""
    listings = ledger.load_listings(session)
    by_key = {(line["ticker"], line["exchange"]): line for line in lines}
    problems: list[str] = []
    entries: list[tuple[datetime, int, ledger.NewEntry, str]] = []
    for index, fill in enumerate(fills, start=1):
        where = f"fill {index} ({fill.ticker}:{fill.exchange})"
        try:
            entry = _fill_entry(fill, by_key, listings, reco, now, where)
        except ValidationError as exc:
            problems.append(str(exc))
            continue
        # At one moment, sells first: their proceeds pay for the buys.
        entries.append((entry.entry_time, 0 if entry.entry_type is EntryType.SELL else 1, entry, where))
    if problems:
        raise ValidationError(
            f"recommendation {reco.recommendation_id}: {len(problems)} fill(s) refused: "
            + "; ".join(problems)
        )
    ordered = sorted(entries, key=lambda item: (item[0], item[1]))
    return [item[2] for item in ordered], [item[3] for item in ordered]


def _fill_action(fill: Fill, line: Mapping[str, Any], where: str) -> TradeAction:
    try:
        action = TradeAction(str(getattr(fill.action, "value", fill.action)).strip().upper())
    except ValueError:
        raise ValidationError(f"{where}: action {fill.action!r} is not BUY or SELL") from None
    if action.value != line["action"]:
        raise ValidationError(
            f"{where}: the recommendation says {line['action']}, the fill says {action.value}"
        )
    return action


def _fill_entry(
    fill: Fill,
    by_key: Mapping[tuple[str, str], dict[str, Any]],
    listings: Mapping[int, ledger.ListingInfo],
    reco: Recommendation,
    now: datetime,
    where: str,
) -> ledger.NewEntry:
    key = (str(fill.ticker).strip().upper(), str(fill.exchange).strip().upper())
    line = by_key.get(key)
    if line is None:
        listed = ", ".join(f"{t}:{e}" for t, e in by_key) or "none"
        raise ValidationError(f"{where}: not a listing of the recommendation (its listings: {listed})")
    action = _fill_action(fill, line, where)
    units = to_decimal(fill.units, what=f"{where}: units")
    price = to_decimal(fill.price, what=f"{where}: price", limit=MAX_PRICE)
    fees = to_decimal(fill.fees_base, what=f"{where}: fees")
    if units <= ZERO or price <= ZERO:
        raise ValidationError(f"{where}: units and price must be positive")
    if fees < ZERO:
        raise ValidationError(f"{where}: fees must not be negative")
    when = ensure_utc(fill.executed_at) if fill.executed_at is not None else now
    info = listings[line["listing_id"]]
    value = _consideration(fill, units, price, info, where)
    _check_price(where, value, units, line, info)
    cash = -(value + fees) if action is TradeAction.BUY else value - fees
    return ledger.NewEntry(
        entry_time=when,
        entry_type=EntryType(action.value),
        cash_amount_base=cash,
        fees_base=fees,
        listing_id=line["listing_id"],
        units=units,
        price=price,
        notes=f"recommendation {reco.recommendation_id}",
    )


def _consideration(
    fill: Fill, units: Decimal, price: Decimal, info: ledger.ListingInfo, where: str
) -> Decimal:
    """The GBP value of the fill before fees: given, or units x price for a GBP or GBX listing."""
    if fill.consideration_base is not None:
        return round_cash(to_decimal(fill.consideration_base, what=f"{where}: consideration"))
    if info.quote.currency == "GBP":
        return round_cash(bk.consideration(units, price, info.quote))
    raise ValidationError(
        f"{where}: the listing is quoted in {info.quote.currency}: give the GBP consideration "
        "the broker charged (TICKER:EXCHANGE:ACTION:UNITS:PRICE:FEES:CONSIDERATION_GBP)"
    )


def _check_price(
    where: str, value: Decimal, units: Decimal, line: Mapping[str, Any], info: ledger.ListingInfo
) -> None:
    """Refuse a price ten times off the line's estimate: pence typed as pounds (or the reverse)."""
    estimated_units, amount = line["estimated_units"], line["amount_base"]
    if not estimated_units or not amount or not value:
        return
    expected = amount / estimated_units
    actual = value / units
    ratio = actual / expected
    if ratio > PRICE_SANITY_FACTOR or ratio * PRICE_SANITY_FACTOR < 1:
        scale = "pence" if info.quote.exponent == 2 else info.quote.currency
        raise ValidationError(
            f"{where}: {format_gbp(actual)} a unit is more than {PRICE_SANITY_FACTOR}x off "
            f"the {format_gbp(expected)} the recommendation estimated; "
            f"the price is in the listing's quote scale ({scale})"
        )


# --------------------------------------------------------------------------------------------
# Posting
# --------------------------------------------------------------------------------------------
def _contribution_hint(reco: Recommendation, portfolio: Portfolio, message: str) -> str:
    """A monthly allocation spends a contribution the ledger may not hold yet."""
    raw = (reco.constraints_report or {}).get("contribution")
    try:
        amount = to_decimal(raw, what="contribution") if raw is not None else ZERO
    except ValidationError:
        return ""
    if amount <= ZERO or "below zero" not in message:
        return ""
    return (
        f" (the recommendation spends a {format_gbp(amount)} contribution: record it in the ledger "
        f"first, e.g. `tradeassist ledger add --portfolio {portfolio.name!r} --type CONTRIBUTION "
        f"--amount {decimal_str(amount)}`)"
    )


def _name_fills(message: str, labels: Sequence[str]) -> str:
    def label(match: re.Match[str]) -> str:
        number = int(match.group(1))
        return labels[number - 1] if 0 < number <= len(labels) else match.group(0)

    return _ENTRY_NUMBER.sub(label, message)


def _require_executable(
    session: Session, reco: Recommendation, portfolio: Portfolio, fills: Sequence[Fill]
) -> None:
    recommendation_id = reco.recommendation_id
    if reco.status is DRAFT:
        raise ValidationError(f"recommendation {recommendation_id} is DRAFT: approve it before executing it")
    refuse_state(reco, "executed", (REVIEWED,))
    assert portfolio.portfolio_id is not None  # read from the database
    governance.require_not_frozen(
        session,
        portfolio.portfolio_id,
        f"execute recommendation {recommendation_id} (trades made anyway belong in the ledger: "
        "`tradeassist ledger add`)",
    )
    if not fills:
        raise ValidationError(f"recommendation {recommendation_id}: executing needs at least one fill")


def _post(
    session: Session,
    actor: User,
    reco: Recommendation,
    portfolio: Portfolio,
    entries: list[ledger.NewEntry],
    labels: Sequence[str],
    now: datetime,
) -> ledger.PostResult:
    """One EXECUTION batch; the ledger's refusal told with the fills as the user typed them."""
    recommendation_id = reco.recommendation_id
    try:
        return ledger.post_entries(
            session,
            actor=actor,
            portfolio=portfolio,
            entries=entries,
            label=f"Execution of recommendation {recommendation_id}",
            batch_type=BatchType.EXECUTION,
            recommendation_id=recommendation_id,
            now=now,
        )
    except LedgerError as exc:
        # The ledger numbers entries in book order; the user knows the fills as typed.
        named = _name_fills(exc.message.removeprefix("refused: "), labels)
        raise LedgerError(
            f"recommendation {recommendation_id}: the ledger refused the fills: {named}"
            + _contribution_hint(reco, portfolio, named)
        ) from None


def execute_recommendation(
    session: Session,
    *,
    actor: User,
    recommendation_id: int,
    fills: Sequence[Fill],
    now: datetime | None = None,
) -> ledger.PostResult:
    """REVIEWED -> EXECUTED: post the fills as one EXECUTION batch linked to the recommendation.

    All in the caller's transaction: a fill the ledger refuses leaves everything unchanged
    once the caller rolls back (nothing is committed here)."""
    reco, portfolio = load(session, actor, recommendation_id, "execute recommendations", lock=True)
    _require_executable(session, reco, portfolio, fills)
    now = ensure_utc(now) if now is not None else utcnow()
    lines = lines_of(session, [recommendation_id])[recommendation_id]
    entries, labels = _fill_entries(session, reco, lines, fills, now)
    result = _post(session, actor, reco, portfolio, entries, labels, now)
    set_status(session, reco, EXECUTED, reco.status_reason)
    audit.record(
        session,
        actor=actor,
        action="RECO_EXECUTED",
        entity_type="recommendation",
        entity_id=recommendation_id,
        details={
            "portfolio": portfolio.name,
            "ledger_batch_id": result.batch_id,
            "fills": len(entries),
            "cash_movement": sum((e.cash_amount_base for e in entries), ZERO),
            "cash_balance": result.cash_balance,
        },
    )
    return result
