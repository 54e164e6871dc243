"""Exact money.

Every amount, price, unit count, FX rate and weight is a ``Decimal``. Floats, NaN and
infinities are refused where values enter the system (``to_decimal``). Rounding happens at
one boundary only: cash in GBP is kept to 2 decimal places, rounded half-even (banker's
rounding), by ``round_cash``. Everything else keeps the precision it was given.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

from .errors import ValidationError

PENNY = Decimal("0.01")
ZERO = Decimal("0")
ONE = Decimal("1")
HUNDRED = Decimal("100")

# Wide enough that sums of a million entries never round: 50 significant digits.
CONTEXT = Context(prec=50, rounding=ROUND_HALF_EVEN)


def to_decimal(value: object, *, what: str = "value") -> Decimal:
    """Convert ``value`` to a finite Decimal, refusing floats, NaN and infinities.

    Strings may carry thousands separators (``1,234.50``) and a leading ``£``.
    """
    if isinstance(value, bool):
        raise ValidationError(f"{what}: a boolean is not a number")
    if isinstance(value, float):
        raise ValidationError(f"{what}: floats are not accepted for money ({value!r}); pass a string")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip().replace(",", "").replace("£", "")
        if not text:
            raise ValidationError(f"{what}: empty")
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise ValidationError(f"{what}: {value!r} is not a number") from None
    else:
        raise ValidationError(f"{what}: {type(value).__name__} is not a number")
    if not result.is_finite():
        raise ValidationError(f"{what}: {value!r} is not a finite number")
    return result


def optional_decimal(value: object, *, what: str = "value") -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return to_decimal(value, what=what)


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


def format_gbp(amount: Decimal | int | str | None) -> str:
    """The one money format people read: ``£1,234.56``, ``-£713.90``, ``£0.00``.

    Rounded to the penny half-even (as cash is), thousands separated, the sign before the
    pound sign. Floats are refused like everywhere else; None is shown as ``—``.
    """
    if amount is None:
        return "—"
    value = round_cash(to_decimal(amount, what="amount"))
    sign = "-" if value < ZERO else ""
    return f"{sign}£{abs(value):,.2f}"
