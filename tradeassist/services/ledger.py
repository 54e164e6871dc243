"""The book of record: post batches of entries, keep the snapshots, rebuild them, read them.

One code path appends every batch (manual postings, imports, executions of recommendations,
corrections, transfers): ``post_entries``. It validates the batch against the portfolio's
whole timeline, appends the batch and its entries, and updates ``holding_snapshots`` and
``cash_snapshots`` in the same transaction (the caller owns it; nothing here commits).

How a batch is validated:

1. Each entry on its own (``engine.book.entry_problem``): every bad entry is reported at once.
2. Entries whose ``external_ref`` the portfolio already holds are skipped when identical (so
   importing the same rows again adds nothing) and refused when they differ.
3. The timeline: if every new entry is at or after the latest entry of the portfolio and the
   latest corporate action that touches it, the snapshot is advanced from where it stands
   (the common case: no replay). Otherwise (a back-dated import, a correction) the portfolio's
   whole ledger is replayed with the new entries merged in by time, so an earlier entry can
   never make past cash negative or a past sale exceed the units then held.

Book order is (entry_time, ledger_entry_id); new entries are written in time order, so a
rebuild replays them exactly as they were validated. The computation is ``engine.book``.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import String, delete, func, insert, select, type_coerce, update
from sqlmodel import Session

from ..core.enums import BatchType, EntryType
from ..core.errors import FileFormatError, LedgerError, NotFound, ValidationError
from ..core.money import ZERO, decimal_str, to_decimal
from ..core.timeutil import ensure_utc, utcnow
from ..db.models import (
    CashSnapshot,
    CorporateAction,
    HoldingSnapshot,
    Instrument,
    InstrumentListing,
    LedgerBatch,
    LedgerEntry,
    Portfolio,
    User,
)
from ..engine import book as bk
from ..engine.normalize import parse_quote_unit
from . import access, audit

E = LedgerEntry.__table__.c
H = HoldingSnapshot.__table__.c
IN_CHUNK = 500
CORRECTS = bk.Entry._fields.index("corrects")


class NewEntry(NamedTuple):
    """An entry to post. Name the listing by ``listing_id`` or by ``ticker`` (+ ``exchange``).

    ``source`` and ``line`` say where it came from (a file and its line), for errors.
    """

    entry_time: datetime
    entry_type: EntryType | str
    cash_amount_base: Decimal
    fees_base: Decimal = ZERO
    listing_id: int | None = None
    ticker: str | None = None
    exchange: str | None = None
    units: Decimal | None = None
    price: Decimal | None = None
    cost_base: Decimal | None = None
    original_currency: str | None = None
    original_amount: Decimal | None = None
    notes: str | None = None
    external_ref: str | None = None
    corrects_entry_id: int | None = None
    source: str | None = None
    line: int | None = None
    cost_from: int | None = (
        None  # TRANSFER in: index (in this batch) of the TRANSFER out whose cost it carries
    )


class BalanceCheck(NamedTuple):
    """A broker's stated cash balance once the first ``after_entries`` new entries are applied."""

    after_entries: int
    balance: Decimal
    source: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class PostResult:
    portfolio: str
    batch_id: int | None  # None when nothing was added
    added: int
    skipped: int  # entries already in the ledger (same external_ref, same values)
    cash_balance: Decimal
    replayed: bool  # validated by replaying the whole ledger (back-dated entries, corrections)
    already_imported: bool = False  # the same source file was imported before: nothing done
    transfer_costs: Mapping[int, Decimal] | None = None  # new entry index -> pool cost it moved


@dataclass(frozen=True)
class RebuildResult:
    portfolio: str
    entries: int
    holdings: int
    cash_balance: Decimal
    changed: bool  # whether the rebuilt snapshots differ from those stored


class ListingInfo(NamedTuple):
    listing_id: int
    ticker: str
    exchange: str
    isin: str
    quote: bk.Quote
    is_primary: bool


# --- reading the registry -----------------------------------------------------------------


def load_listings(session: Session) -> dict[int, ListingInfo]:
    """Every listing with what the book needs (one query; the registry is small)."""
    rows = session.execute(
        select(
            InstrumentListing.listing_id,
            InstrumentListing.ticker,
            InstrumentListing.exchange,
            InstrumentListing.trading_currency,
            InstrumentListing.quote_scale,
            InstrumentListing.instrument_id,
            InstrumentListing.is_primary,
            Instrument.isin,
        ).join(Instrument, Instrument.instrument_id == InstrumentListing.instrument_id)
    ).all()
    listings = {}
    for listing_id, ticker, exchange, currency, scale, instrument_id, primary, isin in rows:
        unit = parse_quote_unit(scale)
        quote = bk.Quote(instrument_id, currency, unit.minor_exponent)
        listings[listing_id] = ListingInfo(listing_id, ticker, exchange, isin, quote, bool(primary))
    return listings


def _by_ticker(listings: Mapping[int, ListingInfo]) -> dict[tuple[str, str | None], int | None]:
    """(ticker, exchange) -> listing id; (ticker, None) -> the id when the ticker is unique, else None."""
    index: dict[tuple[str, str | None], int | None] = {}
    for info in listings.values():
        index[(info.ticker, info.exchange)] = info.listing_id
        key = (info.ticker, None)
        index[key] = None if key in index else info.listing_id
    return index


def instrument_listing(listings: Mapping[int, ListingInfo], instrument_id: int) -> int | None:
    """The instrument's primary listing, else its first: where an ISIN change moves holdings."""
    candidates = [i for i in listings.values() if i.quote.instrument_id == instrument_id]
    if not candidates:
        return None
    return min(candidates, key=lambda i: (not i.is_primary, i.listing_id)).listing_id


def load_actions(session: Session, listings: Mapping[int, ListingInfo]) -> list[bk.Action]:
    """Every corporate action, as the book applies it (there are few)."""
    actions = []
    for ca in session.execute(select(CorporateAction)).scalars():
        target = instrument_listing(listings, ca.new_instrument_id) if ca.new_instrument_id else None
        actions.append(
            bk.Action(
                ca.corp_action_id,
                ca.effective_date,
                ca.action_type,
                ca.instrument_id,
                ca.ratio_num,
                ca.ratio_den,
                target,
                ca.new_instrument_id,
            )
        )
    return actions


def _relevant_actions(actions: Iterable[bk.Action], instruments: set[int]) -> list[bk.Action]:
    return [a for a in actions if a.instrument_id in instruments or a.target_instrument_id in instruments]


# --- reading the ledger and the snapshots -------------------------------------------------


def load_timeline(session: Session, portfolio_id: int) -> list[bk.Row]:
    """The portfolio's entries in book order, with one Core query, as plain tuples in
    ``engine.book.Entry``'s field order (``Entry._make(row)`` names them; a rebuild makes a
    million, and a tuple costs a third of a NamedTuple).

    A rebuild reads every entry, so the column types are bypassed (``type_coerce``): SQLite
    hands back the exact text ``ExactDecimal`` stored (each distinct units/fees text becomes a
    Decimal once), PostgreSQL's driver exact Decimals and aware datetimes already.
    """
    raw = [
        type_coerce(column, String)
        for column in (
            E.entry_time,
            E.entry_type,
            E.cash_amount_base,
            E.fees_base,
            E.units,
            E.price,
            E.cost_base,
        )
    ]
    result = session.connection().execute(
        select(E.ledger_entry_id, *raw, E.listing_id, E.corrects_entry_id)
        .where(E.portfolio_id == portfolio_id)
        .order_by(E.entry_time, E.ledger_entry_id)
    )
    # Every column is read raw, so the driver's tuples need no Row objects (a third of the time).
    rows = result.cursor.fetchall()  # type: ignore[attr-defined]
    result.close()
    numbers = _Numbers()  # units, fees, costs repeat; prices and cash rarely do
    kinds = {t.value: t for t in EntryType}
    if rows and rows[0][1].__class__ is str:  # SQLite: naive UTC text (+00:00: 5× faster than .replace)
        fromiso = datetime.fromisoformat
        return [
            (key, fromiso(when + "+00:00"), kinds[kind], Decimal(cash), numbers[fees], listing_id,
             numbers[units], None if price is None else Decimal(price), numbers[cost], corrects, None)
            for key, when, kind, cash, fees, units, price, cost, listing_id, corrects in rows
        ]  # fmt: skip
    return [
        (key, when.astimezone(UTC), kinds[kind], cash, fees, listing_id, units, price, cost, corrects, None)
        for key, when, kind, cash, fees, units, price, cost, listing_id, corrects in rows
    ]  # PostgreSQL: the driver's aware datetimes and exact Decimals already


class _Numbers(dict[Any, Decimal | None]):
    """Number text -> Decimal, each distinct text converted once (None stays None)."""

    def __init__(self) -> None:
        super().__init__({None: None})

    def __missing__(self, key: str) -> Decimal:
        value = Decimal(key)
        if len(self) < 100_000:
            self[key] = value
        return value


def _latest_entry_time(session: Session, portfolio_id: int) -> datetime | None:
    return session.execute(select(func.max(E.entry_time)).where(E.portfolio_id == portfolio_id)).scalar()


def snapshot_book(session: Session, portfolio_id: int) -> bk.Book | None:
    """The stored snapshots as a book; None if a holding lacks its exact pool cost."""
    cash = session.execute(
        select(CashSnapshot.cash_balance).where(CashSnapshot.portfolio_id == portfolio_id)
    ).scalar()
    holdings = {}
    for listing_id, units, cost in session.execute(
        select(H.listing_id, H.units, H.cost_base).where(H.portfolio_id == portfolio_id)
    ):
        if cost is None:
            return None
        holdings[listing_id] = bk.Holding(units, cost)
    return bk.Book(cash if cash is not None else ZERO, holdings)


def _lock_cash(session: Session, portfolio_id: int) -> CashSnapshot:
    """The portfolio's cash row, locked on PostgreSQL: posts to one portfolio go one at a time
    (SQLite's BEGIN IMMEDIATE serialises writers already). Created if somehow missing."""
    row = session.execute(
        select(CashSnapshot).where(CashSnapshot.portfolio_id == portfolio_id).with_for_update()
    ).scalar()
    if row is None:
        row = CashSnapshot(portfolio_id=portfolio_id, currency="GBP", cash_balance=ZERO)
        session.add(row)
        session.flush()
    return row


def _write_snapshots(session: Session, portfolio_id: int, book: bk.Book, now: datetime) -> None:
    session.execute(delete(HoldingSnapshot).where(HoldingSnapshot.portfolio_id == portfolio_id))
    rows = [
        {
            "portfolio_id": portfolio_id,
            "listing_id": listing_id,
            "units": holding.units,
            "avg_cost_base": holding.avg_cost,
            "cost_base": holding.cost,
            "updated_at": now,
        }
        for listing_id, holding in sorted(book.holdings.items())
    ]
    if rows:
        session.execute(insert(HoldingSnapshot.__table__), rows)
    session.execute(
        update(CashSnapshot)
        .where(CashSnapshot.portfolio_id == portfolio_id)
        .values(cash_balance=book.cash, currency="GBP", updated_at=now)
    )
    session.expire_all()


# --- posting ----------------------------------------------------------------------------


def _portfolio(session: Session, actor: User, portfolio: str | Portfolio, operation: str) -> Portfolio:
    if isinstance(portfolio, Portfolio):
        return access.require_access(session, actor, portfolio, operation)
    return access.portfolio_for(session, actor, portfolio, operation)


class _Problems:
    """Problems named by where they are: (source file, line) for file rows, else a label."""

    def __init__(self, entries: Sequence[NewEntry]) -> None:
        self.entries = entries
        self.items: list[tuple[str | None, int | None, str]] = []

    def new(self, index: int, reason: str) -> None:
        e = self.entries[index]
        if e.source is not None:
            self.items.append((e.source, e.line, reason))
        else:
            self.items.append((None, None, f"entry {index + 1}: {reason}"))

    def key(self, key: int, reason: str, existing: Mapping[int, datetime] | None = None) -> None:
        if key < 0:
            self.new(-key - 1, reason)
        else:
            when = f" ({existing[key]:%Y-%m-%d})" if existing and key in existing else ""
            self.items.append((None, None, f"ledger entry {key}{when}: {reason}"))

    def other(self, source: str | None, line: int | None, reason: str) -> None:
        self.items.append((source, line, reason))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        sources = list(dict.fromkeys(s for s, _, _ in self.items if s is not None))
        if sources:
            if len(sources) == 1:
                problems = [(ln, why) if s is not None else (None, why) for s, ln, why in self.items]
            else:
                problems = [
                    (None, f"{s} line {ln}: {why}" if s is not None and ln else why)
                    for s, ln, why in self.items
                ]
            raise FileFormatError(" + ".join(sources), problems)
        reasons = [why for _, _, why in self.items]
        more = f" (and {len(reasons) - 20} more)" if len(reasons) > 20 else ""
        raise LedgerError("refused: " + "; ".join(reasons[:20]) + more, problems=reasons)


def _entry_type(value: EntryType | str) -> EntryType:
    if isinstance(value, EntryType):
        return value
    try:
        return EntryType(str(value).strip().upper())
    except ValueError:
        raise ValidationError(f"entry type {value!r}: expected one of {', '.join(EntryType)}") from None


def _batch_type(value: BatchType | str) -> BatchType:
    if isinstance(value, BatchType):
        return value
    try:
        return BatchType(str(value).strip().upper())
    except ValueError:
        raise ValidationError(f"batch type {value!r}: expected one of {', '.join(BatchType)}") from None


def _decimal(value: Any, what: str) -> Decimal | None:
    return None if value is None else to_decimal(value, what=what)


def _normalise(e: NewEntry) -> NewEntry:
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
        entry_type=_entry_type(e.entry_type),
        cash_amount_base=to_decimal(e.cash_amount_base, what="cash_amount_base"),
        fees_base=fees,
        units=_decimal(e.units, "units"),
        price=_decimal(e.price, "price"),
        cost_base=_decimal(e.cost_base, "cost_base"),
        original_amount=_decimal(e.original_amount, "original_amount"),
    )


def _finite(value: object) -> bool:
    return type(value) is Decimal and value.is_finite()  # type: ignore[attr-defined]


def _same(stored: Sequence[Any], e: NewEntry, listing_id: int | None) -> bool:
    entry_time, entry_type, listing, units, price, fees, cash = stored
    return (
        ensure_utc(entry_time) == e.entry_time
        and entry_type == e.entry_type
        and listing == listing_id
        and units == e.units
        and price == e.price
        and fees == e.fees_base
        and cash == e.cash_amount_base
    )


def _existing_refs(session: Session, portfolio_id: int, refs: list[str]) -> dict[str, tuple[Any, ...]]:
    found: dict[str, tuple[Any, ...]] = {}
    columns = (E.external_ref, E.entry_time, E.entry_type, E.listing_id, E.units, E.price, E.fees_base)
    for start in range(0, len(refs), IN_CHUNK):
        chunk = refs[start : start + IN_CHUNK]
        for row in session.execute(
            select(*columns, E.cash_amount_base).where(
                E.portfolio_id == portfolio_id, E.external_ref.in_(chunk)
            )
        ):
            found[row[0]] = tuple(row[1:])
    return found


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector around a bulk step: a million new tuples with no
    cycles would only be rescanned again and again (measured: 10-20% of an import)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@paused_gc()
def post_entries(
    session: Session,
    *,
    actor: User,
    portfolio: str | Portfolio,
    entries: Sequence[NewEntry],
    label: str,
    batch_type: BatchType | str,
    recommendation_id: int | None = None,
    source_name: str | None = None,
    source_sha256: str | None = None,
    balances: Sequence[BalanceCheck] = (),
    now: datetime | None = None,
    watch_new: bool = False,
) -> PostResult:
    """Validate and append one batch; update the snapshots. Refused as a whole, naming every
    entry at fault (``FileFormatError`` for entries from a file, else ``LedgerError``).

    ``source_sha256`` (an imported file's content hash) makes a second import of the same
    file a no-op (``already_imported``). ``balances`` are a broker's running cash balances to
    check against ours after the import (the first disagreement refuses it). Entries that
    correct others (``corrects_entry_id``) belong in a MANUAL_FIX batch. ``watch_new`` also
    reports the Section 104 cost each new entry carried (``PostResult.transfer_costs``: a
    transfer posts its incoming half at the outgoing half's cost).
    """
    folio = _portfolio(session, actor, portfolio, "post ledger entries")
    pid = folio.portfolio_id
    assert pid is not None
    now = ensure_utc(now) if now is not None else utcnow()
    kind = _batch_type(batch_type)
    label = (label or "").strip()
    if not label:
        raise ValidationError("a batch needs a label")
    cash_row = _lock_cash(session, pid)
    if source_sha256 is not None:
        earlier = session.execute(
            select(LedgerBatch.ledger_batch_id).where(
                LedgerBatch.portfolio_id == pid, LedgerBatch.source_sha256 == source_sha256
            )
        ).scalar()
        if earlier is not None:
            return PostResult(folio.name, None, 0, len(entries), cash_row.cash_balance, False, True)
    if not entries:
        raise ValidationError("a batch needs at least one entry")

    problems = _Problems(entries)
    listings = load_listings(session)
    tickers = _by_ticker(listings)
    normalised: list[NewEntry] = []
    listing_ids: list[int | None] = []
    for index, raw in enumerate(entries):
        try:
            e = _normalise(raw)
        except ValidationError as exc:
            problems.new(index, str(exc))
            normalised.append(raw)
            listing_ids.append(None)
            continue
        listing_id = e.listing_id
        if listing_id is None and e.ticker:
            ticker, exchange = e.ticker.strip().upper(), (e.exchange or "").strip().upper() or None
            listing_id = tickers.get((ticker, exchange))
            if listing_id is None:
                if exchange is None and (ticker, None) in tickers:
                    problems.new(index, f"ticker {ticker} is listed on several exchanges: name the exchange")
                else:
                    where = f" on {exchange}" if exchange else ""
                    problems.new(
                        index, f"unknown listing {ticker}{where}: add it with `tradeassist listing add`"
                    )
        elif listing_id is not None and listing_id not in listings:
            problems.new(index, f"unknown listing id {listing_id}")
        normalised.append(e)
        listing_ids.append(listing_id)
    problems.raise_if_any()

    # Already recorded? Same reference and same values: skip; different values: refuse.
    keep = list(range(len(normalised)))
    seen_refs: dict[str, int] = {}
    for index, e in enumerate(normalised):
        if e.external_ref is not None:
            first = seen_refs.setdefault(e.external_ref, index)
            if first != index:
                problems.new(
                    index, f"external_ref {e.external_ref!r} repeats entry {first + 1} of this batch"
                )
    problems.raise_if_any()
    latest = _latest_entry_time(session, pid)
    if seen_refs and latest is not None:  # an empty ledger holds no references yet
        stored = _existing_refs(session, pid, list(seen_refs))
        if stored:
            keep = []
            for index, e in enumerate(normalised):
                found = stored.get(e.external_ref) if e.external_ref is not None else None
                if found is None:
                    keep.append(index)
                elif not _same(found, e, listing_ids[index]):
                    problems.new(
                        index, f"external_ref {e.external_ref!r} is already recorded with other values"
                    )
            problems.raise_if_any()
    skipped = len(normalised) - len(keep)

    # Each new entry on its own; reversals against the entries they undo.
    book_entries: list[bk.Entry] = []
    quotes = {k: v.quote for k, v in listings.items()}
    originals = _originals(session, pid, [normalised[i].corrects_entry_id for i in keep])
    reversed_ids: set[int] = set()
    for index in keep:
        e = normalised[index]
        entry = bk.Entry(
            -index - 1,
            e.entry_time,
            e.entry_type,  # type: ignore[arg-type]
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
            problem = _carry_problem(index, e, normalised)
            if problem:
                problems.new(index, problem)
        if e.corrects_entry_id is not None:
            if kind is not BatchType.MANUAL_FIX:
                problems.new(index, "an entry that corrects another belongs in a MANUAL_FIX batch")
                continue
            original = originals.get(e.corrects_entry_id)
            if original is None:
                problems.new(index, f"corrects entry {e.corrects_entry_id}, which is not in this portfolio")
                continue
            if bk.is_reversal(entry, original.entry):
                if original.reversed or e.corrects_entry_id in reversed_ids:
                    problems.new(index, f"entry {e.corrects_entry_id} is reversed already")
                elif original.is_reversal:
                    problems.new(
                        index, f"entry {e.corrects_entry_id} is itself a reversal: post the entry again"
                    )
                elif e.entry_time != original.entry.entry_time:
                    problems.new(index, "a reversal is dated at the entry it reverses")
                reversed_ids.add(e.corrects_entry_id)
                continue
        quote = quotes.get(entry.listing_id) if entry.listing_id is not None else None
        problem = bk.entry_problem(entry, quote, now)
        if problem is not None:
            problems.new(index, problem)
    problems.raise_if_any()

    if not book_entries:
        return PostResult(folio.name, None, 0, skipped, cash_row.cash_balance, False)

    # The timeline: advance the snapshot, or replay the whole ledger with the batch merged in.
    earliest = min(e.entry_time for e in book_entries)
    start = snapshot_book(session, pid)
    actions = load_actions(session, listings)
    instruments = {quotes[lid].instrument_id for lid in {e.listing_id for e in book_entries} if lid}
    if start is not None:
        instruments |= {quotes[lid].instrument_id for lid in start.holdings}
    relevant = _relevant_actions(actions, instruments)
    last_action = max((bk.action_instant(a.effective) for a in relevant), default=None)
    incremental = (
        start is not None
        and not any(e.corrects is not None for e in book_entries)
        and (latest is None or earliest >= ensure_utc(latest))
        and (last_action is None or earliest >= last_action)
    )
    ordered = sorted(book_entries, key=lambda e: e.entry_time)
    track = {-(b.after_entries) for b in balances if b.after_entries > 0}
    existing_times: dict[int, datetime] = {}
    new_keys = {e.key for e in book_entries} if watch_new else set()
    new_keys |= {e.cost_from for e in book_entries if e.cost_from is not None}
    if incremental:
        assert start is not None
        outcome = bk.replay(
            ordered, quotes=quotes, start=start, track=track, watch=new_keys, apply_remaining_actions=False
        )
        opening = start.cash
    else:
        timeline = load_timeline(session, pid)
        watch = {e[CORRECTS] for e in timeline if e[CORRECTS] is not None} | reversed_ids | new_keys
        opening = _cash_before(timeline, ordered[0].entry_time) if balances else ZERO
        # Every action is replayed (they only touch pools that exist); relevance only decides
        # whether the snapshot can be advanced instead.
        outcome = bk.replay(
            bk.merge_timeline(timeline, ordered),
            quotes=quotes,
            actions=actions,
            track=track,
            watch=watch,
        )
        existing_times = {e[0]: e[1] for e in timeline}
    # A broker's balance that disagrees before the replay stopped is the likelier cause.
    _check_balances(balances, keep, outcome, opening, problems)
    for issue in outcome.issues:
        problems.key(issue.key, issue.reason, existing_times)
    problems.raise_if_any()

    batch = LedgerBatch(
        portfolio_id=pid,
        label=label[:200],
        batch_type=kind,
        created_by_user_id=actor.user_id,
        source_name=source_name,
        source_sha256=source_sha256,
        recommendation_id=recommendation_id,
    )
    session.add(batch)
    session.flush()
    carried = {
        e.key: -outcome.effects[e.cost_from].cost
        for e in book_entries
        if e.cost_from is not None and e.cost is None
    }
    _insert_entries(session, batch.ledger_batch_id, pid, ordered, normalised, carried)  # type: ignore[arg-type]
    _write_snapshots(session, pid, outcome.book, now)
    audit.record(
        session,
        actor=actor,
        action="LEDGER_BATCH_POSTED",
        entity_type="ledger_batch",
        entity_id=batch.ledger_batch_id,
        details={
            "portfolio": folio.name,
            "label": label,
            "batch_type": kind.value,
            "entries": len(book_entries),
            "skipped": skipped,
            "source_name": source_name,
            "source_sha256": source_sha256,
            "recommendation_id": recommendation_id,
            "replayed": not incremental,
            "cash_balance": outcome.book.cash,
        },
    )
    transfer_costs = None
    if watch_new:
        transfer_costs = {-k - 1: eff.cost for k, eff in outcome.effects.items() if k < 0}
    return PostResult(
        folio.name,
        batch.ledger_batch_id,
        len(book_entries),
        skipped,
        outcome.book.cash,
        not incremental,
        transfer_costs=transfer_costs,
    )


def _carry_problem(index: int, e: NewEntry, entries: Sequence[NewEntry]) -> str | None:
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


def _instruments_of(timeline: Iterable[bk.Row], quotes: Mapping[int, bk.Quote]) -> set[int]:
    return {quotes[lid].instrument_id for lid in {e[5] for e in timeline} if lid in quotes}


def _cash_before(timeline: Sequence[bk.Row], when: datetime) -> Decimal:
    """Cash from the entries before ``when``: where a broker's opening balance must agree."""
    total = ZERO
    for e in timeline:
        if e[1] > when:
            break
        total += e[3]
    return total


def _check_balances(
    balances: Sequence[BalanceCheck],
    keep: Sequence[int],
    outcome: bk.Replay,
    opening: Decimal,
    problems: _Problems,
) -> None:
    """The first statement balance that disagrees with our cash refuses the import."""
    if not balances:
        return
    kept = set(keep)
    for b in sorted(balances, key=lambda b: b.after_entries):
        index = b.after_entries - 1
        if max(index, 0) not in kept:
            continue  # an entry recorded before: its balance was checked then
        ours = opening if index < 0 else outcome.cash_after.get(-index - 1)
        if ours is None:
            continue
        if ours != b.balance:
            problems.other(
                b.source,
                b.line,
                f"the statement's balance is £{b.balance} but the ledger's cash is £{ours} there",
            )
            return


class _Original(NamedTuple):
    entry: bk.Entry
    is_reversal: bool
    reversed: bool


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


_ENTRY_COLUMNS = (
    "ledger_batch_id",
    "portfolio_id",
    "entry_time",
    "entry_type",
    "listing_id",
    "units",
    "price",
    "fees_base",
    "cash_amount_base",
    "original_currency",
    "original_amount",
    "notes",
    "external_ref",
    "corrects_entry_id",
    "cost_base",
)


def _insert_entries(
    session: Session,
    batch_id: int,
    portfolio_id: int,
    ordered: Sequence[bk.Entry],
    normalised: Sequence[NewEntry],
    carried: Mapping[int, Decimal],
) -> None:
    """One executemany of the statement Core compiles for this dialect (COPY on PostgreSQL
    with psycopg), with the values rendered as the column types would store them (exact
    decimal text and naive UTC timestamps on SQLite; Decimals and aware datetimes on
    PostgreSQL): a million rows through SQLAlchemy's per-row parameter processing cost more
    than the insert itself."""
    connection = session.connection()
    dialect = connection.dialect
    compiled = insert(LedgerEntry.__table__).compile(dialect=dialect, column_keys=list(_ENTRY_COLUMNS))
    if dialect.name == "sqlite":
        number: Any = _plain_text

        def moment(value: datetime) -> Any:
            # What UTCDateTime stores on SQLite: naive UTC, "YYYY-MM-DD HH:MM:SS.ffffff".
            if value.tzinfo is not UTC:
                value = value.astimezone(UTC)
            return value.isoformat(" ", "microseconds")[:26]
    else:
        number = _same_value
        moment = _same_value
    rows = []
    append = rows.append
    for entry in ordered:
        e = normalised[-entry.key - 1]
        append(
            (
                batch_id,
                portfolio_id,
                moment(entry.entry_time),
                entry.entry_type.value,
                entry.listing_id,
                number(entry.units),
                number(entry.price),
                number(entry.fees),
                number(entry.cash),
                e.original_currency,
                number(e.original_amount),
                e.notes,
                e.external_ref,
                e.corrects_entry_id,
                number(carried.get(entry.key, e.cost_base)),
            )
        )
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        # COPY: the fastest way in, and still inside the session's transaction.
        raw = connection.connection.driver_connection  # type: ignore[union-attr]
        statement = f"COPY {LedgerEntry.__tablename__} ({', '.join(_ENTRY_COLUMNS)}) FROM STDIN"
        with raw.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
        return
    if compiled.positional:
        order = [_ENTRY_COLUMNS.index(name) for name in compiled.positiontup]  # type: ignore[union-attr]
        if order != list(range(len(_ENTRY_COLUMNS))):
            rows = [tuple(row[i] for i in order) for row in rows]
        connection.exec_driver_sql(str(compiled), rows)  # type: ignore[arg-type]
    else:
        names = [compiled.binds[name].key for name in _ENTRY_COLUMNS]  # type: ignore[index]
        connection.exec_driver_sql(str(compiled), [dict(zip(names, row, strict=True)) for row in rows])


def _same_value(value: Any) -> Any:
    return value


def _plain_text(value: Decimal | None) -> str | None:
    """``decimal_str`` (what ExactDecimal stores on SQLite), with a fast path: ``str`` is the
    same text unless it uses an exponent or is a negative zero."""
    if value is None:
        return None
    text = str(value)
    if "E" in text or (text[0] == "-" and not value):
        return decimal_str(value)
    return text


# --- rebuild ------------------------------------------------------------------------------


def rebuild(
    session: Session, *, actor: User, portfolio: str | Portfolio, now: datetime | None = None
) -> RebuildResult:
    """Recompute the portfolio's snapshots from its ledger and the corporate actions."""
    folio = _portfolio(session, actor, portfolio, "rebuild snapshots")
    pid = folio.portfolio_id
    assert pid is not None
    now = ensure_utc(now) if now is not None else utcnow()
    _lock_cash(session, pid)
    before = snapshot_book(session, pid)
    outcome, count = replay_portfolio(session, pid)
    if outcome.issues:
        issue = outcome.issues[0]
        raise LedgerError(f"the ledger of {folio.name!r} does not replay: entry {issue.key}: {issue.reason}")
    changed = (
        before is None
        or before.cash != outcome.book.cash
        or dict(before.holdings) != dict(outcome.book.holdings)
    )
    _write_snapshots(session, pid, outcome.book, now)
    audit.record(
        session,
        actor=actor,
        action="SNAPSHOTS_REBUILT",
        entity_type="portfolio",
        entity_id=pid,
        details={
            "portfolio": folio.name,
            "entries": count,
            "changed": changed,
            "cash_balance": outcome.book.cash,
        },
    )
    return RebuildResult(folio.name, count, len(outcome.book.holdings), outcome.book.cash, changed)


def replay_portfolio(session: Session, portfolio_id: int) -> tuple[bk.Replay, int]:
    """The portfolio's book from its whole ledger (nothing written)."""
    listings = load_listings(session)
    quotes = {k: v.quote for k, v in listings.items()}
    timeline = load_timeline(session, portfolio_id)
    watch = {e[CORRECTS] for e in timeline if e[CORRECTS] is not None}
    actions = load_actions(session, listings)
    return bk.replay(timeline, quotes=quotes, actions=actions, watch=watch), len(timeline)


def replay_portfolios(session: Session, portfolio_ids: Iterable[int], *, now: datetime | None = None) -> None:
    """Replay and rewrite the snapshots of several portfolios (after a corporate action),
    refusing if any ledger no longer stands."""
    now = ensure_utc(now) if now is not None else utcnow()
    for pid in portfolio_ids:
        _lock_cash(session, pid)
        outcome, _ = replay_portfolio(session, pid)
        if outcome.issues:
            name = session.get(Portfolio, pid).name  # type: ignore[union-attr]
            issue = outcome.issues[0]
            raise LedgerError(f"portfolio {name!r}, ledger entry {issue.key}: {issue.reason}")
        _write_snapshots(session, pid, outcome.book, now)


# --- reading ------------------------------------------------------------------------------


def holdings(session: Session, *, actor: User, portfolio: str | Portfolio) -> list[dict[str, Any]]:
    """The holding snapshots: ticker, exchange, isin, units, avg_cost_base (GBP per unit)."""
    folio = _portfolio(session, actor, portfolio, "read holdings")
    listings = load_listings(session)
    rows = []
    for listing_id, units, avg in session.execute(
        select(H.listing_id, H.units, H.avg_cost_base).where(H.portfolio_id == folio.portfolio_id)
    ):
        info = listings[listing_id]
        rows.append(
            {
                "ticker": info.ticker,
                "exchange": info.exchange,
                "isin": info.isin,
                "units": units,
                "avg_cost_base": avg,
            }
        )
    return sorted(rows, key=lambda r: (r["ticker"], r["exchange"]))


def cash(session: Session, *, actor: User, portfolio: str | Portfolio) -> dict[str, Any]:
    """The cash snapshot: currency and cash_balance."""
    folio = _portfolio(session, actor, portfolio, "read cash")
    row = session.execute(
        select(CashSnapshot.currency, CashSnapshot.cash_balance).where(
            CashSnapshot.portfolio_id == folio.portfolio_id
        )
    ).first()
    if row is None:
        return {"currency": "GBP", "cash_balance": ZERO}
    return {"currency": row[0], "cash_balance": row[1]}


def list_entries(session: Session, *, actor: User, portfolio: str | Portfolio) -> list[dict[str, Any]]:
    """Every entry of the portfolio in book order (no limit)."""
    folio = _portfolio(session, actor, portfolio, "list ledger entries")
    listings = load_listings(session)
    rows = session.execute(
        select(
            E.ledger_entry_id,
            E.ledger_batch_id,
            E.entry_time,
            E.entry_type,
            E.listing_id,
            E.units,
            E.price,
            E.fees_base,
            E.cash_amount_base,
            E.cost_base,
            E.external_ref,
            E.corrects_entry_id,
            E.notes,
        )
        .where(E.portfolio_id == folio.portfolio_id)
        .order_by(E.entry_time, E.ledger_entry_id)
    )
    result = []
    for r in rows:
        info = listings.get(r.listing_id) if r.listing_id is not None else None
        result.append(
            {
                "ledger_entry_id": r.ledger_entry_id,
                "ledger_batch_id": r.ledger_batch_id,
                "entry_time": r.entry_time,
                "entry_type": r.entry_type.value,
                "ticker": info.ticker if info else None,
                "exchange": info.exchange if info else None,
                "units": r.units,
                "price": r.price,
                "fees_base": r.fees_base,
                "cash_amount_base": r.cash_amount_base,
                "cost_base": r.cost_base,
                "external_ref": r.external_ref,
                "corrects_entry_id": r.corrects_entry_id,
                "notes": r.notes,
            }
        )
    return result


def list_batches(session: Session, *, actor: User, portfolio: str | Portfolio) -> list[dict[str, Any]]:
    folio = _portfolio(session, actor, portfolio, "list ledger batches")
    counts = dict(
        session.execute(
            select(E.ledger_batch_id, func.count())
            .where(E.portfolio_id == folio.portfolio_id)
            .group_by(E.ledger_batch_id)
        ).all()
    )
    batches = session.execute(
        select(LedgerBatch)
        .where(LedgerBatch.portfolio_id == folio.portfolio_id)
        .order_by(LedgerBatch.ledger_batch_id)
    ).scalars()
    return [
        {
            "ledger_batch_id": b.ledger_batch_id,
            "label": b.label,
            "batch_type": b.batch_type.value,
            "created_at": b.created_at,
            "entries": counts.get(b.ledger_batch_id, 0),
            "source_name": b.source_name,
            "recommendation_id": b.recommendation_id,
        }
        for b in batches
    ]


# --- corrections and transfers -----------------------------------------------------------


def reverse_entries(
    session: Session,
    *,
    actor: User,
    portfolio: str | Portfolio,
    entry_ids: Sequence[int],
    replacements: Sequence[NewEntry] = (),
    label: str | None = None,
    now: datetime | None = None,
) -> PostResult:
    """Correct entries: one MANUAL_FIX batch of their exact reversals (dated at each original,
    so history reads as if they had never been) plus any ``replacements`` (which reference the
    first corrected entry unless they name another)."""
    folio = _portfolio(session, actor, portfolio, "correct ledger entries")
    if not entry_ids:
        raise ValidationError("name at least one entry to correct")
    rows = {
        row.ledger_entry_id: row
        for row in session.execute(
            select(LedgerEntry).where(
                LedgerEntry.portfolio_id == folio.portfolio_id,
                LedgerEntry.ledger_entry_id.in_(list(entry_ids)),
            )
        ).scalars()
    }
    missing = [i for i in entry_ids if i not in rows]
    if missing:
        raise NotFound(f"no ledger entry {', '.join(map(str, missing))} in portfolio {folio.name!r}")
    entries = [
        NewEntry(
            entry_time=rows[i].entry_time,
            entry_type=rows[i].entry_type,
            cash_amount_base=-rows[i].cash_amount_base,
            fees_base=-rows[i].fees_base,
            listing_id=rows[i].listing_id,
            units=None if rows[i].units is None else -rows[i].units,
            price=rows[i].price,
            notes=f"reverses entry {i}",
            corrects_entry_id=i,
        )
        for i in entry_ids
    ]
    entries += [
        r if r.corrects_entry_id is not None else r._replace(corrects_entry_id=entry_ids[0])
        for r in replacements
    ]
    return post_entries(
        session,
        actor=actor,
        portfolio=folio,
        entries=entries,
        label=label
        or f"correction of entr{'y' if len(entry_ids) == 1 else 'ies'} {', '.join(map(str, entry_ids))}",
        batch_type=BatchType.MANUAL_FIX,
        now=now,
    )


def transfer_between(
    session: Session,
    *,
    actor: User,
    source: str,
    destination: str,
    entry_time: datetime,
    listing_id: int | None = None,
    ticker: str | None = None,
    exchange: str | None = None,
    units: Decimal | None = None,
    amount: Decimal | None = None,
    notes: str | None = None,
    now: datetime | None = None,
) -> tuple[PostResult, PostResult]:
    """Move units in specie (with their Section 104 cost) or cash from one portfolio to another:
    a TRANSFER out of ``source`` and a TRANSFER in to ``destination``, one batch in each,
    sharing one reference ``transfer:<random hex>``."""
    if source == destination:
        raise ValidationError("a transfer needs two different portfolios")
    if (units is None) == (amount is None):
        raise ValidationError("transfer either units (with a listing) or an amount of cash")
    _portfolio(session, actor, destination, "post ledger entries")  # refuse before writing anything
    if units is not None:
        units = to_decimal(units, what="units")
        if units <= ZERO:
            raise ValidationError(f"units to transfer must be > 0, got {units}")
        out = NewEntry(entry_time, EntryType.TRANSFER, ZERO, listing_id=listing_id, ticker=ticker,
                       exchange=exchange, units=-units, notes=notes)  # fmt: skip
    else:
        amount = to_decimal(amount, what="amount")
        if amount <= ZERO:
            raise ValidationError(f"the amount to transfer must be > 0, got {amount}")
        out = NewEntry(entry_time, EntryType.TRANSFER, -amount, notes=notes)
    ref = f"transfer:{uuid.uuid4().hex[:16]}"
    sent = post_entries(
        session,
        actor=actor,
        portfolio=source,
        entries=[out._replace(external_ref=ref)],
        label=f"transfer to {destination}",
        batch_type=BatchType.MANUAL,
        now=now,
        watch_new=True,
    )
    if units is not None:
        cost = (sent.transfer_costs or {}).get(0, ZERO)
        incoming = out._replace(units=units, cost_base=-cost, external_ref=ref)
    else:
        incoming = out._replace(cash_amount_base=amount, external_ref=ref)
    received = post_entries(
        session,
        actor=actor,
        portfolio=destination,
        entries=[incoming],
        label=f"transfer from {source}",
        batch_type=BatchType.MANUAL,
        now=now,
    )
    return sent, received


# --- manual entries ---------------------------------------------------------------------


def parse_entry_time(text: str | None) -> datetime:
    """An entry's time as typed: ISO 8601; a date alone is midnight UTC (as in the canonical
    CSV), a naive timestamp UTC; None or empty is now."""
    if text is None or not text.strip():
        return utcnow()
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"time {text!r} is not an ISO 8601 date or timestamp") from None
    return ensure_utc(value)


def manual_entry(
    session: Session,
    *,
    entry_type: EntryType | str,
    entry_time: datetime | None = None,
    amount: Decimal | str | None = None,
    ticker: str | None = None,
    exchange: str | None = None,
    units: Decimal | str | None = None,
    price: Decimal | str | None = None,
    fees: Decimal | str | None = None,
    cash: Decimal | str | None = None,
    cost: Decimal | str | None = None,
    external_ref: str | None = None,
    notes: str | None = None,
    corrects_entry_id: int | None = None,
) -> NewEntry:
    """An entry as a person describes it, with the sign conventions applied:

    * cash-only types take a positive ``amount``: CONTRIBUTION/INTEREST +amount, WITHDRAWAL
      −amount, FEE fees = amount and cash −amount; a cash TRANSFER takes a signed ``cash``;
    * BUY/SELL take ticker, units, price (in the listing's quote scale) and fees; the cash is
      −(consideration + fees) / +(consideration − fees), the consideration rounded to the
      penny, unless ``cash`` is given;
    * a TRANSFER of units takes signed units (+ in, − out) and, coming in, its ``cost``.
    """
    kind = _entry_type(entry_type)
    when = entry_time or utcnow()
    fee = to_decimal(fees, what="fees") if fees is not None else ZERO
    given_cash = to_decimal(cash, what="cash") if cash is not None else None
    listing_id = None
    units_d = to_decimal(units, what="units") if units is not None else None
    price_d = to_decimal(price, what="price") if price is not None else None
    if ticker:
        info = _lookup(session, ticker, exchange)
        listing_id = info.listing_id
    if kind in bk.CASH_ONLY:
        if amount is None:
            raise ValidationError(f"a {kind} needs --amount")
        value = to_decimal(amount, what="amount")
        if value <= ZERO:
            raise ValidationError(f"--amount must be > 0 (the sign follows the type), got {value}")
        signed = {
            EntryType.CONTRIBUTION: value,
            EntryType.INTEREST: value,
            EntryType.WITHDRAWAL: -value,
            EntryType.FEE: -value,
        }[kind]
        fee = value if kind is EntryType.FEE else fee
        return NewEntry(when, kind, signed, fee, notes=notes, external_ref=external_ref,
                        corrects_entry_id=corrects_entry_id)  # fmt: skip
    if kind in (EntryType.BUY, EntryType.SELL):
        if listing_id is None or units_d is None or price_d is None:
            raise ValidationError(f"a {kind} needs --ticker, --units and --price")
        if given_cash is None:
            from ..core.money import round_cash

            value = round_cash(bk.consideration(units_d, price_d, info.quote))
            given_cash = -(value + fee) if kind is EntryType.BUY else value - fee
    elif kind is EntryType.TRANSFER and units_d is None and given_cash is None:
        if amount is None:
            raise ValidationError("a TRANSFER needs --units (with --ticker) or a signed --cash")
        given_cash = to_decimal(amount, what="amount")
    return NewEntry(
        when,
        kind,
        given_cash if given_cash is not None else ZERO,
        fee,
        listing_id,
        units=units_d,
        price=price_d,
        cost_base=to_decimal(cost, what="cost") if cost is not None else None,
        notes=notes,
        external_ref=external_ref,
        corrects_entry_id=corrects_entry_id,
    )


def _lookup(session: Session, ticker: str, exchange: str | None) -> ListingInfo:
    listings = load_listings(session)
    found = _by_ticker(listings).get((ticker.strip().upper(), (exchange or "").strip().upper() or None))
    if found is None:
        where = f" on {exchange.upper()}" if exchange else ""
        raise NotFound(
            f"unknown listing {ticker.upper()}{where} (name the exchange if the ticker is on several)"
        )
    return listings[found]
