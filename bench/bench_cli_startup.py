"""Benchmark: how long the ``tradeassist`` command takes to start, beside a bare interpreter.

Run: ``.venv/bin/python bench/bench_cli_startup.py [RUNS]`` (default 10 runs of each).

Each case runs RUNS times as a fresh process: ``python -c pass`` (the floor: the interpreter
alone), ``tradeassist --help`` and ``tradeassist portfolio list --json`` on a fresh SQLite
database in a temporary ``TRADEASSIST_HOME`` (``tradeassist init`` and one portfolio first,
not timed). Each row gives the median and the fastest wall time, and the median CPU time
(user + system) of the child: on a shared machine wall time also counts other people's work.

Then, for the two commands, the modules that took longest to import (cumulative, from one run
with ``python -X importtime``), and which heavy libraries the command imported at all.
Issue #18's targets on the reference machine: ``--help`` at most 0.3 s, ``portfolio list
--json`` at most 0.6 s.
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 10
TOP = 12
HEAVY = ("alembic", "sqlalchemy", "sqlmodel", "pandas", "numpy", "httpx", "papermill", "plotly", "nbformat")
# The console script (`tradeassist`) does exactly this.
ENTRY = "import sys; from tradeassist.cli import main; sys.argv[0] = 'tradeassist'; sys.exit(main())"


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run; fails loudly if the command fails."""
    cpu0 = _child_cpu()
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return wall, _child_cpu() - cpu0


def _time(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float, float]:
    _run(argv, env)  # warm the file cache and the bytecode
    samples = [_run(argv, env) for _ in range(runs)]
    walls = [wall for wall, _ in samples]
    return statistics.median(walls), min(walls), statistics.median(cpu for _, cpu in samples)


def _import_profile(args: list[str], env: dict[str, str]) -> tuple[list[tuple[float, str]], set[str]]:
    """The top modules by cumulative import time (ms), and the top-level packages imported."""
    code = ENTRY.replace("sys.argv[0] = 'tradeassist'", f"sys.argv[:] = ['tradeassist', *{args!r}]")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True, check=False
    )
    rows: list[tuple[float, str]] = []
    packages: set[str] = set()
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            name = match.group(4)
            rows.append((int(match.group(2)) / 1000, f"{match.group(3)[1:]}{name}"))
            packages.add(name.split(".")[0])
    rows.sort(reverse=True)
    return rows[:TOP], packages


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else RUNS
    with tempfile.TemporaryDirectory(prefix="ta-bench-") as home:
        env = {**os.environ, "TRADEASSIST_HOME": home}
        for name in ("TRADEASSIST_DB_URL", "TRADEASSIST_USER"):
            env.pop(name, None)
        tradeassist = [sys.executable, "-c", ENTRY]
        setup = [
            [*tradeassist, "init"],
            [
                *tradeassist,
                "portfolio",
                "add",
                "Bench SIPP",
                "--broker",
                "AJ Bell",
                "--tax-treatment",
                "SIPP",
            ],
        ]
        for argv in setup:
            subprocess.run(argv, env=env, capture_output=True, check=True)
        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"], None),
            ("tradeassist --help", [*tradeassist, "--help"], ["--help"]),
            (
                "tradeassist portfolio list --json",
                [*tradeassist, "portfolio", "list", "--json"],
                ["portfolio", "list", "--json"],
            ),
        ]
        print(f"{runs} runs each; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
        print(f"{'command':<36} {'median s':>9} {'fastest s':>10} {'cpu s':>7}")
        for label, argv, _ in cases:
            median, fastest, cpu = _time(argv, env, runs)
            print(f"{label:<36} {median:>9.3f} {fastest:>10.3f} {cpu:>7.3f}")
        for label, _, args in cases:
            if args is None:
                continue
            top, packages = _import_profile(args, env)
            heavy = [name for name in HEAVY if name in packages]
            print(f"\n{label}: imports {', '.join(heavy) or 'none'} of {', '.join(HEAVY)}")
            print(f"  {'cumulative ms':>13}  module")
            for ms, module in top:
                print(f"  {ms:>13.1f}  {module}")
    print(f"\n(the database lived in {Path(home).name}, now removed)")


if __name__ == "__main__":
    main()
