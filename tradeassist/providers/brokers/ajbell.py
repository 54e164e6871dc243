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
  ``Dividend N <name>`` or ``Div N <name>`` → DIVIDEND with notes ``dividend: …`` (cash
  income; the units held and the payer are kept in ``extra``, the payer in ``description``).
  The payer's name goes through the mapping too: a description it is, or begins for one
  listing only (AJ Bell cuts names short), gives the dividend its listing. A payer the
  mapping does not name is not an error: the service tries the registry's instrument names,
  else keeps the dividend without a listing. ``Gross interest …`` → INTEREST; charges and fees (``FX Charge``,
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

from collections.abc import Mapping

from ...core.errors import ValidationError
from .ajbell_entries import Build, cash_entry, match_trades, trade_entry
from .ajbell_files import (
    CASH,
    CASH_HEADER,
    HISTORY,
    HISTORY_HEADER,
    CashRow,
    HistoryRow,
    check_running_balance,
    identify,
    is_opening,
    read_cash,
    read_history,
)
from .ajbell_mapping import MAPPING_HEADER, ListingRef, load_mapping, normalise_description
from .base import (
    PRICE_PLACES,
    ContentRefs,
    ParsedEntry,
    ParsedFile,
    Problems,
    Source,
    SourceFile,
    SourceText,
    StatementBalance,
    check_parsed_entries,
    combined_sha256,
    decimal_key,
    duplicate_refs,
    read_source,
)

__all__ = [
    "CASH",
    "CASH_HEADER",
    "FORMAT",
    "HISTORY",
    "HISTORY_HEADER",
    "MAPPING_HEADER",
    "PRICE_PLACES",
    "AJBellFormat",
    "ListingRef",
    "load_mapping",
    "normalise_description",
    "parse_ajbell",
]

FORMAT = "ajbell"
# Told when an import of a history alone leaves cash below zero (``ParsedFile.cash_hint``).
NO_STATEMENT_HINT = (
    "this AJ Bell transaction history came without its cash statement, which holds the "
    "contributions and income that pay for its trades: import the two together, with "
    "`--cash-statement FILE`"
)


def parse_ajbell(*sources: Source, mapping: Mapping[str, ListingRef | tuple[str, str | None]]) -> ParsedFile:
    """Parse an AJ Bell transaction history and/or cash statement (told apart by header).

    ``mapping`` maps descriptions to listings (``load_mapping``, or a dict of description →
    ``ListingRef``/``(ticker, exchange)``). Raises ``UnmappedDescriptionsError`` listing every
    description missing from it, or ``FileFormatError`` naming every bad line.
    """
    texts = [read_source(s) for s in sources]
    if not texts:
        raise ValidationError("give an AJ Bell transaction history, a cash statement, or both")
    history_src, cash_src = identify(texts)
    problems = Problems()
    lookup = {
        normalise_description(k): v if isinstance(v, ListingRef) else ListingRef(v[0].upper(), v[1])
        for k, v in mapping.items()
    }
    build = Build(lookup, problems)
    history, cash = _read(history_src, cash_src, problems)
    matched: dict[int, CashRow] = {}
    skip: set[int] = set()
    if history_src and cash_src:
        matched, skip = _pair_trades(history_src, history, cash_src, cash, problems)
    if history_src is not None:
        _add_history(build, history_src, history, cash_src, cash, matched)
    if cash_src is not None:
        _add_cash(build, cash_src, cash, skip)
    entries = [e for _, e, _ in build.items if e is not None]
    duplicate_refs(entries, problems)
    check_parsed_entries(entries, problems)
    problems.raise_if_any(unmapped=_report_unmapped(build, problems))
    return _assemble(texts, history_src, cash_src, build, cash)


def _read(
    history_src: SourceText | None, cash_src: SourceText | None, problems: Problems
) -> tuple[list[HistoryRow], list[CashRow]]:
    """The rows of each file given (the statement's running balance checked), oldest first."""
    history = read_history(history_src, problems) if history_src else []
    cash = read_cash(cash_src, problems) if cash_src else []
    if cash_src:
        check_running_balance(cash_src, cash, problems)
    for src, rows in ((history_src, history), (cash_src, cash)):
        # A period without trades has a history that is its header alone: fine beside a
        # statement that holds the period's cash lines, but nothing to import on its own.
        quiet_history = src is history_src and bool(cash)
        if src and not rows and not quiet_history and not problems.lines(src.name):
            problems.add(src.name, None, "has a header but no entries")
    return history, cash


def _pair_trades(
    history_src: SourceText,
    history: list[HistoryRow],
    cash_src: SourceText,
    cash: list[CashRow],
    problems: Problems,
) -> tuple[dict[int, CashRow], set[int]]:
    """Each history trade's statement line, and the statement lines that add no entry of their
    own (matched ones, and unmatched trade lines, reported)."""
    matched, leftover = match_trades(history, cash)
    for row in leftover:
        problems.add(
            cash_src.name,
            row.line,
            f"{row.description!r} has no {row.on:%d/%m/%Y} trade of that quantity in {history_src.name}",
        )
    return matched, {row.line for row in leftover} | {row.line for row in matched.values()}


def _add_cash(build: Build, cash_src: SourceText, cash: list[CashRow], skip: set[int]) -> None:
    """The statement's own lines: the opening balance, and an entry for every other line."""
    cash_refs = ContentRefs(CASH)
    for position, row in enumerate(cash):
        if row.line in skip:
            continue
        if is_opening(row):
            build.add((row.on, 1, position), None, row)
            continue
        ref = row.reference or cash_refs(
            row.on.isoformat(), row.description, decimal_key(row.receipt), decimal_key(row.payment)
        )
        build.add((row.on, 1, position), cash_entry(build, cash_src.name, row, ref), row)


def _report_unmapped(build: Build, problems: Problems) -> list[str]:
    """Every description missing from the mapping, reported where it first occurs."""
    for description, where in sorted(build.unmapped.values(), key=lambda item: item[0].casefold()):
        also = ", ".join(str(ln) for _, ln in where[1:])
        problems.add(
            where[0][0],
            where[0][1],
            f"description {description!r} is not in the mapping" + (f" (also lines {also})" if also else ""),
        )
    return sorted((spelling for spelling, _ in build.unmapped.values()), key=str.casefold)


def _add_history(
    build: Build,
    history_src: SourceText,
    history: list[HistoryRow],
    cash_src: SourceText | None,
    cash: list[CashRow],
    matched: dict[int, CashRow],
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
        entry = trade_entry(build, history_src.name, h, partner, ref, flag_uncovered=flag_uncovered)
        if partner is not None:
            build.add((partner.on, 1, cash_position[partner.line]), entry, partner)
        else:
            build.add((h.on, 0, position), entry, None)


def _assemble(
    texts: list[SourceText],
    history_src: SourceText | None,
    cash_src: SourceText | None,
    build: Build,
    cash: list[CashRow],
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
    if cash and not is_opening(cash[0]) and cash_src is not None:
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
    hint = NO_STATEMENT_HINT if cash_src is None else None
    return ParsedFile(name, FORMAT, tuple(entries), combined_sha256(sources), sources, tuple(balances), hint)


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
