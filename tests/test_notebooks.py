"""Every top-level notebook runs from top to bottom against a fresh demo database (nbval).

One ``pytest --nbval-lax`` process runs them all (each in its own kernel), with
``TRADEASSIST_DB_URL`` naming a fresh copy of the demo database and ``TRADEASSIST_HOME`` a fresh
directory, so each kernel finds the database the way a user's does (the notebooks name no
URL). One process, not one per notebook: run unattended the notebooks only read (their
buttons write, and nobody clicks them), and a pytest start-up costs seconds. ``--nbval-lax``
checks that every cell runs without error; outputs are compared only in cells marked
``# NBVAL_CHECK_OUTPUT``, after ``notebooks/nbval-sanitize.cfg`` masks dates, ids and paths.
``00_getting_started`` ignores the demo copy: it creates its own temporary database.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SANITIZE = NOTEBOOKS / "nbval-sanitize.cfg"
TOP_LEVEL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


def test_the_interactive_notebooks_are_there_and_committed_without_outputs() -> None:
    assert {"00_getting_started.ipynb", "dashboard.ipynb", "strategy.ipynb", "ledger.ipynb"} <= set(TOP_LEVEL)
    for name in TOP_LEVEL:
        nb = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, (
                    f"{name}: outputs not stripped"
                )
                assert "select " not in "".join(cell["source"]).lower(), f"{name}: SQL in a notebook cell"


@pytest.mark.slow
def test_every_notebook_runs_against_a_fresh_demo_database(
    tmp_path: Path, sqlite_demo_template: Path
) -> None:
    from tradeassist.runs.runner import kernel_name

    database = tmp_path / "demo.db"
    shutil.copy(sqlite_demo_template, database)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "TRADEASSIST_DB_URL": f"sqlite:///{database}",
        "TRADEASSIST_HOME": str(home),
        "TRADEASSIST_REPORTS_DIR": str(tmp_path / "reports"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval-lax",
        "--nbval-sanitize-with",
        str(SANITIZE),
        "--nbval-kernel-name",
        kernel_name(),
        "--nbval-cell-timeout",
        "120",
        *(str(NOTEBOOKS / name) for name in TOP_LEVEL),
        "-p",
        "no:cacheprovider",
        "-q",
        "--no-header",
    ]
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    failed = sorted({line.split("::")[0] for line in run.stdout.splitlines() if line.startswith("FAILED ")})
    assert run.returncode == 0, f"failed under nbval: {failed}\n{run.stdout[-8000:]}\n{run.stderr[-2000:]}"
    assert " passed" in run.stdout and " failed" not in run.stdout
