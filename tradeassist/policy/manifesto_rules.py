"""The effective policy: a policy with its strategy's manifesto rules added to its hard rules,
each contradiction named by the manifesto line that states it."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from ..core.errors import ValidationError
from ..core.money import decimal_str, to_decimal
from ..manifesto import ManifestoRules
from .model import Policy, check_names
from .parsing import parse_policy, policy_to_dict

# A manifesto rule line, as tradeassist.manifesto reads it (there, for the rules; here, to name the line).
_RULE_KEY = re.compile(
    r"^[ \t]*[-*+][ \t]+(never[ \t]+sell|avoid|max[ \t]+single[ \t]+trade)[ \t]*:(.*)$", re.IGNORECASE
)


def _rule_lines(manifesto: str | None, key: str) -> list[tuple[int, str]]:
    """(line number, value) of each ``key:`` rule line of the manifesto (as manifesto.py reads them)."""
    found = []
    for number, line in enumerate((manifesto or "").splitlines(), start=1):
        match = _RULE_KEY.match(line)
        if match and " ".join(match.group(1).lower().split()) == key:
            found.append((number, match.group(2).strip().rstrip(".")))
    return found


def _where(manifesto: str | None, key: str, wanted: Any) -> str:
    """The manifesto line stating ``wanted`` for rule ``key``, named as manifesto.py names lines:
    ``manifesto line 7 (max single trade: 5000)``; without the text, the rule itself."""
    for number, value in _rule_lines(manifesto, key):
        if key == "max single trade":
            try:
                hit = to_decimal(value, what="amount") == wanted
            except ValidationError:
                hit = False
        else:
            hit = wanted in {part.strip().upper() for part in value.split(",")}
        if hit:
            return f"manifesto line {number} ({key}: {value})"
    shown = decimal_str(wanted) if isinstance(wanted, Decimal) else wanted
    return f"manifesto rule ({key}: {shown})"


def with_manifesto_rules(policy: Policy, rules: ManifestoRules, *, manifesto: str | None = None) -> Policy:
    """The effective policy: ``policy`` with the manifesto's rule lines added to its hard rules.

    ``never_sell`` gains the manifesto's ``never sell:`` names, ``never_buy`` its ``avoid:``
    names, and ``max_trade_base`` is the manifesto's ``max single trade:`` when the policy
    states none. A rule that contradicts the policy raises ``ValidationError`` naming the
    manifesto line (give ``manifesto``, the text ``rules`` was parsed from, for line numbers):
    a rule line that could not be read (``rules.problems``); a name the policy cannot hold
    (a sleeve code or ``TICKER:EXCHANGE``); a max single trade different from the policy's
    stated ``max_trade_base``, or below its ``min_trade_base`` (no line could ever trade).
    The result is validated again, so it is a valid ``Policy``; ``policy`` itself is unchanged
    (the archived policy stays the file as written).
    """
    problems = list(rules.problems)
    for key, names in (("never sell", rules.never_sell), ("avoid", rules.avoid)):
        for name in sorted(names):
            try:
                check_names((name,))
            except ValueError as exc:
                problems.append(f"{_where(manifesto, key, name)}: {exc}")
    limit = rules.max_single_trade
    if limit is not None:
        where = _where(manifesto, "max single trade", limit)
        stated = policy.max_trade_base
        if stated is not None and stated != limit:
            problems.append(
                f"{where}: the policy's max_trade_base is {decimal_str(stated)}; "
                "state one limit, or the same in both"
            )
        if limit < policy.min_trade_base:
            problems.append(
                f"{where}: below the policy's min_trade_base of {decimal_str(policy.min_trade_base)}, "
                "so no line could ever trade"
            )
    if problems:
        raise ValidationError("; ".join(problems), problems=problems)
    update: dict[str, Any] = {
        "never_sell": tuple(policy.never_sell) + tuple(sorted(rules.never_sell)),
        "never_buy": tuple(policy.never_buy) + tuple(sorted(rules.avoid)),
    }
    if policy.max_trade_base is None and limit is not None:
        update["max_trade_base"] = limit
    try:
        return parse_policy(policy_to_dict(policy.model_copy(update=update)))
    except ValidationError as exc:
        message = f"the manifesto's rules: {exc}"
        raise ValidationError(message, problems=[message]) from None
