"""Task kinds: the settings each one takes (``module_config``), and what it needs and does.

``module_config`` is validated per kind with pydantic when a task is added (unknown keys are
refused, so a typo is an error rather than a silently ignored setting) and stored in its
normalised JSON form (decimals as strings). Every kind accepts ``timeout_seconds``, the limit
on each notebook cell of its runs.

The kinds that recommend (and so may trade) are ``core.enums.TRADING_KINDS``; a
recommendation is for one portfolio, so those are the kinds that need one. The work each kind
does in its notebook is ``tradeassist.runs.kinds``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from ..core import jsonutil
from ..core.enums import TRADING_KINDS, TaskKind
from ..core.errors import ValidationError

DEFAULT_TIMEOUT_SECONDS = 600


class KindConfig(BaseModel):
    """Settings every kind accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_seconds: int = Field(default=DEFAULT_TIMEOUT_SECONDS, ge=1, le=24 * 3600)


class PriceRefreshConfig(KindConfig):
    """Download prices for the portfolio's listings (or every listing, for a GLOBAL task)."""


class ReviewConfig(KindConfig):
    """A drift check: recommends only when a band is breached."""


class MonthlyAllocConfig(KindConfig):
    """Invest the month's contribution (GBP) that arrives with the run."""

    contribution: Decimal = Field(gt=0, max_digits=18, decimal_places=2)


class QuarterlyRebalConfig(KindConfig):
    """A rebalance that trades only when a band is breached."""


Contribution = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)]


class HouseholdConfig(KindConfig):
    """A household's run (a GLOBAL task): one approved strategy version over several accounts
    of one owner, solved together (``strategy``: the version's label, which ``tasks add
    --strategy`` writes); ``contributions``: the pounds arriving with the run in each account,
    by the account's name (an account not named receives none)."""

    strategy: str = Field(min_length=1, max_length=200)
    contributions: dict[str, Contribution] = Field(default_factory=dict)


class HouseholdMonthlyConfig(HouseholdConfig):
    """A household's monthly allocation: invests the contributions, so at least one is given."""

    @model_validator(mode="after")
    def _some_money(self) -> HouseholdMonthlyConfig:
        if not any(amount > 0 for amount in self.contributions.values()):
            raise ValueError(
                "a household's MONTHLY_ALLOC invests its contributions: give at least one, e.g. "
                '{"contributions": {"AJ Bell ISA": "500"}}'
            )
        return self


HOUSEHOLD_CONFIGS: dict[TaskKind, type[HouseholdConfig]] = {
    TaskKind.MONTHLY_ALLOC: HouseholdMonthlyConfig,
    TaskKind.QUARTERLY_REBAL: HouseholdConfig,
}


def is_household(config: KindConfig | Mapping[str, Any] | None) -> bool:
    """A household task's settings (they name a strategy), parsed or as stored."""
    if isinstance(config, HouseholdConfig):
        return True
    return isinstance(config, Mapping) and "strategy" in config


class AlertOnlyConfig(KindConfig):
    """Raise alerts for stale or missing prices; never recommends."""

    max_age_business_days: int | None = Field(default=None, ge=0, le=60)


@dataclass(frozen=True)
class KindSpec:
    kind: TaskKind
    config_model: type[KindConfig]

    @property
    def recommends(self) -> bool:
        """Produces a recommendation (a frozen portfolio stops it: a FROZEN run)."""
        return self.kind in TRADING_KINDS

    @property
    def needs_portfolio(self) -> bool:
        """A PORTFOLIO task only: a recommendation is for one portfolio."""
        return self.recommends


SPECS: dict[TaskKind, KindSpec] = {
    TaskKind.PRICE_REFRESH: KindSpec(TaskKind.PRICE_REFRESH, PriceRefreshConfig),
    TaskKind.WEEKLY_REVIEW: KindSpec(TaskKind.WEEKLY_REVIEW, ReviewConfig),
    TaskKind.MONTHLY_ALLOC: KindSpec(TaskKind.MONTHLY_ALLOC, MonthlyAllocConfig),
    TaskKind.QUARTERLY_REBAL: KindSpec(TaskKind.QUARTERLY_REBAL, QuarterlyRebalConfig),
    TaskKind.ALERT_ONLY: KindSpec(TaskKind.ALERT_ONLY, AlertOnlyConfig),
}


def parse_kind(value: TaskKind | str) -> TaskKind:
    try:
        return TaskKind(str(value).strip().upper())
    except ValueError:
        known = ", ".join(k.value for k in TaskKind)
        raise ValidationError(f"task kind {value!r}: expected one of {known}") from None


def spec(kind: TaskKind | str) -> KindSpec:
    return SPECS[parse_kind(kind)]


def parse_raw(raw: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """A module_config as a dict, from a dict or JSON text (``--config``)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raw = {}
    if isinstance(raw, str):
        try:
            raw = jsonutil.loads_decimal(raw)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"--config: not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(raw, Mapping):
        raise ValidationError("module_config: expected a JSON object")
    return dict(raw)


def parse_config(kind: TaskKind | str, raw: Mapping[str, Any] | str | None) -> KindConfig:
    """The kind's settings from a dict or JSON text (``--config``), or a ``ValidationError``
    naming every bad key."""
    chosen = spec(kind)
    raw = parse_raw(raw)
    model: type[KindConfig] = chosen.config_model
    if "strategy" in raw:
        if chosen.kind not in HOUSEHOLD_CONFIGS:
            raise ValidationError(
                f"module_config for {chosen.kind.value}: a strategy's household task is a "
                "MONTHLY_ALLOC or a QUARTERLY_REBAL"
            )
        model = HOUSEHOLD_CONFIGS[chosen.kind]
    try:
        return model.model_validate(dict(raw))
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise ValidationError(f"module_config for {chosen.kind.value}: {problems}") from None


def config_json(config: KindConfig) -> dict[str, Any]:
    """The stored form: defaults left out, decimals as exact strings."""
    stored: dict[str, Any] = json.loads(jsonutil.dumps(config.model_dump(exclude_defaults=True)))
    return stored


def validate_config(kind: TaskKind | str, raw: Mapping[str, Any] | str | None) -> dict[str, Any]:
    return config_json(parse_config(kind, raw))
