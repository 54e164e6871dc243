"""``report email``: a run's summary, charts and full report, emailed now."""

from __future__ import annotations

import typer

from .context import info, work

report_app = typer.Typer(help="Run reports.", no_args_is_help=True)


@report_app.command("email")
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


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
