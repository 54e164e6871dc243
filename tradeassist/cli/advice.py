"""``tradeassist recommend``: preview a recommendation without storing anything."""

from __future__ import annotations

import typer

from ..core.timeutil import parse_as_of
from .context import AS_OF_OPTION, JSON_OPTION, emit_json, emit_table, work


def recommend(
    portfolio: str = typer.Option(..., "--portfolio"),
    kind: str = typer.Option(
        ..., "--kind", help="MONTHLY_ALLOC or QUARTERLY_REBAL (WEEKLY_REVIEW: drift check)."
    ),
    contribution: str = typer.Option(
        None, "--contribution", help="Money arriving with this allocation, GBP."
    ),
    as_of: str = AS_OF_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Compute a recommendation with the strategy governing the portfolio and print it (nothing
    is stored). ``--json`` adds ``left_alone``, ``excluded_value_base``, ``rules_fired``,
    ``objective``, ``lower_bound``, ``proven_optimal`` and ``nodes`` beside the stored four keys."""
    from ..services import advice  # lazy: keeps start-up fast

    with work(readonly=True) as (session, actor):
        inputs = advice.prepare_inputs(
            session,
            actor=actor,
            portfolio=portfolio,
            kind=kind,
            as_of=parse_as_of(as_of),
            contribution=contribution,
        )
    from ..engine.recommend import left_alone_summary  # lazy: keeps start-up fast

    result = advice.recommend(inputs)
    document = {**result.to_json_dict(), **result.explain()}
    if as_json:
        emit_json(document)
        return
    typer.echo(document["headline"])
    summary = left_alone_summary(document["rationale"])
    if summary:
        typer.echo(summary)
    if document["lines"]:
        emit_table(document["lines"])
    report = document["constraints_report"]
    typer.echo(", ".join(f"{k}: {v}" for k, v in report.items() if not isinstance(v, list | dict)))


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend)
