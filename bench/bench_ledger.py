"""Benchmark: a 1,000,000-row canonical ledger (10 portfolios × 100 listings) imported to
snapshots end to end, a full rebuild, peak memory, and ``hledger bal`` on the same transactions.

Targets on this 2-core machine: import ≤ 30 s, rebuild ≤ 5 s, peak memory ≤ 1.5 GB, and our
import + rebuild faster than ``hledger bal``. The ledger comes from ``bench/gen_ledger.py``
(deterministic seed), generated into ``--data`` first if it is not there. The database is a
SQLite file in a temporary directory (``--postgres URL``, or ``--postgres auto`` to start a
throwaway cluster as the tests do, repeats the run on PostgreSQL, where entries go in by COPY).

    python bench/bench_ledger.py                  # everything, ~1 minute plus hledger's
    python bench/bench_ledger.py --rows 100000    # a quick look (generates its own data)

"Import" is what ``tradeassist ledger import FILE --format canonical`` does for each of the ten
files, one transaction each: parse, resolve listings, validate against the book, insert the
batch and its entries, write the snapshots, audit, commit. "Rebuild" is ``ledger rebuild`` for
all ten portfolios (read every entry, replay, rewrite the snapshots). Peak memory is this
process's maximum resident set (``getrusage``), generation excluded (it runs in a subprocess).
Every portfolio's final cash and units are checked against the generator's ``expected.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tradeassist.db.engine import create_db_engine, unit_of_work  # noqa: E402
from tradeassist.services import identity, imports, ledger, portfolios, registry  # noqa: E402
from tradeassist.services.setup import init_database  # noqa: E402

TARGETS = {"import": 30.0, "rebuild": 5.0, "memory_mb": 1536.0}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def ensure_data(data: Path, rows: int, regenerate: bool) -> None:
    expected = data / "expected.json"
    if expected.exists() and not regenerate:
        entries = sum(p["entries"] for p in json.loads(expected.read_text()).values())
        if entries == rows:
            return
    print(f"generating {rows:,} rows into {data} …", flush=True)
    script = ROOT / "bench" / "gen_ledger.py"
    subprocess.run([sys.executable, str(script), "--rows", str(rows), "--out", str(data)], check=True)


def setup(url: str, data: Path) -> list[str]:
    os.environ.setdefault("TRADEASSIST_ADMIN_PASSWORD", "bench-password-123")
    engine = create_db_engine(url)
    init_database(engine)
    codes = sorted(json.loads((data / "expected.json").read_text()))
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


def run(url: str, data: Path, label: str) -> dict[str, tuple[float, float] | float]:
    codes = setup(url, data)
    engine = create_db_engine(url)
    print(f"\n[{label}] importing {len(codes)} files …", flush=True)
    clock = Clock()
    for code in codes:
        step = Clock()
        with unit_of_work(engine) as s:
            result = imports.import_file(
                s,
                actor=identity.bootstrap_admin(s),
                portfolio=code,
                path=data / f"ledger_{code}.csv",
                format="canonical",
            )
        wall, cpu = step.stop()
        print(f"  {code}: {result.added:,} entries in {wall:.2f} s ({cpu:.2f} s CPU)", flush=True)
    imported = clock.stop()
    import_peak = peak_mb()

    clock = Clock()
    for code in codes:
        with unit_of_work(engine) as s:
            rebuilt = ledger.rebuild(s, actor=identity.bootstrap_admin(s), portfolio=code)
            assert not rebuilt.changed, f"{code}: the rebuild disagrees with the incremental snapshots"
    rebuilt_all = clock.stop()

    clock = Clock()
    with unit_of_work(engine) as s:
        again = imports.import_file(
            s,
            actor=identity.bootstrap_admin(s),
            portfolio=codes[0],
            path=data / f"ledger_{codes[0]}.csv",
            format="canonical",
        )
    reimported = clock.stop()
    assert again.already_imported and again.added == 0

    check(engine, data, codes)
    engine.dispose()
    return {"import": imported, "rebuild": rebuilt_all, "reimport": reimported, "import_peak_mb": import_peak}


def check(engine: object, data: Path, codes: list[str]) -> None:
    expected = json.loads((data / "expected.json").read_text())
    with unit_of_work(engine, readonly=True) as s:  # type: ignore[arg-type]
        actor = identity.bootstrap_admin(s)
        for code in codes:
            cash = ledger.cash(s, actor=actor, portfolio=code)["cash_balance"]
            units = {r["ticker"]: r["units"] for r in ledger.holdings(s, actor=actor, portfolio=code)}
            want = expected[code]
            assert cash == Decimal(want["cash"]), (code, cash, want["cash"])
            assert units == {t: Decimal(u) for t, u in want["units"].items()}, code
    print("  final cash and units of every portfolio match expected.json")


def time_hledger(data: Path) -> tuple[float, float] | None:
    exe = shutil.which("hledger")
    if exe is None:
        print("\nhledger: not installed (apt-get install -y hledger), comparison skipped")
        return None
    print("\nhledger bal on the same transactions …", flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [exe, "-f", str(data / "ledger.journal"), "bal", "assets:p01:cash"],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        print(f"  hledger failed: {done.stderr.strip()[:300]}")
        return None
    balance = done.stdout.split()[0] if done.stdout else "?"
    print(f"  {wall:.1f} s ({cpu:.1f} s CPU); p01 cash per hledger: {balance}")
    return wall, cpu


def report(label: str, figures: dict, hledger: tuple[float, float] | None, peak: float) -> None:  # type: ignore[type-arg]
    (iw, ic), (rw, rc), (xw, xc) = figures["import"], figures["rebuild"], figures["reimport"]
    print(f"\n== {label} ==   (wall s / CPU s of this process)")
    print(f"import to snapshots : {iw:7.2f} / {ic:7.2f}   (target ≤ {TARGETS['import']:.0f} s)")
    print(f"full rebuild        : {rw:7.2f} / {rc:7.2f}   (target ≤ {TARGETS['rebuild']:.0f} s)")
    print(f"re-import (no-op)   : {xw:7.2f} / {xc:7.2f}")
    print(
        f"peak memory         : {peak:7.0f} MB  (target ≤ {TARGETS['memory_mb']:.0f} MB; "
        f"{figures['import_peak_mb']:.0f} MB after the import)"
    )
    print(f"load average now    : {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    if hledger is not None:
        hw, hc = hledger
        print(f"hledger bal         : {hw:7.2f} / {hc:7.2f}")
        for name, ours, theirs in (("wall", iw + rw, hw), ("CPU", ic + rc, hc)):
            print(f"ratio ({name:4s})        : hledger / (import + rebuild) = {theirs / ours:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="generated ledger (default bench/out)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--postgres", default=None, help="a server URL, or 'auto' for a throwaway cluster")
    parser.add_argument("--no-hledger", action="store_true")
    args = parser.parse_args(argv)
    out = ROOT / "bench" / "out"  # ignored by git
    data = args.data or (out if args.rows == 1_000_000 else out / f"rows-{args.rows}")
    ensure_data(data, args.rows, args.regenerate)

    hledger = None if args.no_hledger else time_hledger(data)
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        figures = run(f"sqlite:///{Path(tmp) / 'bench.db'}", data, "SQLite")
        report(f"SQLite, {args.rows:,} rows", figures, hledger, peak_mb())

    if args.postgres:
        cluster = None
        url = args.postgres
        if url == "auto":
            from sqlalchemy import create_engine, text

            from tests.support import pg

            cluster = pg.start_cluster()
            if cluster is None:
                print("\nPostgreSQL: no server binaries found, skipped")
                return
            admin = create_engine(cluster.url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text("DROP DATABASE IF EXISTS bench_ledger"))
                conn.execute(text("CREATE DATABASE bench_ledger"))
            admin.dispose()
            url = cluster.url.rsplit("/", 1)[0] + "/bench_ledger"
        try:
            figures = run(url, data, "PostgreSQL")
            report(f"PostgreSQL, {args.rows:,} rows", figures, hledger, peak_mb())
        finally:
            if cluster is not None:
                cluster.stop()


if __name__ == "__main__":
    main()
