"""The whole-unit allocation problem in exact integers.

``build_problem`` turns a portfolio state and a policy into integers: every GBP amount is
multiplied by ``money_scale`` (10**D, D the most decimal places of any amount involved, so a
GBX price of 1234.5p = 12.345 GBP stays exact) and every target by ``target_scale``. In those
units, for a trade vector with ``K`` executed lines and net spend ``c_s`` in sleeve ``s``:

    total after trades   T_K = total - fee * K          (cash paid out as fees leaves; the rest
                                                          only moves between cash and holdings)
    deviation            d_s = target_scale * (value_s + c_s) - target_s * T_K
    objective            sum_s (w_s - t_s)**2  =  (sum_s d_s**2) / (target_scale * T_K)**2

The full objective adds the line penalty: ``J = sum_s (w_s - t_s)**2 + K * (P / T)**2``, ``P`` the
policy's ``line_penalty`` and ``T`` the total before trading (a constant), so

    J = M / (target_scale * T * T_K)**2     with     M = N * T**2 + K * (target_scale * P * T_K)**2

and comparing objectives is comparing ``M / T_K**2`` in integers (``penalty: 0`` gives
``M = N * T**2``: the plain squared drift).

Hard rules are constraints of the problem, never checks after the fact: ``never_sell`` and
``never_buy`` empty an item's sell or buy range, ``max_trade_base`` caps both, ``max_turnover``
caps the total sell consideration (``turnover_cap``), and a sleeve with a positive target that
holds value keeps some (``keeps``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from ..core.money import ZERO
from ..policy import Policy
from .model import PortfolioState, Position
from .relaxation import relaxed_spends
from .valuation import sleeve_codes, sleeve_values, target_of


@dataclass(frozen=True)
class Item:
    """A listing the optimizer may trade: ``q`` whole units, 0 or ``min_units <= |q|``."""

    position: int  # index of the position in the state
    sleeve: int  # index into AllocationProblem.sleeves
    price: int  # GBP price x money_scale
    min_units: int  # fewest units whose consideration reaches the minimum trade (at least 1)
    max_buy: int  # most units it may buy: all the money there is, max_trade_base (0: no buying)
    max_sell: int  # most whole units it may sell: held, max_trade_base (0: no selling)
    share: Fraction  # its share of the sleeve's money in the policy's constituent split


class Evaluation(NamedTuple):
    """A feasible trade list scored exactly: ``J = M / (target_scale * T * T_K)**2``."""

    numerator: int  # M: N * T**2 + K * (target_scale * P * T_K)**2
    total: int  # T_K, the total after fees
    lines: int  # K
    net: int  # net spend (buys - sells), money units
    sold: int  # sell consideration, money units
    objective: Fraction  # J, exact


@dataclass(frozen=True)
class AllocationProblem:
    sleeves: tuple[str, ...]
    targets: tuple[int, ...]  # target weight x target_scale, per sleeve
    target_scale: int
    money_scale: int
    values: tuple[int, ...]  # valued holdings per sleeve before trading
    total: int  # valued holdings + cash + contribution
    fee: int  # per executed line
    budget: int  # money available: cash + contribution - cash buffer (may be negative)
    items: tuple[Item, ...]  # sorted by listing key: the order of the final tie-break
    switches: bool = False  # may one sleeve both sell and buy?
    max_lines_per_sleeve: int | None = None
    penalty: int = 0  # P: what one executed line costs, in money units of misallocation
    turnover_cap: int | None = None  # most total sell consideration (money units); None: no cap
    keeps: tuple[bool, ...] = field(default=())  # per sleeve: must keep a positive value

    def __post_init__(self) -> None:
        if not self.keeps:  # by default: every sleeve with a positive target that holds value
            keeps = tuple(t > 0 and v > 0 for t, v in zip(self.targets, self.values, strict=True))
            object.__setattr__(self, "keeps", keeps)

    def sleeve_ranges(self) -> tuple[list[int], list[int]]:
        """Per sleeve, the most it could sell and buy: (lows, highs) times ``target_scale``."""
        lows, highs = [0] * len(self.sleeves), [0] * len(self.sleeves)
        for item in self.items:
            lows[item.sleeve] -= self.target_scale * item.max_sell * item.price
            highs[item.sleeve] += self.target_scale * item.max_buy * item.price
        return lows, highs

    def relaxed_spends(self, lows: list[int], highs: list[int], lines: int = 0) -> list[Fraction] | None:
        """Each sleeve's net spend (times ``target_scale``) in the relaxation with sleeve ranges
        ``lows``/``highs`` and ``lines`` lines' fees paid, or None when it is infeasible."""
        ts, total = self.target_scale, self.total_after(lines)
        return relaxed_spends(
            [ts * v for v in self.values],
            lows,
            highs,
            [t * total for t in self.targets],
            ts * (self.budget - self.fee * lines),
        )

    def total_after(self, lines: int) -> int:
        return self.total - self.fee * lines

    def numerator(self, spends: Sequence[int], lines: int) -> int:
        """``N`` (the squared drift, scaled) for net spends per sleeve (money units) and ``lines``."""
        ts, total = self.target_scale, self.total_after(lines)
        return sum(
            (ts * (value + spend) - target * total) ** 2
            for value, spend, target in zip(self.values, spends, self.targets, strict=True)
        )

    def line_cost(self, lines: int) -> int:
        """What ``lines`` executed lines add to ``M``: ``lines * (target_scale * P * T_K)**2``."""
        return lines * (self.target_scale * self.penalty * self.total_after(lines)) ** 2

    def scaled(self, drift: int, lines: int) -> int:
        """``M`` from ``N`` (the squared drift) and the number of lines."""
        return drift * self.total * self.total + self.line_cost(lines)

    def objective_of(self, numerator: int, total_after: int) -> Fraction:
        """``J`` from ``M`` and ``T_K``."""
        return Fraction(numerator, (self.target_scale * self.total * total_after) ** 2)

    def evaluate(self, units: Sequence[int]) -> Evaluation | None:
        """The exact score of whole units per item, or None when it breaks a constraint.

        The reference for the optimizer (and its tests): every constraint, checked directly:
        each line's size (minimum trade, units held, never_buy / never_sell, max_trade_base, all
        in the items' ranges), one side per sleeve unless switches are allowed, lines per sleeve,
        the money, the turnover cap, no kept sleeve sold to zero, and a positive total.
        """
        spends = [0] * len(self.sleeves)
        lines = sold = 0
        directions: dict[int, set[bool]] = {}
        per_sleeve = [0] * len(self.sleeves)
        for item, q in zip(self.items, units, strict=True):
            if q == 0:
                continue
            if not (item.min_units <= q <= item.max_buy or item.min_units <= -q <= item.max_sell):
                return None
            spends[item.sleeve] += q * item.price
            if q < 0:
                sold -= q * item.price
            lines += 1
            per_sleeve[item.sleeve] += 1
            directions.setdefault(item.sleeve, set()).add(q > 0)
        if not self.switches and any(len(sides) > 1 for sides in directions.values()):
            return None
        if self.max_lines_per_sleeve is not None and max(per_sleeve, default=0) > self.max_lines_per_sleeve:
            return None
        if self.turnover_cap is not None and sold > self.turnover_cap:
            return None
        kept = zip(self.keeps, self.values, spends, strict=True)
        if any(keep and value + spend <= 0 for keep, value, spend in kept):
            return None
        net = sum(spends)
        if net + self.fee * lines > self.budget or self.total_after(lines) <= 0:
            return None
        numerator = self.scaled(self.numerator(spends, lines), lines)
        total = self.total_after(lines)
        return Evaluation(numerator, total, lines, net, sold, self.objective_of(numerator, total))


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _scaled(value: Decimal, places: int) -> int:
    """``value * 10**places`` as an int; exact because ``places`` covers its decimals."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    magnitude = int("".join(map(str, digits)) or "0") * 10 ** (exponent + places)
    return -magnitude if sign else magnitude


def constituent_shares(policy: Policy, sleeve: str, positions: Sequence[Position]) -> list[Fraction]:
    """Each tradeable listing's share of its sleeve: the policy's split renormalised, else equal."""
    split = policy.constituent_split.get(sleeve, {})
    weights = [Fraction(split.get(p.label, ZERO)) for p in positions]
    total = sum(weights, Fraction(0))
    if total == 0:
        return [Fraction(1, len(positions))] * len(positions)
    return [w / total for w in weights]


def _named(names: tuple[str, ...], position: Position) -> bool:
    """Does a never_sell / never_buy name match the position: its sleeve, ticker or listing key?"""
    own = {position.sleeve.upper(), position.ticker.upper(), position.label.upper()}
    return any(name.upper() in own for name in names)


def money_places(state: PortfolioState, policy: Policy) -> int:
    """The most decimal places of any amount a problem of ``state`` holds: its money unit."""
    values = sleeve_values(state, policy)
    tradeable = [p for p in state.positions if p.can_trade]
    amounts = [
        *values.values(),
        state.cash_gbp,
        state.contribution_gbp,
        policy.fee_per_trade_base,
        policy.min_trade_base,
        policy.cash_buffer_base,
        policy.line_penalty,
        *(() if policy.max_trade_base is None else (policy.max_trade_base,)),
        *(p.price_gbp for p in tradeable if p.price_gbp is not None),
    ]
    return max(_places(a) for a in amounts)


def build_problem(
    state: PortfolioState, policy: Policy, *, sells: bool, places: int = 0
) -> AllocationProblem:
    """The problem in integers; ``places`` is the fewest decimal places of its money unit (a
    household builds each account's problem on one common unit)."""
    sleeves = sleeve_codes(state, policy)
    values = sleeve_values(state, policy)
    budget = state.cash_available_gbp - policy.cash_buffer_base
    tradeable = sorted((p for p in state.positions if p.can_trade), key=lambda p: p.key)
    places = max(places, money_places(state, policy))
    target_places = max(_places(target_of(policy, code)) for code in sleeves)

    def money(value: Decimal) -> int:
        return _scaled(value, places)

    budget_units, fee, min_trade = (
        money(budget),
        money(policy.fee_per_trade_base),
        money(policy.min_trade_base),
    )
    max_trade = None if policy.max_trade_base is None else money(policy.max_trade_base)
    total = money(sum(values.values(), ZERO) + state.cash_available_gbp)
    turnover_places = _places(policy.max_turnover)
    turnover_cap = max(0, total) * _scaled(policy.max_turnover, turnover_places) // 10**turnover_places
    index_of = {p.key: i for i, p in enumerate(state.positions)}
    sleeve_index = {code: i for i, code in enumerate(sleeves)}
    raw: list[tuple[Position, int, int, int, int | None]] = []  # position, price, min, max sell, cap
    for position in tradeable:
        assert position.price_gbp is not None
        price = money(position.price_gbp)
        min_units = max(1, -(-min_trade // price))
        cap = None if max_trade is None else max_trade // price  # most units of one line
        held = int(position.units)  # whole units only: a fractional remainder is never sold
        max_sell = held if sells and not _named(policy.never_sell, position) else 0
        if cap is not None:
            max_sell = min(max_sell, cap)
        max_sell = min(max_sell, turnover_cap // price)
        raw.append((position, price, min_units, max_sell if max_sell >= min_units else 0, cap))
    sell_capacity = min(turnover_cap, sum(price * max_sell for _, price, _, max_sell, _ in raw))
    spendable = budget_units + sell_capacity - fee
    items = []
    by_sleeve: dict[str, list[Position]] = {}
    for position, *_ in raw:
        by_sleeve.setdefault(position.sleeve, []).append(position)
    shares = {
        code: dict(zip(members, constituent_shares(policy, code, members), strict=True))
        for code, members in by_sleeve.items()
    }
    for position, price, min_units, max_sell, cap in raw:
        max_buy = spendable // price if spendable >= min_units * price else 0
        if cap is not None:
            max_buy = min(max_buy, cap)
        if _named(policy.never_buy, position) or max_buy < min_units:
            max_buy = 0
        if max_buy == 0 and max_sell == 0:
            continue
        items.append(
            Item(
                position=index_of[position.key],
                sleeve=sleeve_index[position.sleeve],
                price=price,
                min_units=min_units,
                max_buy=max_buy,
                max_sell=max_sell,
                share=shares[position.sleeve][position],
            )
        )
    return AllocationProblem(
        sleeves=sleeves,
        targets=tuple(_scaled(target_of(policy, code), target_places) for code in sleeves),
        target_scale=10**target_places,
        money_scale=10**places,
        values=tuple(money(values[code]) for code in sleeves),
        total=total,
        fee=fee,
        budget=budget_units,
        items=tuple(items),
        switches=policy.sell_and_buy_in_same_sleeve,
        max_lines_per_sleeve=policy.max_lines_per_sleeve,
        penalty=money(policy.line_penalty),
        turnover_cap=turnover_cap,
    )
