"""AJ Bell exports: the transaction history and the cash statement, read together.

AJ Bell gives two CSV downloads per account (UTF-8 with a BOM, ``dd/mm/yyyy``, newest first):

* transaction history ``Date,Transaction,Description,Quantity,Amount (GBP),Reference``:
  one line per trade or stock movement, units and the GBP amount, no cash lines;
* cash statement ``Date,Description,Reference,Settlement date,Receipt (GBP),Payment (GBP),
  Balance (GBP)``: every cash movement with a running balance (payments negative, ``-`` for
  empty), opening with ``* BALANCE B/F *``.

Neither names instruments by ticker or ISIN, and the two files can name the same fund
differently (a fund renamed between downloads: "Lyxor Core UK Govt Bd (DR) ETF D GBP" in the
history is "Amundi UK Govt Bd ETF Dist" in the statement). So:

* Instruments come from the history's Description through a mapping file the user keeps
  (``description,ticker,exchange``; ``load_mapping``). Every unmapped description is
  reported at once (``UnmappedDescriptionsError.descriptions``, ``.mapping_template()``).
* A trade is one entry: units and amount from the history line, matched to the statement's
  ``Purchase N …``/``Sale N …`` line by (date, side, quantity), by equal amount first.
  fees = payment − amount for a purchase, amount − receipt for a sale; the cash is the
  statement's. The statement line adds no entry of its own, so nothing is counted twice.
  A statement trade with no history line inside the history is an error; a history trade
  inside the statement's dates with no statement line is an error; a history trade outside
  them is kept with fees 0 (``extra["cash_statement"] = "not covered"``).
* Price: the history gives only the GBP amount, so ``price`` = amount / quantity in GBP,
  rounded to 8 decimal places (``price_currency="GBP"``; the service converts for a GBX
  listing), and ``consideration_base`` keeps the exact amount.
* Cash lines: Subscription/Contribution/Debit card subscription/Tax relief → CONTRIBUTION;
  ``Dividend N <name>`` or ``Div N <name>`` → INTEREST with notes ``dividend: …`` (the
  ledger has no DIVIDEND type; a dividend is cash income, the units held and the payer are
  kept in ``extra``); ``Gross interest …`` → INTEREST; charges and fees (``FX Charge``,
  ``Shares Custody Charge - …``) → FEE; ``Transfer Value`` and other transfers → cash
  TRANSFER; withdrawals → WITHDRAWAL. ``* BALANCE B/F *`` is the opening balance, not an entry.
* History ``Transfer In``/``Transfer Out`` → unit TRANSFER (+/−), no cash;
  ``Receipt``/``Removal of stock following a corporate action`` → unit TRANSFER (+/−) with
  notes ``corporate action: …`` and ``extra["corporate_action"]`` = receipt/removal, for the
  service to pair into a corporate action.
* Running balances: every statement line's balance comes back as a ``StatementBalance``; the
  statement is also checked against itself (each balance = previous + this line's amount).
* ``external_ref``: the history's Reference for trades and stock movements (the statement's
  reference goes to ``extra["cash_ref"]``), the statement's Reference for cash lines, and a
  content hash where the reference is ``-``.
* Without a cash statement, fees are 0 and cash = ∓amount. Without a history, statement
  trades become entries from ``Purchase N <name>`` (mapped by that name), priced at
  payment / N, which includes any dealing charge.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from ...core.enums import EntryType
from ...core.errors import FileFormatError, ValidationError
from ...core.money import CONTEXT, ZERO, to_decimal
from .base import (
    ContentRefs,
    FrozenMap,
    ParsedEntry,
    ParsedFile,
    Problems,
    Source,
    SourceFile,
    SourceText,
    StatementBalance,
    combined_sha256,
    convention_problem,
    decimal_key,
    duplicate_refs,
    header_error,
    is_blank,
    midnight_utc,
    oldest_first,
    parse_uk_date,
    read_source,
    repeated_references,
)

FORMAT = "ajbell"
HISTORY = "ajbell-history"
CASH = "ajbell-cash-statement"
HISTORY_HEADER = ("Date", "Transaction", "Description", "Quantity", "Amount (GBP)", "Reference")
CASH_HEADER = (
    "Date",
    "Description",
    "Reference",
    "Settlement date",
    "Receipt (GBP)",
    "Payment (GBP)",
    "Balance (GBP)",
)
MAPPING_HEADER = ("description", "ticker", "exchange")
PRICE_PLACES = Decimal("1E-8")

# History "Transaction" values: the entry type, the sign of the units, and a note.
_HISTORY_KINDS: dict[str, tuple[EntryType, int, str | None]] = {
    "purchase": (EntryType.BUY, 1, None),
    "sale": (EntryType.SELL, -1, None),
    "transfer in": (EntryType.TRANSFER, 1, "transfer in (in specie)"),
    "transfer out": (EntryType.TRANSFER, -1, "transfer out (in specie)"),
    "receipt of stock following a corporate action": (
        EntryType.TRANSFER,
        1,
        "corporate action: receipt of stock",
    ),
    "removal of stock following a corporate action": (
        EntryType.TRANSFER,
        -1,
        "corporate action: removal of stock",
    ),
}
_HISTORY_NAMES = (
    "Purchase",
    "Sale",
    "Transfer In",
    "Transfer Out",
    "Receipt of stock following a corporate action",
    "Removal of stock following a corporate action",
)
_TRADE_LINE = re.compile(r"^(Purchase|Sale)\s+(\d[\d,]*(?:\.\d+)?)\s+(\S.*)$", re.IGNORECASE)
_DIVIDEND_LINE = re.compile(r"^(?:Dividend|Div)\b\.?\s*(\d[\d,]*(?:\.\d+)?)?\s*(.*)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ListingRef:
    """Where a broker's description points: a ticker and (optionally) an exchange."""

    ticker: str
    exchange: str | None = None


def normalise_description(text: str) -> str:
    """Descriptions match ignoring case and runs of spaces (AJ Bell pads with several)."""
    return " ".join(text.split()).casefold()


def load_mapping(source: Source) -> dict[str, ListingRef]:
    """Read the user's ``description,ticker,exchange`` CSV; rows without a ticker are skipped.

    Keys are normalised descriptions (see ``normalise_description``).
    """
    src = read_source(source)
    rows = list(csv.reader(src.text.splitlines()))
    header = tuple(cell.strip().lower() for cell in rows[0])
    if header[:2] != MAPPING_HEADER[:2] or header[2:] not in ((), ("exchange",)):
        raise header_error(src.name, rows[0], MAPPING_HEADER)
    problems = Problems()
    mapping: dict[str, ListingRef] = {}
    first_line: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if is_blank(row):
            continue
        cells = [cell.strip() for cell in row] + ["", ""]
        description, ticker, exchange = cells[0], cells[1].upper(), cells[2].upper() or None
        if not description:
            problems.add(src.name, line, "the description is empty")
            continue
        if not ticker:
            continue  # a template line not filled in yet: still unmapped
        key = normalise_description(description)
        ref = ListingRef(ticker, exchange)
        if key in mapping and mapping[key] != ref:
            problems.add(src.name, line, f"{description!r} is mapped differently on line {first_line[key]}")
            continue
        mapping[key] = ref
        first_line.setdefault(key, line)
    problems.raise_if_any()
    return mapping


# --- reading the two files --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _HistoryRow:
    line: int
    on: date
    kind: str  # the Transaction text, lower-cased
    description: str
    quantity: Decimal
    amount: Decimal | None
    reference: str | None


@dataclass(frozen=True, slots=True)
class _CashRow:
    line: int
    on: date
    description: str
    reference: str | None
    settlement: str | None
    receipt: Decimal
    payment: Decimal  # as a magnitude (≥ 0)
    balance: Decimal

    @property
    def net(self) -> Decimal:
        return self.receipt - self.payment


def _cell(text: str) -> str | None:
    text = text.strip()
    return None if text in ("", "-") else text


def _amount(text: str, what: str) -> Decimal | None:
    text = _cell(text) or ""
    return to_decimal(text, what=what) if text else None


def _rows(src: SourceText, width: int, problems: Problems) -> list[tuple[int, list[str]]]:
    rows = []
    for index, row in enumerate(csv.reader(src.text.splitlines()[1:]), start=2):
        if is_blank(row):
            continue
        if len(row) != width:
            problems.add(src.name, index, f"has {len(row)} fields, expected {width}")
            continue
        rows.append((index, row))
    return rows


def _read_history(src: SourceText, problems: Problems) -> list[_HistoryRow]:
    result = []
    for line, row in _rows(src, len(HISTORY_HEADER), problems):
        on_text, kind_text, description, quantity_text, amount_text, reference = row
        try:
            on = parse_uk_date(on_text)
            kind = " ".join(kind_text.split()).lower()
            if kind not in _HISTORY_KINDS:
                known = ", ".join(_HISTORY_NAMES)
                raise ValueError(f"transaction {kind_text!r} is not one of: {known}")
            if not description.strip():
                raise ValueError("the description is empty")
            quantity = _amount(quantity_text, "Quantity")
            if quantity is None or quantity == 0:
                raise ValueError("Quantity is empty or zero")
            amount = _amount(amount_text, "Amount (GBP)")
            if amount is None and kind in ("purchase", "sale"):
                raise ValueError("Amount (GBP) is empty")
        except (ValueError, ValidationError) as exc:
            problems.add(src.name, line, str(exc))
            continue
        amount = abs(amount) if amount is not None else None
        row = _HistoryRow(line, on, kind, description.strip(), abs(quantity), amount, _cell(reference))
        result.append(row)
    repeated_references(src.name, [(r.line, r.reference) for r in result], problems)
    return oldest_first(result, key=lambda r: r.on)


def _read_cash(src: SourceText, problems: Problems) -> list[_CashRow]:
    result = []
    for line, row in _rows(src, len(CASH_HEADER), problems):
        on_text, description, reference, settlement, receipt_text, payment_text, balance_text = row
        try:
            on = parse_uk_date(on_text)
            receipt = _amount(receipt_text, "Receipt (GBP)") or ZERO
            payment = _amount(payment_text, "Payment (GBP)") or ZERO
            balance = _amount(balance_text, "Balance (GBP)")
            if balance is None:
                raise ValueError("Balance (GBP) is empty")
            if receipt < 0:
                raise ValueError(f"Receipt (GBP) {receipt} is negative")
        except (ValueError, ValidationError) as exc:
            problems.add(src.name, line, str(exc))
            continue
        # Payments are printed negative; a positive one means the same outflow.
        description = " ".join(description.split())
        row = _CashRow(
            line, on, description, _cell(reference), _cell(settlement), receipt, abs(payment), balance
        )
        result.append(row)
    repeated_references(src.name, [(r.line, r.reference) for r in result], problems)
    return oldest_first(result, key=lambda r: r.on)


def _check_running_balance(src: SourceText, rows: list[_CashRow], problems: Problems) -> None:
    """Each balance must be the previous one plus this line's amount (lines missing or
    reordered show up here). After a mismatch, carry on from the stated balance."""
    running: Decimal | None = None
    for row in rows:
        if _is_opening(row):
            running = row.balance
            continue
        if running is not None and running + row.net != row.balance:
            problems.add(
                src.name,
                row.line,
                f"balance {row.balance} does not follow: previous balance {running} "
                f"{'+' if row.net >= 0 else '−'} {abs(row.net)} = {running + row.net}",
            )
        running = row.balance


def _is_opening(row: _CashRow) -> bool:
    return "BALANCE B/F" in row.description.upper()


# --- turning rows into entries ----------------------------------------------------------


@dataclass
class _Build:
    """What the parse accumulates: entries with their sort keys, problems, unmapped names."""

    mapping: Mapping[str, ListingRef]
    problems: Problems
    items: list[tuple[tuple[date, int, int], ParsedEntry | None, _CashRow | None]] = field(
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

    def add(self, key: tuple[date, int, int], entry: ParsedEntry | None, cash: _CashRow | None) -> None:
        self.items.append((key, entry, cash))


def _derived_price(amount: Decimal, units: Decimal) -> Decimal:
    # The only place an AJ Bell price is made up: amount / units, 8 places, half-even.
    return (abs(amount) / abs(units)).quantize(PRICE_PLACES, rounding=ROUND_HALF_EVEN, context=CONTEXT)


def _trade_entry(
    build: _Build,
    source: str,
    h: _HistoryRow,
    cash: _CashRow | None,
    ref: str,
    *,
    flag_uncovered: bool,
) -> ParsedEntry | None:
    entry_type, sign, note = _HISTORY_KINDS[h.kind]
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
    price = _derived_price(amount, h.quantity) if amount else None
    # Trades carry unsigned units (the type says which way); stock movements are signed.
    units = -h.quantity if entry_type is EntryType.TRANSFER and sign < 0 else h.quantity
    problem = convention_problem(entry_type, listing.ticker, units, price, fees, cash_amount)
    if problem:
        build.problems.add(source, h.line, problem)
        return None
    return ParsedEntry(
        source, h.line, midnight_utc(h.on), entry_type, cash_amount, fees,
        listing.ticker, listing.exchange, None, h.description, units, price,
        "GBP" if price is not None else None, h.amount, ref, note, FrozenMap(extra),
    )  # fmt: skip


def _cash_entry(build: _Build, source: str, row: _CashRow, ref: str) -> ParsedEntry | None:
    """A statement line that is not a matched trade: contributions, income, charges…"""
    text = row.description
    lowered = text.lower()
    net = row.net
    extra: dict[str, str] = {}
    notes: str | None = text
    if (trade := _TRADE_LINE.match(text)) is not None:
        return _statement_trade(build, source, row, ref, trade)
    if (dividend := _DIVIDEND_LINE.match(text)) is not None and lowered.startswith(("dividend", "div ")):
        entry_type = EntryType.INTEREST
        held, payer = dividend.group(1), " ".join(dividend.group(2).split())
        notes = f"dividend: {payer}" + (f" ({held} units)" if held else "")
        extra = {"dividend_of": payer} | ({"dividend_units": held.replace(",", "")} if held else {})
    elif "interest" in lowered:
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
        external_ref=ref, notes=notes, extra=FrozenMap(extra),
    )  # fmt: skip


def _statement_trade(
    build: _Build, source: str, row: _CashRow, ref: str, trade: re.Match[str]
) -> ParsedEntry | None:
    """A trade known only from the cash statement (no history file given)."""
    side, quantity_text, name = trade.groups()
    units = to_decimal(quantity_text, what="quantity")
    buy = side.lower() == "purchase"
    listing = build.listing(name, source, row.line)
    if listing is None:
        return None
    total = row.payment if buy else row.receipt
    entry_type = EntryType.BUY if buy else EntryType.SELL
    cash_amount = -total if buy else total
    price = _derived_price(total, units)
    problem = convention_problem(entry_type, listing.ticker, units, price, ZERO, cash_amount)
    if problem:
        build.problems.add(source, row.line, problem)
        return None
    notes = "from the cash statement alone: the price includes any dealing charge"
    extra = {"settlement_date": row.settlement} if row.settlement else {}
    return ParsedEntry(
        source, row.line, midnight_utc(row.on), entry_type, cash_amount, ZERO,
        listing.ticker, listing.exchange, None, name, units, price, "GBP", None, ref, notes, FrozenMap(extra),
    )  # fmt: skip


def _match_trades(
    history: list[_HistoryRow], cash: list[_CashRow]
) -> tuple[dict[int, _CashRow], list[_CashRow]]:
    """Pair history trades with statement trade lines by (date, side, quantity).

    Returns the statement line matched to each history line (by history line number) and
    the statement trade lines left unmatched. Equal amounts pair first, then file order.
    """
    open_lines: dict[tuple[date, bool, Decimal], list[_CashRow]] = defaultdict(list)
    for row in cash:
        if (trade := _TRADE_LINE.match(row.description)) is not None:
            buy = trade.group(1).lower() == "purchase"
            open_lines[(row.on, buy, to_decimal(trade.group(2)))].append(row)
    matched: dict[int, _CashRow] = {}
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


def parse_ajbell(*sources: Source, mapping: Mapping[str, ListingRef | tuple[str, str | None]]) -> ParsedFile:
    """Parse an AJ Bell transaction history and/or cash statement (told apart by header).

    ``mapping`` maps descriptions to listings (``load_mapping``, or a dict of description →
    ``ListingRef``/``(ticker, exchange)``). Raises ``UnmappedDescriptionsError`` listing every
    description missing from it, or ``FileFormatError`` naming every bad line.
    """
    texts = [read_source(s) for s in sources]
    if not texts:
        raise ValidationError("give an AJ Bell transaction history, a cash statement, or both")
    history_src, cash_src = _identify(texts)
    problems = Problems()
    lookup = {
        normalise_description(k): v if isinstance(v, ListingRef) else ListingRef(v[0].upper(), v[1])
        for k, v in mapping.items()
    }
    build = _Build(lookup, problems)
    history = _read_history(history_src, problems) if history_src else []
    cash = _read_cash(cash_src, problems) if cash_src else []
    if cash_src:
        _check_running_balance(cash_src, cash, problems)
    for src, rows in ((history_src, history), (cash_src, cash)):
        if src and not rows and not problems.lines(src.name):
            problems.add(src.name, None, "has a header but no entries")

    matched: dict[int, _CashRow] = {}
    if history_src and cash_src:
        matched, leftover = _match_trades(history, cash)
        for row in leftover:
            problems.add(
                cash_src.name,
                row.line,
                f"{row.description!r} has no {row.on:%d/%m/%Y} trade of that quantity in {history_src.name}",
            )
        skip = {row.line for row in leftover} | {row.line for row in matched.values()}
    else:
        skip = set()

    if history_src is not None:
        _add_history(build, history_src, history, cash_src, cash, matched)
    if cash_src is not None:
        cash_refs = ContentRefs(CASH)
        for position, row in enumerate(cash):
            if row.line in skip:
                continue
            if _is_opening(row):
                build.add((row.on, 1, position), None, row)
                continue
            ref = row.reference or cash_refs(
                row.on.isoformat(), row.description, decimal_key(row.receipt), decimal_key(row.payment)
            )
            build.add((row.on, 1, position), _cash_entry(build, cash_src.name, row, ref), row)

    entries = [e for _, e, _ in build.items if e is not None]
    duplicate_refs(entries, problems)
    unmapped = sorted((spelling for spelling, _ in build.unmapped.values()), key=str.casefold)
    for description, where in sorted(build.unmapped.values(), key=lambda item: item[0].casefold()):
        also = ", ".join(str(ln) for _, ln in where[1:])
        problems.add(
            where[0][0],
            where[0][1],
            f"description {description!r} is not in the mapping" + (f" (also lines {also})" if also else ""),
        )
    problems.raise_if_any(unmapped=unmapped)
    return _assemble(texts, history_src, cash_src, build, cash)


def _add_history(
    build: _Build,
    history_src: SourceText,
    history: list[_HistoryRow],
    cash_src: SourceText | None,
    cash: list[_CashRow],
    matched: dict[int, _CashRow],
) -> None:
    refs = ContentRefs(HISTORY)
    cash_position = {row.line: position for position, row in enumerate(cash)}
    first_day = min((r.on for r in cash), default=None)
    last_day = max((r.on for r in cash), default=None)
    for position, h in enumerate(history):
        ref = h.reference or refs(
            h.on.isoformat(), h.kind, h.description, decimal_key(h.quantity), decimal_key(h.amount)
        )
        partner = matched.get(h.line)
        covered = first_day is not None and last_day is not None and first_day <= h.on <= last_day
        if cash_src is not None and partner is None and covered and h.kind in ("purchase", "sale"):
            build.problems.add(
                history_src.name,
                h.line,
                f"{h.kind.capitalize()} of {h.quantity} {h.description!r} on {h.on:%d/%m/%Y} has no "
                f"matching '{h.kind.capitalize()} {h.quantity} …' line in {cash_src.name}",
            )
            continue
        flag_uncovered = cash_src is not None and not covered
        entry = _trade_entry(build, history_src.name, h, partner, ref, flag_uncovered=flag_uncovered)
        if partner is not None:
            build.add((partner.on, 1, cash_position[partner.line]), entry, partner)
        else:
            build.add((h.on, 0, position), entry, None)


def _assemble(
    texts: list[SourceText],
    history_src: SourceText | None,
    cash_src: SourceText | None,
    build: _Build,
    cash: list[_CashRow],
) -> ParsedFile:
    ordered = sorted(build.items, key=lambda item: item[0])
    entries: list[ParsedEntry] = []
    balances: list[StatementBalance] = []
    for _, entry, row in ordered:
        if entry is not None:
            entries.append(entry)
        if row is not None and cash_src is not None:
            ref = None if entry is None else entry.external_ref
            balances.append(StatementBalance(cash_src.name, row.line, row.on, row.balance, len(entries), ref))
    if cash and not _is_opening(cash[0]) and cash_src is not None:
        # No "* BALANCE B/F *" line: the opening balance is the first balance less its amount.
        first = cash[0]
        index = next(i for i, b in enumerate(balances) if b.line == first.line)
        opening = StatementBalance(
            cash_src.name,
            first.line,
            first.on,
            first.balance - first.net,
            balances[index].after_entries - 1,
            None,
        )
        balances.insert(index, opening)
    sources = tuple(SourceFile(t.name, t.sha256, HISTORY if t is history_src else CASH) for t in texts)
    name = " + ".join(t.name for t in texts)
    return ParsedFile(name, FORMAT, tuple(entries), combined_sha256(sources), sources, tuple(balances))


def _identify(texts: list[SourceText]) -> tuple[SourceText | None, SourceText | None]:
    history = cash = None
    for src in texts:
        header = tuple(cell.strip() for cell in next(csv.reader(src.text.splitlines()[:1]), []))
        if header == HISTORY_HEADER and history is None:
            history = src
        elif header == CASH_HEADER and cash is None:
            cash = src
        elif header in (HISTORY_HEADER, CASH_HEADER):
            raise FileFormatError(src.name, [(None, "a second file of the same kind; give one of each")])
        else:
            raise FileFormatError(
                src.name,
                [
                    (
                        1,
                        f"the header is {','.join(header)!r}; expected an AJ Bell transaction history "
                        f"({','.join(HISTORY_HEADER)!r}) or cash statement ({','.join(CASH_HEADER)!r})",
                    )
                ],
            )
    return history, cash


class AJBellFormat:
    name = FORMAT
    title = "AJ Bell transaction history and cash statement (CSV)"

    def parse(self, *sources: Source, **options: object) -> ParsedFile:
        mapping = options.pop("mapping", None)
        if options:
            raise ValidationError(f"unknown options for the AJ Bell format: {', '.join(options)}")
        if not isinstance(mapping, Mapping):
            raise ValidationError("the AJ Bell format needs mapping= (see load_mapping)")
        return parse_ajbell(*sources, mapping=mapping)
