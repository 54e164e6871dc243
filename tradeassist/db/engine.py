"""The engine factory and the transaction boundary.

No engine exists at import time: ``get_engine`` builds one per URL on first use.
Every SQLite connection turns on foreign keys, WAL, a 10 s busy timeout and recursive
triggers (without which ``INSERT OR REPLACE`` would silently rewrite an append-only row),
and write transactions begin with ``BEGIN IMMEDIATE``: a deferred transaction that reads
then writes ignores the busy timeout and fails with "database is locked", or lets two
writers read the same balance.

Services take the session and never commit; ``unit_of_work`` is the one place that does.

SQLite has no users of its own: whoever can read the file has the whole book. A database
file this module creates is created 0600, and a directory it creates for it 0700 (never
loosened by the umask, never a directory that exists already); ``secure_sqlite_file`` makes
an existing file, and its WAL and shared-memory files, 0600 (``tradeassist init`` does).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session, create_engine

from ..core import jsonutil
from ..core.config import resolve_db_url, settings
from ..core.errors import AccessDenied

SQLITE_BUSY_TIMEOUT_MS = 10_000  # the default; TRADEASSIST_SQLITE_BUSY_TIMEOUT_MS sets another
_READONLY = "tradeassist_readonly"

_engines: dict[str, Engine] = {}
_lock = threading.Lock()

DenialHook = Callable[[Session, AccessDenied], object]
_Hook = TypeVar("_Hook", bound=DenialHook)
_denial_hooks: list[DenialHook] = []


def on_access_denied(callback: _Hook) -> _Hook:
    """Call ``callback(session, error)`` whenever a unit of work ends with ``AccessDenied``.

    It runs after the refused work was rolled back, in a transaction of its own that is
    committed, so what it writes stays. The database layer knows nothing above it: the audit
    service registers itself here when imported (``services.audit.record_denial``).
    Registering the same callback twice keeps one. Returns ``callback`` (usable as a decorator).
    """
    if callback not in _denial_hooks:
        _denial_hooks.append(callback)
    return callback


def _sqlite_connect_hook(busy_ms: int) -> Callable[[Any, Any], None]:
    """The pragmas every SQLite connection of ours starts with (``busy_ms``: the busy timeout)."""

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        _on_sqlite_connect(dbapi_connection, record, busy_ms)

    return on_connect


def _on_sqlite_connect(dbapi_connection: Any, _record: Any, busy_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> None:
    # Autocommit at the driver level so that SQLAlchemy's "begin" event issues our BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA recursive_triggers=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _on_sqlite_begin(conn: Any) -> None:
    readonly = conn.get_execution_options().get(_READONLY, False)
    conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def create_db_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Build a new engine for ``url`` (resolved as the CLI does) with our connection rules."""
    url = resolve_db_url(url)
    parsed = make_url(url)
    options: dict[str, Any] = {
        "json_serializer": jsonutil.dumps,
        "json_deserializer": jsonutil.loads_decimal,
    }
    busy_ms = SQLITE_BUSY_TIMEOUT_MS
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            _create_private(path)
        busy_ms = settings().sqlite_busy_timeout_ms
        options["connect_args"] = {"timeout": busy_ms / 1000, "check_same_thread": False}
        options["poolclass"] = NullPool if kwargs.pop("nullpool", False) else None
        if options["poolclass"] is None:
            del options["poolclass"]
    else:
        options["pool_pre_ping"] = True
    options.update(kwargs)
    engine = create_engine(url, **options)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_connect_hook(busy_ms))
        event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None: another database, memory, or a URI)."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return Path(database).expanduser()


def _create_private(path: Path) -> None:
    """Create the directories missing above ``path`` 0700, and the file itself 0600 if missing."""
    missing = []
    directory = path.parent
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:  # made meanwhile, by someone else: theirs
            continue
        directory.chmod(0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)  # an empty file is an empty SQLite database
    path.chmod(0o600)


def secure_sqlite_file(engine: Engine) -> None:
    """Make a SQLite database file (and its -wal and -shm files) readable by its owner only."""
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    if path is None:
        return
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            candidate.chmod(0o600)
        except FileNotFoundError:
            continue
        except PermissionError:  # someone else's file: theirs to protect
            continue


def get_engine(url: str | None = None) -> Engine:
    """The shared engine for ``url`` (one per resolved URL per process)."""
    resolved = resolve_db_url(url)
    with _lock:
        engine = _engines.get(resolved)
        if engine is None:
            engine = _engines[resolved] = create_db_engine(resolved)
        return engine


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def unit_of_work(engine: Engine | str | None = None, *, readonly: bool = False) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error.

    An ``AccessDenied`` raised inside is handed to the ``on_access_denied`` callbacks (the
    audit) after the rollback, in a transaction of its own, so that the denial is recorded
    even though the work it refused is not.
    """
    if not isinstance(engine, Engine):
        engine = get_engine(engine)
    bind = engine.execution_options(**{_READONLY: True}) if readonly else engine
    session = Session(bind, expire_on_commit=False, autoflush=True)
    try:
        yield session
        if not readonly:
            session.commit()
        # A read-only unit ends with close(): the pool rolls the connection back, and the
        # loaded objects stay readable (a rollback would expire them).
    except BaseException as exc:
        session.rollback()
        _audit_denial(engine, exc)
        raise
    finally:
        session.close()


def _audit_denial(engine: Engine, exc: BaseException) -> None:
    if not isinstance(exc, AccessDenied) or exc.context.get("audited") or not _denial_hooks:
        return
    with Session(engine, expire_on_commit=False) as session:
        for callback in _denial_hooks:
            callback(session, exc)
        session.commit()
    exc.context["audited"] = True
