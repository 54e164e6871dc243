"""Capital gains for one taxpayer and one tax year, as the Self Assessment return (SA108,
listed shares and securities) asks for them, with the working; and the Section 104 pools.

Amounts are exact to the penny: each disposal's gain is rounded once, half up, from exact
fractions; its allowable cost is its proceeds less that gain (so the three always agree).
Totals are sums of those. The return asks for whole pounds: ``whole_pounds`` rounds in the
taxpayer's favour, as HMRC allows: proceeds and gains down, allowable costs and losses up.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from ...core.money import ZERO, format_gbp
from ...core.timeutil import london_date
from ...db.models import User
from ...engine.tax.matching import Disposal, Matching, match_shares
from ...engine.tax.years import TaxYear, parse_tax_year
from .events import TaxInputs, load_tax_inputs, taxpayer

ROUNDING_NOTE = (
    "Each disposal's gain is exact to the penny (rounded once, half up); its allowable cost is its "
    "proceeds less the gain. Whole pounds, as the return asks: proceeds and gains rounded down, "
    "allowable costs and losses rounded up (in the taxpayer's favour)."
)


def matching_for(inputs: TaxInputs, *, until: date | None = None) -> Matching:
    return match_shares(inputs.trades, inputs.transfers, inputs.reorganisations, until=until)


def cgt_report(
    session: Session, *, actor: User, tax_year: str, owner_email: str | None = None
) -> dict[str, Any]:
    """The figures for ``tax cgt``: every disposal in the year with its matches, and the totals."""
    year = parse_tax_year(tax_year)
    owner = taxpayer(session, actor, owner_email)
    inputs = load_tax_inputs(session, actor, owner)
    matching = matching_for(inputs)
    disposals = [d for d in matching.disposals if year.contains(d.day)]
    return {
        "tax_year": year.label,
        "owner": owner.email,
        "period": {"start": year.start, "end": year.end},
        "general_accounts": [p.name for p in inputs.general],
        "disposals": [disposal_row(d, inputs) for d in disposals],
        "totals": totals(disposals, year),
        "whole_pounds": whole_pounds(disposals),
        "rounding": ROUNDING_NOTE,
        "issues": list(matching.issues),
    }


def disposal_row(d: Disposal, inputs: TaxInputs) -> dict[str, Any]:
    return {
        "date": d.day,
        "isin": d.isin,
        "ticker": d.ticker,
        "units": d.units,
        "proceeds": d.proceeds,
        "disposal_costs": d.fees,
        "allowable_cost": d.allowable_cost,
        "gain": d.gain,
        "portfolios": sorted({inputs.portfolio_of.get(r, "") for r in d.refs} - {""}),
        "entries": list(d.refs),
        "matches": [
            {
                "rule": m.rule.value,
                "units": m.units,
                "cost": m.cost,
                "acquisition_date": m.acquisition_date,
                "entries": list(m.refs),
            }
            | (
                {"pool_units_after": m.pool_units_after, "pool_cost_after": m.pool_cost_after}
                if m.pool_units_after is not None
                else {}
            )
            for m in d.matches
        ],
    }


def totals(disposals: list[Disposal], year: TaxYear) -> dict[str, Any]:
    gains = sum((d.gain for d in disposals if d.gain > 0), ZERO)
    losses = -sum((d.gain for d in disposals if d.gain < 0), ZERO)
    proceeds = sum((d.proceeds for d in disposals), ZERO)
    net = gains - losses
    aea = year.annual_exempt_amount
    required, reason = _reporting(net, proceeds, losses, year)
    result: dict[str, Any] = {
        "disposal_count": len(disposals),
        "proceeds": proceeds,
        "allowable_costs": sum((d.allowable_cost for d in disposals), ZERO),
        "gains": gains,
        "losses": losses,
        "net_gain": net,
        "annual_exempt_amount": aea,
        "annual_exempt_amount_left": max(ZERO, aea - max(net, ZERO)),
        "taxable_gain": max(ZERO, net - aea),
        "reporting_required": required,
        "reporting_reason": reason,
    }
    if (change := year.rate_change) is not None:
        suffix = f"{change.day}_{change.strftime('%B').lower()}_{change.year}"  # 30_october_2024
        before = [d for d in disposals if d.day < change]
        after = [d for d in disposals if d.day >= change]
        result |= {
            f"gains_before_{suffix}": sum((d.gain for d in before if d.gain > 0), ZERO),
            f"losses_before_{suffix}": -sum((d.gain for d in before if d.gain < 0), ZERO),
            f"gains_from_{suffix}": sum((d.gain for d in after if d.gain > 0), ZERO),
            f"losses_from_{suffix}": -sum((d.gain for d in after if d.gain < 0), ZERO),
        }
    return result


def _reporting(net: Decimal, proceeds: Decimal, losses: Decimal, year: TaxYear) -> tuple[bool, str]:
    aea, limit = year.annual_exempt_amount, year.reporting_proceeds_limit
    if net > aea:
        return (
            True,
            f"your gains less losses ({format_gbp(net)}) are above the annual exempt amount "
            f"({format_gbp(aea)})",
        )
    if proceeds > limit:
        return True, (
            f"your disposal proceeds ({format_gbp(proceeds)}) are above {format_gbp(limit)}, so the "
            "disposals must be reported even though the gains are within the exempt amount"
        )
    if losses > 0:
        return False, (
            f"not required, but reporting the losses ({format_gbp(losses)}) within four years of the "
            "end of the tax year lets you set them against later gains"
        )
    return False, (
        f"not required: gains within the annual exempt amount ({format_gbp(aea)}) and proceeds "
        f"within {format_gbp(limit)}"
    )


def _down(amount: Decimal) -> int:
    return math.floor(amount)


def _up(amount: Decimal) -> int:
    return math.ceil(amount)


def whole_pounds(disposals: list[Disposal]) -> dict[str, int]:
    """The totals in whole pounds for the return's boxes (rounded in the taxpayer's favour)."""
    gains = _down(sum((d.gain for d in disposals if d.gain > 0), ZERO))
    losses = _up(-sum((d.gain for d in disposals if d.gain < 0), ZERO))
    return {
        "disposal_count": len(disposals),
        "proceeds": _down(sum((d.proceeds for d in disposals), ZERO)),
        "allowable_costs": _up(sum((d.allowable_cost for d in disposals), ZERO)),
        "gains": gains,
        "losses": losses,
        "net_gain": gains - losses,
    }


def pools(
    session: Session, *, actor: User, owner_email: str | None = None, as_of: datetime | None = None
) -> dict[str, Any]:
    """``tax pools``: per ISIN, the units and pooled allowable cost in the general accounts."""
    owner = taxpayer(session, actor, owner_email)
    inputs = load_tax_inputs(session, actor, owner)
    until = london_date(as_of) if as_of is not None else None
    matching = matching_for(inputs, until=until)
    return {
        "owner": owner.email,
        "as_of": until,
        "pools": [
            {
                "isin": p.isin,
                "ticker": p.ticker,
                "units": p.units,
                "cost": p.cost,
                "average_cost": (p.cost / p.units).quantize(Decimal("0.0001")) if p.units else None,
            }
            for p in matching.pools
        ],
        "issues": list(matching.issues),
    }
