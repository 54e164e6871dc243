"""An independent exact oracle for the household trade list: one MIQP over every account, by SCIP.

Written from the household specification alone (the engine's ``household`` docstring and the
single-portfolio problem it generalises), so it can check the engine: it reads only the input
types (``engine.model``, ``engine.household.Account`` duck-typed), the ``Policy`` and
``engine.scope.rescaled_targets`` (the rounding of rescaled targets is part of the spec); never
the engine's problem builder, search, relaxation or household code. It shares SCIP's settings
and helpers with the single-portfolio oracle (``tests/support/miqp_oracle.py``).

The problem. Accounts ``a`` each hold a ``PortfolioState`` (cash, contribution, positions,
frozen), a name, whether it is taxable (a GIA) and a gain per unit sold per listing. Valued
positions (included, priced) of every account together make the combined sleeve values ``V_s``
and the base ``T0 = sum V_s + sum_a (cash_a + contribution_a)``; a targeted sleeve that no
account values and no account can trade has its target shared out pro rata
(``rescaled_targets``). Tradeable positions (valued, tradeable, price not stale) of accounts
that are not frozen are the items (the same listing in two accounts is two items) and take
whole units ``q_i`` (buy > 0, sell < 0). With ``K_a`` executed lines in account ``a``, its fee
``fee_a = policy.fee_for(name)``, ``K = sum K_a``, ``F = sum_a fee_a * K_a``, ``T_F = T0 - F``
and ``P = policy.line_penalty``, minimise

    J = sum_s ((V_s + c_s) / T_F - t_s)**2 + K * (P / T0)**2      (c_s: net spend in sleeve s)

subject to: per line, the minimum (and maximum, if set) consideration, sells only when allowed,
at most floor(units held), never for a ``never_sell`` name, no buys for a ``never_buy`` name;
per account, ``sum_{i in a} q_i p_i + fee_a * K_a <= max(0, cash_a + contribution_a - buffer)``
(money never moves between accounts; an account already below its buffer is never taken further
below it, and may be left alone), no sleeve both selling and buying in one account unless the
policy allows switches, at most ``max_lines_per_sleeve`` lines of a sleeve in one account;
over the household, total sell consideration at most ``max_turnover * T0``, a sleeve with a
positive target and a positive combined value keeps a positive combined value, ``T_F > 0``,
and with ``"cgt": "avoid_gains_over_allowance"`` and an allowance given, the gains of the sales
in taxable accounts (units x gain per unit, losses negative) at most the allowance left.

Formulation. For a fixed total fee ``F``, ``T_F`` is a constant and ``J`` a convex quadratic
plus a term linear in ``K``. The oracle lists every total fee the accounts' line counts can make
(``sum_a fee_a * K_a`` with ``K_a`` up to the lines account ``a`` can have; accounts without a
fee add nothing) and searches them by bisection: a range of totals is one MIQP in which each
sleeve's weight may lie anywhere between its values at the range's two ends (a relaxation: its
optimum is at most ``J`` of any list paying a total in the range), with the best exact objective
so far as SCIP's cutoff; a range with nothing below the cutoff is dropped, any other split, down
to single totals, where the model is exact (``sum_a fee_a * K_a == F``). A range is also dropped
when the penalty of its fewest lines alone costs as much as the best list found. Every solution
SCIP finds is re-scored in ``Fraction`` arithmetic by this module's own ``violations`` and
``exact_objective``; a solution SCIP calls feasible that fails the exact check raises
``OracleError``. Proofs are SCIP's, in floating point (tolerances 1e-9): on households of tens
of listings SCIP's cuts have been seen to cut off feasible lists when money rows were stated in
integer money units, so they are stated in pounds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Protocol

from tests.support.miqp_oracle import (
    _EPSILON,
    _FEASTOL,
    _PP,
    ListingKey,
    OracleError,
    _matches,
    _stderr_silenced,
    _tradeable,
    _valued,
    line_problems,
)
from tradeassist.core.enums import TradeAction
from tradeassist.engine.model import PortfolioState, Position
from tradeassist.engine.scope import rescaled_targets
from tradeassist.policy import Policy

__all__ = [
    "HouseholdOracleResult",
    "OracleError",
    "exact_objective",
    "household_trades",
    "scip_household_optimum",
    "violations",
]

Trades = Mapping[str, Mapping[ListingKey, int]]  # account name -> signed whole units per listing


class AccountLike(Protocol):
    """What the oracle reads of an account (``tradeassist.engine.household.Account``)."""

    name: str
    state: PortfolioState
    taxable: bool
    gain_per_unit: Mapping[str, Decimal]


@dataclass(frozen=True)
class HouseholdOracleResult:
    trades: dict[str, dict[ListingKey, int]]  # per account name: signed units, executed lines only
    objective: Fraction  # J of the trade list, exact
    lines: int
    proven: bool  # every MIQP solved to optimality (gap 0) within the time limit
    seconds: float
    solves: int  # MIQPs solved (relaxations over ranges of total fees, then single totals)
    bound: float  # a lower bound on J (SCIP's, in floating point); the objective when proven


@dataclass(frozen=True)
class _Item:
    account: int
    key: ListingKey
    sleeve: str
    price: Fraction
    min_units: int  # fewest units of a line reaching the minimum trade (at least 1)
    max_units: int | None  # most units of a line under max_trade_base, None: no limit
    max_sell: int  # most units that may be sold (0: none)
    may_buy: bool
    held: Fraction
    gain: Fraction  # gain per unit sold counted against the allowance (0 outside taxable accounts)

    @property
    def name(self) -> str:
        return f"{self.key[0]}:{self.key[1]}"


@dataclass(frozen=True)
class _Spec:
    names: tuple[str, ...]
    frozen: tuple[bool, ...]
    sleeves: tuple[str, ...]
    targets: Mapping[str, Fraction]
    values: Mapping[str, Fraction]  # combined V_s
    total: Fraction  # T0
    budgets: tuple[Fraction, ...]  # per account: cash + contribution - buffer, not below 0
    fees: tuple[Fraction, ...]  # per account
    penalty: Fraction  # P
    turnover_cap: Fraction  # max_turnover * T0
    switches: bool
    max_lines_per_sleeve: int | None
    gain_limit: Fraction | None  # the allowance left when the CGT rule applies, else None
    items: tuple[_Item, ...]  # by account, then listing key
    guarded: tuple[str, ...]  # sleeves with a positive target and combined value: stay positive
    positions: tuple[Mapping[ListingKey, Position], ...]  # per account


def _check_supported(account: AccountLike, policy: Policy) -> None:
    """The oracle models the household without scope's edge cases: refuse what it does not model."""
    targeted = set(policy.sleeve_targets)
    for p in account.state.positions:
        held = p.units > 0
        if held and p.include_in_calcs and p.price_gbp is None:
            raise ValueError(f"{account.name} {p.label}: a held position without a price is not modelled")
        if held and p.include_in_calcs and p.sleeve not in targeted and policy.untargeted == "hold":
            raise ValueError(f"{account.name} {p.label}: untargeted holdings left alone are not modelled")


def _spec(
    accounts: Sequence[AccountLike], policy: Policy, sells: bool, gain_allowance_left: Decimal | None
) -> _Spec:
    names = tuple(a.name for a in accounts)
    if len(set(names)) != len(names):
        raise ValueError(f"account names must be distinct: {names}")
    for account in accounts:
        _check_supported(account, policy)
    every = [p for a in accounts for p in a.state.positions]
    # Scope over the combined household: a targeted sleeve nobody values or can trade is dropped
    # and the other targets rescaled pro rata (to 12 places, as the specification rounds them).
    valued_value: dict[str, Fraction] = {}
    for p in every:
        if _valued(p):
            assert p.price_gbp is not None
            valued_value[p.sleeve] = valued_value.get(p.sleeve, Fraction(0)) + Fraction(p.units) * Fraction(
                p.price_gbp
            )
    tradeable_sleeves = {p.sleeve for p in every if _tradeable(p)}
    dropped = {
        s
        for s in policy.sleeve_targets
        if s not in tradeable_sleeves and valued_value.get(s, Fraction(0)) == 0
    }
    raw_targets: Mapping[str, Decimal] = policy.sleeve_targets
    if dropped:
        rescaled = rescaled_targets(policy.sleeve_targets, dropped)
        if not rescaled:
            raise ValueError("no targeted sleeve can be held: nothing to optimise")
        raw_targets = rescaled
    targets = {code: Fraction(w) for code, w in raw_targets.items()}
    sleeves = tuple(sorted(set(targets) | {p.sleeve for p in every if _valued(p)}))
    values = {s: valued_value.get(s, Fraction(0)) for s in sleeves}
    total = sum(values.values(), Fraction(0)) + sum(
        (Fraction(a.state.cash_gbp) + Fraction(a.state.contribution_gbp) for a in accounts), Fraction(0)
    )
    min_trade = Fraction(policy.min_trade_base)
    max_trade = None if policy.max_trade_base is None else Fraction(policy.max_trade_base)
    cgt = policy.cgt == "avoid_gains_over_allowance" and gain_allowance_left is not None
    items = []
    for index, account in enumerate(accounts):
        if account.state.frozen:
            continue
        for p in sorted((p for p in account.state.positions if _tradeable(p)), key=lambda p: p.key):
            assert p.price_gbp is not None
            price = Fraction(p.price_gbp)
            may_sell = sells and not _matches(policy.never_sell, p)
            gain = (
                Fraction(account.gain_per_unit.get(p.label, Decimal(0))) if account.taxable else Fraction(0)
            )
            items.append(
                _Item(
                    account=index,
                    key=p.key,
                    sleeve=p.sleeve,
                    price=price,
                    min_units=max(1, math.ceil(min_trade / price)),
                    max_units=None if max_trade is None else math.floor(max_trade / price),
                    max_sell=math.floor(Fraction(p.units)) if may_sell else 0,
                    may_buy=not _matches(policy.never_buy, p),
                    held=Fraction(p.units),
                    gain=gain if cgt else Fraction(0),
                )
            )
    buffer = Fraction(policy.cash_buffer_base)
    return _Spec(
        names=names,
        frozen=tuple(a.state.frozen for a in accounts),
        sleeves=sleeves,
        targets={s: targets.get(s, Fraction(0)) for s in sleeves},
        values=values,
        total=total,
        budgets=tuple(
            max(Fraction(0), Fraction(a.state.cash_gbp) + Fraction(a.state.contribution_gbp) - buffer)
            for a in accounts
        ),
        fees=tuple(Fraction(policy.fee_for(a.name)) for a in accounts),
        penalty=Fraction(policy.line_penalty),
        turnover_cap=Fraction(policy.max_turnover) * total,
        switches=policy.sell_and_buy_in_same_sleeve,
        max_lines_per_sleeve=policy.max_lines_per_sleeve,
        gain_limit=Fraction(gain_allowance_left) if cgt and gain_allowance_left is not None else None,
        items=tuple(items),
        guarded=tuple(s for s in sleeves if targets.get(s, 0) > 0 and values[s] > 0),
        positions=tuple({p.key: p for p in a.state.positions} for a in accounts),
    )


def _executed(spec: _Spec, trades: Trades) -> dict[int, dict[ListingKey, int]]:
    """Executed lines per account index; a trade in an unknown account raises ``ValueError``."""
    out: dict[int, dict[ListingKey, int]] = {}
    for name, lines in trades.items():
        if name not in spec.names:
            raise ValueError(f"{name}: not an account of the household {spec.names}")
        executed = {key: int(q) for key, q in lines.items() if q != 0}
        if executed:
            out[spec.names.index(name)] = executed
    return out


def _fees_paid(spec: _Spec, lines: Mapping[int, Mapping[ListingKey, int]]) -> Fraction:
    return sum((spec.fees[a] * len(account) for a, account in lines.items()), Fraction(0))


def _score(spec: _Spec, trades: Trades) -> Fraction:
    lines = _executed(spec, trades)
    after = dict(spec.values)
    for a, account in lines.items():
        for key, q in account.items():
            position = spec.positions[a].get(key)
            if position is None or not _valued(position):
                raise ValueError(f"{spec.names[a]} {key[0]}:{key[1]}: not a valued position")
            assert position.price_gbp is not None
            after[position.sleeve] += q * Fraction(position.price_gbp)
    if spec.total <= 0:
        raise ValueError("the base T0 is not positive: the objective is undefined")
    total_f = spec.total - _fees_paid(spec, lines)
    if total_f <= 0:
        raise ValueError(f"T_F = {total_f} is not positive")
    count = sum(len(account) for account in lines.values())
    drift = sum(((after[s] / total_f - spec.targets[s]) ** 2 for s in spec.sleeves), Fraction(0))
    return drift + count * (spec.penalty / spec.total) ** 2


def exact_objective(
    accounts: Sequence[AccountLike],
    policy: Policy,
    trades: Trades,
    *,
    gain_allowance_left: Decimal | None = None,
) -> Fraction:
    """J of a household trade list (per account name: signed whole units per listing), exactly.

    Scores only; ``violations`` says whether the list is allowed. Raises ``ValueError`` for a
    listing that is not a valued position of its account, or when ``T0`` or ``T_F`` is not positive.
    """
    return _score(_spec(accounts, policy, True, gain_allowance_left), trades)


def _violations(spec: _Spec, trades: Trades) -> list[str]:
    lines = _executed(spec, trades)
    problems: list[str] = []
    items = {(item.account, item.key): item for item in spec.items}
    sold = Fraction(0)
    gains = Fraction(0)
    after = dict(spec.values)
    for a, account in lines.items():
        where = spec.names[a]
        if spec.frozen[a]:
            problems.append(f"{where}: frozen, but trades {len(account)} lines")
        spend = Fraction(0)
        sides: dict[str, set[str]] = {}
        per_sleeve: dict[str, int] = {}
        for key, q in account.items():
            label = f"{where} {key[0]}:{key[1]}"
            item = items.get((a, key))
            if item is None:
                if not spec.frozen[a]:
                    problems.append(f"{label}: not a tradeable item (unvalued, not tradeable or stale)")
                continue
            problems.extend(line_problems(label, item, q))
            spend += q * item.price
            if q < 0:
                sold += -q * item.price
                gains += -q * item.gain
            after[item.sleeve] += q * item.price
            sides.setdefault(item.sleeve, set()).add("buy" if q > 0 else "sell")
            per_sleeve[item.sleeve] = per_sleeve.get(item.sleeve, 0) + 1
        fees = spec.fees[a] * len(account)
        if spend + fees > spec.budgets[a]:
            problems.append(f"{where}: net spend {spend} + fees {fees} exceeds its budget {spec.budgets[a]}")
        if not spec.switches:
            problems.extend(
                f"{where}: sleeve {s} both sells and buys" for s, both in sides.items() if len(both) > 1
            )
        if spec.max_lines_per_sleeve is not None:
            problems.extend(
                f"{where}: sleeve {s} has {n} lines (limit {spec.max_lines_per_sleeve})"
                for s, n in per_sleeve.items()
                if n > spec.max_lines_per_sleeve
            )
    if sold > spec.turnover_cap:
        problems.append(f"sells {sold} exceed max_turnover x T0 = {spec.turnover_cap}")
    if spec.gain_limit is not None and gains > spec.gain_limit:
        problems.append(f"taxable sales realise gains {gains} above the allowance left {spec.gain_limit}")
    problems.extend(f"sleeve {s} (positive target) is sold to zero" for s in spec.guarded if after[s] <= 0)
    total_f = spec.total - _fees_paid(spec, lines)
    if total_f <= 0:
        problems.append(f"T_F = {total_f} is not positive")
    return problems


def violations(
    accounts: Sequence[AccountLike],
    policy: Policy,
    trades: Trades,
    *,
    sells: bool,
    gain_allowance_left: Decimal | None = None,
) -> list[str]:
    """Every rule of the specification the household trade list breaks (empty: feasible), exactly."""
    return _violations(_spec(accounts, policy, sells, gain_allowance_left), trades)


def household_trades(recommendation: Any) -> dict[str, dict[ListingKey, int]]:
    """The executed lines of a ``HouseholdRecommendation``, per account name, as signed units."""
    out: dict[str, dict[ListingKey, int]] = {}
    for name, reco in zip(recommendation.accounts, recommendation.recommendations, strict=True):
        lines: dict[ListingKey, int] = {}
        for line in reco.executed_lines:
            units = Fraction(line.estimated_units)
            if units.denominator != 1:
                raise ValueError(f"{name} {line.ticker}:{line.exchange}: {units} is not whole units")
            sign = 1 if line.action is TradeAction.BUY else -1
            key = (line.ticker, line.exchange)
            if key in lines:
                raise ValueError(f"{name} {line.ticker}:{line.exchange}: two executed lines")
            lines[key] = sign * int(units)
        out[name] = lines
    return out


def _scale(values: Sequence[Fraction]) -> int:
    """A common denominator that makes every value an integer."""
    scale = 1
    for value in values:
        scale = math.lcm(scale, value.denominator)
    return scale


def _most_lines(spec: _Spec, account: int) -> int:
    """The most executed lines account ``account`` can have (per sleeve, the line limit)."""
    per_sleeve: dict[str, int] = {}
    for item in spec.items:
        if item.account == account and (item.may_buy or item.max_sell >= item.min_units):
            per_sleeve[item.sleeve] = per_sleeve.get(item.sleeve, 0) + 1
    limit = spec.max_lines_per_sleeve
    return sum(n if limit is None else min(n, limit) for n in per_sleeve.values())


def _fee_plans(spec: _Spec, scale: int) -> list[tuple[int, int]]:
    """Every total fee (integer money units) the accounts' line counts can make, with the
    fewest lines that make it: (fewest lines, fee), sorted; only totals leaving ``T_F > 0``."""
    plans = {0: 0}
    for a, fee in enumerate(spec.fees):
        if spec.frozen[a]:
            continue
        most = _most_lines(spec, a)
        fee_units = int(fee * scale)
        step: dict[int, int] = {}
        for total, fewest in plans.items():
            for k in range(most + 1 if fee_units else 1):
                value = total + fee_units * k
                if value not in step or fewest + k < step[value]:
                    step[value] = fewest + k
        plans = step
    limit = spec.total * scale
    return sorted((fewest, fee) for fee, fewest in plans.items() if fee < limit)


class _Model:
    """One MIQP over every account's items with the total fee in ``fees = (low, high)`` (integer
    money units). With ``low == high``, ``T_F`` is a constant and the model is exact. Otherwise
    it is a relaxation: each sleeve's weight may be anywhere between ``x_s / (T0 - low)`` and
    ``x_s / (T0 - high)`` (``x_s >= 0``: nothing is sold beyond what is held), so its optimum
    is at most ``J`` of every trade list whose total fee is in the range, and every solution
    is still a trade list the exact code can score."""

    def __init__(self, spec: _Spec, fees: tuple[int, int], scale: int, time_limit: float) -> None:
        import pyscipopt

        quicksum = pyscipopt.quicksum
        self.spec = spec
        m = self.m = pyscipopt.Model("household")
        m.hideOutput()
        m.setParam("limits/time", max(time_limit, 0.01))
        m.setParam("limits/gap", 0.0)
        m.setParam("limits/absgap", 0.0)
        m.setParam("numerics/feastol", _FEASTOL)
        m.setParam("numerics/dualfeastol", _FEASTOL)
        m.setParam("numerics/epsilon", _EPSILON)
        m.setParam("numerics/sumepsilon", _EPSILON * 10)
        m.setParam("randomization/randomseedshift", 0)
        # Money rows in pounds: in integer money units (10**4 a pound for four-decimal prices) the
        # coefficients reach 10**6 beside drift rows of 10**-2, and SCIP's cuts then wrongly cut
        # off feasible lists (a 56-listing household was declared "infeasible" below a cutoff that
        # a list checked exactly beat). A rounded solution still meets each row exactly or misses
        # it by at least one money unit, which the exact check catches (OracleError).
        money = [float(item.price) for item in spec.items]
        self.impossible = False  # no line count makes the total fee: nothing to solve
        self.buy: dict[int, Any] = {}
        self.sell: dict[int, Any] = {}
        self.on: dict[tuple[int, str], Any] = {}
        sellable = [Fraction(0)] * len(spec.names)
        for item in spec.items:
            sellable[item.account] += item.price * item.max_sell
        for n, item in enumerate(spec.items):
            reach = spec.budgets[item.account] + min(sellable[item.account], spec.turnover_cap)
            most_buy = math.floor(reach / item.price) if item.may_buy and reach > 0 else 0
            most_sell = item.max_sell
            if item.max_units is not None:
                most_buy, most_sell = min(most_buy, item.max_units), min(most_sell, item.max_units)
            for side, most in (("buy", most_buy), ("sell", most_sell)):
                if most < item.min_units:
                    continue
                tag = f"{side}_{item.account}_{item.key[0]}_{item.key[1]}"
                units = m.addVar(tag, vtype="I", lb=0, ub=most)
                on = m.addVar(f"on_{tag}", vtype="B")
                m.addCons(units <= most * on)
                m.addCons(units >= item.min_units * on)
                (self.buy if side == "buy" else self.sell)[n] = units
                self.on[n, side] = on
            if (n, "buy") in self.on and (n, "sell") in self.on:
                m.addCons(self.on[n, "buy"] + self.on[n, "sell"] <= 1)
        counts = []
        for a in range(len(spec.names)):
            members = [n for n, item in enumerate(spec.items) if item.account == a]
            switches = [self.on[n, side] for n in members for side in ("buy", "sell") if (n, side) in self.on]
            count = quicksum(switches)
            counts.append((a, count, bool(switches)))
            net = quicksum(money[n] * self.buy[n] for n in members if n in self.buy) - quicksum(
                money[n] * self.sell[n] for n in members if n in self.sell
            )
            m.addCons(net + float(spec.fees[a]) * count <= float(spec.budgets[a]))
            by_sleeve: dict[str, list[int]] = {}
            for n in members:
                by_sleeve.setdefault(spec.items[n].sleeve, []).append(n)
            for sleeve, group in by_sleeve.items():
                buys = [self.on[n, "buy"] for n in group if (n, "buy") in self.on]
                sells = [self.on[n, "sell"] for n in group if (n, "sell") in self.on]
                if not spec.switches and buys and sells:
                    side = m.addVar(f"buys_{a}_{sleeve}", vtype="B")
                    for b in buys:
                        m.addCons(b <= side)
                    for s in sells:
                        m.addCons(s <= 1 - side)
                limit = spec.max_lines_per_sleeve
                if limit is not None and len(buys) + len(sells) > limit:
                    m.addCons(quicksum(buys + sells) <= limit)
        if self.sell:
            sold = quicksum(money[n] * v for n, v in self.sell.items())
            m.addCons(sold <= float(spec.turnover_cap))
        if spec.gain_limit is not None:
            taxed = [n for n in self.sell if spec.items[n].gain != 0]
            if taxed:
                gains = quicksum(float(spec.items[n].gain) * self.sell[n] for n in taxed)
                m.addCons(gains <= float(spec.gain_limit))
        paying = [(int(spec.fees[a] * scale), count) for a, count, some in counts if some and spec.fees[a]]
        low, high = fees
        if paying:  # in units of the fees' greatest common divisor: small integer coefficients
            unit = math.gcd(*(fee for fee, _ in paying))
            least, most = -(-low // unit), high // unit
            self.impossible = least > most
            paid = quicksum(fee // unit * count for fee, count in paying)
            if least == most:
                m.addCons(paid == least)
            else:
                m.addCons(paid >= least)
                m.addCons(paid <= most)
        elif low:
            self.impossible = True
        for sleeve in spec.guarded:
            self._keep_positive(sleeve, [n for n, item in enumerate(spec.items) if item.sleeve == sleeve])
        drift = m.addVar("drift", lb=0, ub=None)
        terms = []
        for sleeve in spec.sleeves:
            group = [n for n, item in enumerate(spec.items) if item.sleeve == sleeve]
            d = m.addVar(f"d_{sleeve}", lb=None, ub=None)
            weights = []  # the sleeve's deviation in percentage points at T_F = T0 - fee
            for fee in sorted({low, high}):
                total_f = spec.total - Fraction(fee, scale)
                spend = quicksum(
                    float(_PP * spec.items[n].price / total_f) * self.buy[n] for n in group if n in self.buy
                ) - quicksum(
                    float(_PP * spec.items[n].price / total_f) * self.sell[n] for n in group if n in self.sell
                )
                start = float(_PP * (spec.values[sleeve] / total_f - spec.targets[sleeve]))
                weights.append(start + spend)
            if len(weights) == 1:
                m.addCons(d == weights[0])
            else:  # the lowest fee gives the largest total: the lowest weight
                m.addCons(d >= weights[0])
                m.addCons(d <= weights[1])
            terms.append(d * d)
        m.addCons(quicksum(terms) <= drift)
        objective = drift
        if spec.penalty and spec.total > 0 and self.on:
            objective = objective + float(_PP**2 * (spec.penalty / spec.total) ** 2) * quicksum(
                self.on.values()
            )
        m.setObjective(objective, "minimize")

    def _keep_positive(self, sleeve: str, members: list[int]) -> None:
        """The sleeve's combined holdings must not all be sold: at least one whole unit stays."""
        import pyscipopt

        spec = self.spec
        tradeable = {(spec.items[n].account, spec.items[n].key) for n in members}
        kept = Fraction(0)
        for a, positions in enumerate(spec.positions):
            for key, p in positions.items():
                if p.sleeve == sleeve and _valued(p) and (a, key) not in tradeable:
                    kept += Fraction(p.units)  # never traded: frozen, not tradeable, stale
        kept += sum((spec.items[n].held - math.floor(spec.items[n].held) for n in members), Fraction(0))
        sellers = [n for n in members if n in self.sell]
        if kept > 0 or not sellers:
            return  # a holding that is never sold keeps the sleeve positive
        held = sum(int(spec.items[n].held) for n in members)
        bought = pyscipopt.quicksum(self.buy[n] for n in members if n in self.buy)
        self.m.addCons(held + bought - pyscipopt.quicksum(self.sell[n] for n in sellers) >= 1)

    def solve(self, cutoff: float | None) -> tuple[list[dict[str, dict[ListingKey, int]]], bool, float]:
        """Every solution SCIP found (rounded to whole units), whether it proved optimality (or that
        nothing is below the cutoff), and SCIP's lower bound on the objective, in J units."""
        if self.impossible:
            return [], True, math.inf
        if cutoff is not None:
            self.m.setObjlimit(cutoff)
        with _stderr_silenced():
            self.m.optimize()
        status = self.m.getStatus()
        proven = status in ("optimal", "infeasible")
        found = []
        spec = self.spec
        for sol in self.m.getSols():
            trades: dict[str, dict[ListingKey, int]] = {name: {} for name in spec.names}
            for sign, chosen in ((1, self.buy), (-1, self.sell)):
                for n, var in chosen.items():
                    q = round(self.m.getSolVal(sol, var))
                    if q:
                        item = spec.items[n]
                        lines = trades[spec.names[item.account]]
                        lines[item.key] = lines.get(item.key, 0) + sign * q
            found.append({name: lines for name, lines in trades.items() if lines})
        bound = math.inf if status == "infeasible" else self.m.getDualbound() / _PP**2
        return found, proven, bound


def scip_household_optimum(
    accounts: Sequence[AccountLike],
    policy: Policy,
    *,
    sells: bool,
    gain_allowance_left: Decimal | None = None,
    time_limit: float = 60.0,
    incumbent: Trades | None = None,
) -> HouseholdOracleResult | None:
    """The best household trade list by SCIP, re-scored exactly; None when none is feasible.

    The total fees the line counts can make are searched by bisection: a range of them is
    solved as one relaxation (``_Model``) with the best exact objective so far as its cutoff;
    a range whose relaxation has nothing below the cutoff holds no better list and is dropped,
    any other is split, down to single totals, whose models are exact. Every solution found on
    the way is scored exactly, so the best list is always a real one.

    ``incumbent``: a trade list to start from (checked and scored exactly, ignored when it breaks
    a rule): the search then only has to prove it optimal or find better, as with a list from
    the engine on cases too large for SCIP to solve from nothing in the time given.
    """
    started = time.perf_counter()
    spec = _spec(accounts, policy, sells, gain_allowance_left)
    best: tuple[Fraction, int, dict[str, dict[ListingKey, int]]] | None = None
    solves = 0
    if spec.total <= 0:
        raise ValueError("the base T0 is not positive: nothing to optimise")
    scale = _scale([*spec.budgets, *spec.fees, *(item.price for item in spec.items)])

    def consider(trades: Trades, fees: tuple[int, int] | None) -> int:
        """Check and score one solution exactly; its total fee (money units)."""
        nonlocal best
        problems = _violations(spec, trades)
        if problems:
            raise OracleError(f"SCIP's solution {trades} breaks the rules exactly: {'; '.join(problems)}")
        lines = _executed(spec, trades)
        paid = _fees_paid(spec, lines) * scale
        if fees is not None and not fees[0] <= paid <= fees[1]:
            raise OracleError(f"SCIP's solution {trades} pays {paid} in fees (money units), not in {fees}")
        value = _score(spec, trades)
        count = sum(len(account) for account in lines.values())
        if best is None or (value, count) < best[:2]:
            best = (value, count, {spec.names[a]: dict(account) for a, account in lines.items()})
        return int(paid)

    if not _violations(spec, {}):
        consider({}, (0, 0))
    if incumbent is not None and not _violations(spec, incumbent):
        consider(incumbent, None)
    line_cost = (spec.penalty / spec.total) ** 2
    plans = sorted((fee, fewest) for fewest, fee in _fee_plans(spec, scale)) if spec.items else []
    # Slices of ``plans`` still to search (a stack), each with a lower bound on J known for it.
    ranges: list[tuple[int, int, float]] = [(0, len(plans), -math.inf)] if plans else []
    while ranges:
        lo, hi, known = ranges.pop()
        fewest = min(f for _, f in plans[lo:hi])
        if best is not None and fewest and fewest * line_cost >= best[0]:
            continue  # the penalty of its fewest lines alone costs as much as the best list
        left = time_limit - (time.perf_counter() - started)
        if left <= 0:
            ranges.append((lo, hi, known))
            break
        fees = (plans[lo][0], plans[hi - 1][0])
        model = _Model(spec, fees, scale, left)
        # Slightly above the best so far: near ties still come back and are compared exactly.
        cutoff = None if best is None else float(_PP**2 * best[0]) * (1 + 1e-7) + 1e-9
        found, solved, bound = model.solve(cutoff)
        solves += 1
        paid = [consider(trades, fees) for trades in found]
        known = max(known, bound)
        if not solved and hi - lo == 1:
            ranges.append((lo, hi, known))  # out of time: this total is left open
            break
        if hi - lo == 1 or (solved and not found):
            continue  # solved exactly, or the relaxation has nothing below the cutoff
        mid = (lo + hi) // 2
        halves = [(lo, mid, known), (mid, hi, known)]
        if paid and paid[-1] >= plans[mid][0]:  # search first where the last solution found was
            halves.reverse()
        ranges.extend(reversed(halves))
    proven = not ranges
    seconds = time.perf_counter() - started
    if best is None:
        if not proven:
            raise OracleError(f"SCIP found no list within {time_limit}s and did not prove there is none")
        return None
    value, lines, trades = best
    bound = float(value) if proven else min(float(value), *(known for *_, known in ranges))
    return HouseholdOracleResult(
        trades=trades,
        objective=value,
        lines=lines,
        proven=proven,
        seconds=seconds,
        solves=solves,
        bound=bound,
    )
