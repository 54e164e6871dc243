"""How the ``builtin-rules`` reviewer reads a request: the lines, the holdings, the policy's
amounts and names and the constraints report's figures, each problem found on the way kept as
a finding (FAIL or WARN). Amounts in reasons are ``core.money.format_gbp`` (``£1,234.56``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ...core.errors import ValidationError
from ...core.money import ZERO, decimal_str, format_gbp, to_decimal

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


def key_of(ticker: object, exchange: object) -> Key:
    return (str(ticker or "").upper(), str(exchange or "").upper())


@dataclass(frozen=True, slots=True)
class Line:
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
        return key_of(self.ticker, self.exchange)

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
class Held:
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
        return key_of(self.ticker, self.exchange)

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
class Findings:
    fails: list[str] = field(default_factory=list)
    warns: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


def count_units(units: Decimal) -> str:
    text = decimal_str(units.normalize()) or "0"
    return f"{text} unit" if units == 1 else f"{text} units"


def comes(units: Decimal) -> str:
    return "comes" if units == 1 else "come"


def percent(fraction: Decimal) -> str:
    return f"{decimal_str((fraction * 100).normalize())}%"


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def policy_amount(
    policy: Mapping[str, Any], key: str, found: Findings, *, warn_missing: bool = True
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


def report_amount(report: Mapping[str, Any], stem: str, found: Findings) -> Decimal | None:
    for key in (f"{stem}_base", f"{stem}_gbp", stem):
        if report.get(key) is not None:
            try:
                return to_decimal(report[key], what=key)
            except ValidationError as exc:
                found.fails.append(f"constraints report: {exc}")
                return None
    return None


def read_targets(policy: Mapping[str, Any], found: Findings) -> dict[str, Decimal]:
    targets: dict[str, Decimal] = {}
    for code, weight in mapping(policy.get("sleeve_targets")).items():
        try:
            targets[str(code).upper()] = to_decimal(weight, what=f"the policy's target for {code}")
        except ValidationError as exc:
            found.fails.append(str(exc))
    return targets


def read_policy_names(policy: Mapping[str, Any], key: str, found: Findings) -> frozenset[str]:
    raw = policy.get(key)
    if raw is None:
        return frozenset()
    if isinstance(raw, str) or not isinstance(raw, Iterable) or not all(isinstance(n, str) for n in raw):
        found.fails.append(f"the policy's {key.replace('_', '-')} list cannot be read: {raw!r}")
        return frozenset()
    return frozenset(name.strip().upper() for name in raw if name.strip())


def split_sleeve(ticker: str, exchange: str, policy: Mapping[str, Any]) -> str | None:
    key = f"{ticker}:{exchange}"
    split = mapping(policy.get("constituent_split"))
    owners = [sleeve for sleeve, weights in split.items() if isinstance(weights, Mapping) and key in weights]
    return owners[0] if len(owners) == 1 else None


# --- reading --------------------------------------------------------------------------------


def read_positions(rationale: Mapping[str, Any], found: Findings) -> dict[Key, Held] | None:
    """The holdings by listing, or None when the recommendation does not state them."""
    raw_positions = rationale.get("positions")
    if raw_positions is None or isinstance(raw_positions, str | bytes | Mapping):
        return None
    if not isinstance(raw_positions, Iterable):
        return None
    held: dict[Key, Held] = {}
    for index, raw in enumerate(raw_positions, start=1):
        if not isinstance(raw, Mapping):
            found.fails.append(f"the recommendation's holding #{index} cannot be read: not an object")
            continue
        item = _read_holding(raw)
        if isinstance(item, str):
            ticker, exchange = str(raw.get("ticker") or ""), str(raw.get("exchange") or "")
            where = f"the recommendation's holding #{index} ({ticker}:{exchange}) cannot be read"
            found.fails.append(f"{where}: {item}")
            continue
        if item.key in held:
            found.fails.append(f"the recommendation states the holding {item.label} twice")
            continue
        held[item.key] = item
    return held


def _read_holding(raw: Mapping[str, Any]) -> Held | str:
    """One holding of ``rationale["positions"]``, or why it cannot be read."""
    ticker, exchange = str(raw.get("ticker") or ""), str(raw.get("exchange") or "")
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
        return "; ".join(problems)
    assert units is not None
    return Held(
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


def read_left_alone(rationale: Mapping[str, Any]) -> set[Key]:
    entries = rationale.get("left_alone")
    if not isinstance(entries, list | tuple):
        return set()
    return {key_of(e.get("ticker"), e.get("exchange")) for e in entries if isinstance(e, Mapping)}


def read_lines(
    recommendation: Mapping[str, Any],
    policy: Mapping[str, Any],
    holdings: Mapping[Key, Held] | None,
    found: Findings,
) -> list[Line]:
    raw_lines = recommendation.get("lines") or ()
    lines: list[Line] = []
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
        holding = (holdings or {}).get(key_of(ticker, exchange))
        if holding is not None and holding.sleeve:
            sleeves.append(holding.sleeve)
        split = split_sleeve(ticker, exchange, policy)
        if split:
            sleeves.append(split.upper())
        lines.append(
            Line(
                label=f"#{index} {action} {ticker}:{exchange} {format_gbp(amount)}",
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


def consideration(line: Line, holdings: Mapping[Key, Held] | None) -> Decimal:
    """The larger of the line's stated amount and its units at the holding's price."""
    holding = (holdings or {}).get(line.key)
    if holding is None or holding.price is None:
        return line.amount
    return max(line.amount, line.units * holding.price)


def largest_drift(value: Any, what: str, found: Findings) -> Decimal | None:
    try:
        if isinstance(value, Mapping):
            drifts = [abs(to_decimal(v, what=f"{what} {k}")) for k, v in value.items()]
            return max(drifts, default=ZERO)
        return abs(to_decimal(value, what=what))
    except ValidationError as exc:
        found.fails.append(f"rationale: {exc}")
        return None
