"""The runner: execute a claimed slot's notebook with papermill, keep the artefacts, record the run.

One run, start to end:

1. **Frozen?** A kind that recommends, on a frozen portfolio, is not executed: the run is
   FROZEN, with no recommendation, and the owner is notified.
2. **Execute** ``<notebooks_dir>/<KIND>.ipynb`` with papermill and a real kernel (the
   ``tradeassist`` kernel when registered, else ``python3`` of this interpreter). Parameters:
   ``run_id``, ``portfolio``, ``as_of`` and ``db_url`` without its password; a parameter the
   notebook's ``parameters`` cell does not declare is refused before anything runs (papermill
   would only warn). The kernel gets the database password (``PGPASSWORD``) and every other
   secret through its environment only; its history is off (``--HistoryManager.enabled=False``
   and a throwaway ``IPYTHONDIR``).
3. **Artefacts**: the executed notebook at
   ``$TRADEASSIST_REPORTS_DIR/runs/<yyyy>/<mm>/<run_id>-<KIND>.ipynb`` and its HTML export
   (no code cells; plotly.js embedded once, so charts work offline) beside it. Every secret
   value is removed from both before they are written for good.
4. **Record**, in one transaction: the ``task_runs`` row, the ``run_input_snapshots`` row
   (``input_hash`` = SHA-256 of its canonical JSON), the recommendation and its lines, the
   alerts the run raised, and for a FAILED or FROZEN run an alert and a notification.

A cell error or a timeout makes the run FAILED (papermill raises ``PapermillExecutionError``
for the first, but nbclient's ``CellTimeoutError`` for the second, after saving the notebook as
if every cell had completed: the saved notebook is marked failed here). A notebook that ran to
the end is SUCCESS, even when it recommends nothing.

Notebook directory: ``notebooks_dir`` argument, else ``TRADEASSIST_TASK_NOTEBOOKS_DIR``, else
``notebooks/tasks`` of the repository this package sits in.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, select

from ..core import jsonutil
from ..core.config import redact_url, reports_dir, resolve_db_url
from ..core.enums import Channel, RunStatus, Severity, TaskKind
from ..core.errors import NotFound, TradeAssistError, ValidationError
from ..core.redaction import MASK, redact, secret_values
from ..core.timeutil import ensure_utc, utcnow
from ..db.engine import unit_of_work
from ..db.models import Portfolio, RunInputSnapshot, TaskDefinition, TaskRun, User
from ..services import audit, governance
from ..services import tasks as task_service
from . import kinds, notebook_api
from .claims import Claim, claim_manual, claim_next_due, worker_name

log = logging.getLogger(__name__)

NOTEBOOKS_ENV = "TRADEASSIST_TASK_NOTEBOOKS_DIR"
KERNEL_NAME = "tradeassist"
FALLBACK_KERNEL = "python3"
ENGINE_NAME = "tradeassist"
PARAMETERS = ("run_id", "portfolio", "as_of", "db_url")
RUN_FAILED = "RUN_FAILED"
RUN_FROZEN = "RUN_FROZEN"
MAX_ERROR = 2000


def default_notebooks_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "notebooks" / "tasks"


def notebooks_dir(explicit: str | Path | None = None) -> Path:
    chosen = explicit or os.environ.get(NOTEBOOKS_ENV) or default_notebooks_dir()
    return Path(chosen).expanduser().resolve()


@lru_cache(maxsize=1)
def kernel_name() -> str:
    """The ``tradeassist`` kernel (``make demo``/``make test`` register it), else ``python3``,
    which jupyter_client starts with this very interpreter."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        return KERNEL_NAME
    except NoSuchKernel:
        return FALLBACK_KERNEL


# --------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------


def scrub_text(text: str | None, secrets: Iterable[str]) -> str | None:
    """Free text (an error) safe to store: secret values and secret-looking URL parts masked."""
    return None if text is None else redact(text, secrets)


def strip_secrets(value: Any, secrets: Iterable[str]) -> Any:
    """A JSON-like value (a notebook, a summary) with every secret *value* masked in its strings.

    Only exact values are replaced: patterns would mangle embedded code such as plotly.js.
    """
    ordered = sorted(set(secrets), key=len, reverse=True)
    if not ordered:
        return value

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            for secret in ordered:
                if secret in item:
                    item = item.replace(secret, MASK)
            return item
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(value)


# --------------------------------------------------------------------------------------------
# Executing a notebook
# --------------------------------------------------------------------------------------------
class NotebookFailed(TradeAssistError):
    """The notebook did not run to the end."""


def declared_parameters(path: Path) -> dict[str, Any]:
    import papermill

    return dict(papermill.inspect_notebook(str(path)))


def check_parameters(path: Path, parameters: Mapping[str, Any]) -> None:
    """Refuse parameters the notebook's ``parameters`` cell does not declare."""
    declared = declared_parameters(path)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ValidationError(
            f"{path.name}: unknown parameter(s) {', '.join(unknown)} "
            f"(its parameters cell declares: {', '.join(sorted(declared)) or 'nothing'})"
        )


def _register_engine() -> None:
    """A papermill engine that starts the kernel with our environment and log file."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class KernelEnvEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(  # type: ignore[override]
            cls,
            nb_man: Any,
            kernel_name: str,
            log_output: bool = False,
            stdout_file: Any = None,
            stderr_file: Any = None,
            start_timeout: int = 60,
            execution_timeout: int | None = None,
            kernel_env: Mapping[str, str] | None = None,
            kernel_log: Any = None,
            client_log: logging.Logger | None = None,
            **kwargs: Any,
        ) -> Any:
            kwargs.pop("input_path", None)
            client = PapermillNotebookClient(
                nb_man,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=client_log or KERNEL_LOG,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
                **kwargs,
            )
            launch: dict[str, Any] = {}
            if kernel_env is not None:
                launch["env"] = dict(kernel_env)
            if kernel_log is not None:
                launch["stdout"] = launch["stderr"] = kernel_log
            return client.execute(**launch)

    papermill_engines.register(ENGINE_NAME, KernelEnvEngine)


class _KernelLogFilter(logging.Filter):
    """nbclient logs every kernel message (outputs, tracebacks) at DEBUG: those are dropped,
    and what is left has the run's secret values masked."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = set(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO:
            return False
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


KERNEL_LOG = logging.getLogger("tradeassist.runs.kernel")


def kernel_environment(db_url: str, ipython_dir: str) -> dict[str, str]:
    """The runner's environment, plus the database password and a history-less IPython."""
    env = dict(os.environ)
    password = make_url(db_url).password
    if password:
        env["PGPASSWORD"] = str(password)
    env["IPYTHONDIR"] = ipython_dir
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    # The kernel imports this very package, wherever it is.
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


def execute_notebook(
    input_path: Path,
    output_path: Path,
    parameters: Mapping[str, Any],
    *,
    timeout: int | None,
    env: Mapping[str, str],
    kernel_log: Any = None,
    secrets: Iterable[str] = (),
) -> Any:
    """Run one notebook with papermill; raises papermill's and nbclient's errors as they come."""
    import papermill

    check_parameters(input_path, parameters)
    _register_engine()
    log_filter = _KernelLogFilter(secrets)
    KERNEL_LOG.addFilter(log_filter)
    try:
        return _papermill_run(papermill, input_path, output_path, parameters, timeout, env, kernel_log)
    finally:
        KERNEL_LOG.removeFilter(log_filter)


def _papermill_run(
    papermill: Any,
    input_path: Path,
    output_path: Path,
    parameters: Mapping[str, Any],
    timeout: int | None,
    env: Mapping[str, str],
    kernel_log: Any,
) -> Any:
    return papermill.execute_notebook(
        str(input_path),
        str(output_path),
        parameters=dict(parameters),
        engine_name=ENGINE_NAME,
        kernel_name=kernel_name(),
        progress_bar=False,
        log_output=False,
        start_timeout=60,
        execution_timeout=timeout,
        cwd=str(output_path.parent),
        extra_arguments=["--HistoryManager.enabled=False"],
        kernel_env=env,
        kernel_log=kernel_log,
        client_log=KERNEL_LOG,
    )


_REPORT_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def export_html(nb: Any, html_path: Path) -> Path:
    """The report: outputs only (no code cells, no prompts), nothing loaded from the network."""
    import jinja2
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


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    task: str
    kind: TaskKind
    portfolio: str | None
    status: RunStatus
    slot_at: datetime
    as_of: datetime
    notebook_path: str | None = None
    html_path: str | None = None
    error: str | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)
    recommendation_id: int | None = None

    def row(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "task": self.task,
            "kind": self.kind.value,
            "portfolio": self.portfolio,
            "status": self.status.value,
            "slot_at": self.slot_at,
            "as_of": self.as_of,
            "notebook_path": self.notebook_path,
            "html_path": self.html_path,
            "recommendation_id": self.recommendation_id,
            "error": self.error,
        }


@dataclass
class _Run:
    """What the runner knows about the run it is executing."""

    claim: Claim
    task: TaskDefinition
    portfolio: Portfolio | None
    owner: User
    as_of: datetime
    started_at: datetime
    secrets: set[str]
    frozen: governance.FreezeStatus | None = None
    status: RunStatus = RunStatus.FAILED
    error: str | None = None
    result: dict[str, Any] | None = None
    notebook_path: Path | None = None
    html_path: Path | None = None
    extra_summary: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> TaskKind:
        return self.task.task_kind

    @property
    def portfolio_name(self) -> str | None:
        return self.portfolio.name if self.portfolio else None

    def run_params(self) -> dict[str, Any]:
        """The run's own inputs, part of the hashed snapshot (ids and the database left out)."""
        return {
            "task": self.task.name,
            "kind": self.kind.value,
            "portfolio": self.portfolio_name,
            "as_of": self.as_of,
            "slot_at": self.claim.slot_at,
            "manual": self.claim.manual,
            "module_config": self.task.module_config,
        }


def artefact_paths(root: Path, run_id: int, kind: TaskKind, when: datetime) -> tuple[Path, Path]:
    folder = root / "runs" / f"{when.year:04d}" / f"{when.month:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{run_id}-{kind.value}"
    return folder / f"{stem}.ipynb", folder / f"{stem}.html"


def _load(engine: Engine, claim: Claim, as_of: datetime, secrets: set[str]) -> _Run:
    with unit_of_work(engine, readonly=True) as session:
        task = session.get(TaskDefinition, claim.task_id)
        if task is None:
            raise NotFound(f"no task {claim.task_id}")
        portfolio = session.get(Portfolio, task.portfolio_id) if task.portfolio_id is not None else None
        owner = session.get(User, portfolio.owner_user_id if portfolio else task.created_by_user_id)
        assert owner is not None
        run = _Run(claim, task, portfolio, owner, ensure_utc(as_of), utcnow(), secrets)
        if portfolio is not None and kinds.SPECS[task.task_kind].recommends:
            status = governance.freeze_status(session, portfolio.portfolio_id)  # type: ignore[arg-type]
            run.frozen = status if status.is_frozen else None
    return run


def execute_claim(
    engine: Engine,
    claim: Claim,
    *,
    db_url: str,
    as_of: datetime | None = None,
    notebooks: str | Path | None = None,
    reports: str | Path | None = None,
    timeout: int | None = None,
) -> RunOutcome:
    """Run a claimed slot to its end and record it; never raises for a failed notebook."""
    db_url = resolve_db_url(db_url)
    secrets = secret_values(db_url)
    run = _load(engine, claim, as_of or claim.slot_at, secrets)
    if run.frozen is not None:
        run.status = RunStatus.FROZEN
    else:
        _execute(run, db_url=db_url, notebooks=notebooks, reports=reports, timeout=timeout)
    return _record(engine, run)


def _execute(
    run: _Run, *, db_url: str, notebooks: str | Path | None, reports: str | Path | None, timeout: int | None
) -> None:
    source = notebooks_dir(notebooks) / f"{run.kind.value}.ipynb"
    try:
        config = kinds.parse_config(run.kind, run.task.module_config)
    except ValidationError as exc:
        run.error = str(exc)
        return
    if not source.is_file():
        run.error = f"no notebook for {run.kind.value}: {source} does not exist"
        return
    root = Path(reports).expanduser().resolve() if reports else reports_dir()
    run.notebook_path, run.html_path = artefact_paths(root, run.claim.run_id, run.kind, run.started_at)
    limit = timeout if timeout is not None else config.timeout_seconds
    parameters = {
        "run_id": run.claim.run_id,
        "portfolio": run.portfolio_name,
        "as_of": run.as_of.isoformat(),
        "db_url": redact_url(db_url),
    }
    nb = None
    with tempfile.TemporaryDirectory(prefix="tradeassist-kernel-") as scratch:
        env = kernel_environment(db_url, os.path.join(scratch, "ipython"))
        with open(os.path.join(scratch, "kernel.log"), "w+b") as kernel_log:
            try:
                nb = execute_notebook(
                    source,
                    run.notebook_path,
                    parameters,
                    timeout=limit,
                    env=env,
                    kernel_log=kernel_log,
                    secrets=run.secrets,
                )
                run.result = notebook_api.read_result(nb)
                if run.result is None:
                    run.error = f"{source.name} ran to the end but published no result"
                else:
                    run.status = RunStatus.SUCCESS
            except ValidationError as exc:  # unknown parameters: nothing was executed
                run.error = str(exc)
                run.notebook_path = None
            except Exception as exc:
                run.error = _describe_failure(exc, limit, kernel_log)
    _finish_artefacts(run, nb)


def _describe_failure(exc: Exception, limit: int, kernel_log: Any) -> str:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return f"In [{exc.exec_count}] raised {exc.ename}: {exc.evalue}"
    if isinstance(exc, CellTimeoutError):
        lines = str(exc).splitlines()
        start = next((i + 1 for i, line in enumerate(lines) if "preview of the cell" in line), len(lines))
        cell = "; ".join(ln.strip() for ln in lines[start:] if ln.strip() and not ln.startswith("---"))
        return f"timeout: a cell ran longer than {limit} s and was stopped: {cell[:300]}"
    detail = str(exc).strip() or type(exc).__name__
    if isinstance(exc, DeadKernelError):
        kernel_log.seek(0)
        tail = kernel_log.read().decode("utf-8", "replace").strip().splitlines()[-5:]
        return f"the kernel died: {detail}" + (f" ({' | '.join(tail)})" if tail else "")
    return f"{type(exc).__name__}: {detail}"


def _finish_artefacts(run: _Run, nb: Any) -> None:
    """Mark a failed notebook, remove secrets from it, and export the report."""
    import nbformat

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


# --------------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------------
def _snapshot(run: _Run) -> dict[str, Any]:
    inputs: Any = None
    if run.frozen is not None:
        inputs = {"freeze": run.frozen.row(run.portfolio_name)}
    elif run.result is not None:
        inputs = run.result.get("inputs")
    snapshot = {"run": run.run_params(), "inputs": inputs}
    # The stored JSON form (exact decimals as strings): what the hash and a replay both read.
    return strip_secrets(jsonutil.loads_decimal(jsonutil.dumps(snapshot)), run.secrets)


def _summary(run: _Run) -> dict[str, Any]:
    summary: dict[str, Any] = {"kind": run.kind.value, "collapsed_slots": run.claim.collapsed}
    if not run.claim.collapsed_exact:
        summary["collapsed_slots_at_least"] = True
    if run.claim.manual:
        summary["manual"] = True
    if run.result is not None:
        summary.update(run.result.get("summary") or {})
        summary["issues"] = len(run.result.get("issues") or [])
    if run.frozen is not None:
        summary["frozen"] = {"reason_code": run.frozen.reason_code, "since": run.frozen.set_at}
    if run.error:
        summary["error"] = scrub_text(run.error, run.secrets)
    summary.update(run.extra_summary)
    return strip_secrets(jsonutil.loads_decimal(jsonutil.dumps(summary)), run.secrets)


def _record(engine: Engine, run: _Run) -> RunOutcome:
    """Write the run and everything it produced in one transaction; if that fails, write the
    run alone as FAILED with the reason."""
    run.error = scrub_text(run.error, run.secrets)
    if run.error:
        run.error = run.error[:MAX_ERROR]
    try:
        return _write(engine, run, full=True)
    except Exception as exc:
        run.status = RunStatus.FAILED
        run.error = scrub_text(f"recording the run failed: {type(exc).__name__}: {exc}", run.secrets)
        run.error = (run.error or "")[:MAX_ERROR]
        log.error("run %s: %s", run.claim.run_id, run.error)
        return _write(engine, run, full=False)


def _write(engine: Engine, run: _Run, *, full: bool) -> RunOutcome:
    ended = utcnow()
    recommendation = None
    issues: list[kinds.Issue] = []
    if full and run.result is not None:
        recommendation = notebook_api.recommendation_from_json(run.result.get("recommendation"))
        issues = [kinds.Issue.from_json(item) for item in run.result.get("issues") or []]
    with unit_of_work(engine) as session:
        snapshot = _snapshot(run)
        strategy_version_id = _strategy_version_id(snapshot)
        row = TaskRun(
            run_id=run.claim.run_id,
            task_id=run.task.task_id,
            portfolio_id=run.portfolio.portfolio_id if run.portfolio else None,
            strategy_version_id=strategy_version_id,
            started_at=run.started_at,
            ended_at=ended,
            status=run.status,
            input_hash=jsonutil.sha256_of(snapshot),
            output_summary={},
            slot_at=run.claim.slot_at,
            as_of=run.as_of,
            notebook_path=str(run.notebook_path) if run.notebook_path else None,
            html_path=str(run.html_path) if run.html_path else None,
            error_message=run.error,
        )
        row.output_summary = _summary(run)
        session.add(row)
        session.flush()  # the run first: the recommendation and the alerts point at it
        recommendation_id = None
        if recommendation is not None and run.portfolio is not None and recommendation.lines:
            from ..services import advice

            stored = advice.store_recommendation(
                session,
                run_id=run.claim.run_id,
                portfolio_id=run.portfolio.portfolio_id,
                recommendation=recommendation,
            )
            recommendation_id = stored.recommendation_id
            from ..services import recommendations

            # Reviewed (builtin-rules, offline) and the owner told, in this same transaction.
            recommendations.review_and_notify(session, recommendation_id=recommendation_id, owner=run.owner)
        session.add(RunInputSnapshot(run_id=run.claim.run_id, snapshot_json=snapshot))
        for issue in issues:
            _raise_issue(session, run, issue)
        if run.status is RunStatus.FAILED:
            _alert_failure(session, run)
        if run.status in (RunStatus.FAILED, RunStatus.FROZEN):
            _notify(session, run)
        audit.record(
            session,
            actor=None,
            action="TASK_RUN_RECORDED",
            entity_type="task_run",
            entity_id=run.claim.run_id,
            details={
                "task": run.task.name,
                "kind": run.kind.value,
                "status": run.status.value,
                "slot_at": run.claim.slot_at,
                "manual": run.claim.manual,
                "recommendation_id": recommendation_id,
                "worker": run.claim.worker,
            },
        )
    log.info("run %s (%s %s): %s", run.claim.run_id, run.kind.value, run.task.name, run.status.value)
    return RunOutcome(
        run_id=run.claim.run_id,
        task=run.task.name,
        kind=run.kind,
        portfolio=run.portfolio_name,
        status=run.status,
        slot_at=run.claim.slot_at,
        as_of=run.as_of,
        notebook_path=str(run.notebook_path) if run.notebook_path else None,
        html_path=str(run.html_path) if run.html_path else None,
        error=run.error,
        summary=row.output_summary,
        recommendation_id=recommendation_id,
    )


def _strategy_version_id(snapshot: Mapping[str, Any]) -> int | None:
    inputs = snapshot.get("inputs")
    if not isinstance(inputs, Mapping):
        return None
    for key in ("strategy_version_id",):
        value = inputs.get(key)
        if isinstance(value, int):
            return value
    strategy = inputs.get("strategy")
    if isinstance(strategy, Mapping) and isinstance(strategy.get("strategy_version_id"), int):
        return int(strategy["strategy_version_id"])
    return None


def _portfolio_id(session: Session, run: _Run, name: str | None) -> int | None:
    if name is None:
        return run.portfolio.portfolio_id if run.portfolio else None
    if run.portfolio is not None and run.portfolio.name == name:
        return run.portfolio.portfolio_id
    found = session.exec(select(Portfolio).where(Portfolio.name == name)).first()
    return found.portfolio_id if found else None


def _raise_issue(session: Session, run: _Run, issue: kinds.Issue) -> None:
    context = strip_secrets(dict(issue.context), run.secrets)
    governance.raise_alert(
        session,
        portfolio_id=_portfolio_id(session, run, issue.portfolio),
        code=issue.code,
        severity=issue.severity,
        message=scrub_text(issue.message, run.secrets) or issue.code,
        context={**context, "task_id": run.task.task_id},
        run_id=run.claim.run_id,
        dedupe_keys=("ticker", "exchange"),
    )


def _alert_failure(session: Session, run: _Run) -> None:
    governance.raise_alert(
        session,
        portfolio_id=run.portfolio.portfolio_id if run.portfolio else None,
        code=RUN_FAILED,
        severity=Severity.CRITICAL,
        message=f"task {run.task.name!r} ({run.kind.value}) run {run.claim.run_id} failed: {run.error}",
        context={"task_id": run.task.task_id, "task": run.task.name, "run_id": run.claim.run_id},
        run_id=run.claim.run_id,
        dedupe=False,
    )


def _notify(session: Session, run: _Run) -> None:
    failed = run.status is RunStatus.FAILED
    event = RUN_FAILED if failed else RUN_FROZEN
    where = f" on {run.portfolio_name}" if run.portfolio_name else ""
    if failed:
        subject = f"tradeassist: {run.kind.value} run {run.claim.run_id}{where} FAILED"
        body = f"Task {run.task.name!r} failed: {run.error}"
    else:
        assert run.frozen is not None
        subject = f"tradeassist: {run.kind.value} run {run.claim.run_id}{where} skipped: portfolio frozen"
        body = (
            f"Task {run.task.name!r} made no recommendation: the portfolio is frozen "
            f"({run.frozen.reason_code}: {run.frozen.reason_detail}). Clear the freeze to resume."
        )
    payload = {
        "event": event,
        "subject": subject,
        "body": scrub_text(body, run.secrets),
        "run_id": run.claim.run_id,
        "task": run.task.name,
        "kind": run.kind.value,
        "portfolio": run.portfolio_name,
        "status": run.status.value,
        "notebook_path": str(run.notebook_path) if run.notebook_path else None,
        "html_path": str(run.html_path) if run.html_path else None,
    }
    from ..services import notifications

    notifications.enqueue(
        session,
        user_id=run.owner.user_id,
        portfolio_id=run.portfolio.portfolio_id if run.portfolio else None,
        channel=Channel.EMAIL,
        target=run.owner.email,
        payload=payload,
        dedup_key=f"{event}:{run.task.task_id}:{run.claim.run_id}",
    )


# --------------------------------------------------------------------------------------------
# What the CLI calls
# --------------------------------------------------------------------------------------------
def run_due(
    engine: Engine,
    *,
    now: datetime | None = None,
    db_url: str,
    notebooks: str | Path | None = None,
    reports: str | Path | None = None,
    timeout: int | None = None,
) -> list[RunOutcome]:
    """Run every due slot once (missed ones collapsed), claiming each before running it, until
    none is left. Safe to start on several processes or machines at once."""
    now = ensure_utc(now or utcnow())
    worker = worker_name()
    outcomes = []
    while (claim := claim_next_due(engine, now, worker=worker)) is not None:
        outcomes.append(
            execute_claim(
                engine, claim, db_url=db_url, as_of=now, notebooks=notebooks, reports=reports, timeout=timeout
            )
        )
    return outcomes


def run_task(
    engine: Engine,
    *,
    actor: User,
    name: str,
    db_url: str,
    at: datetime | None = None,
    notebooks: str | Path | None = None,
    reports: str | Path | None = None,
    timeout: int | None = None,
) -> RunOutcome:
    """Run a task now (or as of ``at``), whatever its schedule; the schedule is not moved."""
    at = ensure_utc(at or utcnow())
    with unit_of_work(engine, readonly=True) as session:
        task = task_service.task_for(session, actor, name, "run tasks")
        task_id = task.task_id
    assert task_id is not None
    claim = claim_manual(engine, task_id, at)
    return execute_claim(
        engine, claim, db_url=db_url, as_of=at, notebooks=notebooks, reports=reports, timeout=timeout
    )
