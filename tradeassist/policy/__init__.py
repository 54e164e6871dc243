"""The policy: sleeve targets, drift bands and trading constraints, as a versioned schema.

A policy is a small JSON document (``policy.json``) that the strategy service archives
under the SHA-256 of its canonical form. The example from the design accepted as is::

    {"sleeve_targets": {"CORE": "0.70", "SEMIS": "0.15", "ENERGY": "0.15"},
     "drift_bands": {"absolute": "0.05", "relative": "0.25"},
     "min_trade_base": "100", "fee_per_trade_base": "1.50", "cash_buffer_base": "50",
     "whole_units": true,
     "allow_sells": {"MONTHLY_ALLOC": false, "QUARTERLY_REBAL": true}}

Every number is a ``Decimal``: write it as a string, or as a JSON number read with
``jsonutil.loads_decimal`` (never a float: a Python float is refused). Unknown keys are
refused, so a typo cannot silently fall back to a default. Amounts (``*_base``) are in the
portfolio's base currency, GBP in V1.

The canonical form (``canonical_policy_json``) is the validated policy with every default
filled in, keys sorted, no whitespace and decimals normalised (``"0.70"`` and ``0.7`` are the
same number, so the same policy): the same content gives the same SHA-256 whatever the key
order, whitespace or spelling of the numbers in the file.
"""

from __future__ import annotations

from ..core.enums import TRADING_KINDS
from .manifesto_rules import with_manifesto_rules
from .model import (
    LISTING_KEY,
    SCHEMA_VERSION,
    SLEEVE_CODE,
    DriftBands,
    ExactDecimal,
    FractionOfOne,
    NonNegativeDecimal,
    Policy,
    PositiveDecimal,
)
from .parsing import (
    LEGACY_MEANING,
    canonical_policy_json,
    parse_policy,
    parse_stored_policy,
    policy_sha256,
    policy_to_dict,
)

__all__ = [
    "LEGACY_MEANING",
    "LISTING_KEY",
    "SCHEMA_VERSION",
    "SLEEVE_CODE",
    "TRADING_KINDS",
    "DriftBands",
    "ExactDecimal",
    "FractionOfOne",
    "NonNegativeDecimal",
    "Policy",
    "PositiveDecimal",
    "canonical_policy_json",
    "parse_policy",
    "parse_stored_policy",
    "policy_sha256",
    "policy_to_dict",
    "with_manifesto_rules",
]
