"""Append-only in the database, not only in the code.

Stream tables refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) by triggers.
"Stream-ish" tables refuse DELETE and allow UPDATE of their mutable columns only (users'
auth fields, strategy status, recommendation status, alert resolution, notification
delivery state, a run claim's lease). Snapshot tables are left writable.

SQLite: BEFORE UPDATE/DELETE triggers, and a BEFORE INSERT trigger on every protected table
that refuses a row whose primary key or any unique key is held already. ``INSERT OR REPLACE``
(``REPLACE``) deletes the row it collides with before inserting, and that delete fires the
delete trigger only when ``recursive_triggers`` is on: our connections set it, but the
``sqlite3`` shell and Python's ``sqlite3`` module do not. A BEFORE INSERT trigger runs before
any conflict is resolved, whatever the connection's settings, so a replacing insert never gets
as far as the delete. On guarded tables, an UPDATE that would move a unique key made of
mutable columns (a portfolio's name) onto another row's is refused too: ``UPDATE OR REPLACE``
would otherwise delete that other row. The price is one index probe per key per inserted
row (``bench/bench_ledger.py`` measures it on a million entries).
PostgreSQL: row triggers for UPDATE and DELETE (an ``ON CONFLICT DO UPDATE`` fires the
update trigger) and a statement trigger for TRUNCATE.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

APPEND_ONLY_MESSAGE = "is append-only"

# Tables whose rows never change once written.
STREAM_TABLES: tuple[str, ...] = (
    "instruments",
    "sleeves",
    "policy_archives",
    "manifesto_archives",
    "sleeve_targets",
    "strategy_version_portfolios",
    "market_data_sources",
    "price_points",
    "price_supersessions",
    "fx_rates",
    "corporate_actions",
    "price_level_acceptances",
    "ledger_batches",
    "ledger_entries",
    "task_runs",
    "run_input_snapshots",
    "recommendation_lines",
    "llm_verdicts",
    "audit_events",
)

# Tables that are never deleted from, and whose listed columns alone may change.
GUARDED_TABLES: dict[str, tuple[str, ...]] = {
    "users": ("password_hash", "is_enabled", "last_login_at", "db_role"),
    "portfolios": ("name", "broker"),
    # A listing's market-data settings (``listing set``); its identity never changes.
    "instrument_listings": ("price_provider", "provider_symbol", "is_primary", "source_priority"),
    "strategy_versions": ("status", "approved_at"),
    "task_definitions": ("name", "schedule_type", "schedule_expr", "timezone", "module_config", "is_enabled"),
    # A run's claim: only its lease moves, renewed by the worker while the run executes.
    "task_run_claims": ("lease_expires_at",),
    "recommendations": ("status", "status_reason"),
    "alerts": ("resolved_at",),
    "notifications": ("status", "sent_at", "attempts", "next_attempt_at", "last_error"),
}


def _message(table: str, what: str) -> str:
    return f"{table} {APPEND_ONLY_MESSAGE}: {what} refused"


Keys = Sequence[Sequence[str]]  # a table's primary key (empty if none), then its unique keys

# The names of every trigger ``sqlite_ddl`` creates (``install`` drops them all first).
SQLITE_TRIGGERS = ("no_update", "no_delete", "fixed_columns", "existing_key", "key_taken")


def _existing_key(table: str, keys: Keys) -> list[str]:
    """The BEFORE INSERT trigger refusing a row whose primary or unique key is held already
    (none for a table without keys)."""
    keys = [key for key in keys if key]
    if not keys:
        return []
    held = " OR ".join(
        f"EXISTS (SELECT 1 FROM {table} WHERE " + " AND ".join(f"{c} = NEW.{c}" for c in key) + ")"
        for key in keys
    )
    return [
        f"CREATE TRIGGER IF NOT EXISTS trg_{table}_existing_key BEFORE INSERT ON {table} WHEN {held} "
        f"BEGIN SELECT RAISE(ABORT, '{_message(table, 'INSERT of a key held already')}'); END"
    ]


def _key_taken(table: str, keys: Keys, mutable: Iterable[str]) -> list[str]:
    """The BEFORE UPDATE trigger refusing to move a unique key that has a mutable column onto
    another row's (``UPDATE OR REPLACE`` would delete that row)."""
    primary, *unique = keys or [()]  # the primary key comes first
    movable = [key for key in unique if set(key) & set(mutable)]
    if not primary or not movable:
        return []
    other = " AND ".join(f"{c} = OLD.{c}" for c in primary)
    taken = " OR ".join(
        f"EXISTS (SELECT 1 FROM {table} WHERE "
        + " AND ".join(f"{c} = NEW.{c}" for c in key)
        + f" AND NOT ({other}))"
        for key in movable
    )
    columns = ", ".join(sorted({c for key in movable for c in key}))
    return [
        f"CREATE TRIGGER IF NOT EXISTS trg_{table}_key_taken BEFORE UPDATE OF {columns} ON {table} "
        f"WHEN {taken} "
        f"BEGIN SELECT RAISE(ABORT, '{_message(table, 'UPDATE to a key another row holds')}'); END"
    ]


def sqlite_ddl(
    columns_of: Mapping[str, Iterable[str]],
    keys_of: Mapping[str, Keys],
    tables: Iterable[str] | None = None,
) -> list[str]:
    """The triggers for ``tables`` (default: every protected table). ``columns_of``: the
    columns of each guarded table; ``keys_of``: each protected table's primary key first, then
    its unique keys (a table missing from it gets no insert guard)."""
    wanted = set(tables) if tables is not None else None
    statements: list[str] = []
    for table in STREAM_TABLES:
        if wanted is not None and table not in wanted:
            continue
        statements += [
            f"CREATE TRIGGER IF NOT EXISTS trg_{table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{_message(table, 'UPDATE')}'); END",
            f"CREATE TRIGGER IF NOT EXISTS trg_{table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{_message(table, 'DELETE')}'); END",
            *_existing_key(table, keys_of.get(table, ())),
        ]
    for table, mutable in GUARDED_TABLES.items():
        if wanted is not None and table not in wanted:
            continue
        fixed = [c for c in columns_of[table] if c not in mutable]
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in fixed)
        statements += [
            f"CREATE TRIGGER IF NOT EXISTS trg_{table}_fixed_columns BEFORE UPDATE ON {table} "
            f"WHEN {changed} "
            f"BEGIN SELECT RAISE(ABORT, '{_message(table, 'changing a fixed column')}'); END",
            f"CREATE TRIGGER IF NOT EXISTS trg_{table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{_message(table, 'DELETE')}'); END",
            *_existing_key(table, keys_of.get(table, ())),
            *_key_taken(table, keys_of.get(table, ()), mutable),
        ]
    return statements


def sqlite_keys(connection: Connection, table: str) -> list[tuple[str, ...]]:
    """The table's primary key (empty if it has none), then each unique key (constraint or
    index), as the database has them. Partial and expression indexes are left out: equality on
    the columns would not say whether the index holds the row."""
    info = connection.exec_driver_sql(f"PRAGMA table_info({table})").all()
    primary = tuple(row[1] for row in sorted((r for r in info if r[5]), key=lambda r: r[5]))
    keys = [primary]
    for _seq, name, unique, _origin, partial in connection.exec_driver_sql(f"PRAGMA index_list({table})"):
        if not unique or partial:
            continue
        columns = tuple(r[2] for r in connection.exec_driver_sql(f"PRAGMA index_info('{name}')"))
        if columns and None not in columns and columns not in keys:
            keys.append(columns)
    return keys


PG_FUNCTIONS = [
    """
    CREATE OR REPLACE FUNCTION tradeassist_refuse_change() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION USING ERRCODE = 'restrict_violation',
            MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused';
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE FUNCTION tradeassist_guard_columns() RETURNS trigger AS $$
    BEGIN
        IF (to_jsonb(NEW) - TG_ARGV::text[]) IS DISTINCT FROM (to_jsonb(OLD) - TG_ARGV::text[]) THEN
            RAISE EXCEPTION USING ERRCODE = 'restrict_violation',
                MESSAGE = TG_TABLE_NAME || ' is append-only: changing a fixed column refused';
        END IF;
        RETURN NEW;
    END;
    $$ LANGUAGE plpgsql
    """,
]


def postgresql_ddl(tables: Iterable[str] | None = None) -> list[str]:
    """The trigger functions and the triggers for ``tables`` (default: every protected table)."""
    wanted = set(tables) if tables is not None else None
    statements = list(PG_FUNCTIONS)
    for table in STREAM_TABLES:
        if wanted is not None and table not in wanted:
            continue
        statements += [
            f"CREATE OR REPLACE TRIGGER trg_{table}_no_change BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION tradeassist_refuse_change()",
            f"CREATE OR REPLACE TRIGGER trg_{table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION tradeassist_refuse_change()",
        ]
    for table, mutable in GUARDED_TABLES.items():
        if wanted is not None and table not in wanted:
            continue
        cols = ", ".join(f"'{c}'" for c in mutable)
        statements += [
            f"CREATE OR REPLACE TRIGGER trg_{table}_fixed_columns BEFORE UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION tradeassist_guard_columns({cols})",
            f"CREATE OR REPLACE TRIGGER trg_{table}_no_delete BEFORE DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION tradeassist_refuse_change()",
            f"CREATE OR REPLACE TRIGGER trg_{table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION tradeassist_refuse_change()",
        ]
    return statements


def install(connection: Connection) -> None:
    """Create the triggers on ``connection`` (migrations call this after changing tables).

    Only for the protected tables that exist: an earlier revision (the baseline) installs the
    triggers before a later one creates its tables, and that one installs them again.
    """
    inspector = inspect(connection)
    existing = set(inspector.get_table_names())
    if connection.dialect.name == "sqlite":
        guarded = [t for t in GUARDED_TABLES if t in existing]
        columns_of = {t: [c["name"] for c in inspector.get_columns(t)] for t in guarded}
        protected = [t for t in (*STREAM_TABLES, *GUARDED_TABLES) if t in existing]
        keys_of = {t: sqlite_keys(connection, t) for t in protected}
        for table in (*STREAM_TABLES, *GUARDED_TABLES):
            for name in SQLITE_TRIGGERS:
                connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS trg_{table}_{name}")
        statements = sqlite_ddl(columns_of, keys_of, existing)
    else:
        statements = postgresql_ddl(existing)
    for statement in statements:
        connection.exec_driver_sql(statement)
