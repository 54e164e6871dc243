"""Canonical JSON: decimals as strings, timestamps as ISO 8601, sorted keys for hashing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from .money import decimal_str


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return decimal_str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def dumps(value: Any, *, indent: int | None = None) -> str:
    """JSON text with Decimals as exact strings (never floats)."""
    return json.dumps(value, default=_default, ensure_ascii=False, indent=indent)


def canonical_dumps(value: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace) for hashing."""
    return json.dumps(value, default=_default, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def sha256_of(value: Any) -> str:
    return hashlib.sha256(canonical_dumps(value).encode("utf-8")).hexdigest()


def loads_decimal(text: str) -> Any:
    """Parse JSON with every non-integer number as a Decimal (never a float)."""
    return json.loads(text, parse_float=Decimal)


def plain(value: Any) -> Any:
    """Plain JSON values, ready to store or hash: Decimals as exact strings, timestamps as ISO 8601
    in UTC (a naive one is taken as UTC), dates ISO, enums by value, mappings as dicts with text
    keys, and tuples, lists and sets as lists. Anything else is returned as it is."""
    if isinstance(value, Decimal):
        return decimal_str(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    return value
