"""One strategy across several accounts: the household recommendation.

A UK investor holds one asset allocation across a SIPP, an ISA and a general account (GIA),
but each account spends only its own cash, holds only its own constituents, and only a sale in
the GIA can cost capital gains tax. ``recommend_household`` solves one problem for all of them:

* sleeve targets apply to the combined base of every account (holdings in the strategy plus
  cash plus contributions, all accounts together);
* each account's cash plus its contribution, less the policy's cash buffer, is its own budget:
  money never moves between accounts, and a sale in one account funds buys in the same one;
* each account trades only its own positions (its constituents say what it can hold); the same
  listing in two accounts is two holdings;
* fees and the minimum trade are per line, as in the policy, with the policy's optional
  ``fee_per_trade_by_portfolio`` override per account;
* the objective is the single-portfolio one over the whole household: the squared deviation
  of the combined sleeve weights plus the per-line penalty (``engine.problem``);
* ties go to less selling in the GIA (sales in the ISA and SIPP first), then the single
  portfolio's tie-breaks; with ``"cgt": "avoid_gains_over_allowance"`` no list realises GIA
  gains beyond the owner's annual exempt amount left (a hard rule of the search).

The rules of a single account keep their meaning per account: a sleeve does not both sell and
buy in one account unless ``sell_and_buy_in_same_sleeve``, ``max_lines_per_sleeve`` counts one
account's lines, a frozen account is never traded. The turnover cap is over the household's
combined base, and a sleeve with a target that the household holds is never sold to nothing.

Pure: the same accounts, policy and kind give the same recommendations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..core.enums import TaskKind
from ..core.errors import ValidationError
from ..core.frozen import freeze
from ..policy import Policy
from .model import PortfolioState, Recommendation
from .optimizer import DEFAULT_MAX_NODES


@dataclass(frozen=True)
class Account:
    """One account of the household, as the engine sees it.

    ``gain_per_unit`` (a general account's): per ``TICKER:EXCHANGE``, the capital gain one unit
    sold now would realise (negative: a loss), from the owner's share matching.
    """

    name: str
    state: PortfolioState
    taxable: bool = False
    gain_per_unit: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValidationError("household: an account needs a name")
        object.__setattr__(self, "gain_per_unit", freeze(dict(self.gain_per_unit)))


@dataclass(frozen=True)
class HouseholdRecommendation:
    """The household's advice: one ``Recommendation`` per account, in the accounts' order (each
    with that account's lines), and the household's own headline and rationale (the combined
    allocation before and after, the money per account, the search's proof)."""

    headline: str
    rationale: Mapping[str, Any]
    accounts: tuple[str, ...]
    recommendations: tuple[Recommendation, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "rationale", freeze(self.rationale))

    def for_account(self, name: str) -> Recommendation:
        return self.recommendations[self.accounts.index(name)]


def recommend_household(
    accounts: Sequence[Account],
    policy: Policy | Mapping[str, Any] | str,
    kind: TaskKind | str,
    *,
    gain_allowance_left: Decimal | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> HouseholdRecommendation:
    """The household recommendation for these accounts (in this order) and one task kind.

    ``gain_allowance_left``: the owner's annual exempt amount not yet used in the tax year,
    read under ``"cgt": "avoid_gains_over_allowance"`` (None: no limit).
    """
    raise NotImplementedError


def household_snapshot(
    accounts: Sequence[Account],
    policy: Policy | Mapping[str, Any] | str,
    kind: TaskKind | str,
    *,
    gain_allowance_left: Decimal | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> dict[str, Any]:
    """Everything ``recommend_household`` reads, as plain JSON: the joint input snapshot."""
    raise NotImplementedError


def recommend_household_from_snapshot(data: Mapping[str, Any]) -> HouseholdRecommendation:
    """Recompute a household recommendation from its snapshot alone (equal to the original)."""
    raise NotImplementedError
