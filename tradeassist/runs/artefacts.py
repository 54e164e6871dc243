"""A run's artefacts: the executed notebook and its HTML report page, secrets removed.

Both live at ``<reports>/runs/<yyyy>/<mm>/<run_id>-<KIND>.ipynb`` and ``.html``. The page
(``presentation.run_page``) is what a person reads: the run and its as-of date, the review
verdict, then what the notebook displayed (outputs only: no code, no prompts, no parameters,
no cell tagged ``tradeassist-notebook-only``, not the result published for the runner), then
the run's provenance in small print. Charts are static SVG: no plotly.js, no script at all,
so a page is tens of kilobytes, works offline and travels as an email attachment.

Written twice: once before the run is recorded (``finish_artefacts``: the notebook, and a page
saying the review is still to come), and again once it is (``finish_report``: the page with
the verdict, the input hash and the strategy version, and the notebook with the same facts in
its metadata and a note at its top). If the second write fails, the first stays: the path the
run recorded always names a page.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from ..core.enums import RunStatus, TaskKind
from ..db.engine import unit_of_work
from ..presentation.notebook_html import NOTEBOOK_ONLY, outputs_html
from ..presentation.run_page import PageFacts, page_html
from ..services import reports
from . import notebook_api
from .locked import retry_locked
from .masking import scrub_text, strip_secrets
from .state import ActiveRun

log = logging.getLogger(__name__)

FAILURE_TAG = "tradeassist-failure"
REVIEW_TAG = "tradeassist-review"


def artefact_paths(root: Path, run_id: int, kind: TaskKind, when: datetime) -> tuple[Path, Path]:
    folder = root / "runs" / f"{when.year:04d}" / f"{when.month:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{run_id}-{kind.value}"
    return folder / f"{stem}.ipynb", folder / f"{stem}.html"


def page_facts(run: ActiveRun, recorded: dict[str, Any] | None = None) -> PageFacts:
    """What the page says beyond the notebook: the run as the runner knows it, and once it is
    recorded what the database says (status, review, input hash, strategy)."""
    known = recorded or {}
    return PageFacts(
        run_id=run.claim.run_id,
        kind=run.kind.value,
        task=run.task.name,
        portfolio=run.portfolio_name or household_scope(run),
        as_of=run.as_of,
        status=str(known.get("status") or run.status.value),
        recorded=recorded is not None,
        manual=run.claim.manual,
        slot_at=run.claim.slot_at,
        attempt=int(known.get("attempt") or run.claim.attempt),
        error=known.get("error") if recorded is not None else scrub_text(run.error, run.secrets),
        verdict=known.get("verdict"),
        recommendation_id=known.get("recommendation_id"),
        recommendation_status=known.get("recommendation_status"),
        input_hash=known.get("input_hash"),
        strategy=known.get("strategy"),
        started_at=known.get("started_at") or run.started_at,
        ended_at=known.get("ended_at"),
        notebook_name=run.notebook_path.name if run.notebook_path else None,
    )


def household_scope(run: ActiveRun) -> str | None:
    """What a household task's page is for (its task names a strategy, not a portfolio)."""
    strategy = (run.task.module_config or {}).get("strategy")
    return f"the accounts of strategy {strategy}" if strategy else None


def export_html(nb: Any, html_path: Path, facts: PageFacts) -> Path:
    """The report page: the facts around what the notebook displayed for people."""
    body = outputs_html(nb, drop_tags={notebook_api.PUBLISH_TAG}, drop_mime={notebook_api.RESULT_MIME})
    html_path.write_text(page_html(facts, body), encoding="utf-8")
    return html_path


def finish_artefacts(run: ActiveRun, nb: Any) -> None:
    """Mark a failed notebook, remove secrets from it, write it, and write a first report page
    (the review is not known yet)."""
    import nbformat  # heavy: on first use

    if run.notebook_path is None or not run.notebook_path.is_file():
        run.notebook_path = run.html_path = None
        return
    if nb is None:  # a failure: what papermill saved
        nb = nbformat.read(str(run.notebook_path), as_version=4)
    if run.status is not RunStatus.SUCCESS and run.error:
        note = nbformat.v4.new_markdown_cell(
            f"**This run FAILED.** {scrub_text(run.error, run.secrets)}",
            metadata={"tags": [FAILURE_TAG, NOTEBOOK_ONLY]},  # the page says it in its own words
        )
        nb.cells.insert(0, note)
    nb.metadata["tradeassist"] = {"run_id": run.claim.run_id, "status": run.status.value}
    clean = nbformat.from_dict(strip_secrets(nb, run.secrets))
    nbformat.write(clean, str(run.notebook_path))
    run.notebook = clean
    try:
        assert run.html_path is not None
        export_html(clean, run.html_path, page_facts(run))
    except Exception as exc:
        run.extra_summary["html_error"] = scrub_text(f"{type(exc).__name__}: {exc}", run.secrets)
        log.warning("run %s: HTML export failed: %s", run.claim.run_id, run.extra_summary["html_error"])
        run.html_path = None


def _review_note(facts: PageFacts) -> str | None:
    verdict = facts.verdict
    if facts.recommendation_id is None or verdict is None:
        return None
    reasons = "".join(f"\n- {reason}" for reason in verdict.get("reasons") or [])
    return (
        f"**Review of recommendation {facts.recommendation_id}: {verdict.get('verdict')}** "
        f"({verdict.get('provider')}).{reasons}"
    )


def finish_report(engine: Engine, run: ActiveRun) -> None:
    """Once the run is recorded: the page again with the review verdict, the input hash and
    the strategy version, and the notebook with them in its metadata. Never raises: the first
    page stays if this fails."""
    if run.notebook is None or run.html_path is None or run.notebook_path is None:
        return
    try:
        recorded = retry_locked(
            lambda: _read_recorded(engine, run.claim.run_id), what=f"reading run {run.claim.run_id}"
        )
        facts = page_facts(run, recorded)
        _update_notebook(run, facts)
        export_html(run.notebook, run.html_path, facts)
    except Exception as exc:
        log.warning(
            "run %s: the report page was not updated with the recorded review: %s",
            run.claim.run_id,
            scrub_text(f"{type(exc).__name__}: {exc}", run.secrets),
        )


def _read_recorded(engine: Engine, run_id: int) -> dict[str, Any]:
    with unit_of_work(engine, readonly=True) as session:
        return reports.recorded_facts(session, run_id)


def _update_notebook(run: ActiveRun, facts: PageFacts) -> None:
    import nbformat  # heavy: on first use

    nb = run.notebook
    nb.metadata["tradeassist"] = {
        "run_id": facts.run_id,
        "status": facts.status,
        "input_hash": facts.input_hash,
        "strategy_version_id": (facts.strategy or {}).get("strategy_version_id"),
        "recommendation_id": facts.recommendation_id,
        "verdict": (facts.verdict or {}).get("verdict"),
    }
    note = _review_note(facts)
    if note is not None:
        nb.cells.insert(
            0, nbformat.v4.new_markdown_cell(note, metadata={"tags": [REVIEW_TAG, NOTEBOOK_ONLY]})
        )
    run.notebook = nbformat.from_dict(strip_secrets(nb, run.secrets))
    nbformat.write(run.notebook, str(run.notebook_path))
