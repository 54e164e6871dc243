"""A household's recommendations for people: the decision first, the lines grouped by account,
the household's allocation before and after per sleeve, why money went to each account, and
any sleeve no account can hold.

Pure: plain values in (a household as ``recommend --strategy --json`` prints it, or as a run
publishes it, or the ``household`` part of an account's rationale), text or escaped HTML out.
Money through ``format_gbp``; weights as percentages.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from ..core.money import format_gbp
from .run_report import (
    cash_section,
    issues_section,
    left_alone_section,
    listing,
    money,
    percent,
    points,
    sleeves_table,
    trades_table,
    units_text,
)

ACTION_WORDS = {"BUY": "Buy", "SELL": "Sell"}


def _e(text: object) -> str:
    return html.escape(str(text))


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _figures(household: Mapping[str, Any]) -> Mapping[str, Any]:
    """The engine's household figures: under ``household`` of a household rationale, or the
    mapping itself (an account's ``rationale["household"]``)."""
    inner = household.get("household")
    return inner if isinstance(inner, Mapping) else household


def sleeves_of(rationale: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    sleeves = rationale.get("sleeves") or _figures(rationale).get("sleeves") or {}
    return sleeves if isinstance(sleeves, Mapping) else {}


def why_by_account(rationale: Mapping[str, Any]) -> dict[str, list[str]]:
    """Why money went (or did not go) to each account, in words, by account name."""
    rows = _figures(rationale).get("accounts") or []
    return {
        str(row.get("account")): [str(w) for w in row.get("why") or []]
        for row in rows
        if isinstance(row, Mapping)
    }


def unholdable(rationale: Mapping[str, Any]) -> list[str]:
    """The sleeves with a target that no account of the household can hold."""
    figures = _figures(rationale)
    found = figures.get("sleeves_no_account_can_hold")
    if found is None:
        found = rationale.get("sleeves_not_held")
    return [str(code) for code in found or []]


def unholdable_words(codes: Sequence[str]) -> list[str]:
    return [
        f"Sleeve {code}: no account of the household can hold it (no constituent maps a listing to it); "
        "its target was shared among the other sleeves."
        for code in codes
    ]


# --------------------------------------------------------------------------------------------
# Text (the CLI)
# --------------------------------------------------------------------------------------------
def _line_text(line: Mapping[str, Any]) -> str:
    action = ACTION_WORDS.get(str(line.get("action")), str(line.get("action")))
    units = units_text(line.get("estimated_units"))
    text = f"{action} {units} {listing(line)} for {money(line.get('amount_base'))}"
    gain = _decimal(line.get("estimated_gain_base"))
    if gain is not None:
        text += (
            f", estimated gain {format_gbp(gain)}" if gain >= 0 else f", estimated loss {format_gbp(-gain)}"
        )
    if line.get("suppressed_by_min_trade"):
        text += " (below the minimum trade: not to place)"
    return text


def allocation_table(sleeves: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The household's allocation per sleeve, now and after, as aligned text."""
    rows = [["sleeve", "target", "now", "after", "drift now", "drift after", "value now", "value after"]]
    for code, row in sleeves.items():
        rows.append(
            [
                str(code),
                percent(row.get("target")),
                percent(row.get("weight_before")),
                percent(row.get("weight_after")),
                points(row.get("drift_before")),
                points(row.get("drift_after")),
                money(row.get("value_before")),
                money(row.get("value_after")),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]


def text_lines(document: Mapping[str, Any]) -> list[str]:
    """``recommend --strategy``'s text: the decision, each account's lines and why, the
    household's allocation before and after, the sleeves no account can hold."""
    rationale = document.get("rationale") or {}
    out = [str(document.get("headline") or "")]
    why = why_by_account(rationale)
    for account in document.get("accounts") or []:
        name = str(account.get("portfolio"))
        treatment = account.get("tax_treatment")
        contribution = _decimal(account.get("contribution"))
        paid = f", contribution {format_gbp(contribution)}" if contribution else ""
        headline = str(account.get("headline") or "").removeprefix(f"{name}: ")
        out.append("")
        out.append(f"{name} ({treatment}{paid}): {headline}")
        lines = account.get("lines") or []
        out += [f"  {_line_text(line)}" for line in lines] or ["  nothing to trade"]
        out += [f"  why: {text}" for text in why.get(name, [])]
        tax = (account.get("constraints_report") or {}).get("tax")
        if isinstance(tax, Mapping) and tax.get("message"):
            out.append(f"  capital gains: {tax['message']}")
        for flag in ((account.get("rationale") or {}).get("tax") or {}).get("flags") or []:
            out.append(f"  warning: {flag.get('message')}")
    sleeves = sleeves_of(rationale)
    if sleeves:
        out.append("")
        out.append(f"Allocation across the household ({document.get('strategy')}), now and after the trades:")
        out += allocation_table(sleeves)
    notes = unholdable_words(unholdable(rationale))
    if notes:
        out.append("")
        out += notes
    return out


# --------------------------------------------------------------------------------------------
# The run report
# --------------------------------------------------------------------------------------------
def _section(css: str, title: str, *parts: str) -> str:
    return f'<section class="{css}"><h2>{_e(title)}</h2>{"".join(parts)}</section>'


def _p(text: str) -> str:
    return f"<p>{_e(text)}</p>"


def _list(items: Sequence[str]) -> str:
    return "<ul>" + "".join(f"<li>{_e(item)}</li>" for item in items) + "</ul>"


def _sleeve_of(reco: Mapping[str, Any]) -> dict[str, str]:
    positions = (reco.get("rationale") or {}).get("positions") or []
    return {listing(p): str(p.get("sleeve") or "") for p in positions}


def _account_part(account: Mapping[str, Any], why: Sequence[str]) -> str:
    reco = account.get("recommendation") or {}
    lines = [line for line in reco.get("lines") or [] if not line.get("suppressed_by_min_trade")]
    title = f"{account.get('portfolio')} ({account.get('tax_treatment')})"
    parts = [f'<h3>{_e(title)}</h3><p class="headline">{_e(reco.get("headline") or "")}</p>']
    if lines:
        parts.append(trades_table(lines, reco.get("constraints_report") or {}, _sleeve_of(reco)))
        gains = [
            f"{listing(line)}: estimated gain {money(line.get('estimated_gain_base'))}"
            for line in lines
            if line.get("estimated_gain_base") is not None
        ]
        if gains:
            parts.append(_list(gains))
    else:
        parts.append(_p("Nothing to trade in this account."))
    if why:
        parts.append(_list(why))
    tax = (reco.get("constraints_report") or {}).get("tax")
    if isinstance(tax, Mapping) and tax.get("message"):
        parts.append(_p(f"Capital gains: {tax['message']}"))
    flags = ((reco.get("rationale") or {}).get("tax") or {}).get("flags") or []
    if flags:
        parts.append(_list([f"⚠ {flag.get('message')}" for flag in flags]))
    return f'<div class="account">{"".join(parts)}</div>'


def report_sections(household: Mapping[str, Any]) -> str:
    """A household run's report body: what to do (the household's decision, then each
    account's trades), the household's allocation before and after, what was left alone and
    each account's cash. ``household``: as a run publishes it (``runs.household``)."""
    rationale = household.get("rationale") or {}
    accounts = household.get("accounts") or []
    why = why_by_account(rationale)
    decision = [f'<p class="headline">{_e(household.get("headline") or "")}</p>']
    decision += [_account_part(a, why.get(str(a.get("portfolio")), [])) for a in accounts]
    sleeves = sleeves_of(rationale)
    allocation = [
        _p(
            "The strategy's targets apply to every account together: the weights below are of the "
            "household's combined holdings and cash. Money never moves between accounts."
        )
    ]
    if sleeves:
        allocation.append(sleeves_table(sleeves, rationale.get("bands") or {}))
    allocation += [_p(text) for text in unholdable_words(unholdable(rationale))]
    parts = [
        _section("decision", "What to do", *decision),
        _section("why", "The household's allocation, now and after", *allocation),
    ]
    for account in accounts:
        reco = account.get("recommendation") or {}
        left = left_alone_section(reco).replace(
            "<h2>Left alone</h2>", f"<h2>Left alone in {_e(account.get('portfolio'))}</h2>"
        )
        cash = cash_section(reco.get("constraints_report") or {}).replace(
            "<h2>Cash</h2>", f"<h2>Cash in {_e(account.get('portfolio'))}</h2>"
        )
        parts += [left, cash]
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# The approval view
# --------------------------------------------------------------------------------------------
def approval_header_html(summary: Mapping[str, Any], members: Sequence[Mapping[str, Any]]) -> str:
    """The head of a household's group of cards: its decision, the allocation across its
    accounts before and after per sleeve, and the sleeves no account can hold. ``summary``: an
    account's ``rationale["household"]``; ``members``: the group's recommendations."""
    names = ", ".join(str(m.get("portfolio")) for m in members)
    rows = []
    for code, row in (summary.get("sleeves") or {}).items():
        rows.append(
            f"<tr><td><b>{_e(code)}</b></td><td class='num'>{percent(row.get('target'))}</td>"
            f"<td class='num'>{percent(row.get('weight_before'))}</td>"
            f"<td class='num'>{points(row.get('drift_before'))}</td>"
            f"<td class='num'>{percent(row.get('weight_after'))}</td>"
            f"<td class='num'>{points(row.get('drift_after'))}</td></tr>"
        )
    table = (
        "<table class='ta-table ta-household-sleeves'><tr><th>Sleeve</th><th class='num'>Target</th>"
        "<th class='num'>Household now</th><th class='num'>Drift now</th>"
        "<th class='num'>Household after</th><th class='num'>Drift after</th></tr>"
        + "".join(rows)
        + "</table>"
        if rows
        else ""
    )
    notes = "".join(
        f"<div class='ta-muted'>{_e(text)}</div>" for text in unholdable_words(unholdable(summary))
    )
    return (
        "<div class='ta-household'>"
        f"<div><b>Household plan</b> · strategy {_e(summary.get('strategy'))} · {_e(names)}</div>"
        f"<div class='ta-headline'>{_e(summary.get('headline') or '')}</div>{table}{notes}</div>"
    )


def body_html(household: Mapping[str, Any], *, issues: Sequence[Mapping[str, Any]] = ()) -> str:
    """A household run's whole report body (``report_sections``, then the alerts it raised)."""
    return f'<div class="ta-report">{report_sections(household)}{issues_section(issues)}</div>'
