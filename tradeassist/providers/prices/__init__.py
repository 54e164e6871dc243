"""Price providers, registered by name.

>>> from tradeassist.providers.prices import get_price_provider, price_provider_names
>>> price_provider_names()
('csv', 'json', 'stooq', 'twelvedata', 'yahoo')
>>> series = get_price_provider("stooq").parse(b"Date,Open,High,Low,Close\\n2024-01-02,1,2,1,1.5\\n")
>>> series.bars[0].close
Decimal('1.5')

``get_price_provider(name, **options)`` builds a new instance; options go to the provider's
constructor (``base_url``, ``api_key``, ``client``, ``currency`` for Yahoo CSVs...). Register
another provider with ``register_price_provider(name, factory)``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ...core.errors import FileFormatError
from .base import (
    PENCE,
    POUNDS,
    FetchingPriceProvider,
    PriceBar,
    PriceProvider,
    PriceProviderRegistry,
    PriceSeries,
    declared_units,
    read_source,
)
from .csvfile import CsvPriceProvider
from .gsej import JsonPriceProvider
from .stooq import StooqProvider
from .twelvedata import TwelveDataProvider
from .yahoo import YahooProvider

registry = PriceProviderRegistry()
for _provider in (StooqProvider, TwelveDataProvider, YahooProvider, CsvPriceProvider, JsonPriceProvider):
    registry.register(_provider.name, _provider)


def get_price_provider(name: str, **options: object) -> PriceProvider:
    """A new instance of the provider registered as ``name``; ``ConfigError`` if there is none."""
    return registry.get(name, **options)


def price_provider_names() -> tuple[str, ...]:
    return registry.names()


def register_price_provider(name: str, factory: Callable[..., PriceProvider]) -> None:
    registry.register(name, factory)


def parse_price_file(provider: str | PriceProvider, path: str | Path) -> PriceSeries:
    """Read a price file with a provider (by name or instance); errors name the file and line.

    A file over ``core.limits.MAX_FILE_BYTES`` is refused before it is read, and a file with
    no usable price (only a header, or only Yahoo's ``null`` rows) is an error, not an
    import of nothing.
    """
    chosen = get_price_provider(provider) if isinstance(provider, str) else provider
    data, source_name = read_source(path)
    series = chosen.parse(data, source_name=source_name)
    if not series.bars:
        nulls = series.meta.get("skipped_null_rows")
        why = f"its {nulls} rows are all null" if nulls else "it has no rows"
        raise FileFormatError(source_name, line=None, reason=f"no usable price: {why}")
    return series


__all__ = [
    "PENCE",
    "POUNDS",
    "CsvPriceProvider",
    "FetchingPriceProvider",
    "JsonPriceProvider",
    "PriceBar",
    "PriceProvider",
    "PriceProviderRegistry",
    "PriceSeries",
    "StooqProvider",
    "TwelveDataProvider",
    "YahooProvider",
    "declared_units",
    "get_price_provider",
    "parse_price_file",
    "price_provider_names",
    "register_price_provider",
    "registry",
]
