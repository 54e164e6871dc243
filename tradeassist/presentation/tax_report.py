"""The tax-year report a person files from: one self-contained HTML page, and a CSV of the working.

Pure: the dictionaries ``services.tax.cgt.cgt_report`` and ``services.tax.allowances.allowances_report``
return in, text out. The words are ``presentation.tax``'s (the CLI prints the same sentences); the
tables come from ``presentation.html.table_html``; money through ``format_gbp``, dates DD/MM/YYYY.

The HTML needs nothing but itself: inline CSS, no scripts, no fonts or images from anywhere, so it
reads offline and prints on A4 (``@media print``: sections that start a page, disposals kept whole).
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from ..core.money import decimal_str, format_gbp
from ..core.timeutil import uk_date
from .html import table_html
from .tax import ALLOWANCE_ROWS, RULE_WORDS, STATUS_WORDS, headline, units_text

CSV_COLUMNS = (
    "disposal",
    "date",
    "isin",
    "ticker",
    "units",
    "proceeds",
    "disposal_costs",
    "allowable_cost",
    "gain",
    "match",
    "rule",
    "match_units",
    "match_cost",
    "acquisition_date",
)

SA108_ROWS = (
    ("disposal_count", "Number of disposals"),
    ("proceeds", "Disposal proceeds"),
    ("allowable_costs", "Allowable costs (including purchase price)"),
    ("gains", "Gains in the year, before losses"),
    ("losses", "Losses in the year"),
)

TOTAL_ROWS = (
    ("proceeds", "Disposal proceeds"),
    ("allowable_costs", "Allowable costs"),
    ("gains", "Gains"),
    ("losses", "Losses"),
    ("net_gain", "Gains less losses"),
    ("annual_exempt_amount", "Annual exempt amount"),
    ("annual_exempt_amount_left", "Annual exempt amount left"),
    ("taxable_gain", "Taxable gain, before any losses brought forward"),
)

STYLE = """
@page { size: A4; margin: 15mm 14mm; }
* { box-sizing: border-box; }
body { margin: 0; color: #1b1b1b; background: #fff;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 182mm; margin: 0 auto; padding: 16px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 22px 0 8px; border-bottom: 2px solid #37474f; padding-bottom: 2px; }
h3 { font-size: 14px; margin: 14px 0 4px; }
p { margin: 4px 0; }
.muted { color: #546e7a; font-size: 12px; }
.decision { border: 2px solid #2e7d32; border-left-width: 8px; border-radius: 6px; padding: 8px 12px;
  margin: 12px 0; }
.decision.report { border-color: #c62828; }
.decision .headline { font-size: 16px; font-weight: 600; }
.warning { color: #b34700; }
table.ta-table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; font-size: 13px; }
table.ta-table th, table.ta-table td { border: 1px solid #b0bec5; padding: 3px 6px; vertical-align: top; }
table.ta-table th { background: #eceff1; text-align: left; }
table.ta-table td { font-variant-numeric: tabular-nums; }
.disposal { border-top: 1px solid #cfd8dc; padding-top: 4px; }
ul { margin: 4px 0; padding-left: 20px; }
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  .new-page { break-before: page; page-break-before: always; }
  .disposal, .decision, table.ta-table tr { break-inside: avoid; page-break-inside: avoid; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  thead { display: table-header-group; }
  table.ta-table th { background: none; }
}
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _pounds(amount: int) -> str:
    return f"-£{-amount:,}" if amount < 0 else f"£{amount:,}"


def _rate_change_suffix(totals: Mapping[str, Any]) -> str | None:
    """``30_october_2024`` when the totals are split at a change of rates within the year."""
    return next((k.removeprefix("gains_before_") for k in totals if k.startswith("gains_before_")), None)


def _two_columns(rows: Sequence[tuple[str, str]], heading: tuple[str, str]) -> str:
    return table_html([{heading[0]: label, heading[1]: value} for label, value in rows], numeric=heading[1:])


def decision_html(cgt: Mapping[str, Any]) -> str:
    """The headline, why (not) to report, and anything the matching could not square."""
    totals = cgt["totals"]
    css = "decision report" if totals["reporting_required"] else "decision"
    parts = [
        f'<div class="{css}"><p class="headline">{_e(headline(cgt))}</p>',
        f"<p>Why: {_e(totals['reporting_reason'])}.</p>",
    ]
    parts += [f'<p class="warning">Warning: {_e(issue)}</p>' for issue in cgt.get("issues", ())]
    return "".join(parts) + "</div>"


def sa108_html(cgt: Mapping[str, Any]) -> str:
    whole = cgt["whole_pounds"]
    rows = [
        (label, str(whole[key]) if key == "disposal_count" else _pounds(whole[key]))
        for key, label in SA108_ROWS
    ]
    parts = [
        "<h2>For your return (SA108, listed shares and securities)</h2>",
        "<p>Whole pounds, as the return asks, rounded in your favour. Find each line on the form by its "
        "wording: the box numbers change between years.</p>",
        _two_columns(rows, ("On the return", "Enter")),
    ]
    if (suffix := _rate_change_suffix(cgt["totals"])) is not None:
        day = suffix.replace("_", " ").title()
        parts.append(
            f"<p>For this year the return also asks for the gains and losses before and from {_e(day)}: "
            "they are in the exact totals below.</p>"
        )
    return "".join(parts)


def totals_html(totals: Mapping[str, Any]) -> str:
    rows = [("Number of disposals", str(totals["disposal_count"]))]
    rows += [(label, format_gbp(totals[key])) for key, label in TOTAL_ROWS]
    parts = ["<h2>Exact totals</h2>", _two_columns(rows, ("Figure", "Amount"))]
    if (suffix := _rate_change_suffix(totals)) is not None:
        day = suffix.replace("_", " ").title()
        split = [
            (f"Gains before {day}", format_gbp(totals[f"gains_before_{suffix}"])),
            (f"Losses before {day}", format_gbp(totals[f"losses_before_{suffix}"])),
            (f"Gains from {day}", format_gbp(totals[f"gains_from_{suffix}"])),
            (f"Losses from {day}", format_gbp(totals[f"losses_from_{suffix}"])),
        ]
        parts += [
            f"<h3>Before and from {_e(day)} (the rates changed on that day)</h3>",
            _two_columns(split, ("Figure", "Amount")),
        ]
    return "".join(parts)


def _match_row(match: Mapping[str, Any]) -> dict[str, str]:
    acquired = match.get("acquisition_date")
    pool = ""
    if match.get("pool_units_after") is not None:
        pool = f"{units_text(match['pool_units_after'])} units costing {format_gbp(match['pool_cost_after'])}"
    return {
        "Rule": RULE_WORDS.get(match["rule"], match["rule"]),
        "Units": units_text(match["units"]),
        "Cost": format_gbp(match["cost"]),
        "Acquired": uk_date(acquired) if acquired else "",
        "Pool afterwards": pool,
    }


def disposal_html(number: int, d: Mapping[str, Any]) -> str:
    gain = d["gain"]
    name = d["ticker"] or d["isin"]
    figures = [
        ("Proceeds", format_gbp(d["proceeds"])),
        ("Costs of selling (part of the allowable cost)", format_gbp(d["disposal_costs"])),
        ("Allowable cost", format_gbp(d["allowable_cost"])),
        ("Gain" if gain >= 0 else "Loss", format_gbp(gain if gain >= 0 else -gain)),
    ]
    accounts = ", ".join(d.get("portfolios") or ()) or "—"
    return (
        f'<div class="disposal"><h3>{number}. {_e(uk_date(d["date"]))}: sold {_e(units_text(d["units"]))} '
        f"{_e(name)} ({_e(d['isin'])})</h3>"
        f'<p class="muted">From: {_e(accounts)}</p>'
        + _two_columns(figures, ("Figure", "Amount"))
        + "<p>Matched with (HMRC's share matching rules, in this order):</p>"
        + table_html(
            [_match_row(m) for m in d["matches"]],
            ("Rule", "Units", "Cost", "Acquired", "Pool afterwards"),
            numeric=("Units", "Cost"),
        )
        + "</div>"
    )


def disposals_html(cgt: Mapping[str, Any]) -> str:
    disposals = cgt["disposals"]
    parts = ['<section class="new-page"><h2>Every disposal with its working</h2>']
    if not disposals:
        parts.append("<p>No disposals in your general accounts this tax year.</p>")
    parts += [disposal_html(i, d) for i, d in enumerate(disposals, start=1)]
    return "".join(parts) + "</section>"


def allowances_html(allowances: Mapping[str, Any]) -> str:
    rows = []
    for key, label, used_key, limit_key in ALLOWANCE_ROWS:
        part = allowances[key]
        rows.append(
            {
                "Allowance": label,
                "Used": format_gbp(part[used_key]),
                "Limit": format_gbp(part[limit_key]),
                "Left": format_gbp(part["left"]),
                "Status": STATUS_WORDS.get(part["status"], part["status"]),
            }
        )
    parts = [
        '<section class="new-page"><h2>Allowances</h2>',
        table_html(rows, numeric=("Used", "Limit", "Left")),
    ]
    warnings = allowances.get("warnings") or []
    if warnings:
        parts.append("<ul>" + "".join(f'<li class="warning">{_e(w)}</li>' for w in warnings) + "</ul>")
    else:
        parts.append("<p>Every allowance is within its limit.</p>")
    pension = allowances["pension"]
    notes = [
        f"Pension: {format_gbp(pension['personal_net'])} paid in net; relief recorded "
        f"{format_gbp(pension['tax_relief_recorded'])}.",
        f"The interest allowance shown is {allowances['interest']['note']}.",
    ]
    for key, what in (("isa", "ISA subscriptions"), ("pension", "Pension contributions (net)")):
        by = allowances[key].get("by_portfolio") or []
        if by:
            each = "; ".join(f"{p['portfolio']} {format_gbp(p['amount'])}" for p in by)
            notes.append(f"{what} by account: {each}.")
    parts += [f"<p>{_e(n)}</p>" for n in notes]
    return "".join(parts) + "</section>"


def notes_html(cgt: Mapping[str, Any]) -> str:
    accounts = cgt["general_accounts"]
    listed = "".join(f"<li>{_e(name)}</li>" for name in accounts) or "<li>none</li>"
    return (
        "<section><h2>Notes</h2>"
        f"<p>{_e(cgt['rounding'])}</p>"
        "<p>General accounts included (ISAs and pensions are outside capital gains tax):</p>"
        f"<ul>{listed}</ul></section>"
    )


def report_html(cgt: Mapping[str, Any], allowances: Mapping[str, Any]) -> str:
    """The whole report as one HTML document: the decision first, then the return's boxes, the
    exact totals, every disposal with its working, the allowances, and the notes."""
    period = f"{uk_date(cgt['period']['start'])} to {uk_date(cgt['period']['end'])}"
    title = f"Tax-year report {cgt['tax_year']}: capital gains and allowances"
    body = "".join(
        [
            f"<header><h1>{_e(title)}</h1>",
            f'<p class="muted">For {_e(cgt["owner"])}; tax year {_e(cgt["tax_year"])}, {_e(period)}.</p>',
            "</header>",
            decision_html(cgt),
            sa108_html(cgt),
            totals_html(cgt["totals"]),
            disposals_html(cgt),
            allowances_html(allowances),
            notes_html(cgt),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en-GB"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return decimal_str(value) or "0"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def report_csv(cgt: Mapping[str, Any]) -> str:
    """The working for a spreadsheet: a header row, then one row per match of every disposal.

    Columns:

    * ``disposal``: the disposal's number in the report (1, 2, …), as in the HTML;
    * ``date`` (ISO, YYYY-MM-DD), ``isin``, ``ticker``, ``units``, ``proceeds`` (gross),
      ``disposal_costs`` (the costs of selling, part of the allowable cost), ``allowable_cost``,
      ``gain`` (negative for a loss): the disposal's, repeated on each of its match rows;
    * ``match``: the match's number within its disposal (1, 2, …);
    * ``rule``: ``SAME_DAY``, ``BED_AND_BREAKFAST`` (bought within 30 days after) or
      ``SECTION_104`` (from the pool); ``match_units``, ``match_cost``: what was matched and
      its allowable cost; ``acquisition_date`` (ISO; empty for the Section 104 pool).

    Numbers are exact decimals as plain text: no £, no thousands separators. Sum ``gain`` over
    the rows with ``match`` 1 (one per disposal) for the net gain. A disposal without a match
    (none is expected) still has one row, its match columns empty. Totals are not repeated here:
    they are in the HTML report and ``tax cgt --json``.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for number, d in enumerate(cgt["disposals"], start=1):
        head = [
            number,
            d["date"],
            d["isin"],
            d["ticker"],
            d["units"],
            d["proceeds"],
            d["disposal_costs"],
            d["allowable_cost"],
            d["gain"],
        ]
        matches = d["matches"] or [None]
        for index, m in enumerate(matches, start=1):
            tail = (
                [index, m["rule"], m["units"], m["cost"], m.get("acquisition_date")]
                if m is not None
                else [None] * 5
            )
            writer.writerow([_plain(v) for v in head + tail])
    return out.getvalue()
