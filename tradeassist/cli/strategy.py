"""strategy and constituent commands."""

from __future__ import annotations

from pathlib import Path

import typer

from ..enums import StrategyStatus
from ..errors import ValidationError
from ..services import strategy
from ..services.access import portfolio_for
from .context import JSON_OPTION, emit, emit_json, work

strategy_app = typer.Typer(help="Strategy versions: policy + manifesto.", no_args_is_help=True)
constituent_app = typer.Typer(
    help="Which listings implement which sleeve, per portfolio.", no_args_is_help=True
)


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValidationError(f"{what} {path}: {exc.strerror}") from None


@strategy_app.command("add")
def strategy_add(
    label: str = typer.Option(..., "--label"),
    policy: Path = typer.Option(..., "--policy", help="policy.json"),
    manifesto: Path = typer.Option(..., "--manifesto", help="manifesto.md"),
) -> None:
    """Add a DRAFT strategy version (policy and manifesto archived by SHA-256)."""
    policy_text, manifesto_text = _read(policy, "policy"), _read(manifesto, "manifesto")
    with work() as (session, actor):
        try:
            version = strategy.add_strategy(
                session, actor=actor, label=label, policy_text=policy_text, manifesto=manifesto_text
            )
        except ValidationError as exc:
            raise ValidationError(f"{policy.resolve()}: {exc}") from None
        typer.echo(f"strategy added: {version.version_label} (DRAFT, policy {version.policy_sha256[:12]})")


@strategy_app.command("approve")
def strategy_approve(
    label: str,
    override_reason: str = typer.Option(
        None, "--override-reason", help="Approve even though the manifesto review FAILED (audited)."
    ),
) -> None:
    """Approve a DRAFT version once its manifesto is reviewed; the previously approved version
    is retired."""
    from ..services.recommendations import review_manifesto

    # The review is kept in its own transaction: a FAIL that refuses the approval is still
    # stored, so approving again with an override reason does not ask the reviewer twice.
    with work() as (session, actor):
        version = strategy.get_version(session, label)
        if version.status is StrategyStatus.DRAFT:
            verdict = review_manifesto(session, actor=actor, version=version)
            typer.echo(f"manifesto review: {verdict.verdict.value} ({verdict.provider_name})")
    with work() as (session, actor):
        version = strategy.approve_strategy(
            session, actor=actor, label=label, override_reason=override_reason
        )
        typer.echo(f"strategy approved: {version.version_label}")


@strategy_app.command("retire")
def strategy_retire(label: str) -> None:
    """Retire a version."""
    with work() as (session, actor):
        version = strategy.retire_strategy(session, actor=actor, label=label)
        typer.echo(f"strategy retired: {version.version_label}")


@strategy_app.command("show")
def strategy_show(as_json: bool = JSON_OPTION) -> None:
    """Every strategy version with its status and sleeve targets."""
    with work(readonly=True) as (session, _actor):
        rows = strategy.strategy_rows(session)
    if as_json:
        emit_json(rows)
    else:
        emit(rows, False, ["version_label", "status", "approved_at", "sleeve_targets", "policy_sha256"])


@constituent_app.command("add")
def constituent_add(
    portfolio: str = typer.Option(..., "--portfolio"),
    ticker: str = typer.Option(..., "--ticker"),
    exchange: str = typer.Option(..., "--exchange"),
    sleeve: str = typer.Option(..., "--sleeve"),
    exclude_from_calcs: bool = typer.Option(False, "--exclude-from-calcs"),
    unmonitored: bool = typer.Option(False, "--unmonitored"),
) -> None:
    """Map a listing to a sleeve in a portfolio."""
    with work() as (session, actor):
        strategy.add_constituent(
            session,
            actor=actor,
            portfolio=portfolio,
            ticker=ticker,
            exchange=exchange,
            sleeve=sleeve,
            include_in_calcs=not exclude_from_calcs,
            is_monitored=not unmonitored,
        )
    typer.echo(f"constituent added: {ticker.upper()} on {exchange.upper()} -> {sleeve.upper()}")


@constituent_app.command("list")
def constituent_list(portfolio: str = typer.Option(..., "--portfolio"), as_json: bool = JSON_OPTION) -> None:
    """A portfolio's constituents."""
    with work(readonly=True) as (session, actor):
        rows = strategy.constituent_rows(session, portfolio_for(session, actor, portfolio, "read"))
    emit(rows, as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(strategy_app, name="strategy")
    app.add_typer(constituent_app, name="constituent")
