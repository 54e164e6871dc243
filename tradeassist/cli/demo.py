"""``tradeassist demo``: load the demo data and run the main job."""

from __future__ import annotations

import typer

from .. import demo as demo_data
from .context import state


def demo(
    no_run: bool = typer.Option(False, "--no-run", help="Load the demo data only; do not run the due tasks."),
) -> None:
    """Load the demo portfolio (once) and print its summary."""
    engine = state.initialised_engine()
    created = demo_data.load_demo(engine)
    summary = demo_data.summarize(engine, created)
    typer.echo(("loaded" if created else "already loaded") + f": {summary.portfolio}")
    typer.echo(
        f"  broker {summary.broker}, {summary.tax_treatment}, cash £{summary.cash_balance}, "
        f"{summary.holdings} holdings"
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
