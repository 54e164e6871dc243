"""The command line as a user meets it (each command run as `python -m tradeassist` would, see
tests/support/cli.py): one-line errors, JSON for scripts."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import run_cli


def run(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(args, env, input=stdin)


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env["TRADEASSIST_HOME"] = str(tmp_path / "home")
    return env


def test_init_uses_the_embedded_default_and_prints_the_generated_password_once(cli_env) -> None:
    first = run("init", env=cli_env)
    assert first.returncode == 0, first.stderr
    assert "generated password (shown once)" in first.stdout
    assert Path(cli_env["TRADEASSIST_HOME"], "tradeassist.db").exists()
    second = run("init", env=cli_env)
    assert second.returncode == 0 and "unchanged" in second.stdout
    assert "password" not in second.stdout


def test_portfolio_commands_and_json(cli_env, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert run("--db", url, "init", env=cli_env).returncode == 0
    added = run(
        "--db",
        url,
        "portfolio",
        "add",
        "AJ Bell SIPP",
        "--broker",
        "AJBell",
        "--tax-treatment",
        "SIPP",
        env=cli_env,
    )
    assert added.returncode == 0, added.stderr
    listed = run("--db", url, "portfolio", "list", "--json", env=cli_env)
    rows = json.loads(listed.stdout)
    assert rows == [
        {
            "portfolio_id": 1,
            "name": "AJ Bell SIPP",
            "broker": "AJBell",
            "tax_treatment": "SIPP",
            "base_currency": "GBP",
            "owner": "admin@localhost.localdomain",
        }
    ]


def test_user_errors_are_one_line_without_a_traceback(cli_env, tmp_path: Path) -> None:
    cli_env["TRADEASSIST_DB_URL"] = f"sqlite:///{tmp_path / 'y.db'}"
    assert run("init", env=cli_env).returncode == 0
    bad = run("portfolio", "add", "P", "--broker", "B", "--tax-treatment", "PENSION", env=cli_env)
    assert bad.returncode != 0
    assert bad.stderr.strip() == "error: tax treatment 'PENSION': expected SIPP, ISA or GIA"
    assert "Traceback" not in bad.stderr
    missing = run("portfolio", "share", "Nope", "x@example.com", env=cli_env)
    assert missing.returncode != 0 and missing.stderr.strip() == "error: no portfolio named 'Nope'"


def test_no_schema_yet_is_a_clear_error(cli_env) -> None:
    result = run("portfolio", "list", env=cli_env)
    assert result.returncode != 0
    assert "run `tradeassist init` first" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_users_sharing_and_denial_through_the_cli(cli_env, tmp_path: Path) -> None:
    cli_env["TRADEASSIST_DB_URL"] = f"sqlite:///{tmp_path / 'z.db'}"
    assert run("init", env=cli_env).returncode == 0
    assert (
        run(
            "user", "add", "ann@example.com", "--password-stdin", env=cli_env, stdin="ann-password-1\n"
        ).returncode
        == 0
    )
    assert (
        run(
            "user", "add", "bob@example.com", "--password-stdin", env=cli_env, stdin="bob-password-1\n"
        ).returncode
        == 0
    )
    assert (
        run(
            "--as",
            "ann@example.com",
            "portfolio",
            "add",
            "Ann ISA",
            "--broker",
            "AJBell",
            "--tax-treatment",
            "ISA",
            env=cli_env,
        ).returncode
        == 0
    )
    denied = run("--as", "bob@example.com", "portfolio", "share", "Ann ISA", "bob@example.com", env=cli_env)
    assert denied.returncode == 3 and "may not share" in denied.stderr
    cli_env["TRADEASSIST_USER"] = "ann@example.com"
    assert run("portfolio", "share", "Ann ISA", "bob@example.com", env=cli_env).returncode == 0
    rows = json.loads(run("--as", "bob@example.com", "portfolio", "list", "--json", env=cli_env).stdout)
    assert [r["name"] for r in rows] == ["Ann ISA"] and rows[0]["owner"] == "ann@example.com"
    assert run("user", "disable", "bob@example.com", env=cli_env).returncode == 3  # ann is not the admin
    del cli_env["TRADEASSIST_USER"]
    assert run("user", "disable", "bob@example.com", env=cli_env).returncode == 0
    disabled = run("--as", "bob@example.com", "portfolio", "list", env=cli_env)
    assert disabled.returncode != 0 and "disabled" in disabled.stderr
