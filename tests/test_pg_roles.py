"""Authentication that means something on PostgreSQL (issue #16, item 1).

A fresh database owned by an owner role that is not a superuser (CREATEROLE only), created
and migrated by ``tradeassist init``; alice and bob get their own login roles through
``tradeassist user add``. Connected as alice, raw SQL reads none of bob's rows, writes none,
and has no DDL; the command line on her login acts as her and only her; the owner's
connection still does everything. Roles belong to the whole server: every name carries a
per-module tag and is dropped at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel, select

from tests.support import pg
from tests.support.cli import run_cli
from tests.support.seed import seed_every_table
from tradeassist.db import models, row_security  # noqa: F401  (models: every table registered)
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.db.models import AuditEvent, User

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-123"


def test_every_table_is_classified_for_row_security() -> None:
    """A table added to the model must say how logins may use it (``db.row_security``)."""
    tables = set(SQLModel.metadata.tables)
    assert tables == row_security.classified_tables(), "unclassified: " + ", ".join(
        sorted(tables - row_security.classified_tables())
    )
    assert not set(row_security.POLICIES) & set(row_security.SHARED_TABLES)


def test_role_names_from_emails() -> None:
    assert row_security.role_name_for("Ann.Lee+isa@Example.COM") == "ta_ann_lee_isa_example_com"
    assert len(row_security.role_name_for("x" * 200 + "@example.com")) == 63
    assert row_security.check_role_name("ta_ann") is None
    assert row_security.check_role_name("Robert'); DROP TABLE users;--") is not None
    assert row_security.check_role_name(row_security.GROUP_ROLE) is not None


# --------------------------------------------------------------------------------------------
# A database of our own, with an owner, an admin, alice and bob
# --------------------------------------------------------------------------------------------
@dataclass
class World:
    cluster_url: str
    database: str
    tag: str
    owner_url: str
    urls: dict[str, str]  # person -> their login's URL
    emails: dict[str, str]
    roles: list[str]
    env: dict[str, str]

    def cli(self, *args: str, url: str | None = None, stdin: str | None = None, **env: str) -> Any:
        return run_cli(["--db", url or self.owner_url, *args], {**self.env, **env}, input=stdin, timeout=180)

    def connect(self, who: str) -> psycopg.Connection:
        url = self.owner_url if who == "owner" else self.urls[who]
        return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)

    def url_as(self, role: str, password: str) -> str:
        parsed = make_url(self.cluster_url).set(username=role, password=password, database=self.database)
        return parsed.render_as_string(hide_password=False)


def _cli_env(tmp: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env["TRADEASSIST_HOME"] = tmp
    env["TRADEASSIST_ADMIN_EMAIL"] = ADMIN_EMAIL
    env["TRADEASSIST_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    return env


def _superuser(cluster: pg.Cluster):  # type: ignore[no-untyped-def]
    return sa_create_engine(cluster.url, isolation_level="AUTOCOMMIT")


def _make_world(cluster: pg.Cluster, tmp: str) -> World:
    tag = uuid.uuid4().hex[:8]
    owner, database = f"ta_owner_{tag}", f"ta_rls_{tag}"
    su = _superuser(cluster)
    with su.connect() as conn:
        conn.execute(text(f"CREATE ROLE {owner} LOGIN CREATEROLE PASSWORD 'owner-pass-{tag}'"))
        conn.execute(text(f"CREATE DATABASE {database} OWNER {owner}"))
    su.dispose()
    world = World(cluster.url, database, tag, "", {}, {}, [owner], _cli_env(tmp))
    world.owner_url = world.url_as(owner, f"owner-pass-{tag}")
    _init(world.owner_url)
    for person in ("alice", "bob"):
        email = f"{person}-{tag}@example.com"
        added = world.cli("user", "add", email, "--password-stdin", stdin=f"{person}-pass-{tag}\n")
        assert added.returncode == 0, added.stderr
        role = row_security.role_name_for(email)
        assert f"database login: {role}" in added.stdout
        world.emails[person] = email
        world.roles.append(role)
        world.urls[person] = world.url_as(role, f"{person}-pass-{tag}")
    return world


def _init(url: str) -> None:
    from tradeassist.services.setup import init_database

    engine = create_db_engine(url)
    previous = {k: os.environ.get(k) for k in ("TRADEASSIST_ADMIN_EMAIL", "TRADEASSIST_ADMIN_PASSWORD")}
    os.environ.update(TRADEASSIST_ADMIN_EMAIL=ADMIN_EMAIL, TRADEASSIST_ADMIN_PASSWORD=ADMIN_PASSWORD)
    try:
        init_database(engine)
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        engine.dispose()


def _as(url: str, email: str, work: Any) -> Any:
    """``work(session, user)`` in one transaction on ``url``, acting as the user ``email``."""
    engine = create_db_engine(url)
    try:
        with unit_of_work(engine) as session:
            return work(session, session.exec(select(User).where(User.email == email)).one())
    finally:
        engine.dispose()


def _drop_world(cluster: pg.Cluster, world: World) -> None:
    su = _superuser(cluster)
    with su.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {world.database} WITH (FORCE)"))
        for role in reversed(world.roles):
            conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
    su.dispose()


@pytest.fixture(scope="module")
def world(pg_cluster: pg.Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Bob has a portfolio with a contribution; alice has one of her own; the admin owns the
    seeded portfolio holding one row in every table (written on the owner's connection)."""
    w = _make_world(pg_cluster, str(tmp_path_factory.mktemp("pg-roles-home")))
    try:
        from tradeassist.core.enums import BatchType, EntryType
        from tradeassist.services import ledger, portfolios

        def bob_isa(session: Any, bob: User) -> None:
            portfolios.add_portfolio(session, actor=bob, name="Bob ISA", broker="AJBell", tax_treatment="ISA")
            entry = ledger.NewEntry(
                entry_time=datetime(2026, 1, 5, 9, tzinfo=UTC),
                entry_type=EntryType.CONTRIBUTION,
                cash_amount_base=Decimal("1000"),
            )
            ledger.post_entries(
                session,
                actor=bob,
                portfolio="Bob ISA",
                entries=[entry],
                label="first",
                batch_type=BatchType.MANUAL,
            )

        def alice_sipp(session: Any, alice: User) -> None:
            portfolios.add_portfolio(
                session, actor=alice, name="Alice SIPP", broker="AJBell", tax_treatment="SIPP"
            )

        _as(w.urls["bob"], w.emails["bob"], bob_isa)
        _as(w.urls["alice"], w.emails["alice"], alice_sipp)
        _as(w.owner_url, ADMIN_EMAIL, seed_every_table)
        yield w
    finally:
        _drop_world(pg_cluster, w)


def _ids(conn: psycopg.Connection, sql: str) -> list[Any]:
    return [row[0] for row in conn.execute(sql).fetchall()]


def _portfolio_id(world: World, name: str) -> int:
    with world.connect("owner") as conn:
        return int(conn.execute("SELECT portfolio_id FROM portfolios WHERE name = %s", (name,)).fetchone()[0])


def _refused(conn: psycopg.Connection, sql: str, *params: Any) -> str:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql, params or None)
    return str(info.value)


# --------------------------------------------------------------------------------------------
# Raw SQL on alice's login
# --------------------------------------------------------------------------------------------
def _readable_by_all(table: str) -> bool:
    return any(p.command == "SELECT" and p.using == "true" for p in row_security.POLICIES[table])


@pytest.mark.postgres
def test_raw_sql_reads_nothing_of_another_persons_portfolios(world: World) -> None:
    bob_isa, alice_sipp = _portfolio_id(world, "Bob ISA"), _portfolio_id(world, "Alice SIPP")
    with world.connect("alice") as alice, world.connect("bob") as bob, world.connect("owner") as owner:
        me = alice.execute("SELECT tradeassist_user_id()").fetchone()[0]
        assert me is not None
        bobs = f"SELECT ledger_entry_id FROM ledger_entries WHERE portfolio_id = {bob_isa}"
        assert _ids(alice, bobs) == []
        assert len(_ids(bob, bobs)) == 1
        assert _ids(alice, "SELECT name FROM portfolios") == ["Alice SIPP"]
        assert sorted(_ids(owner, "SELECT name FROM portfolios")) == ["Alice SIPP", "Bob ISA", "Seed"]
        # Every table holding a portfolio's rows: what alice sees is hers (or about her).
        for table in row_security.POLICIES:
            if _readable_by_all(table):
                continue  # users, strategy versions and their scope
            assert owner.execute(f"SELECT count(*) FROM {table}").fetchone()[0] >= 1, table
            columns = SQLModel.metadata.tables[table].columns
            if table == "audit_events":
                about_me = f"entity_type = 'user' AND entity_id = '{me}'"
                others = f"actor_user_id IS DISTINCT FROM {me} AND NOT ({about_me})"
            elif table == "notifications":
                others = f"user_id <> {me} AND portfolio_id IS DISTINCT FROM {alice_sipp}"
            elif "portfolio_id" in columns:
                others = f"portfolio_id IS DISTINCT FROM {alice_sipp}"
            else:
                others = "true"  # alice has no task, run or recommendation
            assert alice.execute(f"SELECT count(*) FROM {table} WHERE {others}").fetchone()[0] == 0, table
        # Shared reference data stays readable by everyone.
        for table in row_security.SHARED_TABLES:
            count = alice.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            assert count == owner.execute(f"SELECT count(*) FROM {table}").fetchone()[0], table


@pytest.mark.postgres
def test_raw_sql_writes_nothing_into_another_persons_portfolio(world: World) -> None:
    bob_isa = _portfolio_id(world, "Bob ISA")
    with world.connect("alice") as alice, world.connect("owner") as owner:
        before = owner.execute("SELECT count(*), sum(cash_amount_base) FROM ledger_entries").fetchone()
        alice_id = alice.execute("SELECT tradeassist_user_id()").fetchone()[0]
        bob_id = owner.execute(
            "SELECT owner_user_id FROM portfolios WHERE portfolio_id = %s", (bob_isa,)
        ).fetchone()[0]
        assert alice_id is not None and alice_id != bob_id
        refused = [
            (
                "INSERT INTO ledger_batches (portfolio_id, label, batch_type, created_by_user_id, "
                "created_at) VALUES (%s, 'x', 'MANUAL', %s, now())",
                (bob_isa, alice_id),
            ),
            (
                "INSERT INTO portfolio_memberships (portfolio_id, user_id, created_at) "
                "VALUES (%s, %s, now())",
                (bob_isa, alice_id),
            ),
            (
                "INSERT INTO portfolios (owner_user_id, name, broker, base_currency, tax_treatment, "
                "created_at) VALUES (%s, 'Planted', 'X', 'GBP', 'GIA', now())",
                (bob_id,),
            ),
            ("INSERT INTO freeze_states (portfolio_id, is_frozen) VALUES (%s, true)", (bob_isa,)),
            (
                "INSERT INTO strategy_version_portfolios (strategy_version_id, portfolio_id) "
                "SELECT strategy_version_id, %s FROM strategy_versions LIMIT 1",
                (bob_isa,),
            ),
            (
                "INSERT INTO users (email, password_hash, is_enabled, is_bootstrap_admin, created_at) "
                "VALUES ('mallory@example.com', 'x', true, true, now())",
                (),
            ),
        ]
        for sql, params in refused:
            assert "row-level security" in _refused(alice, sql, *params), sql
        batch = owner.execute(
            "SELECT ledger_batch_id FROM ledger_batches WHERE portfolio_id = %s", (bob_isa,)
        ).fetchone()[0]
        message = _refused(
            alice,
            "INSERT INTO ledger_entries (ledger_batch_id, portfolio_id, entry_time, entry_type, fees_base, "
            "cash_amount_base) VALUES (%s, %s, now(), 'WITHDRAWAL', 0, -1000)",
            batch,
            bob_isa,
        )
        assert "row-level security" in message
        # UPDATE and DELETE find no row of bob's (row security), or are not granted at all.
        for sql in (
            f"UPDATE cash_snapshots SET cash_balance = 0 WHERE portfolio_id = {bob_isa}",
            f"DELETE FROM cash_snapshots WHERE portfolio_id = {bob_isa}",
            f"DELETE FROM holding_snapshots WHERE portfolio_id = {bob_isa}",
            f"UPDATE portfolios SET name = 'Mine now' WHERE portfolio_id = {bob_isa}",
            f"UPDATE users SET is_enabled = false WHERE user_id = {bob_id}",
            f"DELETE FROM portfolio_memberships WHERE portfolio_id = {bob_isa}",
        ):
            assert alice.execute(sql).rowcount == 0, sql
        for sql in (
            f"UPDATE ledger_entries SET cash_amount_base = 0 WHERE portfolio_id = {bob_isa}",
            f"DELETE FROM ledger_entries WHERE portfolio_id = {bob_isa}",
            f"UPDATE users SET db_role = 'ta_nobody' WHERE user_id = {alice_id}",
            f"UPDATE users SET is_bootstrap_admin = true WHERE user_id = {alice_id}",
            f"DELETE FROM portfolios WHERE portfolio_id = {bob_isa}",
        ):
            assert "permission denied" in _refused(alice, sql), sql
        assert (
            owner.execute("SELECT count(*), sum(cash_amount_base) FROM ledger_entries").fetchone() == before
        )
        assert (
            owner.execute("SELECT name FROM portfolios WHERE portfolio_id = %s", (bob_isa,)).fetchone()[0]
            == "Bob ISA"
        )
        assert owner.execute(
            "SELECT cash_balance FROM cash_snapshots WHERE portfolio_id = %s", (bob_isa,)
        ).fetchone()[0] == Decimal("1000")


@pytest.mark.postgres
def test_a_login_has_no_ddl(world: World) -> None:
    with world.connect("alice") as alice, world.connect("owner") as owner:
        for sql in (
            "DROP TRIGGER trg_ledger_entries_no_change ON ledger_entries",
            "ALTER TABLE ledger_entries DISABLE TRIGGER ALL",
            "ALTER TABLE ledger_entries DISABLE TRIGGER trg_ledger_entries_no_change",
            "ALTER TABLE ledger_entries DISABLE ROW LEVEL SECURITY",
            "DROP POLICY ta_ledger_entries_rows ON ledger_entries",
            "TRUNCATE ledger_entries",
            "TRUNCATE holding_snapshots",
            "DROP TABLE ledger_entries",
            "CREATE TABLE planted (i int)",
            "CREATE OR REPLACE FUNCTION tradeassist_user_id() RETURNS bigint "
            "LANGUAGE sql AS $$ SELECT 1::bigint $$",
            f"GRANT tradeassist_user TO {row_security.role_name_for(world.emails['bob'])}",
            "ALTER ROLE CURRENT_USER CREATEROLE",
        ):
            message = _refused(alice, sql)
            assert any(
                refusal in message
                for refusal in ("permission denied", "must be owner", "must have admin option")
            ), (sql, message)
        assert (
            owner.execute(
                "SELECT count(*) FROM pg_trigger "
                "WHERE tgname = 'trg_ledger_entries_no_change' AND tgenabled = 'O'"
            ).fetchone()[0]
            == 1
        )
        assert owner.execute(
            "SELECT relrowsecurity FROM pg_class WHERE relname = 'ledger_entries'"
        ).fetchone()[0]
        privileges = owner.execute(
            "SELECT has_table_privilege(%s, 'ledger_entries', 'TRUNCATE'), "
            "has_table_privilege(%s, 'ledger_entries', 'TRIGGER'), "
            "has_table_privilege(%s, 'ledger_entries', 'UPDATE')",
            (row_security.GROUP_ROLE,) * 3,
        ).fetchone()
        assert privileges == (False, False, False)


@pytest.mark.postgres
def test_a_login_cannot_pretend_to_be_someone_else(world: World) -> None:
    """The role-name argument of the definer functions answers only for the session's own."""
    bob_role = row_security.role_name_for(world.emails["bob"])
    with world.connect("alice") as alice:
        assert alice.execute("SELECT tradeassist_user_of(%s)", (bob_role,)).fetchone()[0] is None
        assert (
            alice.execute("SELECT count(*) FROM tradeassist_portfolios_of(%s)", (bob_role,)).fetchone()[0]
            == 0
        )
        assert alice.execute("SELECT tradeassist_is_admin()").fetchone()[0] is False


# --------------------------------------------------------------------------------------------
# The command line on alice's login
# --------------------------------------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.slow
def test_the_cli_on_a_login_acts_as_its_user(world: World) -> None:
    alice = world.urls["alice"]
    denied = world.cli("holdings", "--portfolio", "Bob ISA", "--json", url=alice)
    assert denied.returncode == 3, denied.stderr
    assert (
        denied.stderr.strip()
        == f"error: {world.emails['alice']} may not read holdings on portfolio 'Bob ISA'"
    )
    assert denied.stdout == ""
    mine = world.cli("portfolio", "list", "--json", url=alice)
    assert mine.returncode == 0, mine.stderr
    assert '"Alice SIPP"' in mine.stdout and "Bob ISA" not in mine.stdout
    for args, env in (
        (("--as", world.emails["bob"]), {}),
        (("--as", ADMIN_EMAIL), {}),
        ((), {"TRADEASSIST_USER": world.emails["bob"]}),
    ):
        refused = run_cli(["--db", alice, *args, "portfolio", "list"], {**world.env, **env})
        assert refused.returncode == 3, refused.stderr
        line = refused.stderr.strip()
        assert "\n" not in line and "refused" in line and "only the administrator" in line, line
    # Naming herself is fine.
    assert world.cli("--as", world.emails["alice"], "portfolio", "list", url=alice).returncode == 0
    # Adding a user is the administrator's.
    added = world.cli(
        "user", "add", f"eve-{world.tag}@example.com", "--password-stdin", url=alice, stdin="eve-pass-1234\n"
    )
    assert added.returncode == 3 and "only the administrator" in added.stderr, added.stderr
    # The denials were audited as alice.
    engine = create_db_engine(world.owner_url)
    with unit_of_work(engine, readonly=True) as session:
        alice_id = session.exec(select(User.user_id).where(User.email == world.emails["alice"])).one()
        denials = session.exec(
            select(AuditEvent).where(
                AuditEvent.action == "ACCESS_DENIED", AuditEvent.actor_user_id == alice_id
            )
        ).all()
    engine.dispose()
    operations = {event.details["operation"] for event in denials}
    assert {"read holdings", "act as another user", "add users"} <= operations


@pytest.mark.postgres
def test_the_owner_connection_still_does_everything(world: World) -> None:
    listed = world.cli("portfolio", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert all(name in listed.stdout for name in ("Alice SIPP", "Bob ISA", "Seed"))
    cash = world.cli("--as", world.emails["bob"], "cash", "--portfolio", "Bob ISA", "--json")
    assert cash.returncode == 0 and '"1000' in cash.stdout, cash.stderr
    assert world.cli("--as", world.emails["alice"], "holdings", "--portfolio", "Bob ISA").returncode == 3


@pytest.mark.postgres
@pytest.mark.slow
def test_the_admins_own_login_sees_everything_and_may_act_as_others(world: World) -> None:
    role = f"ta_admin_{world.tag}"
    given = world.cli(
        "user", "add-login", ADMIN_EMAIL, "--db-role", role, "--password-stdin", stdin="admin-login-pass-1\n"
    )
    assert given.returncode == 0, given.stderr
    world.roles.append(role)
    admin = world.url_as(role, "admin-login-pass-1")
    listed = world.cli("portfolio", "list", "--json", url=admin)
    assert all(name in listed.stdout for name in ("Alice SIPP", "Bob ISA", "Seed")), listed.stderr
    cash = world.cli("--as", world.emails["bob"], "cash", "--portfolio", "Bob ISA", "--json", url=admin)
    assert cash.returncode == 0 and '"1000' in cash.stdout, cash.stderr
    # A user added on a login that may not create roles: the one command an administrator runs.
    carol = f"carol-{world.tag}@example.com"
    added = world.cli("user", "add", carol, "--password-stdin", url=admin, stdin="carol-pass-123\n")
    assert added.returncode == 0, added.stderr
    command = added.stdout.strip().splitlines()[-1]
    carol_role = row_security.role_name_for(carol)
    assert command.startswith(f'CREATE ROLE "{carol_role}" LOGIN PASSWORD \'SCRAM-SHA-256$')
    assert command.endswith("IN ROLE tradeassist_user;") and "carol-pass-123" not in added.stdout
    with world.connect("owner") as owner:
        owner.execute(command)
    world.roles.append(carol_role)
    mine = world.cli("portfolio", "list", "--json", url=world.url_as(carol_role, "carol-pass-123"))
    assert mine.returncode == 0 and mine.stdout.strip() == "[]", mine.stderr
    # Disabled on the owner's connection: the login can no longer log in.
    assert world.cli("user", "disable", carol).returncode == 0
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        psycopg.connect(world.url_as(carol_role, "carol-pass-123").replace("+psycopg", "")).close()
    # A role that is nobody's login is refused, not taken for the bootstrap admin.
    stray = f"ta_stray_{world.tag}"
    with world.connect("owner") as owner:
        owner.execute(f"CREATE ROLE {stray} LOGIN PASSWORD 'stray-pass-123' IN ROLE tradeassist_user")
    world.roles.append(stray)
    nobody = world.cli("portfolio", "list", url=world.url_as(stray, "stray-pass-123"))
    assert nobody.returncode == 1 and "is no tradeassist user's login" in nobody.stderr, nobody.stderr


@pytest.mark.postgres
@pytest.mark.slow
def test_a_person_works_through_the_services_on_their_own_login(
    pg_cluster: pg.Cluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The demo's steps (registry, strategy, prices, ledger through executemany, tasks), then
    advice, review and a task run in a real kernel, all on a login that is not the admin: the
    policies let a person do everything with their own portfolio."""
    from tradeassist import demo
    from tradeassist.core.enums import RunStatus
    from tradeassist.runs import runner
    from tradeassist.services import ledger

    w = _make_world(pg_cluster, str(tmp_path_factory.mktemp("pg-roles-work")))
    try:
        engine = create_db_engine(w.urls["alice"])
        end = datetime(2026, 6, 30, tzinfo=UTC).date()
        with unit_of_work(engine) as session:
            alice = session.exec(select(User).where(User.email == w.emails["alice"])).one()
            demo.portfolios.add_portfolio(
                session, actor=alice, name=demo.DEMO_PORTFOLIO, broker="AJBell", tax_treatment="SIPP"
            )
            for listing in demo.data.LISTINGS:
                demo.registry.add_instrument(
                    session, actor=alice, isin=listing.isin, instrument_type="ETF", name=listing.name
                )
                demo.registry.add_listing(
                    session,
                    actor=alice,
                    isin=listing.isin,
                    ticker=listing.ticker,
                    exchange=listing.exchange,
                    currency=listing.currency,
                    quote_scale=listing.quote_scale,
                    is_primary=True,
                )
            for step in (demo._strategy, demo._prices, demo._ledger, demo._tasks):
                step(session, alice, end)
        with unit_of_work(engine, readonly=True) as session:
            alice = session.exec(select(User).where(User.email == w.emails["alice"])).one()
            assert ledger.holdings(session, actor=alice, portfolio=demo.DEMO_PORTFOLIO)
        with unit_of_work(engine, readonly=True) as session:
            alice = session.exec(select(User).where(User.email == w.emails["alice"])).one()
        outcome = runner.run_task(
            engine,
            actor=alice,
            name="demo weekly review",
            db_url=w.urls["alice"],
            at=datetime(2026, 6, 30, 21, 0, tzinfo=UTC),
            reports=tmp_path_factory.mktemp("pg-roles-reports"),
        )
        assert outcome.status is RunStatus.SUCCESS, outcome.error
        with w.connect("bob") as bob:
            assert bob.execute("SELECT count(*) FROM task_runs").fetchone()[0] == 0
            assert bob.execute("SELECT count(*) FROM ledger_entries").fetchone()[0] == 0
        engine.dispose()
    finally:
        _drop_world(pg_cluster, w)


@pytest.mark.postgres
def test_shared_data_another_persons_book_uses_needs_access_to_it_on_a_login_too(world: World) -> None:
    """The admin's seeded portfolio holds VWRP. On alice's own login, row security hides that
    portfolio's ledger from a plain query, so the check that a corporate action touches only
    portfolios she may use must look behind it (a definer function): she is refused."""
    from tradeassist.services import access

    with world.connect("owner") as conn:
        found = conn.execute("SELECT listing_id FROM instrument_listings WHERE ticker = 'VWRP'")
        listing = found.fetchone()[0]
    admins = _portfolio_id(world, "Seed")

    def using(session: Any, _alice: User) -> list[int]:
        return access.portfolios_using(session, [int(listing)])

    assert admins in _as(world.urls["alice"], world.emails["alice"], using)
    split = world.cli(
        "corporate-action", "add", "--isin", "IE00BK5BQT80", "--type", "SPLIT",
        "--effective", "2026-03-02", "--ratio", "2:1", url=world.urls["alice"],
    )  # fmt: skip
    assert split.returncode == 3, split.stdout + split.stderr
    assert split.stderr.count("\n") == 1 and "may not record a corporate action" in split.stderr


@pytest.mark.postgres
def test_raw_sql_on_a_login_cannot_plant_market_data_or_tasks_in_another_persons_book(world: World) -> None:
    """Prices, their re-checks, accepted levels, corporate actions and FX rates are readable by
    every login, but a login appends them only where no portfolio it may not use is touched (the
    admin's seeded portfolio holds VWRP); and a login creates tasks as itself only (a task runs as
    its creator)."""
    admins = _portfolio_id(world, "Seed")
    alices = _portfolio_id(world, "Alice SIPP")
    with world.connect("alice") as alice, world.connect("owner") as owner:
        vwrp, instrument, source = owner.execute(
            "SELECT listing_id, instrument_id, (SELECT min(source_id) FROM market_data_sources) "
            "FROM instrument_listings WHERE ticker = 'VWRP'"
        ).fetchone()
        admin_id = owner.execute("SELECT user_id FROM users WHERE is_bootstrap_admin").fetchone()[0]
        alice_id = alice.execute("SELECT tradeassist_user_id()").fetchone()[0]
        assert alice.execute("SELECT count(*) FROM price_points").fetchone()[0] >= 1  # readable
        vwrp_point = owner.execute(
            "SELECT min(price_point_id) FROM price_points WHERE listing_id = %s", (vwrp,)
        ).fetchone()[0]
        refused = [
            (
                "INSERT INTO price_points (listing_id, as_of, source_id, raw_price, raw_currency, "
                "raw_quote_scale, is_close, quality_flags, usable) "
                "VALUES (%s, '2026-02-02', %s, 1, 'GBP', 'GBP', true, '[]', true)",
                (vwrp, source),
            ),
            (
                "INSERT INTO corporate_actions (instrument_id, action_type, effective_date, ratio_num, "
                "ratio_den) VALUES (%s, 'SPLIT', '2026-02-02', 10, 1)",
                (instrument,),
            ),
            (
                "INSERT INTO price_level_acceptances (listing_id, effective_date, accepted_by_user_id, "
                "details, created_at) VALUES (%s, '2026-02-02', %s, '{}', now())",
                (vwrp, alice_id),
            ),
            (  # a later verdict on a price the admin's portfolio is valued by
                "INSERT INTO price_point_rechecks (price_point_id, quality_flags, usable, cause, "
                "rechecked_at) VALUES (%s, '[]', false, 'planted', now())",
                (vwrp_point,),
            ),
            (
                "INSERT INTO task_definitions (scope, portfolio_id, name, schedule_type, schedule_expr, "
                "timezone, task_kind, module_config, is_enabled, created_by_user_id, created_at) "
                "VALUES ('PORTFOLIO', %s, 'planted', 'CRON', '0 9 * * *', 'Europe/London', "
                "'WEEKLY_REVIEW', '{}', true, %s, now())",
                (alices, admin_id),
            ),
        ]
        for sql, params in refused:
            assert "row-level security" in _refused(alice, sql, *params), sql
        assert admins != alices
        # A listing no portfolio uses touches nobody: its prices are anyone's to add.
        owner.execute(
            "INSERT INTO instrument_listings (instrument_id, ticker, exchange, trading_currency, "
            "quote_scale, is_primary, created_at) VALUES (%s, 'VWRPX', 'XETR', 'EUR', 'EUR', false, now())",
            (instrument,),
        )
        unused = owner.execute(
            "SELECT listing_id FROM instrument_listings WHERE ticker = 'VWRPX'"
        ).fetchone()[0]
        alice.execute(
            "INSERT INTO price_points (listing_id, as_of, source_id, raw_price, raw_currency, "
            "raw_quote_scale, is_close, quality_flags, usable) "
            "VALUES (%s, '2026-02-03', %s, 1, 'EUR', 'EUR', true, '[]', true)",
            (unused, source),
        )
