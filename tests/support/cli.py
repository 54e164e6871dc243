"""Running ``tradeassist`` from the tests: in this process by default, as a real process on demand.

Most CLI tests run dozens of commands; each real process paid about a second of imports, a
good share of the suite's time. ``run_cli`` runs the command in this process instead, exactly
as ``python -m tradeassist`` would (the same ``main``, ``sys.argv``, environment and working
directory, stdout and stderr captured, the exit status from ``SystemExit``), then puts the
process back as it was (environment, directory, argv, cached engines). The tests of what only
a real process shows (start-up time, a terminal, signals, a login's environment, notebooks run
by a worker) keep spawning one; ``TRADEASSIST_TEST_PROCESSES=1`` makes every test spawn one,
to check the two ways agree.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

TRADEASSIST = [sys.executable, "-m", "tradeassist"]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any ``TRADEASSIST_*`` setting, a private home, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    return env | {"TRADEASSIST_HOME": str(tmp_path / "home"), **extra}


def run_cli(
    args: list[str] | tuple[str, ...],
    env: Mapping[str, str],
    *,
    cwd: str | Path | None = None,
    timeout: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``tradeassist ARGS`` with ``env``, ``input`` on its standard input (see the module
    docstring)."""
    if os.environ.get("TRADEASSIST_TEST_PROCESSES", "").strip().lower() in ("1", "true", "yes"):
        return subprocess.run(
            [*TRADEASSIST, *args],
            env=dict(env),
            cwd=cwd,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    return _in_process(list(args), env, cwd, input)


def _in_process(
    args: list[str], env: Mapping[str, str], cwd: str | Path | None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    from tradeassist.cli import main
    from tradeassist.db.engine import dispose_engines

    saved_env, saved_argv, saved_cwd, saved_stdin = dict(os.environ), sys.argv, os.getcwd(), sys.stdin
    out, err = io.StringIO(), io.StringIO()
    code = 0
    os.environ.clear()
    os.environ.update(env)
    sys.argv = ["tradeassist", *args]
    sys.stdin = io.StringIO(stdin or "")
    # A real process has no log handler, so a warning goes to its stderr (logging's last
    # resort); here pytest's handlers would take it, so one more sends it to the captured
    # stderr, where the tests look for leaked secrets as they would in the process's.
    stderr_log = logging.StreamHandler(err)
    stderr_log.setLevel(logging.WARNING)
    logging.getLogger().addHandler(stderr_log)
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if not isinstance(exc.code, int | None):
                    err.write(f"{exc.code}\n")
    finally:
        os.chdir(saved_cwd)
        sys.argv, sys.stdin = saved_argv, saved_stdin
        logging.getLogger().removeHandler(stderr_log)
        os.environ.clear()
        os.environ.update(saved_env)
        dispose_engines()
    return subprocess.CompletedProcess(["tradeassist", *args], code, out.getvalue(), err.getvalue())


def admin_cli(db_url: str, capsys: Any) -> Callable[..., tuple[int, str, str]]:
    """``tradeassist --db URL --as <the bootstrap admin> ARGS...`` in this process, its output
    read through pytest's ``capsys``: (exit code, stdout, stderr). For the tests that look at
    one command's answer at a time."""
    from tests.conftest import ADMIN_EMAIL
    from tradeassist.cli import main
    from tradeassist.db.engine import dispose_engines

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        argv, sys.argv = sys.argv, ["tradeassist", "--db", db_url, "--as", ADMIN_EMAIL, *args]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.argv = argv
            dispose_engines()
        out, err = capsys.readouterr()
        return code, out, err

    return run
