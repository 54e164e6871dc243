"""``runs``: what ran, its artefacts, and a replay from the stored input snapshot."""

from __future__ import annotations

import typer

from ..services import run_history as history
from .context import JSON_OPTION, emit, emit_json, emit_table, work
from .recommendations import line_shown

SHOWN_LINE_COLUMNS = ["action", "ticker", "exchange", "units", "amount", "note", "reason_code"]

runs_app = typer.Typer(help="Task runs: list, show, replay.", no_args_is_help=True)


@runs_app.command("list")
def list_(
    as_json: bool = JSON_OPTION,
    task: str = typer.Option(None, "--task", help="Only this task's runs."),
    portfolio: str = typer.Option(None, "--portfolio", help="Only this portfolio's runs."),
    status: str = typer.Option(None, "--status", help="SUCCESS, FAILED, SKIPPED, FROZEN or RUNNING."),
) -> None:
    """Every run: run_id, task_id, portfolio, status, started_at, ended_at, input_hash,
    notebook_path, html_path."""
    with work(readonly=True) as (session, actor):
        rows = history.list_runs(session, actor=actor, task=task, portfolio=portfolio, status=status)
    emit(rows, as_json)


@runs_app.command("show")
def show(
    run_id: int = typer.Argument(...),
    as_json: bool = JSON_OPTION,
    snapshot: bool = typer.Option(False, "--snapshot", help="Include the input snapshot."),
) -> None:
    """One run: its summary, artefacts, recommendation and alerts."""
    with work(readonly=True) as (session, actor):
        detail = history.show_run(session, actor=actor, run_id=run_id, with_snapshot=snapshot)
    if as_json:
        emit_json(detail)
        return
    emit(
        [{"field": k, "value": v} for k, v in detail.items() if k not in ("recommendation", "alerts")], False
    )
    reco = detail["recommendation"]
    if reco:
        typer.echo(f"\nrecommendation {reco['recommendation_id']} ({reco['status']}): {reco['headline']}")
        emit_table([line_shown(line) for line in reco["lines"]], SHOWN_LINE_COLUMNS)
    if detail["alerts"]:
        typer.echo("\nalerts:")
        emit(detail["alerts"], False)


@runs_app.command("replay")
def replay(run_id: int = typer.Argument(...)) -> None:
    """Recompute the run's recommendation from its input snapshot alone: prints `identical`
    (exit 0) or the differences (exit 1)."""
    with work(readonly=True) as (session, actor):
        result = history.replay_run(session, actor=actor, run_id=run_id)
    if result.identical:
        typer.echo("identical")
        return
    for line in result.differences:
        typer.echo(line)
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
