"""Prices: ingest with normalisation and quality checks, and the latest good prices.

**Ingest** (``import_price_file``, ``ingest_series``; ``price_refresh`` downloads): parse
(provider) → normalise (``engine.normalize``, with the GBP→X series from ``fx_rates`` for
non-GBP listings) → check (``engine.price_quality.check_points``, from the listing's accepted
level, with its recorded splits and acceptances: see ``price_checks``) → in the caller's
transaction: the new points in one bulk insert, alerts and freezes for suspect points, one
``PRICES_IMPORTED`` audit row with the counts. See ``price_ingest``.

**Latest good close** (``latest_good_prices``): one statement; per listing, the unique key's
index (listing, as_of, ...) is read backwards from the date to the first close whose current
verdict (``price_point_rechecks`` over the ingest-time one) is usable and not superseded.
Several sources on the same day: the listing's source priority chooses (``price_sources``).
Staleness is judged at read time against the policy's ``max_price_age_business_days``
(trading days: XLON holidays do not count). See ``price_reads``.

This module is the price service as its callers know it: the names below live in
``price_ingest`` and ``price_reads``.
"""

from __future__ import annotations

from ..core.timeutil import business_days_between
from .price_ingest import (
    POINT_COLUMNS,
    PRICE_FORMATS,
    IngestResult,
    PriceConflict,
    import_price_file,
    ingest_series,
)
from .price_reads import (
    DEFAULT_MAX_AGE_BUSINESS_DAYS,
    LatestPrice,
    holders,
    latest_good_prices,
    list_prices,
    portfolio_latest,
    portfolio_listings,
)

__all__ = [
    "DEFAULT_MAX_AGE_BUSINESS_DAYS",
    "POINT_COLUMNS",
    "PRICE_FORMATS",
    "IngestResult",
    "LatestPrice",
    "PriceConflict",
    "business_days_between",
    "holders",
    "import_price_file",
    "ingest_series",
    "latest_good_prices",
    "list_prices",
    "portfolio_latest",
    "portfolio_listings",
]
