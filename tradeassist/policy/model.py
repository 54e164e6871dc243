"""The policy's schema: exact decimals, sleeve codes and listing keys, and the ``Policy`` model
with its validators (see the package docstring for the rules and the canonical form)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    model_validator,
)

from ..core.enums import TRADING_KINDS, TaskKind
from ..core.errors import ValidationError
from ..core.frozen import FrozenDict
from ..core.money import CONTEXT, ONE, ZERO, decimal_str, to_decimal

SCHEMA_VERSION: Final = 1

SLEEVE_CODE = re.compile(r"[A-Z][A-Z0-9_]*")
# "TICKER:EXCHANGE", e.g. "VWRP:LSE", "BRK.B:XNYS": the listing key used inside a sleeve.
LISTING_KEY = re.compile(r"[A-Z0-9][A-Z0-9._\-]*:[A-Z0-9][A-Z0-9_]*")


def _exact_decimal(value: object) -> Decimal:
    """Strings, ints and Decimals only: a float has already lost the number it meant."""
    if isinstance(value, float):
        raise ValueError('floats are not accepted; write the number as a string (e.g. "0.05")')
    try:
        return to_decimal(value, what="number")
    except ValidationError as exc:
        raise ValueError(str(exc).removeprefix("number: ")) from None


def _non_negative(value: Decimal) -> Decimal:
    if value < ZERO:
        raise ValueError(f"must not be negative (got {decimal_str(value)})")
    return value


def _normalised(value: Decimal) -> str:
    """The one spelling of a number in the canonical form: "0.70" -> "0.7", "1E+2" -> "100"."""
    return decimal_str(value.normalize(CONTEXT)) or "0"


def _exact_sum(values: Iterable[Decimal]) -> Decimal:
    total = ZERO
    for value in values:
        total = CONTEXT.add(total, value)  # 50 digits: a long target cannot round to 1
    return total


def _freeze(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return FrozenDict(mapping)


ExactDecimal = Annotated[Decimal, BeforeValidator(_exact_decimal), PlainSerializer(_normalised)]
NonNegativeDecimal = Annotated[ExactDecimal, AfterValidator(_non_negative)]


def _positive(value: Decimal) -> Decimal:
    if value <= ZERO:
        raise ValueError(f"must be positive (got {decimal_str(value)})")
    return value


def _fraction_of_one(value: Decimal) -> Decimal:
    if value < ZERO or value > ONE:
        raise ValueError(f"must lie between 0 and 1 (got {decimal_str(value)})")
    return value


PositiveDecimal = Annotated[ExactDecimal, AfterValidator(_positive)]
FractionOfOne = Annotated[ExactDecimal, AfterValidator(_fraction_of_one)]


def check_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """Sleeve codes or TICKER:EXCHANGE keys, upper-cased, without repeats, sorted."""
    cleaned = set()
    for name in names:
        value = name.strip().upper()
        if not (SLEEVE_CODE.fullmatch(value) or LISTING_KEY.fullmatch(value)):
            raise ValueError(f"{name!r}: name a sleeve code (e.g. GILTS) or a listing as TICKER:EXCHANGE")
        cleaned.add(value)
    return tuple(sorted(cleaned))


def _check_sleeve_targets(targets: Mapping[str, Decimal]) -> Mapping[str, Decimal]:
    if not targets:
        raise ValueError("at least one sleeve is needed")
    for code, weight in targets.items():
        if not SLEEVE_CODE.fullmatch(code):
            raise ValueError(f"{code!r}: a sleeve code is upper case letters, digits and _ (e.g. CORE)")
        if weight < ZERO or weight > ONE:
            raise ValueError(f"{code}: a target must lie between 0 and 1 (got {decimal_str(weight)})")
    total = _exact_sum(targets.values())
    if total != ONE:
        raise ValueError(f"must sum to exactly 1 (got {decimal_str(total)})")
    return _freeze(targets)


def _check_split(split: Mapping[str, Mapping[str, Decimal]]) -> Mapping[str, Mapping[str, Decimal]]:
    frozen: dict[str, Mapping[str, Decimal]] = {}
    for sleeve, weights in split.items():
        if not SLEEVE_CODE.fullmatch(sleeve):
            raise ValueError(f"{sleeve!r}: a sleeve code is upper case letters, digits and _ (e.g. CORE)")
        if not weights:
            raise ValueError(f"{sleeve}: name at least one listing, or leave the sleeve out")
        for key, weight in weights.items():
            if not LISTING_KEY.fullmatch(key):
                raise ValueError(f"{sleeve}: {key!r}: a listing is written TICKER:EXCHANGE (e.g. VWRP:LSE)")
            if weight < ZERO:
                raise ValueError(f"{sleeve}: {key}: a weight must not be negative")
        total = _exact_sum(weights.values())
        if total != ONE:
            raise ValueError(f"{sleeve}: weights must sum to exactly 1 (got {decimal_str(total)})")
        frozen[sleeve] = _freeze(weights)
    return _freeze(frozen)


def _check_allow_sells(allow: Mapping[str, bool]) -> Mapping[str, bool]:
    for kind in allow:
        if kind not in TRADING_KINDS:
            raise ValueError(f"{kind!r}: only {', '.join(TRADING_KINDS)} trade")
    # Fill the kinds left out so the canonical form (and its hash) states every rule. A weekly
    # review that finds a breach rebalances as the quarterly rebalance would, unless told otherwise.
    filled = {kind.value: bool(allow.get(kind.value, False)) for kind in TRADING_KINDS}
    if TaskKind.WEEKLY_REVIEW.value not in allow:
        filled[TaskKind.WEEKLY_REVIEW.value] = filled[TaskKind.QUARTERLY_REBAL.value]
    return _freeze(filled)


def _dump_mapping(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: _dump_mapping(value) if isinstance(value, Mapping) else _normalised(value)
        for key, value in mapping.items()
    }


class DriftBands(BaseModel):
    """When a sleeve has drifted far enough from its target to rebalance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    absolute: NonNegativeDecimal = Field(
        description="A sleeve breaches when |weight - target| exceeds this (e.g. 0.05 = 5 points)."
    )
    relative: NonNegativeDecimal = Field(
        description="A sleeve with a positive target also breaches when |weight - target| / target "
        "exceeds this (e.g. 0.25 = a quarter of its target)."
    )


class Policy(BaseModel):
    """A validated policy. Frozen: its mappings are read-only views."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = Field(
        default=SCHEMA_VERSION, description="The policy schema version. Default 1, the only one so far."
    )
    sleeve_targets: Annotated[
        Mapping[str, ExactDecimal], AfterValidator(_check_sleeve_targets), PlainSerializer(_dump_mapping)
    ] = Field(
        description="Target weight per sleeve code ([A-Z][A-Z0-9_]*), each between 0 and 1, summing to "
        "exactly 1. Weights are over holdings plus cash; cash is not a sleeve. A sleeve held in the "
        "portfolio but missing here has target 0."
    )
    drift_bands: DriftBands = Field(description="Drift bands; see DriftBands.")
    min_trade_base: NonNegativeDecimal = Field(
        description="Smallest consideration (units x price, before fees, GBP) of a line worth executing."
    )
    fee_per_trade_base: NonNegativeDecimal = Field(description="Dealing fee per executed line, in GBP.")
    cash_buffer_base: NonNegativeDecimal = Field(
        description="Cash (GBP) always left in the account; trades never take cash below it."
    )
    whole_units: Literal[True] = Field(
        default=True,
        description="Trade whole units only. Default true; false (fractional units) is refused: the "
        "engine's exact search is over whole units.",
    )
    allow_sells: Annotated[
        Mapping[str, StrictBool], AfterValidator(_check_allow_sells), PlainSerializer(dict)
    ] = Field(
        default_factory=dict,
        description="Whether each trading task kind (MONTHLY_ALLOC, QUARTERLY_REBAL, WEEKLY_REVIEW) "
        "may sell. A kind left out may not sell, except WEEKLY_REVIEW, which follows QUARTERLY_REBAL "
        "(a weekly drift check that finds a breach recommends the same rebalance). Default: no kind sells.",
        validate_default=True,
    )
    sell_and_buy_in_same_sleeve: StrictBool = Field(
        default=True,
        description="May one recommendation sell one listing of a sleeve and buy another of the same "
        "sleeve? Default true: the search covers every trade vector, as the objective is stated. Set "
        "false to forbid such switches: they only fine-tune the sleeve's net trade, at the cost of "
        "turnover (and, in a GIA, capital gains) that the objective does not count.",
    )
    max_lines_per_sleeve: int | None = Field(
        default=None,
        ge=1,
        strict=True,
        description="At most this many executed lines per sleeve in one recommendation. Default: no "
        "limit, as the objective is stated. The objective counts fees only through the total, so "
        "unlimited it will often split a sleeve's money over several listings to spend the last "
        "pennies; 1 or 2 gives shorter, more natural trade lists (and a much faster search).",
    )
    max_price_age_business_days: int = Field(
        default=5,
        ge=0,
        strict=True,
        description="A price older than this many business days is stale: its listing is valued "
        "but not traded. Default 5. Applied by the service that builds the engine's input.",
    )
    constituent_split: Annotated[
        Mapping[str, Mapping[str, ExactDecimal]], AfterValidator(_check_split), PlainSerializer(_dump_mapping)
    ] = Field(
        default_factory=dict,
        description="How a sleeve's money is meant to be split among its listings, keyed by sleeve then "
        '"TICKER:EXCHANGE", weights summing to 1 per sleeve. A sleeve left out splits equally among '
        "its tradeable listings. Default: equal everywhere. Used for the unconstrained ideal behind "
        "suppressed lines and to break exact ties between equally good trade lists.",
        validate_default=True,
    )

    never_sell: Annotated[tuple[str, ...], AfterValidator(check_names)] = Field(
        default=(),
        description='Listings ("TICKER:EXCHANGE") or sleeve codes that are never sold. A hard rule: the '
        "search never proposes such a sale. Default: none. A manifesto's `never sell:` lines add to it.",
    )
    never_buy: Annotated[tuple[str, ...], AfterValidator(check_names)] = Field(
        default=(),
        description='Listings ("TICKER:EXCHANGE") or sleeve codes that are never bought. A hard rule. '
        "Default: none. A manifesto's `avoid:` lines add to it.",
    )
    max_trade_base: PositiveDecimal | None = Field(
        default=None,
        description="Largest consideration (GBP) of one executed line. A hard rule. Default: no limit. "
        "A manifesto's `max single trade:` line sets it when the policy does not.",
    )
    max_turnover: FractionOfOne = Field(
        default=Decimal("0.25"),
        description="Largest fraction of the base (holdings in the strategy plus cash plus the "
        'contribution) that one recommendation may sell. A hard rule. Default "0.25".',
    )
    line_penalty_base: NonNegativeDecimal | None = Field(
        default=None,
        description="What one executed line costs in the objective, in GBP of misallocation: a line is "
        "worth its place only if it corrects roughly this much. Default: the policy's min_trade_base. "
        '"0" gives the plain squared-drift objective.',
    )
    untargeted: Literal["hold", "sell"] = Field(
        default="hold",
        description="A held listing with no constituent row, or in a sleeve this strategy does not "
        'target: "hold" (default) leaves it alone and out of the base the weights are measured on; '
        '"sell" counts it with a target of 0, so a rebalance that may sell can sell it.',
    )
    unpriced: Literal["block", "exclude"] = Field(
        default="block",
        description='A held listing in the strategy without a good price (none, stale or flagged): "block" '
        '(default) stops the recommendation and names it; "exclude" leaves it alone and out of the base, '
        "like an untargeted holding. It is never valued at zero.",
    )

    cgt: Literal["ignore", "avoid_gains_over_allowance"] = Field(
        default="ignore",
        description="Capital gains in a general account, for a household recommendation (one strategy "
        'over several accounts): "ignore" (default) lets the objective decide, sales in an ISA or SIPP '
        'still coming before equally good ones in the general account; "avoid_gains_over_allowance" '
        "never proposes sales whose estimated gains exceed the owner's annual exempt amount left for "
        "the tax year. A hard rule.",
    )
    fee_per_trade_by_portfolio: Annotated[
        Mapping[str, NonNegativeDecimal], AfterValidator(_freeze), PlainSerializer(_dump_mapping)
    ] = Field(
        default_factory=dict,
        description="A dealing fee per executed line (GBP) for named portfolios, where the broker "
        "charges differently; the others pay fee_per_trade_base. Default: none.",
        validate_default=True,
    )

    @property
    def line_penalty(self) -> Decimal:
        """The per-line penalty actually used: ``line_penalty_base``, else ``min_trade_base``."""
        return self.min_trade_base if self.line_penalty_base is None else self.line_penalty_base

    def hard_rules(self) -> dict[str, Any]:
        """The rules the search never breaks, as shown by ``strategy show``."""
        return {
            "never_sell": list(self.never_sell),
            "never_buy": list(self.never_buy),
            "max_trade_base": decimal_str(self.max_trade_base),
            "max_turnover": decimal_str(self.max_turnover),
            "untargeted": self.untargeted,
            "unpriced": self.unpriced,
        }

    @model_validator(mode="after")
    def _split_names_targeted_sleeves(self) -> Policy:
        for sleeve in self.constituent_split:
            if sleeve not in self.sleeve_targets:
                raise ValueError(f"constituent_split: {sleeve}: not a sleeve of sleeve_targets")
        return self

    def fee_for(self, portfolio: str) -> Decimal:
        """The dealing fee per executed line in the named portfolio."""
        return self.fee_per_trade_by_portfolio.get(portfolio, self.fee_per_trade_base)

    def sells_allowed(self, kind: TaskKind | str) -> bool:
        return bool(self.allow_sells.get(str(kind), False))
