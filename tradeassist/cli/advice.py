"""``tradeassist recommend``: preview a recommendation without storing anything, for one
portfolio or (``--strategy``) for every account of a household at once."""

from __future__ import annotations

from datetime import datetime

import typer

from ..core.errors import ValidationError
from ..core.timeutil import parse_as_of
from .context import AS_OF_OPTION, JSON_OPTION, emit_json, emit_table, work


def recommend(
    portfolio: str = typer.Option(None, "--portfolio", help="The portfolio (or --strategy)."),
    strategy: str = typer.Option(
        None,
        "--strategy",
        help="A strategy over several accounts of one owner: one recommendation for all of them.",
    ),
    kind: str = typer.Option(
        ..., "--kind", help="MONTHLY_ALLOC or QUARTERLY_REBAL (WEEKLY_REVIEW: drift check, --portfolio only)."
    ),
    contribution: list[str] = typer.Option(
        None,
        "--contribution",
        help='Money arriving with this allocation, GBP: "500" with --portfolio; with --strategy '
        '"ACCOUNT=AMOUNT", once per account, e.g. --contribution "AJ Bell ISA=500".',
    ),
    as_of: str = AS_OF_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Compute a recommendation with the strategy governing the portfolio and print it (nothing
    is stored). ``--json`` adds ``left_alone``, ``excluded_value_base``, ``rules_fired``,
    ``objective``, ``lower_bound``, ``proven_optimal`` and ``nodes`` beside the stored four keys.

    ``--strategy LABEL`` instead: one solve for every account of that strategy (docs/advice.md,
    "Households"): the household's decision, each account's lines, the household's allocation
    before and after per sleeve; ``--json`` prints ``strategy``, ``kind``, ``as_of``,
    ``input_hash``, ``headline``, ``allocation``, ``rationale``, ``accounts`` (each account's
    recommendation) and ``lines`` (every line with its ``portfolio``)."""
    if (portfolio is None) == (strategy is None):
        raise ValidationError(
            "give --portfolio NAME (one account) or --strategy LABEL (a household), not both"
        )
    moment = parse_as_of(as_of)
    if strategy is not None:
        _household(strategy, kind, contribution or [], moment, as_json)
        return
    if len(contribution or []) > 1:
        raise ValidationError("--contribution: one amount for one portfolio (several are for --strategy)")
    from ..services import advice  # lazy: keeps start-up fast

    with work(readonly=True) as (session, actor):
        inputs = advice.prepare_inputs(
            session,
            actor=actor,
            portfolio=portfolio,
            kind=kind,
            as_of=moment,
            contribution=(contribution or [None])[0],
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


def _household(strategy: str, kind: str, contributions: list[str], moment: datetime, as_json: bool) -> None:
    from ..presentation.household import text_lines  # lazy: keeps start-up fast
    from ..services import household, household_results

    with work(readonly=True) as (session, actor):
        inputs = household.prepare_household(
            session, actor=actor, strategy=strategy, kind=kind, as_of=moment, contributions=contributions
        )
    document = household_results.document(household_results.recommend(inputs))
    if as_json:
        emit_json(document)
        return
    for line in text_lines(document):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend)
