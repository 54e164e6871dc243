"""A household's inputs: one strategy version over several accounts of one owner.

``prepare_household`` reads, for the strategy version named by its label, every portfolio of
its scope (each must be governed by that version, all must belong to one owner, and the actor
must be allowed to use every one of them) exactly as a single recommendation reads its
portfolio (``advice.read_portfolio``: the book as of the moment, the latest good prices, the
constituents, the freeze state), adds each account's contribution, and for a general account
(GIA) the owner's tax context: the gain per unit of selling each holding now
(``engine.tax.proposals.gain_per_unit``) and the annual exempt amount left in the tax year.

Everything is kept in one *joint input snapshot* (plain JSON, hashed once), from which
``household_results.recommend_from_snapshot`` recomputes every account's recommendation with
no database and no clock: what ``runs replay`` compares for each run of a household.

The snapshot::

    {"schema": 1, "household": 1,
     "parameters": {"strategy": LABEL, "kind": ..., "as_of": ..., "contributions": {NAME: "500"}},
     "strategy": {"strategy_version_id": ..., "policy_sha256": ..., "policy": {...}},
     "engine": <engine.household.household_snapshot: what the solve reads>,
     "accounts": [{"portfolio": NAME, "portfolio_id": ..., "tax_treatment": "ISA",
                   "holdings": [...], "cash": ..., "prices": [...], "fx": [...],
                   "tax": {...} (a GIA's)}, ...]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from ..core.enums import StrategyStatus, TaskKind, TaxTreatment
from ..core.errors import ValidationError
from ..core.jsonutil import plain, sha256_of
from ..core.money import ZERO, to_decimal
from ..core.timeutil import ensure_utc, london_date, utcnow
from ..db.models import Portfolio, User
from ..engine.household import Account, household_snapshot
from ..engine.tax.proposals import TaxContext, context_to_dict, gain_per_unit, listing_key
from ..policy import Policy
from .access import require_access
from .advice import PortfolioRead, book_facts, parse_kind, read_portfolio, strategy_facts
from .strategy_versions import ApprovedStrategy, get_version, governing_version, load_version, scope_of

SNAPSHOT_SCHEMA = 1
HOUSEHOLD_SCHEMA = 1
HOUSEHOLD_KINDS = (TaskKind.MONTHLY_ALLOC, TaskKind.QUARTERLY_REBAL)


def is_household_snapshot(snapshot: Mapping[str, Any] | None) -> bool:
    """A joint input snapshot (a household's), as opposed to one portfolio's."""
    return isinstance(snapshot, Mapping) and "household" in snapshot


# --------------------------------------------------------------------------------------------
# What the user typed
# --------------------------------------------------------------------------------------------
def parse_contribution(text: str) -> tuple[str, Decimal]:
    """``"AJ Bell ISA=500"`` -> ("AJ Bell ISA", 500): the account's name, then the pounds
    arriving with this allocation (the last ``=`` divides them: a name may hold one)."""
    shown = f"--contribution {text!r}"
    name, sep, amount = str(text).rpartition("=")
    if not sep or not name.strip():
        raise ValidationError(
            f'{shown}: expected "ACCOUNT=AMOUNT", the account\'s name and the pounds it receives, '
            'e.g. "AJ Bell ISA=500"'
        )
    if not amount.strip():
        raise ValidationError(f"{shown}: no amount after '=' (the pounds {name.strip()!r} receives)")
    value = to_decimal(amount, what=f"{shown}: the amount")
    if value < ZERO:
        raise ValidationError(f"{shown}: a contribution cannot be negative")
    return name.strip(), value


def parse_contributions(texts: Sequence[str] | Mapping[str, Any] | None) -> dict[str, Decimal]:
    """Every ``NAME=AMOUNT`` (or a mapping, as a task's config holds them), each account once."""
    if texts is None:
        return {}
    if isinstance(texts, Mapping):
        pairs = [
            (str(k).strip(), to_decimal(v, what=f"contribution for {str(k).strip()!r}"))
            for k, v in texts.items()
        ]
        for name, value in pairs:
            if value < ZERO:
                raise ValidationError(f"contribution for {name!r}: a contribution cannot be negative")
    else:
        pairs = [parse_contribution(text) for text in texts]
    found: dict[str, Decimal] = {}
    for name, value in pairs:
        if name in found:
            raise ValidationError(f"--contribution: {name!r} is given twice; give each account once")
        found[name] = value
    return found


# --------------------------------------------------------------------------------------------
# The household: a strategy version's portfolios
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Household:
    """A strategy version (with its effective policy) and the portfolios it governs together."""

    strategy: ApprovedStrategy
    portfolios: tuple[Portfolio, ...]

    @property
    def label(self) -> str:
        return self.strategy.version.version_label

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.portfolios)


def household_of(session: Session, actor: User, label: str, operation: str) -> Household:
    """The approved strategy version ``label`` and the portfolios of its scope, checked: the
    version governs each of them, they are several and all of one owner, and ``actor`` may use
    every one (an ``AccessDenied`` naming the first it may not, audited)."""
    version = get_version(session, label)
    if version.status is not StrategyStatus.APPROVED:
        raise ValidationError(
            f"strategy {label!r} is {version.status.value}: only an approved strategy makes household "
            f"recommendations (`tradeassist strategy approve {label}`)"
        )
    scope = scope_of(session, version)
    for portfolio in scope:
        require_access(session, actor, portfolio, operation)
    if len(scope) < 2:
        only = f" ({scope[0].name!r})" if scope else ""
        raise ValidationError(
            f"strategy {label!r} covers one portfolio{only}: a household recommendation is for a "
            "strategy over several accounts; use `tradeassist recommend --portfolio NAME`"
        )
    owners = {p.owner_user_id for p in scope}
    if len(owners) > 1:
        names = ", ".join(repr(p.name) for p in scope)
        raise ValidationError(
            f"strategy {label!r} covers portfolios of different owners ({names}): a household "
            "recommendation is for one person's accounts, whose cash and tax allowance are theirs"
        )
    for portfolio in scope:
        assert portfolio.portfolio_id is not None  # read from the database
        governing = governing_version(session, portfolio.portfolio_id)
        if governing is None or governing.strategy_version_id != version.strategy_version_id:
            other = f"by strategy {governing.version_label!r}" if governing is not None else "by no strategy"
            raise ValidationError(
                f"portfolio {portfolio.name!r} is governed {other}, not {label!r}: a household "
                f"recommendation needs {label!r} to govern every portfolio it covers"
            )
    return Household(load_version(session, version), tuple(scope))


def contributions_for(household: Household, contributions: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """The contribution of each account of the household (£0 where none was given); a name
    that is not one of its accounts is refused, naming them."""
    unknown = [name for name in contributions if name not in household.names]
    if unknown:
        known = ", ".join(repr(n) for n in household.names)
        raise ValidationError(
            f"--contribution {unknown[0]!r}: no such account in strategy {household.label!r} "
            f"(its accounts: {known})"
        )
    return {name: contributions.get(name, ZERO) for name in household.names}


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HouseholdAccount:
    """One account of the household as read: the portfolio, what was read, its contribution."""

    portfolio_id: int
    name: str
    tax_treatment: TaxTreatment
    read: PortfolioRead
    contribution: Decimal

    @property
    def tax(self) -> TaxContext | None:
        return self.read.tax

    @property
    def listing_ids(self) -> Mapping[tuple[str, str], int]:
        return self.read.listing_ids


@dataclass(frozen=True)
class HouseholdInputs:
    """What a household recommendation is computed from; ``snapshot`` alone is enough to redo it."""

    strategy: str
    strategy_version_id: int
    kind: TaskKind
    as_of: datetime
    policy: Policy
    accounts: tuple[HouseholdAccount, ...]
    engine_accounts: tuple[Account, ...]
    gain_allowance_left: Decimal | None
    snapshot: Mapping[str, Any]

    @property
    def input_hash(self) -> str:
        return sha256_of(self.snapshot)

    def account(self, name: str) -> HouseholdAccount:
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(name)


def household_kind(kind: TaskKind | str) -> TaskKind:
    chosen = parse_kind(kind)
    if chosen not in HOUSEHOLD_KINDS:
        raise ValidationError(
            f"kind {chosen.value}: a household recommendation is a MONTHLY_ALLOC or a QUARTERLY_REBAL"
        )
    return chosen


def gains_per_unit(read: PortfolioRead, as_of: datetime) -> dict[str, Decimal]:
    """A general account's gain per unit of selling each priced holding now (none elsewhere)."""
    if read.tax is None:
        return {}
    day = london_date(as_of)
    gains: dict[str, Decimal] = {}
    for position in read.state.positions:
        if position.units <= ZERO or position.price_gbp is None:
            continue
        key = listing_key(position.ticker, position.exchange)
        gain = gain_per_unit(read.tax, key, position.price_gbp, position.units, day)
        if gain is not None:
            gains[key] = gain
    return gains


def allowance_left(accounts: Sequence[HouseholdAccount]) -> Decimal | None:
    """The owner's annual exempt amount not yet used in the tax year (not below £0), from any
    general account's tax context (they are the owner's, all general accounts together); None
    when the household has no general account."""
    for account in accounts:
        if account.tax is not None:
            return max(ZERO, account.tax.annual_exempt_amount - account.tax.net_gain_to_date)
    return None


def prepare_household(
    session: Session,
    *,
    actor: User,
    strategy: str,
    kind: TaskKind | str,
    as_of: datetime | None = None,
    contributions: Mapping[str, Any] | Sequence[str] | None = None,
) -> HouseholdInputs:
    """Read every account of strategy ``strategy``'s household as of ``as_of`` (default now)."""
    chosen = household_kind(kind)
    as_of = ensure_utc(as_of) if as_of is not None else utcnow()
    given = parse_contributions(contributions)
    household = household_of(session, actor, strategy, "compute a household recommendation")
    amounts = contributions_for(household, given)
    policy = household.strategy.policy
    accounts = []
    for portfolio in household.portfolios:
        assert portfolio.portfolio_id is not None  # read from the database
        read = read_portfolio(session, portfolio, policy, as_of, amounts[portfolio.name])
        accounts.append(
            HouseholdAccount(
                portfolio.portfolio_id,
                portfolio.name,
                TaxTreatment(portfolio.tax_treatment),
                read,
                amounts[portfolio.name],
            )
        )
    engine_accounts = tuple(
        Account(
            name=a.name,
            state=a.read.state,
            taxable=a.tax is not None,
            gain_per_unit=gains_per_unit(a.read, as_of),
        )
        for a in accounts
    )
    left = allowance_left(accounts)
    version_id = household.strategy.version.strategy_version_id
    assert version_id is not None  # read from the database
    snapshot = joint_snapshot(
        strategy=household.label,
        strategy_version_id=version_id,
        kind=chosen,
        as_of=as_of,
        policy=policy,
        accounts=accounts,
        engine_accounts=engine_accounts,
        gain_allowance_left=left,
    )
    return HouseholdInputs(
        strategy=household.label,
        strategy_version_id=version_id,
        kind=chosen,
        as_of=as_of,
        policy=policy,
        accounts=tuple(accounts),
        engine_accounts=engine_accounts,
        gain_allowance_left=left,
        snapshot=snapshot,
    )


def joint_snapshot(
    *,
    strategy: str,
    strategy_version_id: int,
    kind: TaskKind,
    as_of: datetime,
    policy: Policy,
    accounts: Sequence[HouseholdAccount],
    engine_accounts: Sequence[Account],
    gain_allowance_left: Decimal | None,
) -> dict[str, Any]:
    """The household's one input snapshot (see the module's docstring): plain JSON."""
    snapshot = {
        "schema": SNAPSHOT_SCHEMA,
        "household": HOUSEHOLD_SCHEMA,
        "parameters": {
            "strategy": strategy,
            "kind": kind.value,
            "as_of": as_of,
            "contributions": {a.name: a.contribution for a in accounts},
        },
        "strategy": strategy_facts(strategy_version_id, policy),
        "engine": household_snapshot(engine_accounts, policy, kind, gain_allowance_left=gain_allowance_left),
        "accounts": [_account_facts(a) for a in accounts],
    }
    result: dict[str, Any] = plain(snapshot)
    return result


def _account_facts(account: HouseholdAccount) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "portfolio": account.name,
        "portfolio_id": account.portfolio_id,
        "tax_treatment": account.tax_treatment.value,
        "contribution": account.contribution,
        **book_facts(account.read.book, account.read.priced),
    }
    if account.tax is not None:
        facts["tax"] = context_to_dict(account.tax)
    return facts
