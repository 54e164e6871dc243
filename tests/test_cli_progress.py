"""Progress bars (issue #18 item 5): drawn on stderr for long commands, never with --json, off
when stderr is not a terminal unless ``TRADEASSIST_PROGRESS`` says otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ADMIN_EMAIL
from tests.support.http_server import Reply, ScriptedServer
from tests.test_services_market import STAN, add_listing
from tradeassist.cli.progress import progress, wanted
from tradeassist.core.errors import ConfigError
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.services import identity

TRADEASSIST = [sys.executable, "-m", "tradeassist"]


def run(db_url: str, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    environ |= {"TRADEASSIST_HOME": str(tmp_path / "home"), **env}
    return subprocess.run(
        [*TRADEASSIST, "--db", db_url, *args], env=environ, capture_output=True, text=True, timeout=120
    )


def test_price_refresh_draws_a_bar_on_stderr_and_none_with_json(
    sqlite_url: str, real_data: Path, tmp_path: Path
) -> None:
    engine = create_db_engine(sqlite_url)
    with unit_of_work(engine, readonly=True) as session:
        admin = identity.get_user(session, ADMIN_EMAIL)
    add_listing(engine, admin, STAN[0], "ASTAN", scale="GBX", provider="stooq", symbol="stan.uk")
    engine.dispose()
    csv = (real_data / "stooq" / "stan_uk_d.csv").read_bytes()
    with ScriptedServer({"/q/d/l/": Reply(200, csv, content_type="text/csv")}) as stooq:
        base = ["prices", "refresh", "--base-url", f"stooq={stooq.base_url}"]
        drawn = run(sqlite_url, tmp_path, *base, TRADEASSIST_PROGRESS="yes")
        quiet = run(sqlite_url, tmp_path, *base)  # stderr is a pipe here: no bar
        as_json = run(sqlite_url, tmp_path, *base, "--json", TRADEASSIST_PROGRESS="1")
    assert drawn.returncode == 0, drawn.stderr
    assert "downloading prices" in drawn.stderr and "1/1" in drawn.stderr
    assert "downloading prices" not in drawn.stdout and "ASTAN" in drawn.stdout
    assert quiet.returncode == 0 and "downloading prices" not in quiet.stderr
    assert as_json.returncode == 0 and as_json.stderr == ""
    assert json.loads(as_json.stdout)[0]["ticker"] == "ASTAN"


def test_the_switch_reads_like_every_boolean_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw, expected in (("1", True), ("true", True), ("YES", True), ("0", False), ("no", False)):
        monkeypatch.setenv("TRADEASSIST_PROGRESS", raw)
        assert wanted(json=False) is expected
        assert wanted(json=True) is False
    monkeypatch.setenv("TRADEASSIST_PROGRESS", "maybe")
    with pytest.raises(ConfigError, match="TRADEASSIST_PROGRESS"):
        wanted(json=False)
    monkeypatch.setenv("TRADEASSIST_PROGRESS", "0")
    seen = []
    with progress(3, "nothing drawn") as step:
        seen.append(step(1))
    assert seen == [None]


def test_a_ledger_import_and_run_due_show_their_stages(sqlite_url: str, tmp_path: Path) -> None:
    from tests.support.cli import clean_env, run_cli
    from tradeassist.providers.brokers.canonical import HEADER

    env = clean_env(tmp_path, TRADEASSIST_DB_URL=sqlite_url, TRADEASSIST_PROGRESS="1")
    assert (
        run_cli(["portfolio", "add", "ISA", "--broker", "AJBell", "--tax-treatment", "ISA"], env).returncode
        == 0
    )
    book = tmp_path / "book.csv"
    book.write_text(",".join(HEADER) + "\n2024-01-02,CONTRIBUTION,,,,,,1000,C1,\n")
    imported = run_cli(["ledger", "import", str(book), "--portfolio", "ISA", "--format", "canonical"], env)
    assert imported.returncode == 0, imported.stderr
    assert "reading book.csv" in imported.stderr and "checking and writing 1 entries" in imported.stderr
    assert "1 entries added" in imported.stdout
    due = run_cli(["tasks", "run-due"], env)
    assert due.returncode == 0 and "nothing due" in due.stderr and "running due tasks" in due.stderr
    quiet = run_cli(["tasks", "run-due", "--json"], env)
    assert quiet.stdout.strip() == "[]" and "running due tasks" not in quiet.stderr
