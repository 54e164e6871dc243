"""Each person's own PostgreSQL login, and rows by portfolio (row-level security).

On PostgreSQL shared by several people, each connects as a login role of their own
(``users.db_role``), a member of the NOLOGIN group role ``tradeassist_user`` (``GROUP_ROLE``).
The tables belong to the role that runs ``tradeassist init`` (the migrations): the owner,
which row-level security does not restrict (``FORCE`` is not set). The group has:

* ``SELECT`` and ``INSERT`` on every table, ``UPDATE`` on the mutable columns of the
  stream-ish tables (``immutability.GUARDED_TABLES``, but never ``users.db_role``) and
  ``UPDATE``/``DELETE`` on the snapshot tables; ``USAGE`` on the sequences; ``SELECT`` on
  ``alembic_version``. No ``TRUNCATE``, no ``REFERENCES``, no ``TRIGGER``, and no ownership:
  a login cannot ``ALTER``, ``DROP`` or disable a trigger on any table, nor create one.
* Row-level security (``POLICIES``) on every table that holds a portfolio's rows, keyed on
  the portfolio being owned by or shared with the login's user, or that user being the
  bootstrap admin; on ``users`` (a login changes its own row only; only the admin adds
  users), ``strategy_versions`` (a login changes the versions it created or that govern a
  portfolio it may use), ``strategy_version_portfolios`` (a login attaches a strategy only to
  its own portfolios) and ``audit_events``. The registry, market data and strategy archives
  (``SHARED_TABLES``) are readable and appendable by every login.

Who a login is: ``tradeassist_user_id()`` (its enabled user's id, NULL for anyone else),
``tradeassist_is_admin()`` and ``tradeassist_portfolio_ids()`` (the portfolios it may use),
each a plain SQL function over a SECURITY DEFINER one that takes the role name and answers
only for a role the session's login is a member of (so nobody learns another person's
portfolio ids). The policies call them through scalar sub-selects, evaluated once per query.

Every table of the model is in ``POLICIES`` or in ``SHARED_TABLES`` (a test checks): a
migration that adds a table classifies it here and calls ``install`` afterwards, as it calls
``immutability.install``. A table in neither gets no grant at all, so logins cannot use it.

SQLite has no roles: the database file's permissions (``engine.py``) are its boundary.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from . import immutability

GROUP_ROLE = "tradeassist_user"
ROLE_PREFIX = "ta_"
MAX_ROLE_LENGTH = 63  # PostgreSQL's NAMEDATALEN - 1
POLICY_PREFIX = "ta_"
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

# Columns of the stream-ish tables that only the owner changes, whatever GUARDED_TABLES allows.
OWNER_ONLY_COLUMNS: dict[str, tuple[str, ...]] = {"users": ("db_role",)}

# Readable and appendable by every login: the registry, market data sources, strategy archives.
# Market data that changes what a portfolio holds or is worth (prices and their re-checks,
# accepted levels, FX rates, corporate actions) is in POLICIES: readable by all, appendable
# only where it touches no portfolio the login may not use (``_touches_only_mine``), as
# ``services.access.require_every``.
SHARED_TABLES: tuple[str, ...] = (
    "instruments",
    "sleeves",
    "policy_archives",
    "manifesto_archives",
    "sleeve_targets",
    "market_data_sources",
)

_ME = "(SELECT tradeassist_user_id())"
_ADMIN = "(SELECT tradeassist_is_admin())"
_MINE = "portfolio_id IN (SELECT tradeassist_portfolio_ids())"
_VISIBLE_TASK = "task_id IN (SELECT task_id FROM task_definitions)"
_VISIBLE_RECOMMENDATION = "recommendation_id IN (SELECT recommendation_id FROM recommendations)"


@dataclass(frozen=True)
class Policy:
    """One permissive policy: ``command`` is ALL, SELECT, INSERT, UPDATE or DELETE."""

    name: str
    command: str
    using: str | None
    check: str | None = None


def _rows(expression: str) -> tuple[Policy, ...]:
    """Every command, on the rows ``expression`` admits (read, written and left behind)."""
    return (Policy("rows", "ALL", expression, expression),)


_AUDITED_ENTITIES = {
    "ledger_batch": "SELECT ledger_batch_id::text FROM ledger_batches",
    "recommendation": "SELECT recommendation_id::text FROM recommendations",
    "task": "SELECT task_id::text FROM task_definitions",
    "task_run": "SELECT run_id::text FROM task_runs",
    "alert": "SELECT alert_id::text FROM alerts",
}
_SHARED_ENTITIES = (
    "instrument",
    "instrument_listing",
    "corporate_action",
    "market_data_source",
    "strategy_version",
)
_AUDIT_VISIBLE = " OR ".join(
    [
        f"actor_user_id = {_ME}",
        _ADMIN,
        f"(entity_type = 'user' AND entity_id = {_ME}::text)",
        "(entity_type = 'portfolio' AND entity_id IN (SELECT p::text FROM tradeassist_portfolio_ids() AS p))",
        *(
            f"(entity_type = '{kind}' AND entity_id IN ({query}))"
            for kind, query in _AUDITED_ENTITIES.items()
        ),
        "entity_type IN (" + ", ".join(f"'{kind}'" for kind in _SHARED_ENTITIES) + ")",
    ]
)


def _touches_only_mine(listings: str) -> str:
    """The row changes no portfolio the login may not use: every portfolio whose ledger, holdings
    or constituents name one of ``listings`` (a bigint[] expression) is the login's (a definer
    function sees past row security), or the login is the bootstrap admin's."""
    return (
        f"{_ADMIN} OR NOT EXISTS (SELECT 1 FROM tradeassist_portfolios_using({listings}) AS touched(p) "
        "WHERE touched.p NOT IN (SELECT tradeassist_portfolio_ids()))"
    )


def _market_data(listings: str) -> tuple[Policy, ...]:
    return (Policy("read", "SELECT", "true"), Policy("add", "INSERT", None, _touches_only_mine(listings)))


_LISTINGS_OF_ACTION = (
    "ARRAY(SELECT l.listing_id FROM instrument_listings AS l WHERE l.instrument_id IN "
    "(corporate_actions.instrument_id, corporate_actions.new_instrument_id))"
)
# As the FX import checks: the listings traded in the rate's quote currency.
_LISTINGS_OF_RATE = (
    "ARRAY(SELECT l.listing_id FROM instrument_listings AS l "
    "WHERE upper(l.trading_currency) = upper(fx_rates.quote_currency))"
)
_TASK_VISIBLE = f"{_MINE} OR {_ADMIN}"
_LISTING_OF_RECHECK_ONLY_MINE = _touches_only_mine(
    "ARRAY(SELECT p.listing_id FROM price_points AS p "
    "WHERE p.price_point_id = price_point_rechecks.price_point_id)"
)

# Row-level security, table by table (permissive policies: a row passes when one admits it).
POLICIES: dict[str, tuple[Policy, ...]] = {
    "users": (
        Policy("read", "SELECT", "true"),
        Policy("add", "INSERT", None, _ADMIN),
        Policy("change", "UPDATE", f"user_id = {_ME} OR {_ADMIN}", f"user_id = {_ME} OR {_ADMIN}"),
    ),
    "portfolios": (
        Policy("read", "SELECT", f"owner_user_id = {_ME} OR {_MINE}"),
        Policy("add", "INSERT", None, f"owner_user_id = {_ME} OR {_ADMIN}"),
        Policy("change", "UPDATE", _MINE, _MINE),
    ),
    "portfolio_memberships": (Policy("read", "SELECT", f"user_id = {_ME}"), *_rows(_MINE)),
    "ledger_batches": _rows(_MINE),
    "ledger_entries": _rows(_MINE),
    "holding_snapshots": _rows(_MINE),
    "cash_snapshots": _rows(_MINE),
    "portfolio_summaries": _rows(_MINE),
    "portfolio_constituents": _rows(_MINE),
    "freeze_states": _rows(_MINE),
    "recommendations": _rows(_MINE),
    "recommendation_lines": _rows(_VISIBLE_RECOMMENDATION),
    "llm_verdicts": _rows(f"recommendation_id IS NULL OR {_VISIBLE_RECOMMENDATION}"),
    # GLOBAL tasks (no portfolio) belong to the bootstrap admin.
    # A task runs as its creator: a login creates tasks as itself only.
    "task_definitions": (
        Policy("read", "SELECT", _TASK_VISIBLE),
        Policy("change", "UPDATE", _TASK_VISIBLE, _TASK_VISIBLE),
        Policy("add", "INSERT", None, f"({_MINE} AND created_by_user_id = {_ME}) OR {_ADMIN}"),
    ),
    "price_points": _market_data("ARRAY[price_points.listing_id]"),
    # Judged by the points' own listing, not by the row's listing_id (whatever the writer wrote).
    "price_supersessions": _market_data(
        "ARRAY(SELECT p.listing_id FROM price_points AS p WHERE p.price_point_id IN "
        "(price_supersessions.price_point_id, price_supersessions.superseded_by_point_id))"
    ),
    # The registry is shared; a listing's settings change only where no other login's
    # portfolio uses it.
    "instrument_listings": (
        Policy("read", "SELECT", "true"),
        Policy("add", "INSERT", None, "true"),
        Policy(
            "change",
            "UPDATE",
            _touches_only_mine("ARRAY[instrument_listings.listing_id]"),
            _touches_only_mine("ARRAY[instrument_listings.listing_id]"),
        ),
    ),
    "price_level_acceptances": _market_data("ARRAY[price_level_acceptances.listing_id]"),
    # A later verdict on a stored price (usable or not, its GBP value): written, changed and
    # removed only as the price itself could be added, judged by the point's listing.
    "price_point_rechecks": (
        Policy("read", "SELECT", "true"),
        Policy("change", "ALL", _LISTING_OF_RECHECK_ONLY_MINE, _LISTING_OF_RECHECK_ONLY_MINE),
    ),
    "corporate_actions": _market_data(_LISTINGS_OF_ACTION),
    "fx_rates": _market_data(_LISTINGS_OF_RATE),
    "task_run_claims": _rows(_VISIBLE_TASK),
    "task_runs": _rows(_VISIBLE_TASK),
    "run_input_snapshots": _rows("run_id IN (SELECT run_id FROM task_runs)"),
    # An alert about a listing no portfolio holds has no portfolio: everyone's concern.
    "alerts": _rows(f"portfolio_id IS NULL OR {_MINE}"),
    "notifications": _rows(f"user_id = {_ME} OR {_MINE} OR {_ADMIN}"),
    "strategy_versions": (
        Policy("read", "SELECT", "true"),
        Policy("add", "INSERT", None, f"created_by_user_id = {_ME} OR {_ADMIN}"),
        Policy(
            "change",
            "UPDATE",
            f"created_by_user_id = {_ME} OR {_ADMIN} OR strategy_version_id IN "
            f"(SELECT strategy_version_id FROM strategy_version_portfolios WHERE {_MINE})",
        ),
    ),
    # Readable by all (whether a version still governs any portfolio decides its retirement),
    # but a strategy is attached only to a portfolio the login may use.
    "strategy_version_portfolios": (Policy("read", "SELECT", "true"), Policy("add", "INSERT", None, _MINE)),
    # Rows the login wrote, about its own user, about what it can see, or about shared data.
    # A NULL actor is the system (a run's recording, a review): insertable, as in the services.
    "audit_events": (
        Policy("read", "SELECT", _AUDIT_VISIBLE),
        Policy("add", "INSERT", None, f"actor_user_id IS NULL OR actor_user_id = {_ME} OR {_ADMIN}"),
    ),
}

_FUNCTION_TABLES = (
    "users",
    "portfolios",
    "portfolio_memberships",
    "ledger_entries",
    "holding_snapshots",
    "portfolio_constituents",
)
FUNCTION_NAMES = (
    "tradeassist_user_of(text)",
    "tradeassist_admin_of(text)",
    "tradeassist_portfolios_of(text)",
    "tradeassist_portfolio_named(text)",
    "tradeassist_portfolios_using(bigint[])",
    "tradeassist_user_id()",
    "tradeassist_is_admin()",
    "tradeassist_portfolio_ids()",
)


def _functions(schema: str) -> list[str]:
    s = _quote(schema)
    definer = "LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp"
    return [
        # The enabled user whose login ``role_name`` is, asked by a session that may be it.
        f"""CREATE OR REPLACE FUNCTION {s}.tradeassist_user_of(role_name text) RETURNS bigint {definer} AS $$
            SELECT u.user_id FROM {s}.users AS u
            WHERE u.db_role = role_name AND u.is_enabled
              AND pg_catalog.pg_has_role(session_user, role_name, 'MEMBER')
        $$""",
        f"""CREATE OR REPLACE FUNCTION {s}.tradeassist_admin_of(role_name text) RETURNS boolean
            {definer} AS $$
            SELECT COALESCE((SELECT u.is_bootstrap_admin FROM {s}.users AS u
                             WHERE u.user_id = {s}.tradeassist_user_of(role_name)), false)
        $$""",
        f"""CREATE OR REPLACE FUNCTION {s}.tradeassist_portfolios_of(role_name text) RETURNS SETOF bigint
            {definer} AS $$
            SELECT p.portfolio_id FROM {s}.portfolios AS p, {s}.users AS u
            WHERE u.user_id = {s}.tradeassist_user_of(role_name)
              AND (u.is_bootstrap_admin OR p.owner_user_id = u.user_id
                   OR EXISTS (SELECT 1 FROM {s}.portfolio_memberships AS m
                              WHERE m.portfolio_id = p.portfolio_id AND m.user_id = u.user_id))
        $$""",
        # Whether a name the login cannot see is a portfolio (names are unique anyway): so that
        # a denial is an access error, audited, rather than "no such portfolio".
        f"""CREATE OR REPLACE FUNCTION {s}.tradeassist_portfolio_named(portfolio_name text) RETURNS bigint
            {definer} AS $$
            SELECT p.portfolio_id FROM {s}.portfolios AS p WHERE p.name = portfolio_name
        $$""",
        # Every portfolio whose ledger, holdings or constituents name one of these listings,
        # hidden or not: a change to shared data (a price, a corporate action) that reaches
        # another person's portfolio is refused by the services, which must see that it does.
        f"""CREATE OR REPLACE FUNCTION {s}.tradeassist_portfolios_using(listing_ids bigint[])
            RETURNS SETOF bigint {definer} AS $$
            SELECT portfolio_id FROM {s}.ledger_entries WHERE listing_id = ANY (listing_ids)
            UNION SELECT portfolio_id FROM {s}.holding_snapshots WHERE listing_id = ANY (listing_ids)
            UNION SELECT portfolio_id FROM {s}.portfolio_constituents WHERE listing_id = ANY (listing_ids)
        $$""",
        f"""CREATE OR REPLACE FUNCTION {s}.tradeassist_user_id() RETURNS bigint LANGUAGE sql STABLE AS $$
            SELECT {s}.tradeassist_user_of(current_user::text)
        $$""",
        f"""CREATE OR REPLACE FUNCTION {s}.tradeassist_is_admin() RETURNS boolean LANGUAGE sql STABLE AS $$
            SELECT {s}.tradeassist_admin_of(current_user::text)
        $$""",
        f"""CREATE OR REPLACE FUNCTION {s}.tradeassist_portfolio_ids() RETURNS SETOF bigint
            LANGUAGE sql STABLE AS $$
            SELECT {s}.tradeassist_portfolios_of(current_user::text)
        $$""",
    ]


_CREATE_GROUP = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{GROUP_ROLE}') THEN
        BEGIN
            CREATE ROLE {GROUP_ROLE} NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;  -- created meanwhile
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                    MESSAGE = 'the role {GROUP_ROLE} does not exist and ' || current_user
                        || ' may not create it: an administrator runs '
                        || '"CREATE ROLE {GROUP_ROLE} NOLOGIN;", then tradeassist init again';
        END;
    END IF;
END
$$
"""

# Nobody but the owner creates objects in the schema (PostgreSQL 15 revokes this already).
_REVOKE_SCHEMA_CREATE = """
DO $$
BEGIN
    IF pg_catalog.pg_has_role(current_user,
            (SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = current_schema()), 'USAGE') THEN
        EXECUTE 'REVOKE CREATE ON SCHEMA ' || quote_ident(current_schema()) || ' FROM PUBLIC';
    END IF;
END
$$
"""


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def is_postgresql(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def classified_tables() -> set[str]:
    return set(POLICIES) | set(SHARED_TABLES)


def _snapshot_tables(tables: Iterable[str]) -> list[str]:
    fixed = set(immutability.STREAM_TABLES) | set(immutability.GUARDED_TABLES)
    return sorted(t for t in tables if t not in fixed)


def grant_statements(
    existing: Iterable[str], columns_of: Mapping[str, Iterable[str]] | None = None
) -> list[str]:
    """The group's privileges on the tables that exist (revoked first: ``install`` is idempotent).
    ``columns_of``: the columns each guarded table has now (an earlier migration's install
    grants only the mutable columns that exist by then)."""
    present = set(existing)
    tables = sorted(present & classified_tables())
    statements = []
    for table in sorted(present):
        statements.append(f"REVOKE ALL ON {_quote(table)} FROM {GROUP_ROLE}")
    if "alembic_version" in present:
        statements.append(f"GRANT SELECT ON alembic_version TO {GROUP_ROLE}")
    for table in tables:
        statements.append(f"GRANT SELECT, INSERT ON {_quote(table)} TO {GROUP_ROLE}")
        mutable = immutability.GUARDED_TABLES.get(table)
        if mutable is not None:
            columns = [c for c in mutable if c not in OWNER_ONLY_COLUMNS.get(table, ())]
            if columns_of is not None and table in columns_of:
                columns = [c for c in columns if c in set(columns_of[table])]
            if columns:
                statements.append(f"GRANT UPDATE ({', '.join(columns)}) ON {_quote(table)} TO {GROUP_ROLE}")
    for table in _snapshot_tables(tables):
        statements.append(f"GRANT UPDATE, DELETE ON {_quote(table)} TO {GROUP_ROLE}")
    return statements


def policy_statements(table: str) -> list[str]:
    statements = [f"ALTER TABLE {_quote(table)} ENABLE ROW LEVEL SECURITY"]
    for policy in POLICIES[table]:
        name = _quote(f"{POLICY_PREFIX}{table}_{policy.name}")
        sql = f"CREATE POLICY {name} ON {_quote(table)} AS PERMISSIVE FOR {policy.command} TO {GROUP_ROLE}"
        if policy.using is not None:
            sql += f" USING ({policy.using})"
        if policy.check is not None:
            sql += f" WITH CHECK ({policy.check})"
        statements.append(sql)
    return statements


def _drop_policies(connection: Connection, tables: Iterable[str]) -> None:
    rows = connection.execute(
        text(
            "SELECT tablename, policyname FROM pg_catalog.pg_policies "
            "WHERE schemaname = current_schema() AND policyname LIKE :prefix"
        ),
        {"prefix": POLICY_PREFIX.replace("_", r"\_") + "%"},
    ).all()
    wanted = set(tables)
    for table, policy in rows:
        if table in wanted:
            connection.exec_driver_sql(f"DROP POLICY {_quote(policy)} ON {_quote(table)}")


def install(connection: Connection) -> None:
    """Create (or bring up to date) the group role, the functions, the grants and the policies
    on ``connection`` (the owner's, in a migration). Nothing on SQLite. Idempotent."""
    if not is_postgresql(connection):
        return
    existing = set(inspect(connection).get_table_names())
    schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
    connection.exec_driver_sql(_CREATE_GROUP)
    connection.exec_driver_sql(_REVOKE_SCHEMA_CREATE)
    connection.exec_driver_sql(f"GRANT USAGE ON SCHEMA {_quote(schema)} TO {GROUP_ROLE}")
    if set(_FUNCTION_TABLES) <= existing:
        for statement in _functions(schema):
            connection.exec_driver_sql(statement)
        for function in FUNCTION_NAMES:
            connection.exec_driver_sql(f"REVOKE ALL ON FUNCTION {_quote(schema)}.{function} FROM PUBLIC")
            connection.exec_driver_sql(
                f"GRANT EXECUTE ON FUNCTION {_quote(schema)}.{function} TO {GROUP_ROLE}"
            )
    inspector = inspect(connection)
    columns_of = {
        t: [c["name"] for c in inspector.get_columns(t)] for t in immutability.GUARDED_TABLES if t in existing
    }
    for statement in grant_statements(existing, columns_of):
        connection.exec_driver_sql(statement)
    connection.exec_driver_sql(
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {_quote(schema)} TO {GROUP_ROLE}"
    )
    secured = sorted(existing & set(POLICIES))
    _drop_policies(connection, secured)
    for table in secured:
        for statement in policy_statements(table):
            connection.exec_driver_sql(statement)


def uninstall(connection: Connection) -> None:
    """Undo ``install`` (a downgrade): policies, row security, grants and functions go; the
    group role stays (roles belong to the whole server, other databases may use it)."""
    if not is_postgresql(connection):
        return
    existing = set(inspect(connection).get_table_names())
    schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
    _drop_policies(connection, existing)
    for table in sorted(existing & set(POLICIES)):
        connection.exec_driver_sql(f"ALTER TABLE {_quote(table)} DISABLE ROW LEVEL SECURITY")
    if role_exists(connection, GROUP_ROLE):
        for table in sorted(existing):
            connection.exec_driver_sql(f"REVOKE ALL ON {_quote(table)} FROM {GROUP_ROLE}")
        connection.exec_driver_sql(
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {_quote(schema)} FROM {GROUP_ROLE}"
        )
    for function in reversed(FUNCTION_NAMES):
        connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {_quote(schema)}.{function}")


# --------------------------------------------------------------------------------------------
# Logins: who the connection is, and creating one
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Login:
    """The connection's role: ``personal`` when it is a member of the group (not a superuser),
    the login of one person; otherwise the owner, a superuser or some other role."""

    role: str
    superuser: bool
    can_create_roles: bool
    member_of_group: bool

    @property
    def personal(self) -> bool:
        return self.member_of_group and not self.superuser


def current_login(connection: Connection) -> Login | None:
    """The connection's database role (None on SQLite)."""
    if not is_postgresql(connection):
        return None
    row = connection.execute(
        text(
            "SELECT r.rolname::text, r.rolsuper, r.rolcreaterole, COALESCE(("
            "  SELECT pg_catalog.pg_has_role(r.oid, g.oid, 'MEMBER') FROM pg_catalog.pg_roles AS g"
            "  WHERE g.rolname = :group), false) "
            "FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user"
        ),
        {"group": GROUP_ROLE},
    ).one()
    return Login(
        role=row[0], superuser=bool(row[1]), can_create_roles=bool(row[2]), member_of_group=bool(row[3])
    )


def row_security_active(connection: Connection, table: str) -> bool:
    """Whether row-level security restricts this connection on ``table`` (False on SQLite)."""
    if not is_postgresql(connection):
        return False
    return bool(connection.execute(text("SELECT row_security_active(:t)"), {"t": table}).scalar())


def hidden_portfolio_id(connection: Connection, name: str) -> int | None:
    """The id of the portfolio named ``name`` when row security hides it from this login."""
    if not row_security_active(connection, "portfolios"):
        return None
    found = connection.execute(text("SELECT tradeassist_portfolio_named(:n)"), {"n": name}).scalar()
    return int(found) if found is not None else None


def portfolios_using(connection: Connection, listing_ids: Iterable[int]) -> list[int] | None:
    """Every portfolio using any of these listings, those row security hides included; None
    when row security does not restrict this connection (an ordinary query sees them all)."""
    if not row_security_active(connection, "ledger_entries"):
        return None
    found = connection.execute(
        text("SELECT tradeassist_portfolios_using(CAST(:ids AS bigint[]))"), {"ids": sorted(set(listing_ids))}
    ).scalars()
    return sorted(int(p) for p in found)


def role_name_for(email: str) -> str:
    """The login role an email gets by default: ``ta_`` and the email's letters and digits."""
    body = re.sub(r"[^a-z0-9]+", "_", email.strip().lower()).strip("_")
    return (ROLE_PREFIX + body)[:MAX_ROLE_LENGTH]


def check_role_name(role: str) -> str | None:
    """Why ``role`` cannot be a login's name (None: it can)."""
    if not _ROLE_NAME.match(role) or len(role) > MAX_ROLE_LENGTH:
        return f"database role {role!r}: lower-case letters, digits and _ only, at most {MAX_ROLE_LENGTH}"
    if role == GROUP_ROLE or role.startswith("pg_"):
        return f"database role {role!r} is reserved"
    return None


def role_exists(connection: Connection, role: str) -> bool:
    found = connection.execute(text("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = :r"), {"r": role})
    return found.first() is not None


def _verifier(connection: Connection, role: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of ``password``, computed here by libpq: the password itself
    is never sent to the server, nor written in a statement a log could keep."""
    raw = connection.connection.driver_connection
    pgconn = getattr(raw, "pgconn", None)
    if pgconn is None:  # pragma: no cover - psycopg is the PostgreSQL driver
        raise RuntimeError("creating a login needs the psycopg driver")
    verifier = bytes(pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")).decode()
    assert "'" not in verifier  # base64 and separators only
    return verifier


def create_login_sql(connection: Connection, role: str, password: str) -> str:
    """The one statement that creates ``role`` as a login in the group, with ``password``."""
    verifier = _verifier(connection, role, password)
    return f"CREATE ROLE {_quote(role)} LOGIN PASSWORD '{verifier}' IN ROLE {GROUP_ROLE}"


def create_login(connection: Connection, role: str, password: str) -> None:
    """Create the login (in the caller's transaction: it is undone with it)."""
    connection.exec_driver_sql(create_login_sql(connection, role, password))


def set_login_enabled(connection: Connection, role: str, enabled: bool) -> None:
    connection.exec_driver_sql(f"ALTER ROLE {_quote(role)} {'LOGIN' if enabled else 'NOLOGIN'}")
