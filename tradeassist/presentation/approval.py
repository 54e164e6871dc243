"""The approval view's HTML: pure functions from the recommendation dicts the service returns
(``tradeassist.services.recommendations``) to escaped HTML, the page's stylesheet, and the
text a fills grid starts with (``fill_default``)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.money import decimal_str, format_gbp, round_cash
from ..core.timeutil import LONDON
from ..core.units import unit_name
from ..services.fill_estimates import FillEstimate, number, word
from ..services.governance import FreezeStatus
from .html import freeze_words, reason_words

GREEN, AMBER, RED, BLUE, SLATE, GREY = "#2e7d32", "#ef8f00", "#c62828", "#1565c0", "#546e7a", "#9e9e9e"
VERDICT_COLOURS = {"PASS": GREEN, "WARN": AMBER, "FAIL": RED}
STATUS_COLOURS = {"DRAFT": SLATE, "REVIEWED": BLUE, "EXECUTED": GREEN, "IGNORED": GREY}
STATUS_NOTES = {
    "DRAFT": "waiting for your approval",
    "REVIEWED": "approved, waiting to be marked executed",
    "EXECUTED": "executed: its fills are in the ledger",
    "IGNORED": "ignored",
}
KIND_NAMES = {
    "MONTHLY_ALLOC": "monthly allocation",
    "QUARTERLY_REBAL": "quarterly rebalance",
    "WEEKLY_REVIEW": "weekly review",
}
SEVERITY_COLOURS = {"CRITICAL": RED, "WARN": AMBER, "INFO": BLUE}

STYLE = """
<style>
.ta-approval { max-width: 1120px; font-size: 14px; }
.ta-approval h2 { margin: 4px 0; }
.ta-muted { color: #607d8b; font-size: 12px; }
.ta-headline { font-size: 15px; margin: 6px 0; }
.ta-card { border: 1px solid #cfd8dc; border-left: 6px solid #546e7a; border-radius: 8px;
           padding: 10px 14px !important; margin: 10px 0 !important; background: #fff; }
.ta-card.ta-verdict-PASS { border-left-color: #2e7d32; }
.ta-card.ta-verdict-WARN { border-left-color: #ef8f00; }
.ta-card.ta-verdict-FAIL { border-left-color: #c62828; }
.ta-badge { display: inline-block; padding: 1px 9px; border-radius: 10px; color: #fff;
            font-weight: 600; font-size: 12px; margin-right: 6px; }
.ta-approval .ta-table { border-collapse: collapse; margin: 4px 0 8px 0; }
.ta-approval .ta-table th { text-align: left; background: #eceff1; padding: 2px 10px;
                            font-weight: 600; line-height: 1.5; }
.ta-approval .ta-table td { padding: 2px 10px; border-bottom: 1px solid #eceff1; line-height: 1.5; }
.ta-approval .ta-table td.num, .ta-approval .ta-table th.num { text-align: right;
                                                               font-variant-numeric: tabular-nums; }
.ta-approval .ta-table tr.ta-suppressed td { color: #9e9e9e; }
.ta-verdicts ul { margin: 2px 0 6px 0; }
.ta-banner-frozen { background: #c62828; color: #fff; padding: 10px 14px; border-radius: 6px;
                    margin: 6px 0; }
.ta-banner-frozen code { color: #fff; background: rgba(255,255,255,.15); }
.ta-alert-list { margin: 4px 0 8px 0; padding-left: 20px; }
.ta-status .ta-msg, .ta-card-status .ta-msg { padding: 6px 10px; margin: 2px 0; border-radius: 4px;
                                              background: #f1f8e9; }
.ta-status .ta-msg.ta-error, .ta-card-status .ta-msg.ta-error { background: #ffebee; }
.ta-status .ta-msg:not(:first-child) { opacity: .55; font-size: 12px; padding: 2px 10px; }
.ta-fills { background: #f5f7f8; border-radius: 6px; padding: 8px !important; }
.ta-household { border: 1px dashed #90a4ae; border-radius: 10px; padding: 6px 10px !important;
                margin: 10px 0 !important; }
.ta-household .ta-household-sleeves td, .ta-household .ta-household-sleeves th { padding: 2px 10px; }
</style>
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def percent(value: Any, signed: bool = False) -> str:
    figure = number(value)
    return "" if figure is None else f"{figure * 100:{'+' if signed else ''}.2f}%"


def units_text(value: Any) -> str:
    """Units as typed: 20, not 20.0000."""
    figure = number(value)
    if figure is None:
        return ""
    return decimal_str(figure.normalize() if figure == figure.to_integral() else figure) or "0"


def when(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "astimezone"):
        return value.astimezone(LONDON).strftime("%d %b %Y %H:%M")
    return str(value)


def badge(text: str, colour: str, tooltip: str = "") -> str:
    title = f' title="{esc(tooltip)}"' if tooltip else ""
    return f'<span class="ta-badge" style="background:{colour}"{title}>{esc(text)}</span>'


def status_badge(status: str) -> str:
    return badge(status, STATUS_COLOURS.get(status, SLATE), STATUS_NOTES.get(status, ""))


def verdict_of(recommendation: Mapping[str, Any]) -> str | None:
    """The latest verdict's word (PASS/WARN/FAIL), or None when never reviewed."""
    latest = recommendation.get("latest_verdict")
    if isinstance(latest, Mapping):
        latest = latest.get("verdict")
    if latest is None and recommendation.get("verdicts"):
        latest = recommendation["verdicts"][-1].get("verdict")
    return None if latest is None else word(latest)


def verdict_badge(verdict: str | None) -> str:
    if verdict is None:
        return badge("no review yet", GREY)
    return badge(f"review {verdict}", VERDICT_COLOURS.get(verdict, SLATE))


def title_html(recommendation: Mapping[str, Any]) -> str:
    status = word(recommendation["status"])
    kind = KIND_NAMES.get(word(recommendation.get("kind")), "") if recommendation.get("kind") else ""
    run = f" · {kind} run {recommendation['run_id']}" if recommendation.get("run_id") else ""
    return (
        f"<div>{status_badge(status)}{verdict_badge(verdict_of(recommendation))}"
        f"<b>Recommendation #{recommendation['recommendation_id']}</b>"
        f" · {esc(recommendation.get('portfolio'))}"
        f" <span class='ta-muted'>· {esc(STATUS_NOTES.get(status, ''))} · created "
        f"{when(recommendation.get('created_at'))}{run}</span></div>"
        f"<div class='ta-headline'>{esc(recommendation.get('headline'))}</div>"
    )


def lines_html(lines: Sequence[Mapping[str, Any]]) -> str:
    if not lines:
        return "<div><em>No lines.</em></div>"
    taxed = any(line.get("estimated_gain_base") is not None for line in lines)
    gain_head = "<th class='num'>Gain (est.)</th>" if taxed else ""
    head = (
        "<tr><th>Action</th><th>Ticker</th><th>Exchange</th><th class='num'>Units (est.)</th>"
        f"<th class='num'>Amount</th>{gain_head}<th>Reason</th></tr>"
    )
    body = []
    for line in lines:
        gain = line.get("estimated_gain_base")
        gain_cell = (
            f"<td class='num'>{format_gbp(number(gain)) if gain is not None else ''}</td>" if taxed else ""
        )
        suppressed = bool(line.get("suppressed_by_min_trade"))
        note = esc(reason_words(line.get("reason_code"))) + (
            " · below the minimum trade: not to be done" if suppressed else ""
        )
        body.append(
            f"<tr class='{'ta-suppressed' if suppressed else ''}'>"
            f"<td><b>{esc(word(line.get('action')))}</b></td><td>{esc(line.get('ticker'))}</td>"
            f"<td>{esc(line.get('exchange'))}</td>"
            f"<td class='num'>{units_text(line.get('estimated_units'))}</td>"
            f"<td class='num'>{format_gbp(number(line.get('amount_base')))}</td>{gain_cell}"
            f"<td>{note}</td></tr>"
        )
    return f"<table class='ta-table ta-lines'>{head}{''.join(body)}</table>"


def verdicts_html(verdicts: Sequence[Mapping[str, Any]], can_review: bool = True) -> str:
    if not verdicts:
        hint = " Press <b>Review</b> to run the reviewer." if can_review else ""
        return f"<div class='ta-muted'>No review verdict yet.{hint}</div>"
    parts = []
    for v in reversed(verdicts):  # newest first
        reasons = v.get("reasons") or []
        if isinstance(reasons, str):
            reasons = [reasons]
        items = "".join(f"<li>{esc(r)}</li>" for r in reasons)
        parts.append(
            f"<div>{verdict_badge(word(v.get('verdict')))}<span class='ta-muted'>{esc(v.get('provider'))}"
            f" / {esc(v.get('model'))} · {when(v.get('created_at'))}</span>"
            f"{f'<ul>{items}</ul>' if items else ''}</div>"
        )
    return f"<div class='ta-verdicts'>{''.join(parts)}</div>"


def rationale_html(rationale: Mapping[str, Any], report: Mapping[str, Any]) -> str:
    """Drift per sleeve before and after, the rules that fired, and where the money goes."""
    rows = []
    for name, s in (rationale.get("sleeves") or {}).items():
        flag_before = " ⚠" if s.get("breached_before") else ""
        flag_after = " ⚠" if s.get("breached_after") else ""
        rows.append(
            f"<tr><td><b>{esc(name)}</b></td><td class='num'>{percent(s.get('target'))}</td>"
            f"<td class='num'>{percent(s.get('weight_before'))}</td>"
            f"<td class='num'>{percent(s.get('drift_before'), True)}{flag_before}</td>"
            f"<td class='num'>{percent(s.get('weight_after'))}</td>"
            f"<td class='num'>{percent(s.get('drift_after'), True)}{flag_after}</td></tr>"
        )
    table = (
        "<table class='ta-table ta-sleeves'><tr><th>Sleeve</th><th class='num'>Target</th>"
        "<th class='num'>Weight before</th><th class='num'>Drift before</th>"
        "<th class='num'>Weight after</th><th class='num'>Drift after</th></tr>" + "".join(rows) + "</table>"
        if rows
        else ""
    )
    bands = rationale.get("bands") or {}
    band_text = (
        f"<div class='ta-muted'>Bands: ±{percent(bands.get('absolute'))} absolute, "
        f"±{percent(bands.get('relative'))} of the target (⚠ = outside its band).</div>"
        if bands
        else ""
    )
    rules = ", ".join(str(r) for r in rationale.get("rules_fired") or [])
    money = (
        ("Cash", "cash"),
        ("Contribution", "contribution"),
        ("Cash buffer", "cash_buffer"),
        ("Money available", "money_available"),
        ("Sells", "sell_consideration"),
        ("Buys", "buy_consideration"),
        ("Fees", "fees"),
        ("Left unspent", "cash_left"),
    )
    money_rows = "".join(
        f"<tr><td>{label}</td><td class='num'>{format_gbp(number(report[key]))}</td></tr>"
        for label, key in money
        if report.get(key) is not None and (key != "contribution" or number(report[key]))
    )
    drift = table + band_text + (f"<div><b>Rules fired:</b> {esc(rules)}</div>" if rules else "")
    why = rationale.get("why") or []  # a household's account: why money went here
    if why:
        items = "".join(f"<li>{esc(text)}</li>" for text in why)
        drift += f"<div><b>Why this account:</b><ul>{items}</ul></div>"
    drift += tax_html(rationale, report)
    cash = f"<table class='ta-table ta-money'>{money_rows}</table>" if money_rows else ""
    return (
        "<div style='display:flex;flex-wrap:wrap;gap:8px 40px;align-items:flex-start'>"
        f"<div>{drift}</div><div>{cash}</div></div>"
    )


def tax_html(rationale: Mapping[str, Any], report: Mapping[str, Any]) -> str:
    """Capital gains in a general account: the estimate against the exempt amount left, and
    any purchase that HMRC would match with a recent sale (bed and breakfast)."""
    tax = report.get("tax")
    if not tax:
        return ""
    flags = (rationale.get("tax") or {}).get("flags") or []
    colour = GREEN if tax.get("within_exempt_amount") else AMBER
    items = "".join(f"<li>⚠ {esc(flag.get('message'))}</li>" for flag in flags)
    return (
        f"<div><b>Capital gains tax:</b> <span style='color:{colour}'>{esc(tax.get('message'))}</span>"
        f"{f'<ul>{items}</ul>' if items else ''}</div>"
    )


def freeze_banner_html(frozen: Sequence[tuple[str, FreezeStatus]]) -> str:
    parts = []
    for name, status in frozen:
        detail = f" ({esc(status.reason_detail)})" if status.reason_detail else ""
        why = esc(freeze_words(status.reason_code))
        parts.append(
            "<div class='ta-banner-frozen'>"
            f"<b>❄ {esc(name)} is frozen</b> since {when(status.set_at)}: {why}{detail}."
            " Approving and executing wait until a person clears the freeze: "
            f"<code>tradeassist freeze clear --portfolio &quot;{esc(name)}&quot; --reason ...</code></div>"
        )
    return "".join(parts)


def alerts_html(alerts: Sequence[Mapping[str, Any]]) -> str:
    if not alerts:
        return ""
    items = []
    for a in alerts:
        severity = word(a["severity"])
        where = f" · {esc(a['portfolio'])}" if a.get("portfolio") else ""
        items.append(
            f"<li>{badge(severity, SEVERITY_COLOURS.get(severity, SLATE))}<b>{esc(a['code'])}</b>{where}: "
            f"{esc(a['message'])} <span class='ta-muted'>({when(a.get('created_at'))}, "
            f"alert {a['alert_id']})</span></li>"
        )
    return f"<div><b>Open alerts ({len(alerts)})</b><ul class='ta-alert-list'>{''.join(items)}</ul></div>"


def empty_html() -> str:
    return (
        "<div class='ta-muted' style='margin:10px 0'>No recommendations waiting for a decision. "
        "A task run stores one: <code>tradeassist demo</code> (or <code>make demo</code>) runs the demo's "
        "tasks; <code>tradeassist tasks run NAME</code> runs one.</div>"
    )


def summary_html(pending: Sequence[Mapping[str, Any]]) -> str:
    if not pending:
        return empty_html()
    waiting = sum(1 for r in pending if word(r["status"]) == "DRAFT")
    return (
        f"<div class='ta-muted'>{len(pending)} recommendation(s) shown, {waiting} waiting for approval.</div>"
    )


@dataclass(frozen=True)
class FillDefault:
    """What the fills grid starts with for one line (text, as typed): the recommendation's estimate."""

    ticker: str
    exchange: str
    action: str
    units: str
    price: str
    quote_unit: str
    fees: str
    consideration: str | None = None  # GBP, for a listing quoted in another currency


def fill_default(estimate: FillEstimate) -> FillDefault:
    """An estimated fill as the grid shows it: units as typed, the price in its quote unit
    (``pence`` for GBX), fees to the penny, the consideration rounded to the penny."""
    return FillDefault(
        ticker=estimate.ticker,
        exchange=estimate.exchange,
        action=estimate.action,
        units=units_text(estimate.units),
        price="" if estimate.price is None else decimal_str(estimate.price) or "",
        quote_unit=unit_name(estimate.quote_scale),
        fees="" if estimate.fee is None else f"{estimate.fee:.2f}",
        consideration=None
        if estimate.consideration is None
        else decimal_str(round_cash(estimate.consideration)),
    )
