"""A run's report by email: a short HTML summary with static charts, the full report attached.

Email clients run no JavaScript, so the interactive plotly report (the run's ``html_path``)
travels as an attachment, and the body carries what matters at a glance: the headline, the
proposed lines, the review verdict with its reasons, the portfolio's open alerts, and two PNG
charts drawn with matplotlib (Agg, no display, no browser): allocation against target by
sleeve, and drift against its bands. The images are inline parts that the HTML shows with
``<img src="cid:...">``; a plain-text alternative says the same in words.

``run_email`` reads (inside the caller's transaction); ``send_email`` sends with no
transaction open (the SMTP exchange has its own timeouts).
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlmodel import Session

from ..core.enums import TRADING_KINDS
from ..core.errors import TradeAssistError, ValidationError
from ..core.money import decimal_str, format_gbp
from ..db.models import Portfolio, Recommendation, RunInputSnapshot, TaskRun, User
from ..providers.channels import Channel as ChannelProvider
from ..providers.channels import DeliveryResult, OutgoingMessage, get_channel
from . import advice, governance, recommendations, run_history
from .task_kinds import parse_kind

ALLOCATION_CID = "allocation"
DRIFT_CID = "drift"
MAX_ALERTS = 20


@dataclass(frozen=True)
class RunSummary:
    """What the email says about one run."""

    run_id: int
    kind: str
    portfolio: str | None
    status: str
    as_of: Any
    headline: str
    lines: tuple[Mapping[str, Any], ...] = ()
    recommendation_id: int | None = None
    recommendation_status: str | None = None
    verdict: Mapping[str, Any] | None = None
    alerts: tuple[Mapping[str, Any], ...] = ()
    sleeves: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    bands: Mapping[str, Any] = field(default_factory=dict)
    html_path: str | None = None
    error: str | None = None


# --------------------------------------------------------------------------------------------
# Reading the run
# --------------------------------------------------------------------------------------------
def _recomputed(session: Session, run: TaskRun, kind: str) -> Mapping[str, Any] | None:
    """A run that stored no recommendation (nothing to trade) still has a rationale: the
    engine recomputes it from the run's input snapshot alone."""
    if run.status.value != "SUCCESS" or parse_kind(kind) not in TRADING_KINDS:
        return None
    snapshot = session.get(RunInputSnapshot, run.run_id)
    inputs = (snapshot.snapshot_json or {}).get("inputs") if snapshot else None
    if not isinstance(inputs, Mapping) or "state" not in inputs:
        return None
    try:
        return advice.recommend_from_snapshot(inputs).to_json_dict()
    except TradeAssistError:
        return None


def run_summary(session: Session, *, actor: User, run_id: int) -> RunSummary:
    """The run as the email shows it (access-checked like ``runs show``)."""
    detail = run_history.show_run(session, actor=actor, run_id=run_id)
    run = session.get(TaskRun, run_id)
    assert run is not None
    stored = detail["recommendation"]
    reco_row = None
    document: Mapping[str, Any] | None = None
    if stored is not None:
        reco_row = recommendations.get_recommendation(
            session, actor=actor, recommendation_id=stored["recommendation_id"]
        )
        reco = session.get(Recommendation, stored["recommendation_id"])
        assert reco is not None
        document = {"headline": reco.headline, "rationale": reco.rationale}
    else:
        document = _recomputed(session, run, detail["kind"])
    alerts: list[Mapping[str, Any]] = []
    if run.portfolio_id is not None:
        portfolio = session.get(Portfolio, run.portfolio_id)
        alerts = [
            governance.alert_row(a, portfolio.name if portfolio else None)
            for a in governance.open_alerts(session, portfolio_id=run.portfolio_id)
        ]
    rationale = (document or {}).get("rationale") or {}
    verdicts = reco_row["verdicts"] if reco_row else []
    return RunSummary(
        run_id=run_id,
        kind=detail["kind"],
        portfolio=detail["portfolio"],
        status=detail["status"],
        as_of=detail["as_of"],
        headline=(document or {}).get("headline") or _no_headline(detail),
        lines=tuple(reco_row["lines"]) if reco_row else (),
        recommendation_id=reco_row["recommendation_id"] if reco_row else None,
        recommendation_status=reco_row["status"] if reco_row else None,
        verdict=verdicts[-1] if verdicts else None,
        alerts=tuple(alerts),
        sleeves=rationale.get("sleeves") or {},
        bands=rationale.get("bands") or {},
        html_path=detail["html_path"],
        error=detail["error_message"],
    )


def _no_headline(detail: Mapping[str, Any]) -> str:
    if detail["status"] != "SUCCESS":
        return f"{detail['kind']} run {detail['run_id']} {detail['status']}"
    return f"{detail['kind']} run {detail['run_id']}: nothing to recommend"


# --------------------------------------------------------------------------------------------
# Charts
# --------------------------------------------------------------------------------------------
def _number(value: Any) -> float:
    try:
        return float(Decimal(str(value)))
    except (ArithmeticError, ValueError):
        return 0.0


def _png(figure: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # heavy: imported when drawing

    FigureCanvasAgg(figure)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return out.getvalue()


def allocation_chart(sleeves: Mapping[str, Mapping[str, Any]]) -> bytes:
    """Weight before and after the proposed trades, against the target, per sleeve (PNG)."""
    from matplotlib.figure import Figure  # heavy: imported when drawing

    codes = list(sleeves)
    figure = Figure(figsize=(6.4, 3.2))
    axes = figure.add_subplot()
    width = 0.27
    positions = range(len(codes))
    for offset, key, label, colour in (
        (-width, "weight_before", "now", "#7f8c8d"),
        (0.0, "weight_after", "after trades", "#2e86c1"),
        (width, "target", "target", "#27ae60"),
    ):
        values = [100 * _number(sleeves[c].get(key)) for c in codes]
        axes.bar([p + offset for p in positions], values, width, label=label, color=colour)
    axes.set_xticks(list(positions), codes)
    axes.set_ylabel("% of portfolio")
    axes.set_title("Allocation by sleeve")
    axes.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=3)
    axes.grid(axis="y", alpha=0.3)
    return _png(figure)


def band_of(target: Any, bands: Mapping[str, Any]) -> float:
    """How far a sleeve may drift (in weight) before it breaches: the tighter of the absolute
    band and the relative band times the target."""
    absolute, relative = _number(bands.get("absolute")), _number(bands.get("relative"))
    weight = _number(target)
    limits = [absolute] if absolute else []
    if relative and weight > 0:
        limits.append(relative * weight)
    return min(limits) if limits else 0.0


def drift_chart(sleeves: Mapping[str, Mapping[str, Any]], bands: Mapping[str, Any]) -> bytes:
    """Drift (weight - target) before and after the trades, with each sleeve's band (PNG)."""
    from matplotlib.figure import Figure  # heavy: imported when drawing

    codes = list(sleeves)
    figure = Figure(figsize=(6.4, 3.2))
    axes = figure.add_subplot()
    width = 0.35
    positions = list(range(len(codes)))
    before = [100 * _number(sleeves[c].get("drift_before")) for c in codes]
    after = [100 * _number(sleeves[c].get("drift_after")) for c in codes]
    axes.bar([p - width / 2 for p in positions], before, width, label="now", color="#7f8c8d")
    axes.bar([p + width / 2 for p in positions], after, width, label="after trades", color="#2e86c1")
    for p, code in zip(positions, codes, strict=True):
        band = 100 * band_of(sleeves[code].get("target"), bands)
        if band:
            axes.hlines([band, -band], p - 0.45, p + 0.45, colors="#c0392b", linestyles="dashed", linewidth=1)
    axes.plot([], [], color="#c0392b", linestyle="dashed", linewidth=1, label="band")
    axes.axhline(0, color="black", linewidth=0.6)
    axes.set_xticks(positions, codes)
    axes.set_ylabel("percentage points")
    axes.set_title("Drift from target, with bands")
    axes.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=3)
    axes.grid(axis="y", alpha=0.3)
    return _png(figure)


# --------------------------------------------------------------------------------------------
# The message
# --------------------------------------------------------------------------------------------
def _money(value: Any) -> str:
    """An amount in the one money format; a value that is not a number is shown as it is."""
    try:
        return format_gbp(str(value))
    except ValidationError:
        return str(value)


def _line_cells(line: Mapping[str, Any]) -> list[str]:
    units = decimal_str(Decimal(str(line["estimated_units"]))) or ""
    note = " (below the minimum trade: not to execute)" if line.get("suppressed_by_min_trade") else ""
    return [line["action"], f"{line['ticker']}:{line['exchange']}", units, _money(line["amount_base"]) + note]


def _text(summary: RunSummary, attached: bool) -> str:
    out = [
        summary.headline,
        "",
        f"Run {summary.run_id}: {summary.kind} on {summary.portfolio or '(all portfolios)'}, "
        f"{summary.status}, as of {summary.as_of}",
    ]
    if summary.error:
        out.append(f"Error: {summary.error}")
    if summary.lines:
        out += [
            "",
            f"Proposed trades (recommendation {summary.recommendation_id}, {summary.recommendation_status}):",
        ]
        out += ["  " + "  ".join(_line_cells(line)) for line in summary.lines]
    if summary.verdict:
        out += ["", f"Review: {summary.verdict['verdict']} ({summary.verdict['provider']})"]
        out += [f"  - {reason}" for reason in summary.verdict["reasons"]]
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
    e = html.escape
    parts = [
        '<html><body style="font-family: sans-serif; max-width: 40em">',
        f"<h2>{e(summary.headline)}</h2>",
        f"<p>Run {summary.run_id}: {e(summary.kind)} on {e(summary.portfolio or '(all portfolios)')}, "
        f"<b>{e(summary.status)}</b>, as of {e(str(summary.as_of))}</p>",
    ]
    if summary.error:
        parts.append(f'<p style="color:#c0392b">Error: {e(summary.error)}</p>')
    if summary.lines:
        parts.append(
            f"<h3>Proposed trades</h3><p>Recommendation {summary.recommendation_id} "
            f"({e(summary.recommendation_status or '')})</p>"
        )
        head = "".join(f'<th align="left">{h}</th>' for h in ("Action", "Listing", "Units", "Amount"))
        rows = "".join(
            "<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in _line_cells(line)) + "</tr>"
            for line in summary.lines
        )
        parts.append(f'<table cellpadding="4"><tr>{head}</tr>{rows}</table>')
    if summary.verdict:
        colour = {"PASS": "#27ae60", "WARN": "#d68910", "FAIL": "#c0392b"}.get(
            summary.verdict["verdict"], "black"
        )
        parts.append(
            f'<h3>Review: <span style="color:{colour}">{e(summary.verdict["verdict"])}</span> '
            f"<small>({e(summary.verdict['provider'])})</small></h3>"
        )
        parts.append("<ul>" + "".join(f"<li>{e(r)}</li>" for r in summary.verdict["reasons"]) + "</ul>")
    for cid, alt in images:
        parts.append(f'<p><img src="cid:{cid}" alt="{e(alt)}" style="max-width:100%"></p>')
    if summary.alerts:
        parts.append(f"<h3>Open alerts ({len(summary.alerts)})</h3><ul>")
        parts += [
            f"<li><b>{e(a['severity'])}</b> {e(a['code'])}: {e(a['message'])}</li>"
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
        inline.append((ALLOCATION_CID, allocation_chart(summary.sleeves)))
        images.append((ALLOCATION_CID, "Allocation by sleeve against target"))
        inline.append((DRIFT_CID, drift_chart(summary.sleeves, summary.bands)))
        images.append((DRIFT_CID, "Drift from target with bands"))
    attachments: tuple[tuple[str, str, bytes], ...] = ()
    if report is not None:
        attachments = ((f"run-{summary.run_id}-{summary.kind}.html", "text/html", report),)
    where = f" on {summary.portfolio}" if summary.portfolio else ""
    return OutgoingMessage(
        subject=f"tradeassist: {summary.kind} run {summary.run_id}{where}: {summary.headline}"[:250],
        text=_text(summary, report is not None),
        html=_html(summary, images, report is not None),
        inline_images=tuple(inline),
        attachments=attachments,
    )


def read_report(summary: RunSummary) -> bytes | None:
    if not summary.html_path:
        return None
    try:
        return Path(summary.html_path).read_bytes()
    except OSError:
        return None


def run_email(session: Session, *, actor: User, run_id: int) -> tuple[OutgoingMessage, RunSummary]:
    """The email for run ``run_id`` (charts drawn, report read): nothing is sent."""
    summary = run_summary(session, actor=actor, run_id=run_id)
    return build_message(summary, read_report(summary)), summary


def send_email(
    message: OutgoingMessage,
    to: str,
    *,
    channel: ChannelProvider | None = None,
    timeout: float | None = None,
    deadline: float | None = None,
) -> DeliveryResult:
    """Send now through the EMAIL channel (SMTP settings from ``TRADEASSIST_SMTP_*``), not the outbox.

    ``timeout`` bounds each SMTP step (default 30 s), ``deadline`` the whole exchange (default
    120 s, or the timeout if longer): a server that stalls or drips its replies fails the send
    then, retryable, and nothing waits longer.
    """
    if channel is None:
        options = {"timeout": timeout, "deadline": deadline}
        channel = get_channel("EMAIL", **{k: v for k, v in options.items() if v is not None})
    return channel.send(message, to)
