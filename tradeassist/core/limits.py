"""Bounds on what comes in: how big a file, a number, a text field and a date may be.

Everything read from outside (broker exports, price and FX files, policies and manifestos,
values typed on the command line) is held to these bounds where it enters, so bad input is
one message naming the file, the line and the reason, never a traceback, a value silently
rounded, or a million-digit string in the database. The readers use the helpers here; every
number typed or read as text also passes ``core.money.to_decimal``, which applies
``number_problem``.

* ``MAX_FILE_BYTES`` = 256 MiB: a larger file is refused before it is read
  (``read_file_bytes``); a canonical ledger of a million rows is about 80 MiB.
* ``MAX_AMOUNT`` = 10^15: the largest magnitude of any amount (GBP), unit count or price
  accepted. A billion such amounts to the penny sum to at most 27 digits, within Python's
  default 28-digit precision, so the book's running cash is never silently rounded.
* ``MAX_SIGNIFICANT_DIGITS`` = 28 (Python's default ``Decimal`` precision) and
  ``MAX_DECIMAL_PLACES`` = 18: ``1E-19`` is refused, and so is ``1E-999999``, which written
  out is a million digits.
* ``MAX_NUMBER_TEXT`` = 100 characters: longer text is refused before it is parsed.
* ``MAX_PRICE`` = 10^9: a price per unit in its quote unit (pence for a GBX line), i.e.
  £10m a share.
* ``MIN_FX_RATE`` = 10^-6 and ``MAX_FX_RATE`` = 10^9: an exchange rate (units of a currency
  per euro or per pound). The ECB's widest ever is 1,912,400 Turkish lira (TRL) per euro.
* ``MAX_REF_LENGTH`` = 200 characters: a broker's reference
  (``ledger_entries.external_ref`` is ``varchar(200)``); ``MAX_NOTES_LENGTH`` = 2,000.
* ``MAX_CSV_FIELD`` = 131,072 characters (128 KiB): one CSV cell, the ``csv`` module's own
  limit; a longer cell is refused with its line.
* JSON nesting: what the parser can read (about 1,000 levels; a price file nests three
  deep); deeper is refused, not a ``RecursionError``.
* Dates: a price or an FX rate dated after ``latest_date()`` is refused: today at the date
  line (UTC+14), so an exchange's local date is never taken for the future. A timestamp with
  an offset must still lie within the years 1 to 9999 in UTC (``in_utc``):
  ``0001-01-01T00:00:00+14:00`` is in year 0 there, which no ``datetime`` holds.
* Stored numbers: 131,072 digits before the point and 16,383 after (PostgreSQL's
  ``numeric``); ``db.types.ExactDecimal`` refuses wider values on both databases.

Text and NUL: a file holding a NUL byte is refused (no text format here has one, and
PostgreSQL cannot store it); files must be UTF-8 (a byte-order mark is fine).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from .errors import FileFormatError
from .timeutil import utcnow

MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_AMOUNT = Decimal(10) ** 15
MAX_SIGNIFICANT_DIGITS = 28
MAX_DECIMAL_PLACES = 18
MAX_NUMBER_TEXT = 100
MAX_PRICE = Decimal(10) ** 9
MIN_FX_RATE = Decimal("1E-6")
MAX_FX_RATE = Decimal(10) ** 9
MAX_REF_LENGTH = 200
MAX_NOTES_LENGTH = 2000
MAX_CSV_FIELD = 131_072
# PostgreSQL's numeric: up to 131072 digits before the decimal point, up to 16383 after.
MAX_STORED_INTEGER_DIGITS = 131_072
MAX_STORED_PLACES = 16_383
# Today at the international date line: no exchange anywhere is on a later date.
DATE_LINE_OFFSET = timedelta(hours=14)


# --- files ---------------------------------------------------------------------------------


def size_text(size: int) -> str:
    """``256 MiB``, ``3.0 GiB``, ``812 bytes``: a file size as people read it."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


def too_large(name: str, size: int | None, limit: int = MAX_FILE_BYTES) -> FileFormatError:
    what = f"is {size_text(size)}" if size is not None else "is larger than that"
    return FileFormatError(
        name, [(None, f"{what}; files over {size_text(limit)} are refused (core.limits.MAX_FILE_BYTES)")]
    )


def read_file_bytes(
    path: str | os.PathLike[str], *, name: str | None = None, limit: int = MAX_FILE_BYTES
) -> bytes:
    """A file's bytes, refused (``FileFormatError``) when larger than ``limit`` before any of
    it is read. At most ``limit + 1`` bytes are ever read, so a pipe or a file still growing
    cannot slip past. ``OSError`` (missing, unreadable) is left to the caller to word."""
    file = Path(path)
    label = name or str(file)
    with file.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise too_large(label, size, limit)
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise too_large(label, None, limit)
    return data


def check_size(name: str, data: bytes | str, limit: int = MAX_FILE_BYTES) -> None:
    """Content already in memory (a notebook upload) is held to the same cap as a file."""
    if len(data) > limit:
        raise too_large(name, len(data), limit)


def nul_problem(data: bytes) -> tuple[int, str] | None:
    """(line, reason) for the first NUL byte in ``data``, or None when there is none."""
    at = data.find(b"\x00")
    if at < 0:
        return None
    line = data.count(b"\n", 0, at) + 1
    return line, "contains a NUL byte: not a text file (UTF-16? save it as UTF-8)"


def check_text_file(name: str, data: bytes) -> None:
    """Refuse a file holding a NUL byte, naming its line."""
    found = nul_problem(data)
    if found is not None:
        raise FileFormatError(name, [found])


def decode_utf8(name: str, data: bytes) -> str:
    """UTF-8 text (a byte-order mark dropped); the first undecodable byte's line otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FileFormatError(
            name, [(line, f"is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8")]
        ) from None


# --- numbers -------------------------------------------------------------------------------


def shown(text: object, limit: int = 40) -> str:
    """A value for a message: its text, cut short when long (a bad cell can be 128 KiB)."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 10]}…{text[-5:]} ({len(text)} characters)"


def magnitude_text(bound: Decimal) -> str:
    """``10^15`` for a power of ten, else the plain number."""
    sign, digits, exponent = bound.normalize().as_tuple()
    assert isinstance(exponent, int)
    if digits == (1,) and not sign:
        return f"10^{exponent}"
    return format(bound, "f")


def number_problem(
    value: Decimal,
    *,
    limit: Decimal = MAX_AMOUNT,
    digits: int = MAX_SIGNIFICANT_DIGITS,
    places: int = MAX_DECIMAL_PLACES,
) -> str | None:
    """Why ``value`` is outside the bounds (``limit`` in size, ``digits`` significant digits,
    ``places`` decimal places), or None when it is inside. Finite is assumed checked."""
    if not -limit <= value <= limit:
        return f"is out of range: at most {magnitude_text(limit)} in size is accepted"
    _, coefficient, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    if exponent < -places:
        return f"has {-exponent} decimal places; at most {places} are accepted"
    if len(coefficient) > digits:
        return f"has {len(coefficient)} significant digits; at most {digits} are accepted"
    return None


def fx_rate_problem(rate: Decimal) -> str | None:
    """Why ``rate`` is no exchange rate (not finite, ≤ 0, beyond the sanity bounds), or None."""
    if not rate.is_finite():
        return "is not a finite number"
    if rate <= 0:
        return "is not positive"
    if not MIN_FX_RATE <= rate <= MAX_FX_RATE:
        return (
            f"is out of range: an exchange rate must lie between {MIN_FX_RATE} "
            f"and {magnitude_text(MAX_FX_RATE)}"
        )
    return number_problem(rate, limit=MAX_FX_RATE)


def stored_number_problem(value: Decimal) -> str | None:
    """Why ``value`` cannot be stored in a ``numeric`` column (PostgreSQL's widths), or None."""
    if not value.is_finite():
        return "is not finite"
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if value and value.adjusted() >= MAX_STORED_INTEGER_DIGITS:
        return f"has more than {MAX_STORED_INTEGER_DIGITS} digits before the decimal point"
    if exponent < -MAX_STORED_PLACES:
        return f"has more than {MAX_STORED_PLACES} digits after the decimal point"
    return None


# --- text ----------------------------------------------------------------------------------


def text_problem(text: str | None, what: str, max_length: int) -> str | None:
    """Why a text field cannot be kept (a NUL character, longer than ``max_length``), or None."""
    if text is None:
        return None
    if "\x00" in text:
        return f"{what}: contains a NUL character"
    if len(text) > max_length:
        return f"{what}: {len(text)} characters, at most {max_length} are kept"
    return None


def csv_error_reason(exc: Exception) -> str:
    """A ``csv.Error`` as a reason people can act on."""
    message = str(exc)
    if "field larger than field limit" in message:
        return f"a field is longer than {MAX_CSV_FIELD:,} characters (128 KiB), the most a CSV cell may hold"
    return f"is not valid CSV ({message})"


# --- JSON ----------------------------------------------------------------------------------


class JsonInputError(ValueError):
    """A JSON document that cannot be read, with the line where that showed (1 if unknown)."""

    def __init__(self, reason: str, line: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


def _no_constant(name: str) -> Any:
    raise JsonInputError(f"{name} is not a number (JSON has no NaN or Infinity)")


def _json_fraction(text: str) -> Decimal:
    try:
        return Decimal(text)
    except ArithmeticError:  # decimal.InvalidOperation: an exponent of 19 digits or more
        raise JsonInputError(f"the number {shown(text)} is out of range: its exponent is too large") from None


def load_json(text: str) -> Any:
    """A JSON document with every fraction as an exact ``Decimal`` (integers stay ``int``).

    Refused with ``JsonInputError``: malformed JSON (with its line), ``NaN``/``Infinity``,
    nesting too deep for the parser (Python's recursion limit, about 1,000 levels; a price
    file nests three deep), an integer too long to convert (over 4,300 digits, Python's own
    limit), a number whose exponent ``Decimal`` cannot hold (``1E+9999999999999999999``).
    """
    try:
        return json.loads(text, parse_float=_json_fraction, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise JsonInputError(f"not JSON ({exc.msg})", exc.lineno) from None
    except RecursionError:
        raise JsonInputError("nested too deeply to read") from None
    except JsonInputError:
        raise
    except ValueError as exc:  # an integer over Python's 4,300-digit conversion limit
        raise JsonInputError(f"a number is too long ({shown(exc, 80)})") from None


# --- dates ---------------------------------------------------------------------------------


def latest_date() -> date:
    """The latest date that is not in the future anywhere: today at the date line (UTC+14)."""
    return (utcnow() + DATE_LINE_OFFSET).date()


def in_utc(moment: datetime, what: str = "time", text: str | None = None) -> datetime:
    """An aware ``moment`` (read from ``text``) in UTC; ``ValueError`` with the reason when that
    falls outside the years 1 to 9999 (``0001-01-01T00:00:00+14:00``), which would otherwise be
    an ``OverflowError`` wherever the time is next compared or stored."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        written = shown(text if text is not None else moment.isoformat())
        raise ValueError(
            f"{what} {written!r} is out of range: in UTC it is outside the years 1 to 9999"
        ) from None
