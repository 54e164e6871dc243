"""The body of a run's report: what to do, why, what was left alone, the cash.

Pure: plain values in (the result a task notebook computed: the engine's recommendation as
``to_json_dict``, its tables, its issues), HTML out. A task notebook displays it; the runner
puts it inside the page (``run_page``) together with what only the recorded run knows (the
review, the input hash). Words, not column names; money through ``format_gbp``; weights as
percentages; dates as a person in the UK writes them. Everything is escaped.

For a recommendation, in order:

1. **What to do**: the headline and the trades to place (action, listing, sleeve, units,
   amount and fee), with the totals; or why there is nothing to trade.
2. **Why**: each sleeve's weight and drift now and after the trades against its target and
   band, as two charts and a table.
3. **Left alone**: lines below the minimum trade, holdings outside the strategy, without a
   (recent) price, excluded or not monitored, sleeves that cannot be held, a frozen portfolio.
4. **Cash**: cash now, contribution, buffer, what was available, spent, paid in fees and left.

A price check (``ALERT_ONLY``) shows each listing's latest good price and its age; a price
refresh what each download did. The alerts a run raised close the body.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ..core.money import decimal_str, format_gbp
from ..core.timeutil import uk_date
from ..engine.scope import REASON_WORDS
from .html import cell_text, reason_words, table_html
from .run_charts import allocation_chart, band_of, drift_chart, number

BLOCKING = "stops the recommendation: a holding is never valued at zero"
FROZEN_RULE = "PORTFOLIO_FROZEN"


def _e(text: object) -> str:
    return html.escape(str(text))


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def money(value: Any) -> str:
    """An amount in the one money format (``£1,234.56``); ``—`` when there is none."""
    amount = _decimal(value)
    return format_gbp(amount) if amount is not None else "—"


def units_text(value: Any) -> str:
    amount = _decimal(value)
    if amount is None:
        return ""
    return f"{amount.normalize():,f}" if amount == amount.to_integral_value() else decimal_str(amount) or ""


def percent(value: Any) -> str:
    """A weight as a percentage to one decimal place: ``69.1%``."""
    return f"{100 * number(value):.1f}%"


def points(value: Any) -> str:
    """A drift in percentage points, signed: ``+4.0 pts``, ``−0.9 pts``."""
    shown = f"{100 * number(value):+.1f}".replace("-", "−")
    return "±0.0 pts" if shown in ("+0.0", "−0.0") else f"{shown} pts"


def listing(row: Mapping[str, Any]) -> str:
    return f"{row.get('ticker')}:{row.get('exchange')}"


def _table(rows: Sequence[Mapping[str, Any]], numeric: Sequence[str] = ()) -> str:
    return table_html(rows, numeric=numeric, cell=lambda v: "" if v is None else str(v))


def _section(css: str, title: str, *parts: str) -> str:
    return f'<section class="{css}"><h2>{_e(title)}</h2>{"".join(parts)}</section>'


def _p(text: str, css: str = "") -> str:
    return f'<p class="{css}">{_e(text)}</p>' if css else f"<p>{_e(text)}</p>"


def _list(items: Sequence[str]) -> str:
    return "<ul>" + "".join(f"<li>{_e(item)}</li>" for item in items) + "</ul>"


def svg_img(svg: bytes, alt: str) -> str:
    """An SVG as an ``<img>`` (a data URI keeps each chart's ids to itself), sized by CSS."""
    data = base64.b64encode(svg).decode("ascii")
    return f'<img class="chart" alt="{_e(alt)}" src="data:image/svg+xml;base64,{data}">'


# --------------------------------------------------------------------------------------------
# A recommendation
# --------------------------------------------------------------------------------------------
def _sleeve_of(rationale: Mapping[str, Any]) -> dict[str, str]:
    return {listing(p): str(p.get("sleeve") or "") for p in rationale.get("positions") or []}


def trades_table(
    lines: Sequence[Mapping[str, Any]], report: Mapping[str, Any], sleeves: Mapping[str, str]
) -> str:
    fee = money(report.get("fee_per_trade"))
    rows = [
        {
            "Action": "Buy" if line["action"] == "BUY" else "Sell",
            "Listing": listing(line),
            "Sleeve": sleeves.get(listing(line), ""),
            "Units": units_text(line.get("estimated_units")),
            "Amount": money(line.get("amount_base")),
            "Fee": fee,
            "Why": reason_words(line.get("reason_code")),
        }
        for line in lines
    ]
    totals = []
    for key, label in (("buy_consideration", "bought"), ("sell_consideration", "sold")):
        if _decimal(report.get(key)):
            totals.append(f"{label} {money(report.get(key))}")
    totals.append(f"fees {money(report.get('fees'))}")
    return _table(rows, numeric=("Units", "Amount", "Fee")) + _p(
        "In total: " + ", ".join(totals) + ".", "totals"
    )


def decision_section(reco: Mapping[str, Any]) -> str:
    lines = reco.get("lines") or []
    executed = [line for line in lines if not line.get("suppressed_by_min_trade")]
    report = reco.get("constraints_report") or {}
    parts = [f'<p class="headline">{_e(reco.get("headline") or "")}</p>']
    if executed:
        count = "this trade" if len(executed) == 1 else f"these {len(executed)} trades"
        parts.append(_p(f"Place {count} at your broker:"))
        parts.append(trades_table(executed, report, _sleeve_of(reco.get("rationale") or {})))
    else:
        parts.append(_p("Nothing to trade.", "nothing"))
    return _section("decision", "What to do", *parts)


def _why_words(reco: Mapping[str, Any]) -> list[str]:
    rationale = reco.get("rationale") or {}
    report = reco.get("constraints_report") or {}
    words = []
    if rationale.get("kind") == "MONTHLY_ALLOC":
        words.append(
            f"This month's allocation invests what is available: {money(report.get('money_available'))} "
            f"(cash {money(report.get('cash'))} plus the contribution {money(report.get('contribution'))}, "
            f"less the buffer of {money(report.get('cash_buffer'))})."
        )
    before, after = rationale.get("breached_before") or [], rationale.get("breached_after") or []
    if before:
        words.append(f"Outside the band before the trades: {', '.join(before)}.")
        words.append(
            f"Still outside after them: {', '.join(after)}."
            if after
            else "After the trades every sleeve is within its band."
        )
    elif rationale.get("sleeves"):
        words.append("Every sleeve is within its band.")
    if rationale.get("proven_optimal") is False:
        words.append(
            "The search stopped at its node limit: this is the best list found, not a proven optimum."
        )
    return words


def sleeves_table(sleeves: Mapping[str, Mapping[str, Any]], bands: Mapping[str, Any]) -> str:
    def status(row: Mapping[str, Any]) -> str:
        before, after = bool(row.get("breached_before")), bool(row.get("breached_after"))
        return {
            (True, True): "outside its band, still outside",
            (True, False): "outside its band, back inside",
            (False, True): "inside its band, outside after",
        }.get((before, after), "within its band")

    rows = [
        {
            "Sleeve": code,
            "Target": percent(row.get("target")),
            "Band": f"±{100 * band_of(row.get('target'), bands):.1f} pts",
            "Now": percent(row.get("weight_before")),
            "After": percent(row.get("weight_after")),
            "Drift now": points(row.get("drift_before")),
            "Drift after": points(row.get("drift_after")),
            "Value now": money(row.get("value_before")),
            "Value after": money(row.get("value_after")),
            "Status": status(row),
        }
        for code, row in sleeves.items()
    ]
    numeric = ("Target", "Band", "Now", "After", "Drift now", "Drift after", "Value now", "Value after")
    return _table(rows, numeric=numeric)


def why_section(reco: Mapping[str, Any], *, charts: bool = True) -> str:
    rationale = reco.get("rationale") or {}
    sleeves, bands = rationale.get("sleeves") or {}, rationale.get("bands") or {}
    parts = [_p(text) for text in _why_words(reco)]
    if sleeves:
        if charts:
            parts.append(
                '<div class="charts">'
                + svg_img(allocation_chart(sleeves), "Allocation by sleeve: now, after the trades, target")
                + svg_img(
                    drift_chart(sleeves, bands), "Drift from target now and after the trades, with bands"
                )
                + "</div>"
            )
        parts.append(sleeves_table(sleeves, bands))
    return _section("why", "Why", *parts)


def left_alone_items(reco: Mapping[str, Any]) -> list[str]:
    """What the recommendation did not touch, each with why."""
    rationale = reco.get("rationale") or {}
    report = reco.get("constraints_report") or {}
    items = []
    if FROZEN_RULE in (rationale.get("rules_fired") or []):
        items.append("The portfolio is frozen: nothing is traded until the freeze is cleared.")
    minimum = money(report.get("min_trade"))
    for line in reco.get("lines") or []:
        if line.get("suppressed_by_min_trade"):
            action = "Buy" if line["action"] == "BUY" else "Sell"
            items.append(
                f"{action} {units_text(line.get('estimated_units'))} {listing(line)} "
                f"({money(line.get('amount_base'))}): below the minimum trade of {minimum}, not to place."
            )
    blocking = {listing(e) for e in rationale.get("unpriced_holdings") or []}
    for entry in rationale.get("left_alone") or []:
        reason = REASON_WORDS.get(str(entry.get("reason")), str(entry.get("reason") or "").lower())
        value = entry.get("value_base")
        worth = "value unknown" if value is None else money(value)
        tail = f"; {BLOCKING}" if listing(entry) in blocking else ""
        items.append(f"{listing(entry)} ({worth}): {reason}{tail}.")
    for code in rationale.get("untargeted_sleeves") or []:
        items.append(f"Sleeve {code}: held, but the strategy gives it no target.")
    for code in rationale.get("sleeves_not_held") or []:
        items.append(
            f"Sleeve {code}: no listing this portfolio can buy; its target was shared among the others."
        )
    return items


def left_alone_section(reco: Mapping[str, Any]) -> str:
    items = left_alone_items(reco)
    if not items:
        return _section(
            "left-alone", "Left alone", _p("Nothing: every holding is in the strategy and priced.")
        )
    return _section("left-alone", "Left alone", _list(items))


def cash_section(report: Mapping[str, Any]) -> str:
    rows = [
        ("Cash now", "cash"),
        ("Contribution", "contribution"),
        ("Kept as a buffer", "cash_buffer"),
        ("Available to invest", "money_available"),
        ("Bought", "buy_consideration"),
        ("Sold", "sell_consideration"),
        ("Fees", "fees"),
        ("Left unspent above the buffer", "cash_left"),
        ("Cash after the trades", "cash_after"),
    ]
    shown = [{"Cash": label, "Amount": money(report.get(key))} for label, key in rows if key in report]
    return _section("cash", "Cash", _table(shown, numeric=("Amount",)))


def recommendation_sections(reco: Mapping[str, Any], *, charts: bool = True) -> str:
    return (
        decision_section(reco)
        + why_section(reco, charts=charts)
        + left_alone_section(reco)
        + cash_section(reco.get("constraints_report") or {})
    )


# --------------------------------------------------------------------------------------------
# Prices checked, prices refreshed, anything else
# --------------------------------------------------------------------------------------------
def _day(value: Any) -> str:
    if not value:
        return ""
    try:
        return uk_date(datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def prices_section(rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> str:
    def status(row: Mapping[str, Any]) -> str:
        if row.get("as_of") is None:
            return "no price"
        return "too old" if row.get("is_stale") else "ok"

    several = len({row.get("portfolio") for row in rows}) > 1
    shown = [
        {
            **({"Portfolio": row.get("portfolio")} if several else {}),
            "Listing": listing(row),
            "Latest good price": money(row.get("price_gbp")),
            "Price date": _day(row.get("as_of")),
            "Age (business days)": "" if row.get("age_business_days") is None else row["age_business_days"],
            "Status": status(row),
        }
        for row in rows
    ]
    words = (
        f"{summary.get('listings_checked', len(rows))} listing(s) checked: "
        f"{summary.get('missing', 0)} without a price, {summary.get('stale', 0)} with a price too old."
    )
    return _section(
        "prices",
        "Prices checked",
        _p(words),
        _table(shown, numeric=("Latest good price", "Age (business days)")),
    )


def refresh_section(rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> str:
    def note(row: Mapping[str, Any]) -> str:
        flagged = ", ".join(f"{k} {v}" for k, v in (row.get("flagged") or {}).items())
        return "; ".join(
            p for p in (str(row.get("message") or ""), f"flagged: {flagged}" if flagged else "") if p
        )

    shown = [
        {
            "Listing": listing(row),
            "Provider": row.get("provider") or "",
            "Result": row.get("status"),
            "New prices": row.get("inserted"),
            "Unchanged": row.get("unchanged"),
            "Conflicts": row.get("conflicts"),
            "Note": note(row),
        }
        for row in rows
    ]
    words = (
        f"{summary.get('listings', len(rows))} listing(s): {summary.get('refreshed', 0)} refreshed "
        f"({summary.get('inserted', 0)} new prices), {summary.get('skipped', 0)} skipped, "
        f"{summary.get('failed', 0)} failed."
    )
    return _section(
        "refresh",
        "Prices refreshed",
        _p(words),
        _table(shown, numeric=("New prices", "Unchanged", "Conflicts")),
    )


def heading(name: str) -> str:
    """A table's or a key's name as a heading: ``recommendation_lines`` -> ``Recommendation lines``."""
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def generic_section(name: str, rows: Sequence[Mapping[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    shown = [{heading(c): cell_text(row.get(c)) for c in columns} for row in rows]
    return _section("table", heading(name), _table(shown))


def issues_section(issues: Sequence[Mapping[str, Any]]) -> str:
    if not issues:
        return ""
    items = [f"{issue.get('severity')}: {issue.get('message')}" for issue in issues]
    return _section("issues", "Alerts this run raised", _list(items))


SECTIONS: Mapping[str, Callable[[Sequence[Mapping[str, Any]], Mapping[str, Any]], str]] = {
    "prices": prices_section,
    "refresh": refresh_section,
}
SHOWN_ELSEWHERE = {"recommendation_lines", "sleeves"}  # a recommendation's own sections show them


def body_html(
    *,
    recommendation: Mapping[str, Any] | None,
    tables: Mapping[str, Sequence[Mapping[str, Any]]],
    summary: Mapping[str, Any],
    issues: Sequence[Mapping[str, Any]] = (),
    charts: bool = True,
) -> str:
    """The report's body: a recommendation's sections (even one with no trade), then each
    other table, then the alerts the run raised."""
    parts = [recommendation_sections(recommendation, charts=charts)] if recommendation is not None else []
    for name, rows in tables.items():
        if name in SHOWN_ELSEWHERE and recommendation is not None:
            continue
        if rows and name in SECTIONS:
            parts.append(SECTIONS[name](rows, summary))
        elif rows:
            parts.append(generic_section(name, rows))
        elif name in SECTIONS:
            parts.append(_section(name, heading(name), _p("Nothing to show.")))
    parts.append(issues_section(issues))
    return f'<div class="ta-report">{"".join(parts)}</div>'
