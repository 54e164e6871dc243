"""prices, fx, alerts and freeze commands."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..core.errors import ValidationError
from ..core.timeutil import parse_as_of, parse_day
from .context import AS_OF_OPTION, JSON_OPTION, PORTFOLIO_OPTION, emit, emit_json, info, work
from .progress import progress

if TYPE_CHECKING:
    from ..services.prices import IngestResult

# The services (and numpy behind them) are imported inside the commands: every other command
# starts faster.

prices_app = typer.Typer(
    help="Prices: import, refresh, list, latest good close, accepted levels.", no_args_is_help=True
)
fx_app = typer.Typer(help="FX rates (GBP crosses).", no_args_is_help=True)
alerts_app = typer.Typer(
    help="Alerts: list them (no subcommand) or resolve one.", invoke_without_command=True
)
freeze_app = typer.Typer(help="Portfolio freezes: status, set, clear.", no_args_is_help=True)

TICKER = typer.Option(..., "--ticker", help="The listing's ticker, e.g. VWRP.")
EXCHANGE = typer.Option(..., "--exchange", help="The listing's exchange (MIC), e.g. XLON.")


def _date(text: str | None, option: str) -> date | None:
    return None if text is None else parse_day(text, option)


# --------------------------------------------------------------------------------------------
# prices
# --------------------------------------------------------------------------------------------
@prices_app.command("import")
def prices_import(
    file: Path = typer.Argument(..., help="The price file."),
    ticker: str = TICKER,
    exchange: str = EXCHANGE,
    fmt: str = typer.Option(..., "--format", help="stooq, twelvedata, yahoo, csv or json (gsej)."),
    replace: bool = typer.Option(
        False, "--replace", help="Prices of the file that differ from stored ones supersede them (audited)."
    ),
    reason: str = typer.Option(
        None, "--reason", help="Why the stored prices are wrong (needed with --replace)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import a price file for one listing: normalised, checked, flagged points stored."""
    from ..services import prices  # lazy: keeps start-up fast

    with work() as (session, actor):
        result = prices.import_price_file(
            session,
            actor=actor,
            path=file,
            ticker=ticker,
            exchange=exchange,
            fmt=fmt,
            replace=replace,
            reason=reason,
        )
    summary = result.summary() | {
        "conflict_details": [c.row() for c in result.conflicts],
        "replaced_details": [c.row() for c in result.replacements],
    }
    if as_json:
        emit_json(summary)
        return
    replaced = f", {len(result.replacements)} replaced" if result.replacements else ""
    typer.echo(
        f"{result.listing} from {result.source}: {result.received} prices read, {result.inserted} new"
        f"{replaced}, {result.unchanged} already stored"
    )
    if result.level_basis.startswith("unverified") and result.inserted:
        info(
            f"note: {result.listing} has no trade in your book to check these prices' unit against: "
            "their level is unverified"
        )
    _report_quality(result)


def _report_quality(result: IngestResult) -> None:
    for conflict in result.conflicts[:20]:
        info(
            f"warning: {result.listing} {conflict.as_of}: stored {conflict.stored[0]} {conflict.stored[2]}, "
            f"the new data says {conflict.new[0]} {conflict.new[2]}; the stored price is kept"
        )
    if len(result.conflicts) > 20:
        info(f"warning: ... and {len(result.conflicts) - 20} more prices differ from the stored ones")
    if result.conflicts:
        info("to replace the stored prices with the file's, import it again with --replace --reason TEXT")
    if result.resolved_alert_ids:
        info(f"{len(result.resolved_alert_ids)} alert(s) resolved")
    if result.unfrozen_portfolio_ids:
        info(f"{len(result.unfrozen_portfolio_ids)} portfolio(s) no longer frozen")
    for issue in result.issues:
        level = "CRITICAL" if issue.flag.value in ("scale_suspect", "currency_mismatch") else "warning"
        info(f"{level}: {issue.message}")
    if result.frozen_portfolio_ids:
        info(f"{len(result.frozen_portfolio_ids)} portfolio(s) frozen: see `tradeassist alerts`")


@prices_app.command("refresh")
def prices_refresh(
    portfolio: str = typer.Option(None, "--portfolio", help="Only this portfolio's listings."),
    base_url: list[str] = typer.Option(
        [], "--base-url", help="PROVIDER=URL: download from another server (repeatable)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Download each listing's prices from its configured provider; failures are per listing."""
    from ..services import price_refresh  # lazy: keeps start-up fast

    options: dict[str, dict[str, str]] = {}
    for item in base_url:
        name, sep, url = item.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise ValidationError(f"--base-url {item!r}: expected PROVIDER=URL")
        options.setdefault(name.strip(), {})["base_url"] = url.strip()
    with work(readonly=True) as (session, actor):
        targets, skipped = price_refresh.plan_refresh(session, actor=actor, portfolio=portfolio)
    with progress(len(targets), "downloading prices", json=as_json, unit="listing") as step:
        fetched = price_refresh.fetch_targets(targets, provider_options=options, on_step=step)
    with work() as (session, actor):
        outcomes = price_refresh.apply_refresh(session, actor=actor, fetched=fetched)
    rows = [o.row() for o in [*skipped, *outcomes]]
    emit(rows, as_json, ["ticker", "exchange", "provider", "status", "message"])
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        info(f"error: {len(failed)} listing(s) failed; the others were refreshed")
        raise typer.Exit(1)


@prices_app.command("list")
def prices_list(
    ticker: str = TICKER,
    exchange: str = EXCHANGE,
    start: str = typer.Option(None, "--from", help="First date (YYYY-MM-DD)."),
    end: str = typer.Option(None, "--to", help="Last date (YYYY-MM-DD)."),
    superseded: bool = typer.Option(
        False, "--all", help="Also the prices a later import replaced (marked with what replaced them)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every stored price of a listing with its quality flags, oldest first; `values` marks the
    close that values the portfolio on its day (one per day, by the listing's source priority)."""
    from ..services import prices  # lazy: keeps start-up fast

    with work(readonly=True) as (session, _actor):
        rows = prices.list_prices(
            session,
            ticker=ticker,
            exchange=exchange,
            start=_date(start, "--from"),
            end=_date(end, "--to"),
            include_superseded=superseded,
        )
    emit(
        rows,
        as_json,
        [
            "as_of",
            "source",
            "is_close",
            "raw_price",
            "raw_quote_scale",
            "normalized_price_base",
            "quality_flags",
            "values_portfolio",
            *(["superseded_by"] if superseded else []),
        ],
    )


@prices_app.command("latest")
def prices_latest(
    portfolio: str = PORTFOLIO_OPTION,
    as_of: str = AS_OF_OPTION,
    max_age: int = typer.Option(
        None, "--max-age", help="Business days before a price is stale (default: the policy's default, 5)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """The latest good close of each listing the portfolio holds or maps, with its age."""
    from ..services import prices  # lazy: keeps start-up fast

    moment = parse_as_of(as_of)
    with work(readonly=True) as (session, actor):
        rows = prices.portfolio_latest(
            session,
            actor=actor,
            portfolio=portfolio,
            as_of=moment,
            max_age_business_days=prices.DEFAULT_MAX_AGE_BUSINESS_DAYS if max_age is None else max_age,
        )
    emit(
        rows,
        as_json,
        [
            "ticker",
            "exchange",
            "held",
            "constituent",
            "as_of",
            "price_gbp",
            "source",
            "age_business_days",
            "is_stale",
        ],
    )


@prices_app.command("accept-level")
def prices_accept_level(
    ticker: str = TICKER,
    exchange: str = EXCHANGE,
    start: str = typer.Option(..., "--from", help="The date from which the new level is right."),
    reason: str = typer.Option(..., "--reason", help="Why the new level is genuine (audited)."),
) -> None:
    """Accept a listing's new price level from a date: its prices from then on are checked again,
    and the alerts and freezes the check clears are ended."""
    from ..services import market_workflows  # lazy: keeps start-up fast

    effective = _date(start, "--from")
    assert effective is not None
    with work() as (session, actor):
        result, resolved = market_workflows.accept_level(
            session, actor=actor, ticker=ticker, exchange=exchange, effective_date=effective, reason=reason
        )
    typer.echo(
        f"{result.listing}: level accepted from {effective}; {result.rechecked} stored prices checked again, "
        f"{result.now_usable} now usable, {result.now_flagged} now flagged"
    )
    if resolved.alert_ids:
        typer.echo(f"{len(resolved.alert_ids)} alert(s) resolved")
    if resolved.unfrozen_portfolio_ids:
        typer.echo(f"{len(resolved.unfrozen_portfolio_ids)} portfolio(s) no longer frozen")


@prices_app.command("recheck")
def prices_recheck(
    ticker: str = TICKER,
    exchange: str = EXCHANGE,
    start: str = typer.Option(..., "--from", help="Check the stored prices from this date on."),
) -> None:
    """Check a listing's stored prices again (e.g. after `corporate-action add` recorded a split)."""
    from ..services import price_checks  # lazy: keeps start-up fast

    day = _date(start, "--from")
    assert day is not None
    with work() as (session, actor):
        results = price_checks.recheck_prices(
            session, actor=actor, ticker=ticker, exchange=exchange, from_date=day
        )
    for result in results:
        typer.echo(
            f"{result.listing}: {result.rechecked} stored prices checked again, "
            f"{result.now_usable} now usable, {result.now_flagged} now flagged"
        )


# --------------------------------------------------------------------------------------------
# fx
# --------------------------------------------------------------------------------------------
@fx_app.command("import")
def fx_import(
    file: Path = typer.Argument(..., help="The FX file (ECB history or daily CSV, or its zip)."),
    fmt: str = typer.Option(..., "--format", help="ecb"),
    currencies: str = typer.Option(None, "--currencies", help="Only these, e.g. USD,EUR (default: all)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import reference rates and store GBP crosses."""
    from ..services import fx  # lazy: keeps start-up fast

    wanted = None if currencies is None else currencies.split(",")
    with work() as (session, actor):
        result = fx.import_fx_file(session, actor=actor, path=file, fmt=fmt, currencies=wanted)
    if as_json:
        emit_json(result.summary())
        return
    typer.echo(
        f"{result.source}: {result.received} GBP rates for {len(result.currencies)} currencies "
        f"({result.first_date} to {result.last_date}), {result.inserted} new, "
        f"{result.unchanged} already stored"
    )
    if result.renormalized:
        typer.echo(f"{result.renormalized} stored prices now have a GBP price")
    for conflict in result.conflicts[:20]:
        info(
            f"warning: GBP{conflict.quote_currency} {conflict.as_of}: stored {conflict.stored_rate}, "
            f"the file says {conflict.new_rate}; the stored rate is kept"
        )


# --------------------------------------------------------------------------------------------
# alerts
# --------------------------------------------------------------------------------------------
@alerts_app.callback()
def alerts_list(
    ctx: typer.Context,
    portfolio: str = typer.Option(None, "--portfolio", help="Only this portfolio's alerts."),
    open_only: bool = typer.Option(False, "--open", help="Only unresolved alerts."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every alert (of every portfolio you can see, and those tied to none), newest first."""
    from ..services import governance  # lazy: keeps start-up fast

    if ctx.invoked_subcommand is not None:
        return
    with work(readonly=True) as (session, actor):
        rows = governance.list_alerts(session, actor=actor, portfolio=portfolio, open_only=open_only)
    emit(rows, as_json, ["alert_id", "portfolio", "severity", "code", "created_at", "resolved_at", "message"])


@alerts_app.command("resolve")
def alerts_resolve(
    alert_id: int = typer.Argument(..., help="The alert's id."),
    note: str = typer.Option(None, "--note", help="Why it is resolved (audited)."),
) -> None:
    """Mark an alert resolved. A freeze it caused stays until `freeze clear`."""
    from ..services import governance  # lazy: keeps start-up fast

    with work() as (session, actor):
        alert = governance.resolve_alert(session, actor=actor, alert_id=alert_id, note=note)
        frozen = alert.portfolio_id is not None and governance.is_frozen(session, alert.portfolio_id)
    typer.echo(f"alert {alert_id} resolved")
    if frozen:
        info("note: the portfolio is still frozen; clear it with `tradeassist freeze clear`")


# --------------------------------------------------------------------------------------------
# freeze
# --------------------------------------------------------------------------------------------
@freeze_app.command("status")
def freeze_status(portfolio: str = PORTFOLIO_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Whether the portfolio is frozen, and why."""
    from ..services import governance  # lazy: keeps start-up fast

    with work(readonly=True) as (session, actor):
        status = governance.portfolio_freeze_status(session, actor=actor, portfolio=portfolio)
    row = status.row(portfolio)
    if as_json:
        emit_json(row)
    else:
        emit([row], False, ["portfolio", "is_frozen", "reason_code", "reason_detail", "set_at", "cleared_at"])


@freeze_app.command("set")
def freeze_set(
    portfolio: str = PORTFOLIO_OPTION, reason: str = typer.Option(..., "--reason", help="Why (audited).")
) -> None:
    """Freeze a portfolio: its trading runs stop until the freeze is cleared."""
    from ..services import governance  # lazy: keeps start-up fast

    with work() as (session, actor):
        status = governance.freeze_portfolio(session, actor=actor, portfolio=portfolio, reason=reason)
    if status.changed:
        typer.echo(f"{portfolio} frozen")
    else:
        typer.echo(
            f"{portfolio} was already frozen since {status.set_at} "
            f"({status.reason_code}: {status.reason_detail})"
        )


@freeze_app.command("clear")
def freeze_clear(
    portfolio: str = PORTFOLIO_OPTION, reason: str = typer.Option(..., "--reason", help="Why (audited).")
) -> None:
    """Clear a portfolio's freeze (an explicit, audited decision)."""
    from ..services import governance  # lazy: keeps start-up fast

    with work() as (session, actor):
        governance.unfreeze_portfolio(session, actor=actor, portfolio=portfolio, reason=reason)
    typer.echo(f"{portfolio}: freeze cleared")


def register(app: typer.Typer) -> None:
    app.add_typer(prices_app, name="prices")
    app.add_typer(fx_app, name="fx")
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(freeze_app, name="freeze")
