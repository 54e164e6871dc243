"""The engine's values: the portfolio state it reads and the recommendation it returns.

Everything here is frozen (containers too) and exact (``Decimal``). A ``PortfolioState``
round-trips through a plain JSON dict (``state_to_dict`` / ``state_from_dict``, decimals as
strings), so a run's input snapshot alone is enough to recompute its recommendation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..core.enums import TradeAction
from ..core.errors import ValidationError
from ..core.frozen import freeze
from ..core.jsonutil import plain
from ..core.money import CONTEXT, ZERO, decimal_str, to_decimal

SLEEVE_CODE = re.compile(r"[A-Z][A-Z0-9_]*")

ListingKey = tuple[str, str]  # (ticker, exchange)

# Why a position is left alone: shown in the rationale so the user sees what was skipped.
NOT_IN_CALCS = "EXCLUDED_FROM_CALCS"
NO_GOOD_PRICE = "NO_GOOD_PRICE"
STALE_PRICE = "STALE_PRICE"
NOT_TRADEABLE = "NOT_TRADEABLE"


def _decimal(value: object, what: str) -> Decimal:
    return to_decimal(value, what=what)


@dataclass(frozen=True)
class Position:
    """One listing of the portfolio: what is held and whether the engine may value and trade it.

    ``price_gbp`` is the GBP price per unit, already normalised (a GBX quote divided by 100,
    a foreign one converted), or None when there is no good price. ``include_in_calcs`` False
    leaves the listing out of the valuation altogether; ``tradeable`` False (unmonitored, a
    user lock...) keeps it in the valuation but never trades it. ``price_stale`` says the
    price is older than the policy allows: it is shown, never traded on, and a held listing
    with a stale price counts as unpriced (``recommend`` blocks or excludes it, as the policy
    says). A listing without a price is never valued at zero: see ``engine.scope``.
    """

    ticker: str
    exchange: str
    sleeve: str
    units: Decimal
    price_gbp: Decimal | None = None
    tradeable: bool = True
    include_in_calcs: bool = True
    price_stale: bool = False

    def __post_init__(self) -> None:
        where = f"position {self.ticker}:{self.exchange}"
        if not self.ticker or not self.exchange:
            raise ValidationError(f"{where}: ticker and exchange are required")
        if not SLEEVE_CODE.fullmatch(self.sleeve):
            raise ValidationError(f"{where}: sleeve {self.sleeve!r} is not a sleeve code")
        units = _decimal(self.units, f"{where}: units")
        if units < ZERO:
            raise ValidationError(f"{where}: units must not be negative (got {decimal_str(units)})")
        object.__setattr__(self, "units", units)
        if self.price_gbp is not None:
            price = _decimal(self.price_gbp, f"{where}: price_gbp")
            if price <= ZERO:
                raise ValidationError(f"{where}: price_gbp must be positive (got {decimal_str(price)})")
            object.__setattr__(self, "price_gbp", price)

    @property
    def key(self) -> ListingKey:
        return (self.ticker, self.exchange)

    @property
    def label(self) -> str:
        return f"{self.ticker}:{self.exchange}"

    @property
    def valued(self) -> bool:
        """Counted in the valuation: included in calculations and priced."""
        return self.include_in_calcs and self.price_gbp is not None

    @property
    def can_trade(self) -> bool:
        return self.valued and self.tradeable and not self.price_stale

    @property
    def left_alone_because(self) -> str | None:
        if not self.include_in_calcs:
            return NOT_IN_CALCS
        if self.price_gbp is None:
            return NO_GOOD_PRICE
        if self.price_stale:
            return STALE_PRICE
        if not self.tradeable:
            return NOT_TRADEABLE
        return None

    @property
    def priced_value(self) -> Decimal | None:
        """Units times price whether or not it is in the base; None without a price (never 0)."""
        if self.price_gbp is None:
            return None
        return CONTEXT.multiply(self.units, self.price_gbp)

    @property
    def value_gbp(self) -> Decimal:
        """Units times price; zero when not valued."""
        if not self.valued:
            return ZERO
        assert self.price_gbp is not None
        return CONTEXT.multiply(self.units, self.price_gbp)


@dataclass(frozen=True)
class PortfolioState:
    """What the engine needs to know about one portfolio, at one moment, in GBP.

    ``contribution_gbp`` is money arriving with this run (a monthly contribution) that is not
    in ``cash_gbp`` yet; the engine treats it as cash. ``frozen`` mirrors the portfolio's
    freeze state: a frozen portfolio is never traded.
    """

    cash_gbp: Decimal
    positions: tuple[Position, ...] = ()
    contribution_gbp: Decimal = ZERO
    frozen: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "cash_gbp", _decimal(self.cash_gbp, "state: cash_gbp"))
        contribution = _decimal(self.contribution_gbp, "state: contribution_gbp")
        if contribution < ZERO:
            raise ValidationError("state: contribution_gbp must not be negative")
        object.__setattr__(self, "contribution_gbp", contribution)
        positions = tuple(self.positions)
        seen: set[ListingKey] = set()
        for position in positions:
            if not isinstance(position, Position):
                raise ValidationError("state: positions must be Position values")
            if position.key in seen:
                raise ValidationError(f"state: {position.label} appears twice")
            seen.add(position.key)
        object.__setattr__(self, "positions", positions)
        object.__setattr__(self, "frozen", bool(self.frozen))

    @property
    def cash_available_gbp(self) -> Decimal:
        """Cash plus the contribution arriving with this run."""
        return self.cash_gbp + self.contribution_gbp


_POSITION_KEYS = (
    "ticker",
    "exchange",
    "sleeve",
    "units",
    "price_gbp",
    "tradeable",
    "include_in_calcs",
    "price_stale",
)
_STATE_KEYS = ("cash_gbp", "contribution_gbp", "frozen", "positions")


def state_to_dict(state: PortfolioState) -> dict[str, Any]:
    """A plain JSON-ready dict: decimals as strings, positions in their given order."""
    return {
        "cash_gbp": decimal_str(state.cash_gbp),
        "contribution_gbp": decimal_str(state.contribution_gbp),
        "frozen": state.frozen,
        "positions": [
            {
                "ticker": p.ticker,
                "exchange": p.exchange,
                "sleeve": p.sleeve,
                "units": decimal_str(p.units),
                "price_gbp": decimal_str(p.price_gbp),
                "tradeable": p.tradeable,
                "include_in_calcs": p.include_in_calcs,
                "price_stale": p.price_stale,
            }
            for p in state.positions
        ],
    }


def _check_keys(data: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValidationError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{where}: expected true or false")
    return value


def state_from_dict(data: Mapping[str, Any]) -> PortfolioState:
    """The inverse of ``state_to_dict``; unknown keys and float numbers are refused."""
    if not isinstance(data, Mapping):
        raise ValidationError("state: expected an object")
    _check_keys(data, _STATE_KEYS, "state")
    if "cash_gbp" not in data:
        raise ValidationError("state: cash_gbp is required")
    positions = []
    for index, raw in enumerate(data.get("positions", ())):
        where = f"state: positions[{index}]"
        if not isinstance(raw, Mapping):
            raise ValidationError(f"{where}: expected an object")
        _check_keys(raw, _POSITION_KEYS, where)
        missing = [key for key in ("ticker", "exchange", "sleeve", "units") if key not in raw]
        if missing:
            raise ValidationError(f"{where}: missing {', '.join(missing)}")
        positions.append(
            Position(
                ticker=str(raw["ticker"]),
                exchange=str(raw["exchange"]),
                sleeve=str(raw["sleeve"]),
                units=raw["units"],
                price_gbp=raw.get("price_gbp"),
                tradeable=_bool(raw.get("tradeable", True), f"{where}: tradeable"),
                include_in_calcs=_bool(raw.get("include_in_calcs", True), f"{where}: include_in_calcs"),
                price_stale=_bool(raw.get("price_stale", False), f"{where}: price_stale"),
            )
        )
    return PortfolioState(
        cash_gbp=data["cash_gbp"],
        contribution_gbp=data.get("contribution_gbp", "0"),
        frozen=_bool(data.get("frozen", False), "state: frozen"),
        positions=tuple(positions),
    )


@dataclass(frozen=True)
class RecommendationLine:
    """One proposed trade. ``amount_base`` is units times GBP price, fees excluded.

    A line with ``suppressed_by_min_trade`` is not to be executed: it shows what the
    unconstrained ideal would have traded had the minimum trade size allowed it.
    """

    ticker: str
    exchange: str
    action: TradeAction
    amount_base: Decimal
    estimated_units: Decimal
    suppressed_by_min_trade: bool
    reason_code: str
    # A SELL in a general account: the capital gain (negative: loss) it would realise if sold at
    # the as-of date for ``amount_base`` (``engine.tax.proposals``); None elsewhere.
    estimated_gain_base: Decimal | None = None

    def to_json_dict(self) -> dict[str, Any]:
        result = {
            "ticker": self.ticker,
            "exchange": self.exchange,
            "action": self.action.value,
            "amount_base": decimal_str(self.amount_base),
            "estimated_units": decimal_str(self.estimated_units),
            "suppressed_by_min_trade": self.suppressed_by_min_trade,
            "reason_code": self.reason_code,
        }
        if self.estimated_gain_base is not None:
            result["estimated_gain_base"] = decimal_str(self.estimated_gain_base)
        return result


EXPLAIN_KEYS = (
    "left_alone",
    "excluded_value_base",
    "rules_fired",
    "objective",
    "lower_bound",
    "proven_optimal",
    "nodes",
)


@dataclass(frozen=True)
class Recommendation:
    """What the engine advises, and why. "No trades" is a recommendation too."""

    headline: str
    rationale: Mapping[str, Any]
    constraints_report: Mapping[str, Any]
    lines: tuple[RecommendationLine, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rationale", freeze(self.rationale))
        object.__setattr__(self, "constraints_report", freeze(self.constraints_report))
        object.__setattr__(self, "lines", tuple(self.lines))

    @property
    def executed_lines(self) -> tuple[RecommendationLine, ...]:
        return tuple(line for line in self.lines if not line.suppressed_by_min_trade)

    @property
    def suppressed_lines(self) -> tuple[RecommendationLine, ...]:
        return tuple(line for line in self.lines if line.suppressed_by_min_trade)

    def explain(self) -> dict[str, Any]:
        """What was left alone and why, the rules fired and the search's proof, from the rationale:
        the keys ``recommend --json`` adds beside the stored four."""
        rationale = plain(self.rationale)
        return {key: rationale.get(key) for key in EXPLAIN_KEYS}

    def to_json_dict(self) -> dict[str, Any]:
        """Exactly ``headline``, ``rationale``, ``constraints_report``, ``lines``; decimals as strings."""
        return {
            "headline": self.headline,
            "rationale": plain(self.rationale),
            "constraints_report": plain(self.constraints_report),
            "lines": [line.to_json_dict() for line in self.lines],
        }
