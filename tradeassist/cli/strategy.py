"""strategy and constituent commands."""

from __future__ import annotations

from pathlib import Path

import typer

from ..core import limits
from ..core.enums import StrategyStatus
from ..core.errors import ValidationError
from ..services import strategy
from ..services.access import portfolio_for
from .context import JSON_OPTION, emit, emit_json, work

strategy_app = typer.Typer(help="Strategy versions: policy + manifesto.", no_args_is_help=True)
constituent_app = typer.Typer(
    help="Which listings implement which sleeve, per portfolio.", no_args_is_help=True
)


def _read(path: Path, what: str) -> str:
    """A policy or manifesto file's text: UTF-8 (a BOM tolerated), no NUL, within
    ``core.limits.MAX_FILE_BYTES``; otherwise one error naming the file and the line."""
    name = str(path.resolve())
    try:
        data = limits.read_file_bytes(path, name=name)
    except OSError as exc:
        raise ValidationError(f"{what} {path}: {exc.strerror}") from None
    limits.check_text_file(name, data)
    return limits.decode_utf8(name, data)


@strategy_app.command("add")
def strategy_add(
    label: str = typer.Option(..., "--label"),
    policy: Path = typer.Option(..., "--policy", help="policy.json"),
    manifesto: Path = typer.Option(..., "--manifesto", help="manifesto.md"),
    portfolio: list[str] = typer.Option(
        None,
        "--portfolio",
        metavar="NAME",
        help="A portfolio the version governs (repeat for more). Default: every portfolio you own.",
    ),
) -> None:
    """Add a DRAFT strategy version (policy and manifesto archived by SHA-256) for the
    portfolios it governs; the manifesto's rule lines join the policy's hard rules."""
    policy_text, manifesto_text = _read(policy, "policy"), _read(manifesto, "manifesto")
    with work() as (session, actor):
        try:
            version = strategy.add_strategy(
                session,
                actor=actor,
                label=label,
                policy_text=policy_text,
                manifesto=manifesto_text,
                portfolios=portfolio or None,
            )
        except ValidationError as exc:
            text = str(exc)
            if text.startswith("policy"):
                raise ValidationError(f"{policy.resolve()}: {text}") from None
            if text.startswith(("manifesto", "the manifesto")):
                raise ValidationError(f"{manifesto.resolve()}: {text}") from None
            raise
        names = ", ".join(repr(p.name) for p in strategy.scope_of(session, version))
        typer.echo(
            f"strategy added: {version.version_label} (DRAFT, policy {version.policy_sha256[:12]}) "
            f"for {names}"
        )


@strategy_app.command("approve")
def strategy_approve(
    label: str,
    override_reason: str = typer.Option(
        None, "--override-reason", help="Approve even though the manifesto review FAILED (audited)."
    ),
) -> None:
    """Approve a DRAFT version once its manifesto is reviewed: it governs its portfolios from
    now on; a version that governed one of them keeps its other portfolios, and is retired
    once it governs none. Other portfolios keep their strategies."""
    from ..services.recommendations import review_manifesto  # lazy: keeps start-up fast

    # The review is kept in its own transaction: a FAIL that refuses the approval is still
    # stored, so approving again with an override reason does not ask the reviewer twice.
    with work() as (session, actor):
        version = strategy.get_version(session, label)
        if version.status is StrategyStatus.DRAFT:
            strategy.require_scope_access(session, actor, version, "approve a strategy")
            verdict = review_manifesto(session, actor=actor, version=version)
            typer.echo(f"manifesto review: {verdict.verdict.value} ({verdict.provider_name})")
    with work() as (session, actor):
        done = strategy.approve(session, actor=actor, label=label, override_reason=override_reason)
        names = ", ".join(repr(p.name) for p in strategy.scope_of(session, done.version))
    for old in done.retired:
        typer.echo(f"strategy retired: {old} (it governs no portfolio now)")
    for old, kept in sorted(done.still_governing.items()):
        shown = ", ".join(map(repr, kept)) or "portfolios you have no access to"
        typer.echo(f"strategy {old} still governs {shown}")
    typer.echo(f"strategy {done.version.version_label} governs {names}")
    typer.echo(f"strategy approved: {done.version.version_label}")


@strategy_app.command("retire")
def strategy_retire(label: str) -> None:
    """Retire a version: the portfolios it governs have no approved strategy until another is
    approved for them."""
    with work() as (session, actor):
        done = strategy.retire(session, actor=actor, label=label)
    left = [repr(name) for name in done.left_without_strategy]
    if left:
        typer.echo(
            f"warning: no approved strategy governs {', '.join(left)} now: add and approve one "
            "(`tradeassist strategy add --portfolio NAME ...`, `tradeassist strategy approve LABEL`)",
            err=True,
        )
    typer.echo(f"strategy retired: {done.version.version_label}")


@strategy_app.command("show")
def strategy_show(
    portfolio: str = typer.Option(
        None, "--portfolio", help="Only the versions whose scope holds this portfolio."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every strategy version with its status, its portfolios (``portfolios``: its scope;
    ``governs``: those it governs now), its sleeve targets and its hard rules (the policy's
    merged with the manifesto's)."""
    with work(readonly=True) as (session, actor):
        chosen = portfolio_for(session, actor, portfolio, "read") if portfolio is not None else None
        rows = strategy.strategy_rows(session, actor=actor, portfolio=chosen)
    if as_json:
        emit_json(rows)
    else:
        emit(
            rows,
            False,
            ["label", "status", "portfolios", "governs", "approved_at", "sleeve_targets", "hard_rules"],
        )


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


@constituent_app.command("move")
def constituent_move(
    portfolio: str = typer.Option(..., "--portfolio"),
    ticker: str = typer.Option(..., "--ticker"),
    exchange: str = typer.Option(..., "--exchange"),
    sleeve: str = typer.Option(..., "--sleeve", help="The sleeve it belongs to from now on."),
) -> None:
    """Map a portfolio's constituent to another sleeve (audited with both sleeves)."""
    with work() as (session, actor):
        row = strategy.move_constituent(
            session, actor=actor, portfolio=portfolio, ticker=ticker, exchange=exchange, sleeve=sleeve
        )
        code = row.sleeve_code
    typer.echo(f"constituent moved: {ticker.upper()} on {exchange.upper()} -> {code}")


@constituent_app.command("list")
def constituent_list(portfolio: str = typer.Option(..., "--portfolio"), as_json: bool = JSON_OPTION) -> None:
    """A portfolio's constituents."""
    with work(readonly=True) as (session, actor):
        rows = strategy.constituent_rows(session, portfolio_for(session, actor, portfolio, "read"))
    emit(rows, as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(strategy_app, name="strategy")
    app.add_typer(constituent_app, name="constituent")
