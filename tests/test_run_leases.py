"""Runs never hang (issue #16, items 7 and 10).

A ``tradeassist tasks run-due`` killed mid-run leaves its run RUNNING; once its lease has lapsed
the next ``run-due`` records it FAILED with an alert, a notification and an audit event, and
retries its slot once; a retry that dies too is not retried again. Leases are renewed while a
run executes, a worker still alive on this machine keeps its run, a worker that comes back late
writes nothing over the FAILED record. Four ``run-due`` processes on one SQLite file never fail
with "database is locked", and a lock held past the retry's bound is one line and exit 2.

Real processes (SIGKILL), real kernels, real SQLite files and the real PostgreSQL of the test
session; no timing assertions on speed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import col, select

from tests.support.migrations import database_at, downgrade
from tradeassist.core.enums import RunStatus, Severity
from tradeassist.core.timeutil import ensure_utc, utcnow
from tradeassist.db import migrate
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.db.models import (
    Alert,
    AuditEvent,
    Notification,
    RunInputSnapshot,
    TaskDefinition,
    TaskRun,
    TaskRunClaim,
    User,
)
from tradeassist.runs import claims, leases, reaping, runner
from tradeassist.runs.locked import DatabaseBusy, retry_locked
from tradeassist.runs.notebook_api import RESULT_MIME
from tradeassist.runs.recording import record
from tradeassist.services import run_history
from tradeassist.services import tasks as task_service

REPO = Path(__file__).resolve().parents[1]
RUN_DUE = [sys.executable, "-m", "tradeassist", "tasks", "run-due", "--json"]
HOST = socket.gethostname()


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def write_notebook(folder: Path, *, started: Path, hold: Path) -> Path:
    """An ALERT_ONLY notebook that notes it has started (``started/started-<run_id>``), sleeps
    for as long as the ``hold`` file exists, then publishes a result."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            'run_id = 0\nportfolio = None\nas_of = ""\ndb_url = ""', metadata={"tags": ["parameters"]}
        ),
        nbformat.v4.new_code_cell(
            "import pathlib, time\n"
            f"pathlib.Path({str(started)!r}, f'started-{{run_id}}').touch()\n"
            f"while pathlib.Path({str(hold)!r}).exists():\n"
            "    time.sleep(0.2)\n"
        ),
        nbformat.v4.new_code_cell(
            "from IPython.display import display\n"
            f"display({{{RESULT_MIME!r}: {{'version': 1, 'run_id': run_id, 'kind': 'ALERT_ONLY', "
            "'summary': {'slept': True}, 'inputs': {'as_of': as_of}, 'issues': [], "
            "'recommendation': None}}, raw=True)"
        ),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "ALERT_ONLY.ipynb")
    return folder


def add_task(engine: Engine, admin: User, name: str, cron: str = "0 7 * * *") -> TaskDefinition:
    with unit_of_work(engine) as s:
        return task_service.add_task(
            s,
            actor=s.get(User, admin.user_id),
            name=name,
            kind="ALERT_ONLY",
            schedule_type="CRON",
            schedule_expr=cron,
        )


class Scene:
    """One task, its notebook, and ``run-due`` as cron would start it."""

    def __init__(self, db_url: str, engine: Engine, admin: User, tmp_path: Path, lease: str | None) -> None:
        self.engine = engine
        self.admin = admin
        self.task = add_task(engine, admin, "nightly alerts")
        self.at = ensure_utc(self.task.created_at) + timedelta(days=2)
        self.started = tmp_path / "started"
        self.started.mkdir()
        self.hold = tmp_path / "hold"
        self.hold.touch()
        notebooks = write_notebook(tmp_path / "notebooks", started=self.started, hold=self.hold)
        self.env = os.environ | {
            "TRADEASSIST_DB_URL": db_url,
            "TRADEASSIST_TASK_NOTEBOOKS_DIR": str(notebooks),
            "TRADEASSIST_REPORTS_DIR": str(tmp_path / "reports"),
        }
        self.env.pop("TRADEASSIST_RUN_LEASE_SECONDS", None)
        if lease is not None:
            self.env["TRADEASSIST_RUN_LEASE_SECONDS"] = lease

    def command(self) -> list[str]:
        return [*RUN_DUE, "--at", self.at.isoformat()]

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(), cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def run(self) -> tuple[int, list[dict[str, Any]], str]:
        done = subprocess.run(
            self.command(), cwd=REPO, env=self.env, capture_output=True, text=True, timeout=300
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode, json.loads(done.stdout), done.stderr

    def kill_mid_run(self, process: subprocess.Popen[str], run_id: int) -> None:
        """SIGKILL ``process`` once run ``run_id``'s notebook is executing."""
        marker = self.started / f"started-{run_id}"
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the notebook never started"
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        assert process.returncode == -signal.SIGKILL

    def statuses(self) -> dict[int, str]:
        with unit_of_work(self.engine, readonly=True) as s:
            rows = run_history.list_runs(s, actor=s.get(User, self.admin.user_id))
        return {row["run_id"]: row["status"] for row in rows}

    def claim(self, run_id: int) -> TaskRunClaim:
        with unit_of_work(self.engine, readonly=True) as s:
            row = s.get(TaskRunClaim, run_id)
            assert row is not None
            return row


def wait_until(moment: datetime) -> None:
    while utcnow() <= moment:
        time.sleep(0.1)


def alerts_of(engine: Engine, run_id: int) -> list[Alert]:
    with unit_of_work(engine, readonly=True) as s:
        return list(s.exec(select(Alert).where(Alert.run_id == run_id)).all())


# --------------------------------------------------------------------------------------------
# A run-due killed mid-run
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_killed_run_is_failed_alerted_and_retried_once_after_its_lease(
    db_url: str, engine: Engine, admin: User, tmp_path: Path
) -> None:
    scene = Scene(db_url, engine, admin, tmp_path, lease="2")
    first = scene.start()
    scene.kill_mid_run(first, run_id=1)
    assert scene.statuses() == {1: run_history.RUNNING}
    claim = scene.claim(1)
    assert claim.worker == f"{HOST}:{first.pid}" and claim.attempt == 1 and claim.lease_expires_at is not None
    wait_until(ensure_utc(claim.lease_expires_at))  # nobody renews it any more

    scene.hold.unlink()  # the retry runs to its end
    code, outcomes, _err = scene.run()

    assert code == 1  # a FAILED run: the timer's unit shows it
    assert [(o["run_id"], o["status"], o["attempt"], o["retry_of"]) for o in outcomes] == [
        (1, "FAILED", 1, None),
        (2, "SUCCESS", 2, 1),
    ]
    expected = (
        f"the worker ({HOST}, pid {first.pid}) stopped without finishing; lease expired at "
        f"{ensure_utc(claim.lease_expires_at).isoformat(timespec='seconds')}; "
        "retried as run 2 (attempt 2 of 2)"
    )
    assert outcomes[0]["error"] == expected
    with unit_of_work(engine, readonly=True) as s:
        dead, retry = s.get(TaskRun, 1), s.get(TaskRun, 2)
        assert dead is not None and retry is not None
        assert (dead.status, dead.error_message) == (RunStatus.FAILED, expected)
        assert ensure_utc(dead.started_at) == ensure_utc(claim.claimed_at)
        assert dead.output_summary["lease"]["retry_run_id"] == 2 and dead.output_summary["lease"]["expired"]
        assert s.get(RunInputSnapshot, 1) is not None  # one snapshot per run, dead ones included
        assert retry.status is RunStatus.SUCCESS and retry.output_summary["attempt"] == 2
        assert ensure_utc(retry.slot_at) == ensure_utc(dead.slot_at) == ensure_utc(claim.slot_at)
        again = s.get(TaskRunClaim, 2)
        assert again is not None and (again.attempt, again.retry_of, again.manual) == (2, 1, False)
        assert ensure_utc(again.slot_at) == ensure_utc(claim.slot_at)
        audits = s.exec(
            select(AuditEvent)
            .where(AuditEvent.action == "TASK_RUN_RECORDED")
            .order_by(col(AuditEvent.audit_event_id))
        ).all()
        assert [(a.entity_id, a.details["status"], a.details["attempt"]) for a in audits] == [
            ("1", "FAILED", 1),
            ("2", "SUCCESS", 2),
        ]
        assert audits[0].details["reason"] == reaping.LEASE_LAPSED
        assert audits[0].details["lost_worker"] == claim.worker
        notices = s.exec(select(Notification)).all()
        assert [n.payload["run_id"] for n in notices if n.payload["event"] == "RUN_FAILED"] == [1]
    [alert] = alerts_of(engine, 1)
    assert (alert.code, alert.severity) == ("RUN_FAILED", Severity.CRITICAL)
    assert expected in alert.message
    assert alert.context["reason"] == "LEASE_LAPSED" and alert.context["retry_run_id"] == 2
    assert scene.statuses() == {1: "FAILED", 2: "SUCCESS"}

    assert scene.run()[:2] == (0, [])  # nothing dead, nothing due: nothing runs twice


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.slow
def test_a_retry_that_dies_too_is_not_retried_again(
    db_url: str, engine: Engine, admin: User, tmp_path: Path
) -> None:
    """The default lease (300 s) is not waited for: the killed worker was on this machine, and
    its process is gone."""
    scene = Scene(db_url, engine, admin, tmp_path, lease=None)
    first = scene.start()
    scene.kill_mid_run(first, run_id=1)
    assert ensure_utc(scene.claim(1).lease_expires_at) > utcnow() + timedelta(seconds=200)

    second = scene.start()  # records run 1 FAILED, retries it as run 2, which is killed too
    scene.kill_mid_run(second, run_id=2)
    assert scene.statuses() == {1: "FAILED", 2: run_history.RUNNING}
    assert alerts_of(engine, 1)[0].message.endswith(
        f"the worker ({HOST}, pid {first.pid}) stopped without finishing: its process has ended (lease until "
        f"{ensure_utc(scene.claim(1).lease_expires_at).isoformat(timespec='seconds')}); "
        "retried as run 2 (attempt 2 of 2)"
    )

    code, outcomes, _err = scene.run()
    assert code == 1
    assert [(o["run_id"], o["status"], o["attempt"]) for o in outcomes] == [(2, "FAILED", 2)]
    assert outcomes[0]["error"].startswith(f"the worker ({HOST}, pid {second.pid}) stopped without finishing")
    assert outcomes[0]["error"].endswith("; not retried again: attempt 2 of 2, the slot's one retry")
    [alert] = alerts_of(engine, 2)
    assert "not retried again" in alert.message and alert.context["retry_run_id"] is None
    with unit_of_work(engine, readonly=True) as s:
        assert len(s.exec(select(TaskRunClaim)).all()) == 2  # no third attempt
    assert scene.statuses() == {1: "FAILED", 2: "FAILED"}
    assert scene.run()[:2] == (0, [])  # and none later either


# --------------------------------------------------------------------------------------------
# Leases in one process: another machine's, a live one, a gone one, the heartbeat, a late worker
# --------------------------------------------------------------------------------------------
def test_another_machines_claim_is_dead_only_once_its_lease_has_expired(engine: Engine, admin: User) -> None:
    task = add_task(engine, admin, "alerts")
    now = ensure_utc(task.created_at) + timedelta(days=2)
    elsewhere = leases.Worker("db-runner-2:4242", None)
    claim = claims.claim_due(engine, task.task_id, now, worker=elsewhere, lease=1.5)
    assert claim is not None
    seen: set[int] = set()
    assert reaping.reap_next(engine, now, secrets=set(), seen=seen) is None  # may still be working
    wait_until(lease_of(engine, claim.run_id))

    lost = reaping.reap_next(engine, now, secrets=set(), seen=set())

    assert lost is not None and lost.retry is not None
    assert lost.outcome.status is RunStatus.FAILED and lost.outcome.run_id == claim.run_id
    assert lost.outcome.error is not None
    assert lost.outcome.error.startswith(
        "the worker (db-runner-2, pid 4242) stopped without finishing; lease expired"
    )
    assert (lost.retry.attempt, lost.retry.retry_of, lost.retry.slot_at) == (2, claim.run_id, claim.slot_at)
    # The retry is this process's, alive: nobody takes it for dead; the dead run is recorded once.
    assert reaping.reap_next(engine, now, secrets=set(), seen=set()) is None
    with unit_of_work(engine, readonly=True) as s:
        assert [r.status for r in s.exec(select(TaskRun)).all()] == [RunStatus.FAILED]


def scene_claim(engine: Engine, run_id: int) -> TaskRunClaim:
    with unit_of_work(engine, readonly=True) as s:
        row = s.get(TaskRunClaim, run_id)
        assert row is not None
        return row


def lease_of(engine: Engine, run_id: int) -> datetime:
    expiry = scene_claim(engine, run_id).lease_expires_at
    assert expiry is not None
    return ensure_utc(expiry)


def test_a_live_worker_here_keeps_its_run_and_a_gone_one_is_dead_at_once(engine: Engine, admin: User) -> None:
    live_task, gone_task = add_task(engine, admin, "live"), add_task(engine, admin, "gone")
    now = ensure_utc(gone_task.created_at) + timedelta(days=2)
    live = claims.claim_due(engine, live_task.task_id, now, lease=1)  # this very process
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    identity = leases.process_identity(sleeper.pid)
    assert identity is not None and leases.process_state(identity) == leases.ALIVE
    sleeper.kill()
    sleeper.wait()
    assert leases.process_state(identity) == leases.GONE
    gone = claims.claim_due(
        engine, gone_task.task_id, now, worker=leases.Worker(f"{HOST}:{sleeper.pid}", identity), lease=600
    )
    assert live is not None and gone is not None
    wait_until(lease_of(engine, live.run_id))

    lost = reaping.reap_next(engine, now, secrets=set(), seen=set())

    assert lost is not None and lost.outcome.run_id == gone.run_id  # not the live one, however old its lease
    assert lost.outcome.error is not None and "its process has ended" in lost.outcome.error
    assert reaping.reap_next(engine, now, secrets=set(), seen=set()) is None
    with unit_of_work(engine, readonly=True) as s:
        assert s.get(TaskRun, live.run_id) is None


def test_the_heartbeat_renews_the_lease_while_the_run_lasts(engine: Engine, admin: User) -> None:
    task = add_task(engine, admin, "alerts")
    now = ensure_utc(task.created_at) + timedelta(days=2)
    claim = claims.claim_due(engine, task.task_id, now, lease=1)
    assert claim is not None
    first = lease_of(engine, claim.run_id)
    with leases.Heartbeat(engine, claim.run_id, 1):
        wait_until(first + timedelta(seconds=1))
        renewed = lease_of(engine, claim.run_id)
        assert renewed > first
        assert reaping.reap_next(engine, now, secrets=set(), seen=set(), worker=None) is None
    ended = lease_of(engine, claim.run_id)
    time.sleep(0.6)
    assert lease_of(engine, claim.run_id) == ended


def test_a_worker_back_after_its_run_was_failed_writes_nothing_over_it(
    db_url: str, engine: Engine, admin: User
) -> None:
    task = add_task(engine, admin, "alerts")
    now = ensure_utc(task.created_at) + timedelta(days=2)
    claim = claims.claim_due(engine, task.task_id, now, worker=leases.Worker("laptop:77", None), lease=1)
    assert claim is not None
    wait_until(lease_of(engine, claim.run_id))
    assert reaping.reap_next(engine, now, secrets=set(), seen=set()) is not None
    # The suspended worker wakes up with a finished notebook and records it.
    late = runner._load(engine, claim, now, set())
    late.status = RunStatus.SUCCESS
    late.result = {"summary": {"late": True}, "issues": [], "inputs": {}, "recommendation": None}

    outcome = record(engine, late)

    assert outcome.status is RunStatus.FAILED and outcome.error is not None
    assert outcome.error.startswith(
        f"this worker finished after its lease had lapsed: run {claim.run_id} had"
    )
    with unit_of_work(engine, readonly=True) as s:
        row = s.get(TaskRun, claim.run_id)
        assert row is not None and row.status is RunStatus.FAILED and "late" not in row.output_summary


# --------------------------------------------------------------------------------------------
# "database is locked"
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.slow
def test_four_run_due_processes_on_one_sqlite_file_never_meet_a_locked_database(
    db_url: str, engine: Engine, admin: User, tmp_path: Path
) -> None:
    """Six tasks whose missed weekday slots since their creation number thousands (counted
    while planning, outside any lock), four runners at once: each slot runs once, and no runner
    meets "database is locked" (a run may still fail for a reason of its own: a kernel that did
    not start on a loaded machine)."""
    tasks = [add_task(engine, admin, f"prices {i}", cron="30 18 * * 1-5") for i in range(6)]
    started = tmp_path / "started"
    started.mkdir()
    notebooks = write_notebook(tmp_path / "notebooks", started=started, hold=tmp_path / "never")
    env = os.environ | {
        "TRADEASSIST_DB_URL": db_url,
        "TRADEASSIST_TASK_NOTEBOOKS_DIR": str(notebooks),
        "TRADEASSIST_REPORTS_DIR": str(tmp_path / "reports"),
    }
    at = datetime(2040, 1, 1, tzinfo=UTC)  # about 3,400 weekday slots per task: thousands, counted
    command = [*RUN_DUE, "--at", at.isoformat()]
    processes = [
        subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=600) for p in processes]

    rows = []
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert "locked" not in out + err and "Traceback" not in err, err
        assert process.returncode in (0, 1), err  # 1: a run FAILED, reported in the JSON
        rows += json.loads(out)
        assert (process.returncode == 1) == any(row["status"] == "FAILED" for row in json.loads(out))
    assert sorted(row["run_id"] for row in rows) == list(range(1, 7))  # each slot once, by one of the four
    with unit_of_work(engine, readonly=True) as s:
        runs = s.exec(select(TaskRun)).all()
        assert sorted((r.task_id, ensure_utc(r.slot_at)) for r in runs) == sorted(
            (t.task_id, task_service.schedule_of(t).due(after=ensure_utc(t.created_at), now=at).slot_at)
            for t in tasks
        )
        assert len(s.exec(select(TaskRunClaim)).all()) == 6
        failed = [r.error_message for r in runs if r.status is not RunStatus.SUCCESS]
        assert not [e for e in failed if e and "lock" in e], failed


class WriteLock:
    """SQLite's write lock, held by a connection of its own (a long writer) until released."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.taken = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        connection.execute("BEGIN IMMEDIATE")
        self.taken.set()
        self.release.wait(120)
        connection.execute("COMMIT")
        connection.close()

    def __enter__(self) -> WriteLock:
        self.thread.start()
        assert self.taken.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join()


def sqlite_file(db_url: str) -> Path:
    database = make_url(db_url).database
    assert database is not None
    return Path(database)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_writer_holding_the_lock_past_the_busy_timeout_is_waited_out(
    db_url: str, engine: Engine, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = add_task(engine, admin, "alerts")
    now = ensure_utc(task.created_at) + timedelta(days=2)
    monkeypatch.setenv("TRADEASSIST_SQLITE_BUSY_TIMEOUT_MS", "1000")  # 1 s rather than 10: a short test
    waiting = create_db_engine(db_url)
    try:
        with WriteLock(sqlite_file(db_url)) as lock:
            threading.Timer(2.5, lock.release.set).start()  # 1.5 s past the busy timeout
            started = time.monotonic()
            claim = claims.claim_due(waiting, task.task_id, now)
            waited = time.monotonic() - started
    finally:
        waiting.dispose()
    assert claim is not None and claim.run_id == 1
    assert waited > 1  # the first attempt was refused: the claim is the retry's


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.slow
def test_a_lock_held_past_the_bound_is_one_line_and_exit_2_and_nothing_half_done(
    db_url: str, engine: Engine, admin: User, tmp_path: Path
) -> None:
    scene = Scene(db_url, engine, admin, tmp_path, lease=None)
    scene.hold.unlink()
    # The bounds are settings: 1 s of busy timeout and 3 s of retries keep this test short
    # (the defaults, 10 s and 30 s, are what the other tests and every user get).
    short = scene.env | {"TRADEASSIST_SQLITE_BUSY_TIMEOUT_MS": "1000", "TRADEASSIST_LOCK_RETRY_SECONDS": "3"}
    with WriteLock(sqlite_file(db_url)):
        started = time.monotonic()
        stuck = subprocess.run(
            scene.command(), cwd=REPO, env=short, capture_output=True, text=True, timeout=300
        )
        waited = time.monotonic() - started
    assert 3 <= waited < 30  # the settings bound the wait
    assert stuck.returncode == 2 and stuck.stdout == ""
    assert "Traceback" not in stuck.stderr and len(stuck.stderr.strip().splitlines()) == 1
    assert stuck.stderr.startswith("error: claiming task 1: the database stayed locked by other writers (")
    assert scene.statuses() == {}  # nothing was claimed
    code, outcomes, _err = scene.run()  # the lock gone, the slot runs once
    assert code == 0 and [(o["run_id"], o["status"]) for o in outcomes] == [(1, "SUCCESS")]


def test_retry_locked_leaves_every_other_error_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEASSIST_SQLITE_BUSY_TIMEOUT_MS", "300")  # the lock refused in 0.3 s, not 10
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise OperationalError("SELECT 1", None, sqlite3.OperationalError("no such table: nowhere"))

    with pytest.raises(OperationalError, match="no such table"):
        retry_locked(broken)
    assert calls == [1]
    with pytest.raises(DatabaseBusy, match="the database stayed locked"):
        retry_locked(lambda: _locked_once(tmp_path), budget=0)


def _locked_once(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
        with WriteLock(path), engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# Migration 0009 on a database that holds runs
# --------------------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def old_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database migrated to 0008 only, on each backend."""
    with database_at(request, tmp_path, "0008_row_security") as engine:
        yield engine


def _old_runs(engine: Engine) -> None:
    """A task with two claims, the first with its run (which refers to the claim)."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (email, password_hash, is_enabled, is_bootstrap_admin, created_at) "
                "VALUES ('a@example.com', 'x', TRUE, TRUE, '2024-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO task_definitions (scope, name, schedule_type, schedule_expr, timezone, "
                "task_kind, module_config, is_enabled, created_by_user_id, created_at) VALUES ('GLOBAL', "
                "'t', 'CRON', '0 7 * * *', 'Europe/London', 'ALERT_ONLY', '{}', TRUE, 1, "
                "'2024-01-01 00:00:00')"
            )
        )
        for day in (2, 3):
            conn.execute(
                text(
                    "INSERT INTO task_run_claims (task_id, slot_at, claimed_at, worker) "
                    f"VALUES (1, '2024-01-0{day} 07:00:00', '2024-01-0{day} 07:00:01', 'old:1')"
                )
            )
        conn.execute(text(
            "INSERT INTO task_runs (run_id, task_id, started_at, ended_at, status, output_summary) "
            "VALUES (1, 1, '2024-01-02 07:00:01', '2024-01-02 07:01:00', 'SUCCESS', '{}')"
        ))  # fmt: skip


def _claims(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT run_id, task_id, slot_at, claimed_at, worker, manual FROM task_run_claims ORDER BY run_id"
        ))]  # fmt: skip


def test_migration_0009_keeps_every_claim_and_lets_only_the_lease_change(old_engine: Engine) -> None:
    _old_runs(old_engine)
    before = _claims(old_engine)

    migrate.upgrade(old_engine, "0009_run_leases")

    assert migrate.current_revision(old_engine) == "0009_run_leases"
    assert _claims(old_engine) == before
    with old_engine.begin() as conn:
        assert conn.execute(
            text("SELECT attempt, retry_of, lease_expires_at FROM task_run_claims")
        ).all() == [
            (1, None, None),
            (1, None, None),
        ]
        conn.execute(text("UPDATE task_run_claims SET lease_expires_at = claimed_at WHERE run_id = 2"))
        conn.execute(text(
            "INSERT INTO task_run_claims (task_id, slot_at, claimed_at, worker, attempt, retry_of) "
            "VALUES (1, '2024-01-03 07:00:00', '2024-01-04 07:00:00', 'new:2', 2, 2)"
        ))  # fmt: skip
    for refused in (
        "UPDATE task_run_claims SET worker = 'someone' WHERE run_id = 2",
        "UPDATE task_run_claims SET attempt = 3 WHERE run_id = 3",
        "DELETE FROM task_run_claims WHERE run_id = 2",
        "INSERT INTO task_run_claims (task_id, slot_at, claimed_at, attempt) "
        "VALUES (1, '2024-01-03 07:00:00', '2024-01-04 07:00:00', 2)",
    ):
        with pytest.raises(DBAPIError), old_engine.begin() as conn:
            conn.execute(text(refused))
    if old_engine.dialect.name == "postgresql":
        with old_engine.connect() as conn:
            may = "SELECT has_column_privilege('tradeassist_user', 'task_run_claims', :column, 'UPDATE')"
            assert conn.execute(text(may), {"column": "lease_expires_at"}).scalar() is True
            assert conn.execute(text(may), {"column": "worker"}).scalar() is False

    with pytest.raises(RuntimeError, match="1 retried runs hold their slot twice"):
        downgrade(old_engine, "0008_row_security")


def test_migration_0009_goes_down_and_up_again_without_retries(old_engine: Engine) -> None:
    _old_runs(old_engine)
    before = _claims(old_engine)
    migrate.upgrade(old_engine, "0009_run_leases")
    downgrade(old_engine, "0008_row_security")
    assert _claims(old_engine) == before
    with pytest.raises(DBAPIError, match="append-only"), old_engine.begin() as conn:
        conn.execute(text("UPDATE task_run_claims SET worker = worker"))
    migrate.upgrade(old_engine, "0009_run_leases")
    assert _claims(old_engine) == before
