"""Benchmark: a WEEKLY_REVIEW run end to end, against a bare papermill run of an empty notebook.

Run: ``.venv/bin/python bench/bench_runs.py [REPEATS]`` (default 5). On a fresh SQLite file
with the demo portfolio (three years of prices and contributions, an approved strategy), it
times, REPEATS times each, in one process (imports paid once, as ``tasks run-due`` pays them):

* **bare**: ``papermill.execute_notebook`` of a notebook holding only the parameters cell,
  with the same kernel: the floor (kernel start, one cell, shutdown);
* **weekly**: ``runner.run_task`` of the demo's WEEKLY_REVIEW task: claim, papermill with the
  real notebook (read the book, prices and policy, compute the drift check, tables, charts),
  secret scrub, HTML export and the recording transaction; with the share of each phase.

The target is 6 s for the weekly run; the overhead is weekly minus bare.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import nbformat

from tradeassist.core.timeutil import end_of_london_day
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.services import identity
from tradeassist.services.setup import init_database

TARGET_SECONDS = 6.0


def _empty_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            'run_id = 0\nportfolio = None\nas_of = ""\ndb_url = ""', metadata={"tags": ["parameters"]}
        )
    ]
    path = folder / "empty.ipynb"
    nbformat.write(nb, path)
    return path


def _summary(label: str, values: list[float]) -> str:
    return (
        f"{label:>34}: median {statistics.median(values):.2f} s, best {min(values):.2f} s, "
        f"worst {max(values):.2f} s"
    )


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    from tradeassist.demo import load_demo
    from tradeassist.runs import runner

    with tempfile.TemporaryDirectory(prefix="bench-runs-") as scratch:
        root = Path(scratch)
        url = f"sqlite:///{root / 'bench.db'}"
        os.environ.setdefault("TRADEASSIST_ADMIN_EMAIL", "admin@example.com")
        os.environ.setdefault("TRADEASSIST_ADMIN_PASSWORD", "bench-password-123")
        engine = create_db_engine(url)
        init_database(engine)
        end = date(2026, 1, 9)
        load_demo(engine, end=end)
        with unit_of_work(engine, readonly=True) as session:
            admin = identity.bootstrap_admin(session)
        assert admin is not None
        import papermill  # noqa: F401  (imports paid before timing, as a runner process pays them once)

        empty = _empty_notebook(root)
        bare: list[float] = []
        for i in range(repeats):
            with tempfile.TemporaryDirectory() as ipython_dir:
                env = runner.kernel_environment(url, ipython_dir)
                started = time.perf_counter()
                runner.execute_notebook(
                    empty,
                    root / f"empty-{i}.ipynb",
                    {"run_id": i, "portfolio": None, "as_of": "", "db_url": url},
                    timeout=120,
                    env=env,
                )
                bare.append(time.perf_counter() - started)

        weekly: list[float] = []
        kernel: list[float] = []
        for i in range(repeats):
            at = end_of_london_day(end) - timedelta(minutes=i)  # one manual claim each
            started = time.perf_counter()
            outcome = runner.run_task(
                engine, actor=admin, name="demo weekly review", db_url=url, at=at, reports=root / "reports"
            )
            weekly.append(time.perf_counter() - started)
            assert outcome.status.value == "SUCCESS", outcome.error
            assert outcome.notebook_path and outcome.html_path
            executed = nbformat.read(outcome.notebook_path, as_version=4)
            kernel.append(float(executed.metadata["papermill"]["duration"]))
        engine.dispose()

    overhead = [w - b for w, b in zip(weekly, bare, strict=True)]
    print(f"runs: {repeats} of each; kernel: {runner.kernel_name()}; {os.cpu_count()} CPU(s)")
    print(_summary("bare papermill, empty notebook", bare))
    print(_summary("WEEKLY_REVIEW end to end", weekly))
    print(_summary("  of which papermill (kernel)", kernel))
    print(_summary("  of which the rest", [w - k for w, k in zip(weekly, kernel, strict=True)]))
    print(_summary("overhead over the bare run", overhead))
    median = statistics.median(weekly)
    verdict = "within" if median <= TARGET_SECONDS else "OVER"
    print(f"target: WEEKLY_REVIEW <= {TARGET_SECONDS:.0f} s; median {median:.2f} s: {verdict}")


if __name__ == "__main__":
    main()
