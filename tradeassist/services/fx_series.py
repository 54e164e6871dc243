"""GBP→X rates read back as a series, for normalising prices of listings in another currency.

Stored rates are GBP-based (``1 GBP = rate X``), what normalisation divides by; a rate of date
D is stored as of the end of D in London, like a close. Both the price ingest and the
re-normalisation of ``missing_fx`` prices read them from here.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlmodel import Session, col

from ..db.models import FxRate
from ..engine.normalize import BASE_CURRENCY, DEFAULT_MAX_FX_AGE_DAYS, FxSeries
from .market import close_day, close_time


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
        select(col(FxRate.as_of), col(FxRate.rate))
        .where(
            col(FxRate.base_currency) == BASE_CURRENCY,
            col(FxRate.quote_currency) == currency,
            col(FxRate.as_of) >= close_time(start - timedelta(days=max_age_days)),
            col(FxRate.as_of) <= close_time(end),
        )
        .order_by(col(FxRate.as_of), col(FxRate.source_id))
    )
    pairs: dict[date, Decimal] = {}
    for as_of, rate in session.execute(query):
        pairs.setdefault(close_day(as_of), rate)
    return FxSeries.from_pairs(currency, sorted(pairs.items()))
