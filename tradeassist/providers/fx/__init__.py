"""FX providers, registered by name, and the GBP crosses derived from EUR reference rates.

>>> from tradeassist.providers.fx import get_fx_provider, gbp_crosses
>>> rates = get_fx_provider("ecb").parse("Date,USD,GBP,\\n2026-04-13,1.1684,0.87058,\\n")
>>> [(r.quote_currency, r.rate) for r in gbp_crosses(rates)]
[('EUR', Decimal('1.14865951435')), ('USD', Decimal('1.34209377656'))]
"""

from __future__ import annotations

from collections.abc import Callable

from ...core.errors import ConfigError
from .ecb import (
    CROSS_CONTEXT,
    CROSS_PRECISION,
    EcbFxProvider,
    FxProvider,
    FxRate,
    gbp_crosses,
    parse_ecb_csv,
)

_factories: dict[str, Callable[..., FxProvider]] = {EcbFxProvider.name: EcbFxProvider}


def get_fx_provider(name: str, **options: object) -> FxProvider:
    """A new instance of the FX provider registered as ``name``; options go to its constructor."""
    try:
        factory = _factories[name]
    except KeyError:
        known = ", ".join(fx_provider_names())
        raise ConfigError(f"unknown FX provider {name!r}; known providers: {known}") from None
    return factory(**options)


def fx_provider_names() -> tuple[str, ...]:
    return tuple(sorted(_factories))


def register_fx_provider(name: str, factory: Callable[..., FxProvider]) -> None:
    _factories[name] = factory


__all__ = [
    "CROSS_CONTEXT",
    "CROSS_PRECISION",
    "EcbFxProvider",
    "FxProvider",
    "FxRate",
    "fx_provider_names",
    "gbp_crosses",
    "get_fx_provider",
    "parse_ecb_csv",
    "register_fx_provider",
]
