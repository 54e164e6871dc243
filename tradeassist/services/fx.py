"""FX rates: import the ECB reference rates as GBP crosses, and read them back as series.

Stored rates are GBP-based (``1 GBP = rate X``), what normalisation divides by. From the ECB's
EUR-based rates the provider derives GBP→X = EURX / EURGBP and GBP→EUR = 1 / EURGBP to 12
significant digits (``providers.fx.gbp_crosses``); a day without a EURGBP rate gives nothing.
A rate of date D is stored as of the end of D in London, like a close.

Re-importing the same file adds nothing; a different rate for a stored (pair, day, source) is
reported, and the stored one kept. Prices already stored as ``missing_fx`` whose rate has now
arrived are normalised again (see ``prices.renormalize_missing_fx``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from ..core.errors import FileFormatError, ValidationError
from ..db.models import FxRate, User
from ..engine.normalize import BASE_CURRENCY, DEFAULT_MAX_FX_AGE_DAYS, FxSeries
from ..providers.fx import FxRate as ProvidedRate
from ..providers.fx import gbp_crosses, get_fx_provider
from ..providers.prices.base import read_source
from . import audit
from .market import bulk_insert, close_day, close_time, decimal_text, source_id, utc_text

FX_FORMATS = ("ecb",)
_REPORTED_CONFLICTS = 50


@dataclass(frozen=True)
class FxConflict:
    quote_currency: str
    as_of: date
    stored_rate: Decimal
    new_rate: Decimal


@dataclass(frozen=True)
class FxImportResult:
    source: str
    file: str
    currencies: tuple[str, ...]
    first_date: date | None
    last_date: date | None
    received: int
    inserted: int
    unchanged: int
    conflicts: tuple[FxConflict, ...] = field(default=())
    renormalized: int = 0

    def summary(self) -> dict[str, object]:
        return {
            "source": self.source,
            "file": self.file,
            "currencies": list(self.currencies),
            "first_date": self.first_date,
            "last_date": self.last_date,
            "received": self.received,
            "inserted": self.inserted,
            "unchanged": self.unchanged,
            "conflicts": len(self.conflicts),
            "renormalized_prices": self.renormalized,
        }


def import_fx_file(
    session: Session,
    *,
    actor: User | None,
    path: str | Path,
    fmt: str = "ecb",
    currencies: Iterable[str] | None = None,
) -> FxImportResult:
    """Read an FX file (``ecb``: the history or daily CSV, or its zip) and store GBP crosses."""
    if fmt not in FX_FORMATS:
        raise ValidationError(f"FX format {fmt!r}: expected one of {', '.join(FX_FORMATS)}")
    data, name = read_source(path)
    rates = get_fx_provider(fmt).parse(data, source_name=name)
    if not any(r.quote_currency == BASE_CURRENCY for r in rates):
        raise FileFormatError(name, line=1, reason="no GBP column: not an ECB reference rate file")
    return store_rates(session, actor=actor, rates=rates, source=fmt, file=name, currencies=currencies)


def store_rates(
    session: Session,
    *,
    actor: User | None,
    rates: Sequence[ProvidedRate],
    source: str,
    file: str,
    currencies: Iterable[str] | None = None,
) -> FxImportResult:
    """Store the GBP crosses of EUR-based ``rates`` (all currencies, or only ``currencies``)."""
    wanted = None if currencies is None else {c.strip().upper() for c in currencies if c.strip()}
    crosses = gbp_crosses(rates, quotes=wanted)
    src = source_id(session, source)
    assert src is not None
    days = sorted({r.as_of for r in crosses})
    stamps = {day: close_time(day) for day in days}
    stored = _stored(session, src, stamps[days[0]], stamps[days[-1]]) if days else {}
    rows = []
    unchanged = 0
    conflicts: list[FxConflict] = []
    for rate in crosses:
        when = stamps[rate.as_of]
        existing = stored.get((rate.quote_currency, when))
        if existing is None:
            rows.append((BASE_CURRENCY, rate.quote_currency, utc_text(when), decimal_text(rate.rate), src))
        elif existing == rate.rate:
            unchanged += 1
        else:
            conflicts.append(FxConflict(rate.quote_currency, rate.as_of, existing, rate.rate))
    bulk_insert(
        session,
        "fx_rates",
        ("base_currency", "quote_currency", "as_of", "rate", "source_id"),
        rows,
        timestamp_columns=("as_of",),
    )
    imported = tuple(sorted({r.quote_currency for r in crosses}))
    renormalized = 0
    if rows and days:
        from .price_checks import renormalize_missing_fx

        renormalized = renormalize_missing_fx(session, currencies=imported, start=days[0], end=days[-1])
    result = FxImportResult(
        source=source,
        file=file,
        currencies=imported,
        first_date=days[0] if days else None,
        last_date=days[-1] if days else None,
        received=len(crosses),
        inserted=len(rows),
        unchanged=unchanged,
        conflicts=tuple(conflicts),
        renormalized=renormalized,
    )
    audit.record(
        session,
        actor=actor,
        action="FX_IMPORTED",
        entity_type="market_data_source",
        entity_id=src,
        details={
            **result.summary(),
            "conflict_examples": [
                {
                    "pair": f"GBP{c.quote_currency}",
                    "as_of": c.as_of,
                    "stored": c.stored_rate,
                    "new": c.new_rate,
                }
                for c in conflicts[:_REPORTED_CONFLICTS]
            ],
        },
    )
    return result


def _stored(session: Session, src: int, first, last) -> dict[tuple[str, object], Decimal]:  # type: ignore[no-untyped-def]
    query = select(FxRate.quote_currency, FxRate.as_of, FxRate.rate).where(  # type: ignore[call-overload]
        FxRate.base_currency == BASE_CURRENCY,
        FxRate.source_id == src,
        FxRate.as_of >= first,
        FxRate.as_of <= last,
    )
    return {(row[0], row[1]): row[2] for row in session.execute(query)}


def fx_series(
    session: Session,
    currency: str,
    start: date,
    end: date,
    *,
    max_age_days: int = DEFAULT_MAX_FX_AGE_DAYS,
) -> FxSeries:
    """GBP→``currency`` rates usable for prices dated ``start``..``end`` (a week before
    ``start`` included, as normalisation may reach back that far). Where several sources have
    a rate for the same day, the first source (lowest id) is taken."""
    query = (
        select(FxRate.as_of, FxRate.rate)  # type: ignore[call-overload]
        .where(
            FxRate.base_currency == BASE_CURRENCY,
            FxRate.quote_currency == currency,
            FxRate.as_of >= close_time(start - timedelta(days=max_age_days)),
            FxRate.as_of <= close_time(end),
        )
        .order_by(FxRate.as_of, FxRate.source_id)
    )
    pairs: dict[date, Decimal] = {}
    for as_of, rate in session.execute(query):
        pairs.setdefault(close_day(as_of), rate)
    return FxSeries.from_pairs(currency, sorted(pairs.items()))
