"""Validating a batch before the timeline: each entry's types and listing, its reference
against the batch and the ledger, and its own rules (signs, consideration, corrections).

Each stage gathers every problem it finds into ``Problems`` and raises them together, so a
refusal names every entry at fault; the next stage runs only on a batch that passed.

An import brings a hundred thousand entries at a time, so the common case is checked a column
at a time (``map`` over a column, no Python call per value): a batch whose every entry is
already normal, whose references are all different, with no correction or carried cost.
Anything else takes the entry-by-entry path, which says what is wrong with each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from itertools import repeat
from operator import attrgetter, is_not
from typing import Any, NamedTuple, cast

from sqlalchemy import select
from sqlmodel import Session

from ...core.enums import BatchType, EntryType
from ...core.errors import ValidationError
from ...core.limits import MAX_AMOUNT
from ...core.money import ZERO, to_decimal
from ...core.rows import columns_of, from_columns, only_defaults
from ...core.timeutil import ensure_utc
from ...engine import book as bk
from ...engine.income import income_kind
from .model import IN_CHUNK, E, ListingInfo, NewEntry
from .problems import Problems
from .reads import ticker_index

# --- types and decimals ---------------------------------------------------------------------


def to_entry_type(value: EntryType | str) -> EntryType:
    if isinstance(value, EntryType):
        return value
    try:
        return EntryType(str(value).strip().upper())
    except ValueError:
        raise ValidationError(f"entry type {value!r}: expected one of {', '.join(EntryType)}") from None


def to_batch_type(value: BatchType | str) -> BatchType:
    if isinstance(value, BatchType):
        return value
    try:
        return BatchType(str(value).strip().upper())
    except ValueError:
        raise ValidationError(f"batch type {value!r}: expected one of {', '.join(BatchType)}") from None


def _decimal(value: Any, what: str) -> Decimal | None:
    return None if value is None else to_decimal(value, what=what)


def normalise(e: NewEntry) -> NewEntry:
    """Types and decimals checked; floats refused (``to_decimal``); time in UTC."""
    when = e.entry_time
    if (
        type(e.entry_type) is EntryType
        and type(when) is datetime
        and when.tzinfo is UTC
        and _finite(e.cash_amount_base)
        and _finite(e.fees_base)
        and (e.units is None or _finite(e.units))
        and (e.price is None or _finite(e.price))
        and e.cost_base is None
        and e.original_amount is None
    ):
        return e  # what parsers hand over: nothing to convert
    if not isinstance(when, datetime):
        raise ValidationError(f"entry_time {when!r} is not a datetime")
    fees = to_decimal(e.fees_base, what="fees_base") if e.fees_base is not None else ZERO
    return e._replace(
        entry_time=ensure_utc(when),
        entry_type=to_entry_type(e.entry_type),
        cash_amount_base=to_decimal(e.cash_amount_base, what="cash_amount_base"),
        fees_base=fees,
        units=_decimal(e.units, "units"),
        price=_decimal(e.price, "price"),
        cost_base=_decimal(e.cost_base, "cost_base"),
        original_amount=_decimal(e.original_amount, "original_amount"),
    )


Columns = dict[str, tuple[Any, ...]]  # a batch's values by field (``core.rows.columns_of``)
_not_none = partial(is_not, None)
_zone = attrgetter("tzinfo")


def _finite_column(values: Iterable[object]) -> bool:
    """``_finite`` of every value, a column at a time."""
    column = cast(list[Decimal], list(values))
    if not column:
        return True
    if set(map(type, column)) != {Decimal} or not all(map(Decimal.is_finite, column)):
        return False
    return min(column) >= -MAX_AMOUNT and max(column) <= MAX_AMOUNT


def _already_normal(
    entries: Sequence[NewEntry], listings: Mapping[int, ListingInfo]
) -> tuple[list[NewEntry], list[int | None], Columns] | None:
    """``normalise_entries`` of a batch that needs nothing converted, a column at a time: every
    entry what ``normalise`` passes on as it is, naming its listing by a known id (or none);
    None when any entry needs the entry-by-entry path."""
    if not entries:
        return None
    columns = columns_of(NewEntry, entries)
    times, kinds, listing_ids = columns["entry_time"], columns["entry_type"], columns["listing_id"]
    if not (
        set(map(type, kinds)) == {EntryType}
        and set(map(type, times)) == {datetime}
        and set(map(_zone, times)) == {UTC}
        and not any(columns["ticker"])
        and only_defaults(NewEntry, columns, ("cost_base", "original_amount"))
        and set(listing_ids).difference(listings).issubset({None})
        and _finite_column(columns["cash_amount_base"])
        and _finite_column(columns["fees_base"])
        and _finite_column(filter(_not_none, columns["units"]))
        and _finite_column(filter(_not_none, columns["price"]))
    ):
        return None
    return list(entries), list(listing_ids), columns


def _finite(value: object) -> bool:
    """A Decimal the fast path may pass on as it is: finite and within ``MAX_AMOUNT`` (what
    parsers hand over, already through ``to_decimal``); anything else goes through
    ``to_decimal``, which refuses it with the reason (1E+40 from a caller, say)."""
    return type(value) is Decimal and value.is_finite() and -MAX_AMOUNT <= value <= MAX_AMOUNT


# --- stage 1: each entry's types and listing -----------------------------------------------


def normalise_entries(
    entries: Sequence[NewEntry], listings: Mapping[int, ListingInfo], problems: Problems
) -> tuple[list[NewEntry], list[int | None], Columns | None]:
    """The entries normalised, the listing id each names (by id, or by ticker and exchange),
    and their columns when they were read a column at a time (for ``check_entries``)."""
    plain = _already_normal(entries, listings)
    if plain is not None:
        return plain
    tickers = ticker_index(listings)
    normalised: list[NewEntry] = []
    listing_ids: list[int | None] = []
    for index, raw in enumerate(entries):
        try:
            e = normalise(raw)
        except ValidationError as exc:
            problems.new(index, str(exc))
            normalised.append(raw)
            listing_ids.append(None)
            continue
        listing_id = e.listing_id
        if listing_id is None and e.ticker:
            listing_id = _listing_named(index, e.ticker, e.exchange, tickers, problems)
        elif listing_id is not None and listing_id not in listings:
            problems.new(index, f"unknown listing id {listing_id}")
        normalised.append(e)
        listing_ids.append(listing_id)
    problems.raise_if_any()
    return normalised, listing_ids, None


def _listing_named(
    index: int,
    ticker: str,
    exchange: str | None,
    tickers: Mapping[tuple[str, str | None], int | None],
    problems: Problems,
) -> int | None:
    ticker, exchange = ticker.strip().upper(), (exchange or "").strip().upper() or None
    listing_id = tickers.get((ticker, exchange))
    if listing_id is None:
        if exchange is None and (ticker, None) in tickers:
            problems.new(index, f"ticker {ticker} is listed on several exchanges: name the exchange")
        else:
            where = f" on {exchange}" if exchange else ""
            problems.new(index, f"unknown listing {ticker}{where}: add it with `tradeassist listing add`")
    return listing_id


# --- stage 2: references: already recorded? ------------------------------------------------


def entries_to_add(
    session: Session,
    portfolio_id: int,
    normalised: Sequence[NewEntry],
    listing_ids: Sequence[int | None],
    latest: datetime | None,
    problems: Problems,
) -> list[int]:
    """The indexes of the entries to add. A reference may appear once in a batch; one the
    ledger holds already is skipped when its values are the same and refused when they differ."""
    refs = _references(normalised, problems)
    keep = list(range(len(normalised)))
    if not refs or latest is None:  # an empty ledger holds no references yet
        return keep
    stored = _existing_refs(session, portfolio_id, refs)
    if not stored:
        return keep
    keep = []
    for index, e in enumerate(normalised):
        found = stored.get(e.external_ref) if e.external_ref is not None else None
        if found is None:
            keep.append(index)
        elif not _same(found, e, listing_ids[index]):
            problems.new(index, f"external_ref {e.external_ref!r} is already recorded with other values")
    problems.raise_if_any()
    return keep


def _references(normalised: Sequence[NewEntry], problems: Problems) -> list[str]:
    """The batch's references, refusing one that repeats within the batch."""
    given = list(filter(_not_none, map(_external_ref, normalised)))
    if len(set(given)) == len(given):
        return given
    seen_refs: dict[str, int] = {}
    for index, e in enumerate(normalised):
        if e.external_ref is not None:
            first = seen_refs.setdefault(e.external_ref, index)
            if first != index:
                problems.new(
                    index, f"external_ref {e.external_ref!r} repeats entry {first + 1} of this batch"
                )
    problems.raise_if_any()
    return list(seen_refs)


_external_ref = attrgetter("external_ref")


def _existing_refs(session: Session, portfolio_id: int, refs: list[str]) -> dict[str, tuple[Any, ...]]:
    found: dict[str, tuple[Any, ...]] = {}
    columns = (E.external_ref, E.entry_time, E.entry_type, E.listing_id, E.units, E.price, E.fees_base)
    for start in range(0, len(refs), IN_CHUNK):
        chunk = refs[start : start + IN_CHUNK]
        for row in session.execute(
            select(*columns, E.cash_amount_base, E.notes).where(
                E.portfolio_id == portfolio_id, E.external_ref.in_(chunk)
            )
        ):
            found[row[0]] = tuple(row[1:])
    return found


def _same(stored: Sequence[Any], e: NewEntry, listing_id: int | None) -> bool:
    entry_time, entry_type, listing, units, price, fees, cash, notes = stored
    # A dividend the imports wrote as INTEREST (notes "dividend: …", no listing) before DIVIDEND
    # existed is the same entry as the DIVIDEND the file now parses as, with or without a listing.
    legacy_dividend = (
        e.entry_type is EntryType.DIVIDEND
        and entry_type is EntryType.INTEREST
        and listing is None
        and income_kind(entry_type, notes) == "DIVIDEND"
    )
    return (
        ensure_utc(entry_time) == e.entry_time
        and (legacy_dividend or (entry_type == e.entry_type and listing == listing_id))
        and units == e.units
        and price == e.price
        and fees == e.fees_base
        and cash == e.cash_amount_base
    )


# --- stage 3: each new entry's own rules ---------------------------------------------------


class Checked(NamedTuple):
    entries: list[bk.Entry]  # the new entries as the book sees them, in batch order
    reversed_ids: set[int]  # the stored entries this batch reverses


def check_entries(
    session: Session,
    portfolio_id: int,
    normalised: Sequence[NewEntry],
    listing_ids: Sequence[int | None],
    keep: Sequence[int],
    kind: BatchType,
    quotes: Mapping[int, bk.Quote],
    now: datetime,
    problems: Problems,
    columns: Columns | None = None,
) -> Checked:
    """Each new entry on its own (``engine.book.entry_problem``); reversals against the entries
    they undo. New entries are keyed -(index + 1). ``columns``: ``normalised``'s, when
    ``normalise_entries`` read them."""
    plain = _plain_entries(normalised, listing_ids, keep, quotes, now, problems, columns)
    if plain is not None:
        problems.raise_if_any()
        return Checked(plain, set())
    book_entries: list[bk.Entry] = []
    originals = _originals(session, portfolio_id, [normalised[i].corrects_entry_id for i in keep])
    reversed_ids: set[int] = set()
    for index in keep:
        e = normalised[index]
        entry = bk.Entry(
            -index - 1,
            e.entry_time,
            cast(EntryType, e.entry_type),  # normalised: always an EntryType
            e.cash_amount_base,
            e.fees_base,
            listing_ids[index],
            e.units,
            e.price,
            e.cost_base,
            e.corrects_entry_id,
            None if e.cost_from is None else -e.cost_from - 1,
        )
        book_entries.append(entry)
        if e.cost_from is not None:
            problem = carry_problem(index, e, normalised)
            if problem:
                problems.new(index, problem)
        if e.corrects_entry_id is not None and _correction_settled(
            index, entry, kind, originals, reversed_ids, problems
        ):
            continue
        quote = quotes.get(entry.listing_id) if entry.listing_id is not None else None
        problem = bk.entry_problem(entry, quote, now)
        if problem is not None:
            problems.new(index, problem)
    problems.raise_if_any()
    return Checked(book_entries, reversed_ids)


def _plain_entries(
    normalised: Sequence[NewEntry],
    listing_ids: Sequence[int | None],
    keep: Sequence[int],
    quotes: Mapping[int, bk.Quote],
    now: datetime,
    problems: Problems,
    columns: Columns | None,
) -> list[bk.Entry] | None:
    """``check_entries`` a column at a time for a batch without corrections or carried costs
    (an import's): the book's entries, every entry's own problem recorded. None for a batch
    with either, which takes the entry-by-entry path."""
    if not keep:
        return None
    everything = len(keep) == len(normalised)
    if columns is None or not everything:
        columns = columns_of(NewEntry, normalised if everything else [normalised[i] for i in keep])
    if not only_defaults(NewEntry, columns, ("corrects_entry_id", "cost_from")):
        return None
    ids = listing_ids if everything else [listing_ids[i] for i in keep]
    entries = from_columns(
        bk.Entry,
        len(keep),
        {"key": [-index - 1 for index in keep], "entry_time": columns["entry_time"],
         "entry_type": columns["entry_type"], "cash": columns["cash_amount_base"],
         "fees": columns["fees_base"], "listing_id": ids, "units": columns["units"],
         "price": columns["price"], "cost": columns["cost_base"]},
    )  # fmt: skip
    quote_of: Any = quotes.get  # None for an entry without a listing
    reasons = map(bk.entry_problem, entries, map(quote_of, ids), repeat(now))
    for index, reason in zip(keep, reasons, strict=True):
        if reason is not None:
            problems.new(index, reason)
    return entries


def carry_problem(index: int, e: NewEntry, entries: Sequence[NewEntry]) -> str | None:
    """Why ``e`` may not carry the cost of the entry its ``cost_from`` names, if it may not."""
    source = e.cost_from
    if source is None:
        return None
    if not (0 <= source < index):
        return f"carries the cost of entry {source + 1}, which is not an earlier entry of this batch"
    out = entries[source]
    if (
        e.entry_type is not EntryType.TRANSFER
        or e.units is None
        or e.units <= ZERO
        or e.cost_base is not None
    ):
        return "only a TRANSFER of units in, without a cost of its own, carries another entry's cost"
    if out.entry_type is not EntryType.TRANSFER or out.units is None or out.units >= ZERO:
        return f"carries the cost of entry {source + 1}, which is not a TRANSFER of units out"
    if out.entry_time > e.entry_time:
        return f"carries the cost of entry {source + 1}, which is dated later"
    return None


# --- corrections ----------------------------------------------------------------------------


class _Original(NamedTuple):
    entry: bk.Entry
    is_reversal: bool
    reversed: bool


def _correction_settled(
    index: int,
    entry: bk.Entry,
    kind: BatchType,
    originals: Mapping[int, _Original],
    reversed_ids: set[int],
    problems: Problems,
) -> bool:
    """A correction's own rules. True when nothing more is to be checked: it is refused, or it
    is an exact reversal (recorded in ``reversed_ids``); a replacement is checked like any entry."""
    target = entry.corrects
    assert target is not None
    if kind is not BatchType.MANUAL_FIX:
        problems.new(index, "an entry that corrects another belongs in a MANUAL_FIX batch")
        return True
    original = originals.get(target)
    if original is None:
        problems.new(index, f"corrects entry {target}, which is not in this portfolio")
        return True
    if not bk.is_reversal(entry, original.entry):
        return False
    if original.reversed or target in reversed_ids:
        problems.new(index, f"entry {target} is reversed already")
    elif original.is_reversal:
        problems.new(index, f"entry {target} is itself a reversal: post the entry again")
    elif entry.entry_time != original.entry.entry_time:
        problems.new(index, "a reversal is dated at the entry it reverses")
    reversed_ids.add(target)
    return True


def _originals(session: Session, portfolio_id: int, ids: Iterable[int | None]) -> dict[int, _Original]:
    """The entries that new corrections name (same portfolio), and whether each is reversed."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    columns = (
        E.ledger_entry_id,
        E.entry_time,
        E.entry_type,
        E.cash_amount_base,
        E.fees_base,
        E.listing_id,
        E.units,
        E.price,
        E.cost_base,
        E.corrects_entry_id,
    )
    found = {
        row[0]: bk.Entry(*row)
        for row in session.execute(
            select(*columns).where(E.portfolio_id == portfolio_id, E.ledger_entry_id.in_(wanted))
        )
    }
    targets = {e.corrects for e in found.values() if e.corrects is not None}
    parents = {
        row[0]: bk.Entry(*row)
        for row in session.execute(select(*columns).where(E.ledger_entry_id.in_(sorted(targets))))
    }
    correctors = [
        bk.Entry(*row)
        for row in session.execute(
            select(*columns).where(E.portfolio_id == portfolio_id, E.corrects_entry_id.in_(wanted))
        )
    ]
    reversed_ids = {
        c.corrects for c in correctors if c.corrects in found and bk.is_reversal(c, found[c.corrects])
    }
    return {
        key: _Original(
            entry,
            entry.corrects in parents and bk.is_reversal(entry, parents[entry.corrects]),
            key in reversed_ids,
        )
        for key, entry in found.items()
    }
