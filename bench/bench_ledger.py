"""Benchmark: a 1,000,000-row canonical ledger (10 portfolios × 100 listings) imported to
snapshots end to end, beside its floors: a raw SQLite load of the same rows and ``hledger bal``.

Targets on this 2-core machine (issue #17 item 8), each printed with PASS or FAIL:

* the import of the ten files (one transaction each) in ≤ 15 s, peak memory ≤ 1 GiB;
* the import within 3× of a raw SQLite load of the same rows: ``csv.reader``, the values as
  they are stored, one plain ``executemany`` into ``ledger_entries`` and a commit per file,
  on a connection set up as ours are (foreign keys, WAL), with no checks at all;
* a held-out-style file (100,000 rows, its own seed, one portfolio) imported by the command,
  ``tradeassist ledger import FILE --format canonical``, in under 0.4 × ``hledger -f FILE.journal
  bal`` on the same transactions, both timed as whole processes, start-up included;
* the full rebuild of the ten portfolios in ≤ 5 s.

The ledgers come from ``bench/gen_ledger.py`` (deterministic), generated into ``bench/out`` first
if they are not there. The database is a SQLite file in a temporary directory (``--postgres
URL``, or ``--postgres auto`` for a throwaway cluster as the tests start, repeats the import
on PostgreSQL, where entries go in by COPY). Every portfolio's final cash and units are checked
against the generator's ``expected.json``. Peak memory is this process's maximum resident set
(``getrusage``), generation excluded (it runs in a subprocess). Where the environment says
``PYTHONDONTWRITEBYTECODE``, the command's process caches its bytecode outside the work tree
(``PYTHONPYCACHEPREFIX``, as the tests do), as an installed ``tradeassist`` does, and one
untimed run of its help warms that cache.

    python bench/bench_ledger.py                  # everything, ~1 minute plus hledger's
    python bench/bench_ledger.py --no-hledger     # without the million-row hledger run
    python bench/bench_ledger.py --rows 100000    # a quick look (generates its own data)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ledger_setup import (
    OUT,
    ROOT,
    Clock,
    child_cpu,
    default_data,
    ensure_data,
    load_average,
    peak_mb,
    postgres_database,
    setup,
)

from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.services import identity, imports, ledger
from tradeassist.services.ledger.insert import ENTRY_COLUMNS

TARGETS = {"import": 15.0, "memory_mb": 1024.0, "raw_ratio": 3.0, "hledger_ratio": 0.4, "rebuild": 5.0}
Times = tuple[float, float]  # wall, CPU seconds


def run(url: str, data: Path, label: str) -> dict[str, Any]:
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


def check(engine: Any, data: Path, codes: list[str]) -> None:
    expected = json.loads((data / "expected.json").read_text())
    with unit_of_work(engine, readonly=True) as s:
        actor = identity.bootstrap_admin(s)
        for code in codes:
            cash = ledger.cash(s, actor=actor, portfolio=code)["cash_balance"]
            units = {r["ticker"]: r["units"] for r in ledger.holdings(s, actor=actor, portfolio=code)}
            want = expected[code]
            assert cash == Decimal(want["cash"]), (code, cash, want["cash"])
            assert units == {t: Decimal(u) for t, u in want["units"].items()}, code
    print("  final cash and units of every portfolio match expected.json")


# --- the floors ----------------------------------------------------------------------------


def raw_load(data: Path) -> Times:
    """The floor: the same rows loaded into a fresh database's ``ledger_entries`` with nothing
    checked, one plain ``executemany`` and commit per file (one batch row first, for its key)."""
    with tempfile.TemporaryDirectory(prefix="bench-raw-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'raw.db'}"
        codes = setup(url, data)
        engine = create_db_engine(url)
        connection: Any = engine.raw_connection()  # set up as ours are: foreign keys, WAL…
        listing = dict(connection.execute("SELECT ticker, listing_id FROM instrument_listings").fetchall())
        folio = dict(connection.execute("SELECT name, portfolio_id FROM portfolios").fetchall())
        columns = ", ".join(ENTRY_COLUMNS)
        statement = f"INSERT INTO ledger_entries ({columns}) VALUES ({', '.join('?' * len(ENTRY_COLUMNS))})"
        print("\n[raw SQLite load] the same rows, plain executemany, one transaction per file …", flush=True)
        clock = Clock()
        for code in codes:
            pid = folio[code]
            connection.execute("BEGIN IMMEDIATE")
            batch = connection.execute(
                "INSERT INTO ledger_batches (portfolio_id, label, batch_type, created_by_user_id, "
                "created_at) VALUES (?, 'raw', 'IMPORT', 1, '2026-01-01 00:00:00.000000')",
                (pid,),
            ).lastrowid
            with (data / f"ledger_{code}.csv").open(encoding="utf-8", newline="") as handle:
                reader = csv.reader(handle)
                next(reader)
                rows = [
                    (batch, pid, f"{when[:10]} {when[11:19]}.000000", kind, listing.get(ticker),
                     units or None, price or None, fees or "0", cash, None, None, notes or None, ref,
                     None, None)
                    for when, kind, ticker, _, units, price, fees, cash, ref, notes in reader
                ]  # fmt: skip
            connection.executemany(statement, rows)
            connection.execute("COMMIT")
        figures = clock.stop()
        count = connection.execute("SELECT count(*) FROM ledger_entries").fetchone()[0]
        connection.close()
        engine.dispose()
    print(f"  {count:,} rows in {figures[0]:.2f} s ({figures[1]:.2f} s CPU)")
    return figures


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[Times, str]:
    """Wall and CPU seconds of a whole process (start-up included), and its output."""
    cpu = child_cpu()
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[:500]}")
    return (wall, child_cpu() - cpu), done.stdout


def time_hledger(data: Path) -> Times | None:
    """``hledger bal`` of one portfolio's cash over the million-row journal."""
    exe = shutil.which("hledger")
    if exe is None:
        print("\nhledger: not installed (apt-get install -y hledger), comparison skipped")
        return None
    print("\nhledger bal on the same transactions …", flush=True)
    figures, output = timed([exe, "-f", str(data / "ledger.journal"), "bal", "assets:p01:cash"])
    balance = output.split()[0] if output else "?"
    print(f"  {figures[0]:.1f} s ({figures[1]:.1f} s CPU); p01 cash per hledger: {balance}")
    return figures


def command_env(home: str, url: str) -> dict[str, str]:
    """The command's environment: its own home and database, and this checkout's package."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env |= {"TRADEASSIST_HOME": home, "TRADEASSIST_DB_URL": url}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        env.setdefault("PYTHONPYCACHEPREFIX", str(OUT / "pycache"))
    return env


def heldout(rows: int, seed: int) -> tuple[Times, Times] | None:
    """The command on a held-out-style file against ``hledger -f FILE.journal bal``."""
    exe = shutil.which("hledger")
    if exe is None:
        print("\nhledger: not installed, the held-out comparison is skipped")
        return None
    data = OUT / f"heldout-{rows}-seed{seed}"
    ensure_data(data, rows, portfolios=1, seed=seed)
    script = Path(sys.executable).with_name("tradeassist")
    tradeassist = [str(script)] if script.exists() else [sys.executable, "-m", "tradeassist"]
    with tempfile.TemporaryDirectory(prefix="bench-heldout-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'heldout.db'}"
        (code,) = setup(url, data)
        env = command_env(tmp, url)
        # Untimed: caches the bytecode of every module the command imports (its help imports them).
        subprocess.run([*tradeassist, "ledger", "import", "--help"], env=env, capture_output=True, check=True)
        print(f"\n[held-out] {rows:,} rows (seed {seed}): the command, then hledger bal …", flush=True)
        path = data / f"ledger_{code}.csv"
        command = [*tradeassist, "ledger", "import", str(path), "--portfolio", code, "--format", "canonical"]
        ours, output = timed(command, env)
    print(f"  tradeassist ledger import: {ours[0]:.2f} s ({ours[1]:.2f} s CPU): {output.strip()}")
    theirs, _ = timed([exe, "-f", str(data / "ledger.journal"), "bal"])
    print(f"  hledger bal: {theirs[0]:.2f} s ({theirs[1]:.2f} s CPU)")
    return ours, theirs


# --- the report ----------------------------------------------------------------------------


def report(
    label: str,
    figures: dict[str, Any],
    raw: Times | None,
    hledger: Times | None,
    held: tuple[Times, Times] | None,
) -> None:
    (iw, ic), (rw, rc), (xw, xc) = figures["import"], figures["rebuild"], figures["reimport"]
    peak = peak_mb()

    def line(name: str, wall: float, cpu: float, note: str) -> None:
        print(f"{name:20s}: {wall:7.2f} / {cpu:7.2f}   {note}")

    def target(name: str, value: float, unit: str = "") -> str:
        bound = TARGETS[name]
        return f"target ≤ {bound:g}{unit}: {'PASS' if value <= bound else 'FAIL'}"

    print(f"\n== {label} ==   (wall s / CPU s; the targets, for a million rows, on the wall clock)")
    line("import to snapshots", iw, ic, target("import", iw, " s"))
    if raw is not None:
        line("raw SQLite load", raw[0], raw[1], "(the floor: no checks, plain executemany)")
        line("import / raw load", iw / raw[0], ic / raw[1], target("raw_ratio", iw / raw[0], "×"))
    if hledger is not None:
        faster = f"(the same journal; the import is {hledger[0] / iw:.1f}× faster)"
        line("hledger bal", hledger[0], hledger[1], faster)
    line("full rebuild", rw, rc, target("rebuild", rw, " s"))
    line("re-import (no-op)", xw, xc, "")
    print(
        f"{'peak memory':20s}: {peak:7.0f} MiB ({figures['import_peak_mb']:.0f} after the import)   "
        + target("memory_mb", peak, " MiB")
    )
    if held is not None:
        (ow, oc), (hw, hc) = held
        line("held-out: command", ow, oc, "(a whole process, start-up included)")
        line("held-out: hledger", hw, hc, "(hledger -f FILE.journal bal)")
        line("command / hledger", ow / hw, oc / hc, target("hledger_ratio", ow / hw, "×"))
    print(f"{'load average now':20s}: {load_average()}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="generated ledger (default bench/out)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--postgres", default=None, help="a server URL, or 'auto' for a throwaway cluster")
    parser.add_argument("--no-hledger", action="store_true", help="skip hledger on the big journal")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw SQLite load")
    parser.add_argument("--no-heldout", action="store_true", help="skip the held-out command comparison")
    parser.add_argument("--heldout-rows", type=int, default=100_000)
    parser.add_argument("--heldout-seed", type=int, default=7)
    args = parser.parse_args(argv)
    data = args.data or default_data(args.rows)
    ensure_data(data, args.rows, args.regenerate)
    print(f"load average at the start: {load_average()}")

    hledger = None if args.no_hledger else time_hledger(data)
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        figures = run(f"sqlite:///{Path(tmp) / 'bench.db'}", data, "SQLite")
    raw = None if args.no_raw else raw_load(data)
    held = None if args.no_heldout else heldout(args.heldout_rows, args.heldout_seed)
    report(f"SQLite, {args.rows:,} rows", figures, raw, hledger, held)

    if args.postgres:
        with postgres_database(args.postgres, "bench_ledger") as url:
            if url is None:
                print("\nPostgreSQL: no server binaries found, skipped")
                return
            figures = run(url, data, "PostgreSQL")
            report(f"PostgreSQL, {args.rows:,} rows", figures, None, None, None)


if __name__ == "__main__":
    main()
