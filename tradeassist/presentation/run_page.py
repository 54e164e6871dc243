"""A run's report page: one self-contained HTML file, read in a minute.

From the top: what ran and as of when (a UK date), the run's status, the **review verdict**
with its reasons (a FAIL or a WARN in red or amber before anything else), then the body the
task notebook displayed (``run_report``: what to do, why, what was left alone, the cash), and
at the bottom, in small print, where it came from (run id, input hash, strategy version).

Pure: ``PageFacts`` (plain values the runner gathers once the run is recorded) and the body
HTML in, the page out. No scripts, no fonts, nothing fetched: inline CSS and SVG only, so the
file works offline, prints on A4 and travels as an email attachment.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..core.timeutil import uk_moment

KIND_TITLES = {
    "MONTHLY_ALLOC": "Monthly allocation",
    "QUARTERLY_REBAL": "Quarterly rebalance",
    "WEEKLY_REVIEW": "Weekly drift review",
    "PRICE_REFRESH": "Price refresh",
    "ALERT_ONLY": "Price check",
}
TRADING = {"MONTHLY_ALLOC", "QUARTERLY_REBAL", "WEEKLY_REVIEW"}

STYLE = """
@page { size: A4; margin: 14mm; }
* { box-sizing: border-box; }
body { margin: 0; color: #1b1b1b; background: #fff;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 60rem; margin: 0 auto; padding: 16px 20px 24px; }
h1 { font-size: 22px; margin: 0 0 2px; }
h2 { font-size: 17px; margin: 20px 0 6px; border-bottom: 2px solid #37474f; padding-bottom: 2px; }
p { margin: 4px 0; }
.kicker, .when { color: #546e7a; }
.headline { font-size: 16px; font-weight: 600; }
.box { border: 2px solid #b0bec5; border-left-width: 8px; border-radius: 6px; padding: 8px 12px;
  margin: 10px 0; }
.box h2 { border: none; margin: 0 0 4px; padding: 0; }
.box.fail, .box.failed { border-color: #c62828; background: #fdecea; }
.box.warn, .box.frozen { border-color: #ef6c00; background: #fff4e5; }
.box.pass, .box.ok { border-color: #2e7d32; }
.box.pass ul { font-size: 13px; color: #455a64; }
.box.pending { border-color: #90a4ae; }
table.ta-table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; font-size: 14px; }
table.ta-table th, table.ta-table td { border: 1px solid #b0bec5; padding: 3px 6px; vertical-align: top; }
table.ta-table th { background: #eceff1; text-align: left; }
table.ta-table td { font-variant-numeric: tabular-nums; }
.totals { font-size: 14px; }
section.cash table.ta-table { width: auto; min-width: 24rem; }
.charts { display: flex; flex-wrap: wrap; gap: 8px; margin: 6px 0; }
.charts img.chart { flex: 1 1 22rem; min-width: 0; max-width: 100%; height: auto; }
ul { margin: 4px 0; padding-left: 20px; }
.nb-output pre { white-space: pre-wrap; font-size: 13px; background: #f5f5f5; padding: 6px; }
.nb-output pre.error { background: #fdecea; }
.nb-output img { max-width: 100%; height: auto; }
footer.provenance { margin-top: 28px; border-top: 1px solid #cfd8dc; padding-top: 6px;
  font-size: 11px; color: #607d8b; }
footer.provenance p { margin: 1px 0; }
footer.provenance code { font-size: 11px; word-break: break-all; }
@media print {
  body { font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  section, .box, table.ta-table tr { break-inside: avoid; page-break-inside: avoid; }
  h2 { break-after: avoid; page-break-after: avoid; }
  thead { display: table-header-group; }
}
"""


@dataclass(frozen=True)
class PageFacts:
    """What the page says about a run beyond the notebook's body (``recorded`` False: the run
    is not recorded yet, so its review and input hash are not known)."""

    run_id: int
    kind: str
    task: str
    portfolio: str | None
    as_of: datetime
    status: str
    recorded: bool = True
    manual: bool = False
    slot_at: datetime | None = None
    attempt: int = 1
    error: str | None = None
    verdict: Mapping[str, Any] | None = None  # verdict, provider, model, reasons
    recommendation_id: int | None = None
    recommendation_status: str | None = None
    input_hash: str | None = None
    strategy: Mapping[str, Any] | None = None  # label, strategy_version_id, policy_sha256
    started_at: datetime | None = None
    ended_at: datetime | None = None
    notebook_name: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        what = KIND_TITLES.get(self.kind, self.kind)
        return f"{what} for {self.portfolio}" if self.portfolio else f"{what}, every portfolio"


def _e(text: object) -> str:
    return html.escape(str(text))


def _reasons(reasons: Sequence[Any]) -> str:
    return "<ul>" + "".join(f"<li>{_e(r)}</li>" for r in reasons) + "</ul>" if reasons else ""


def status_box(facts: PageFacts) -> str:
    if facts.status == "FAILED":
        return (
            '<div class="box failed" role="alert"><h2>This run FAILED</h2>'
            f"<p>{_e(facts.error or 'no reason was recorded')}</p>"
            "<p>Nothing it computed was recorded as a recommendation; "
            "the saved notebook shows where it stopped.</p>"
            "</div>"
        )
    if facts.status == "FROZEN":
        return '<div class="box frozen"><h2>Skipped: the portfolio is frozen</h2></div>'
    return ""


def review_box(facts: PageFacts) -> str:
    """The review verdict, first: FAIL and WARN with each reason, PASS in one line."""
    if facts.status != "SUCCESS" or facts.kind not in TRADING:
        return ""
    if not facts.recorded:
        return (
            '<div class="box pending"><h2>Review: not made yet</h2><p>A recommendation is reviewed when the '
            "run is recorded; `tradeassist reco list` shows its verdict.</p></div>"
        )
    if facts.recommendation_id is None:
        return '<div class="box ok"><h2>Nothing to review</h2><p>This run recommends no trade.</p></div>'
    reco = f"recommendation {facts.recommendation_id} ({facts.recommendation_status or 'DRAFT'})"
    verdict = facts.verdict
    if verdict is None:
        return (
            f'<div class="box warn" role="alert"><h2>Review: none</h2><p>{_e(reco)} could not be reviewed '
            f"after the run: review it with `tradeassist reco review {facts.recommendation_id}` "
            "before placing any trade.</p></div>"
        )
    word = str(verdict.get("verdict"))
    who = f"{verdict.get('provider')} ({verdict.get('model')})"
    reasons = list(verdict.get("reasons") or [])
    if word == "FAIL":
        return (
            f'<div class="box fail" role="alert"><h2>Review: FAIL</h2><p>{_e(who)} found what is wrong with '
            f"{_e(reco)}: do not place these trades as they stand. Approving it needs an override "
            f"reason.</p>{_reasons(reasons)}</div>"
        )
    if word == "WARN":
        return (
            f'<div class="box warn" role="alert"><h2>Review: WARN</h2><p>{_e(who)} asks you to check '
            f"{_e(reco)} before trading:</p>{_reasons(reasons)}</div>"
        )
    return (
        f'<div class="box pass"><h2>Review: {_e(word)}</h2><p>{_e(who)} on {_e(reco)}:</p>'
        f"{_reasons(reasons)}</div>"
    )


def header_html(facts: PageFacts) -> str:
    how = (
        "manual run" if facts.manual else f"scheduled for {uk_moment(facts.slot_at)}" if facts.slot_at else ""
    )
    status = {"SUCCESS": "completed", "FAILED": "FAILED", "FROZEN": "skipped (frozen)"}.get(
        facts.status, facts.status
    )
    return (
        '<header class="run-header">'
        f'<p class="kicker">{_e(KIND_TITLES.get(facts.kind, facts.kind))} · task “{_e(facts.task)}”</p>'
        f"<h1>{_e(facts.title)}</h1>"
        f'<p class="when">As of {_e(uk_moment(facts.as_of))} · run {facts.run_id} {_e(status)}'
        f"{' · ' + _e(how) if how else ''}</p>"
        f"{status_box(facts)}{review_box(facts)}</header>"
    )


def provenance_html(facts: PageFacts) -> str:
    """Where the report came from, in small print."""
    rows = [
        f"Run {facts.run_id} (attempt {facts.attempt}) of task “{_e(facts.task)}”, "
        f"{_e(facts.kind)}, {_e(facts.status)}."
    ]
    if facts.started_at is not None:
        ended = f" to {uk_moment(facts.ended_at)}" if facts.ended_at is not None else ""
        rows.append(f"Ran from {_e(uk_moment(facts.started_at))}{_e(ended)} (UK time).")
    if facts.input_hash:
        rows.append(
            f"Input snapshot SHA-256: <code>{_e(facts.input_hash)}</code> "
            f"(<code>tradeassist runs replay {facts.run_id}</code> recomputes it)."
        )
    elif not facts.recorded:
        rows.append("Input hash: known once the run is recorded.")
    strategy = facts.strategy or {}
    if strategy:
        label = strategy.get("label")
        shown = f"“{_e(label)}” " if label else ""
        sha = strategy.get("policy_sha256")
        rows.append(
            f"Strategy {shown}version {_e(strategy.get('strategy_version_id'))}"
            + (f", policy SHA-256 <code>{_e(sha)}</code>" if sha else "")
            + "."
        )
    if facts.recommendation_id is not None:
        rows.append(f"Recommendation {facts.recommendation_id} ({_e(facts.recommendation_status or '')}).")
    if facts.notebook_name:
        rows.append(f"Executed notebook: {_e(facts.notebook_name)} (beside this file).")
    return '<footer class="provenance">' + "".join(f"<p>{row}</p>" for row in rows) + "</footer>"


def page_html(facts: PageFacts, body: str) -> str:
    """The whole report page (``body``: the notebook's displayed report, already HTML)."""
    title = f"{facts.title}, {uk_moment(facts.as_of)}: run {facts.run_id}"
    return (
        '<!DOCTYPE html>\n<html lang="en-GB"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{header_html(facts)}{body}{provenance_html(facts)}</main></body></html>\n"
    )
