"""Emails about a run: ``report email`` (summary, inline charts, the report attached) and the
outbox's RECOMMENDATION_READY notification (the decision itself: trades, review, report).

Email clients run no JavaScript and many show no SVG, so a message carries what matters at a
glance in its own body: the headline, the trades to place (pounds and pence, units, fees), the
review verdict with its reasons, the portfolio's open alerts, and for ``report email`` the two
charts as PNG inline parts (``<img src="cid:...">``). The run's HTML report (self-contained,
well under a megabyte) travels as an attachment, or for a notification by its path. A
plain-text alternative says the same in words.

Pure but for ``run_email``, which reads through ``services.reports`` inside the caller's
transaction; sending is ``services.reports.send_email`` or the outbox's ``notify dispatch``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from sqlmodel import Session

from ..core.timeutil import uk_moment
from ..providers.channels import OutgoingMessage
from ..services.reports import RunSummary, read_report, run_summary
from ..services.workflows import StoredRecommendation
from .run_charts import allocation_chart, drift_chart
from .run_page import KIND_TITLES
from .run_report import listing, money, units_text

ALLOCATION_CID = "allocation"
DRIFT_CID = "drift"
MAX_ALERTS = 20
MAX_REASONS = 10
VERDICT_COLOURS = {"PASS": "#2e7d32", "WARN": "#b34700", "FAIL": "#c62828"}
LINE_HEADINGS = ("Action", "Listing", "Units", "Amount", "Fee")


def _e(text: object) -> str:
    return html.escape(str(text))


def line_cells(line: Mapping[str, Any], fee: Any) -> list[str]:
    """One trade as words: ``Buy``, ``ISF:XLON``, ``47``, ``£322.16``, ``£1.50``."""
    action = "Buy" if line["action"] == "BUY" else "Sell"
    shown_fee = money(fee) if not line.get("suppressed_by_min_trade") else "not to place: below the minimum"
    return [
        action,
        listing(line),
        units_text(line.get("estimated_units")),
        money(line.get("amount_base")),
        shown_fee,
    ]


def lines_text(lines: Sequence[Mapping[str, Any]], fee: Any) -> list[str]:
    return ["  " + "  ".join(line_cells(line, fee)) for line in lines]


def lines_html(lines: Sequence[Mapping[str, Any]], fee: Any) -> str:
    head = "".join(f'<th align="left">{h}</th>' for h in LINE_HEADINGS)
    rows = "".join(
        "<tr>"
        + "".join(
            f'<td align="{"right" if i >= 2 else "left"}">{_e(cell)}</td>'
            for i, cell in enumerate(line_cells(line, fee))
        )
        + "</tr>"
        for line in lines
    )
    return f'<table cellpadding="4" style="border-collapse:collapse"><tr>{head}</tr>{rows}</table>'


def verdict_text(verdict: Mapping[str, Any] | None) -> list[str]:
    if verdict is None:
        return ["Review: not made (review it with `tradeassist reco review` before trading)"]
    reasons = list(verdict.get("reasons") or [])[:MAX_REASONS]
    return [f"Review: {verdict['verdict']} ({verdict['provider']})", *[f"  - {r}" for r in reasons]]


def verdict_html(verdict: Mapping[str, Any] | None) -> str:
    if verdict is None:
        return (
            "<h3>Review: not made</h3>"
            "<p>Review it with <code>tradeassist reco review</code> before trading.</p>"
        )
    word = str(verdict["verdict"])
    colour = VERDICT_COLOURS.get(word, "black")
    reasons = "".join(f"<li>{_e(r)}</li>" for r in list(verdict.get("reasons") or [])[:MAX_REASONS])
    return (
        f'<h3>Review: <span style="color:{colour}">{_e(word)}</span> '
        f"<small>({_e(verdict['provider'])})</small></h3><ul>{reasons}</ul>"
    )


# --------------------------------------------------------------------------------------------
# The outbox's RECOMMENDATION_READY notification
# --------------------------------------------------------------------------------------------
def ready_payload(stored: StoredRecommendation) -> dict[str, Any]:
    """The notification telling the owner a recommendation awaits a decision: its trades, the
    review verdict, what to do next and where the report is."""
    fee = stored.constraints_report.get("fee_per_trade")
    verdict = stored.verdict
    word = str(verdict["verdict"]) if verdict is not None else "not reviewed"
    flag = f"[{word}] " if word in ("FAIL", "WARN") else ""
    report = stored.html_path or "(no report was saved)"
    body = [
        f"Recommendation {stored.recommendation_id} for {stored.portfolio} (run {stored.run_id}):",
        stored.headline,
        "",
        "Trades:",
        *lines_text(stored.lines, fee),
        "",
        *verdict_text(verdict),
        "",
        f"Report: {report}",
        f"Decide with `tradeassist reco approve {stored.recommendation_id}` (or `reco ignore`, "
        "`reco execute`) or the approval notebook.",
    ]
    page = (
        '<html><body style="font-family: sans-serif; max-width: 42em">'
        f"<h2>{_e(stored.headline)}</h2>"
        f"<p>Recommendation {stored.recommendation_id} for <b>{_e(stored.portfolio)}</b> "
        f"(run {stored.run_id})</p>"
        f"{verdict_html(verdict)}<h3>Trades</h3>{lines_html(stored.lines, fee)}"
        f"<p>Report: <code>{_e(report)}</code></p>"
        f"<p>Approve, ignore or execute it with <code>tradeassist reco</code> or the approval notebook.</p>"
        "</body></html>"
    )
    return {
        "subject": f"tradeassist: {flag}{stored.portfolio}: {stored.headline}"[:250],
        "body": "\n".join(body),
        "html": page,
        "run_id": stored.run_id,
        "recommendation_id": stored.recommendation_id,
        "portfolio": stored.portfolio,
        "headline": stored.headline,
        "verdict": verdict["verdict"] if verdict is not None else None,
        "reasons": list(verdict.get("reasons") or []) if verdict is not None else [],
        "lines": [dict(line) for line in stored.lines],
        "html_path": stored.html_path,
        "notebook_path": stored.notebook_path,
    }


# --------------------------------------------------------------------------------------------
# ``report email``
# --------------------------------------------------------------------------------------------
def _when(summary: RunSummary) -> str:
    return uk_moment(summary.as_of) if hasattr(summary.as_of, "astimezone") else str(summary.as_of)


def _about(summary: RunSummary) -> str:
    what = KIND_TITLES.get(summary.kind, summary.kind)
    return f"Run {summary.run_id}: {what} on {summary.portfolio or '(all portfolios)'}, {summary.status}"


def _text(summary: RunSummary, attached: bool) -> str:
    out = [summary.headline, "", f"{_about(summary)}, as of {_when(summary)}"]
    if summary.error:
        out.append(f"Error: {summary.error}")
    fee = summary.constraints_report.get("fee_per_trade")
    if summary.verdict or summary.lines:
        out += ["", *verdict_text(summary.verdict)]
    if summary.lines:
        out += ["", f"Trades (recommendation {summary.recommendation_id}, {summary.recommendation_status}):"]
        out += lines_text(summary.lines, fee)
    if summary.alerts:
        out += ["", f"Open alerts ({len(summary.alerts)}):"]
        out += [f"  [{a['severity']}] {a['code']}: {a['message']}" for a in summary.alerts[:MAX_ALERTS]]
    out += [
        "",
        "The full report is attached (open it in a browser)."
        if attached
        else "No full report was saved for this run.",
    ]
    return "\n".join(out) + "\n"


def _html(summary: RunSummary, images: Sequence[tuple[str, str]], attached: bool) -> str:
    parts = [
        '<html><body style="font-family: sans-serif; max-width: 42em">',
        f"<h2>{_e(summary.headline)}</h2>",
        f"<p>{_e(_about(summary))}, as of {_e(_when(summary))}</p>",
    ]
    if summary.error:
        parts.append(f'<p style="color:#c62828">Error: {_e(summary.error)}</p>')
    if summary.verdict or summary.lines:
        parts.append(verdict_html(summary.verdict))
    if summary.lines:
        fee = summary.constraints_report.get("fee_per_trade")
        parts.append(
            f"<h3>Trades</h3><p>Recommendation {summary.recommendation_id} "
            f"({_e(summary.recommendation_status or '')})</p>{lines_html(summary.lines, fee)}"
        )
    for cid, alt in images:
        parts.append(f'<p><img src="cid:{cid}" alt="{_e(alt)}" style="max-width:100%"></p>')
    if summary.alerts:
        parts.append(f"<h3>Open alerts ({len(summary.alerts)})</h3><ul>")
        parts += [
            f"<li><b>{_e(a['severity'])}</b> {_e(a['code'])}: {_e(a['message'])}</li>"
            for a in summary.alerts[:MAX_ALERTS]
        ]
        parts.append("</ul>")
    parts.append(
        "<p>The full report is attached (open it in a browser).</p>"
        if attached
        else "<p>No full report was saved for this run.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def build_message(summary: RunSummary, report: bytes | None) -> OutgoingMessage:
    """The email for ``summary``, with ``report`` (the run's HTML report) attached."""
    images: list[tuple[str, str]] = []
    inline: list[tuple[str, bytes]] = []
    if summary.sleeves:
        inline.append((ALLOCATION_CID, allocation_chart(summary.sleeves, "png")))
        images.append((ALLOCATION_CID, "Allocation by sleeve against target"))
        inline.append((DRIFT_CID, drift_chart(summary.sleeves, summary.bands, "png")))
        images.append((DRIFT_CID, "Drift from target with bands"))
    attachments: tuple[tuple[str, str, bytes], ...] = ()
    if report is not None:
        attachments = ((f"run-{summary.run_id}-{summary.kind}.html", "text/html", report),)
    where = f" on {summary.portfolio}" if summary.portfolio else ""
    flag = ""
    if summary.verdict and summary.verdict.get("verdict") in ("FAIL", "WARN"):
        flag = f"[{summary.verdict['verdict']}] "
    return OutgoingMessage(
        subject=f"tradeassist: {flag}{summary.kind} run {summary.run_id}{where}: {summary.headline}"[:250],
        text=_text(summary, report is not None),
        html=_html(summary, images, report is not None),
        inline_images=tuple(inline),
        attachments=attachments,
    )


def run_email(session: Session, *, actor: Any, run_id: int) -> tuple[OutgoingMessage, RunSummary]:
    """The email for run ``run_id`` (charts drawn, report read): nothing is sent."""
    summary = run_summary(session, actor=actor, run_id=run_id)
    return build_message(summary, read_report(summary)), summary
