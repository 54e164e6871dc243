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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any

from ...core.enums import TaskKind, Verdict
from ...core.errors import ValidationError
from ...core.money import ZERO, decimal_str, to_decimal
from ...manifesto import ManifestoRules, parse_manifesto_rules
from .base import MANIFESTO, ReviewRequest, ReviewVerdict, plain, request_hash

NAME = "builtin-rules"
MODEL = "rules-v2"  # part of the request hash: change it when the rules change
TRADING_KINDS = frozenset(
    {TaskKind.MONTHLY_ALLOC.value, TaskKind.QUARTERLY_REBAL.value, TaskKind.WEEKLY_REVIEW.value}
)
DEFAULT_MAX_TURNOVER = Decimal("0.25")
PENNY = Decimal("0.01")
# The policy's amounts, in the words a reason uses.
POLICY_WORDS = {
    "min_trade_base": "minimum trade",
    "fee_per_trade_base": "fee per trade",
    "cash_buffer_base": "cash buffer",
    "max_trade_base": "largest single trade",
    "max_turnover": "largest turnover",
}

Key = tuple[str, str]  # (TICKER, EXCHANGE), upper case


def _key(ticker: object, exchange: object) -> Key:
    return (str(ticker or "").upper(), str(exchange or "").upper())


@dataclass(frozen=True, slots=True)
class _Line:
    label: str  # "#1 BUY VWRP:LSE £301.50"
    ticker: str
    exchange: str
    action: str
    amount: Decimal
    units: Decimal
    suppressed: bool
    sleeves: tuple[str, ...]  # the line's own, the holding's, the constituent split's

    @property
    def key(self) -> Key:
        return _key(self.ticker, self.exchange)

    @property
    def sleeve(self) -> str | None:
        return self.sleeves[0] if self.sleeves else None

    @property
    def signed_units(self) -> Decimal:
        return -self.units if self.action == "SELL" else self.units

    @property
    def names(self) -> frozenset[str]:
        names = {self.ticker.upper(), f"{self.ticker}:{self.exchange}".upper()}
        names.update(sleeve.upper() for sleeve in self.sleeves)
        return frozenset(names)


@dataclass(frozen=True, slots=True)
class _Held:
    """One holding as the recommendation states it (``rationale["positions"]``)."""

    ticker: str
    exchange: str
    sleeve: str | None
    units: Decimal
    price: Decimal | None
    value: Decimal | None
    in_base: bool
    targeted: bool
    stale: bool

    @property
    def key(self) -> Key:
        return _key(self.ticker, self.exchange)

    @property
    def label(self) -> str:
        return f"{self.ticker} on {self.exchange}"

    @property
    def recomputed(self) -> Decimal | None:
        """Units times price, the value the guard trusts; None without a price."""
        return None if self.price is None else self.units * self.price

    @property
    def counted(self) -> Decimal:
        """What it adds to the base: the smaller of its stated and recomputed values."""
        known = [v for v in (self.value, self.recomputed) if v is not None]
        return min(known) if known else ZERO


@dataclass
class _Findings:
    fails: list[str] = field(default_factory=list)
    warns: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


def _money(value: Decimal) -> str:
    """Pounds and pence: £1,234.56 (-£5.00)."""
    sign = "-" if value < ZERO else ""
    return f"{sign}£{abs(value):,.2f}"


def _count(units: Decimal) -> str:
    text = decimal_str(units.normalize()) or "0"
    return f"{text} unit" if units == 1 else f"{text} units"


def _come(units: Decimal) -> str:
    return "comes" if units == 1 else "come"


def _percent(fraction: Decimal) -> str:
    return f"{decimal_str((fraction * 100).normalize())}%"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _policy_amount(
    policy: Mapping[str, Any], key: str, found: _Findings, *, warn_missing: bool = True
) -> Decimal | None:
    words = POLICY_WORDS.get(key, key)
    if policy.get(key) is None:
        if warn_missing:
            found.warns.append(f"the policy states no {words}: not checked")
        return None
    try:
        return to_decimal(policy[key], what=f"the policy's {words}")
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


def _targets(policy: Mapping[str, Any], found: _Findings) -> dict[str, Decimal]:
    targets: dict[str, Decimal] = {}
    for code, weight in _mapping(policy.get("sleeve_targets")).items():
        try:
            targets[str(code).upper()] = to_decimal(weight, what=f"the policy's target for {code}")
        except ValidationError as exc:
            found.fails.append(str(exc))
    return targets


def _policy_names(policy: Mapping[str, Any], key: str, found: _Findings) -> frozenset[str]:
    raw = policy.get(key)
    if raw is None:
        return frozenset()
    if isinstance(raw, str) or not isinstance(raw, Iterable) or not all(isinstance(n, str) for n in raw):
        found.fails.append(f"the policy's {key.replace('_', '-')} list cannot be read: {raw!r}")
        return frozenset()
    return frozenset(name.strip().upper() for name in raw if name.strip())


def _split_sleeve(ticker: str, exchange: str, policy: Mapping[str, Any]) -> str | None:
    key = f"{ticker}:{exchange}"
    split = _mapping(policy.get("constituent_split"))
    owners = [sleeve for sleeve, weights in split.items() if isinstance(weights, Mapping) and key in weights]
    return owners[0] if len(owners) == 1 else None


# --- reading --------------------------------------------------------------------------------


def _read_positions(rationale: Mapping[str, Any], found: _Findings) -> dict[Key, _Held] | None:
    """The holdings by listing, or None when the recommendation does not state them."""
    raw_positions = rationale.get("positions")
    if raw_positions is None or isinstance(raw_positions, str | bytes | Mapping):
        return None
    if not isinstance(raw_positions, Iterable):
        return None
    held: dict[Key, _Held] = {}
    for index, raw in enumerate(raw_positions, start=1):
        if not isinstance(raw, Mapping):
            found.fails.append(f"the recommendation's holding #{index} cannot be read: not an object")
            continue
        ticker, exchange = str(raw.get("ticker") or ""), str(raw.get("exchange") or "")
        where = f"the recommendation's holding #{index} ({ticker}:{exchange}) cannot be read"
        problems = []
        if not ticker or not exchange:
            problems.append("ticker and exchange are required")
        numbers: dict[str, Decimal | None] = {}
        for key, required in (("units", True), ("price_gbp", False), ("value_base", False)):
            value = raw.get(key)
            if value is None:
                if required:
                    problems.append(f"{key} is missing")
                numbers[key] = None
                continue
            try:
                numbers[key] = to_decimal(value, what=key)
            except ValidationError as exc:
                problems.append(str(exc))
        flags = {}
        for key in ("in_base", "targeted", "price_stale"):
            value = raw.get(key, False if key == "price_stale" else None)
            if not isinstance(value, bool):
                problems.append(f"{key} is not true or false")
            flags[key] = value is True
        units = numbers.get("units")
        if units is not None and units < ZERO:
            problems.append("units are negative")
        sleeve = raw.get("sleeve")
        if sleeve is not None and not isinstance(sleeve, str):
            problems.append("sleeve is not text")
        if problems:
            found.fails.append(f"{where}: {'; '.join(problems)}")
            continue
        assert units is not None
        item = _Held(
            ticker=ticker,
            exchange=exchange,
            sleeve=sleeve.upper() if isinstance(sleeve, str) and sleeve else None,
            units=units,
            price=numbers["price_gbp"],
            value=numbers["value_base"],
            in_base=flags["in_base"],
            targeted=flags["targeted"],
            stale=flags["price_stale"],
        )
        if item.key in held:
            found.fails.append(f"the recommendation states the holding {item.label} twice")
            continue
        held[item.key] = item
    return held


def _left_alone(rationale: Mapping[str, Any]) -> set[Key]:
    entries = rationale.get("left_alone")
    if not isinstance(entries, list | tuple):
        return set()
    return {_key(e.get("ticker"), e.get("exchange")) for e in entries if isinstance(e, Mapping)}


def _read_lines(
    recommendation: Mapping[str, Any],
    policy: Mapping[str, Any],
    holdings: Mapping[Key, _Held] | None,
    found: _Findings,
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
        sleeves: list[str] = []
        if isinstance(raw.get("sleeve"), str) and raw["sleeve"]:
            sleeves.append(raw["sleeve"].upper())
        holding = (holdings or {}).get(_key(ticker, exchange))
        if holding is not None and holding.sleeve:
            sleeves.append(holding.sleeve)
        split = _split_sleeve(ticker, exchange, policy)
        if split:
            sleeves.append(split.upper())
        lines.append(
            _Line(
                label=f"#{index} {action} {ticker}:{exchange} {_money(amount)}",
                ticker=ticker,
                exchange=exchange,
                action=action,
                amount=amount,
                units=numbers["estimated_units"],
                suppressed=suppressed,
                sleeves=tuple(dict.fromkeys(sleeves)),
            )
        )
    return lines


def _consideration(line: _Line, holdings: Mapping[Key, _Held] | None) -> Decimal:
    """The larger of the line's stated amount and its units at the holding's price."""
    holding = (holdings or {}).get(line.key)
    if holding is None or holding.price is None:
        return line.amount
    return max(line.amount, line.units * holding.price)


def _largest_drift(value: Any, what: str, found: _Findings) -> Decimal | None:
    try:
        if isinstance(value, Mapping):
            drifts = [abs(to_decimal(v, what=f"{what} {k}")) for k, v in value.items()]
            return max(drifts, default=ZERO)
        return abs(to_decimal(value, what=what))
    except ValidationError as exc:
        found.fails.append(f"rationale: {exc}")
        return None


# --- checks ---------------------------------------------------------------------------------


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
    allow = _mapping(policy.get("allow_sells"))
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


def _check_line_prices(executed: list[_Line], holdings: Mapping[Key, _Held] | None, found: _Findings) -> None:
    if holdings is None:
        return
    found.checks.append("line amounts")
    for line in executed:
        holding = holdings.get(line.key)
        if holding is None or holding.price is None:
            continue
        computed = line.units * holding.price
        if abs(computed - line.amount) > PENNY:
            found.warns.append(
                f"{line.label}: {_count(line.units)} at {_money(holding.price)} {_come(line.units)} to "
                f"{_money(computed)}, not the amount stated; the larger is checked"
            )


@dataclass(frozen=True, slots=True)
class _MoneyIn:
    """The cash the report says the recommendation starts from."""

    available: Decimal | None  # cash plus contribution: stated, else their sum
    base_cash: Decimal | None  # what the base counts: cash plus contribution, when stated


def _money_in(report: Mapping[str, Any], found: _Findings) -> _MoneyIn:
    cash = _report_amount(report, "cash", found)
    contribution = _report_amount(report, "contribution", found)
    stated = _report_amount(report, "cash_available", found)
    summed = None if cash is None and contribution is None else (cash or ZERO) + (contribution or ZERO)
    return _MoneyIn(
        available=stated if stated is not None else summed, base_cash=summed if summed is not None else stated
    )


@dataclass(frozen=True, slots=True)
class _Cash:
    after: Decimal | None  # cash after the trades and fees, recomputed where possible
    before: Decimal | None  # cash plus contribution, when stated
    buffer: Decimal | None
    fee: Decimal


def _check_money(
    policy: Mapping[str, Any],
    report: Mapping[str, Any],
    money_in: _MoneyIn,
    executed: list[_Line],
    found: _Findings,
) -> _Cash:
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
    available = money_in.available
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
    return _Cash(after=after, before=available, buffer=buffer, fee=fee)


def _check_drift(rationale: Mapping[str, Any], found: _Findings) -> None:
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


def _says(policy_hits: frozenset[str], manifesto_hits: frozenset[str], policy_rule: str, rule: str) -> str:
    """'the policy says never buy', 'the manifesto says avoid', or both."""
    if policy_hits and manifesto_hits:
        if policy_rule == rule:
            return f"the policy and the manifesto say {rule}"
        return f"the policy says {policy_rule} and the manifesto says {rule}"
    return f"the policy says {policy_rule}" if policy_hits else f"the manifesto says {rule}"


def _check_hard_rules(
    request: ReviewRequest,
    rules: ManifestoRules,
    executed: list[_Line],
    holdings: Mapping[Key, _Held] | None,
    found: _Findings,
) -> None:
    """The policy's hard rules and the manifesto's: one FAIL per line and rule."""
    policy = request.policy
    for problem in rules.problems:
        found.warns.append(f"{problem}: that rule was not checked")
    sleeves = {str(code).upper() for code in _mapping(policy.get("sleeve_targets"))}
    found.checks.append("hard rules")
    limits = []
    policy_max = _policy_amount(policy, "max_trade_base", found, warn_missing=False)
    if policy_max is not None:
        limits.append((policy_max, "policy"))
    if rules.max_single_trade is not None:
        limits.append((rules.max_single_trade, "manifesto"))
    if limits:
        limit = min(amount for amount, _ in limits)
        sources = [source for amount, source in limits if amount == limit]
        if sources == ["manifesto"]:
            words = f"the manifesto's max single trade of {_money(limit)}"
        elif sources == ["policy"]:
            words = f"the policy's largest single trade of {_money(limit)}"
        else:
            words = f"the largest single trade of {_money(limit)} that the policy and the manifesto set"
        for line in executed:
            if _consideration(line, holdings) > limit:
                found.fails.append(f"{line.label}: above {words}")
    for action, policy_key, policy_rule, manifesto_names, rule in (
        ("SELL", "never_sell", "never sell", rules.never_sell, "never sell"),
        ("BUY", "never_buy", "never buy", rules.avoid, "avoid"),
    ):
        policy_names = _policy_names(policy, policy_key, found)
        every = policy_names | manifesto_names
        for line in executed:
            if line.action != action:
                continue
            from_policy, from_manifesto = line.names & policy_names, line.names & manifesto_names
            if from_policy or from_manifesto:
                hit = ", ".join(sorted(from_policy | from_manifesto))
                said = _says(from_policy, from_manifesto, policy_rule, rule)
                found.fails.append(f"{line.label}: {said}: {hit}")
            elif line.sleeve is None and every & sleeves:
                named = sorted(every & sleeves)
                source = "manifesto's" if set(named) <= manifesto_names else "policy's"
                shown = rule if source == "manifesto's" else policy_rule
                found.warns.append(
                    f"{line.label}: its sleeve is not known, so the {source} "
                    f"'{shown}: {', '.join(named)}' could not be checked"
                )


def _check_holdings(holdings: Mapping[Key, _Held], left_alone: set[Key], found: _Findings) -> None:
    """No held listing is valued at zero, and none goes missing from the base unexplained."""
    found.checks.append("every holding valued")
    for holding in holdings.values():
        if holding.units <= ZERO:
            continue
        held = f"{holding.label} ({_count(holding.units)})"
        if holding.in_base:
            if holding.price is None:
                found.fails.append(
                    f"{held} is counted in the portfolio with no price: a holding is never valued "
                    f"at zero; import its prices or leave it out"
                )
            elif holding.stale:
                found.fails.append(
                    f"{held} is counted in the portfolio on a price too old to trust; refresh its prices"
                )
            elif holding.value is None:
                found.fails.append(f"{held} is counted in the portfolio with no value")
            elif holding.value == ZERO:
                found.fails.append(f"{held} is counted in the portfolio at {_money(ZERO)}")
            elif abs(holding.value - holding.units * holding.price) > PENNY:
                found.warns.append(
                    f"{held} is valued at {_money(holding.value)}, but {_count(holding.units)} at "
                    f"{_money(holding.price)} {_come(holding.units)} to "
                    f"{_money(holding.units * holding.price)}; "
                    f"the smaller is counted"
                )
        elif holding.key not in left_alone:
            found.fails.append(
                f"{held} is held but neither counted in the portfolio nor listed as left alone: "
                f"its value would go missing"
            )


def _target_zero(sleeve: str | None, targets: Mapping[str, Decimal], untargeted: str) -> bool:
    """A sleeve the policy wants at nothing: targeted at 0, or untargeted when those are sold."""
    if sleeve is not None and sleeve in targets:
        return targets[sleeve] == ZERO
    return untargeted == "sell"


def _check_sells(
    policy: Mapping[str, Any],
    targets: Mapping[str, Decimal],
    holdings: Mapping[Key, _Held],
    executed: list[_Line],
    found: _Findings,
) -> None:
    """No SELL beyond what is held, of an untargeted holding, or that empties a sleeve."""
    untargeted = str(policy.get("untargeted") or "hold")
    net: dict[Key, Decimal] = {}
    for line in executed:
        net[line.key] = net.get(line.key, ZERO) + line.signed_units
    found.checks.append("sells within holdings")
    told: set[Key] = set()
    for line in executed:
        if line.action != "SELL" or line.key in told:
            continue
        holding = holdings.get(line.key)
        units = holding.units if holding is not None else ZERO
        if units + net[line.key] < ZERO:
            told.add(line.key)
            sold = units - (units + net[line.key])
            has = f"only {_count(units)} held" if units else "none held"
            found.fails.append(
                f"{line.label}: sells {_count(sold)} of {line.ticker} on {line.exchange}, {has}"
            )
    found.checks.append("untargeted holdings kept")
    if untargeted != "sell":
        for line in executed:
            if line.action != "SELL":
                continue
            holding = holdings.get(line.key)
            sleeve = holding.sleeve if holding is not None else line.sleeve
            if holding is None and sleeve is None:
                continue  # not held: told above
            if (holding is not None and not holding.targeted) or sleeve not in targets:
                where = f"sleeve {sleeve}" if sleeve else "no sleeve"
                found.fails.append(
                    f"{line.label}: {line.ticker} on {line.exchange} is not in the strategy ({where}); "
                    f'the policy leaves such holdings alone (set "untargeted" to "sell" to sell them)'
                )
    found.checks.append("no sleeve sold to zero")
    before: dict[str | None, Decimal] = {}
    after: dict[str | None, Decimal] = {}
    for holding in holdings.values():
        if not holding.in_base or holding.units <= ZERO:
            continue
        value = holding.counted
        before[holding.sleeve] = before.get(holding.sleeve, ZERO) + value
        left = max(holding.units + net.get(holding.key, ZERO), ZERO)
        share = value * left / holding.units
        after[holding.sleeve] = after.get(holding.sleeve, ZERO) + share
    for line in executed:  # buys of listings not held yet add to their sleeve
        if line.action == "BUY" and line.key not in holdings and line.sleeve is not None:
            after[line.sleeve] = after.get(line.sleeve, ZERO) + line.amount
    for sleeve in sorted(before, key=lambda s: s or ""):
        if before[sleeve] <= ZERO or after.get(sleeve, ZERO) > ZERO:
            continue
        if _target_zero(sleeve, targets, untargeted):
            continue
        name = f"sleeve {sleeve}" if sleeve else "the holdings without a sleeve"
        found.fails.append(
            f"the trades sell all of {name} ({_money(before[sleeve])} before, nothing after); "
            f"a sleeve with a target is never sold out"
        )


def _check_turnover(
    policy: Mapping[str, Any],
    report: Mapping[str, Any],
    money_in: _MoneyIn,
    holdings: Mapping[Key, _Held] | None,
    executed: list[_Line],
    found: _Findings,
) -> None:
    raw = policy.get("max_turnover")
    try:
        limit = DEFAULT_MAX_TURNOVER if raw is None else to_decimal(raw, what="the policy's largest turnover")
    except ValidationError as exc:
        found.fails.append(str(exc))
        return
    stated = _report_amount(report, "base_value", found)
    base: Decimal | None
    if holdings is not None:
        invested = sum((h.counted for h in holdings.values() if h.in_base), ZERO)
        base = invested + (money_in.base_cash or ZERO)
        if stated is not None and stated != base:
            found.warns.append(
                f"the constraints report states a portfolio of {_money(stated)}; its holdings and "
                f"cash come to {_money(base)}, which is what turnover is measured on"
            )
    else:
        base = stated
    sells = sum((_consideration(line, holdings) for line in executed if line.action == "SELL"), ZERO)
    if base is None:
        return  # no holdings and no stated base: said once, with the holdings
    found.checks.append("turnover")
    if sells > limit * base:
        found.fails.append(
            f"the sells come to {_money(sells)}, more than the {_percent(limit)} of the portfolio "
            f"({_money(limit * base)} of {_money(base)}) one recommendation may sell"
        )


def _fitting_line(
    holdings: Mapping[Key, _Held],
    left_alone: set[Key],
    targets: Mapping[str, Decimal],
    never_buy: frozenset[str],
    spare: Decimal,
    minimum: Decimal,
    fee: Decimal,
    largest: Decimal | None,
) -> str | None:
    """The cheapest whole-unit line of at least the minimum that ``spare`` pays for, with its fee."""
    best: tuple[Decimal, str] | None = None
    for holding in holdings.values():
        price = holding.price
        if (
            price is None
            or price <= ZERO
            or holding.stale
            or not holding.in_base
            or not holding.targeted
            or holding.key in left_alone
            or targets.get(holding.sleeve or "", ZERO) <= ZERO
            or {holding.ticker.upper(), ":".join(holding.key), holding.sleeve or ""} & never_buy
        ):
            continue
        units = max(Decimal(1), (minimum / price).to_integral_value(rounding=ROUND_CEILING))
        amount = units * price
        if amount + fee > spare or (largest is not None and amount > largest):
            continue
        if best is None or amount < best[0]:
            best = (amount, f"{_count(units)} of {holding.label} for {_money(amount)}")
    return None if best is None else best[1]


def _check_idle_cash(
    request: ReviewRequest,
    rules: ManifestoRules,
    cash: _Cash,
    targets: Mapping[str, Decimal],
    holdings: Mapping[Key, _Held] | None,
    left_alone: set[Key],
    executed: list[_Line],
    found: _Findings,
) -> None:
    kind = request.task_kind
    if request.portfolio_frozen or (kind is not None and kind not in TRADING_KINDS):
        return
    if kind in (TaskKind.QUARTERLY_REBAL.value, TaskKind.WEEKLY_REVIEW.value) and not executed:
        return  # a drift check that found nothing to do does not invest
    policy = request.policy
    minimum = _policy_amount(policy, "min_trade_base", _Findings())
    if cash.after is None or cash.buffer is None or minimum is None:
        return
    found.checks.append("cash invested")
    spare = cash.after - cash.buffer
    if spare <= minimum:
        return
    example = ""
    if holdings is not None:
        if str(policy.get("unpriced") or "block") == "block" and any(
            h.units > ZERO and h.targeted and (h.price is None or h.stale) for h in holdings.values()
        ):
            return  # a held listing without a good price stops the recommendation, as the policy says
        never_buy = _policy_names(policy, "never_buy", _Findings()) | rules.avoid
        largest = _policy_amount(policy, "max_trade_base", _Findings(), warn_missing=False)
        if rules.max_single_trade is not None:
            largest = min(rules.max_single_trade, largest or rules.max_single_trade)
        fitting = _fitting_line(holdings, left_alone, targets, never_buy, spare, minimum, cash.fee, largest)
        if fitting is None:
            return  # no whole-unit line of the minimum fits: the cash cannot be invested
        example = f" (for example {fitting})"
    found.warns.append(
        f"{_money(spare)} is left unspent above the {_money(cash.buffer)} cash buffer, more than "
        f"the smallest trade of {_money(minimum)}: another line could have been bought{example}"
    )


def review_recommendation(request: ReviewRequest) -> tuple[list[str], list[str], list[str], ManifestoRules]:
    """(fails, warns, checks run, manifesto rules) for a recommendation review."""
    found = _Findings()
    policy = request.policy
    recommendation = request.recommendation or {}
    rationale = _mapping(recommendation.get("rationale"))
    report = _mapping(recommendation.get("constraints_report"))
    holdings = _read_positions(rationale, found)
    left_alone = _left_alone(rationale)
    targets = _targets(policy, found)
    lines = _read_lines(recommendation, policy, holdings, found)
    executed = [line for line in lines if not line.suppressed]
    rules = parse_manifesto_rules(request.manifesto)
    _check_trading_rules(request, executed, found)
    _check_sizes(policy, lines, found)
    _check_line_prices(executed, holdings, found)
    money_in = _money_in(report, found)
    cash = _check_money(policy, report, money_in, executed, found)
    _check_drift(rationale, found)
    _check_hard_rules(request, rules, executed, holdings, found)
    if holdings is None:
        found.warns.append(
            "the recommendation does not list the holdings it was computed from, so they could not "
            "be checked: no listing valued at zero, no sleeve sold out, no holding outside the "
            "strategy sold, and the turnover only against a stated portfolio value"
        )
    else:
        _check_holdings(holdings, left_alone, found)
        _check_sells(policy, targets, holdings, executed, found)
    _check_turnover(policy, report, money_in, holdings, executed, found)
    _check_idle_cash(request, rules, cash, targets, holdings, left_alone, executed, found)
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
