"""The household's values: an account as the engine sees it, and the household recommendation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from ..core.errors import ValidationError
from ..core.frozen import freeze
from ..core.money import ZERO
from .model import PortfolioState, Position, Recommendation


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


def tagged(position: Position, account: int) -> Position:
    """The position as one of the household's: its exchange tagged with its account, so the
    same listing in two accounts stays two holdings when the accounts are valued together."""
    return replace(position, exchange=f"{position.exchange}#{account}")


def untag(exchange: str) -> tuple[str, int]:
    """The exchange and the account of a tagged position."""
    name, _, account = exchange.rpartition("#")
    return name, int(account)


def combined(states: Sequence[PortfolioState]) -> PortfolioState:
    """Every account's positions in one state (tagged), cash and contributions summed."""
    return PortfolioState(
        cash_gbp=sum((s.cash_gbp for s in states), ZERO),
        contribution_gbp=sum((s.contribution_gbp for s in states), ZERO),
        positions=tuple(tagged(p, k) for k, state in enumerate(states) for p in state.positions),
    )
