"""FX rates: store the ECB reference rates as GBP crosses.

Stored rates are GBP-based (``1 GBP = rate X``), what normalisation divides by. From the ECB's
EUR-based rates the provider derives GBP→X = EURX / EURGBP and GBP→EUR = 1 / EURGBP to 12
significant digits (``providers.fx.gbp_crosses``); a day without a EURGBP rate gives nothing.
A rate of date D is stored as of the end of D in London, like a close.

Re-storing the same rates adds nothing; a different rate for a stored (pair, day, source) is
reported, and the stored one kept. What follows an import (prices stored ``missing_fx``
normalised again, the audit row) is the workflow in ``market_workflows``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session, col

from ..core.errors import FileFormatError, ValidationError
from ..db.models import FxRate, User
from ..engine.normalize import BASE_CURRENCY
from ..providers.fx import FxRate as ProvidedRate
from ..providers.fx import gbp_crosses, get_fx_provider
from ..providers.prices.base import read_source
from . import audit
from .market import bulk_insert, close_time, decimal_text, source_id, utc_text

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


@dataclass(frozen=True)
class StoredCrosses:
    """What ``store_crosses`` did: the source row, the currencies and days it received, counts."""

    source_id: int
    currencies: tuple[str, ...]
    days: tuple[date, ...]  # ascending
    received: int
    inserted: int
    unchanged: int
    conflicts: tuple[FxConflict, ...]

    def result(self, *, source: str, file: str, renormalized: int) -> FxImportResult:
        return FxImportResult(
            source=source,
            file=file,
            currencies=self.currencies,
            first_date=self.days[0] if self.days else None,
            last_date=self.days[-1] if self.days else None,
            received=self.received,
            inserted=self.inserted,
            unchanged=self.unchanged,
            conflicts=self.conflicts,
            renormalized=renormalized,
        )


def read_fx_file(path: str | Path, fmt: str) -> tuple[tuple[ProvidedRate, ...], str]:
    """The EUR-based rates of an FX file (``ecb``: the history or daily CSV, or its zip), and
    the file's name."""
    if fmt not in FX_FORMATS:
        raise ValidationError(f"FX format {fmt!r}: expected one of {', '.join(FX_FORMATS)}")
    data, name = read_source(path)
    rates = get_fx_provider(fmt).parse(data, source_name=name)
    if not any(r.quote_currency == BASE_CURRENCY for r in rates):
        raise FileFormatError(name, line=1, reason="no GBP column: not an ECB reference rate file")
    return rates, name


def store_crosses(
    session: Session,
    *,
    rates: Sequence[ProvidedRate],
    source: str,
    currencies: Iterable[str] | None = None,
) -> StoredCrosses:
    """Store the GBP crosses of EUR-based ``rates`` (all currencies, or only ``currencies``)
    that are not stored yet; count those stored identically and report those that differ."""
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
    return StoredCrosses(
        source_id=src,
        currencies=tuple(sorted({r.quote_currency for r in crosses})),
        days=tuple(days),
        received=len(crosses),
        inserted=len(rows),
        unchanged=unchanged,
        conflicts=tuple(conflicts),
    )


def record_fx_import(session: Session, *, actor: User | None, source_id: int, result: FxImportResult) -> None:
    """The ``FX_IMPORTED`` audit row: the counts, and the first conflicts as examples."""
    audit.record(
        session,
        actor=actor,
        action="FX_IMPORTED",
        entity_type="market_data_source",
        entity_id=source_id,
        details={
            **result.summary(),
            "conflict_examples": [
                {
                    "pair": f"GBP{c.quote_currency}",
                    "as_of": c.as_of,
                    "stored": c.stored_rate,
                    "new": c.new_rate,
                }
                for c in result.conflicts[:_REPORTED_CONFLICTS]
            ],
        },
    )


def _stored(
    session: Session, src: int, first: datetime, last: datetime
) -> dict[tuple[str, datetime], Decimal]:
    query = select(col(FxRate.quote_currency), col(FxRate.as_of), col(FxRate.rate)).where(
        col(FxRate.base_currency) == BASE_CURRENCY,
        col(FxRate.source_id) == src,
        col(FxRate.as_of) >= first,
        col(FxRate.as_of) <= last,
    )
    return {(row[0], row[1]): row[2] for row in session.execute(query)}
