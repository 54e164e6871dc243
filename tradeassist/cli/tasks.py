"""``tasks``: define scheduled tasks, see what is due, and run them.

``tasks run-due`` is what cron or a systemd timer calls (e.g. every 5 minutes): it runs each
due slot once, collapsing missed ones, and is safe to start on several processes or machines
at once. First it records FAILED each run whose worker died (its lease lapsed) and retries its
slot once (docs/runs.md). It exits 1 when a run FAILED, so the timer's unit shows the failure,
and 2 with one line when SQLite stayed locked by other writers for 30 s.
"""

from __future__ import annotations

import typer

from ..core.errors import ValidationError
from ..core.timeutil import parse_as_of
from ..runs import runner
from ..services import tasks as task_service
from .context import JSON_OPTION, emit, emit_json, info, state, work
from .progress import progress

tasks_app = typer.Typer(help="Scheduled tasks: add, list, see what is due, run.", no_args_is_help=True)

AT_OPTION = typer.Option(
    None, "--at", help="DATE (end of that day, Europe/London) or ISO timestamp; default now."
)


@tasks_app.command("add")
def add(
    name: str = typer.Option(..., "--name", help="A unique name."),
    kind: str = typer.Option(
        ..., "--kind", help="PRICE_REFRESH, WEEKLY_REVIEW, MONTHLY_ALLOC, QUARTERLY_REBAL or ALERT_ONLY."
    ),
    portfolio: str = typer.Option(None, "--portfolio", help="The portfolio (none: a GLOBAL task)."),
    strategy: str = typer.Option(
        None,
        "--strategy",
        help="A strategy over several accounts: a household task (GLOBAL, MONTHLY_ALLOC or "
        "QUARTERLY_REBAL) recommending for every account at once, e.g. with "
        '--config \'{"contributions": {"AJ Bell ISA": "500"}}\'.',
    ),
    cron: str = typer.Option(None, "--cron", help="A 5-field cron expression, e.g. '0 7 * * 1'."),
    rrule: str = typer.Option(None, "--rrule", help="An RFC 5545 RRULE, e.g. 'FREQ=MONTHLY;BYMONTHDAY=1'."),
    config: str = typer.Option(
        None, "--config", help='module_config as JSON, e.g. \'{"contribution": "500"}\'.'
    ),
    timezone: str = typer.Option("Europe/London", "--timezone", help="The zone the schedule is read in."),
) -> None:
    """Add a task; its schedule and module_config are checked now. ``--strategy LABEL``: a
    household task over every account of that strategy (one run and one recommendation per
    account, solved together)."""
    if (cron is None) == (rrule is None):
        raise ValidationError("give exactly one of --cron EXPR or --rrule EXPR")
    with work() as (session, actor):
        task = task_service.add_task(
            session,
            actor=actor,
            name=name,
            kind=kind,
            schedule_type="CRON" if cron is not None else "RRULE",
            schedule_expr=cron if cron is not None else rrule,
            portfolio=portfolio,
            config=config,
            timezone=timezone,
            strategy=strategy,
        )
        typer.echo(f"task added: {task.name} ({task.task_kind.value}, id {task.task_id})")


@tasks_app.command("list")
def list_(as_json: bool = JSON_OPTION, at: str = AT_OPTION) -> None:
    """Every task: task_id, name, kind, portfolio, schedule_type, schedule_expr, is_enabled, next_due."""
    now = parse_as_of(at)
    with work(readonly=True) as (session, actor):
        rows = task_service.list_tasks(session, actor=actor, now=now)
    emit(rows, as_json)


@tasks_app.command("due")
def due(as_json: bool = JSON_OPTION, at: str = AT_OPTION) -> None:
    """The tasks with a slot due (missed slots collapsed into the latest)."""
    now = parse_as_of(at)
    with work(readonly=True) as (session, actor):
        rows = task_service.list_due(session, actor=actor, now=now)
    emit(rows, as_json)


def _report(outcomes: list[runner.RunOutcome], as_json: bool) -> None:
    # A household's run is one run per account: each is listed.
    outcomes = [member for o in outcomes for member in (o, *o.members)]
    if as_json:
        emit_json([o.row() for o in outcomes])
    else:
        for o in outcomes:
            where = f" {o.portfolio}" if o.portfolio else ""
            typer.echo(f"run {o.run_id} {o.kind.value} {o.task}{where}: {o.status.value}")
            if o.notebook_path:
                typer.echo(f"  notebook: {o.notebook_path}")
            if o.html_path:
                typer.echo(f"  report:   {o.html_path}")
            if o.error:
                typer.echo(f"  error:    {o.error}")
    if any(o.status.value == "FAILED" for o in outcomes):
        raise typer.Exit(1)


@tasks_app.command("run")
def run(
    name: str = typer.Argument(..., help="The task's name."), at: str = AT_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """Run a task now (or as of --at), whatever its schedule; exits 1 if the run FAILED."""
    moment = parse_as_of(at)
    with work(readonly=True) as (_session, actor):
        pass
    outcome = runner.run_task(state.initialised_engine(), actor=actor, name=name, at=moment, db_url=state.url)
    _report([outcome], as_json)


@tasks_app.command("run-due")
def run_due(at: str = AT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Run every due slot once (what cron or a systemd timer calls), after failing and retrying
    once the runs whose worker died; exits 1 if a run FAILED, 2 if the database stayed locked."""
    moment = parse_as_of(at)
    with progress(None, "running due tasks", json=as_json, unit="run") as step:
        outcomes = runner.run_due(state.initialised_engine(), now=moment, db_url=state.url, on_step=step)
    if not outcomes and not as_json:
        info("nothing due")
    _report(outcomes, as_json)


@tasks_app.command("enable")
def enable(name: str = typer.Argument(...)) -> None:
    """Enable a task."""
    with work() as (session, actor):
        task_service.set_enabled(session, actor=actor, name=name, enabled=True)
    typer.echo(f"task enabled: {name}")


@tasks_app.command("disable")
def disable(name: str = typer.Argument(...)) -> None:
    """Disable a task: it is never due while disabled."""
    with work() as (session, actor):
        task_service.set_enabled(session, actor=actor, name=name, enabled=False)
    typer.echo(f"task disabled: {name}")


def register(app: typer.Typer) -> None:
    app.add_typer(tasks_app, name="tasks")
