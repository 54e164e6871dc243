"""Capital gains tax on proposed trades in a general account, before they are made.

* Each SELL line is matched exactly as if sold at the as-of date for its ``amount_base``
  (before dealing costs): its ``estimated_gain_base`` is what it adds to the year's gains,
  all of the owner's general accounts considered (a same-day purchase is matched first).
* The constraints report totals them against the annual exempt amount left after the gains
  already made in the tax year.
* A BUY of a share class the owner sold in a general account in the 30 days before (or on
  the as-of date) is flagged ``BED_AND_BREAKFAST`` (``SAME_DAY``): HMRC matches the purchase
  with that sale, so the sale's gain or loss changes; the change is shown.

Pure: the owner's history travels in the recommendation's input snapshot (``TaxContext``),
so a replay from the snapshot gives the same figures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from ...core.enums import TradeAction
from ...core.money import CONTEXT, ZERO, format_gbp
from ..model import Recommendation, RecommendationLine
from .matching import BED_AND_BREAKFAST_DAYS, PoolTransfer, Reorganisation, Trade, match_shares, to_pennies


@dataclass(frozen=True)
class TaxContext:
    """What the estimates need: the owner's general-account history and the year so far."""

    tax_year: str
    annual_exempt_amount: Decimal
    net_gain_to_date: Decimal  # realised in the tax year up to the as-of date
    isin_by_listing: Mapping[str, str]  # "TICKER:EXCHANGE" -> ISIN
    trades: tuple[Trade, ...] = ()
    transfers: tuple[PoolTransfer, ...] = ()
    reorganisations: tuple[Reorganisation, ...] = ()


def listing_key(ticker: str, exchange: str) -> str:
    return f"{ticker}:{exchange}"


def _total(trades: Sequence[Trade], context: TaxContext, until: date) -> Fraction:
    matching = match_shares(trades, context.transfers, context.reorganisations, until=until)
    return sum((d.exact_gain for d in matching.disposals), Fraction(0))


def _sales_before(context: TaxContext, isin: str, day: date) -> list[Trade]:
    start = day - timedelta(days=BED_AND_BREAKFAST_DAYS)
    return [t for t in context.trades if t.disposal and t.isin == isin and start <= t.day <= day]


def apply_tax(recommendation: Recommendation, context: TaxContext, as_of: date) -> Recommendation:
    """``recommendation`` with its SELL lines' estimated gains, the totals in the constraints
    report and any bed-and-breakfast flags in the rationale."""
    baseline = _total(context.trades, context, as_of)
    lines: list[RecommendationLine] = []
    estimates: list[dict[str, Any]] = []
    flags: list[dict[str, Any]] = []
    for line in recommendation.lines:
        isin = context.isin_by_listing.get(listing_key(line.ticker, line.exchange))
        if isin is None or line.suppressed_by_min_trade or not line.estimated_units:
            lines.append(line)
            continue
        selling = line.action is TradeAction.SELL
        trade = Trade(as_of, isin, line.estimated_units, line.amount_base, selling, ZERO, -1, line.ticker)
        change = to_pennies(_total([*context.trades, trade], context, as_of) - baseline)
        if selling:
            lines.append(dataclasses.replace(line, estimated_gain_base=change))
            estimates.append(
                {
                    "ticker": line.ticker,
                    "exchange": line.exchange,
                    "isin": isin,
                    "estimated_gain_base": change,
                }
            )
            continue
        lines.append(line)
        sales = _sales_before(context, isin, as_of)
        if sales:
            last = max(t.day for t in sales)
            rule = "SAME_DAY" if last == as_of else "BED_AND_BREAKFAST"
            flags.append(
                {
                    "ticker": line.ticker,
                    "exchange": line.exchange,
                    "isin": isin,
                    "rule": rule,
                    "sold_on": last,
                    "change_in_gains": change,
                    "message": _flag_message(line.ticker, last, rule, change),
                }
            )
    estimated = sum((e["estimated_gain_base"] for e in estimates), ZERO)
    left = max(ZERO, context.annual_exempt_amount - max(context.net_gain_to_date, ZERO))
    report = {
        "tax_year": context.tax_year,
        "annual_exempt_amount": context.annual_exempt_amount,
        "net_gain_to_date": context.net_gain_to_date,
        "exempt_amount_left": left,
        "estimated_gains": estimated,
        "within_exempt_amount": estimated <= left,
        "message": _report_message(estimated, left, context.tax_year),
    }
    rationale = dict(recommendation.rationale) | {
        "tax": {
            "lines": estimates,
            "flags": flags,
            "note": "estimated as if sold on the as-of date for the line's amount, before dealing costs",
        }
    }
    constraints = dict(recommendation.constraints_report) | {"tax": report}
    return Recommendation(recommendation.headline, rationale, constraints, tuple(lines))


def gain_per_unit(
    context: TaxContext, key: str, price: Decimal, units: Decimal, as_of: date
) -> Decimal | None:
    """The capital gain per unit (negative: a loss) of selling ``units`` of listing ``key``
    (``TICKER:EXCHANGE``) at ``price`` (GBP per unit, before dealing costs) on ``as_of``, with
    the owner's share matching (same day, then 30 days, then the Section 104 pool) exactly as
    ``apply_tax`` estimates a SELL line. None when the listing has no ISIN in the context or
    ``units`` is not positive.

    On a Section 104 pool the gain is linear in the units sold (price less the pool's average
    cost per unit), so the household's search may treat it as a gain per unit; where the
    same-day or 30-day rules match part of the sale, this is the average over ``units`` (the
    household asks for the units held: the most it could sell). Not rounded to the penny: exact
    where it terminates within 10 decimal places, else to 10 places (half even), a figure every
    snapshot and ``core.money.to_decimal`` accept.
    """
    isin = context.isin_by_listing.get(key)
    if isin is None or units <= ZERO:
        return None
    ticker = key.split(":", 1)[0]
    baseline = _total(context.trades, context, as_of)
    sale = Trade(as_of, isin, units, CONTEXT.multiply(price, units), True, ZERO, -1, ticker)
    change = _total([*context.trades, sale], context, as_of) - baseline
    per_unit = change / Fraction(units)
    exact = CONTEXT.divide(Decimal(per_unit.numerator), Decimal(per_unit.denominator))
    places = Decimal("1E-10")
    rounded = exact.quantize(places, context=CONTEXT)
    return exact if rounded == exact else rounded


def _flag_message(ticker: str, sold_on: date, rule: str, change: Decimal) -> str:
    when = f"{sold_on:%d/%m/%Y}"
    if rule == "SAME_DAY":
        why = f"you sold {ticker} today ({when}) in a general account: HMRC matches this purchase with it"
    else:
        why = (
            f"you sold {ticker} on {when} in a general account, within 30 days: HMRC matches this purchase "
            "with that sale (bed and breakfast)"
        )
    effect = "no change to" if not change else f"a change of {format_gbp(change)} in"
    return f"{why}, {effect} the year's gains"


def _report_message(estimated: Decimal, left: Decimal, year: str) -> str:
    if not estimated:
        return f"The proposed sales realise no gain; {format_gbp(left)} of the {year} exempt amount is left."
    if estimated < 0:
        return f"The proposed sales realise an estimated loss of {format_gbp(-estimated)} in {year}."
    if estimated <= left:
        return (
            f"The proposed sales realise an estimated gain of {format_gbp(estimated)}, within the "
            f"{format_gbp(left)} of the {year} exempt amount left."
        )
    return (
        f"The proposed sales realise an estimated gain of {format_gbp(estimated)}, "
        f"{format_gbp(estimated - left)} more than the {format_gbp(left)} of the {year} exempt amount left: "
        "capital gains tax may be due."
    )


# --- in the input snapshot --------------------------------------------------------------


def context_to_dict(context: TaxContext) -> dict[str, Any]:
    return {
        "tax_year": context.tax_year,
        "annual_exempt_amount": context.annual_exempt_amount,
        "net_gain_to_date": context.net_gain_to_date,
        "isin_by_listing": dict(sorted(context.isin_by_listing.items())),
        "trades": [
            [t.day, t.isin, t.units, t.amount, t.disposal, t.fees, t.ref, t.ticker] for t in context.trades
        ],
        "transfers": [
            [m.day, m.isin, m.units, m.cost, m.ref, m.carries, m.ticker] for m in context.transfers
        ],
        "reorganisations": [[r.day, r.isin, r.new_isin, r.num, r.den] for r in context.reorganisations],
    }


def _day(text: str | date) -> date:
    return text if isinstance(text, date) else date.fromisoformat(text)


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def context_from_dict(data: Mapping[str, Any]) -> TaxContext:
    return TaxContext(
        tax_year=data["tax_year"],
        annual_exempt_amount=Decimal(str(data["annual_exempt_amount"])),
        net_gain_to_date=Decimal(str(data["net_gain_to_date"])),
        isin_by_listing=dict(data["isin_by_listing"]),
        trades=tuple(
            Trade(_day(d), i, Decimal(str(u)), Decimal(str(a)), bool(s), Decimal(str(f)), int(r), t)
            for d, i, u, a, s, f, r, t in data["trades"]
        ),
        transfers=tuple(
            PoolTransfer(_day(d), i, Decimal(str(u)), _dec(c), int(r), None if k is None else int(k), t)
            for d, i, u, c, r, k, t in data["transfers"]
        ),
        reorganisations=tuple(
            Reorganisation(_day(d), i, n, Decimal(str(a)), Decimal(str(b)))
            for d, i, n, a, b in data["reorganisations"]
        ),
    )
