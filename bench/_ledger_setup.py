"""What the ledger benchmarks share: the generated data, a database with its listings and
portfolios, a clock of wall and CPU time, peak memory, and a throwaway PostgreSQL database.

``bench/bench_ledger.py`` (the import, the rebuild and their floors) and
``bench/bench_ledger_post.py`` (one posting on top of a large ledger) both start here.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tradeassist.db.engine import create_db_engine, unit_of_work  # noqa: E402
from tradeassist.services import identity, portfolios, registry  # noqa: E402
from tradeassist.services.setup import init_database  # noqa: E402

OUT = ROOT / "bench" / "out"  # ignored by git
ADMIN_PASSWORD = "bench-password-123"


def peak_mb() -> float:
    """This process's maximum resident set so far, in MiB (``getrusage``: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def default_data(rows: int) -> Path:
    """Where the generated ledger of ``rows`` rows lives: ``bench/out`` for the million."""
    return OUT if rows == 1_000_000 else OUT / f"rows-{rows}"


def ensure_data(
    data: Path, rows: int, regenerate: bool = False, *, portfolios: int = 10, seed: int = 42
) -> None:
    """Generate the ledger into ``data`` (``bench/gen_ledger.py``, in a subprocess) unless the
    rows it holds are there already."""
    expected = data / "expected.json"
    if expected.exists() and not regenerate:
        books = json.loads(expected.read_text())
        if sum(p["entries"] for p in books.values()) == rows and len(books) == portfolios:
            return
    print(f"generating {rows:,} rows ({portfolios} portfolios, seed {seed}) into {data} …", flush=True)
    script = ROOT / "bench" / "gen_ledger.py"
    command = [sys.executable, str(script), "--rows", str(rows), "--out", str(data)]
    command += ["--portfolios", str(portfolios), "--seed", str(seed)]
    subprocess.run(command, check=True)


def portfolio_codes(data: Path) -> list[str]:
    return sorted(json.loads((data / "expected.json").read_text()))


def setup(url: str, data: Path) -> list[str]:
    """A new database at ``url`` with the generated listings and one portfolio per ledger file;
    the portfolios' names (p01, p02…)."""
    os.environ.setdefault("TRADEASSIST_ADMIN_PASSWORD", ADMIN_PASSWORD)
    engine = create_db_engine(url)
    init_database(engine)
    codes = portfolio_codes(data)
    with unit_of_work(engine) as s:
        actor = identity.bootstrap_admin(s)
        with (data / "listings.csv").open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                registry.add_instrument(s, actor=actor, isin=row["isin"], instrument_type="ETF")
                registry.add_listing(
                    s,
                    actor=actor,
                    isin=row["isin"],
                    ticker=row["ticker"],
                    exchange=row["exchange"],
                    currency=row["trading_currency"],
                    quote_scale=row["quote_scale"],
                )
        for code in codes:
            portfolios.add_portfolio(s, actor=actor, name=code, broker="bench", tax_treatment="GIA")
    engine.dispose()
    return codes


class Clock:
    """Wall-clock and CPU seconds of a step. On a shared machine the wall clock measures the
    neighbours too; this process's CPU time (SQLite runs in it) is what the step costs."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def child_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load_average() -> str:
    return f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores"


@contextmanager
def postgres_database(url: str, name: str) -> Iterator[str | None]:
    """``url`` itself, or with ``auto`` a fresh database ``name`` on a throwaway cluster started
    as the tests start theirs (None when no PostgreSQL binaries are found)."""
    if url != "auto":
        yield url
        return
    from sqlalchemy import create_engine, text

    from tests.support import pg

    cluster = pg.start_cluster()
    if cluster is None:
        yield None
        return
    try:
        admin = create_engine(cluster.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(text(f"CREATE DATABASE {name}"))
        admin.dispose()
        yield cluster.url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        cluster.stop()
