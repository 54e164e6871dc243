"""``tradeassist reports prune``: retention of run artefacts on a real SQLite database with
real run rows (two runs with a kernel), artefacts left by runs of another database, and a file
that is no artefact. What the database names is kept and listed unless asked otherwise; paths
are absolute; ``--json`` prints every row. File ages are set (``os.utime``), never waited for."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from tests.support.cli import run_cli
from tests.test_runs_runner import AT, _task, owner, publish_cell, write_notebook  # noqa: F401
from tradeassist.core.enums import RunStatus
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import AuditEvent, TaskRun, User
from tradeassist.runs import runner

DAY = 86_400
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def age(path: Path, days: float) -> None:
    then = time.time() - days * DAY
    os.utime(path, (then, then))


@pytest.fixture
def reports(engine: Engine, db_url: str, owner: User, tmp_path: Path) -> dict[str, Path]:  # noqa: F811
    """Two recorded runs (the first made 100 days old), two runs of another database (400 and
    300 days old, named by nothing here) and a file that is none of ours."""
    root = tmp_path / "reports"
    notebooks = write_notebook(tmp_path / "nb", "ALERT_ONLY", publish_cell())
    _task(engine, owner, "prices")
    made = {}
    for offset, name in enumerate(("old", "new")):
        outcome = runner.run_task(
            engine,
            actor=owner,
            name="prices",
            db_url=db_url,
            at=AT + timedelta(minutes=offset),  # one manual run per moment
            reports=root,
            notebooks=notebooks,
        )
        assert outcome.status is RunStatus.SUCCESS, outcome.error
        made[f"{name}.ipynb"], made[f"{name}.html"] = Path(outcome.notebook_path), Path(outcome.html_path)
    for key in ("old.ipynb", "old.html"):
        age(made[key], 100)
    stray = {
        "stray.ipynb": root / "runs" / "2025" / "01" / "91-MONTHLY_ALLOC.ipynb",
        "stray.html": root / "runs" / "2025" / "01" / "91-MONTHLY_ALLOC.html",
        "other.html": root / "runs" / "2025" / "02" / "92-WEEKLY_REVIEW.html",
        "notes": root / "runs" / "2025" / "02" / "notes.txt",
    }
    for key, path in stray.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"<p>{key}</p>")
        age(path, 400 if key.startswith("stray") else 300)
    return {**made, **stray, "root": root}


@pytest.fixture
def cli(
    db_url: str, reports: dict[str, Path], tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env |= {
        "TRADEASSIST_HOME": str(tmp_path / "home"),
        "TRADEASSIST_DB_URL": db_url,
        "TRADEASSIST_REPORTS_DIR": str(reports["root"]),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = run_cli(args, env, cwd=tmp_path)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    return run


def rows_of(done: subprocess.CompletedProcess[str]) -> dict[str, dict]:  # type: ignore[type-arg]
    assert done.returncode == 0, done.stderr
    return {Path(row["path"]).name: row for row in json.loads(done.stdout)}


def test_a_dry_run_lists_every_artefact_and_deletes_nothing(cli, reports) -> None:  # type: ignore[no-untyped-def]
    rows = rows_of(cli("reports", "prune", "--older-than", "30", "--dry-run", "--json"))
    old, new = reports["old.html"], reports["new.html"]
    assert set(rows) == {
        reports[k].name
        for k in ("old.ipynb", "old.html", "new.ipynb", "new.html", "stray.ipynb", "stray.html", "other.html")
    }  # notes.txt is none of ours
    assert all(Path(row["path"]).is_absolute() for row in rows.values())
    assert {
        k: rows[reports[k].name]["action"] for k in ("stray.html", "other.html", "old.html", "new.html")
    } == {
        "stray.html": "would delete",
        "other.html": "would delete",
        "old.html": "kept",
        "new.html": "kept",
    }
    assert rows[old.name]["referenced_by"] == ["run 1 (report)"]
    assert (
        "named by the database" in rows[old.name]["reason"]
        and "--include-referenced" in rows[old.name]["reason"]
    )
    assert rows[new.name]["reason"] == "newer than 30 days"
    assert rows[reports["stray.html"].name]["reason"] == "older than 30 days"
    assert all(path.exists() for key, path in reports.items() if key != "root")


def test_old_artefacts_go_and_referenced_ones_are_kept_and_listed(cli, reports, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    done = cli("reports", "prune", "--older-than", "30")
    assert done.returncode == 0, done.stderr
    for key in ("stray.ipynb", "stray.html", "other.html"):
        assert not reports[key].exists() and f"deleted  {reports[key]}" in done.stdout
    assert not reports["stray.html"].parent.exists()  # the emptied month is removed
    assert reports["notes"].exists()  # no artefact: left alone
    for key in ("old.ipynb", "old.html", "new.ipynb", "new.html"):
        assert reports[key].exists()
    kept = done.stdout.split("kept, because the database names them")[1]
    assert f"  {reports['old.html']}  (run 1 (report))" in kept and str(reports["new.html"]) not in kept
    assert done.stdout.strip().splitlines()[-1].startswith("deleted 3 file(s) (")
    with unit_of_work(engine, readonly=True) as s:
        [event] = s.exec(select(AuditEvent).where(AuditEvent.action == "REPORTS_PRUNED")).all()
    assert event.details["deleted"] == 3 and event.details["referenced_deleted"] == []


def test_keep_with_include_referenced_deletes_what_the_database_names_and_says_so(
    cli, reports, engine: Engine
) -> None:  # type: ignore[no-untyped-def]
    rows = rows_of(cli("reports", "prune", "--keep", "1", "--include-referenced", "--json"))
    assert rows[reports["new.html"].name]["action"] == "kept"
    assert rows[reports["new.html"].name]["reason"] == "among the 1 newest runs"
    old = rows[reports["old.html"].name]
    assert old["action"] == "deleted" and old["referenced_by"] == ["run 1 (report)"]
    assert "deleted as asked (--include-referenced)" in old["reason"]
    assert (
        not reports["old.html"].exists()
        and not reports["old.ipynb"].exists()
        and reports["new.html"].exists()
    )
    with unit_of_work(engine, readonly=True) as s:
        assert s.get(TaskRun, 1).html_path == str(reports["old.html"])  # the run still names it
        [event] = s.exec(select(AuditEvent).where(AuditEvent.action == "REPORTS_PRUNED")).all()
    assert event.details["referenced_deleted"] == ["run 1 (notebook)", "run 1 (report)"]


def test_prune_needs_a_rule_and_the_administrator(cli, reports) -> None:  # type: ignore[no-untyped-def]
    neither = cli("reports", "prune")
    assert neither.returncode == 1 and "say what to keep: --keep N" in neither.stderr
    refused = cli("--as", "ola@example.com", "reports", "prune", "--keep", "0")
    assert refused.returncode != 0 and "only the administrator may" in refused.stderr
    assert all(path.exists() for key, path in reports.items() if key != "root")
