"""``builtin-rules``: the default reviewer. Deterministic, offline, explainable.

It is a guard independent of the optimizer: it recomputes what it needs from the
recommendation's own figures (each line's units and amount, each holding's units, price and
value) and never trusts a single stated total. A recommendation review checks the lines that
would execute (not those suppressed by the minimum trade).

FAIL, whatever the optimizer says:

* trades on a frozen portfolio; trades from a task kind that never trades; a SELL the
  policy's ``allow_sells`` does not allow for the task kind;
* a line of zero, below ``min_trade_base``, or in fractional units (``whole_units``);
  malformed lines or holdings;
* trades plus fees costing more than the money available; cash left below
  ``cash_buffer_base``; drift after the trades above drift before;
* **turnover**: the executed SELL lines' consideration above ``max_turnover`` (default 0.25)
  times the base, the base being recomputed as the in-base holdings' value plus cash plus the
  contribution;
* **a sleeve sold to zero**: a sleeve whose in-base value was positive before the lines and
  is zero after them (except a sleeve whose target is 0: one the policy targets at 0, or one
  it does not target when ``untargeted`` is ``"sell"``);
* **a SELL of more units than are held** (or of a listing not held);
* **a held listing valued at zero**: held units in the base with no price, a price too old,
  or a value of nothing; and a held listing neither in the base nor listed as left alone;
* **an untargeted holding sold**: a SELL of a listing the strategy does not target (or whose
  sleeve has no target) unless ``untargeted`` is ``"sell"``;
* **hard rules**: ``never_sell``, ``never_buy`` and ``max_trade_base`` from the policy and the
  manifesto's rules (below), one FAIL per line and rule even when both state it.

WARN, what cannot be checked or looks inconsistent: a recommendation without holdings
(``rationale["positions"]``: an older recommendation or another engine), a constraints report
that states no cash figures, figures that disagree with the lines (cash left, fees, the base
value, a line's amount against its units times the holding's price, a holding's value against
its units times its price), a suppressed line that reaches the minimum, a hard rule naming a
sleeve when the line's sleeve is not known, and **cash left idle**: more than
``min_trade_base`` above the cash buffer after a monthly allocation (or any trade list) on a
portfolio that is not frozen, when one more whole-unit line of at least the minimum, plus
its fee, would have fitted (not when a held listing of the strategy has no good price and the
policy's ``unpriced`` is ``"block"``: then nothing is to trade).

What is read: the policy (``sleeve_targets``, ``min_trade_base``, ``fee_per_trade_base``,
``cash_buffer_base``, ``whole_units``, ``allow_sells``, ``constituent_split``,
``never_sell``, ``never_buy``, ``max_trade_base``, ``max_turnover``, ``untargeted``,
``unpriced``); the
constraints report's ``cash``, ``contribution``, ``cash_available`` (cash plus contribution),
``cash_after``, ``fees`` and ``base_value`` (each also with a ``_base`` or ``_gbp`` suffix);
the rationale's ``positions`` (``ticker``, ``exchange``, ``sleeve``, ``units``,
``price_gbp``, ``value_base``, ``in_base``, ``targeted``, optionally ``price_stale``),
``left_alone`` (``ticker``, ``exchange``, ``reason``) and ``drift_before`` /
``drift_after`` (a number, or a mapping sleeve -> drift: the largest absolute value counts).

Manifesto rules are bullet lines, matched case-insensitively anywhere in the markdown
(``tradeassist.manifesto``; the strategy service merges them into the policy's hard rules)::

    - never sell: SEMIS, VWRP         no SELL of these sleeves, tickers or TICKER:EXCHANGE
    - avoid: TSLA, ARKK:LSE           no BUY of these
    - max single trade: 5000          no executed line above this amount (GBP)

A manifesto review checks that the manifesto is not empty, mentions every sleeve of the
policy by its code, and that its rule lines parse.

Amounts in the reasons are pounds and pence (``£1,234.56``).
"""

from __future__ import annotations

import re

from ...core.enums import Verdict
from ...core.errors import ValidationError
from ...core.jsonutil import plain
from ...core.money import format_gbp, to_decimal
from ...manifesto import ManifestoRules, parse_manifesto_rules
from .base import MANIFESTO, ReviewRequest, ReviewVerdict, request_hash
from .builtin_checks import (
    check_drift,
    check_hard_rules,
    check_line_prices,
    check_money,
    check_sizes,
    check_trading_rules,
    read_money_in,
)
from .builtin_holdings import check_holdings, check_idle_cash, check_sells, check_turnover
from .builtin_reading import Findings, mapping, read_left_alone, read_lines, read_positions, read_targets

__all__ = [
    "MODEL",
    "NAME",
    "BuiltinRulesReviewer",
    "ManifestoRules",
    "parse_manifesto_rules",
    "review_manifesto",
    "review_recommendation",
]

NAME = "builtin-rules"
MODEL = "rules-v2"  # part of the request hash: change it when the rules change


def review_recommendation(request: ReviewRequest) -> tuple[list[str], list[str], list[str], ManifestoRules]:
    """(fails, warns, checks run, manifesto rules) for a recommendation review."""
    found = Findings()
    policy = request.policy
    recommendation = request.recommendation or {}
    rationale = mapping(recommendation.get("rationale"))
    report = mapping(recommendation.get("constraints_report"))
    holdings = read_positions(rationale, found)
    left_alone = read_left_alone(rationale)
    targets = read_targets(policy, found)
    lines = read_lines(recommendation, policy, holdings, found)
    executed = [line for line in lines if not line.suppressed]
    rules = parse_manifesto_rules(request.manifesto)
    check_trading_rules(request, executed, found)
    check_sizes(policy, lines, found)
    check_line_prices(executed, holdings, found)
    money_in = read_money_in(report, found)
    cash = check_money(policy, report, money_in, executed, found)
    check_drift(rationale, found)
    check_hard_rules(request, rules, executed, holdings, found)
    if holdings is None:
        found.warns.append(
            "the recommendation does not list the holdings it was computed from, so they could not "
            "be checked: no listing valued at zero, no sleeve sold out, no holding outside the "
            "strategy sold, and the turnover only against a stated portfolio value"
        )
    else:
        check_holdings(holdings, left_alone, found)
        check_sells(policy, targets, holdings, executed, found)
    check_turnover(policy, report, money_in, holdings, executed, found)
    check_idle_cash(request, rules, cash, targets, holdings, left_alone, executed, found)
    if not executed:
        found.checks.append("no trades proposed")
    return found.fails, found.warns, found.checks, rules


def review_manifesto(request: ReviewRequest) -> tuple[list[str], list[str], list[str], ManifestoRules]:
    found = Findings()
    text = request.manifesto
    rules = parse_manifesto_rules(text)
    found.checks.append("not empty")
    if not text.strip():
        found.fails.append("the manifesto is empty")
    found.checks.append("mentions every sleeve")
    sleeves = sorted(str(code) for code in (request.policy.get("sleeve_targets") or {}))
    if not sleeves:
        found.warns.append("the policy has no sleeve targets to look for")
    missing = [
        s for s in sleeves if not re.search(rf"(?<![A-Za-z0-9_]){re.escape(s)}(?![A-Za-z0-9_])", text, re.I)
    ]
    if missing and text.strip():
        found.fails.append(f"the manifesto does not mention the sleeve(s) {', '.join(missing)}")
    found.checks.append("rules parse")
    found.fails.extend(rules.problems)
    minimum = request.policy.get("min_trade_base")
    if rules.max_single_trade is not None and minimum is not None:
        try:
            if rules.max_single_trade < to_decimal(minimum, what="policy min_trade_base"):
                found.warns.append(
                    f"the manifesto's max single trade ({format_gbp(rules.max_single_trade)}) is below the "
                    f"policy's minimum trade ({format_gbp(to_decimal(minimum))}): nothing could trade"
                )
        except ValidationError as exc:
            found.fails.append(str(exc))
    return found.fails, found.warns, found.checks, rules


class BuiltinRulesReviewer:
    """Checks against the policy and the manifesto's rules; needs no network and no key."""

    name = NAME
    model = MODEL

    def __init__(self, **_options: object) -> None:
        pass

    def review(self, request: ReviewRequest) -> ReviewVerdict:
        check = review_manifesto if request.kind == MANIFESTO else review_recommendation
        fails, warns, checks, rules = check(request)
        if fails:
            verdict = Verdict.FAIL
        elif warns:
            verdict = Verdict.WARN
        else:
            verdict = Verdict.PASS
        reasons = [*fails, *warns] or [f"all checks hold: {', '.join(checks)}"]
        return ReviewVerdict(
            provider=NAME,
            model=MODEL,
            verdict=verdict,
            reasons=tuple(reasons),
            response_json=plain(
                {
                    "verdict": verdict.value,
                    "reasons": reasons,
                    "failures": fails,
                    "warnings": warns,
                    "checks": checks,
                    "manifesto_rules": rules.to_json_dict(),
                }
            ),
            request_hash=request_hash(request, NAME, MODEL),
        )
