"""Benchmark: bulk price ingest with quality checks, and the latest good close per listing.

Run: ``.venv/bin/python bench/bench_prices.py [--points N] [--table-points N] [--listings N] [--no-pg]``

1. **Ingest**: ``prices.ingest_series`` of N daily points (default 1,000,000) on a pence
   listing, with a few stretches in pounds planted (the checks flag them and raise an alert),
   from parsed ``PriceBar`` values to the committed transaction: normalise, check, look up
   existing keys, insert, alert, audit. Compared, in the same run, with a plain insert of the
   same rows into a table of the same shape (same columns, constraints and indexes): SQLite
   ``sqlite3.executemany``, PostgreSQL ``COPY``. Parsing the file is the provider's cost and is
   not timed (the series is built in memory).
2. **Latest good close**: ``prices.latest_good_prices`` for L listings (default 50) as of a
   date, in a table of M points (default 5,000,000), with flagged points at the end of some
   listings so the read has to skip them.

PostgreSQL runs when ``TRADEASSIST_BENCH_PG_URL`` points at a server (a database is created
and dropped there), or else on a throwaway cluster when the server binaries exist (as the tests
do); ``--no-pg`` skips it.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.providers.prices import PriceBar, PriceSeries
from tradeassist.services import identity, prices, registry
from tradeassist.services.market import bulk_insert, close_texts, copy_text, source_id
from tradeassist.services.setup import init_database

COLUMNS = prices.POINT_COLUMNS  # the rows our ingest writes, so both inserts write the same
START = date(1900, 1, 1)


def fresh_database(url: str) -> Engine:
    os.environ.setdefault("TRADEASSIST_ADMIN_PASSWORD", "bench-password-123")
    engine = create_db_engine(url)
    init_database(engine)
    return engine


def add_listing(engine: Engine, ticker: str, isin: str = "GB0004082847") -> int:
    with unit_of_work(engine) as s:
        admin = identity.bootstrap_admin(s)
        if registry.find_instrument(s, isin) is None:
            registry.add_instrument(s, actor=admin, isin=isin, instrument_type="STOCK")
        listing = registry.add_listing(
            s, actor=admin, isin=isin, ticker=ticker, exchange="XLON", currency="GBP", quote_scale="GBX"
        )
        return listing.listing_id  # type: ignore[return-value]


def build_series(n: int, seed: int = 1) -> PriceSeries:
    """N daily closes in pence (a random walk), with 50 short stretches and one of 139 days in pounds."""
    rng = random.Random(seed)
    wrong: set[int] = set()
    for _ in range(50):
        start = rng.randrange(n - 3)
        wrong.update(range(start, start + rng.randint(1, 3)))
    wrong.update(range(n // 2, min(n, n // 2 + 139)))
    pence, bars = 100_000, []
    for i in range(n):
        pence = max(1_000, pence + rng.randint(-1_500, 1_500))  # hundredths of a penny
        close = Decimal(pence).scaleb(-4 if i in wrong else -2)
        bars.append(PriceBar(START + timedelta(days=i), close, None, None, "stooq"))
    return PriceSeries("stooq", "<bench>", tuple(bars))


def time_ingest(engine: Engine, listing_id: int, series: PriceSeries) -> tuple[float, prices.IngestResult]:
    started = time.perf_counter()
    with unit_of_work(engine) as s:
        admin = identity.bootstrap_admin(s)
        listing = s.get(registry.InstrumentListing, listing_id)
        result = prices.ingest_series(s, actor=admin, listing=listing, series=series)
    return time.perf_counter() - started, result


# --------------------------------------------------------------------------------------------
# SQLite
# --------------------------------------------------------------------------------------------
# What a plain insert into a copy of the table keeps: the table itself (its triggers, indexes
# and keys: what the ingest pays too), then the floors without parts of it.
FLOORS = {
    "same table": ("table", "index", "trigger"),
    "no append-only triggers": ("table", "index"),
    "no triggers, lean table (no keys)": ("lean",),
}
LEAN = (
    "CREATE TABLE price_points (price_point_id INTEGER PRIMARY KEY, listing_id INTEGER, as_of TEXT, "
    "source_id INTEGER, is_close BOOLEAN, raw_price TEXT, raw_currency TEXT, raw_quote_scale TEXT, "
    "normalized_price_base TEXT, quality_flags TEXT, usable BOOLEAN, revision INTEGER)"
)


def sqlite_plain_insert(
    db_path: Path, rows: list[tuple], keep: tuple[str, ...] = FLOORS["same table"]
) -> float:
    """``sqlite3.executemany`` of ``rows`` into a copy of the price_points schema (same pragmas),
    with the parts of it named in ``keep`` (``lean``: a table of the same columns, no keys)."""
    source = sqlite3.connect(db_path)
    ddl = [
        sql
        for kind, sql in source.execute(
            "SELECT type, sql FROM sqlite_master WHERE tbl_name = 'price_points' AND sql IS NOT NULL "
            "ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END"
        )
        if kind in keep
    ]
    if "lean" in keep:
        ddl = [LEAN]
    source.close()
    with tempfile.TemporaryDirectory() as tmp:
        plain = sqlite3.connect(Path(tmp) / "plain.db", isolation_level=None)
        plain.execute("PRAGMA journal_mode=WAL")
        plain.execute("PRAGMA synchronous=NORMAL")
        for statement in ddl:
            plain.execute(statement)
        marks = ", ".join("?" for _ in COLUMNS)
        started = time.perf_counter()
        plain.execute("BEGIN IMMEDIATE")
        plain.executemany(f"INSERT INTO price_points ({', '.join(COLUMNS)}) VALUES ({marks})", rows)
        plain.execute("COMMIT")
        elapsed = time.perf_counter() - started
        plain.close()
    return elapsed


def stored_rows_sqlite(db_path: Path, listing_id: int) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    rows = conn.execute(
        f"SELECT {', '.join(COLUMNS)} FROM price_points WHERE listing_id = ? ORDER BY price_point_id",
        (listing_id,),
    ).fetchall()
    conn.close()
    return rows


def bench_ingest_sqlite(n: int, series: PriceSeries, workdir: Path, repeats: int) -> None:
    """Ingest and plain insert alternate, ``repeats`` times each, into fresh databases; the best
    of each is compared (the machine is shared: the best is the least disturbed)."""
    ingests: list[float] = []
    plains: list[float] = []
    rows: list[tuple] | None = None
    for attempt in range(repeats):
        db_path = workdir / f"ingest{attempt}.db"
        engine = fresh_database(f"sqlite:///{db_path}")
        listing_id = add_listing(engine, "AZN")
        if rows is not None:
            plains.append(sqlite_plain_insert(db_path, rows))
        elapsed, result = time_ingest(engine, listing_id, series)
        ingests.append(elapsed)
        rows = stored_rows_sqlite(db_path, listing_id)
        assert len(rows) == n
        plains.append(sqlite_plain_insert(db_path, rows))
        if attempt == repeats - 1:
            floors = {
                label: min(sqlite_plain_insert(db_path, rows, keep) for _ in range(repeats))
                for label, keep in FLOORS.items()
            }
        engine.dispose()
        db_path.unlink()
    report("SQLite", n, ingests, plains, "sqlite3.executemany into the same table", result)
    for label, seconds in floors.items():
        print(f"  floor, {label}: {seconds:.2f} s = {n / seconds:,.0f} rows/s")
    best = min(ingests)
    print(
        f"  targets: >= 270,000 points/s: {'PASS' if n / best >= 270_000 else 'FAIL'} ({n / best:,.0f}); "
        f"within 1.5x of the plain insert into the same table: "
        f"{'PASS' if best / min(plains) <= 1.5 else 'FAIL'} ({best / min(plains):.2f}x)"
    )


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------
def pg_server() -> tuple[str, object | None] | None:
    url = os.environ.get("TRADEASSIST_BENCH_PG_URL")
    if url:
        return url, None
    from tests.support import pg

    cluster = pg.start_cluster()
    if cluster is None:
        return None
    return cluster.url, cluster


def pg_database(server_url: str, name: str) -> str:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(server_url: str, name: str) -> None:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def pg_copy(engine: Engine, body: str, table: str) -> float:
    started = time.perf_counter()
    with engine.begin() as conn:
        cursor = conn.connection.cursor()
        with cursor.copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            copy.write(body)
    return time.perf_counter() - started


def pg_plain_copies(server_url: str, rows: list[tuple]) -> tuple[float, float]:
    """``COPY`` of ``rows`` into price_points itself (same table: constraints, foreign keys,
    indexes) in a fresh database, and into a table ``LIKE price_points INCLUDING ALL`` (the
    same but without foreign keys)."""
    url = pg_database(server_url, "ta_bench_copy")
    engine = fresh_database(url)
    try:
        add_listing(engine, "AZN")
        with unit_of_work(engine) as s:
            source_id(s, "stooq")
        body = copy_text(rows, [COLUMNS.index("as_of")])
        same = pg_copy(engine, body, "price_points")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE plain_points (LIKE price_points INCLUDING ALL)")
        no_fk = pg_copy(engine, body, "plain_points")
    finally:
        engine.dispose()
        drop_pg_database(server_url, "ta_bench_copy")
    return same, no_fk


def stored_rows_pg(engine: Engine, listing_id: int) -> list[tuple]:
    with engine.connect() as conn:
        result = conn.exec_driver_sql(
            "SELECT listing_id, to_char(as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), source_id, "
            "is_close, raw_price::text, raw_currency, raw_quote_scale, normalized_price_base::text, "
            "quality_flags::text, usable, revision "
            f"FROM price_points WHERE listing_id = {int(listing_id)} ORDER BY price_point_id"
        )
        return [tuple(row) for row in result]


def bench_ingest_pg(server_url: str, n: int, series: PriceSeries, repeats: int) -> None:
    ingests: list[float] = []
    plains: list[tuple[float, float]] = []
    rows: list[tuple] | None = None
    for _ in range(repeats):
        if rows is not None:
            plains.append(pg_plain_copies(server_url, rows))
        url = pg_database(server_url, "ta_bench_ingest")
        engine = fresh_database(url)
        try:
            listing_id = add_listing(engine, "AZN")
            elapsed, result = time_ingest(engine, listing_id, series)
            ingests.append(elapsed)
            rows = stored_rows_pg(engine, listing_id)
            assert len(rows) == n
        finally:
            engine.dispose()
            drop_pg_database(server_url, "ta_bench_ingest")
        plains.append(pg_plain_copies(server_url, rows))
    report("PostgreSQL", n, ingests, [p[0] for p in plains], "COPY into the same table", result)
    best = min(ingests)
    print(
        f"  targets: >= 300,000 points/s: {'PASS' if n / best >= 300_000 else 'FAIL'} ({n / best:,.0f}); "
        f"within 1.5x of COPY into the same table: "
        f"{'PASS' if best / min(p[0] for p in plains) <= 1.5 else 'FAIL'} "
        f"({best / min(p[0] for p in plains):.2f}x)"
    )
    no_fk = min(p[1] for p in plains)
    print(
        f"  (COPY into a copy of the table without its foreign keys: {no_fk:.2f} s "
        f"= {n / no_fk:,.0f} rows/s; "
        f"ingest / that = {min(ingests) / no_fk:.2f}x: checking listing_id and source_id costs PostgreSQL "
        f"{min(p[0] for p in plains) - no_fk:.2f} s of the plain COPY)"
    )


def report(
    label: str, n: int, ingests: list[float], plains: list[float], baseline: str, result: prices.IngestResult
) -> None:
    elapsed, plain = min(ingests), min(plains)
    print(
        f"{label} ingest: {n:,} points normalised, checked and stored in {elapsed:.2f} s "
        f"= {n / elapsed:,.0f} points/s "
        f"({result.flagged.get('scale_suspect', 0):,} flagged, {len(result.alert_ids)} alert); "
        f"plain {baseline} of the same rows: {plain:.2f} s = {n / plain:,.0f} rows/s; "
        f"ratio {elapsed / plain:.2f}x (target <= 1.5x; best of {len(ingests)} and {len(plains)}, "
        f"all: {', '.join(f'{t:.1f}' for t in ingests)} s vs {', '.join(f'{t:.1f}' for t in plains)} s)"
    )


# --------------------------------------------------------------------------------------------
# Latest good close
# --------------------------------------------------------------------------------------------
def fill_table(engine: Engine, listings: int, total: int) -> tuple[list[int], date]:
    """``total`` points over ``listings`` listings, written straight to the table (not timed);
    every fifth listing ends with 30 flagged days, and one listing has re-checked points."""
    per_listing = total // listings
    ids = [add_listing(engine, f"L{k:03d}") for k in range(listings)]
    with unit_of_work(engine) as s:
        src = source_id(s, "stooq")
    last = date(2025, 12, 31)  # realistic dates: the time zone rules beyond 2037 are slower to apply
    days = [last - timedelta(days=per_listing - 1 - i) for i in range(per_listing)]
    stamps = close_texts(days)
    for k, lid in enumerate(ids):
        flagged_from = per_listing - 30 if k % 5 == 0 else per_listing
        rows = []
        for i, stamp in enumerate(stamps):
            bad = i >= flagged_from
            price = f"{1000 + (i % 997)}.5"
            rows.append(
                (
                    lid,
                    stamp,
                    src,
                    True,
                    price,
                    "GBP",
                    "GBX",
                    None if bad else f"{10 + (i % 997) / 100:.3f}5",
                    '["scale_suspect"]' if bad else "[]",
                    not bad,
                    0,
                )
            )
        with unit_of_work(engine) as s:
            bulk_insert(s, "price_points", COLUMNS, rows, timestamp_columns=("as_of",))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE price_points")
        else:
            conn.exec_driver_sql("ANALYZE")
    return ids, days[-1]


def bench_latest(label: str, engine: Engine, listings: int, total: int, repeats: int = 30) -> None:
    started = time.perf_counter()
    ids, last_day = fill_table(engine, listings, total)
    filled = time.perf_counter() - started
    as_of = last_day - timedelta(days=3)
    timings = []
    with unit_of_work(engine, readonly=True) as s:
        for _ in range(repeats):
            t0 = time.perf_counter()
            latest = prices.latest_good_prices(s, ids, as_of)
            timings.append(time.perf_counter() - t0)
    assert len(latest) == listings
    skipped = [lid for k, lid in enumerate(ids) if k % 5 == 0]
    assert all(latest[lid].as_of < last_day - timedelta(days=29) for lid in skipped)
    print(
        f"{label} latest good close: {listings} listings in a {total:,}-point table "
        f"(filled in {filled:.0f} s): median {statistics.median(timings) * 1000:.2f} ms, "
        f"best {min(timings) * 1000:.2f} ms over {repeats} calls "
        f"(target <= 5 ms; {len(skipped)} listings skip 30 flagged days)"
    )


def explain_sqlite(engine: Engine) -> None:
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT p2.as_of FROM price_points p2 "
            "LEFT OUTER JOIN price_point_rechecks r2 ON r2.price_point_id = p2.price_point_id "
            "LEFT OUTER JOIN price_supersessions s2 ON s2.price_point_id = p2.price_point_id "
            "WHERE p2.listing_id = 1 AND p2.is_close = 1 "
            "AND p2.as_of <= '2100-01-01' AND coalesce(r2.usable, p2.usable) = 1 "
            "AND s2.price_point_id IS NULL ORDER BY p2.as_of DESC LIMIT 1"
        ).all()
    print("SQLite plan per listing: " + "; ".join(row[-1] for row in plan))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--table-points", type=int, default=5_000_000)
    parser.add_argument("--listings", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2, help="ingest runs (each against plain inserts)")
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    series = build_series(args.points)
    print(
        f"built {args.points:,} bars in {time.perf_counter() - started:.1f} s (not timed: the parser's share)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bench_ingest_sqlite(args.points, series, workdir, args.repeats)
        engine = fresh_database(f"sqlite:///{workdir / 'latest.db'}")
        bench_latest("SQLite", engine, args.listings, args.table_points)
        explain_sqlite(engine)
        engine.dispose()

    if args.no_pg:
        return
    server = pg_server()
    if server is None:
        print("PostgreSQL skipped: set TRADEASSIST_BENCH_PG_URL or install the server binaries")
        return
    server_url, cluster = server
    try:
        bench_ingest_pg(server_url, args.points, series, args.repeats)
        url = pg_database(server_url, "ta_bench_latest")
        engine = fresh_database(url)
        try:
            bench_latest("PostgreSQL", engine, args.listings, args.table_points)
        finally:
            engine.dispose()
            drop_pg_database(server_url, "ta_bench_latest")
    finally:
        if cluster is not None:
            cluster.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
