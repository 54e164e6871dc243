"""Normalise raw price points to the base currency (GBP), keeping what the provider said.

Every point keeps ``raw_price`` exactly as received, with the currency and quote scale it was
in, and gains ``price_local`` (the listing's trading currency, in major units: pounds, not
pence) and ``normalized_price_base`` (GBP).

Rules (and why):

* **Which unit the raw number is in.** A provider's own declaration for the point wins (it
  describes the numbers it sent: twelvedata/Yahoo/gsej say ``GBp`` or ``GBP``); where the
  provider declares nothing (Stooq, Yahoo CSV downloads) the raw number is taken to be in the
  listing's ``quote_scale``, and ``raw_currency``/``raw_quote_scale`` record the listing's.
  The unit is never guessed from a ``.L`` suffix or from the magnitude: when a feed silently
  switches unit, ``price_quality.check_points`` flags it (``scale_suspect``) instead.
* **Quote-unit codes are case-sensitive**, as the providers use them: the spellings of pence
  are ``core.units.PENCE_SPELLINGS`` (``GBp``/``GBX``/``GBx``/``gbx``: ``gbx`` is pence here
  as it is for the providers), ``GBP`` is pounds. Any other code must be three upper-case
  letters (an ISO 4217 currency, in major units); anything else (``gbp``, ``£``) is refused
  as ambiguous. ``raw_quote_scale`` is stored canonically: ``GBX`` for pence, else the
  currency code.
* **Pence vs pounds is a scale matter, not a currency mismatch**: GBX and GBP are both the
  currency GBP. A declared *currency* that differs from the listing's trading currency (USD
  for a GBP listing) is ``currency_mismatch``: the number is not a price of this listing in
  any unit we can trust, so ``price_local`` and ``normalized_price_base`` are None.
* **Exactness.** Dividing by 100 only moves the exponent (``scaleb``), so it is exact. FX
  conversion divides by the GBP→X rate (1 GBP = rate X) in a 50-digit context and quantizes to
  10 decimal places, half-even (:data:`FX_QUANTUM`): far finer than any price is quoted, and one
  fixed rule so the same inputs always give the same stored text.
* **FX as of the date.** The rate used is the latest one on or before the price's date; one
  older than ``max_fx_age_days`` calendar days (default 7: a week covers weekends and bank
  holidays, not a broken feed) counts as missing. No usable rate gives ``missing_fx`` and
  ``normalized_price_base`` None, while ``price_local`` is still set (the scale check needs no FX).

Nothing here reads the clock, the network or the database.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import NamedTuple

from ..core.enums import QualityFlag
from ..core.errors import ValidationError
from ..core.money import CONTEXT
from ..core.units import PENCE, POUNDS, is_pence

BASE_CURRENCY = POUNDS
PENCE_SCALE = PENCE
FX_QUANTUM = Decimal("1E-10")
DEFAULT_MAX_FX_AGE_DAYS = 7

# Pence: the minor unit of pounds, two powers of ten below them.
_PENCE_UNIT_EXPONENT = 2

# Flags that make a point unusable as a price (valuation must skip such points).
BLOCKING_FLAGS = frozenset(
    {
        QualityFlag.SCALE_SUSPECT,
        QualityFlag.CURRENCY_MISMATCH,
        QualityFlag.NON_POSITIVE,
        QualityFlag.MISSING_FX,
    }
)


@dataclass(frozen=True, slots=True)
class QuoteUnit:
    """What a quote-unit code means: the currency, and how many powers of ten below its major unit."""

    currency: str
    minor_exponent: int

    @property
    def scale(self) -> str:
        """The canonical quote-scale code stored in ``raw_quote_scale`` (GBX for pence)."""
        if self.minor_exponent == _PENCE_UNIT_EXPONENT and self.currency == POUNDS:
            return PENCE
        return self.currency


def parse_quote_unit(code: str) -> QuoteUnit:
    """Read a quote-unit code (``GBp``, ``GBX``, ``gbx``, ``GBP``, ``USD``...). Case matters:
    GBp ≠ GBP. Every spelling of pence (``core.units.is_pence``, ``gbx`` included) is pence."""
    if not isinstance(code, str):
        raise ValidationError(f"quote unit: {code!r} is not a currency code")
    text = code.strip()
    if is_pence(text):
        return QuoteUnit(POUNDS, _PENCE_UNIT_EXPONENT)
    if len(text) == 3 and text.isascii() and text.isalpha() and text.isupper():
        return QuoteUnit(text, 0)
    raise ValidationError(
        f"quote unit: {code!r} is not understood (use GBp/GBX/gbx for pence, GBP for pounds, "
        "or an upper-case ISO currency code)"
    )


@dataclass(frozen=True, slots=True)
class Listing:
    """The listing a series is quoted on: its currency and quote scale are what prices mean."""

    ticker: str
    exchange: str
    trading_currency: str
    quote_scale: str
    listing_id: int | None = None

    def __post_init__(self) -> None:
        unit = parse_quote_unit(self.quote_scale)
        if unit.currency != self.trading_currency:
            raise ValidationError(
                f"listing {self.key}: quote scale {self.quote_scale} is not a unit of {self.trading_currency}"
            )

    @property
    def key(self) -> str:
        """A readable identity for messages and issues (``LSE:VWRP``)."""
        return f"{self.exchange}:{self.ticker}"

    @property
    def unit(self) -> QuoteUnit:
        return parse_quote_unit(self.quote_scale)


class RawPrice(NamedTuple):
    """One price as a provider gave it. ``declared_unit`` is None where the provider says nothing."""

    as_of: date
    price: Decimal
    declared_unit: str | None = None


@dataclass(frozen=True, slots=True)
class FxSeries:
    """GBP→``quote_currency`` rates (1 GBP = rate units), dates strictly increasing."""

    quote_currency: str
    dates: tuple[date, ...]
    rates: tuple[Decimal, ...]

    def __post_init__(self) -> None:
        if len(self.dates) != len(self.rates):
            raise ValidationError("FX series: dates and rates differ in length")
        for earlier, later in zip(self.dates, self.dates[1:], strict=False):
            if not earlier < later:
                raise ValidationError(f"FX series {self.quote_currency}: dates not increasing at {later}")
        for day, rate in zip(self.dates, self.rates, strict=True):
            if not (isinstance(rate, Decimal) and rate.is_finite() and rate > 0):
                raise ValidationError(f"FX series {self.quote_currency}: rate on {day} is not positive")

    @classmethod
    def from_pairs(cls, quote_currency: str, pairs: Iterable[tuple[date, Decimal]]) -> FxSeries:
        ordered = tuple(pairs)
        return cls(quote_currency, tuple(d for d, _ in ordered), tuple(r for _, r in ordered))

    def rate_on(self, day: date, *, max_age_days: int = DEFAULT_MAX_FX_AGE_DAYS) -> Decimal | None:
        """The latest rate on or before ``day``, or None if there is none this recent."""
        index = bisect_right(self.dates, day) - 1
        if index < 0 or (day - self.dates[index]).days > max_age_days:
            return None
        return self.rates[index]


class PricePoint(NamedTuple):
    """A price point as stored: raw facts, the normalised prices and the quality flags.

    ``price_local`` is in the listing's trading currency, major units; it is what the scale check
    compares. ``fx_rate`` is the GBP→X rate used (None for GBP listings).
    """

    as_of: date
    raw_price: Decimal
    raw_currency: str
    raw_quote_scale: str
    price_local: Decimal | None
    normalized_price_base: Decimal | None
    fx_rate: Decimal | None = None
    flags: frozenset[QualityFlag] = frozenset()

    @property
    def usable_price(self) -> Decimal | None:
        """The GBP price, or None when a flag says it must not be used."""
        if self.flags & BLOCKING_FLAGS:
            return None
        return self.normalized_price_base


def normalize_price(
    listing: Listing,
    raw: RawPrice,
    *,
    fx: FxSeries | None = None,
    max_fx_age_days: int = DEFAULT_MAX_FX_AGE_DAYS,
) -> PricePoint:
    """Normalise one raw price (see the module docstring for the rules)."""
    price = raw.price
    if not (isinstance(price, Decimal) and price.is_finite()):
        raise ValidationError(f"{listing.key} {raw.as_of}: price {price!r} is not a finite Decimal")
    if isinstance(raw.as_of, datetime) or not isinstance(raw.as_of, date):
        raise ValidationError(f"{listing.key}: as_of {raw.as_of!r} must be a date")
    unit = listing.unit if raw.declared_unit is None else parse_quote_unit(raw.declared_unit)
    if unit.currency != listing.trading_currency:
        return PricePoint(
            raw.as_of,
            price,
            unit.currency,
            unit.scale,
            None,
            None,
            None,
            frozenset({QualityFlag.CURRENCY_MISMATCH}),
        )
    local = price.scaleb(-unit.minor_exponent) if unit.minor_exponent else price
    if listing.trading_currency == BASE_CURRENCY:
        return PricePoint(raw.as_of, price, unit.currency, unit.scale, local, local)
    rate = _fx_rate(listing, fx, raw.as_of, max_fx_age_days)
    if rate is None:
        flags = frozenset({QualityFlag.MISSING_FX})
        return PricePoint(raw.as_of, price, unit.currency, unit.scale, local, None, None, flags)
    base = CONTEXT.divide(local, rate).quantize(FX_QUANTUM, rounding=ROUND_HALF_EVEN, context=CONTEXT)
    return PricePoint(raw.as_of, price, unit.currency, unit.scale, local, base, rate)


def normalize_prices(
    listing: Listing,
    prices: Iterable[RawPrice],
    *,
    fx: FxSeries | None = None,
    max_fx_age_days: int = DEFAULT_MAX_FX_AGE_DAYS,
) -> tuple[PricePoint, ...]:
    """Normalise a series of one listing; order is kept. Flags are set, issues are made by the check.

    A GBP listing (no FX) takes a fast path with the same result as ``normalize_price`` point by
    point: each declared unit is parsed once, and the checks are done inline (a bulk import
    normalises a million points).
    """
    if listing.trading_currency != BASE_CURRENCY:
        return tuple(normalize_price(listing, raw, fx=fx, max_fx_age_days=max_fx_age_days) for raw in prices)
    return _normalize_base(listing, prices)


def _normalize_base(listing: Listing, prices: Iterable[RawPrice]) -> tuple[PricePoint, ...]:
    # Per declared unit, once: (currency, stored scale code, minor exponent).
    units: dict[str | None, tuple[str, str, int]] = {}
    mismatch = frozenset({QualityFlag.CURRENCY_MISMATCH})
    trading = listing.trading_currency
    out: list[PricePoint] = []
    append = out.append
    for raw in prices:
        as_of, price, declared = raw
        if type(price) is not Decimal or not price.is_finite() or type(as_of) is not date:
            append(normalize_price(listing, raw))  # raises the point's error
            continue
        try:
            known = units[declared]
        except KeyError:
            unit = listing.unit if declared is None else parse_quote_unit(declared)
            known = units[declared] = (unit.currency, unit.scale, unit.minor_exponent)
        currency, scale, exponent = known
        if currency != trading:
            append(PricePoint(as_of, price, currency, scale, None, None, None, mismatch))
            continue
        local = price.scaleb(-exponent) if exponent else price
        append(PricePoint(as_of, price, currency, scale, local, local))
    return tuple(out)


def _fx_rate(listing: Listing, fx: FxSeries | None, day: date, max_age_days: int) -> Decimal | None:
    if fx is None:
        return None
    if fx.quote_currency != listing.trading_currency:
        raise ValidationError(
            f"{listing.key}: FX series is GBP→{fx.quote_currency}, the listing trades in "
            f"{listing.trading_currency}"
        )
    return fx.rate_on(day, max_age_days=max_age_days)
