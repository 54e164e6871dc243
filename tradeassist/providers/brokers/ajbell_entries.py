"""Turning AJ Bell rows into ledger entries: trades (a history line with its statement line),
stock movements, cash lines (contributions, dividends, interest, charges, transfers,
withdrawals) and trades known only from the statement. See ``ajbell`` for the rules."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from ...core.enums import EntryType
from ...core.errors import ValidationError
from ...core.frozen import FrozenDict
from ...core.limits import shown
from ...core.money import ZERO, to_decimal
from ...engine.income import match_name
from .ajbell_files import HISTORY_KINDS, TRADE_LINE, CashRow, HistoryRow
from .ajbell_mapping import ListingRef, normalise_description
from .base import ParsedEntry, Problems, convention_problem, derived_price, midnight_utc

_DIVIDEND_LINE = re.compile(r"^(?:Dividend|Div)\b\.?\s*(\d[\d,]*(?:\.\d+)?)?\s*(.*)$", re.IGNORECASE)


@dataclass
class Build:
    """What the parse accumulates: entries with their sort keys, problems, unmapped names."""

    mapping: Mapping[str, ListingRef]
    problems: Problems
    items: list[tuple[tuple[date, int, int], ParsedEntry | None, CashRow | None]] = field(
        default_factory=list
    )
    # normalised description -> (its first spelling, where it occurs)
    unmapped: dict[str, tuple[str, list[tuple[str, int]]]] = field(default_factory=dict)

    def listing(self, description: str, source: str, line: int) -> ListingRef | None:
        key = normalise_description(description)
        ref = self.mapping.get(key)
        if ref is None:
            self.unmapped.setdefault(key, (description, []))[1].append((source, line))
        return ref

    def payer(self, name: str) -> ListingRef | None:
        """The listing a dividend's payer names through the mapping: the description it is,
        else the one listing of every description it begins (AJ Bell cuts payers' names
        short). None when the mapping does not say: a dividend needs no listing, so an
        unmapped payer is not reported."""
        return match_name(name, self.mapping)

    def add(self, key: tuple[date, int, int], entry: ParsedEntry | None, cash: CashRow | None) -> None:
        self.items.append((key, entry, cash))


def _quantity(text: str) -> Decimal | None:
    """The units a statement line names (``Purchase 5 …``), or None if not a number > 0."""
    try:
        units = to_decimal(text, what="quantity")
    except ValidationError:
        return None
    return units if units > ZERO else None


def trade_entry(
    build: Build,
    source: str,
    h: HistoryRow,
    cash: CashRow | None,
    ref: str,
    *,
    flag_uncovered: bool,
) -> ParsedEntry | None:
    entry_type, sign, note = HISTORY_KINDS[h.kind]
    listing = build.listing(h.description, source, h.line)
    amount = h.amount if h.amount is not None else ZERO
    extra: dict[str, str] = {}
    if entry_type is EntryType.TRANSFER:
        fees, cash_amount = ZERO, ZERO
        if "corporate action" in (note or ""):
            extra["corporate_action"] = "receipt" if sign > 0 else "removal"
    elif cash is not None:
        if entry_type is EntryType.BUY:
            fees, cash_amount = cash.payment - amount, -cash.payment
        else:
            fees, cash_amount = amount - cash.receipt, cash.receipt
        extra["cash_ref"] = cash.reference or ""
        extra["cash_line"] = str(cash.line)
        extra["cash_description"] = cash.description
        if cash.settlement:
            extra["settlement_date"] = cash.settlement
        if fees < 0:
            build.problems.add(
                source,
                h.line,
                f"the cash statement's {'payment' if sign > 0 else 'receipt'} on line {cash.line} "
                f"({cash.payment or cash.receipt}) implies negative fees against the amount {amount}",
            )
            return None
    else:
        fees, cash_amount = ZERO, -amount if entry_type is EntryType.BUY else amount
        if flag_uncovered:
            extra["cash_statement"] = "not covered"
    if listing is None:
        return None
    price = derived_price(amount, h.quantity) if amount else None
    # Trades carry unsigned units (the type says which way); stock movements are signed.
    units = -h.quantity if entry_type is EntryType.TRANSFER and sign < 0 else h.quantity
    problem = convention_problem(entry_type, listing.ticker, units, price, fees, cash_amount)
    if problem:
        build.problems.add(source, h.line, problem)
        return None
    return ParsedEntry(
        source, h.line, midnight_utc(h.on), entry_type, cash_amount, fees,
        listing.ticker, listing.exchange, None, h.description, units, price,
        "GBP" if price is not None else None, h.amount, ref, note, FrozenDict(extra),
    )  # fmt: skip


def cash_entry(build: Build, source: str, row: CashRow, ref: str) -> ParsedEntry | None:
    """A statement line that is not a matched trade: contributions, income, charges…"""
    text = row.description
    lowered = text.lower()
    net = row.net
    extra: dict[str, str] = {}
    notes: str | None = text
    if (trade := TRADE_LINE.match(text)) is not None:
        return _statement_trade(build, source, row, ref, trade)
    if (dividend := _DIVIDEND_LINE.match(text)) is not None and lowered.startswith(("dividend", "div ")):
        return _dividend(build, source, row, ref, dividend)
    if "interest" in lowered:
        entry_type = EntryType.INTEREST
    elif "charge" in lowered or re.search(r"\bfees?\b", lowered):
        entry_type = EntryType.FEE
    elif any(word in lowered for word in ("subscription", "contribution", "tax relief")):
        entry_type = EntryType.CONTRIBUTION
    elif "transfer" in lowered:
        entry_type = EntryType.TRANSFER
    elif "withdrawal" in lowered or lowered.startswith("payment to"):
        entry_type = EntryType.WITHDRAWAL
    else:
        build.problems.add(
            source,
            row.line,
            f"description {text!r} is not a cash line this parser knows (a trade, dividend, "
            "interest, charge, subscription/contribution, transfer or withdrawal)",
        )
        return None
    fees = -net if entry_type is EntryType.FEE else ZERO
    problem = convention_problem(entry_type, None, None, None, fees, net)
    if problem:
        build.problems.add(source, row.line, f"{text!r}: {problem}")
        return None
    return ParsedEntry(
        source, row.line, midnight_utc(row.on), entry_type, net, fees,
        external_ref=ref, notes=notes, extra=FrozenDict(extra),
    )  # fmt: skip


def _dividend(build: Build, source: str, row: CashRow, ref: str, line: re.Match[str]) -> ParsedEntry | None:
    """``Dividend N <payer>`` / ``Div N <payer>``: a DIVIDEND of the listing the mapping names for
    the payer, if it names one (else the service tries the registry's instrument names)."""
    held, payer = line.group(1), " ".join(line.group(2).split())
    notes = f"dividend: {payer}" + (f" ({held} units)" if held else "")
    extra = {"dividend_of": payer} | ({"dividend_units": held.replace(",", "")} if held else {})
    listing = build.payer(payer) if payer else None
    problem = convention_problem(EntryType.DIVIDEND, None, None, None, ZERO, row.net)
    if problem:
        build.problems.add(source, row.line, f"{row.description!r}: {problem}")
        return None
    return ParsedEntry(
        source, row.line, midnight_utc(row.on), EntryType.DIVIDEND, row.net, ZERO,
        listing.ticker if listing else None, listing.exchange if listing else None, None,
        payer or None, external_ref=ref, notes=notes, extra=FrozenDict(extra),
    )  # fmt: skip


def _statement_trade(
    build: Build, source: str, row: CashRow, ref: str, trade: re.Match[str]
) -> ParsedEntry | None:
    """A trade known only from the cash statement (no history file given)."""
    side, quantity_text, name = trade.groups()
    units = _quantity(quantity_text)
    if units is None:
        why = f"the quantity {shown(quantity_text)!r} is not a number of units > 0"
        build.problems.add(source, row.line, why)
        return None
    buy = side.lower() == "purchase"
    listing = build.listing(name, source, row.line)
    if listing is None:
        return None
    total = row.payment if buy else row.receipt
    entry_type = EntryType.BUY if buy else EntryType.SELL
    cash_amount = -total if buy else total
    price = derived_price(total, units)
    problem = convention_problem(entry_type, listing.ticker, units, price, ZERO, cash_amount)
    if problem:
        build.problems.add(source, row.line, problem)
        return None
    notes = "from the cash statement alone: the price includes any dealing charge"
    extra = {"settlement_date": row.settlement} if row.settlement else {}
    return ParsedEntry(
        source, row.line, midnight_utc(row.on), entry_type, cash_amount, ZERO,
        listing.ticker, listing.exchange, None, name, units, price, "GBP", None, ref, notes,
        FrozenDict(extra),
    )  # fmt: skip


def match_trades(history: list[HistoryRow], cash: list[CashRow]) -> tuple[dict[int, CashRow], list[CashRow]]:
    """Pair history trades with statement trade lines by (date, side, quantity).

    Returns the statement line matched to each history line (by history line number) and
    the statement trade lines left unmatched. Equal amounts pair first, then file order.
    """
    open_lines: dict[tuple[date, bool, Decimal], list[CashRow]] = defaultdict(list)
    for row in cash:
        if (trade := TRADE_LINE.match(row.description)) is not None:
            buy = trade.group(1).lower() == "purchase"
            quantity = _quantity(trade.group(2))
            if quantity is not None:  # else it matches nothing, and is reported as unmatched
                open_lines[(row.on, buy, quantity)].append(row)
    matched: dict[int, CashRow] = {}
    trades = [h for h in history if h.kind in ("purchase", "sale")]
    for exact in (True, False):
        for h in trades:
            if h.line in matched:
                continue
            candidates = open_lines.get((h.on, h.kind == "purchase", h.quantity), [])
            for row in candidates:
                total = row.payment if h.kind == "purchase" else row.receipt
                if not exact or total == h.amount:
                    matched[h.line] = row
                    candidates.remove(row)
                    break
    leftover = [row for rows in open_lines.values() for row in rows]
    return matched, sorted(leftover, key=lambda r: r.line)
