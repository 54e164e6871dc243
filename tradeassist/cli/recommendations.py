"""``reco``: the recommendations runs stored, reviewed, approved, ignored and executed."""

from __future__ import annotations

from typing import Any

import typer

from ..core.money import format_gbp
from .context import JSON_OPTION, emit, emit_json, emit_table, state, work

reco_app = typer.Typer(
    help="Recommendations: list, show, review, approve, ignore, execute.", no_args_is_help=True
)

LIST_COLUMNS = ["recommendation_id", "portfolio", "run_id", "status", "latest_verdict", "blocked", "headline"]
LINE_COLUMNS = ["line_id", "action", "ticker", "exchange", "units", "amount", "note", "reason_code"]


@reco_app.command("list")
def list_(
    portfolio: str = typer.Option(None, "--portfolio", help="Only this portfolio's."),
    include_closed: bool = typer.Option(False, "--all", help="EXECUTED and IGNORED ones too."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Recommendations awaiting a decision (DRAFT, REVIEWED), newest first."""
    from ..services import recommendations  # lazy: keeps start-up fast

    with work(readonly=True) as (session, actor):
        rows = recommendations.pending_recommendations(
            session, actor=actor, portfolio=portfolio, include_closed=include_closed
        )
    emit(rows, as_json, LIST_COLUMNS)


def _verdict_line(verdict: dict[str, Any]) -> str:
    who = f"{verdict['provider']} ({verdict['model']})"
    return f"review {verdict['llm_verdict_id']}: {verdict['verdict']} by {who}"


def line_shown(line: dict[str, Any]) -> dict[str, Any]:
    """A line as people read it: pounds and pence (``--json`` keeps the exact figures)."""
    return {
        **line,
        "units": line["estimated_units"],
        "amount": format_gbp(line["amount_base"]),
        "note": "below the minimum: not to place" if line["suppressed_by_min_trade"] else "",
    }


def _show(row: dict[str, Any]) -> None:
    typer.echo(
        f"recommendation {row['recommendation_id']} ({row['status']}) "
        f"for {row['portfolio']}, run {row['run_id']}"
    )
    typer.echo(row["headline"])
    if row["status_reason"]:
        typer.echo(f"reason: {row['status_reason']}")
    if row["frozen"]:
        typer.echo("the portfolio is FROZEN: nothing can be approved or executed")
    emit_table([line_shown(line) for line in row["lines"]], LINE_COLUMNS)
    for verdict in row["verdicts"]:
        typer.echo(_verdict_line(verdict))
        for reason in verdict["reasons"]:
            typer.echo(f"  - {reason}")
    if row["blocked"]:
        typer.echo("blocked: the latest review FAILED (approve with --override-reason to go ahead)")


@reco_app.command("show")
def show(recommendation_id: int = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """One recommendation: lines, reviews, status."""
    from ..services import recommendations  # lazy: keeps start-up fast

    with work(readonly=True) as (session, actor):
        row = recommendations.get_recommendation(session, actor=actor, recommendation_id=recommendation_id)
    if as_json:
        emit_json(row)
    else:
        _show(row)


def _review(recommendation_id: int, reviewer: str | None) -> Any:
    from ..services import recommendations  # lazy: keeps start-up fast

    with work(readonly=True) as (_session, actor):
        actor_id = actor.user_id
    assert actor_id is not None  # a user read from the database has its id
    return recommendations.review_outside_transaction(
        state.initialised_engine(), actor_id=actor_id, recommendation_id=recommendation_id, reviewer=reviewer
    )


@reco_app.command("review")
def review(
    recommendation_id: int = typer.Argument(...),
    reviewer: str = typer.Option(
        None,
        "--reviewer",
        help="builtin-rules, openai-compatible or anthropic (default TRADEASSIST_REVIEWER).",
    ),
) -> None:
    """Review a recommendation (a request reviewed before is answered from the stored verdict)."""
    from ..services.recommendations import verdict_row  # lazy: keeps start-up fast

    verdict = verdict_row(_review(recommendation_id, reviewer))
    typer.echo(_verdict_line(verdict))
    for reason in verdict["reasons"]:
        typer.echo(f"  - {reason}")


@reco_app.command("approve")
def approve(
    recommendation_id: int = typer.Argument(...),
    override_reason: str = typer.Option(
        None, "--override-reason", help="Approve even though the latest review FAILED (audited)."
    ),
) -> None:
    """DRAFT -> REVIEWED (reviewed first if it has no review yet)."""
    from ..services import recommendations  # lazy: keeps start-up fast

    with work(readonly=True) as (session, actor):
        row = recommendations.get_recommendation(session, actor=actor, recommendation_id=recommendation_id)
    if row["status"] == "DRAFT" and not row["verdicts"] and not row["frozen"]:
        # Reviewed and stored on its own: a FAIL is kept even though the approval is refused.
        _review(recommendation_id, None)
    with work() as (session, actor):
        reco = recommendations.approve_recommendation(
            session, actor=actor, recommendation_id=recommendation_id, override_reason=override_reason
        )
        typer.echo(f"recommendation {reco.recommendation_id} approved: {reco.status.value}")
        if reco.status_reason:
            typer.echo(f"  {reco.status_reason}")


@reco_app.command("ignore")
def ignore(
    recommendation_id: int = typer.Argument(...),
    reason: str = typer.Option(..., "--reason", help="Why it is not acted on."),
) -> None:
    """DRAFT or REVIEWED -> IGNORED."""
    from ..services import recommendations  # lazy: keeps start-up fast

    with work() as (session, actor):
        reco = recommendations.ignore_recommendation(
            session, actor=actor, recommendation_id=recommendation_id, reason=reason
        )
        typer.echo(f"recommendation {reco.recommendation_id} ignored: {reason}")


@reco_app.command("execute")
def execute(
    recommendation_id: int = typer.Argument(...),
    fill: list[str] = typer.Option(
        ...,
        "--fill",
        help="TICKER:EXCHANGE:ACTION:UNITS:PRICE:FEES, the price in the listing's quote scale "
        "(pence for GBX); add :CONSIDERATION_GBP for a listing quoted in another currency. Repeat.",
    ),
    at: str = typer.Option(None, "--at", help="When the trades were made (ISO 8601; default now)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """REVIEWED -> EXECUTED: the fills become one EXECUTION ledger batch."""
    from ..services import recommendations  # lazy: keeps start-up fast
    from ..services.ledger import parse_entry_time  # lazy: keeps start-up fast

    executed_at = parse_entry_time(at) if at else None
    fills = [recommendations.Fill.parse(text, executed_at) for text in fill]
    with work() as (session, actor):
        result = recommendations.execute_recommendation(
            session, actor=actor, recommendation_id=recommendation_id, fills=fills
        )
    row = {
        "recommendation_id": recommendation_id,
        "status": "EXECUTED",
        "ledger_batch_id": result.batch_id,
        "entries": result.added,
        "cash_balance": result.cash_balance,
    }
    if as_json:
        emit_json(row)
    else:
        typer.echo(
            f"recommendation {recommendation_id} executed: ledger batch {result.batch_id}, "
            f"{result.added} entr{'y' if result.added == 1 else 'ies'}, "
            f"cash now {format_gbp(result.cash_balance)}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(reco_app, name="reco")
