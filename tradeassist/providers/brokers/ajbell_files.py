"""Reading AJ Bell's two CSV downloads: the transaction history and the cash statement,
told apart by their headers, each row checked (dates, numbers, references) and the statement's
running balance checked against itself. See ``ajbell`` for the format."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ...core.enums import EntryType
from ...core.errors import FileFormatError, ValidationError
from ...core.money import ZERO, to_decimal
from .base import (
    Problems,
    SourceText,
    csv_rows,
    is_blank,
    oldest_first,
    parse_uk_date,
    repeated_references,
)

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
# History "Transaction" values: the entry type, the sign of the units, and a note.
HISTORY_KINDS: dict[str, tuple[EntryType, int, str | None]] = {
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
TRADE_LINE = re.compile(r"^(Purchase|Sale)\s+(\d[\d,]*(?:\.\d+)?)\s+(\S.*)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class HistoryRow:
    line: int
    on: date
    kind: str  # the Transaction text, lower-cased
    description: str
    quantity: Decimal
    amount: Decimal | None
    reference: str | None


@dataclass(frozen=True, slots=True)
class CashRow:
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
    for index, row in csv_rows(src, skip=1):
        if is_blank(row):
            continue
        if len(row) != width:
            problems.add(src.name, index, f"has {len(row)} fields, expected {width}")
            continue
        rows.append((index, row))
    return rows


def read_history(src: SourceText, problems: Problems) -> list[HistoryRow]:
    result = []
    for line, row in _rows(src, len(HISTORY_HEADER), problems):
        on_text, kind_text, description, quantity_text, amount_text, reference = row
        try:
            on = parse_uk_date(on_text)
            kind = " ".join(kind_text.split()).lower()
            if kind not in HISTORY_KINDS:
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
        result.append(
            HistoryRow(line, on, kind, description.strip(), abs(quantity), amount, _cell(reference))
        )
    repeated_references(src.name, [(r.line, r.reference) for r in result], problems)
    return oldest_first(result, key=lambda r: r.on)


def read_cash(src: SourceText, problems: Problems) -> list[CashRow]:
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
        result.append(
            CashRow(
                line, on, description, _cell(reference), _cell(settlement), receipt, abs(payment), balance
            )
        )
    repeated_references(src.name, [(r.line, r.reference) for r in result], problems)
    return oldest_first(result, key=lambda r: r.on)


def check_running_balance(src: SourceText, rows: list[CashRow], problems: Problems) -> None:
    """Each balance must be the previous one plus this line's amount (lines missing or
    reordered show up here). After a mismatch, carry on from the stated balance."""
    running: Decimal | None = None
    for row in rows:
        if is_opening(row):
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


def is_opening(row: CashRow) -> bool:
    return "BALANCE B/F" in row.description.upper()


def identify(texts: list[SourceText]) -> tuple[SourceText | None, SourceText | None]:
    history = cash = None
    for src in texts:
        header = tuple(cell.strip() for cell in next(csv_rows(src), (1, []))[1])
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
