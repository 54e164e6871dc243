"""The household recommendation against an independent exact oracle (SCIP), exactly.

First the oracle itself (``tests/support/household_oracle.py``) is checked against brute force:
tiny households (two accounts, two to four dear listings, a few units each) where every whole-unit
trade vector is enumerated and scored by the specification's own exact code. Then a one-account
household must give the single-portfolio oracle's optimum (``tests/support/miqp_oracle.py``,
unchanged), so the two oracles agree where their problems coincide.

Then seeded random households of two or three accounts (SIPP, ISA, GIA) and 4-12 listings in
all: a listing held in two accounts, an account without a listing in some sleeve, sometimes a
targeted sleeve no account can hold (its target shared out), a GIA with gains and losses per
unit, fees with a per-portfolio override, buffers, contributions, sells on or off, the CGT rule
on in some, now and then a frozen account. For each, ``recommend_household``'s executed lines
must break no rule of the specification; where the engine claims a proof, their exact objective
must equal the objective of SCIP's optimum (SCIP's solution re-scored exactly); where it stops
at its node limit, it must say so, its lower bound must not exceed SCIP's optimum, and its list
must be within one part in a billion of SCIP's optimum. The
oracle never reads the engine's problem, search or household code.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction

import pytest

pytest.importorskip("pyscipopt")

from tests.support.household_oracle import (
    _score,
    _spec,
    _violations,
    exact_objective,
    household_trades,
    scip_household_optimum,
    violations,
)
from tests.support.miqp_oracle import scip_optimum
from tradeassist.engine.household import Account, recommend_household
from tradeassist.engine.model import PortfolioState, Position
from tradeassist.policy import Policy, parse_policy

TINY_CASES = 24
CASES = 36
SINGLE_CASES = 6
SCIP_SECONDS = 20.0
# The engine's node limit here: every case it proves needs fewer than 20,000 nodes; a case that
# reaches the limit is checked for its bound only, and there more nodes only cost time (about
# five seconds per 100,000), which would take the file past a minute.
ENGINE_NODES = 30_000
UNPROVEN_GAP = Fraction(1, 10**9)  # an unproven list's largest excess over SCIP's optimum, relative
NAMES = ("SIPP", "ISA", "GIA")


@dataclass(frozen=True)
class Case:
    label: str
    accounts: tuple[Account, ...]
    policy: Policy
    kind: str
    allowance: Decimal | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def sells(self) -> bool:
        return self.policy.sells_allowed(self.kind)

    def describe(self) -> str:
        p = self.policy
        rules = {
            "kind": self.kind,
            "sells": self.sells,
            "fee": str(p.fee_per_trade_base),
            "fee_by_portfolio": {k: str(v) for k, v in p.fee_per_trade_by_portfolio.items()},
            "min_trade": str(p.min_trade_base),
            "buffer": str(p.cash_buffer_base),
            "line_penalty": str(p.line_penalty),
            "never_sell": list(p.never_sell),
            "never_buy": list(p.never_buy),
            "max_trade": None if p.max_trade_base is None else str(p.max_trade_base),
            "max_turnover": str(p.max_turnover),
            "switches": p.sell_and_buy_in_same_sleeve,
            "max_lines_per_sleeve": p.max_lines_per_sleeve,
            "cgt": p.cgt,
            "allowance_left": None if self.allowance is None else str(self.allowance),
            "targets": {k: str(v) for k, v in p.sleeve_targets.items()},
        }
        accounts = []
        for a in self.accounts:
            s = a.state
            positions = [
                f"{x.ticker}/{x.sleeve} {x.units}u @{x.price_gbp}"
                + (f" gain {a.gain_per_unit[x.label]}" if x.label in a.gain_per_unit else "")
                for x in s.positions
            ]
            accounts.append(
                f"{a.name}{' (taxable)' if a.taxable else ''}{' FROZEN' if s.frozen else ''}: "
                f"cash={s.cash_gbp} contribution={s.contribution_gbp} {positions}"
            )
        notes = f" [{', '.join(self.notes)}]" if self.notes else ""
        return f"case {self.label}{notes}: {rules}; " + "; ".join(accounts)


def _targets(rng: random.Random, sleeves: list[str]) -> dict[str, str]:
    cuts = sorted(rng.sample(range(1, 100), len(sleeves) - 1))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
    return {s: str(Decimal(p) / 100) for s, p in zip(sleeves, parts, strict=True)}


def _gain(rng: random.Random, price: Decimal) -> Decimal:
    """A gain per unit between a 30% loss and a 60% gain of the price, in pence."""
    return (price * Decimal(rng.uniform(-0.3, 0.6))).quantize(Decimal("0.01"))


def _account(name: str, cash: Decimal, contribution: Decimal, positions: list[Position], **kw) -> Account:
    taxable = name == "GIA"
    gains = kw.pop("gains", {})
    state = PortfolioState(
        cash_gbp=cash,
        contribution_gbp=contribution,
        positions=tuple(positions),
        frozen=kw.pop("frozen", False),
    )
    return Account(name=name, state=state, taxable=taxable, gain_per_unit=gains if taxable else {})


def make_tiny_case(seed: int) -> Case:
    """Two accounts, 2-4 dear listings (one may be in both), a few units: small enough to enumerate."""
    rng = random.Random(20_000 + seed)
    names = rng.sample(NAMES, 2) if seed % 3 else ["ISA", "GIA"]
    sleeves = ["S0", "S1", "S2"][: rng.randint(2, 3)]
    notes = []
    unheld = None
    if len(sleeves) == 3 and rng.random() < 0.3:
        unheld = sleeves[2]  # targeted, but no account has a listing in it
        notes.append(f"{unheld} not held anywhere")
    holdable = [s for s in sleeves if s != unheld]
    count = rng.choice((2, 3, 3, 4, 4))
    listings = [
        (
            f"T{i}",
            holdable[i] if i < len(holdable) else rng.choice(holdable),
            Decimal(rng.randint(15000, 90000)) / 100,
        )
        for i in range(count)
    ]
    shared = rng.random() < 0.5
    where = [rng.randrange(2) for _ in listings]
    per_account: list[list[Position]] = [[], []]
    for (ticker, sleeve, price), a in zip(listings, where, strict=True):
        homes = (0, 1) if shared and ticker == "T0" else (a,)
        for home in homes:
            units = Decimal(rng.choice((0, 1, 2, 3, 5)))
            if units and rng.random() < 0.15:
                units += Decimal("0.5")
            per_account[home].append(Position(ticker, "LSE", sleeve, units, price))
    if shared:
        notes.append("T0 in both accounts")
    kind = rng.choice(("MONTHLY_ALLOC", "QUARTERLY_REBAL"))
    policy: dict = {
        "sleeve_targets": _targets(rng, sleeves),
        "drift_bands": {"absolute": "0", "relative": "0"},
        "min_trade_base": rng.choice(("0", "200", "400")),
        "fee_per_trade_base": rng.choice(("0", "5", "9.95")),
        "cash_buffer_base": rng.choice(("0", "50")),
        "sell_and_buy_in_same_sleeve": rng.random() < 0.5,
        "line_penalty_base": rng.choice(("0", "25", "150", "400")),
        "max_turnover": rng.choice(("0.1", "0.25", "1")),
        "allow_sells": {"MONTHLY_ALLOC": rng.random() < 0.2, "QUARTERLY_REBAL": rng.random() < 0.85},
    }
    if rng.random() < 0.5:
        policy["fee_per_trade_by_portfolio"] = {rng.choice(names): rng.choice(("0", "2.50", "12"))}
    if rng.random() < 0.3:
        policy["max_lines_per_sleeve"] = 1
    if rng.random() < 0.25:
        policy["never_sell"] = [rng.choice((rng.choice(holdable), "T1:LSE"))]
    if rng.random() < 0.25:
        policy["never_buy"] = [rng.choice((rng.choice(holdable), "T0"))]
    if rng.random() < 0.3:
        policy["max_trade_base"] = rng.choice(("500", "1200"))
    allowance = None
    if "GIA" in names and rng.random() < 0.6:
        policy["cgt"] = "avoid_gains_over_allowance"
        allowance = Decimal(rng.choice(("0", "40", "150")))
    frozen = rng.random() < 0.1
    if frozen:
        notes.append(f"{names[1]} frozen")
    accounts = []
    for a, name in enumerate(names):
        cash = Decimal(rng.randint(0, 200000)) / 100
        buffer = Decimal(policy["cash_buffer_base"])
        if frozen and a == 1:
            cash = max(cash, buffer)
        accounts.append(
            _account(
                name,
                cash,
                Decimal(rng.choice((0, 0, 300))),
                per_account[a],
                gains={p.label: _gain(rng, p.price_gbp) for p in per_account[a] if p.price_gbp},
                frozen=frozen and a == 1,
            )
        )
    return Case(f"tiny seed {seed}", tuple(accounts), parse_policy(policy), kind, allowance, tuple(notes))


def make_case(seed: int) -> Case:
    """Two or three accounts, 4-12 listings in all, at least one held in two accounts."""
    rng = random.Random(seed)
    names = list(NAMES) if rng.random() < 0.6 else rng.sample(NAMES, 2)
    kind = rng.choice(("MONTHLY_ALLOC", "QUARTERLY_REBAL"))
    sells = kind == "QUARTERLY_REBAL" or rng.random() < 0.15
    sleeve_count = rng.randint(2, 5)
    sleeves = [f"S{i}" for i in range(sleeve_count)]
    notes = []
    unheld = None
    if sleeve_count >= 3 and rng.random() < 0.2:
        unheld = sleeves[-1]
        notes.append(f"{unheld} not held anywhere")
    holdable = [s for s in sleeves if s != unheld]
    # Rebalances that may sell are the hard case: keep them smaller.
    total_listings = rng.randint(4, 8 if sells else 12)
    shared_count = 1 if total_listings < 8 else rng.randint(1, 2)
    distinct = total_listings - shared_count
    listings = []
    for i in range(distinct):
        sleeve = holdable[i] if i < len(holdable) else rng.choice(holdable)
        if rng.random() < 0.3:  # a GBX quote: 40p to £9.99, four decimals of a pound
            price = Decimal(rng.randint(4000, 99999)) / 10**4
        else:
            places = rng.choice((2, 3))
            price = Decimal(rng.randint(20 * 10**places, 600 * 10**places)) / 10**places
        listings.append((f"T{i:02d}", sleeve, price))
    # Each listing has a home; the first ``shared_count`` are also in a second account.
    homes = [[rng.randrange(len(names))] for _ in listings]
    for i in range(shared_count):
        homes[i].append(rng.choice([a for a in range(len(names)) if a != homes[i][0]]))
        notes.append(f"{listings[i][0]} in {names[homes[i][0]]} and {names[homes[i][1]]}")
    per_account: list[list[Position]] = [[] for _ in names]
    for (ticker, sleeve, price), where in zip(listings, homes, strict=True):
        for a in where:
            held = rng.random() < 0.65
            units = Decimal(rng.randint(1, max(1, int(2500 / price) + 1))) if held else Decimal(0)
            if held and rng.random() < 0.1:
                units += Decimal(rng.choice(("0.5", "0.25")))
            per_account[a].append(Position(ticker, "LSE", sleeve, units, price))
    for a, name in enumerate(names):
        missing = sorted(set(holdable) - {p.sleeve for p in per_account[a]})
        if missing:
            notes.append(f"{name} cannot hold {','.join(missing)}")
    fee = rng.choice(("0", "1.50", "3.99", "9.95"))
    policy: dict = {
        "sleeve_targets": _targets(rng, sleeves),
        "drift_bands": {"absolute": "0", "relative": "0"},
        "min_trade_base": rng.choice(("0", "25", "50", "100")),
        "fee_per_trade_base": fee,
        "cash_buffer_base": rng.choice(("0", "20", "50")),
        "sell_and_buy_in_same_sleeve": rng.random() < 0.5,
        "allow_sells": {kind: sells},
    }
    if rng.random() < 0.6:
        override = rng.choice(names)
        policy["fee_per_trade_by_portfolio"] = {override: rng.choice(("0", "2.95", "5.95"))}
    if rng.random() < (0.7 if sells else 0.3):
        policy["max_lines_per_sleeve"] = rng.choice((1, 1, 2))
    penalty = rng.choice((None, None, "0", "40"))
    if penalty is not None:
        policy["line_penalty_base"] = penalty
    turnover = rng.choice((None, "0.05", "0.1", "1"))
    if turnover is not None:
        policy["max_turnover"] = turnover
    if rng.random() < 0.25:
        policy["never_sell"] = [rng.choice((rng.choice(holdable), f"T{rng.randrange(distinct):02d}:LSE"))]
    if rng.random() < 0.25:
        policy["never_buy"] = [rng.choice((rng.choice(holdable), f"T{rng.randrange(distinct):02d}"))]
    if rng.random() < 0.25:
        policy["max_trade_base"] = rng.choice(("300", "750", "1500"))
    allowance = None
    if "GIA" in names and sells and rng.random() < 0.6:
        policy["cgt"] = "avoid_gains_over_allowance"
        allowance = Decimal(rng.choice(("0", "25", "100", "400")))
    buffer = Decimal(policy["cash_buffer_base"])
    accounts = []
    for a, name in enumerate(names):
        cash = max(buffer, Decimal(rng.randint(0, 300000)) / 100)
        contribution = Decimal(rng.choice((0, 0, 250, 500, 1000))) if kind == "MONTHLY_ALLOC" else Decimal(0)
        gains = {p.label: _gain(rng, p.price_gbp) for p in per_account[a] if p.price_gbp}
        accounts.append(_account(name, cash, contribution, per_account[a], gains=gains))
    if len(names) == 3 and rng.random() < 0.15:  # drawn last: the other seeds' cases stay as they were
        a = rng.randrange(3)
        frozen = accounts[a]
        accounts[a] = Account(
            frozen.name, replace(frozen.state, frozen=True), frozen.taxable, frozen.gain_per_unit
        )
        notes.append(f"{frozen.name} frozen")
    return Case(f"seed {seed}", tuple(accounts), parse_policy(policy), kind, allowance, tuple(notes))


# Rules random tiny cases rarely make bind, each in a household small enough to enumerate.
def _named(name: str) -> Case:
    a = Position("A", "LSE", "S0", Decimal(4), Decimal("300"))
    b = Position("B", "LSE", "S1", Decimal(3), Decimal("250"))
    base = {
        "sleeve_targets": {"S0": "0.5", "S1": "0.5"},
        "drift_bands": {"absolute": "0", "relative": "0"},
        "min_trade_base": "0",
        "fee_per_trade_base": "0",
        "cash_buffer_base": "0",
        "line_penalty_base": "0",
        "max_turnover": "1",
        "allow_sells": {"QUARTERLY_REBAL": True},
    }
    gains = {"A:LSE": Decimal("120"), "B:LSE": Decimal("-10")}
    if name == "sell_in_gia_buy_in_isa":
        # S0 is over target in the GIA; the ISA has the cash and only S1: selling S0 in one
        # account and buying S1 in the other is allowed (no switch within one account).
        policy = {**base, "sell_and_buy_in_same_sleeve": False}
        accounts = (
            _account("GIA", Decimal(0), Decimal(0), [Position("A", "LSE", "S0", Decimal(8), Decimal("300"))]),
            _account("ISA", Decimal(600), Decimal(0), [b]),
        )
        return Case(name, accounts, parse_policy(policy), "QUARTERLY_REBAL")
    if name == "cgt_allowance_binds":
        # Selling A in the GIA realises £120 a unit; £150 left allows one unit only.
        policy = {**base, "cgt": "avoid_gains_over_allowance"}
        accounts = (
            _account("GIA", Decimal(0), Decimal(0), [replace_units(a, 8)], gains=gains),
            _account("SIPP", Decimal(0), Decimal(0), [b]),
        )
        return Case(name, accounts, parse_policy(policy), "QUARTERLY_REBAL", Decimal(150))
    if name == "per_account_budget":
        # All the cash is in the SIPP, which holds only S0: the ISA cannot buy S1 with it.
        accounts = (
            _account("SIPP", Decimal(1500), Decimal(0), [a]),
            _account("ISA", Decimal(0), Decimal(0), [b]),
        )
        return Case(name, accounts, parse_policy({**base, "allow_sells": {}}), "MONTHLY_ALLOC")
    if name == "fee_override":
        # The same listing in both accounts, bought at £1 a line in the SIPP and £20 in the ISA.
        policy = {**base, "fee_per_trade_base": "1", "fee_per_trade_by_portfolio": {"ISA": "20"}}
        accounts = (
            _account("ISA", Decimal(800), Decimal(0), [b]),
            _account("SIPP", Decimal(800), Decimal(0), [a, replace_units(b, 0)]),
        )
        return Case(name, accounts, parse_policy({**policy, "allow_sells": {}}), "MONTHLY_ALLOC")
    if name == "kept_sleeve_across_accounts":
        # S1 (target 1%) is held in both accounts: selling every unit is closest to target,
        # but the household keeps one unit of it somewhere.
        policy = {**base, "sleeve_targets": {"S0": "0.99", "S1": "0.01"}}
        accounts = (
            _account("ISA", Decimal(0), Decimal(0), [replace_units(a, 1), replace_units(b, 2)]),
            _account("SIPP", Decimal(0), Decimal(0), [replace_units(b, 2)]),
        )
        return Case(name, accounts, parse_policy(policy), "QUARTERLY_REBAL")
    if name == "lines_per_sleeve_per_account":
        # Two listings of S1 in one account, one line per sleeve in each account.
        c = Position("C", "LSE", "S1", Decimal(0), Decimal("110"))
        policy = {**base, "max_lines_per_sleeve": 1, "fee_per_trade_base": "2", "allow_sells": {}}
        accounts = (
            _account("ISA", Decimal(700), Decimal(0), [replace_units(b, 0), c]),
            _account("SIPP", Decimal(300), Decimal(0), [a, replace_units(c, 1)]),
        )
        return Case(name, accounts, parse_policy(policy), "MONTHLY_ALLOC")
    raise KeyError(name)


def replace_units(position: Position, units: int) -> Position:
    return Position(position.ticker, position.exchange, position.sleeve, Decimal(units), position.price_gbp)


NAMED = (
    "sell_in_gia_buy_in_isa",
    "cgt_allowance_binds",
    "per_account_budget",
    "fee_override",
    "kept_sleeve_across_accounts",
    "lines_per_sleeve_per_account",
)


def _case(name: str, tiny: bool) -> Case:
    if name in NAMED:
        return _named(name)
    return make_tiny_case(int(name)) if tiny else make_case(int(name))


def enumerated_optimum(case: Case) -> tuple[Fraction, dict] | None:
    """The least J over every whole-unit trade vector, by brute force.

    Per account, every vector of its listings with units from -floor(held) to what all its
    money and holdings could buy, each line within its own size rules (minimum and maximum
    trade, never_buy / never_sell, sells allowed) and the vector within the account's money
    (fees included); then every combination of the accounts' vectors, checked and scored by the
    specification's exact code.
    """
    spec = _spec(case.accounts, case.policy, case.sells, case.allowance)
    fees = spec.fees
    items = {(item.account, item.key): item for item in spec.items}

    def allowed(a: int, p: Position, q: int) -> bool:
        item = items.get((a, p.key))
        if q == 0:
            return True
        if item is None or abs(q) < item.min_units:
            return False
        if item.max_units is not None and abs(q) > item.max_units:
            return False
        return item.may_buy if q > 0 else -q <= item.max_sell

    choices = []
    for a, account in enumerate(case.accounts):
        state = account.state
        if state.frozen:
            choices.append([{}])
            continue
        positions = [p for p in state.positions if p.price_gbp is not None]
        budget = spec.budgets[a]
        raise_all = sum((math.floor(p.units) * Fraction(p.price_gbp) for p in positions), Fraction(0))
        ranges = []
        for p in positions:
            price = Fraction(p.price_gbp)
            most = max(0, math.floor((budget + raise_all) / price))
            ranges.append([q for q in range(-math.floor(p.units), most + 1) if allowed(a, p, q)])
        vectors = []
        for units in itertools.product(*ranges):
            spend = sum(
                (q * Fraction(p.price_gbp) for q, p in zip(units, positions, strict=True)), Fraction(0)
            )
            lines = sum(1 for q in units if q)
            if spend + fees[a] * lines <= budget:
                vectors.append({p.key: q for q, p in zip(units, positions, strict=True) if q})
        choices.append(vectors)
    best = None
    for combo in itertools.product(*choices):
        trades = {account.name: lines for account, lines in zip(case.accounts, combo, strict=True)}
        if _violations(spec, trades):
            continue
        value = _score(spec, trades)
        if best is None or value < best[0]:
            best = (value, trades)
    return best


@pytest.mark.parametrize("name", [*map(str, range(TINY_CASES)), *NAMED])
def test_oracle_matches_enumeration(name: str) -> None:
    case = _case(name, tiny=True)
    where = case.describe()
    oracle = scip_household_optimum(
        case.accounts,
        case.policy,
        sells=case.sells,
        gain_allowance_left=case.allowance,
        time_limit=SCIP_SECONDS,
    )
    best = enumerated_optimum(case)
    assert (oracle is None) == (best is None), f"oracle {oracle}, enumeration {best}; {where}"
    if oracle is not None:
        assert best is not None
        assert oracle.proven, where
        assert oracle.objective == best[0], (
            f"SCIP {oracle.trades} J = {oracle.objective}, enumeration {best[1]} J = {best[0]}; {where}"
        )
        assert not violations(
            case.accounts, case.policy, oracle.trades, sells=case.sells, gain_allowance_left=case.allowance
        )


def test_named_cases_bind_their_rule() -> None:
    """Each named case's rule changes the answer: without it, the optimum is better."""
    case = _named("cgt_allowance_binds")
    free = scip_household_optimum(case.accounts, case.policy, sells=True, gain_allowance_left=None)
    held = scip_household_optimum(case.accounts, case.policy, sells=True, gain_allowance_left=case.allowance)
    assert free is not None and held is not None
    assert free.objective < held.objective
    assert held.trades["GIA"] == {("A", "LSE"): -1}
    case = _named("sell_in_gia_buy_in_isa")
    result = scip_household_optimum(case.accounts, case.policy, sells=True)
    assert result is not None
    assert result.trades["GIA"][("A", "LSE")] < 0 < result.trades["ISA"][("B", "LSE")]


def _single_cases() -> list[int]:
    """Seeds of the single-portfolio tiny cases where scope would change nothing: every held
    sleeve targeted, every targeted sleeve held or tradeable (the single oracle reads a scoped
    state, the household oracle scopes its own)."""
    from tests.test_engine_vs_scip import make_tiny_case as single_case

    seeds = []
    for seed in range(100):
        case = single_case(seed)
        targeted = set(case.policy.sleeve_targets)
        valued = {p.sleeve for p in case.state.positions if p.valued and p.units > 0}
        trades = {p.sleeve for p in case.state.positions if p.can_trade}
        if valued <= targeted and targeted <= valued | trades:
            seeds.append(seed)
        if len(seeds) == SINGLE_CASES:
            break
    return seeds


@pytest.mark.parametrize("seed", _single_cases())
def test_one_account_household_is_the_single_problem(seed: int) -> None:
    """With one account, the household oracle and the single-portfolio oracle agree exactly."""
    from tests.test_engine_vs_scip import make_tiny_case as single_case

    case = single_case(seed)
    single = scip_optimum(case.state, case.policy, sells=case.sells, time_limit=SCIP_SECONDS)
    household = scip_household_optimum(
        [Account("ISA", case.state)], case.policy, sells=case.sells, time_limit=SCIP_SECONDS
    )
    assert (single is None) == (household is None), case.describe()
    if single is not None:
        assert household is not None and single.proven and household.proven
        assert household.objective == single.objective, case.describe()


@pytest.mark.parametrize("name", [*map(str, range(CASES)), *NAMED])
def test_engine_matches_scip(name: str) -> None:
    case = _case(name, tiny=False)
    where = case.describe()
    oracle = scip_household_optimum(
        case.accounts,
        case.policy,
        sells=case.sells,
        gain_allowance_left=case.allowance,
        time_limit=SCIP_SECONDS,
    )
    reco = recommend_household(
        case.accounts, case.policy, case.kind, gain_allowance_left=case.allowance, max_nodes=ENGINE_NODES
    )
    assert reco.accounts == tuple(a.name for a in case.accounts), where
    trades = household_trades(reco)
    proven = reco.rationale.get("proven_optimal")
    if oracle is None:
        assert not any(trades.values()), f"SCIP finds no feasible list, the engine trades {trades}; {where}"
        return
    assert oracle.proven, f"SCIP did not prove its optimum within {SCIP_SECONDS}s; {where}"
    broken = violations(
        case.accounts, case.policy, trades, sells=case.sells, gain_allowance_left=case.allowance
    )
    assert not broken, f"the engine's list {trades} breaks: {'; '.join(broken)}; {where}"
    ours = exact_objective(case.accounts, case.policy, trades, gain_allowance_left=case.allowance)
    if ours < oracle.objective:
        pytest.fail(
            f"SCIP reported optimal but the engine's list is better: engine {trades} J = {ours} "
            f"({float(ours):.12g}), SCIP {oracle.trades} J = {oracle.objective} "
            f"({float(oracle.objective):.12g}): tighten SCIP's tolerances; {where}"
        )
    if not proven:
        # Not proven within the node limit (issue 19's open part): the engine must say so, its
        # reported lower bound must still be a true bound, at or below SCIP's optimum, and its
        # list (the search's best, polished by the moves of ``household_primal``) must be SCIP's
        # optimum to within UNPROVEN_GAP: of the 42 cases, 8 are not proven, 7 of those equal
        # SCIP exactly and one (seed 16) is 5.4e-10 above it, in the last pennies of idle cash.
        bound = Fraction(str(reco.rationale["lower_bound"]))
        assert bound <= oracle.objective + Fraction(1, 10**12), (
            f"the engine's lower bound {bound} is above SCIP's optimum {oracle.objective}; {where}"
        )
        assert ours <= oracle.objective * (1 + UNPROVEN_GAP), (
            f"the engine's unproven list is {float(ours / oracle.objective - 1):.2e} above SCIP's optimum:"
            f" engine {trades} J = {float(ours):.12g},"
            f" SCIP {oracle.trades} J = {float(oracle.objective):.12g}; {where}"
        )
        return
    assert ours == oracle.objective, (
        f"the engine's list is worse (engine proven_optimal={proven}): engine {trades} "
        f"J = {ours} ({float(ours):.12g}, {sum(map(len, trades.values()))} lines), SCIP {oracle.trades} "
        f"J = {oracle.objective} ({float(oracle.objective):.12g}, {oracle.lines} lines); {where}"
    )
