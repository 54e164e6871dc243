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

Charts: Plotly 7's default renderer in a kernel emits only the plotly MIME type, which the
HTML export cannot draw, so charts shown with ``fig.show()`` would silently vanish from the
report. Runs show them with ``show_figure``: plotly.js embedded once per notebook (no CDN, no
MathJax download), then each chart as a ``text/html`` div, so the exported HTML works
offline. ``use_offline_charts()`` sets a renderer doing the same for ``fig.show()``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from ..core import jsonutil
from ..core.config import settings
from ..core.enums import TaskKind, TradeAction
from ..core.errors import ValidationError
from ..core.timeutil import parse_as_of
from ..db.engine import get_engine, unit_of_work
from ..db.models import TaskDefinition
from ..engine.model import Recommendation, RecommendationLine

# What a task notebook calls to show charts: one renderer setup, in presentation.charts.
from ..presentation.charts import OFFLINE_RENDERER as RENDERER  # noqa: F401
from ..presentation.charts import chart_html, show_figure, use_offline_charts  # noqa: F401
from ..presentation.html import all_columns, table_html
from ..services import identity, run_records
from ..services import tasks as task_service
from ..services.run_records import claimed_run
from ..services.task_kinds import KindConfig, parse_config
from . import kinds

RESULT_MIME = "application/vnd.tradeassist.run+json"
RESULT_VERSION = 1
PUBLISH_TAG = "tradeassist-publish"


def _bar(
    title: str, labels: Sequence[str], values: Sequence[Any], colors: Sequence[str] | None = None
) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(x=list(labels), y=[float(v) for v in values], marker_color=colors))
    fig.update_layout(title=title, margin={"l": 40, "r": 20, "t": 50, "b": 40})
    return fig


def figures(result: kinds.KindResult) -> list[Any]:
    """The charts of a result (no charts when there is nothing to draw)."""
    figs = []
    lines = result.tables.get("recommendation_lines") or []
    if lines:
        signed = [
            Decimal(row["amount_base"]) * (1 if row["action"] == TradeAction.BUY.value else -1)
            for row in lines
        ]
        figs.append(
            _bar(
                "Proposed trades (GBP; sells negative)",
                [f"{row['ticker']}:{row['exchange']}" for row in lines],
                signed,
                ["#2e7d32" if v >= 0 else "#c62828" for v in signed],
            )
        )
    sleeves = result.tables.get("sleeves") or []
    if sleeves:
        figs.append(
            _bar(
                "Value by sleeve (GBP)",
                [row["sleeve"] for row in sleeves],
                [row["value_gbp"] for row in sleeves],
            )
        )
    prices = [row for row in result.tables.get("prices") or [] if row.get("age_business_days") is not None]
    if prices:
        figs.append(
            _bar(
                "Age of the latest good price (business days)",
                [f"{row['portfolio']} {row['ticker']}:{row['exchange']}" for row in prices],
                [row["age_business_days"] for row in prices],
                ["#c62828" if row["is_stale"] else "#1565c0" for row in prices],
            )
        )
    refreshed = [row for row in result.tables.get("refresh") or [] if row.get("inserted")]
    if refreshed:
        figs.append(
            _bar(
                "Prices stored by this refresh",
                [f"{row['ticker']}:{row['exchange']}" for row in refreshed],
                [row["inserted"] for row in refreshed],
            )
        )
    return figs


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
        from IPython.display import Markdown, display

        scope = f"portfolio **{self.portfolio}**" if self.portfolio else "every portfolio"
        display(
            Markdown(
                f"### {self.kind.value}: {self.task_name}\n\n"
                f"Run {self.run_id} for {scope}, as of {self.as_of.isoformat()} "
                f"({'manual run' if self.manual else 'slot ' + self.slot_at.isoformat()})."
            )
        )

    def show(self, result: kinds.KindResult) -> None:
        """The result for people: summary, issues, tables and charts."""
        from IPython.display import HTML, Markdown, display

        display(Markdown("#### Summary"))
        display(HTML(html_table([{"item": k, "value": v} for k, v in result.summary.items()])))
        if result.issues:
            display(Markdown("#### Issues raised as alerts"))
            rows = [{k: v for k, v in issue.to_json().items() if k != "context"} for issue in result.issues]
            display(HTML(html_table(rows)))
        for name, rows in result.tables.items():
            if rows:
                display(Markdown(f"#### {name.replace('_', ' ').capitalize()}"))
                display(HTML(html_table(rows)))
        for fig in figures(result):
            show_figure(fig)

    def publish(self, result: kinds.KindResult) -> dict[str, Any]:
        """Hand the result to the runner (a display output the runner reads back)."""
        from IPython.display import display

        payload = result_payload(self.run_id, result)
        summary = ", ".join(f"{k}={_text(v)}" for k, v in list(result.summary.items())[:6])
        display(
            {RESULT_MIME: payload, "text/plain": f"run {self.run_id} result published ({summary})"}, raw=True
        )
        return payload


def html_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as a plain HTML table (no pandas: importing it would cost each run half a second)."""
    return table_html(
        rows, all_columns(rows), empty=None, css_class="dataframe", align=False, cell=lambda v: str(_text(v))
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
    return json.loads(
        jsonutil.dumps(
            {
                "version": RESULT_VERSION,
                "run_id": run_id,
                "kind": result.kind.value,
                "summary": dict(result.summary),
                "inputs": dict(result.inputs),
                "issues": [issue.to_json() for issue in result.issues],
                "recommendation": recommendation.to_json_dict() if recommendation is not None else None,
            }
        )
    )


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
        )
        for line in data.get("lines", [])
    )
    return Recommendation(
        headline=str(data["headline"]),
        rationale=dict(data.get("rationale") or {}),
        constraints_report=dict(data.get("constraints_report") or {}),
        lines=lines,
    )
