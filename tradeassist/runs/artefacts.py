"""A run's artefacts: the executed notebook and its HTML report, secrets removed.

Both live at ``<reports>/runs/<yyyy>/<mm>/<run_id>-<KIND>.ipynb`` and ``.html``. The report
shows outputs only (no code cells, no prompts), embeds plotly.js once so charts work offline,
and leaves out the result a notebook publishes for the runner. A failed run's notebook opens
with a note saying why it failed. nbformat, nbconvert and jinja2 are imported when a report is
written, not when this module is.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from ..core.enums import RunStatus, TaskKind
from . import notebook_api
from .masking import scrub_text, strip_secrets
from .state import ActiveRun

log = logging.getLogger(__name__)

_REPORT_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def artefact_paths(root: Path, run_id: int, kind: TaskKind, when: datetime) -> tuple[Path, Path]:
    folder = root / "runs" / f"{when.year:04d}" / f"{when.month:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{run_id}-{kind.value}"
    return folder / f"{stem}.ipynb", folder / f"{stem}.html"


def export_html(nb: Any, html_path: Path) -> Path:
    """The report: outputs only (no code cells, no prompts), nothing loaded from the network."""
    import jinja2  # heavy: on first use
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    exporter = HTMLExporter(
        extra_loaders=[jinja2.DictLoader({"tradeassist_report.html.j2": _REPORT_TEMPLATE})],
        template_file="tradeassist_report.html.j2",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    remover = TagRemovePreprocessor(remove_cell_tags={notebook_api.PUBLISH_TAG}, enabled=True)
    exporter.register_preprocessor(remover, enabled=True)
    # The published result is for the runner, not for people: left out of the report.
    report = nbformat.from_dict(nb)
    for cell in report.cells:
        if "outputs" in cell:
            cell.outputs = [o for o in cell.outputs if notebook_api.RESULT_MIME not in o.get("data", {})]
    body, _ = exporter.from_notebook_node(report)
    html_path.write_text(body, encoding="utf-8")
    return html_path


def finish_artefacts(run: ActiveRun, nb: Any) -> None:
    """Mark a failed notebook, remove secrets from it, and export the report."""
    import nbformat  # heavy: on first use

    if run.notebook_path is None or not run.notebook_path.is_file():
        run.notebook_path = run.html_path = None
        return
    if nb is None:  # a failure: what papermill saved
        nb = nbformat.read(str(run.notebook_path), as_version=4)
    if run.status is not RunStatus.SUCCESS and run.error:
        note = nbformat.v4.new_markdown_cell(
            f"**This run FAILED.** {scrub_text(run.error, run.secrets)}",
            metadata={"tags": ["tradeassist-failure"]},
        )
        nb.cells.insert(0, note)
    nb.metadata["tradeassist"] = {"run_id": run.claim.run_id, "status": run.status.value}
    clean = nbformat.from_dict(strip_secrets(nb, run.secrets))
    nbformat.write(clean, str(run.notebook_path))
    try:
        assert run.html_path is not None
        export_html(clean, run.html_path)
    except Exception as exc:
        run.extra_summary["html_error"] = scrub_text(f"{type(exc).__name__}: {exc}", run.secrets)
        log.warning("run %s: HTML export failed: %s", run.claim.run_id, run.extra_summary["html_error"])
        run.html_path = None
