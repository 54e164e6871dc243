"""``reports``: a run's report emailed now (``email``); old run artefacts pruned (``prune``).

``report email`` (singular) is the same command under the name it had first.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..core.config import reports_dir
from .context import JSON_OPTION, emit_json, emit_table, info, work

report_app = typer.Typer(help="Run reports.", no_args_is_help=True)
reports_app = typer.Typer(help="Run reports: email one now, prune old ones.", no_args_is_help=True)


def email(
    run_id: int = typer.Argument(...),
    to: str = typer.Option(..., "--to", help="The recipient's email address."),
    timeout: float = typer.Option(
        None,
        "--timeout",
        min=0.1,
        help="Seconds per SMTP step (default 30); the whole exchange 120 s at most, or this if longer.",
    ),
) -> None:
    """Email the run's summary (headline, lines, review, alerts, charts) with its HTML report
    attached, through SMTP (TRADEASSIST_SMTP_*) now, not the outbox."""
    from ..presentation.run_email import run_email  # lazy: keeps start-up fast
    from ..services import audit, reports  # lazy: keeps start-up fast

    with work(readonly=True) as (session, actor):
        message, summary = run_email(session, actor=actor, run_id=run_id)
    if not message.attachments:
        info(f"note: run {run_id} has no saved HTML report to attach")
    result = reports.send_email(message, to, timeout=timeout)
    if not result.sent:
        typer.echo(
            f"error: run {run_id} report not sent to {to}: {result.status.value}: {result.error}", err=True
        )
        raise typer.Exit(1)
    with work() as (session, actor):
        audit.record(
            session,
            actor=actor,
            action="REPORT_EMAILED",
            entity_type="task_run",
            entity_id=run_id,
            details={
                "to": to,
                "recommendation_id": summary.recommendation_id,
                "attached_report": bool(message.attachments),
                "images": len(message.inline_images),
            },
        )
    typer.echo(
        f"run {run_id} report sent to {to} ({len(message.inline_images)} charts, "
        f"{'report attached' if message.attachments else 'no report attached'})"
    )


def _size(count: int) -> str:
    return f"{count / 1_000_000:.1f} MB" if count >= 1_000_000 else f"{count / 1000:.1f} KB"


def prune(
    keep: int = typer.Option(None, "--keep", min=0, help="Keep the N newest runs' artefacts."),
    older_than: int = typer.Option(
        None, "--older-than", min=0, help="Delete artefacts older than DAYS (with --keep: both must hold)."
    ),
    include_referenced: bool = typer.Option(
        False,
        "--include-referenced",
        help="Delete artefacts the database names too (a run's saved report): by default they are kept "
        "and listed.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be deleted; delete nothing."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete old run artefacts (notebook and HTML report, per run) under the reports
    directory (TRADEASSIST_REPORTS_DIR, default ./reports). Administrator only."""
    from ..services import report_files  # lazy: keeps start-up fast

    root = Path(reports_dir())
    with work() as (session, actor):
        rows = report_files.prune(
            session,
            actor=actor,
            root=root,
            keep=keep,
            older_than_days=older_than,
            include_referenced=include_referenced,
            dry_run=dry_run,
        )
    if as_json:
        emit_json([row.row() for row in rows])
        return
    gone = [r for r in rows if r.action != report_files.KEPT]
    named = [r for r in rows if r.kept_as_named]
    if gone:
        emit_table([{"action": r.action, "path": r.path, "why": r.reason} for r in gone])
    if named:
        typer.echo("kept, because the database names them (--include-referenced deletes them too):")
        for r in named:
            typer.echo(f"  {r.path}  ({', '.join(r.referenced_by) or 'its run is named'})")
    verb = "would delete" if dry_run else "deleted"
    typer.echo(
        f"{verb} {len(gone)} file(s) ({_size(sum(r.bytes for r in gone))}) under {root}; "
        f"kept {len(rows) - len(gone)}"
    )


def register(app: typer.Typer) -> None:
    report_app.command("email")(email)
    reports_app.command("email")(email)
    reports_app.command("prune")(prune)
    app.add_typer(report_app, name="report")
    app.add_typer(reports_app, name="reports")
