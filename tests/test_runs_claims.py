"""Exactly-once slot claims, in one process and across processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import nbformat
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import select

from tradeassist.core.enums import RunStatus
from tradeassist.core.errors import AlreadyExists
from tradeassist.core.timeutil import ensure_utc
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import TaskDefinition, TaskRun, TaskRunClaim, User
from tradeassist.runs import claims
from tradeassist.runs.notebook_api import RESULT_MIME
from tradeassist.services import tasks as task_service

REPO = Path(__file__).resolve().parents[1]


def write_probe_notebook(folder: Path, kind: str = "ALERT_ONLY") -> Path:
    """The cheapest task notebook: declares the parameters and publishes a fixed result."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            'run_id = 0\nportfolio = None\nas_of = ""\ndb_url = ""', metadata={"tags": ["parameters"]}
        ),
        nbformat.v4.new_code_cell(
            "from IPython.display import display\n"
            f"display({{{RESULT_MIME!r}: {{'version': 1, 'run_id': run_id, 'kind': {kind!r}, "
            "'summary': {'probe': True}, 'inputs': {'as_of': as_of}, 'issues': [], "
            "'recommendation': None}}, raw=True)"
        ),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}.ipynb"
    nbformat.write(nb, path)
    return path


def _global_task(engine: Engine, admin: User, name: str, cron: str = "0 7 * * *") -> TaskDefinition:
    with unit_of_work(engine) as s:
        return task_service.add_task(
            s,
            actor=s.get(User, admin.user_id),
            name=name,
            kind="ALERT_ONLY",
            schedule_type="CRON",
            schedule_expr=cron,
        )


def test_a_slot_is_claimed_once_and_manual_claims_are_apart(engine: Engine, admin: User) -> None:
    task = _global_task(engine, admin, "daily")
    now = ensure_utc(task.created_at) + timedelta(days=3)
    first = claims.claim_due(engine, task.task_id, now, worker="w1")
    assert first is not None and first.collapsed >= 1 and first.worker == "w1"
    assert claims.claim_due(engine, task.task_id, now, worker="w2") is None
    assert claims.claim_next_due(engine, now) is None
    manual = claims.claim_manual(engine, task.task_id, now)
    assert manual.manual and manual.run_id > first.run_id
    with pytest.raises(AlreadyExists, match="already has a run"):
        claims.claim_manual(engine, task.task_id, now)
    # The unique key decides even when a claim for the due slot exists already (here a manual
    # one at exactly the next slot's time): the claimer skips quietly.
    next_slot = task_service.schedule_of(task).next_after(first.slot_at)
    claims.claim_manual(engine, task.task_id, next_slot)
    assert claims.claim_due(engine, task.task_id, next_slot) is None
    with unit_of_work(engine, readonly=True) as s:
        rows = s.exec(select(TaskRunClaim).order_by(TaskRunClaim.run_id)).all()
        assert [(r.manual, ensure_utc(r.slot_at)) for r in rows] == [
            (False, first.slot_at),
            (True, now),
            (True, next_slot),
        ]


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_claimers_skip_a_task_another_one_holds(db_url: str, engine: Engine, admin: User) -> None:
    """Row locks are PostgreSQL's (SQLite serialises writers with BEGIN IMMEDIATE instead)."""
    first = _global_task(engine, admin, "first")
    second = _global_task(engine, admin, "second")
    now = ensure_utc(second.created_at) + timedelta(days=2)
    with engine.connect() as other:
        other.execute(
            text("SELECT task_id FROM task_definitions WHERE task_id = :id FOR UPDATE"), {"id": first.task_id}
        )
        started = time.monotonic()
        claim = claims.claim_next_due(engine, now, worker="b")
        assert time.monotonic() - started < 5  # skipped, not waited for
        assert claim is not None and claim.task_id == second.task_id
        other.rollback()
    claim = claims.claim_next_due(engine, now, worker="b")
    assert claim is not None and claim.task_id == first.task_id


@pytest.mark.slow
def test_two_run_due_processes_never_run_a_slot_twice(
    db_url: str, engine: Engine, admin: User, tmp_path: Path
) -> None:
    tasks = [_global_task(engine, admin, f"alerts {i}") for i in range(3)]
    at = max(ensure_utc(t.created_at) for t in tasks) + timedelta(days=2)
    notebooks = tmp_path / "notebooks"
    write_probe_notebook(notebooks)
    env = os.environ | {
        "TRADEASSIST_DB_URL": db_url,
        "TRADEASSIST_TASK_NOTEBOOKS_DIR": str(notebooks),
        "TRADEASSIST_REPORTS_DIR": str(tmp_path / "reports"),
    }
    command = [sys.executable, "-m", "tradeassist", "tasks", "run-due", "--at", at.isoformat(), "--json"]
    processes = [
        subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=240) for p in processes]
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    ran = [row["run_id"] for out, _ in outputs for row in json.loads(out)]
    assert len(ran) == len(set(ran)) == 3
    with unit_of_work(engine, readonly=True) as s:
        runs = s.exec(select(TaskRun)).all()
        assert sorted((r.task_id, ensure_utc(r.slot_at)) for r in runs) == sorted(
            (t.task_id, task_service.schedule_of(t).due(after=ensure_utc(t.created_at), now=at).slot_at)
            for t in tasks
        )
        assert {r.status for r in runs} == {RunStatus.SUCCESS}
        assert len(s.exec(select(TaskRunClaim)).all()) == 3
    # Run again: nothing is due any more.
    again = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and json.loads(again.stdout) == []
