"""init, user and portfolio commands."""

from __future__ import annotations

import sys

import typer

from ..core.config import redact_url
from ..services import identity, portfolios
from .context import JSON_OPTION, emit, info, state, work

user_app = typer.Typer(help="Users.", no_args_is_help=True)
portfolio_app = typer.Typer(help="Portfolios.", no_args_is_help=True)


def init() -> None:
    """Create or upgrade the database schema; create the bootstrap admin once."""
    from ..services.setup import init_database  # Alembic: for init only

    result = init_database(state.engine())
    typer.echo(f"database: {redact_url(state.url)} (schema {result.revision})")
    if result.admin_created:
        typer.echo(f"bootstrap admin: {result.admin_email}")
        if result.generated_password:
            typer.echo(f"generated password (shown once): {result.generated_password}")
    else:
        typer.echo(f"bootstrap admin: {result.admin_email} (exists; unchanged)")


PASSWORD_STDIN_OPTION = typer.Option(False, "--password-stdin", help="Read the password from stdin.")
DB_ROLE_OPTION = typer.Option(
    None, "--db-role", help="PostgreSQL: the login role's name (default: ta_ and the email's letters)."
)


def _password(password_stdin: bool) -> tuple[str, str | None]:
    """The password read from stdin, or a generated one (returned twice: to print it once)."""
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), None
    generated = identity.generate_password()
    return generated, generated


def _report_login(login: identity.NewLogin | None) -> None:
    if login is None:
        return
    if login.created:
        from sqlalchemy.engine import make_url

        url = make_url(state.url).set(drivername="postgresql", username=login.role, password="PASSWORD")
        shown = url.render_as_string(hide_password=False)
        typer.echo(f"database login: {login.role} (its TRADEASSIST_DB_URL: {shown})")
    else:
        typer.echo(f"database login: {login.role}, not created: this connection may not create roles.")
        typer.echo("an administrator runs this one SQL command (the password only as its SCRAM verifier):")
        typer.echo(login.command or "")


@user_app.command("add")
def user_add(
    email: str,
    password_stdin: bool = PASSWORD_STDIN_OPTION,
    db_role: str = DB_ROLE_OPTION,
) -> None:
    """Add a user (a generated password is printed once unless --password-stdin). On
    PostgreSQL the user gets a login role of their own, with that password."""
    password, generated = _password(password_stdin)
    with work() as (session, actor):
        added = identity.add_person(session, actor=actor, email=email, password=password, db_role=db_role)
        created = added.user.email
    typer.echo(f"user added: {created}")
    if generated:
        typer.echo(f"generated password (shown once): {generated}")
    _report_login(added.login)


@user_app.command("add-login")
def user_add_login(
    email: str,
    password_stdin: bool = PASSWORD_STDIN_OPTION,
    db_role: str = DB_ROLE_OPTION,
) -> None:
    """PostgreSQL: give an existing user (the bootstrap admin, say) a login role of their own
    (run on the database owner's connection)."""
    password, generated = _password(password_stdin)
    with work() as (session, actor):
        login = identity.add_login(session, actor=actor, email=email, password=password, db_role=db_role)
    if generated:
        typer.echo(f"generated password (shown once): {generated}")
    _report_login(login)


@user_app.command("disable")
def user_disable(email: str) -> None:
    """Disable a user: they can no longer log in or act."""
    with work() as (session, actor):
        user = identity.set_enabled(session, actor=actor, email=email, enabled=False)
        typer.echo(f"user disabled: {user.email}")


@user_app.command("enable")
def user_enable(email: str) -> None:
    """Enable a disabled user again."""
    with work() as (session, actor):
        user = identity.set_enabled(session, actor=actor, email=email, enabled=True)
        typer.echo(f"user enabled: {user.email}")


@portfolio_app.command("add")
def portfolio_add(
    name: str,
    broker: str = typer.Option(..., "--broker"),
    tax_treatment: str = typer.Option(..., "--tax-treatment", help="SIPP, ISA or GIA."),
    base_currency: str = typer.Option("GBP", "--base-currency"),
) -> None:
    """Add a portfolio owned by the acting user."""
    with work() as (session, actor):
        p = portfolios.add_portfolio(
            session,
            actor=actor,
            name=name,
            broker=broker,
            tax_treatment=tax_treatment,
            base_currency=base_currency,
        )
        typer.echo(f"portfolio added: {p.name} (id {p.portfolio_id})")


@portfolio_app.command("list")
def portfolio_list(as_json: bool = JSON_OPTION) -> None:
    """Portfolios the acting user may see."""
    with work(readonly=True) as (session, actor):
        rows = portfolios.list_portfolios(session, actor=actor)
    emit(rows, as_json)


@portfolio_app.command("share")
def portfolio_share(name: str, email: str) -> None:
    """Give another user access to a portfolio."""
    with work() as (session, actor):
        portfolios.share_portfolio(session, actor=actor, name=name, email=email)
    info(f"shared {name} with {email}")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(user_app, name="user")
    app.add_typer(portfolio_app, name="portfolio")
