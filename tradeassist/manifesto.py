"""The rules a strategy's manifesto states in lines a program can read.

Rules are bullet lines, matched case-insensitively anywhere in the markdown::

    - never sell: SEMIS, VWRP         no SELL of these sleeves, tickers or TICKER:EXCHANGE
    - avoid: TSLA, ARKK:LSE           no BUY of these
    - max single trade: 5000          no executed line above this amount (GBP)

They are parsed once, when a strategy version is added, into the policy's hard rules
(``policy.with_manifesto_rules``): the search never breaks them and the built-in reviewer
checks each recommendation against the same parsed rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .core.errors import ValidationError
from .core.money import ZERO, decimal_str, to_decimal

_RULE_LINE = re.compile(
    r"^[ \t]*[-*+][ \t]+(?P<key>never[ \t]+sell|avoid|max[ \t]+single[ \t]+trade)[ \t]*:(?P<value>.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_NAME = re.compile(r"[A-Z0-9][A-Z0-9._\-]*(?::[A-Z0-9_]+)?")


@dataclass(frozen=True, slots=True)
class ManifestoRules:
    never_sell: frozenset[str] = frozenset()
    avoid: frozenset[str] = frozenset()
    max_single_trade: Decimal | None = None
    problems: tuple[str, ...] = field(default=())

    @property
    def count(self) -> int:
        return len(self.never_sell) + len(self.avoid) + (self.max_single_trade is not None)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "never_sell": sorted(self.never_sell),
            "avoid": sorted(self.avoid),
            "max_single_trade": decimal_str(self.max_single_trade),
            "problems": list(self.problems),
        }


def parse_manifesto_rules(markdown: str) -> ManifestoRules:
    """The rule lines of a manifesto; ``problems`` names each line that could not be read."""
    never_sell: set[str] = set()
    avoid: set[str] = set()
    limits: list[Decimal] = []
    problems: list[str] = []
    for match in _RULE_LINE.finditer(markdown):
        line_no = markdown.count("\n", 0, match.start()) + 1
        key = " ".join(match.group("key").lower().split())
        value = match.group("value").strip().rstrip(".")
        where = f"manifesto line {line_no} ({key}: {value})"
        if key == "max single trade":
            try:
                limit = to_decimal(value, what="amount")
            except ValidationError:
                problems.append(f"{where}: expected an amount in GBP, e.g. 5000")
                continue
            if limit <= ZERO:
                problems.append(f"{where}: the limit must be positive")
                continue
            limits.append(limit)
            continue
        names = [part.strip().upper() for part in value.split(",")]
        if not value or not all(_NAME.fullmatch(name) for name in names):
            problems.append(
                f"{where}: expected sleeve codes, tickers or TICKER:EXCHANGE, separated by commas"
            )
            continue
        (never_sell if key == "never sell" else avoid).update(names)
    return ManifestoRules(
        never_sell=frozenset(never_sell),
        avoid=frozenset(avoid),
        max_single_trade=min(limits) if limits else None,
        problems=tuple(problems),
    )
