"""An independent exact oracle for the engine's whole-unit trade list: a MIQP solved by SCIP.

Written from the problem's specification alone, so it can check the engine's branch and
bound: it reads only the input types (``engine.model``) and the ``Policy``, never the
engine's problem builder, search, relaxation, warm start or valuation.

The problem. For a scoped ``PortfolioState``, a ``Policy`` and whether this kind may sell:
valued positions (included, priced) make the sleeve values ``V_s`` and the base
``T = sum V_s + cash + contribution``; tradeable items (valued, tradeable, price not stale)
take whole units ``q_i`` (buy > 0, sell < 0). With ``K`` executed lines, ``T_K = T - fee*K``
and ``P = policy.line_penalty``, minimise

    J = sum_s ((V_s + sum_{i in s} q_i p_i) / T_K - t_s)**2 + K * (P / T)**2

subject to: minimum (and maximum, if set) consideration per line; sells only when allowed,
at most floor(units held), never for a ``never_sell`` name; no buys for a ``never_buy`` name;
``sum q_i p_i + fee*K <= cash + contribution - buffer``; total sell consideration at most
``max_turnover * T``; no sleeve both selling and buying unless the policy allows it; at most
``max_lines_per_sleeve`` lines per sleeve; a sleeve with a positive target and a positive
value keeps a positive value; ``T_K > 0``.

Formulation. For fixed ``K`` ``T_K`` is a constant and ``J`` a convex quadratic, so the
oracle solves one MIQP per ``K`` (buy and sell units ``u_i, v_i`` with on/off binaries,
``sum of binaries = K``, an epigraph variable over the squared drifts in percentage points)
and keeps the best; with no fee ``T_K = T`` for all ``K`` and one MIQP with the penalty as a
linear term suffices. Money constraints are stated in integer money units (every price,
cash amount and fee times a common denominator), so a rounded SCIP solution either meets
them exactly or misses by a whole unit, which the exact check catches. Every solution SCIP
found is re-scored in ``Fraction`` arithmetic by ``exact_objective`` (written here from the
specification) and checked by ``violations``; the best exact one is the answer. A solution
SCIP calls feasible that fails the exact check raises ``OracleError``.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from tradeassist.engine.model import PortfolioState, Position
from tradeassist.policy import Policy

ListingKey = tuple[str, str]

# Drifts enter SCIP in percentage points, so the objective is of order 1 to 10**4, where
# SCIP's relative tolerances are tightest.
_PP = 100
_FEASTOL = 1e-9
_EPSILON = 1e-10


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """SoPlex writes straight to file descriptor 2 when SCIP asks it for a tolerance below its
    floor of 1e-10 (SCIP tightens the LP tolerance 1000-fold on a numerically unstable LP):
    harmless, SoPlex uses 1e-10, but not something to print."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class OracleError(AssertionError):
    """SCIP's answer does not hold in exact arithmetic (its tolerances need tightening)."""


@dataclass(frozen=True)
class OracleResult:
    trades: dict[ListingKey, int]  # signed whole units per listing; executed lines only
    objective: Fraction  # J of the trade list, exact
    lines: int
    proven: bool  # every MIQP solved to optimality (gap 0) within the time limit
    seconds: float


@dataclass(frozen=True)
class _Item:
    key: ListingKey
    sleeve: str
    price: Fraction
    min_units: int  # fewest units of a line reaching the minimum trade (at least 1)
    max_units: int | None  # most units of a line under max_trade_base, None: no limit
    max_sell: int  # most units that may be sold (0: none)
    may_buy: bool
    held: Fraction


@dataclass(frozen=True)
class _Spec:
    sleeves: tuple[str, ...]
    targets: Mapping[str, Fraction]
    values: Mapping[str, Fraction]
    total: Fraction  # T
    budget: Fraction  # B
    fee: Fraction
    penalty: Fraction  # P
    turnover_cap: Fraction  # max_turnover * T
    switches: bool
    max_lines_per_sleeve: int | None
    items: tuple[_Item, ...]  # by listing key
    guarded: tuple[str, ...]  # sleeves with a positive target and value: must stay positive
    positions: Mapping[ListingKey, Position]


def _matches(names: tuple[str, ...], position: Position) -> bool:
    own = {position.sleeve.upper(), position.ticker.upper(), f"{position.ticker}:{position.exchange}".upper()}
    return any(name.upper() in own for name in names)


def _valued(position: Position) -> bool:
    return position.include_in_calcs and position.price_gbp is not None


def _tradeable(position: Position) -> bool:
    return _valued(position) and position.tradeable and not position.price_stale


def _spec(state: PortfolioState, policy: Policy, sells: bool) -> _Spec:
    targets = {code: Fraction(weight) for code, weight in policy.sleeve_targets.items()}
    valued = [p for p in state.positions if _valued(p)]
    sleeves = tuple(sorted(set(targets) | {p.sleeve for p in valued}))
    values = dict.fromkeys(sleeves, Fraction(0))
    for p in valued:
        assert p.price_gbp is not None
        values[p.sleeve] += Fraction(p.units) * Fraction(p.price_gbp)
    total = sum(values.values(), Fraction(0)) + Fraction(state.cash_gbp) + Fraction(state.contribution_gbp)
    min_trade = Fraction(policy.min_trade_base)
    max_trade = None if policy.max_trade_base is None else Fraction(policy.max_trade_base)
    items = []
    for p in sorted((p for p in state.positions if _tradeable(p)), key=lambda p: p.key):
        assert p.price_gbp is not None
        price = Fraction(p.price_gbp)
        may_sell = sells and not _matches(policy.never_sell, p)
        items.append(
            _Item(
                key=p.key,
                sleeve=p.sleeve,
                price=price,
                min_units=max(1, math.ceil(min_trade / price)),
                max_units=None if max_trade is None else math.floor(max_trade / price),
                max_sell=math.floor(Fraction(p.units)) if may_sell else 0,
                may_buy=not _matches(policy.never_buy, p),
                held=Fraction(p.units),
            )
        )
    return _Spec(
        sleeves=sleeves,
        targets={code: targets.get(code, Fraction(0)) for code in sleeves},
        values=values,
        total=total,
        budget=Fraction(state.cash_gbp)
        + Fraction(state.contribution_gbp)
        - Fraction(policy.cash_buffer_base),
        fee=Fraction(policy.fee_per_trade_base),
        penalty=Fraction(policy.line_penalty),
        turnover_cap=Fraction(policy.max_turnover) * total,
        switches=policy.sell_and_buy_in_same_sleeve,
        max_lines_per_sleeve=policy.max_lines_per_sleeve,
        items=tuple(items),
        guarded=tuple(s for s in sleeves if targets.get(s, 0) > 0 and values[s] > 0),
        positions={p.key: p for p in state.positions},
    )


def _executed(trades: Mapping[ListingKey, int]) -> dict[ListingKey, int]:
    return {key: int(q) for key, q in trades.items() if q != 0}


def _score(spec: _Spec, trades: Mapping[ListingKey, int]) -> Fraction:
    lines = _executed(trades)
    after = dict(spec.values)
    for key, q in lines.items():
        position = spec.positions.get(key)
        if position is None or not _valued(position):
            raise ValueError(f"{key[0]}:{key[1]}: not a valued position of the state")
        assert position.price_gbp is not None
        after[position.sleeve] += q * Fraction(position.price_gbp)
    if spec.total <= 0:
        raise ValueError("the base T is not positive: the objective is undefined")
    total_k = spec.total - spec.fee * len(lines)
    if total_k <= 0:
        raise ValueError(f"T_K = {total_k} is not positive for {len(lines)} lines")
    drift = sum(((after[s] / total_k - spec.targets[s]) ** 2 for s in spec.sleeves), Fraction(0))
    return drift + len(lines) * (spec.penalty / spec.total) ** 2


def exact_objective(state: PortfolioState, policy: Policy, trades: Mapping[ListingKey, int]) -> Fraction:
    """J of a trade list (signed whole units per listing key), in exact arithmetic.

    Scores only; ``violations`` says whether the list is allowed. Raises ``ValueError`` for a
    listing that is not a valued position, or when ``T`` or ``T_K`` is not positive.
    """
    return _score(_spec(state, policy, sells=True), trades)


def _violations(spec: _Spec, trades: Mapping[ListingKey, int]) -> list[str]:
    lines = _executed(trades)
    problems: list[str] = []
    items = {item.key: item for item in spec.items}
    spend = Fraction(0)
    sold = Fraction(0)
    after = dict(spec.values)
    sides: dict[str, set[str]] = {}
    per_sleeve: dict[str, int] = {}
    for key, q in lines.items():
        label = f"{key[0]}:{key[1]}"
        item = items.get(key)
        if item is None:
            problems.append(f"{label}: not a tradeable item (unvalued, not tradeable or stale price)")
            continue
        problems.extend(line_problems(label, item, q))
        spend += q * item.price
        if q < 0:
            sold += -q * item.price
        after[item.sleeve] += q * item.price
        sides.setdefault(item.sleeve, set()).add("buy" if q > 0 else "sell")
        per_sleeve[item.sleeve] = per_sleeve.get(item.sleeve, 0) + 1
    k = len(lines)
    if spend + spec.fee * k > spec.budget:
        problems.append(f"net spend {spend} + fees {spec.fee * k} exceeds the budget {spec.budget}")
    if sold > spec.turnover_cap:
        problems.append(f"sells {sold} exceed max_turnover x T = {spec.turnover_cap}")
    if not spec.switches:
        problems.extend(f"sleeve {s} both sells and buys" for s, both in sides.items() if len(both) > 1)
    if spec.max_lines_per_sleeve is not None:
        problems.extend(
            f"sleeve {s} has {n} lines (limit {spec.max_lines_per_sleeve})"
            for s, n in per_sleeve.items()
            if n > spec.max_lines_per_sleeve
        )
    problems.extend(f"sleeve {s} (positive target) is sold to zero" for s in spec.guarded if after[s] <= 0)
    if spec.total - spec.fee * k <= 0:
        problems.append(f"T_K = {spec.total - spec.fee * k} is not positive")
    return problems


def line_problems(label: str, item: Any, q: int) -> list[str]:
    """What one line of ``q`` units breaks of its own size rules: the minimum and maximum
    trade, never_buy, the units that may be sold (``item``: min_units, max_units, price,
    may_buy, max_sell; the household oracle's items have them too)."""
    problems = []
    units = abs(q)
    if units < item.min_units:
        problems.append(f"{label}: {units} units x {item.price} is below the minimum trade")
    if item.max_units is not None and units > item.max_units:
        problems.append(f"{label}: {units} units x {item.price} is above max_trade_base")
    if q > 0 and not item.may_buy:
        problems.append(f"{label}: bought, but never_buy names it")
    if q < 0 and -q > item.max_sell:
        problems.append(f"{label}: sells {-q} units; at most {item.max_sell} may be sold")
    return problems


def violations(
    state: PortfolioState, policy: Policy, trades: Mapping[ListingKey, int], *, sells: bool
) -> list[str]:
    """Every constraint of the specification the trade list breaks (empty: feasible), exactly."""
    return _violations(_spec(state, policy, sells), trades)


def _money_scale(spec: _Spec) -> int:
    """A common denominator that makes every price, the budget and the fee integers."""
    scale = 1
    for value in (spec.budget, spec.fee, *(item.price for item in spec.items)):
        scale = math.lcm(scale, value.denominator)
    return scale


class _Model:
    """One MIQP over the items: with ``lines`` fixed (``T_K`` a constant) or, without a fee, free."""

    def __init__(self, spec: _Spec, lines: int | None, time_limit: float) -> None:
        import pyscipopt

        self.spec = spec
        m = self.m = pyscipopt.Model("trade-list")
        m.hideOutput()
        m.setParam("limits/time", max(time_limit, 0.01))
        m.setParam("limits/gap", 0.0)
        m.setParam("limits/absgap", 0.0)
        m.setParam("numerics/feastol", _FEASTOL)
        m.setParam("numerics/dualfeastol", _FEASTOL)
        m.setParam("numerics/epsilon", _EPSILON)
        m.setParam("numerics/sumepsilon", _EPSILON * 10)
        m.setParam("randomization/randomseedshift", 0)
        scale = _money_scale(spec)
        money = {item.key: int(item.price * scale) for item in spec.items}
        # A bound on every buy: all the money there is, the budget plus every sale allowed.
        sellable = sum((item.price * item.max_sell for item in spec.items), Fraction(0))
        reach = spec.budget + min(sellable, spec.turnover_cap)
        self.buy: dict[ListingKey, object] = {}
        self.sell: dict[ListingKey, object] = {}
        self.on: dict[tuple[ListingKey, str], object] = {}
        for item in spec.items:
            cap = item.max_units if item.max_units is not None else None
            most_buy = math.floor(reach / item.price) if item.may_buy and reach > 0 else 0
            if cap is not None:
                most_buy = min(most_buy, cap)
            most_sell = item.max_sell if cap is None else min(item.max_sell, cap)
            for side, most in (("buy", most_buy), ("sell", most_sell)):
                if most < item.min_units:
                    continue
                units = m.addVar(f"{side}_{item.key[0]}", vtype="I", lb=0, ub=most)
                on = m.addVar(f"on_{side}_{item.key[0]}", vtype="B")
                m.addCons(units <= most * on)
                m.addCons(units >= item.min_units * on)
                (self.buy if side == "buy" else self.sell)[item.key] = units
                self.on[item.key, side] = on
            if (item.key, "buy") in self.on and (item.key, "sell") in self.on:
                m.addCons(self.on[item.key, "buy"] + self.on[item.key, "sell"] <= 1)
        count = pyscipopt.quicksum(self.on.values())
        net = pyscipopt.quicksum(money[k] * u for k, u in self.buy.items()) - pyscipopt.quicksum(
            money[k] * v for k, v in self.sell.items()
        )
        fee = int(spec.fee * scale)
        budget = math.floor(spec.budget * scale)
        m.addCons(net + fee * count <= budget)
        if self.sell:
            cap = math.floor(spec.turnover_cap * scale)
            m.addCons(pyscipopt.quicksum(money[k] * v for k, v in self.sell.items()) <= cap)
        by_sleeve: dict[str, list[_Item]] = {}
        for item in spec.items:
            by_sleeve.setdefault(item.sleeve, []).append(item)
        for sleeve, members in by_sleeve.items():
            buys = [self.on[i.key, "buy"] for i in members if (i.key, "buy") in self.on]
            sells = [self.on[i.key, "sell"] for i in members if (i.key, "sell") in self.on]
            if not spec.switches and buys and sells:
                side = m.addVar(f"buys_{sleeve}", vtype="B")
                for b in buys:
                    m.addCons(b <= side)
                for s in sells:
                    m.addCons(s <= 1 - side)
            if spec.max_lines_per_sleeve is not None and len(buys) + len(sells) > spec.max_lines_per_sleeve:
                m.addCons(pyscipopt.quicksum(buys + sells) <= spec.max_lines_per_sleeve)
        for sleeve in spec.guarded:
            self._keep_positive(sleeve, by_sleeve.get(sleeve, []))
        if lines is not None:
            m.addCons(count == lines)
        total_k = spec.total - spec.fee * (lines or 0)
        self.drift = m.addVar("drift", lb=0, ub=None)
        terms = []
        for sleeve in spec.sleeves:
            members = by_sleeve.get(sleeve, [])
            d = m.addVar(f"d_{sleeve}", lb=None, ub=None)
            spend = pyscipopt.quicksum(
                float(_PP * i.price / total_k) * self.buy[i.key] for i in members if i.key in self.buy
            ) - pyscipopt.quicksum(
                float(_PP * i.price / total_k) * self.sell[i.key] for i in members if i.key in self.sell
            )
            start = float(_PP * (spec.values[sleeve] / total_k - spec.targets[sleeve]))
            m.addCons(d == start + spend)
            terms.append(d * d)
        m.addCons(pyscipopt.quicksum(terms) <= self.drift)
        objective = self.drift
        if lines is None and spec.penalty:
            objective = objective + float(_PP**2 * (spec.penalty / spec.total) ** 2) * count
        m.setObjective(objective, "minimize")

    def _keep_positive(self, sleeve: str, members: list[_Item]) -> None:
        """The sleeve's valued holdings must not all be sold: at least one whole unit stays."""
        kept = sum(
            (
                Fraction(p.units)
                for p in self.spec.positions.values()
                if p.sleeve == sleeve and _valued(p) and not _tradeable(p)
            ),
            Fraction(0),
        )
        kept += sum((i.held - math.floor(i.held) for i in members), Fraction(0))
        sellers = [i for i in members if i.key in self.sell]
        if kept > 0 or not sellers:
            return  # a remainder that is never sold keeps the sleeve positive
        import pyscipopt

        held = sum(int(i.held) for i in members)
        bought = pyscipopt.quicksum(self.buy[i.key] for i in members if i.key in self.buy)
        self.m.addCons(held + bought - pyscipopt.quicksum(self.sell[i.key] for i in sellers) >= 1)

    def solve(self, cutoff: float | None) -> tuple[list[dict[ListingKey, int]], bool]:
        """Every solution SCIP found (rounded to whole units) and whether it proved optimality."""
        if cutoff is not None:
            self.m.setObjlimit(cutoff)
        with _stderr_silenced():
            self.m.optimize()
        status = self.m.getStatus()
        proven = status in ("optimal", "infeasible")
        found = []
        for sol in self.m.getSols():
            trades: dict[ListingKey, int] = {}
            for key, var in self.buy.items():
                trades[key] = trades.get(key, 0) + round(self.m.getSolVal(sol, var))
            for key, var in self.sell.items():
                trades[key] = trades.get(key, 0) - round(self.m.getSolVal(sol, var))
            found.append(_executed(trades))
        return found, proven


def scip_optimum(
    state: PortfolioState, policy: Policy, *, sells: bool, time_limit: float = 60.0
) -> OracleResult | None:
    """The best whole-unit trade list by SCIP, re-scored exactly; None when none is feasible."""
    started = time.perf_counter()
    spec = _spec(state, policy, sells)
    best: tuple[Fraction, int, dict[ListingKey, int]] | None = None
    proven = True

    def consider(trades: dict[ListingKey, int], lines: int | None) -> None:
        nonlocal best
        problems = _violations(spec, trades)
        if problems:
            raise OracleError(
                f"SCIP's solution {trades} breaks the constraints exactly: {'; '.join(problems)}"
            )
        if lines is not None and len(trades) != lines:
            raise OracleError(f"SCIP's solution {trades} has {len(trades)} lines, not {lines}")
        value = _score(spec, trades)
        if best is None or (value, len(trades)) < best[:2]:
            best = (value, len(trades), trades)

    if spec.budget >= 0 and not _violations(spec, {}):
        consider({}, 0)
    line_cost = (spec.penalty / spec.total) ** 2 if spec.total > 0 else Fraction(0)
    if spec.fee == 0:
        plans: list[int | None] = [None]
    else:
        plans = [k for k in range(1, len(spec.items) + 1) if spec.total - spec.fee * k > 0]
    for lines in plans:
        if best is not None and lines is not None and lines * line_cost >= best[0]:
            break  # the penalty alone already costs as much as the best list: more lines cost more
        left = time_limit - (time.perf_counter() - started)
        if left <= 0:
            proven = False
            break
        model = _Model(spec, lines, left)
        cutoff = None
        if best is not None:
            room = best[0] - (lines or 0) * line_cost if lines is not None else best[0]
            # Slightly above the best so far: near ties still come back and are compared exactly.
            cutoff = float(_PP**2 * room) * (1 + 1e-7) + 1e-9
        found, solved = model.solve(cutoff)
        proven = proven and solved
        for trades in found:
            consider(trades, lines)
    seconds = time.perf_counter() - started
    if best is None:
        return None
    value, lines, trades = best
    return OracleResult(trades=trades, objective=value, lines=lines, proven=proven, seconds=seconds)
