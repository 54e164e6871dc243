"""Exact money.

Every amount, price, unit count, FX rate and weight is a ``Decimal``. Floats, NaN and
infinities are refused where values enter the system (``to_decimal``). Rounding happens at
one boundary only: cash in GBP is kept to 2 decimal places, rounded half-even (banker's
rounding), by ``round_cash``. Everything else keeps the precision it was given.

``to_decimal`` is also where the bounds on numbers (``core.limits``) are applied, one place
for every value typed or read from a file:

* magnitude: at most ``MAX_AMOUNT`` = 10^15 either way (money in GBP, units, prices; a
  caller may pass a tighter ``limit``, e.g. ``MAX_PRICE`` for a price);
* at most ``MAX_SIGNIFICANT_DIGITS`` = 28 significant digits (Python's default precision,
  so a value is never rounded the moment it is added to another) and at most
  ``MAX_DECIMAL_PLACES`` = 18 decimal places (``1E-999999`` would otherwise be a
  million-digit string once written out);
* text longer than ``MAX_NUMBER_TEXT`` = 100 characters is refused before it is parsed.

With cash to the penny and every amount within 10^15, a billion entries sum to at most
27 digits: the book's running cash is exact in the default 28-digit context.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

from .errors import ValidationError
from .limits import MAX_AMOUNT, MAX_NUMBER_TEXT, magnitude_text, number_problem, shown

PENNY = Decimal("0.01")
ZERO = Decimal("0")
ONE = Decimal("1")
HUNDRED = Decimal("100")

# Wide enough that sums of a million entries never round: 50 significant digits.
CONTEXT = Context(prec=50, rounding=ROUND_HALF_EVEN)


def to_decimal(value: object, *, what: str = "value", limit: Decimal = MAX_AMOUNT) -> Decimal:
    """Convert ``value`` to a finite Decimal within the bounds of ``core.limits``, refusing
    floats, NaN, infinities and numbers too large (beyond ``limit``, 10^15 unless told),
    too long or too finely divided (``number_problem``).

    Strings may carry thousands separators (``1,234.50``) and a leading ``£``.
    """
    if isinstance(value, bool):
        raise ValidationError(f"{what}: a boolean is not a number")
    if isinstance(value, float):
        raise ValidationError(f"{what}: floats are not accepted for money ({value!r}); pass a string")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        if not -limit <= value <= limit:  # before any conversion: an int may have any size
            raise ValidationError(
                f"{what}: {_int_text(value)} is out of range: "
                f"at most {magnitude_text(limit)} in size is accepted"
            )
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip().replace(",", "").replace("£", "")
        if not text:
            raise ValidationError(f"{what}: empty")
        if len(text) > MAX_NUMBER_TEXT:
            raise ValidationError(
                f"{what}: {shown(text)!r} is too long for a number (at most {MAX_NUMBER_TEXT} characters)"
            )
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise ValidationError(f"{what}: {shown(value)!r} is not a number") from None
    else:
        raise ValidationError(f"{what}: {type(value).__name__} is not a number")
    if not result.is_finite():
        raise ValidationError(f"{what}: {shown(value)!r} is not a finite number")
    problem = number_problem(result, limit=limit)
    if problem:
        raise ValidationError(f"{what}: {shown(value)!r} {problem}")
    return result


def _int_text(value: int) -> str:
    """An int's text for a message, without converting one over Python's 4,300-digit limit."""
    if value.bit_length() > 128:
        return f"an integer of about {value.bit_length() * 30103 // 100000 + 1} digits"
    return str(value)


def optional_decimal(value: object, *, what: str = "value", limit: Decimal = MAX_AMOUNT) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return to_decimal(value, what=what, limit=limit)


def round_cash(amount: Decimal) -> Decimal:
    """Round a GBP cash amount to the penny, half-even. The one rounding rule for cash."""
    return amount.quantize(PENNY, rounding=ROUND_HALF_EVEN, context=CONTEXT)


def decimal_str(value: Decimal | None) -> str | None:
    """Plain (non-scientific) text for a Decimal: how decimals appear in JSON and on SQLite."""
    if value is None:
        return None
    text = format(value, "f")
    if text in ("-0",):
        return "0"
    return text


def format_gbp(amount: Decimal | int | str | None, *, exact: bool = False) -> str:
    """The one money format people read: ``£1,234.56``, ``-£713.90``, ``£0.00``.

    Rounded to the penny half-even (as cash is), thousands separated, the sign before the
    pound sign. Floats are refused like everywhere else; None is shown as ``—``. ``exact``
    (the ledger's messages, where a figure explains a refusal): an amount finer than the penny
    keeps every digit it has (``-£8,416.934``, never rounded to a figure that would not fail);
    one in whole pennies is shown as without it.
    """
    if amount is None:
        return "—"
    # A Decimal is shown as it is: a balance or a total may lawfully pass the bound one typed
    # amount is held to (10^15 in, plus what was there). Text and ints are read as input is.
    value = amount if type(amount) is Decimal and amount.is_finite() else to_decimal(amount, what="amount")
    pennies = round_cash(value)
    if exact and value != pennies:
        sign = "-" if value < ZERO else ""
        return f"{sign}£{abs(value).normalize(CONTEXT):,f}"
    sign = "-" if pennies < ZERO else ""
    return f"{sign}£{abs(pennies):,.2f}"
