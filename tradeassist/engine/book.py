"""The book of record, computed: ledger entries and corporate actions applied to holdings and cash.

Pure: plain values in, plain values out; no database, no clock (``now`` is passed in).
The ledger service validates and appends with it, and the rebuild replays with it, so the
incremental snapshots and the rebuilt ones come from the same code and are equal.

Conventions (``docs/ledger.md`` explains them for users):

* ``price`` is in the listing's quote currency and scale, as on the contract note (pence
  for a GBX listing). ``consideration`` = units × price, scaled to the major unit with
  ``parse_quote_unit`` (``scaleb(-2)`` for pence).
* ``fees`` ≥ 0; ``cash`` is the signed GBP movement: BUY −(consideration + fees), SELL
  +(consideration − fees), CONTRIBUTION, INTEREST and DIVIDEND > 0, WITHDRAWAL < 0, FEE = −fees.
  A DIVIDEND names the listing that paid it when that is known, and moves cash alone.
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
* An entry and its reversal (an entry that corrects it and is its exact negation) are left
  out of the replay together (``cancelled_pairs``): their net effect is nothing, so the book
  is the book of the ledger without them, wherever the reversal sorts among the entries of
  its instant and whatever was posted between them. The ledger's replays always hold both
  (a reversal is dated at its original and names the same listing); a reversal replayed
  without its original would be applied as an ordinary entry.
* Corporate actions take effect at the start of their effective date in Europe/London, before
  any entry at that instant: SPLIT and MERGE multiply the units of every listing of the
  instrument by num/den and keep the cost; ISIN_CHANGE moves units (× num/den if given) and
  cost to the new instrument's listing.
* Refused (an ``Issue`` naming the entry): a SELL or TRANSFER out of more units than held;
  cash below zero after any entry (``CASH_BELOW_ZERO``). Money in a reason is
  ``core.money.format_gbp`` (``-£80.00``; exact where finer than the penny).
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal
from operator import itemgetter

from ..core.enums import CorporateActionType
from ..core.frozen import FrozenDict
from ..core.money import CONTEXT, ZERO, format_gbp, round_cash
from .book_checks import check_entries, entry_problem, is_reversal
from .book_types import (
    AVG_COST_QUANTUM,
    BUY,
    CASH_ONLY,
    CONTRIBUTION,
    DIVIDEND,
    EMPTY_BOOK,
    FEE,
    INTEREST,
    SELL,
    TRANSFER,
    UNITS_QUANTUM,
    WITHDRAWAL,
    Action,
    Book,
    Effect,
    Entry,
    Holding,
    Issue,
    Quote,
    Replay,
    Row,
    action_instant,
    avg_cost,
    consideration,
)

# --- ordering ---------------------------------------------------------------------------


def merge_timeline(existing: Iterable[Row], new: Iterable[Row]) -> Iterator[Row]:
    """Existing entries (already in book order) merged with new ones by time; on equal times
    the existing come first, as their smaller ids put them in the rebuild."""
    ordered_new = sorted(new, key=_time_of)  # stable: a batch keeps its own order on ties
    return heapq.merge(existing, ordered_new, key=_time_of)


_time_of = itemgetter(1)  # entry_time
_CORRECTS = Entry._fields.index("corrects")

# The start of the reason an entry is refused for when cash would go below zero after it.
CASH_BELOW_ZERO = "cash would go below zero"
# The end of the reason a SELL or TRANSFER out of more units than held is refused for.
UNITS_NOT_HELD = "are held then"


def cancelled_pairs(entries: Collection[Row]) -> frozenset[int]:
    """The keys of every entry of ``entries`` that another of them reverses exactly, and of
    those reversals: the pairs the replay leaves out.

    A reversal is an entry whose ``corrects`` names an entry of ``entries`` and which is its
    exact negation (``is_reversal``). Each entry pairs with one reversal at most (the first in
    the order given), and an entry already paired (as an original or as a reversal) pairs with
    nothing else; the ledger refuses a second reversal, and the reversal of a reversal, anyway.
    """
    correcting = [e for e in entries if e[_CORRECTS] is not None]
    if not correcting:
        return frozenset()
    targets = {e[_CORRECTS] for e in correcting}
    originals = {e[0]: e for e in entries if e[0] in targets}
    cancelled: set[int] = set()
    for entry in correcting:
        original = originals.get(entry[_CORRECTS])
        if original is None or original[0] in cancelled or entry[0] in cancelled:
            continue
        if is_reversal(entry, original):
            cancelled.add(original[0])
            cancelled.add(entry[0])
    return frozenset(cancelled)


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
    Every entry an exact reversal among ``entries`` undoes is left out with that reversal
    (``cancelled_pairs``), so the result is the replay of the other entries alone. Stops at
    the first entry that cannot stand (the issue names it): what follows depends on it.
    ``track``: keys whose cash afterwards is wanted (statement balances). ``watch``: keys
    whose effect on a pool is wanted (transfers between portfolios). Actions after the last
    entry are applied too unless told otherwise.
    """
    rows = entries if isinstance(entries, Sequence) else list(entries)
    cancelled = cancelled_pairs(rows)
    if cancelled:
        rows = [e for e in rows if e[0] not in cancelled]
    cash = start.cash
    pools: dict[int, list[Decimal]] = {k: [h.units, h.cost] for k, h in start.holdings.items()}
    cash_after: dict[int, Decimal] = {}
    effects: dict[int, Effect] = {}
    pending = sorted(actions, key=lambda a: (a.effective, a.key))
    next_instant = action_instant(pending[0].effective) if pending else None
    position = 0
    issue: Issue | None = None
    try:
        for entry in rows:
            key, when, kind, amount, _, listing_id, units, _, _, _, _ = entry
            if next_instant is not None and when >= next_instant:
                position, next_instant = _apply_due(pending, position, when, pools, quotes)
            cash += amount
            if kind in CASH_ONLY or (kind is TRANSFER and units is None):
                if key in watch:
                    effects[key] = Effect(None, ZERO, ZERO, entry)
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
                raise _Stop(Issue(key, f"{CASH_BELOW_ZERO}: {format_gbp(cash, exact=True)} after this entry"))
            if key in track:
                cash_after[key] = cash
    except _Stop as stop:
        issue = stop.issue
    if issue is None and apply_remaining_actions:
        for action in pending[position:]:
            _apply_action(action, pools, quotes)
    return _result(cash, pools, issue, cash_after, effects)


def _apply_due(
    pending: Sequence[Action],
    position: int,
    when: datetime,
    pools: dict[int, list[Decimal]],
    quotes: Mapping[int, Quote],
) -> tuple[int, datetime | None]:
    """Apply the pending actions due by ``when`` (from ``position``); the next one to apply
    and the instant it takes effect (None when none is left)."""
    while position < len(pending) and action_instant(pending[position].effective) <= when:
        _apply_action(pending[position], pools, quotes)
        position += 1
    return position, action_instant(pending[position].effective) if position < len(pending) else None


def _result(
    cash: Decimal,
    pools: dict[int, list[Decimal]],
    issue: Issue | None,
    cash_after: dict[int, Decimal],
    effects: dict[int, Effect],
) -> Replay:
    """The replay's frozen result: the book (holdings with units), its issue, what was asked."""
    holdings = {k: Holding(p[0], p[1]) for k, p in pools.items() if p[0]}
    return Replay(
        Book(cash, FrozenDict(holdings)),
        () if issue is None else (issue,),
        FrozenDict(cash_after),
        FrozenDict(effects),
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
            raise _Stop(Issue(key, f"{verb} {out} units but only {held} {UNITS_NOT_HELD}"))
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


_UNITS_EXPONENT = int(UNITS_QUANTUM.as_tuple().exponent)


def _scaled_units(units: Decimal, num: Decimal, den: Decimal) -> Decimal:
    value = CONTEXT.divide(CONTEXT.multiply(units, num), den)
    exponent = value.as_tuple().exponent  # an int: the value is finite
    if isinstance(exponent, int) and exponent < _UNITS_EXPONENT:
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
    "AVG_COST_QUANTUM",
    "BUY",
    "CASH_BELOW_ZERO",
    "CASH_ONLY",
    "CONTRIBUTION",
    "DIVIDEND",
    "EMPTY_BOOK",
    "FEE",
    "INTEREST",
    "SELL",
    "TRANSFER",
    "UNITS_NOT_HELD",
    "UNITS_QUANTUM",
    "WITHDRAWAL",
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
    "cancelled_pairs",
    "check_entries",
    "consideration",
    "entry_problem",
    "is_reversal",
    "merge_timeline",
    "replay",
    "split_adjusted",
    "split_factor",
]
