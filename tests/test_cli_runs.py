"""``tasks`` and ``runs`` as a user (or cron) meets them (each command run as ``python -m
tradeassist`` would be, see tests/support/cli.py): JSON, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tradeassist.core.money import format_gbp
from tradeassist.db.engine import create_db_engine

SMTP_CANARY = "smtp-canary-Secret-5522"
API_CANARY = "td-canary-Key-6633"

TASK_KEYS = {
    "task_id",
    "name",
    "kind",
    "portfolio",
    "schedule_type",
    "schedule_expr",
    "is_enabled",
    "next_due",
}
RUN_KEYS = {
    "run_id",
    "task_id",
    "portfolio",
    "status",
    "started_at",
    "ended_at",
    "input_hash",
    "notebook_path",
    "html_path",
}


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env |= {
        "TRADEASSIST_HOME": str(tmp_path / "home"),
        "TRADEASSIST_DB_URL": sqlite_url,
        "TRADEASSIST_REPORTS_DIR": str(tmp_path / "reports"),
        "TRADEASSIST_SMTP_PASSWORD": SMTP_CANARY,
        "TWELVEDATA_API_KEY": API_CANARY,
    }

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        done = run_cli(args, env | extra, timeout=240)
        assert "Traceback" not in done.stderr, done.stderr
        for secret in (SMTP_CANARY, API_CANARY):
            assert secret not in done.stdout + done.stderr
        return done

    return run


@pytest.mark.slow
def test_tasks_add_list_due_enable_disable(cli) -> None:  # type: ignore[no-untyped-def]
    added = cli("tasks", "add", "--name", "daily alerts", "--kind", "ALERT_ONLY", "--cron", "0 7 * * *")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "task added: daily alerts (ALERT_ONLY, id 1)"
    rrule = cli(
        "tasks",
        "add",
        "--name",
        "prices",
        "--kind",
        "price_refresh",
        "--rrule",
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=18;BYMINUTE=30",
        "--config",
        '{"timeout_seconds": 120}',
    )
    assert rrule.returncode == 0, rrule.stderr
    for args, message in [
        (
            ("--cron", "0 7 * * *", "--rrule", "FREQ=DAILY"),
            "error: give exactly one of --cron EXPR or --rrule EXPR",
        ),
        (("--cron", "0 7 * * *", "--config", '{"colour": 1}'), "error: module_config for ALERT_ONLY: colour"),
    ]:
        bad = cli("tasks", "add", "--name", "bad", "--kind", "ALERT_ONLY", *args)
        assert bad.returncode != 0 and bad.stderr.startswith(message), bad.stderr
    listed = json.loads(cli("tasks", "list", "--json", "--at", "2030-01-07").stdout)
    assert [set(row) for row in listed] == [TASK_KEYS, TASK_KEYS]
    assert listed[0] | {"next_due": None} == {
        "task_id": 1,
        "name": "daily alerts",
        "kind": "ALERT_ONLY",
        "portfolio": None,
        "schedule_type": "CRON",
        "schedule_expr": "0 7 * * *",
        "is_enabled": True,
        "next_due": None,
    }
    # Monday 7 January 2030, end of day: the daily slot of that morning is due (missed ones collapsed).
    assert listed[0]["next_due"] == "2030-01-07T07:00:00+00:00"
    due = json.loads(cli("tasks", "due", "--json", "--at", "2030-01-07").stdout)
    assert [(r["name"], r["slot_at"]) for r in due] == [
        ("daily alerts", "2030-01-07T07:00:00+00:00"),
        ("prices", "2030-01-07T18:30:00+00:00"),
    ]
    assert all(r["collapsed"] > 100 for r in due)
    assert cli("tasks", "disable", "prices").returncode == 0
    listed = json.loads(cli("tasks", "list", "--json").stdout)
    assert (listed[1]["is_enabled"], listed[1]["next_due"]) == (False, None)
    assert [r["name"] for r in json.loads(cli("tasks", "due", "--json", "--at", "2030-01-07").stdout)] == [
        "daily alerts"
    ]
    assert cli("tasks", "enable", "prices").returncode == 0
    missing = cli("tasks", "run", "nope")
    assert missing.returncode != 0 and missing.stderr.strip() == "error: no task named 'nope'"


@pytest.mark.slow
def test_run_list_show_replay(cli, sqlite_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tradeassist.demo import load_demo

    engine = create_db_engine(sqlite_url)
    load_demo(engine, end=date(2026, 1, 9))
    engine.dispose()
    ran = cli("tasks", "run", "demo monthly allocation", "--at", "2026-01-09", "--json")
    assert ran.returncode == 0, ran.stderr
    [outcome] = json.loads(ran.stdout)
    assert outcome["status"] == "SUCCESS" and outcome["recommendation_id"] is not None
    assert outcome["as_of"] == "2026-01-09T23:59:59.999999+00:00"
    for key in ("notebook_path", "html_path"):
        path = Path(outcome[key])
        assert path.is_absolute() and path.is_file() and path.is_relative_to(tmp_path / "reports")
        body = path.read_text()
        assert SMTP_CANARY not in body and API_CANARY not in body
    alerts = cli("tasks", "run", "demo alerts", "--at", "2026-01-09")
    assert alerts.returncode == 0, alerts.stderr
    assert alerts.stdout.startswith(f"run {outcome['run_id'] + 1} ALERT_ONLY demo alerts Demo SIPP: SUCCESS")
    assert f"  report:   {tmp_path / 'reports'}" in alerts.stdout

    runs = json.loads(cli("runs", "list", "--json").stdout)
    assert [set(r) for r in runs] == [RUN_KEYS, RUN_KEYS]
    assert [(r["run_id"], r["status"], r["portfolio"]) for r in runs] == [
        (outcome["run_id"], "SUCCESS", "Demo SIPP"),
        (outcome["run_id"] + 1, "SUCCESS", "Demo SIPP"),
    ]
    assert len(json.loads(cli("runs", "list", "--json", "--task", "demo alerts").stdout)) == 1
    shown = json.loads(cli("runs", "show", str(outcome["run_id"]), "--json").stdout)
    assert shown["kind"] == "MONTHLY_ALLOC" and shown["recommendation"]["lines"]
    assert shown["recommendation"]["recommendation_id"] == outcome["recommendation_id"]
    text = cli("runs", "show", str(outcome["run_id"])).stdout.split("recommendation ")[1]
    for line in shown["recommendation"]["lines"]:  # pounds and pence for people, exact in --json
        assert format_gbp(Decimal(line["amount_base"])) in text and f" {line['amount_base']} " not in text
    with_snapshot = json.loads(cli("runs", "show", str(outcome["run_id"]), "--json", "--snapshot").stdout)
    assert with_snapshot["input_snapshot"]["inputs"]["parameters"]["contribution"] == "1000"

    replay = cli("runs", "replay", str(outcome["run_id"]))
    assert (replay.returncode, replay.stdout) == (0, "identical\n")
    nothing = cli("runs", "replay", str(outcome["run_id"] + 1))
    assert nothing.returncode == 1 and "computes no recommendation" in nothing.stderr
    unknown = cli("runs", "show", "999")
    assert unknown.returncode != 0 and unknown.stderr.strip() == "error: no run 999"


@pytest.mark.slow
def test_run_due_exits_1_when_a_run_fails(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("tasks", "add", "--name", "a", "--kind", "ALERT_ONLY", "--cron", "0 7 * * *").returncode == 0
    empty = tmp_path / "no notebooks"
    empty.mkdir()
    failed = cli("tasks", "run-due", "--at", "2099-01-01", TRADEASSIST_TASK_NOTEBOOKS_DIR=str(empty))
    assert failed.returncode == 1
    assert failed.stdout.startswith("run 1 ALERT_ONLY a: FAILED")
    assert (
        f"error:    no notebook for ALERT_ONLY: {empty / 'ALERT_ONLY.ipynb'} does not exist" in failed.stdout
    )
    runs = json.loads(cli("runs", "list", "--json", "--status", "failed").stdout)
    assert [(r["run_id"], r["notebook_path"]) for r in runs] == [(1, None)]
    quiet = cli("tasks", "run-due", "--at", "2099-01-01")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr.strip() == "nothing due"
