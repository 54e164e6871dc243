"""``tradeassist demo``: load the demo data and run the main job."""

from __future__ import annotations

from pathlib import Path

import typer

from ..core.errors import ConfigError
from ..core.money import format_gbp
from ..db.engine import unit_of_work
from ..services import identity
from .context import emit_table, info, state


def demo(
    no_run: bool = typer.Option(False, "--no-run", help="Load the demo data only; do not run the tasks."),
) -> None:
    """Load the demo SIPP (once), then run each of its tasks and print where the reports are."""
    from .. import demo as demo_data  # lazy: keeps start-up fast

    engine = state.initialised_engine()
    created = demo_data.load_demo(engine)
    summary = demo_data.summarize(engine, created)
    typer.echo(
        ("loaded" if created else "already loaded") + f": {summary.portfolio} "
        f"({summary.broker}, {summary.tax_treatment}), cash {format_gbp(summary.cash_balance)}"
    )
    emit_table([{"ticker": t, "units": u} for t, u in summary.holdings])
    if no_run:
        return
    from ..runs import runner  # lazy: keeps start-up fast

    with unit_of_work(engine, readonly=True) as session:
        admin = identity.bootstrap_admin(session)
    if admin is None:
        raise ConfigError("no bootstrap admin: run `tradeassist init` first")
    outcomes = []
    for name in demo_data.demo_task_names():
        info(f"running {name} ...")
        outcomes.append(runner.run_task(engine, actor=admin, name=name, db_url=state.url))
    emit_table(
        [
            {
                "run_id": o.run_id,
                "task": o.task,
                "status": o.status.value,
                "recommendation_id": o.recommendation_id,
                "html_path": o.html_path,
            }
            for o in outcomes
        ]
    )
    reports = {str(Path(o.html_path).parent) for o in outcomes if o.html_path}
    for folder in sorted(reports):
        typer.echo(f"reports: {folder}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
