"""FX rates: import the ECB reference rates as GBP crosses, and read them back as series.

Stored rates are GBP-based (``1 GBP = rate X``), what normalisation divides by. From the ECB's
EUR-based rates the provider derives GBP→X = EURX / EURGBP and GBP→EUR = 1 / EURGBP to 12
significant digits (``providers.fx.gbp_crosses``); a day without a EURGBP rate gives nothing.
A rate of date D is stored as of the end of D in London, like a close.

Re-importing the same file adds nothing; a different rate for a stored (pair, day, source) is
reported, and the stored one kept. Prices already stored as ``missing_fx`` whose rate has now
arrived are normalised again (see ``price_checks.renormalize_missing_fx``).

Where the parts live: storing the crosses in ``fx_rates``, reading a series in ``fx_series``,
the import workflow (store → renormalise → audit) in ``market_workflows``. This module is the
FX service as its callers know it.
"""

from __future__ import annotations

from .fx_rates import FX_FORMATS, FxConflict, FxImportResult
from .fx_series import fx_series
from .market_workflows import import_fx_file, store_rates

__all__ = [
    "FX_FORMATS",
    "FxConflict",
    "FxImportResult",
    "fx_series",
    "import_fx_file",
    "store_rates",
]
