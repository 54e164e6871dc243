"""The household's whole-unit problem in exact integers (``engine.household`` states the rules).

Every account's tradeable positions become items, on one money unit for the household (each
account's ``build_problem`` on the same decimal places), with the account each belongs to.
With ``F`` the fees paid (each account's fee times its lines) and ``K`` the lines:

    total after trades   T_F = total - F
    objective            J = sum_s ((V_s + c_s) / T_F - t_s)**2 + K * (P / T)**2
                           = M / (target_scale * T * T_F)**2,   M = N * T**2 + K * (ts * P * T_F)**2

as in ``engine.problem``, with ``V_s`` and ``c_s`` the combined sleeve value and net spend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from typing import NamedTuple

from ..policy import Policy
from .model import PortfolioState
from .problem import AllocationProblem, Item, build_problem, constituent_shares, money_places


class HouseholdEvaluation(NamedTuple):
    """A feasible household trade list scored exactly; ``key`` orders lists totally."""

    numerator: int  # M
    total: int  # T_F
    lines: int
    taxable_sold: int  # sell consideration in general accounts, money units
    objective: Fraction


@dataclass(frozen=True)
class HouseholdProblem:
    """The combined problem. ``base`` holds what is household-wide (sleeves, targets, combined
    values and total, penalty, turnover cap, kept sleeves, switches, lines per sleeve) and every
    account's items; the rest is per item or per account."""

    base: AllocationProblem
    account_of: tuple[int, ...]  # per item: its account
    budgets: tuple[int, ...]  # per account: cash + contribution - buffer (not below 0), money units
    fees: tuple[int, ...]  # per account: fee per executed line, money units
    taxable: tuple[bool, ...]  # per account: a general account
    gains: tuple[Fraction, ...]  # per item: the gain one unit sold realises (0 outside a GIA)
    gain_cap: Fraction | None  # most net gain the GIA sales may realise (None: no limit)

    @property
    def items(self) -> tuple[Item, ...]:
        return self.base.items

    @property
    def accounts(self) -> int:
        return len(self.budgets)

    @cached_property
    def account_items(self) -> tuple[tuple[int, ...], ...]:
        """Per account, the indices of its items."""
        owners = self.account_of
        return tuple(tuple(i for i, a in enumerate(owners) if a == which) for which in range(self.accounts))

    def total_after(self, fees_paid: int) -> int:
        return self.base.total - fees_paid

    def evaluate(self, units: Sequence[int]) -> HouseholdEvaluation | None:
        """The exact score of whole units per item, or None when it breaks a rule (the
        reference the search and its tests are held to)."""
        base = self.base
        spends = [0] * len(base.sleeves)
        spent = [0] * self.accounts
        lines = sold = taxable_sold = fees_paid = 0
        gain = Fraction(0)
        sides: dict[tuple[int, int], set[bool]] = {}
        per_group: dict[tuple[int, int], int] = {}
        for index, (item, q) in enumerate(zip(base.items, units, strict=True)):
            if q == 0:
                continue
            if not (item.min_units <= q <= item.max_buy or item.min_units <= -q <= item.max_sell):
                return None
            account = self.account_of[index]
            amount = q * item.price
            spends[item.sleeve] += amount
            spent[account] += amount + self.fees[account]
            fees_paid += self.fees[account]
            lines += 1
            if q < 0:
                sold -= amount
                if self.taxable[account]:
                    taxable_sold -= amount
                    gain -= q * self.gains[index]
            group = (account, item.sleeve)
            per_group[group] = per_group.get(group, 0) + 1
            sides.setdefault(group, set()).add(q > 0)
        if not base.switches and any(len(s) > 1 for s in sides.values()):
            return None
        if (
            base.max_lines_per_sleeve is not None
            and max(per_group.values(), default=0) > base.max_lines_per_sleeve
        ):
            return None
        if base.turnover_cap is not None and sold > base.turnover_cap:
            return None
        if self.gain_cap is not None and gain > self.gain_cap:
            return None
        if any(s > b for s, b in zip(spent, self.budgets, strict=True)):
            return None
        if any(k and v + c <= 0 for k, v, c in zip(base.keeps, base.values, spends, strict=True)):
            return None
        total = self.total_after(fees_paid)
        if total <= 0:
            return None
        numerator = self.numerator(spends, lines, total)
        objective = Fraction(numerator, (base.target_scale * base.total * total) ** 2)
        return HouseholdEvaluation(numerator, total, lines, taxable_sold, objective)

    def drift(self, spends: Sequence[int], total: int) -> int:
        """``N``: the squared drift, scaled, for net spends per sleeve and the total after fees."""
        ts = self.base.target_scale
        return sum(
            (ts * (v + c) - t * total) ** 2
            for v, c, t in zip(self.base.values, spends, self.base.targets, strict=True)
        )

    def numerator(self, spends: Sequence[int], lines: int, total: int) -> int:
        base = self.base
        return (
            self.drift(spends, total) * base.total**2
            + lines * (base.target_scale * base.penalty * total) ** 2
        )

    def split_distance(self, units: Sequence[int]) -> Fraction:
        """How far the list is from the policy's constituent split, per account and sleeve."""
        amounts = [q * item.price for q, item in zip(units, self.items, strict=True)]
        group_spend: dict[tuple[int, int], int] = {}
        for index, amount in enumerate(amounts):
            group = (self.account_of[index], self.items[index].sleeve)
            group_spend[group] = group_spend.get(group, 0) + amount
        return sum(
            (
                (a - item.share * group_spend[(self.account_of[i], item.sleeve)]) ** 2
                for i, (a, item) in enumerate(zip(amounts, self.items, strict=True))
            ),
            Fraction(0),
        )

    def order_key(self, units: Sequence[int], found: HouseholdEvaluation) -> tuple[object, ...]:
        """The total order of feasible lists: objective, less GIA selling, fewer lines, nearer
        the constituent split, then the units themselves."""
        return (found.objective, found.taxable_sold, found.lines, self.split_distance(units), tuple(units))


@dataclass(frozen=True)
class AccountInput:
    """What the problem needs of one account (already scoped to the strategy)."""

    name: str
    state: PortfolioState
    taxable: bool
    gain_per_unit: dict[str, Decimal]


def _own_policy(account: AccountInput, policy: Policy) -> Policy:
    """The policy as one account's problem reads it: its fee, no turnover cap of its own (the
    household's applies)."""
    return policy.model_copy(
        update={"fee_per_trade_base": policy.fee_for(account.name), "max_turnover": Decimal(1)}
    )


def _account_problem(account: AccountInput, policy: Policy, sells: bool, places: int) -> AllocationProblem:
    """One account's items on the household's money unit, selling only when it is not frozen."""
    own = _own_policy(account, policy)
    if account.state.frozen:
        return replace(build_problem(account.state, own, sells=False, places=places), items=())
    return build_problem(account.state, own, sells=sells, places=places)


def build_household(
    accounts: Sequence[AccountInput],
    combined: PortfolioState,
    policy: Policy,
    *,
    sells: bool,
    gain_allowance_left: Decimal | None,
) -> HouseholdProblem:
    """The household problem: ``combined`` is every account's scoped positions in one state
    (for the combined values and total), ``policy`` the scoped policy."""
    whole_policy = policy.model_copy(update={"fee_per_trade_base": Decimal(0)})
    places = max(
        money_places(combined, whole_policy),
        *(money_places(a.state, _own_policy(a, policy)) for a in accounts),
    )
    whole = build_problem(combined, whole_policy, sells=False, places=places)
    scale = whole.money_scale
    sleeve_index = {code: i for i, code in enumerate(whole.sleeves)}
    turnover_cap = whole.turnover_cap
    items: list[Item] = []
    account_of: list[int] = []
    gains: list[Fraction] = []
    budgets: list[int] = []
    fees: list[int] = []
    for a, account in enumerate(accounts):
        own = _account_problem(account, policy, sells, places)
        assert own.money_scale == scale  # every amount's places were counted above
        # An account already below its cash buffer is never taken further below it: it may
        # sell, and buy with what it sells, but need not restore the buffer to be left alone.
        budgets.append(max(own.budget, 0))
        fees.append(own.fee)
        tradeable = [p for p in account.state.positions if p.can_trade]
        groups: dict[str, list] = {}
        for p in tradeable:
            groups.setdefault(p.sleeve, []).append(p)
        shares = {
            (p.key): share
            for code, members in groups.items()
            for p, share in zip(members, constituent_shares(policy, code, members), strict=True)
        }
        for item in own.items:
            position = account.state.positions[item.position]
            max_sell = item.max_sell
            if turnover_cap is not None:
                max_sell = min(max_sell, turnover_cap // item.price)
            if max_sell < item.min_units:
                max_sell = 0
            if max_sell == 0 and item.max_buy == 0:
                continue
            items.append(
                replace(
                    item,
                    sleeve=sleeve_index[own.sleeves[item.sleeve]],
                    max_sell=max_sell,
                    share=shares[position.key],
                )
            )
            account_of.append(a)
            gain = (
                Fraction(account.gain_per_unit.get(position.label, Decimal(0)))
                if account.taxable
                else Fraction(0)
            )
            gains.append(gain * scale)
    cap = None
    if policy.cgt == "avoid_gains_over_allowance" and gain_allowance_left is not None:
        cap = max(Fraction(0), Fraction(gain_allowance_left)) * scale
        items, account_of, gains = _within_allowance(items, account_of, gains, cap)
    base = replace(whole, items=tuple(items), budget=sum(budgets), fee=min(fees, default=0))
    return HouseholdProblem(
        base=base,
        account_of=tuple(account_of),
        budgets=tuple(budgets),
        fees=tuple(fees),
        taxable=tuple(a.taxable for a in accounts),
        gains=tuple(gains),
        gain_cap=cap,
    )


def _within_allowance(
    items: list[Item], account_of: list[int], gains: list[Fraction], cap: Fraction
) -> tuple[list[Item], list[int], list[Fraction]]:
    """Each sale range shrunk to what the allowance permits, with every loss the other sales
    could realise set against it (so no feasible list is lost), and items left with nothing to
    do dropped."""
    losses = [max(Fraction(0), -g) * item.max_sell for item, g in zip(items, gains, strict=True)]
    total_loss = sum(losses, Fraction(0))
    kept: tuple[list[Item], list[int], list[Fraction]] = ([], [], [])
    for item, account, gain, loss in zip(items, account_of, gains, losses, strict=True):
        if gain > 0:
            most = int((cap + total_loss - loss) / gain)
            max_sell = min(item.max_sell, most)
            item = replace(item, max_sell=max_sell if max_sell >= item.min_units else 0)
        if item.max_sell == 0 and item.max_buy == 0:
            continue
        kept[0].append(item)
        kept[1].append(account)
        kept[2].append(gain)
    return kept
