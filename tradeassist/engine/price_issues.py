"""Price issues: one per flag found in a check, worded for the person who must act on it.

``check_points`` (``price_quality``) flags points; a service persists one alert per issue.
A scale issue carries the range of price ÷ expected level it saw, and says whether that range
is where pence/pound-style unit mix-ups live (a factor of 20 to 200 either way) or beyond.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ..core.enums import QualityFlag
from .normalize import Listing, PricePoint

UNIT_MIXUP_MAX = Decimal(200)  # upper edge of the band where unit mix-ups live (for messages)
ISSUE_CODES: dict[QualityFlag, str] = {
    QualityFlag.SCALE_SUSPECT: "PRICE_SCALE_SUSPECT",
    QualityFlag.CURRENCY_MISMATCH: "CURRENCY_MISMATCH",
    QualityFlag.NON_POSITIVE: "NON_POSITIVE_PRICE",
    QualityFlag.MISSING_FX: "MISSING_FX",
    QualityFlag.STALE: "PRICE_STALE",
}


@dataclass(frozen=True, slots=True)
class PriceIssue:
    """One problem of one kind on one listing, over the points of one check call.

    ``ratio_min``/``ratio_max`` (scale issues only) are price ÷ expected level, 6 significant digits.
    """

    code: str
    flag: QualityFlag
    listing_key: str
    listing_id: int | None
    first_date: date
    last_date: date
    count: int
    ratio_min: Decimal | None
    ratio_max: Decimal | None
    message: str


def issues_for(
    listing: Listing, points: Sequence[PricePoint], flagged: list[int], ratios: dict[int, Decimal]
) -> tuple[PriceIssue, ...]:
    """One issue per flag carried by the points at ``flagged`` (in flag order), with the dates,
    the count and, for scale issues, the range of ``ratios``."""
    by_flag: dict[QualityFlag, list[int]] = {}
    for i in flagged:
        for flag in points[i].flags:
            by_flag.setdefault(flag, []).append(i)
    issues = []
    for flag in sorted(by_flag):
        indices = by_flag[flag]
        first, last = points[indices[0]].as_of, points[indices[-1]].as_of
        flag_ratios = [ratios[i] for i in indices if i in ratios] if flag is QualityFlag.SCALE_SUSPECT else []
        low = min(flag_ratios) if flag_ratios else None
        high = max(flag_ratios) if flag_ratios else None
        issues.append(
            PriceIssue(
                code=ISSUE_CODES[flag],
                flag=flag,
                listing_key=listing.key,
                listing_id=listing.listing_id,
                first_date=first,
                last_date=last,
                count=len(indices),
                ratio_min=low,
                ratio_max=high,
                message=_message(listing, flag, len(indices), first, last, low, high, points[indices[0]]),
            )
        )
    return tuple(issues)


def _message(
    listing: Listing,
    flag: QualityFlag,
    count: int,
    first: date,
    last: date,
    low: Decimal | None,
    high: Decimal | None,
    example: PricePoint,
) -> str:
    span = f"{count} price{'s' if count != 1 else ''} from {first} to {last}"
    if flag is QualityFlag.SCALE_SUSPECT and low is not None and high is not None:
        band = (
            "a pence/pound-style unit mix-up"
            if low >= 1 / UNIT_MIXUP_MAX and high <= UNIT_MIXUP_MAX
            else "beyond any unit mix-up"
        )
        return (
            f"{listing.key}: {span} are {low}× to {high}× the accepted level ({band}); "
            "if the change is genuine, record the split or accept the new level"
        )
    if flag is QualityFlag.CURRENCY_MISMATCH:
        return (
            f"{listing.key}: {span} were declared in {example.raw_currency}, the listing trades in "
            f"{listing.trading_currency}; they were not used"
        )
    if flag is QualityFlag.MISSING_FX:
        return f"{listing.key}: {span} have no GBP→{listing.trading_currency} rate; they were not valued"
    if flag is QualityFlag.NON_POSITIVE:
        return f"{listing.key}: {span} are zero or negative; they were not used"
    return f"{listing.key}: {span} flagged {flag.value}"
