"""The book of record, computed: ledger entries and corporate actions applied to holdings and cash.

Pure: plain values in, plain values out; no database, no clock (``now`` is passed in).
The ledger service validates and appends with it, and the rebuild replays with it, so the
incremental snapshots and the rebuilt ones come from the same code and are equal.

Conventions (``docs/ledger.md`` explains them for users):

* ``price`` is in the listing's quote currency and scale, as on the contract note (pence
  for a GBX listing). ``consideration`` = units × price, scaled to the major unit with
  ``parse_quote_unit`` (``scaleb(-2)`` for pence).
* ``fees`` ≥ 0; ``cash`` is the signed GBP movement: BUY −(consideration + fees), SELL
  +(consideration − fees), CONTRIBUTION and INTEREST > 0, WITHDRAWAL < 0, FEE = −fees.
  For a GBP-quoted BUY or SELL the consideration must agree with cash and fees to within
  £0.01 (brokers round it to the penny). For a listing quoted in another currency the GBP
  consideration is the broker's (cash ± fees), since V1 keeps no FX on entries.
* Section 104 pool per listing: ``cost`` is the GBP pool including fees. A BUY adds what it
  paid (−cash = consideration + fees); a SELL or TRANSFER out removes cost in proportion to
  the units (rounded to the penny, half-even; all of it when the last unit goes); a TRANSFER in
  adds the cost it carries (``cost``; else what the TRANSFER out named by ``cost_from``
  removed; else units × price; else nothing). ``avg_cost`` =
  cost / units, to 10 places.
* TRANSFER moves units alone (signed: + in, − out; no cash, no fees) or cash alone (signed).
* A reversal (an entry that corrects another and is its exact negation) undoes exactly what
  the corrected entry did to units and cost; its cash is the negated cash.
* Corporate actions take effect at the start of their effective date in Europe/London, before
  any entry at that instant: SPLIT and MERGE multiply the units of every listing of the
  instrument by num/den and keep the cost; ISIN_CHANGE moves units (× num/den if given) and
  cost to the new instrument's listing.
* Refused (an ``Issue`` naming the entry): a SELL or TRANSFER out of more units than held;
  cash below zero after any entry.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from operator import itemgetter
from types import MappingProxyType
from typing import NamedTuple

from ..core.enums import CorporateActionType, EntryType
from ..core.money import CONTEXT, PENNY, ZERO, round_cash
from ..core.timeutil import LONDON

AVG_COST_QUANTUM = Decimal("1E-10")
UNITS_QUANTUM = Decimal("1E-10")  # a split whose units do not terminate is rounded down to this

BUY, SELL, TRANSFER, FEE = EntryType.BUY, EntryType.SELL, EntryType.TRANSFER, EntryType.FEE
CONTRIBUTION, WITHDRAWAL, INTEREST = EntryType.CONTRIBUTION, EntryType.WITHDRAWAL, EntryType.INTEREST
CASH_ONLY = frozenset({CONTRIBUTION, WITHDRAWAL, FEE, INTEREST})


class Quote(NamedTuple):
    """What the book needs of a listing: its instrument, currency and quote scale exponent."""

    instrument_id: int
    currency: str  # the trading currency (GBP for GBX listings)
    exponent: int  # powers of ten below the major unit: 2 for GBX, 0 for GBP


class Entry(NamedTuple):
    """One ledger entry. ``key`` identifies it in issues and results: the ledger_entry_id of a
    stored entry, any other distinct int (the service uses negatives) for a new one."""

    key: int
    entry_time: datetime
    entry_type: EntryType
    cash: Decimal
    fees: Decimal = ZERO
    listing_id: int | None = None
    units: Decimal | None = None
    price: Decimal | None = None
    cost: Decimal | None = None  # TRANSFER in: the pooled GBP cost the units bring
    corrects: int | None = None  # key of the entry this one corrects
    cost_from: int | None = None  # TRANSFER in without a cost: the key of the TRANSFER out
    # (earlier in the same replay) whose removed cost it carries: a reorganisation's new shares


# An entry as the replay reads it: an ``Entry`` or a plain tuple in the same field order.
Row = tuple  # type: ignore[type-arg]


class Action(NamedTuple):
    """A corporate action, with the listing an ISIN change moves holdings to."""

    key: int
    effective: date
    action_type: CorporateActionType
    instrument_id: int
    ratio_num: Decimal | None = None
    ratio_den: Decimal | None = None
    target_listing_id: int | None = None
    target_instrument_id: int | None = None


class Holding(NamedTuple):
    units: Decimal
    cost: Decimal  # Section 104 pool, GBP, fees included

    @property
    def avg_cost(self) -> Decimal | None:
        return avg_cost(self.units, self.cost)


class Issue(NamedTuple):
    """Why the entry with ``key`` cannot stand (frozen; the service maps keys to file lines)."""

    key: int
    reason: str


class Effect(NamedTuple):
    """What an entry did to one listing's pool: a reversal undoes exactly this."""

    listing_id: int | None
    units: Decimal
    cost: Decimal
    entry: Row


@dataclass(frozen=True)
class Book:
    """Cash and the holdings with units ≠ 0, by listing id."""

    cash: Decimal = ZERO
    holdings: Mapping[int, Holding] = field(default_factory=lambda: MappingProxyType({}))


EMPTY_BOOK = Book()


@dataclass(frozen=True)
class Replay:
    book: Book
    issues: tuple[Issue, ...]
    cash_after: Mapping[int, Decimal]  # for the keys asked for in ``track``
    effects: Mapping[int, Effect]  # for the keys asked for in ``watch``


def avg_cost(units: Decimal, cost: Decimal) -> Decimal | None:
    if not units:
        return None
    return CONTEXT.divide(cost, units).quantize(AVG_COST_QUANTUM, rounding=ROUND_HALF_EVEN, context=CONTEXT)


def action_instant(effective: date) -> datetime:
    """The start of ``effective`` in Europe/London, as an aware datetime."""
    return datetime.combine(effective, time(0), tzinfo=LONDON)


def consideration(units: Decimal, price: Decimal, quote: Quote) -> Decimal:
    """units × price in the listing's major currency unit (pounds for a GBX listing)."""
    value = units * price
    return value.scaleb(-quote.exponent) if quote.exponent else value


# --- static checks: one entry on its own ------------------------------------------------


def entry_problem(entry: Entry, quote: Quote | None, now: datetime) -> str | None:
    """Why ``entry`` breaks the ledger's conventions on its own, or None.

    ``quote`` is the listing's (None when the entry names none or an unknown one).
    """
    kind, cash, fees, units, price = entry.entry_type, entry.cash, entry.fees, entry.units, entry.price
    if entry.entry_time > now:
        return f"dated in the future ({entry.entry_time.isoformat()})"
    if fees < ZERO:
        return f"fees_base {fees} must not be negative"
    if kind is BUY or kind is SELL:
        if entry.listing_id is None:
            return f"a {kind} needs a listing"
        if quote is None:
            return f"a {kind} names an unknown listing (id {entry.listing_id})"
        if units is None or units <= ZERO:
            return f"a {kind} needs units > 0, got {units}"
        if price is None or price <= ZERO:
            return f"a {kind} needs a price > 0, got {price}"
        if entry.cost is not None:
            return f"a {kind} carries no transfer cost"
        # money paid for the units (BUY) or received for them (SELL), before fees
        paid = -cash - fees if kind is BUY else cash + fees
        if quote.currency == "GBP":
            value = consideration(units, price, quote)
            if abs(value - paid) > PENNY:
                sign = "−(consideration + fees)" if kind is BUY else "consideration − fees"
                return (
                    f"units × price = £{value} but cash {cash} and fees {fees} imply a consideration of "
                    f"£{paid} (cash must be {sign}, to within £0.01)"
                )
        elif paid < ZERO:
            return f"a {kind}'s cash {cash} and fees {fees} imply a negative consideration"
        return None
    if kind is TRANSFER:
        if fees:
            return f"a TRANSFER has no fees, got {fees}"
        if units is not None:
            if entry.listing_id is None or quote is None:
                return "a TRANSFER of units needs a known listing"
            if not units:
                return "a TRANSFER of units needs units ≠ 0 (+ in, − out)"
            if cash:
                return f"a TRANSFER of units moves no cash, got {cash}"
            if price is not None and price <= ZERO:
                return f"a TRANSFER's price must be > 0, got {price}"
            if entry.cost is not None and (entry.cost < ZERO or units < ZERO):
                return "a TRANSFER's cost is for units coming in, and must not be negative"
            return None
        if entry.listing_id is not None or price is not None or entry.cost is not None:
            return "a cash TRANSFER has no listing, price or cost"
        return "a cash TRANSFER needs a non-zero amount" if not cash else None
    if entry.listing_id is not None or units is not None or price is not None or entry.cost is not None:
        return f"a {kind} is cash only: no listing, units or price"
    if kind is FEE:
        if fees <= ZERO or cash != -fees:
            return f"a FEE needs fees_base > 0 and cash_amount_base = −fees_base, got {fees} and {cash}"
        return None
    if fees:
        return f"a {kind} has no fees (record them as a FEE), got {fees}"
    if kind is WITHDRAWAL:
        return None if cash < ZERO else f"a WITHDRAWAL's cash must be negative, got {cash}"
    return None if cash > ZERO else f"a {kind}'s cash must be positive, got {cash}"


def check_entries(entries: Iterable[Entry], quotes: Mapping[int, Quote], now: datetime) -> list[Issue]:
    """Every static problem of ``entries`` (all of them, not just the first)."""
    issues = []
    get = quotes.get
    for entry in entries:
        quote = get(entry.listing_id) if entry.listing_id is not None else None
        problem = entry_problem(entry, quote, now)
        if problem is not None:
            issues.append(Issue(entry.key, problem))
    return issues


def is_reversal(entry: Row, original: Row) -> bool:
    """Whether ``entry`` is the exact negation of ``original`` (what a reversal must be)."""
    _, _, kind, cash, fees, listing_id, units, price, *_ = entry
    _, _, kind0, cash0, fees0, listing0, units0, price0, *_ = original
    return (
        kind is kind0
        and listing_id == listing0
        and cash == -cash0
        and fees == -fees0
        and (None if units is None else -units) == units0
        and price == price0
    )


# --- ordering ---------------------------------------------------------------------------


def merge_timeline(existing: Iterable[Row], new: Iterable[Row]) -> Iterator[Row]:
    """Existing entries (already in book order) merged with new ones by time; on equal times
    the existing come first, as their smaller ids put them in the rebuild."""
    ordered_new = sorted(new, key=_time_of)  # stable: a batch keeps its own order on ties
    return heapq.merge(existing, ordered_new, key=_time_of)


_time_of = itemgetter(1)  # entry_time


# --- the replay -------------------------------------------------------------------------


class _Stop(Exception):
    def __init__(self, issue: Issue) -> None:
        self.issue = issue


def replay(
    entries: Iterable[Row],
    *,
    quotes: Mapping[int, Quote],
    actions: Sequence[Action] = (),
    start: Book = EMPTY_BOOK,
    track: frozenset[int] | set[int] = frozenset(),
    watch: frozenset[int] | set[int] = frozenset(),
    apply_remaining_actions: bool = True,
) -> Replay:
    """Apply ``entries`` (in book order) and ``actions`` (any order) to ``start``.

    Entries are ``Entry`` values or plain tuples in its field order (``Row``): a rebuild
    builds a million of them, and a tuple display costs a third of a NamedTuple's constructor.
    Stops at the first entry that cannot stand (the issue names it): what follows depends on
    it. ``track``: keys whose cash afterwards is wanted (statement balances). ``watch``: keys
    whose effect on a pool is wanted (entries that reversals undo, transfers between
    portfolios). Actions after the last entry are applied too unless told otherwise.
    """
    cash = start.cash
    pools: dict[int, list[Decimal]] = {k: [h.units, h.cost] for k, h in start.holdings.items()}
    cash_after: dict[int, Decimal] = {}
    effects: dict[int, Effect] = {}
    pending = sorted(actions, key=lambda a: (a.effective, a.key))
    next_instant = action_instant(pending[0].effective) if pending else None
    position = 0
    issue: Issue | None = None
    try:
        for entry in entries:
            key, when, kind, amount, _, listing_id, units, _, _, corrects, _ = entry
            if next_instant is not None and when >= next_instant:
                while position < len(pending) and action_instant(pending[position].effective) <= when:
                    _apply_action(pending[position], pools, quotes)
                    position += 1
                next_instant = (
                    action_instant(pending[position].effective) if position < len(pending) else None
                )
            cash += amount
            if kind in CASH_ONLY or (kind is TRANSFER and units is None):
                if key in watch:
                    effects[key] = Effect(None, ZERO, ZERO, entry)
            elif corrects in effects and _undo(entry, effects, pools):
                pass  # a reversal: undone exactly
            elif kind is BUY:
                pool = pools.get(listing_id)
                if pool is None:
                    pool = pools[listing_id] = [ZERO, ZERO]
                pool[0] += units
                pool[1] -= amount
                if key in watch:
                    effects[key] = Effect(listing_id, units, -amount, entry)
            else:  # SELL, or a TRANSFER of units
                _move(entry, kind is SELL, pools, quotes, effects, watch)
            if cash < ZERO:
                raise _Stop(Issue(key, f"cash would go below zero: £{cash} after this entry"))
            if key in track:
                cash_after[key] = cash
    except _Stop as stop:
        issue = stop.issue
    if issue is None and apply_remaining_actions:
        for action in pending[position:]:
            _apply_action(action, pools, quotes)
    holdings = {k: Holding(p[0], p[1]) for k, p in pools.items() if p[0]}
    return Replay(
        Book(cash, MappingProxyType(holdings)),
        () if issue is None else (issue,),
        MappingProxyType(cash_after),
        MappingProxyType(effects),
    )


def _move(
    entry: Row,
    sale: bool,
    pools: dict[int, list[Decimal]],
    quotes: Mapping[int, Quote],
    effects: dict[int, Effect],
    watch: frozenset[int] | set[int],
) -> None:
    """A SELL or a TRANSFER of units: out removes cost in proportion, in adds what it brings."""
    key, listing_id, units = entry[0], entry[5], entry[6]
    out = units if sale else -units
    pool = pools.get(listing_id)
    if out > ZERO:
        held = pool[0] if pool is not None else ZERO
        if out > held:
            verb = "sells" if sale else "transfers out"
            raise _Stop(Issue(key, f"{verb} {out} units but only {held} are held then"))
        assert pool is not None
        removed = pool[1] if out == held else round_cash(CONTEXT.divide(CONTEXT.multiply(pool[1], out), held))
        pool[0] -= out
        pool[1] -= removed
        if not pool[0]:
            del pools[listing_id]
        if key in watch:
            effects[key] = Effect(listing_id, -out, -removed, entry)
        return
    added = _transfer_cost(entry, quotes, effects)
    if pool is None:
        pool = pools[listing_id] = [ZERO, ZERO]
    pool[0] += units
    pool[1] += added
    if key in watch:
        effects[key] = Effect(listing_id, units, added, entry)


def _transfer_cost(entry: Row, quotes: Mapping[int, Quote], effects: Mapping[int, Effect]) -> Decimal:
    key, listing_id, units, price, cost, cost_from = (
        entry[0],
        entry[5],
        entry[6],
        entry[7],
        entry[8],
        entry[10],
    )
    if cost is not None:
        return cost
    if cost_from is not None:
        source = effects.get(cost_from)
        if source is None or source.units >= ZERO:
            raise _Stop(Issue(key, f"carries the cost of entry {cost_from}, not a transfer out before it"))
        return -source.cost
    if price is not None:
        return round_cash(consideration(abs(units), price, quotes[listing_id]))
    return ZERO


def _undo(entry: Row, effects: dict[int, Effect], pools: dict[int, list[Decimal]]) -> bool:
    """Apply ``entry`` as the reversal of the entry it corrects, if it is one; else False."""
    key, corrects = entry[0], entry[9]
    effect = effects[corrects]
    if not is_reversal(entry, effect.entry):
        return False
    if effect.listing_id is None:
        return True
    pool = pools.get(effect.listing_id)
    units, cost = (pool[0], pool[1]) if pool is not None else (ZERO, ZERO)
    units, cost = units - effect.units, cost - effect.cost
    if units < ZERO or cost < ZERO or (not units and cost):
        raise _Stop(
            Issue(
                key,
                f"reversing entry {corrects} would leave {units} units costing £{cost}: "
                "reverse the later entries on this listing first",
            )
        )
    if units:
        pools[effect.listing_id] = [units, cost]
    else:
        pools.pop(effect.listing_id, None)
    return True


def _scaled_units(units: Decimal, num: Decimal, den: Decimal) -> Decimal:
    value = CONTEXT.divide(CONTEXT.multiply(units, num), den)
    if value.as_tuple().exponent < UNITS_QUANTUM.as_tuple().exponent:  # type: ignore[operator]
        value = value.quantize(UNITS_QUANTUM, rounding=ROUND_DOWN, context=CONTEXT)
    return value


def _apply_action(action: Action, pools: dict[int, list[Decimal]], quotes: Mapping[int, Quote]) -> None:
    num = action.ratio_num if action.ratio_num is not None else Decimal(1)
    den = action.ratio_den if action.ratio_den is not None else Decimal(1)
    affected = [k for k in pools if k in quotes and quotes[k].instrument_id == action.instrument_id]
    for listing_id in sorted(affected):
        units, cost = pools[listing_id]
        new_units = _scaled_units(units, num, den)
        if action.action_type is CorporateActionType.ISIN_CHANGE:
            del pools[listing_id]
            if action.target_listing_id is None:
                continue
            target = pools.setdefault(action.target_listing_id, [ZERO, ZERO])
            target[0] += new_units
            target[1] += cost
        elif new_units:
            pools[listing_id] = [new_units, cost]
        else:
            del pools[listing_id]


# --- split-adjusted prices --------------------------------------------------------------


def split_factor(actions: Iterable[Action], instrument_id: int, on: date) -> Decimal:
    """What a price on ``on`` is multiplied by to compare with today's units: den/num of every
    SPLIT or MERGE of the instrument effective after ``on`` (1 when there is none)."""
    factor = Decimal(1)
    for action in actions:
        if (
            action.instrument_id == instrument_id
            and action.action_type in (CorporateActionType.SPLIT, CorporateActionType.MERGE)
            and action.effective > on
            and action.ratio_num
            and action.ratio_den
        ):
            factor = CONTEXT.divide(CONTEXT.multiply(factor, action.ratio_den), action.ratio_num)
    return factor


def split_adjusted(
    prices: Iterable[tuple[date, Decimal]], actions: Sequence[Action], instrument_id: int
) -> list[tuple[date, Decimal]]:
    """A price series on today's unit basis (for charts): earlier prices divided by later splits."""
    relevant = [a for a in actions if a.instrument_id == instrument_id]
    return [
        (day, CONTEXT.multiply(price, split_factor(relevant, instrument_id, day))) for day, price in prices
    ]


__all__ = [
    "EMPTY_BOOK",
    "Action",
    "Book",
    "Effect",
    "Entry",
    "Holding",
    "Issue",
    "Quote",
    "Replay",
    "Row",
    "action_instant",
    "avg_cost",
    "check_entries",
    "consideration",
    "entry_problem",
    "is_reversal",
    "merge_timeline",
    "replay",
    "split_adjusted",
    "split_factor",
]
