"""The command line starts without what it does not need (issue #18: a CLI that answers at once).

Each check runs in a fresh interpreter and reads ``sys.modules`` there: ``tradeassist --help``
imports no command module and none of the database, data or notebook libraries; a read
command (``portfolio list --json``) imports the database but not Alembic, pandas, numpy, httpx,
papermill or plotly. No timing is asserted (``bench/bench_cli_startup.py`` prints the times).
The help lists every command, each with the one line its module gives it, and shows no
``<bool>``/``<str>`` type markers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from tradeassist.cli import COMMANDS, app

# Every top-level command before the command modules became lazy (issue #18).
COMMANDS_BEFORE = {
    "init", "holdings", "cash", "recommend", "income", "demo", "ui", "user", "portfolio",
    "instrument", "listing", "ledger", "corporate-action", "prices", "fx", "alerts", "freeze",
    "strategy", "constituent", "reco", "tasks", "runs", "notify", "report", "tax",
}  # fmt: skip
NOT_FOR_A_READ = ("alembic", "pandas", "numpy", "httpx", "papermill", "plotly", "nbformat")
NOT_FOR_HELP = (*NOT_FOR_A_READ, "sqlalchemy", "sqlmodel")
TYPE_MARKER = re.compile(r"<(bool|str|int|float|path|Path|list\[[^]]*\])>")

# Runs the CLI as the console script does, then prints which modules it imported.
PROBE = """
import json, sys
from tradeassist.cli import main
sys.argv[:] = ["tradeassist", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("\\n" + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def probe(*args: str, env: dict[str, str] | None = None) -> tuple[str, dict[str, Any]]:
    """The command's output and, from the same fresh process, its exit code and modules."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    output, _, report = done.stdout.rstrip("\n").rpartition("\n")
    return output, json.loads(report)


def imported(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    return sorted({name.split(".")[0] for name in modules} & set(packages))


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env["TRADEASSIST_HOME"] = str(tmp_path / "home")
    env["COLUMNS"] = "200"  # one line per command in the help
    return env


def test_help_imports_no_command_module_and_no_heavy_library(cli_env) -> None:
    output, report = probe("--help", env=cli_env)
    assert report["code"] == 0
    assert "Usage: tradeassist" in output
    assert imported(report["modules"], NOT_FOR_HELP) == []
    commands = [m for m in report["modules"] if m.startswith("tradeassist.cli.")]
    assert sorted(commands) == ["tradeassist.cli.context", "tradeassist.cli.lazy"]
    assert not [m for m in report["modules"] if m.startswith("tradeassist.services")]


def test_a_read_command_imports_the_database_but_not_alembic_numpy_or_http(cli_env, sqlite_url) -> None:
    env = {**cli_env, "TRADEASSIST_DB_URL": sqlite_url}
    added = CliRunner().invoke(
        app, ["portfolio", "add", "Startup SIPP", "--broker", "AJ Bell", "--tax-treatment", "SIPP"], env=env
    )
    assert added.exit_code == 0, added.output
    output, report = probe("portfolio", "list", "--json", env=env)
    assert report["code"] == 0, output
    assert [row["name"] for row in json.loads(output)] == ["Startup SIPP"]
    assert imported(report["modules"], NOT_FOR_A_READ) == []
    assert "sqlalchemy" in imported(report["modules"], ("sqlalchemy",))


def test_a_command_on_a_database_with_no_schema_says_run_init(cli_env) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tradeassist", "portfolio", "list", "--json"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert done.stderr.strip() == "error: the database has no schema yet: run `tradeassist init` first"


def registered_commands() -> dict[str, Any]:
    """What the command modules register, built the eager way (every module imported)."""
    modules = {entry.module for entry in COMMANDS.values()}
    scratch = typer.Typer()
    for module in sorted(modules):
        __import__(f"tradeassist.cli.{module}", fromlist=["register"]).register(scratch)
    return dict(typer.main.get_group(scratch).commands)


def test_the_command_table_is_what_the_modules_register() -> None:
    registered = registered_commands()
    assert set(registered) == set(COMMANDS)
    assert set(COMMANDS) >= COMMANDS_BEFORE
    for name, entry in COMMANDS.items():
        assert entry.help == registered[name].get_short_help_str(limit=10_000), name


def commands_listed(help_text: str) -> dict[str, str]:
    """The Commands section of click's help: each name and its help, wrapped lines joined."""
    listed: dict[str, str] = {}
    section = help_text.split("\nCommands:\n", 1)[1]
    name = ""
    for line in section.splitlines():
        if match := re.match(r"^  ([a-z][a-z-]*)  +(.*)$", line):
            name = match.group(1)
            listed[name] = match.group(2).strip()
        elif line.strip() and name:
            listed[name] += " " + line.strip()
    return listed


def test_help_lists_every_command_with_its_one_line(cli_env) -> None:
    result = CliRunner().invoke(app, ["--help"], env=cli_env)
    assert result.exit_code == 0
    listed = commands_listed(result.output)
    assert set(listed) == set(COMMANDS)
    for name, entry in COMMANDS.items():
        assert listed[name] == entry.help
    assert list(listed) == list(COMMANDS)  # in the table's order


def _all_command_paths() -> list[list[str]]:
    def walk(command: Any, path: list[str]) -> list[list[str]]:
        paths = [path]
        for name, sub in getattr(command, "commands", {}).items():
            paths += walk(sub, [*path, name])
        return paths

    return [[name, *rest] for name, command in registered_commands().items() for rest in walk(command, [])]


def _path_id(path: list[str]) -> str:
    return " ".join(path) or "tradeassist"


@pytest.mark.parametrize("path", [[], *_all_command_paths()], ids=_path_id)
def test_every_help_shows_no_python_type_markers(path: list[str], cli_env) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "Usage: tradeassist" in result.output
    assert TYPE_MARKER.findall(result.output) == []
    if path:
        assert "--help" in result.output


def test_a_mistyped_command_is_answered_with_the_closest(cli_env) -> None:
    result = CliRunner().invoke(app, ["portfolo", "list"], env=cli_env)
    assert result.exit_code == 2
    assert "No such command 'portfolo'" in result.output
    assert "Did you mean 'portfolio'?" in result.output


@pytest.mark.parametrize(
    "module",
    [
        "tradeassist.services.price_ingest",  # every import of a price file
        "tradeassist.runs.notebook_api",  # every task run's kernel
        "tradeassist.providers.prices",
    ],
)
def test_storing_prices_loads_no_http_client(module: str) -> None:
    """httpx (about 0.2 s) is loaded by a provider when it first downloads: importing a file,
    or a task run's kernel, never downloads."""
    probe = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'httpx'))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
