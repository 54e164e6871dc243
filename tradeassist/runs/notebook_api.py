"""What a task notebook calls: open its run, compute through the library, show, publish.

A task notebook holds no SQL and no business logic; its cells are::

    run = notebook_api.start(run_id=run_id, portfolio=portfolio, as_of=as_of, db_url=db_url)
    result = run.compute()
    run.show(result)
    run.publish(result)

The notebook never writes run rows (``task_runs`` is append-only and written once, when the
run ends). ``publish`` emits the result as a display output of MIME type
``application/vnd.tradeassist.run+json``; the runner reads it back from the executed notebook
(``read_result``) and writes the run, its input snapshot, its recommendation and its alerts in
one transaction.

The database URL a notebook receives has no password; on PostgreSQL the kernel gets it from
the environment (``PGPASSWORD``), which the runner sets.

Who the run acts as (``run_actor``): the connection's own user on a person's PostgreSQL login
(the runner's login, whatever the task's creator), else ``TRADEASSIST_USER`` (the CLI hands
``--as`` on), else the task's creator: the scheduler running a task for whoever set it up.
Whoever it is must be allowed to run the task (its portfolio's owner, a member, or the
bootstrap admin; a GLOBAL task is the admin's), or the run is refused with an access error.

What people see: ``header`` (a title for the notebook only: the report page draws its own)
and ``show``, the run's report body (``presentation.run_report``: what to do, why, what was
left alone, the cash; charts as static SVG, no JavaScript). The runner puts that body in the
run's HTML page together with the review verdict and the run's provenance, known only once
the run is recorded. ``show_figure(fig)`` shows any other plotly chart without embedding
plotly.js (``presentation.charts``).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from ..core import jsonutil
from ..core.config import settings
from ..core.enums import TaskKind, TradeAction
from ..core.errors import ValidationError
from ..core.timeutil import parse_as_of, uk_moment
from ..db.engine import get_engine, unit_of_work
from ..db.models import TaskDefinition
from ..engine.model import Recommendation, RecommendationLine

# What a task notebook calls to show charts: one renderer setup, in presentation.charts.
from ..presentation.charts import OFFLINE_RENDERER as RENDERER  # noqa: F401
from ..presentation.charts import show_figure, use_offline_charts  # noqa: F401
from ..presentation.household import body_html as household_body_html
from ..presentation.notebook_html import NOTEBOOK_ONLY  # noqa: F401  # the tag a task notebook uses
from ..presentation.run_page import KIND_TITLES
from ..presentation.run_report import body_html
from ..services import identity, run_records
from ..services import tasks as task_service
from ..services.run_records import claimed_run
from ..services.task_kinds import KindConfig, parse_config
from . import kinds

RESULT_MIME = "application/vnd.tradeassist.run+json"
RESULT_VERSION = 1
PUBLISH_TAG = "tradeassist-publish"


# --------------------------------------------------------------------------------------------
# The run as a notebook sees it
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    run_id: int
    task_name: str
    kind: TaskKind
    portfolio: str | None
    as_of: datetime
    slot_at: datetime
    manual: bool
    config: KindConfig
    actor_user_id: int
    db_url: str

    def context(self) -> kinds.WorkContext:
        return kinds.WorkContext(
            engine=get_engine(self.db_url),
            actor_user_id=self.actor_user_id,
            portfolio=self.portfolio,
            as_of=self.as_of,
            config=self.config,
        )

    def compute(self) -> kinds.KindResult:
        """The kind's work, through the library (see ``kinds.compute``)."""
        return kinds.compute(self.kind, self.context())

    def header(self) -> None:
        """A title for the notebook (left out of the report page, which draws its own)."""
        from IPython.display import HTML, display

        strategy = getattr(self.config, "strategy", None)
        if self.portfolio:
            scope = f"for {self.portfolio}"
        else:
            scope = f"for the accounts of strategy {strategy}" if strategy else "for every portfolio"
        how = "manual run" if self.manual else f"scheduled for {uk_moment(self.slot_at)}"
        display(
            HTML(
                f"<h2>{html.escape(KIND_TITLES.get(self.kind.value, self.kind.value))} "
                f"{html.escape(scope)}</h2>"
                f"<p>Task “{html.escape(self.task_name)}”, run {self.run_id} ({html.escape(how)}), "
                f"as of {html.escape(uk_moment(self.as_of))}.</p>"
            ),
            metadata={"tradeassist": {"report": False}},
        )

    def show(self, result: kinds.KindResult) -> None:
        """The result for people: the report's body (``presentation.run_report``)."""
        from IPython.display import HTML, display

        display(HTML(report_body(result)))

    def publish(self, result: kinds.KindResult) -> dict[str, Any]:
        """Hand the result to the runner (a display output the runner reads back)."""
        from IPython.display import display

        payload = result_payload(self.run_id, result)
        said = result.summary.get("headline") or ", ".join(
            f"{k} {_text(v)}" for k, v in result.summary.items()
        )
        display({RESULT_MIME: payload, "text/plain": f"run {self.run_id} result published: {said}"}, raw=True)
        return payload


def report_body(result: kinds.KindResult) -> str:
    """The report body of a result (the engine's analysis, its tables and its issues; a
    household's: every account, grouped, and the household's allocation)."""
    if result.household is not None:
        return household_body_html(result.household, issues=[issue.to_json() for issue in result.issues])
    analysis = result.analysis or result.recommendation
    return body_html(
        recommendation=analysis.to_json_dict() if analysis is not None else None,
        tables=result.tables,
        summary=result.summary,
        issues=[issue.to_json() for issue in result.issues],
    )


def _text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return jsonutil.dumps(value).strip('"')
    if isinstance(value, dict | list):
        return jsonutil.dumps(value)
    if value is None:
        return ""
    return value


def start(*, run_id: int, portfolio: str | None, as_of: str, db_url: str) -> Run:
    """Open run ``run_id`` (its claim must exist) read-only; check the parameters agree with it."""
    if not db_url:
        raise ValidationError("db_url: the runner passes the database URL (without its password)")
    with unit_of_work(get_engine(db_url), readonly=True) as session:
        claimed = claimed_run(session, int(run_id))
        actor_user_id = run_actor(session, claimed.task)
    task = claimed.task
    if (portfolio or None) != claimed.portfolio:
        raise ValidationError(f"portfolio {portfolio!r} is not the portfolio of task {task.name!r}")
    return Run(
        run_id=int(run_id),
        task_name=task.name,
        kind=task.task_kind,
        portfolio=claimed.portfolio,
        as_of=parse_as_of(as_of) if as_of else claimed.slot_at,
        slot_at=claimed.slot_at,
        manual=claimed.manual,
        config=parse_config(task.task_kind, task.module_config),
        actor_user_id=actor_user_id,
        db_url=db_url,
    )


def run_actor(session: Session, task: TaskDefinition) -> int:
    """The id of the user the run of ``task`` acts as (see the module's docstring); refuses
    (``AccessDenied``, audited) one who may not run the task."""
    named = settings().user
    login = identity.database_login(session)
    if named or (login is not None and login.personal):
        actor = identity.acting_user(session, named)
    else:
        actor = run_records.acting_user(session, task.created_by_user_id)
    task_service.task_for(session, actor, task.name, "run tasks")
    assert actor.user_id is not None  # read from the database
    return actor.user_id


# --------------------------------------------------------------------------------------------
# The published result, both ways
# --------------------------------------------------------------------------------------------
def result_payload(run_id: int, result: kinds.KindResult) -> dict[str, Any]:
    recommendation = result.recommendation
    payload = {
        "version": RESULT_VERSION,
        "run_id": run_id,
        "kind": result.kind.value,
        "summary": dict(result.summary),
        "inputs": dict(result.inputs),
        "issues": [issue.to_json() for issue in result.issues],
        "recommendation": recommendation.to_json_dict() if recommendation is not None else None,
    }
    if result.household is not None:  # a household's run: every account's recommendation
        payload["household"] = dict(result.household)
    published: dict[str, Any] = json.loads(jsonutil.dumps(payload))
    return published


def read_result(nb: Any) -> dict[str, Any] | None:
    """The last result a notebook published (None: it published none)."""
    found = None
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            data = output.get("data") or {}
            if RESULT_MIME in data:
                found = data[RESULT_MIME]
    if isinstance(found, str):
        found = json.loads(found)
    return dict(found) if found is not None else None


def recommendation_from_json(data: Mapping[str, Any] | None) -> Recommendation | None:
    """An engine ``Recommendation`` from its ``to_json_dict`` form (None stays None)."""
    if data is None:
        return None
    lines = tuple(
        RecommendationLine(
            ticker=str(line["ticker"]),
            exchange=str(line["exchange"]),
            action=TradeAction(str(line["action"])),
            amount_base=Decimal(str(line["amount_base"])),
            estimated_units=Decimal(str(line["estimated_units"])),
            suppressed_by_min_trade=bool(line["suppressed_by_min_trade"]),
            reason_code=str(line["reason_code"]),
            estimated_gain_base=(
                Decimal(str(line["estimated_gain_base"]))
                if line.get("estimated_gain_base") is not None
                else None
            ),
        )
        for line in data.get("lines", [])
    )
    return Recommendation(
        headline=str(data["headline"]),
        rationale=dict(data.get("rationale") or {}),
        constraints_report=dict(data.get("constraints_report") or {}),
        lines=lines,
    )
