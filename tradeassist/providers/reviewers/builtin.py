"""``builtin-rules``: the default reviewer. Deterministic, offline, explainable.

A recommendation review checks, for the lines that would execute (not those suppressed by the
minimum trade):

* FAIL: trades on a frozen portfolio; trades from a task kind that never trades; a SELL when
  the policy's ``allow_sells`` does not allow it for the task kind; a line below
  ``min_trade_base``; fractional units under ``whole_units``; trades plus fees costing more
  than the money available; cash left below ``cash_buffer_base``; drift after the trades
  above drift before; malformed lines; and the manifesto's rules (below).
* WARN: what cannot be checked or looks inconsistent: a constraints report that states no
  cash figures, figures that disagree with the lines, a suppressed line that reaches the
  minimum, a manifesto rule naming a sleeve when the line's sleeve is not known.

The constraints report and rationale are read by these keys (each with a ``_base`` or
``_gbp`` suffix): ``cash_available`` (cash plus contribution before trading),
``cash_after`` (cash left after trades and fees), ``fees`` (all fees);
``drift_before`` / ``drift_after`` (a number, or a mapping sleeve -> drift: the largest
absolute value is compared).

Manifesto rules are bullet lines, matched case-insensitively anywhere in the markdown::

    - never sell: SEMIS, VWRP         no SELL of these sleeves, tickers or TICKER:EXCHANGE
    - avoid: TSLA, ARKK:LSE           no BUY of these
    - max single trade: 5000          no executed line above this amount (GBP)

A manifesto review checks that the manifesto is not empty, mentions every sleeve of the
policy by its code, and that its rule lines parse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ...enums import TaskKind, Verdict
from ...errors import ValidationError
from ...manifesto import ManifestoRules, parse_manifesto_rules
from ...money import ZERO, decimal_str, to_decimal
from .base import MANIFESTO, ReviewRequest, ReviewVerdict, plain, request_hash

NAME = "builtin-rules"
MODEL = "rules-v1"  # part of the request hash: change it when the rules change
TRADING_KINDS = frozenset(
    {TaskKind.MONTHLY_ALLOC.value, TaskKind.QUARTERLY_REBAL.value, TaskKind.WEEKLY_REVIEW.value}
)


@dataclass(frozen=True, slots=True)
class _Line:
    label: str  # "#1 BUY VWRP:LSE £301.50"
    ticker: str
    exchange: str
    action: str
    amount: Decimal
    units: Decimal
    suppressed: bool
    sleeve: str | None

    @property
    def names(self) -> frozenset[str]:
        names = {self.ticker.upper(), f"{self.ticker}:{self.exchange}".upper()}
        if self.sleeve:
            names.add(self.sleeve.upper())
        return frozenset(names)


@dataclass
class _Findings:
    fails: list[str] = field(default_factory=list)
    warns: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


def _money(value: Decimal) -> str:
    return f"£{decimal_str(value)}"


def _policy_amount(policy: Mapping[str, Any], key: str, found: _Findings) -> Decimal | None:
    if policy.get(key) is None:
        found.warns.append(f"the policy states no {key}: not checked")
        return None
    try:
        return to_decimal(policy[key], what=f"policy {key}")
    except ValidationError as exc:
        found.fails.append(str(exc))
        return None


def _report_amount(report: Mapping[str, Any], stem: str, found: _Findings) -> Decimal | None:
    for key in (f"{stem}_base", f"{stem}_gbp", stem):
        if report.get(key) is not None:
            try:
                return to_decimal(report[key], what=key)
            except ValidationError as exc:
                found.fails.append(f"constraints report: {exc}")
                return None
    return None


def _sleeve_of(raw: Mapping[str, Any], policy: Mapping[str, Any]) -> str | None:
    if isinstance(raw.get("sleeve"), str) and raw["sleeve"]:
        return raw["sleeve"]
    key = f"{raw.get('ticker')}:{raw.get('exchange')}"
    split = policy.get("constituent_split") or {}
    owners = [sleeve for sleeve, weights in split.items() if isinstance(weights, Mapping) and key in weights]
    return owners[0] if len(owners) == 1 else None


def _read_lines(
    recommendation: Mapping[str, Any], policy: Mapping[str, Any], found: _Findings
) -> list[_Line]:
    raw_lines = recommendation.get("lines") or ()
    lines: list[_Line] = []
    for index, raw in enumerate(raw_lines, start=1):
        if not isinstance(raw, Mapping):
            found.fails.append(f"line #{index}: not an object")
            continue
        ticker, exchange = str(raw.get("ticker") or ""), str(raw.get("exchange") or "")
        action = str(raw.get("action") or "").upper()
        where = f"line #{index} ({ticker}:{exchange})"
        problems = []
        if not ticker or not exchange:
            problems.append("ticker and exchange are required")
        if action not in {"BUY", "SELL"}:
            problems.append(f"action {raw.get('action')!r} is not BUY or SELL")
        numbers: dict[str, Decimal] = {}
        for key in ("amount_base", "estimated_units"):
            try:
                numbers[key] = to_decimal(raw.get(key), what=key)
            except ValidationError as exc:
                problems.append(str(exc))
                continue
            if numbers[key] < ZERO:
                problems.append(f"{key} is negative")
        suppressed = raw.get("suppressed_by_min_trade", False)
        if not isinstance(suppressed, bool):
            problems.append("suppressed_by_min_trade is not true or false")
        if problems:
            found.fails.append(f"{where}: {'; '.join(problems)}")
            continue
        amount = numbers["amount_base"]
        lines.append(
            _Line(
                label=f"#{index} {action} {ticker}:{exchange} {_money(amount)}",
                ticker=ticker,
                exchange=exchange,
                action=action,
                amount=amount,
                units=numbers["estimated_units"],
                suppressed=suppressed,
                sleeve=_sleeve_of(raw, policy),
            )
        )
    return lines


def _largest_drift(value: Any, what: str, found: _Findings) -> Decimal | None:
    try:
        if isinstance(value, Mapping):
            drifts = [abs(to_decimal(v, what=f"{what} {k}")) for k, v in value.items()]
            return max(drifts, default=ZERO)
        return abs(to_decimal(value, what=what))
    except ValidationError as exc:
        found.fails.append(f"rationale: {exc}")
        return None


def _check_trading_rules(request: ReviewRequest, executed: list[_Line], found: _Findings) -> None:
    policy, kind = request.policy, request.task_kind
    found.checks.append("frozen portfolio")
    if request.portfolio_frozen and executed:
        found.fails.append(f"the portfolio is frozen, yet {len(executed)} line(s) would trade")
    found.checks.append("task kind trades")
    if kind is not None and kind not in TRADING_KINDS and executed:
        found.fails.append(f"{kind} never trades, yet {len(executed)} line(s) would trade")
    found.checks.append("sells allowed")
    sells = [line for line in executed if line.action == "SELL"]
    allow = policy.get("allow_sells") or {}
    if sells and kind is None:
        found.warns.append("the task kind is not given: cannot tell whether the policy allows selling")
    elif sells and allow.get(kind) is not True:
        for line in sells:
            found.fails.append(f"{line.label}: the policy does not allow {kind} to sell")


def _check_sizes(policy: Mapping[str, Any], lines: list[_Line], found: _Findings) -> None:
    minimum = _policy_amount(policy, "min_trade_base", found)
    found.checks.append("minimum trade")
    for line in lines:
        if not line.suppressed and line.amount == ZERO:
            found.fails.append(f"{line.label}: an executed line of zero")
        elif minimum is not None and not line.suppressed and line.amount < minimum:
            found.fails.append(f"{line.label}: below the minimum trade of {_money(minimum)}")
        elif minimum is not None and line.suppressed and line.amount >= minimum:
            found.warns.append(
                f"{line.label}: suppressed although it reaches the minimum of {_money(minimum)}"
            )
    found.checks.append("whole units")
    if policy.get("whole_units", True) is True:
        for line in lines:
            if not line.suppressed and line.units != line.units.to_integral_value():
                found.fails.append(f"{line.label}: {decimal_str(line.units)} units is not a whole number")


def _check_money(request: ReviewRequest, executed: list[_Line], found: _Findings) -> None:
    policy, recommendation = request.policy, request.recommendation or {}
    report = recommendation.get("constraints_report") or {}
    fee = _policy_amount(policy, "fee_per_trade_base", found) or ZERO
    buffer = _policy_amount(policy, "cash_buffer_base", found)
    buys = sum((line.amount for line in executed if line.action == "BUY"), ZERO)
    sells = sum((line.amount for line in executed if line.action == "SELL"), ZERO)
    fees = fee * len(executed)
    net = buys - sells
    stated_fees = _report_amount(report, "fees", found)
    if stated_fees is not None and stated_fees != fees:
        found.warns.append(
            f"the constraints report states fees of {_money(stated_fees)}; "
            f"{len(executed)} line(s) at {_money(fee)} cost {_money(fees)}"
        )
        fees = max(fees, stated_fees)
    available = _report_amount(report, "cash_available", found)
    stated_after = _report_amount(report, "cash_after", found)
    found.checks.append("money available")
    if available is not None and net + fees > available:
        found.fails.append(
            f"the trades cost {_money(net)} plus {_money(fees)} fees, "
            f"more than the {_money(available)} available"
        )
    after = stated_after
    if available is not None:
        computed = available - net - fees
        if stated_after is not None and stated_after != computed:
            found.warns.append(
                f"the constraints report leaves {_money(stated_after)} cash; "
                f"the lines leave {_money(computed)}"
            )
        after = computed if stated_after is None else min(stated_after, computed)
    found.checks.append("cash buffer")
    if after is None:
        if executed:
            found.warns.append(
                "the constraints report states neither the cash available nor the cash left: "
                "the cash buffer was not checked"
            )
    elif buffer is not None and after < buffer:
        found.fails.append(f"the trades leave {_money(after)} cash, below the {_money(buffer)} buffer")


def _check_drift(recommendation: Mapping[str, Any], found: _Findings) -> None:
    rationale = recommendation.get("rationale") or {}
    before = after = None
    for stem in ("drift_before", "max_drift_before"):
        if rationale.get(stem) is not None:
            before = _largest_drift(rationale[stem], stem, found)
            break
    for stem in ("drift_after", "max_drift_after"):
        if rationale.get(stem) is not None:
            after = _largest_drift(rationale[stem], stem, found)
            break
    if before is not None and after is not None:
        found.checks.append("drift reduced")
        if after > before:
            found.fails.append(
                f"the drift after trading ({decimal_str(after)}) exceeds "
                f"the drift before ({decimal_str(before)})"
            )


def _check_manifesto_rules(
    request: ReviewRequest, rules: ManifestoRules, executed: list[_Line], found: _Findings
) -> None:
    for problem in rules.problems:
        found.warns.append(f"{problem}: that rule was not checked")
    sleeves = {str(code).upper() for code in (request.policy.get("sleeve_targets") or {})}
    found.checks.append("manifesto rules")
    if rules.max_single_trade is not None:
        for line in executed:
            if line.amount > rules.max_single_trade:
                found.fails.append(
                    f"{line.label}: above the manifesto's max single trade "
                    f"of {_money(rules.max_single_trade)}"
                )
    for action, names, rule in (("SELL", rules.never_sell, "never sell"), ("BUY", rules.avoid, "avoid")):
        for line in executed:
            if line.action != action:
                continue
            hit = sorted(line.names & names)
            if hit:
                found.fails.append(f"{line.label}: the manifesto says {rule}: {', '.join(hit)}")
            elif line.sleeve is None and names & sleeves:
                found.warns.append(
                    f"{line.label}: its sleeve is not known, so the manifesto's "
                    f"'{rule}: {', '.join(sorted(names & sleeves))}' could not be checked"
                )


def review_recommendation(request: ReviewRequest) -> tuple[list[str], list[str], list[str], ManifestoRules]:
    """(fails, warns, checks run, manifesto rules) for a recommendation review."""
    found = _Findings()
    recommendation = request.recommendation or {}
    lines = _read_lines(recommendation, request.policy, found)
    executed = [line for line in lines if not line.suppressed]
    rules = parse_manifesto_rules(request.manifesto)
    _check_trading_rules(request, executed, found)
    _check_sizes(request.policy, lines, found)
    _check_money(request, executed, found)
    _check_drift(recommendation, found)
    _check_manifesto_rules(request, rules, executed, found)
    if not executed:
        found.checks.append("no trades proposed")
    return found.fails, found.warns, found.checks, rules


def review_manifesto(request: ReviewRequest) -> tuple[list[str], list[str], list[str], ManifestoRules]:
    found = _Findings()
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
                    f"the manifesto's max single trade ({_money(rules.max_single_trade)}) is below the "
                    f"policy's minimum trade ({_money(to_decimal(minimum))}): nothing could trade"
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
