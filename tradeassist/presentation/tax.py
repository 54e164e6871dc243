"""The tax figures as a person reads them: the decision first, then each disposal with its working.

Pure: the dictionaries that ``services.tax`` returns in, lines of text out. Money through
``format_gbp``, dates as DD/MM/YYYY.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..core.money import decimal_str, format_gbp
from ..core.timeutil import uk_date

RULE_WORDS = {
    "SAME_DAY": "bought the same day",
    "BED_AND_BREAKFAST": "bought within 30 days after (bed and breakfast)",
    "SECTION_104": "from the Section 104 pool",
}


def units_text(units: Decimal) -> str:
    text = decimal_str(units) or "0"
    whole, _, fraction = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    grouped = f"{int(whole.lstrip('-') or 0):,}"
    return sign + grouped + (f".{fraction}" if fraction else "")


def headline(report: Mapping[str, Any]) -> str:
    """One sentence: the net gain, against the exempt amount, and whether to report."""
    totals = report["totals"]
    count = totals["disposal_count"]
    if not count:
        return f"No disposals in your general accounts in {report['tax_year']}: nothing to report."
    verdict = "you must report them" if totals["reporting_required"] else "reporting is not required"
    return (
        f"{count} disposal{'s' if count != 1 else ''} in {report['tax_year']}: net gain "
        f"{format_gbp(totals['net_gain'])} against an annual exempt amount of "
        f"{format_gbp(totals['annual_exempt_amount'])}; {verdict}."
    )


def match_line(match: Mapping[str, Any]) -> str:
    words = RULE_WORDS.get(match["rule"], match["rule"])
    when = f" on {uk_date(match['acquisition_date'])}" if match.get("acquisition_date") else ""
    line = f"{units_text(match['units'])} units {words}{when}: cost {format_gbp(match['cost'])}"
    if match.get("pool_units_after") is not None:
        line += (
            f" (pool afterwards: {units_text(match['pool_units_after'])} units costing "
            f"{format_gbp(match['pool_cost_after'])})"
        )
    return line


def disposal_lines(d: Mapping[str, Any]) -> list[str]:
    gain = d["gain"]
    outcome = f"gain {format_gbp(gain)}" if gain >= 0 else f"loss {format_gbp(-gain)}"
    lines = [
        f"{uk_date(d['date'])}  sold {units_text(d['units'])} {d['ticker'] or d['isin']} ({d['isin']}): "
        f"proceeds {format_gbp(d['proceeds'])}, allowable cost {format_gbp(d['allowable_cost'])}, {outcome}"
    ]
    lines += [f"    {match_line(m)}" for m in d["matches"]]
    if d.get("disposal_costs"):
        lines.append(f"    costs of selling: {format_gbp(d['disposal_costs'])}")
    return lines


def cgt_lines(report: Mapping[str, Any]) -> list[str]:
    totals, whole = report["totals"], report["whole_pounds"]
    lines = [headline(report), f"Why: {totals['reporting_reason']}."]
    accounts = ", ".join(report["general_accounts"]) or "none"
    lines.append(
        f"Owner {report['owner']}; general accounts: {accounts}; "
        f"{uk_date(report['period']['start'])} to {uk_date(report['period']['end'])}."
    )
    for issue in report.get("issues", ()):
        lines.append(f"Warning: {issue}")
    if report["disposals"]:
        lines.append("")
        for d in report["disposals"]:
            lines += disposal_lines(d)
    lines += ["", *totals_lines(totals), "", "For the return (SA108, whole pounds):"]
    lines += [
        f"  disposals {whole['disposal_count']}; proceeds £{whole['proceeds']:,}; allowable costs "
        f"£{whole['allowable_costs']:,}; gains £{whole['gains']:,}; losses £{whole['losses']:,}"
    ]
    return lines


def totals_lines(totals: Mapping[str, Any]) -> list[str]:
    money = {
        key: format_gbp(value) for key, value in totals.items() if not isinstance(value, bool | int | str)
    }
    lines = [
        f"Proceeds {money['proceeds']}; allowable costs {money['allowable_costs']}; gains {money['gains']}; "
        f"losses {money['losses']}; net {money['net_gain']}.",
        f"Annual exempt amount {money['annual_exempt_amount']} ({money['annual_exempt_amount_left']} left); "
        f"taxable gain {money['taxable_gain']} before any losses brought forward.",
    ]
    split = [k for k in totals if k.startswith("gains_before_")]
    if split:
        suffix = split[0].removeprefix("gains_before_")
        day = suffix.replace("_", " ")
        lines.append(
            f"Before {day}: gains {money['gains_before_' + suffix]}, "
            f"losses {money['losses_before_' + suffix]}. "
            f"From {day}: gains {money['gains_from_' + suffix]}, losses {money['losses_from_' + suffix]} "
            "(the rates changed on that day)."
        )
    return lines


def pools_lines(result: Mapping[str, Any]) -> list[str]:
    when = f" at the end of {uk_date(result['as_of'])}" if result.get("as_of") else ""
    pools: Sequence[Mapping[str, Any]] = result["pools"]
    plural = "s" if len(pools) != 1 else ""
    lines = [f"Section 104 pools for {result['owner']}{when}: {len(pools)} holding{plural}."]
    for issue in result.get("issues", ()):
        lines.append(f"Warning: {issue}")
    for p in pools:
        average = f", {format_gbp(p['average_cost'])} a unit" if p.get("average_cost") is not None else ""
        lines.append(
            f"  {p['ticker'] or p['isin']:<8} {p['isin']}  {units_text(p['units'])} units, "
            f"cost {format_gbp(p['cost'])}{average}"
        )
    return lines


ALLOWANCE_ROWS = (
    ("isa", "ISA subscriptions", "subscribed", "allowance"),
    ("pension", "Pension contributions, grossed up", "personal_gross", "annual_allowance"),
    ("dividends", "Dividends in general accounts", "received", "allowance"),
    ("interest", "Interest in general accounts", "received", "allowance"),
    ("capital_gains", "Capital gains less losses", "net_gain", "annual_exempt_amount"),
)

STATUS_WORDS = {"within": "within", "near": "nearly used", "over": "OVER"}


def allowances_lines(result: Mapping[str, Any]) -> list[str]:
    """The warnings first, then one line per allowance: used of the limit, what is left."""
    warnings = result.get("warnings") or []
    lines = [
        f"Allowances {result['tax_year']} for {result['owner']}: " + ("; ".join(warnings) or "all within.")
    ]
    for key, label, used_key, limit_key in ALLOWANCE_ROWS:
        part = result[key]
        lines.append(
            f"  {label:<36} {format_gbp(part[used_key]):>12} of {format_gbp(part[limit_key]):>12}, "
            f"{format_gbp(part['left'])} left ({STATUS_WORDS.get(part['status'], part['status'])})"
        )
    pension = result["pension"]
    lines.append(
        f"  Pension: {format_gbp(pension['personal_net'])} paid in net; relief recorded "
        f"{format_gbp(pension['tax_relief_recorded'])}."
    )
    lines.append(f"  Interest allowance shown is {result['interest']['note']}.")
    return lines
