"""Broker-file parsers, registered by name.

    fmt = get_broker_format("ajbell")
    parsed = fmt.parse(history_csv, cash_statement_csv, mapping=load_mapping(mapping_csv))

Each format reads files and returns a ``ParsedFile`` of ``ParsedEntry`` values, oldest
first; it never touches the database (a service resolves listings and writes the batch).
"""

from __future__ import annotations

from ...core.errors import NotFound
from .ajbell import AJBellFormat, ListingRef, load_mapping, parse_ajbell
from .base import (
    BrokerFormat,
    FrozenMap,
    NamedBytes,
    ParsedEntry,
    ParsedFile,
    Source,
    SourceFile,
    StatementBalance,
    UnmappedDescriptionsError,
)
from .canonical import CanonicalFormat, parse_canonical
from .freetrade import FreetradeFormat, parse_freetrade
from .investengine import InvestEngineFormat, parse_investengine
from .trading212 import Trading212Format, parse_trading212

__all__ = [
    "BrokerFormat",
    "FrozenMap",
    "ListingRef",
    "NamedBytes",
    "ParsedEntry",
    "ParsedFile",
    "Source",
    "SourceFile",
    "StatementBalance",
    "UnmappedDescriptionsError",
    "broker_format_names",
    "get_broker_format",
    "load_mapping",
    "parse_ajbell",
    "parse_canonical",
    "parse_freetrade",
    "parse_investengine",
    "parse_trading212",
    "register_broker_format",
]

_REGISTRY: dict[str, BrokerFormat] = {}


def register_broker_format(fmt: BrokerFormat) -> None:
    """Make ``fmt`` available by its name (a later registration replaces an earlier one)."""
    _REGISTRY[fmt.name] = fmt


def get_broker_format(name: str) -> BrokerFormat:
    try:
        return _REGISTRY[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise NotFound(f"unknown broker format {name!r}; known formats: {known}") from None


def broker_format_names() -> list[str]:
    return sorted(_REGISTRY)


register_broker_format(CanonicalFormat())
register_broker_format(AJBellFormat())
register_broker_format(Trading212Format())
register_broker_format(FreetradeFormat())
register_broker_format(InvestEngineFormat())
