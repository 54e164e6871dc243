"""Quote units: what a price's number means, and the one place pence become pounds.

LSE listings are quoted in pounds (``GBP``) or pence (``GBX``); feeds and brokers spell pence
``GBX``, ``GBx``, ``GBp`` or ``gbx`` (``GBp`` with a lower-case p is Yahoo's and Twelve
Data's). ``gbp`` and ``GBP`` are pounds: case matters only to tell ``GBp`` (pence) from
``GBP`` (pounds). The canonical code stored for pence is ``GBX``.
"""

from __future__ import annotations

from decimal import Decimal

from .money import CONTEXT, HUNDRED

PENCE = "GBX"
POUNDS = "GBP"
PENCE_SPELLINGS = frozenset({"GBX", "GBx", "GBp", "gbx"})


def is_pence(code: str | None) -> bool:
    return code is not None and code.strip() in PENCE_SPELLINGS


def canonical_scale(code: str) -> str:
    """``GBX`` for any spelling of pence, else the code upper-cased."""
    return PENCE if is_pence(code) else code.strip().upper()


def to_major(price: Decimal, quote_scale: str) -> Decimal:
    """A price in its quote unit as the currency's major unit: pence divided by 100."""
    return CONTEXT.divide(price, HUNDRED) if is_pence(quote_scale) else price


def from_major(price: Decimal, quote_scale: str) -> Decimal:
    """A price in the currency's major unit as the listing quotes it: pounds times 100 for pence."""
    return CONTEXT.multiply(price, HUNDRED) if is_pence(quote_scale) else price


def unit_name(quote_scale: str) -> str:
    """How a person says the unit: ``pence`` for pence, else the code."""
    return "pence" if is_pence(quote_scale) else quote_scale
