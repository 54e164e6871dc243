"""Import a broker file into a portfolio's ledger: one file (or AJ Bell's pair) = one batch.

The parsers (``providers.brokers``) read and check the file alone; this service resolves
instruments to listings, converts prices to each listing's quote scale, pairs corporate-action
movements, attaches each dividend to its payer's listing where it can (else keeps it without
one and says so in its notes), and hands everything to ``ledger.post_entries``, the one path
that validates against the book and appends. So an import is atomic: any bad row refuses the
whole file, and the error names the file, the line and the reason (every line a file alone
can show; the first where the book decides, since what follows depends on it).

Importing the same file again adds nothing: the batch keeps the file's SHA-256
(``ledger_batches.source_sha256``, unique per portfolio), and entries whose ``external_ref``
the portfolio holds already are skipped (so an export overlapping an earlier one adds only
what is new). An import refused because cash would go below zero names what probably caused
it: entries typed by hand or posted by executing a recommendation that the file records again
under its own references (``ledger.repeats_hint``, with the ``ledger correct`` that reverses
them), and an AJ Bell history imported without its cash statement.

A line a file gives in a currency other than GBP (a Trading 212 multi-currency account's USD or
EUR cash) is converted to GBP at the stored rate of its day before anything else
(``import_fx``); without that rate the file is refused, naming the days and the command that
stores the rates.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from operator import attrgetter, methodcaller

from sqlmodel import Session

from ..core.enums import BatchType, CorporateActionType, EntryType
from ..core.errors import FileFormatError, LedgerError, ValidationError
from ..core.money import CONTEXT
from ..core.rows import columns_of, from_columns, only_defaults
from ..core.units import from_major, to_major
from ..db.models import Portfolio, User
from ..engine import book as bk
from ..engine import income as inc
from ..engine.normalize import QuoteUnit, parse_quote_unit
from ..providers.brokers import ParsedEntry, ParsedFile, Source, get_broker_format, load_mapping
from ..providers.brokers.base import Problems
from . import access, import_fx, ledger, registry
from .income import listing_names
from .ledger import BalanceCheck, ListingInfo, NewEntry

FORMATS = ("canonical", "ajbell", "trading212", "freetrade", "investengine")
UNKNOWN_INSTRUMENT = "unknown instrument"
# How far a broker's booking of a corporate action may lie from its recorded effective date.
ACTION_WINDOW = timedelta(days=14)
LABEL_LENGTH = 200  # ledger_batches.label


@dataclass(frozen=True)
class ImportResult:
    portfolio: str
    file: str
    format: str
    batch_id: int | None
    added: int
    skipped: int
    already_imported: bool
    cash_balance: Decimal
    absorbed: int = 0  # corporate-action rows left to a recorded corporate action


def parse_file(
    path: Source,
    *,
    format: str,
    mapping: Source | None = None,
    cash_statement: Source | None = None,
    options: Mapping[str, str] | None = None,
) -> ParsedFile:
    """Parse with the named broker format (no database). ``options`` are the format's own
    (``--option KEY=VALUE``); each format refuses those it does not take."""
    fmt = get_broker_format(format)
    if fmt.name != "ajbell" and (mapping is not None or cash_statement is not None):
        raise ValidationError("--mapping and --cash-statement are for the ajbell format only")
    if fmt.name == "ajbell":
        if options:
            raise ValidationError(f"the ajbell format takes no --option (got {', '.join(options)})")
        sources = (path,) if cash_statement is None else (path, cash_statement)
        # Without a mapping every description is reported as unmapped, all at once.
        return fmt.parse(*sources, mapping=load_mapping(mapping) if mapping is not None else {})
    return fmt.parse(path, **(options or {}))


def import_file(
    session: Session,
    *,
    actor: User,
    portfolio: str | Portfolio,
    path: Source,
    format: str,
    mapping: Source | None = None,
    cash_statement: Source | None = None,
    label: str | None = None,
    now: datetime | None = None,
    force: bool = False,
    options: Mapping[str, str] | None = None,
    on_parsed: Callable[[ParsedFile], None] | None = None,
) -> ImportResult:
    """Import one broker file (AJ Bell: the history and/or its cash statement) as one batch.
    ``force``: record ISA subscriptions over the year's allowance (refused otherwise).
    ``options``: the format's own (``parse_file``). ``on_parsed``: told the parsed file before
    it is checked and written (a progress bar)."""
    folio = access.portfolio_for(session, actor, portfolio, "import into the ledger")
    # A big file makes millions of objects without cycles, all freed before the collector is
    # back (``del``): it would only scan them between the steps, and once more at the end.
    with ledger.paused_gc():
        parsed = parse_file(
            path, format=format, mapping=mapping, cash_statement=cash_statement, options=options
        )
        if on_parsed is not None:
            on_parsed(parsed)
        result = import_parsed(
            session, actor=actor, portfolio=folio, parsed=parsed, label=label, now=now, force=force
        )
        del parsed
    return result


def import_parsed(
    session: Session,
    *,
    actor: User,
    portfolio: str | Portfolio,
    parsed: ParsedFile,
    label: str | None = None,
    now: datetime | None = None,
    force: bool = False,
) -> ImportResult:
    """Resolve and post an already parsed file (a notebook upload, or ``import_file``)."""
    folio = access.portfolio_for(session, actor, portfolio, "import into the ledger")
    if label is not None and len(label) > LABEL_LENGTH:
        raise ValidationError(f"the batch label is {len(label)} characters long; at most {LABEL_LENGTH}")
    listings = ledger.load_listings(session)
    converted = import_fx.convert_foreign_cash(session, parsed)  # lines in USD, EUR…: to GBP first
    with ledger.paused_gc():
        entries, balances, absorbed = _to_new_entries(session, converted.parsed, listings)
    entries = converted.record_originals(entries)
    try:
        result = ledger.post_entries(
            session,
            actor=actor,
            portfolio=folio,
            entries=entries,
            label=label or f"import {parsed.name}"[:LABEL_LENGTH],  # a file name may be 255 long
            batch_type=BatchType.IMPORT,
            source_name=parsed.name[:500],
            source_sha256=parsed.content_sha256,
            balances=balances,
            now=now,
            force=force,
        )
    except (FileFormatError, LedgerError) as exc:
        raise _short_of_cash(session, folio, parsed, entries, listings, exc) from None
    return ImportResult(
        folio.name,
        parsed.name,
        parsed.format,
        result.batch_id,
        result.added,
        result.skipped if not result.already_imported else len(parsed.entries),
        result.already_imported,
        result.cash_balance,
        absorbed,
    )


def _short_of_cash(
    session: Session,
    folio: Portfolio,
    parsed: ParsedFile,
    entries: Sequence[NewEntry],
    listings: Mapping[int, ListingInfo],
    exc: FileFormatError | LedgerError,
) -> FileFormatError | LedgerError:
    """A refusal for cash below zero, told its likely causes: entries typed by hand or posted by
    executing a recommendation that the file records again (and the command that reverses
    them), and the cash the file leaves out, as its parser says (``ParsedFile.cash_hint``: an
    AJ Bell history without its cash statement, InvestEngine's trades without the money paid in).
    A refusal for cash or for selling units not held, when the book holds nothing before the
    file: earlier years not imported yet. Any other refusal is returned as it is."""
    text = str(exc)
    short_of_units = bk.UNITS_NOT_HELD in text
    if bk.CASH_BELOW_ZERO not in text and not short_of_units:
        return exc
    hints = (
        [] if short_of_units else [ledger.repeats_hint(session, folio, entries, listings), parsed.cash_hint]
    )
    if not any(hints):  # nothing else explains it: perhaps the earlier years are missing
        hints.append(ledger.earlier_history_hint(session, folio, entries))
    told = [h for h in hints if h]
    if not told:
        return exc
    if isinstance(exc, FileFormatError):
        return FileFormatError(exc.file, [*exc.problems, *((None, h) for h in told)])
    problems = [*exc.context.get("problems", [exc.message]), *told]  # type: ignore[misc]
    return LedgerError("; ".join([exc.message, *told]), problems=problems)


# --- resolving listings -------------------------------------------------------------------


class _Resolver:
    """Broker names -> listing ids: (ticker, exchange), else ISIN, else a ticker listed once."""

    def __init__(self, listings: Mapping[int, ListingInfo]) -> None:
        self.listings = listings
        self.by_pair: dict[tuple[str, str], int] = {}
        self.by_ticker: dict[str, list[int]] = defaultdict(list)
        self.by_isin: dict[str, list[ListingInfo]] = defaultdict(list)
        for info in listings.values():
            self.by_pair[(info.ticker, info.exchange)] = info.listing_id
            self.by_ticker[info.ticker].append(info.listing_id)
            self.by_isin[info.isin].append(info)
        self.cache: dict[tuple[str | None, str | None, str | None], int | str] = {}

    def __call__(self, ticker: str | None, exchange: str | None, isin: str | None) -> int | str:
        """A listing id, or the reason there is none."""
        key = (ticker, exchange, isin)
        found = self.cache.get(key)
        if found is None:
            found = self.cache[key] = self._resolve(ticker, exchange, isin)
        return found

    def _resolve(self, ticker: str | None, exchange: str | None, isin: str | None) -> int | str:
        ticker = ticker.strip().upper() if ticker else None
        exchange = exchange.strip().upper() if exchange else None
        if ticker and exchange:
            listing_id = self.by_pair.get((ticker, exchange))
            if listing_id is None:
                return f"unknown listing {ticker} on {exchange}: add it with `tradeassist listing add`"
            return listing_id
        if isin:
            candidates = self.by_isin.get(isin.strip().upper(), [])
            if candidates:
                same_ticker = [c for c in candidates if c.ticker == ticker]
                pick = same_ticker or candidates
                return min(pick, key=lambda c: (not c.is_primary, c.listing_id)).listing_id
        if ticker:
            ids = self.by_ticker.get(ticker, [])
            if len(ids) == 1:
                return ids[0]
            if ids:
                return f"ticker {ticker} is listed on several exchanges: name the exchange in the mapping"
        what = " ".join(x for x in (ticker, f"(ISIN {isin})" if isin else None) if x)
        what = what or "(none named)"
        return f"{UNKNOWN_INSTRUMENT} {what}: add its listing with `tradeassist listing add`"


def _scaled_price(price: Decimal, price_currency: str | None, quote: bk.Quote) -> Decimal | str:
    """The price in the listing's quote scale (pence for GBX), or why it cannot be."""
    if price_currency is None:
        return price
    try:
        unit = parse_quote_unit(price_currency)
    except ValidationError as exc:  # a file's own spelling (Trading 212's price currency): its line
        return str(exc)
    if unit.currency != quote.currency:
        return f"the price is in {price_currency} but the listing trades in {quote.currency}"
    listing_scale = QuoteUnit(quote.currency, quote.exponent).scale
    if unit.scale == listing_scale:
        return price
    return from_major(to_major(price, unit.scale), listing_scale)


# --- building the entries -----------------------------------------------------------------


def _to_new_entries(
    session: Session, parsed: ParsedFile, listings: Mapping[int, ListingInfo]
) -> tuple[list[NewEntry], list[BalanceCheck], int]:
    resolve = _Resolver(listings)
    problems = Problems()
    unknown: dict[tuple[str, str], list[ParsedEntry]] = {}  # (file, ISIN or ticker) -> its rows
    plain = _plain_entries(parsed.entries, resolve, listings)
    converted: list[NewEntry | None] = []
    payers: list[inc.ListingName] | None = None  # read once, and only for a file with dividends
    for p in () if plain is not None else parsed.entries:  # any other file, entry by entry
        if p.entry_type is EntryType.DIVIDEND:
            payers = listing_names(session, listings) if payers is None else payers
            # Our own CSV names listings explicitly: one it does not know is an error there.
            strict = problems if parsed.format == "canonical" else None
            converted.append(_dividend(p, resolve, payers, strict))
            continue
        converted.append(_convert(p, resolve, listings, problems, unknown))
    for rows in unknown.values():
        problems.add(rows[0].source, rows[0].line, _unknown_instrument(session, rows))
    problems.raise_if_any()
    entries = plain if plain is not None else [e for e in converted if e is not None]
    order, absorbed = _pair_corporate_actions(session, parsed.entries, entries, listings, problems)
    problems.raise_if_any()
    final = entries if isinstance(order, range) else [entries[i] for i in order]  # range: as they are
    # Positions moved (a receipt placed after its removal; absorbed rows dropped) only for
    # entries that move no cash, so a balance holds after the same cash entries as before.
    position_of = {old: new for new, old in enumerate(order)} if parsed.balances else {}
    balances = []
    for b in parsed.balances:
        before = [position_of[i] for i in range(b.after_entries) if i in position_of]
        after = max(before) + 1 if before else 0
        balances.append(BalanceCheck(after, b.balance, b.source, b.line))
    return final, balances, absorbed


def _plain_entries(
    parsed: Sequence[ParsedEntry], resolve: _Resolver, listings: Mapping[int, ListingInfo]
) -> list[NewEntry] | None:
    """What ``_convert`` makes of each entry, a column at a time (a million-row canonical file),
    for a file of no dividends whose every listing is known and trades in GBP, and whose entries
    say nothing more than the canonical format does (no price currency, no stated consideration,
    nothing else ``_convert`` reads); None for any other, which goes entry by entry."""
    columns = columns_of(ParsedEntry, parsed)
    if not parsed or EntryType.DIVIDEND in columns["entry_type"]:
        return None
    if not only_defaults(ParsedEntry, columns, set(columns).difference(_PLAIN_FIELDS)):
        return None
    names = list(zip(columns["ticker"], columns["exchange"], columns["isin"], strict=True))
    ids: dict[tuple[str | None, str | None, str | None], int | None] = {}
    for ticker, exchange, isin in set(names):
        found = resolve(ticker, exchange, isin) if ticker or isin else None
        if isinstance(found, str) or (found is not None and listings[found].quote.currency != "GBP"):
            return None
        ids[(ticker, exchange, isin)] = found
    fields = {"cash_amount_base", "fees_base", "units", "price", "notes", "external_ref", "source", "line"}
    return from_columns(
        NewEntry,
        len(parsed),
        {"entry_time": columns["entry_time"], "entry_type": columns["entry_type"],
         "listing_id": map(ids.__getitem__, names), **{name: columns[name] for name in fields}},
    )  # fmt: skip


_extra, _corporate_action = attrgetter("extra"), methodcaller("get", "corporate_action")
# What ``_plain_entries`` reads of a parsed entry (or, for the description and the trace
# details, knows ``_convert`` leaves alone); every other field must hold its default.
_PLAIN_FIELDS = frozenset(
    {"source", "line", "entry_time", "entry_type", "cash_amount_base", "fees_base", "ticker", "exchange",
     "isin", "description", "units", "price", "external_ref", "notes", "extra"}
)  # fmt: skip


def _convert(
    p: ParsedEntry,
    resolve: _Resolver,
    listings: Mapping[int, ListingInfo],
    problems: Problems,
    unknown: dict[tuple[str, str], list[ParsedEntry]],
) -> NewEntry | None:
    listing_id: int | None = None
    price = p.price
    original_currency = original_amount = None
    if p.ticker or p.isin:
        found = resolve(p.ticker, p.exchange, p.isin)
        if isinstance(found, str) and found.startswith(UNKNOWN_INSTRUMENT):
            unknown.setdefault((p.source, p.isin or p.ticker or ""), []).append(p)  # told once, below
            return None
        if isinstance(found, str):
            problems.add(p.source, p.line, found)
            return None
        listing_id = found
        quote = listings[listing_id].quote
        if price is not None:
            scaled = _scaled_price(price, p.price_currency, quote)
            if isinstance(scaled, str):
                problems.add(p.source, p.line, scaled)
                return None
            price = scaled
            if quote.currency != "GBP" and p.units is not None:
                original_currency = quote.currency
                original_amount = bk.consideration(abs(p.units), price, quote)
    cost = None
    if p.entry_type is EntryType.TRANSFER and p.units is not None and p.units > 0:
        cost = p.consideration_base  # an in-specie transfer in: the book cost it brings
    return NewEntry(
        p.entry_time,
        p.entry_type,
        p.cash_amount_base,
        p.fees_base,
        listing_id,
        None,
        None,
        p.units,
        price,
        cost,
        original_currency,
        original_amount,
        p.notes,
        p.external_ref,
        None,
        p.source,
        p.line,
    )


def _unknown_instrument(session: Session, rows: Sequence[ParsedEntry]) -> str:
    """One reason for every row of an instrument no listing matches: its ISIN, ticker and name,
    the lines it is on, and the commands that register it (the instrument unless it is
    registered already, then its listing)."""
    first = rows[0]
    name = next((r.description for r in rows if r.description), None)
    lines = [r.line for r in rows]
    where = f"line {lines[0]} (1 line)" if len(lines) == 1 else f"lines {', '.join(map(str, lines))}"
    where += "" if len(lines) == 1 else f" ({len(lines)} lines)"
    parts = (f"ISIN {first.isin}" if first.isin else None, f"ticker {first.ticker}" if first.ticker else None)
    named = ", ".join(x for x in (*parts, name) if x)
    quoted_in = next((r.price_currency for r in rows if r.price_currency), None)
    currency, scale = _listing_unit(quoted_in)
    isin = first.isin or "<ISIN>"
    listing = (
        f"`tradeassist listing add --isin {isin} --ticker {first.ticker or '<TICKER>'} --exchange <MIC> "
        f"--currency {currency} --quote-scale {scale}`"
    )
    if first.isin and registry.find_instrument(session, first.isin) is not None:
        return f"instrument {named} has no listing, on {where}: add one with {listing}, then import again"
    add = f"`tradeassist instrument add --isin {isin} --type <ETF|STOCK|ETC|FUND>"
    add += f" --name {shlex.quote(name)}`" if name else "`"
    return (
        f"{UNKNOWN_INSTRUMENT} ({named}) on {where}: add it with {add}, then its listing with {listing} "
        "(<MIC>: its exchange, e.g. XLON or XNAS), then import again"
    )


def _listing_unit(price_currency: str | None) -> tuple[str, str]:
    """The --currency and --quote-scale a file's price currency suggests for a new listing: pence
    are a GBP listing quoted in GBX; a price in pounds does not say whether the listing quotes
    in pounds or pence."""
    if not price_currency:
        return "<CURRENCY>", "<SCALE>"
    try:
        unit = parse_quote_unit(price_currency)
    except ValidationError:
        return "<CURRENCY>", "<SCALE>"
    if unit.currency == "GBP":
        return "GBP", "GBX" if unit.scale != "GBP" else "<GBP|GBX>"
    return unit.currency, unit.scale


def _dividend(
    p: ParsedEntry, resolve: _Resolver, payers: Sequence[inc.ListingName], strict: Problems | None
) -> NewEntry | None:
    """A DIVIDEND of the listing its payer names: the ticker/ISIN the file gives (as trades are
    resolved), else the payer's name matched to the registry's instruments. In a broker's file a
    payer neither names is no reason to refuse the file: the dividend is kept without a listing
    and its notes say why. With ``strict`` (the canonical CSV) an unknown listing is a problem."""
    listing_id: int | None = None
    why = "no listing, ISIN or instrument name in the registry matches the payer"
    if p.ticker or p.isin:
        found = resolve(p.ticker, p.exchange, p.isin)
        if isinstance(found, int):
            listing_id = found
        elif strict is not None:
            strict.add(p.source, p.line, found)
            return None
        else:
            why = found
    if listing_id is None and p.description:
        listing_id = inc.match_payer(p.description, payers)
    notes = p.notes
    if listing_id is None and strict is None:
        notes = f"{p.notes or 'dividend'}; listing unknown: {why}"
    return NewEntry(
        p.entry_time, EntryType.DIVIDEND, p.cash_amount_base, p.fees_base, listing_id,
        notes=notes, external_ref=p.external_ref, source=p.source, line=p.line,
    )  # fmt: skip


def _pair_corporate_actions(
    session: Session,
    parsed: Sequence[ParsedEntry],
    entries: list[NewEntry],
    listings: Mapping[int, ListingInfo],
    problems: Problems,
) -> tuple[Sequence[int], int]:
    """Corporate-action removals and receipts (AJ Bell's "Removal/Receipt of stock following a
    corporate action", Trading 212's "Stock split close/open") on one day, one of each:

    * if a recorded corporate action explains them (its instrument, within two weeks, the
      units received = removed × num/den), they are dropped: the book applies the action;
    * otherwise they become a transfer out and a transfer in that carries the removed cost
      (``cost_from``), so the pooled cost moves to the new shares as Section 104 requires.

    Returns the order to post the entries in (a ``range`` when it is theirs), and how many rows
    were dropped.
    """
    if not any(map(_corporate_action, map(_extra, parsed))):  # a Python frame per row saved
        return range(len(entries)), 0
    marked = [i for i, p in enumerate(parsed) if p.extra.get("corporate_action")]
    by_day: dict[object, list[int]] = defaultdict(list)
    for i in marked:
        by_day[parsed[i].entry_time.date()].append(i)
    actions = ledger.load_actions(session, listings)
    drop: set[int] = set()
    after: dict[int, int] = {}  # receipt -> removal it follows
    for day, rows in by_day.items():
        outs = [i for i in rows if (entries[i].units or 0) < 0]
        ins = [i for i in rows if (entries[i].units or 0) > 0]
        if len(outs) != 1 or len(ins) != 1:
            for i in rows:
                problems.add(
                    parsed[i].source,
                    parsed[i].line,
                    f"a corporate action on {day}: expected one removal and one receipt that day, found "
                    f"{len(outs)} and {len(ins)}; record it with `tradeassist corporate-action add`",
                )
            continue
        out, receipt = outs[0], ins[0]
        if _explained(entries[out], entries[receipt], listings, actions):
            drop |= {out, receipt}
        else:
            after[receipt] = out
    order = [i for i in range(len(entries)) if i not in drop and i not in after]
    for receipt, out in after.items():
        order.insert(order.index(out) + 1, receipt)
    # cost_from names the removal by its new position
    position = {old: new for new, old in enumerate(order)}
    for receipt, out in after.items():
        when = max(entries[receipt].entry_time, entries[out].entry_time)  # never before its removal
        entries[receipt] = entries[receipt]._replace(cost_from=position[out], cost_base=None, entry_time=when)
    return order, len(drop)


def _explained(
    out: NewEntry, receipt: NewEntry, listings: Mapping[int, ListingInfo], actions: Sequence[bk.Action]
) -> bool:
    if out.listing_id is None or receipt.listing_id is None or out.units is None or receipt.units is None:
        return False  # not a movement of units of a known listing: nothing an action explains
    old = listings[out.listing_id].quote.instrument_id
    new = listings[receipt.listing_id].quote.instrument_id
    day = out.entry_time.date()
    for action in actions:
        if action.instrument_id != old or abs(action.effective - day) > ACTION_WINDOW:
            continue
        if action.action_type is CorporateActionType.ISIN_CHANGE:
            if action.target_instrument_id != new:
                continue
        elif new != old:
            continue
        num, den = action.ratio_num or Decimal(1), action.ratio_den or Decimal(1)
        removed, received = -out.units, receipt.units
        if CONTEXT.multiply(received, den) == CONTEXT.multiply(removed, num):
            return True
    return False


__all__ = ["FORMATS", "FileFormatError", "ImportResult", "import_file", "import_parsed", "parse_file"]
