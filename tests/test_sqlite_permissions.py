"""SQLite's boundary is the database file: created 0600 in a directory created 0700, whatever
the umask, and ``tradeassist init`` makes an existing file 0600 too. A directory that exists
already is left as it is (it may be anyone's: a home, /tmp)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tradeassist.db import migrate
from tradeassist.db.engine import create_db_engine

TRADEASSIST = [sys.executable, "-m", "tradeassist"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_on_a_fresh_home_makes_the_file_0600_and_its_directory_0700(tmp_path: Path) -> None:
    home = tmp_path / "new" / "home"
    before = mode(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env["TRADEASSIST_HOME"] = str(home)
    done = subprocess.run(
        [*TRADEASSIST, "init"], env=env, capture_output=True, text=True, timeout=180, umask=0o022
    )
    assert done.returncode == 0, done.stderr
    database = home / "tradeassist.db"
    assert mode(home) == 0o700 and mode(home.parent) == 0o700
    assert mode(database) == 0o600
    for sidecar in (database.with_name("tradeassist.db-wal"), database.with_name("tradeassist.db-shm")):
        if sidecar.exists():
            assert mode(sidecar) == 0o600, sidecar
    assert mode(tmp_path) == before  # untouched: it existed


def test_a_permissive_umask_does_not_widen_them(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        engine = create_db_engine(f"sqlite:///{tmp_path / 'open' / 'x.db'}")
        migrate.upgrade(engine)
        engine.dispose()
    finally:
        os.umask(previous)
    assert mode(tmp_path / "open") == 0o700
    assert mode(tmp_path / "open" / "x.db") == 0o600


def test_init_tightens_an_existing_file_but_not_an_existing_directory(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    database = shared / "old.db"
    database.touch()
    database.chmod(0o644)
    engine = create_db_engine(f"sqlite:///{database}")
    assert mode(database) == 0o644  # opening it changes nothing
    migrate.upgrade(engine)  # what init runs
    engine.dispose()
    assert mode(database) == 0o600
    assert mode(shared) == 0o755


def test_the_write_ahead_log_and_shared_memory_files_are_0600_too(tmp_path: Path) -> None:
    """While a connection is open, the book's latest writes live in the -wal file: it must be
    as private as the database (SQLite gives it the database file's mode)."""
    database = tmp_path / "book" / "x.db"
    previous = os.umask(0)
    try:
        engine = create_db_engine(f"sqlite:///{database}")
        migrate.upgrade(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE TEMP TABLE t (x)")
            conn.exec_driver_sql("SELECT count(*) FROM users").fetchall()
            sidecars = [database.with_name(f"x.db-{end}") for end in ("wal", "shm")]
            assert all(s.exists() for s in sidecars), sorted(p.name for p in database.parent.iterdir())
            assert [mode(s) for s in sidecars] == [0o600, 0o600]
        engine.dispose()
    finally:
        os.umask(previous)
