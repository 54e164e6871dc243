"""Migration 0011 on a database that holds runs (issue #19): every claim and run is kept (claims
are member 0, runs belong to no household), the claims' unique key now holds a household's
further runs and still refuses a second claim of a slot, and the way down is refused once a
household was recorded (runs are never deleted), on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from tests.support.migrations import database_at, downgrade
from tradeassist.db import migrate

SLOT = "2024-06-01 07:00:00"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def old_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database migrated to 0010 with a task, one claim and its run, on each backend."""
    with database_at(request, tmp_path, "0010_price_revisions") as engine:
        _a_run(engine)
        yield engine


def _a_run(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO users (email, password_hash, is_enabled, is_bootstrap_admin, created_at) "
            "VALUES ('a@example.com', 'x', TRUE, TRUE, '2024-01-01 00:00:00')"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO task_definitions (scope, name, schedule_type, schedule_expr, timezone, task_kind, "
            "module_config, is_enabled, created_by_user_id, created_at) VALUES ('GLOBAL', 'prices', "
            "'CRON', '0 7 * * *', 'Europe/London', 'PRICE_REFRESH', '{}', TRUE, 1, '2024-01-01 00:00:00')"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO task_run_claims (task_id, slot_at, claimed_at, worker, manual, attempt) "
            f"VALUES (1, '{SLOT}', '{SLOT}', 'host:1', FALSE, 1)"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO task_runs (run_id, task_id, started_at, ended_at, status, input_hash, "
            f"output_summary) VALUES (1, 1, '{SLOT}', '{SLOT}', 'SUCCESS', 'abc', '{{}}')"
        ))  # fmt: skip


def _claim(engine: Engine, member: int) -> None:
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO task_run_claims (task_id, slot_at, claimed_at, worker, manual, attempt, member) "
            f"VALUES (1, '{SLOT}', '{SLOT}', 'host:1', FALSE, 1, {member})"
        ))  # fmt: skip


def _run(conn, run_id: int, *, household_run_id: int) -> None:  # type: ignore[no-untyped-def]
    conn.execute(text(
        "INSERT INTO task_runs (run_id, task_id, started_at, ended_at, status, input_hash, output_summary, "
        f"household_run_id) VALUES ({run_id}, 1, '{SLOT}', '{SLOT}', 'SUCCESS', 'abc', '{{}}', "
        f"{household_run_id})"
    ))  # fmt: skip


def test_0011_keeps_every_run_and_links_households(old_engine: Engine) -> None:
    migrate.upgrade(old_engine)
    assert migrate.current_revision(old_engine) == migrate.head_revision()
    with old_engine.connect() as conn:
        assert conn.execute(text("SELECT run_id, member FROM task_run_claims")).all() == [(1, 0)]
        assert conn.execute(text("SELECT run_id, household_run_id FROM task_runs")).all() == [(1, None)]
    with pytest.raises(DBAPIError):  # the same slot claimed twice is still refused
        _claim(old_engine, 0)
    _claim(old_engine, 1)  # a household's second run: a claim of the same slot, member 1
    with old_engine.begin() as conn:
        second = conn.execute(text("SELECT run_id FROM task_run_claims WHERE member = 1")).scalar_one()
        _run(conn, second, household_run_id=1)
    # Append-only: a run's household is not changed afterwards.
    with pytest.raises(DBAPIError), old_engine.begin() as conn:
        conn.execute(text(f"UPDATE task_runs SET household_run_id = {second} WHERE run_id = {second}"))
    _claim(old_engine, 2)
    with pytest.raises(DBAPIError), old_engine.begin() as conn:  # a household names a run that exists
        third = conn.execute(text("SELECT run_id FROM task_run_claims WHERE member = 2")).scalar_one()
        _run(conn, third, household_run_id=99)
    with pytest.raises(RuntimeError, match="1 runs belong to households"):
        downgrade(old_engine, "0010_price_revisions")


def test_0011_goes_down_while_no_household_was_recorded(old_engine: Engine) -> None:
    migrate.upgrade(old_engine)
    downgrade(old_engine, "0010_price_revisions")
    assert migrate.current_revision(old_engine) == "0010_price_revisions"
    with old_engine.connect() as conn:
        assert conn.execute(text("SELECT run_id, task_id, attempt FROM task_run_claims")).all() == [(1, 1, 1)]
        assert conn.execute(text("SELECT run_id, input_hash FROM task_runs")).all() == [(1, "abc")]
    with pytest.raises(DBAPIError), old_engine.begin() as conn:  # the old key (task, slot, attempt) is back
        conn.execute(text(
            "INSERT INTO task_run_claims (task_id, slot_at, claimed_at, worker, manual, attempt) "
            f"VALUES (1, '{SLOT}', '{SLOT}', 'host:1', FALSE, 1)"
        ))  # fmt: skip
    migrate.upgrade(old_engine)
    assert migrate.current_revision(old_engine) == migrate.head_revision()
