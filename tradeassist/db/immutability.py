"""Append-only in the database, not only in the code.

Stream tables refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) by triggers.
"Stream-ish" tables refuse DELETE and allow UPDATE of their mutable columns only (users'
auth fields, strategy status, recommendation status, alert resolution, notification
delivery state). Snapshot tables are left writable.

SQLite: BEFORE UPDATE/DELETE triggers; every connection sets ``recursive_triggers=ON`` so
that ``INSERT OR REPLACE`` (a delete and an insert) fires the delete trigger too.
PostgreSQL: row triggers for UPDATE and DELETE (an ``ON CONFLICT DO UPDATE`` fires the
update trigger) and a statement trigger for TRUNCATE.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

APPEND_ONLY_MESSAGE = "is append-only"

# Tables whose rows never change once written.
STREAM_TABLES: tuple[str, ...] = (
    "instruments",
    "instrument_listings",
    "sleeves",
    "policy_archives",
    "manifesto_archives",
    "sleeve_targets",
    "strategy_version_portfolios",
    "market_data_sources",
    "price_points",
    "fx_rates",
    "corporate_actions",
    "price_level_acceptances",
    "ledger_batches",
    "ledger_entries",
    "task_run_claims",
    "task_runs",
    "run_input_snapshots",
    "recommendation_lines",
    "llm_verdicts",
    "audit_events",
)

# Tables that are never deleted from, and whose listed columns alone may change.
GUARDED_TABLES: dict[str, tuple[str, ...]] = {
    "users": ("password_hash", "is_enabled", "last_login_at"),
    "portfolios": ("name", "broker"),
    "strategy_versions": ("status", "approved_at"),
    "task_definitions": ("name", "schedule_type", "schedule_expr", "timezone", "module_config", "is_enabled"),
    "recommendations": ("status", "status_reason"),
    "alerts": ("resolved_at",),
    "notifications": ("status", "sent_at", "attempts", "next_attempt_at", "last_error"),
}


def _message(table: str, what: str) -> str:
    return f"{table} {APPEND_ONLY_MESSAGE}: {what} refused"


def sqlite_ddl(columns_of: Mapping[str, Iterable[str]], tables: Iterable[str] | None = None) -> list[str]:
    """The triggers for ``tables`` (default: every protected table)."""
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
        ]
    return statements


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
        for table in (*STREAM_TABLES, *GUARDED_TABLES):
            for name in ("no_update", "no_delete", "fixed_columns"):
                connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS trg_{table}_{name}")
        statements = sqlite_ddl(columns_of, existing)
    else:
        statements = postgresql_ddl(existing)
    for statement in statements:
        connection.exec_driver_sql(statement)
