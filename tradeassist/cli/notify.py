"""``notify``: the notification outbox. ``notify dispatch`` is what cron calls."""

from __future__ import annotations

import typer

from .context import JSON_OPTION, emit, emit_json, state, work

notify_app = typer.Typer(help="Notifications: send what is pending, list the outbox.", no_args_is_help=True)

LIST_COLUMNS = [
    "notification_id",
    "status",
    "channel",
    "target",
    "user",
    "attempts",
    "next_attempt_at",
    "subject",
    "last_error",
]


@notify_app.command("dispatch")
def dispatch(
    as_json: bool = JSON_OPTION,
    limit: int = typer.Option(None, "--limit", min=1, help="Send at most this many."),
    timeout: float = typer.Option(
        None, "--timeout", min=0.1, help="Seconds per network step of each channel."
    ),
) -> None:
    """Send every due PENDING notification; print how many were sent, will be retried, failed."""
    from ..services import notifications  # lazy: keeps start-up fast

    with work(readonly=True) as (_session, actor):
        # The administrator sends everyone's; anyone else only their own.
        mine = None if actor.is_bootstrap_admin else actor.user_id
    report = notifications.dispatch(
        state.initialised_engine(), limit=limit, timeout=timeout, for_user_id=mine
    )
    counts = report.counts()
    if as_json:
        emit_json({**counts, "deliveries": [d.row() for d in report.deliveries]})
        return
    typer.echo(", ".join(f"{name}: {value}" for name, value in counts.items()))
    for delivery in report.deliveries:
        if delivery.error:
            typer.echo(
                f"  notification {delivery.notification_id} ({delivery.channel}) "
                f"{delivery.status}: {delivery.error}"
            )


@notify_app.command("list")
def list_(
    status: str = typer.Option(None, "--status", help="PENDING, SENT, FAILED or SUPPRESSED."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The outbox, newest first (yours; every user's for the bootstrap admin)."""
    from ..services import notifications  # lazy: keeps start-up fast

    with work(readonly=True) as (session, actor):
        rows = notifications.list_notifications(session, actor=actor, status=status)
    emit(rows, as_json, LIST_COLUMNS)


def register(app: typer.Typer) -> None:
    app.add_typer(notify_app, name="notify")


@notify_app.command("vapid-keys")
def vapid_keys(
    public: bool = typer.Option(
        False, "--public", help="Print the configured key's applicationServerKey instead of a new pair."
    ),
) -> None:
    """Make the key pair WEBPUSH signs with: put the private key in TRADEASSIST_VAPID_PRIVATE_KEY,
    give the public one to the page that subscribes (see docs/notifications.md)."""
    from ..providers.channels import webpush  # lazy: cryptography only for this command

    code = webpush.main(["--public"] if public else [])
    if code:
        raise typer.Exit(code)
