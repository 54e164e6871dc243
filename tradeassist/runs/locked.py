"""Surviving "database is locked": a bounded retry around each of the runner's transactions.

SQLite has one writer at a time. Every connection waits up to its busy timeout (10 s,
``db.engine``) for the write lock; a writer that holds it longer (a reviewer on the network
while a recommendation is recorded, a slow machine with four runners and their kernels) makes
the others' ``BEGIN IMMEDIATE`` fail with ``sqlite3.OperationalError: database is locked``.

``retry_locked(work)`` runs ``work`` (one whole transaction) again when that happens, after
0.1 s, 0.2 s, 0.4 s ... (doubling, at most 2 s, each with up to 50 % random jitter so that
waiting runners do not retry in step), until ``LOCK_RETRY_SECONDS`` (30 s; the setting
``TRADEASSIST_LOCK_RETRY_SECONDS``) have passed since the first failure; the attempt started
last may itself wait out the busy timeout, so the whole is at most about 40 s. Then
``DatabaseBusy`` says so in one line (the CLI prints it and exits 2).
Retrying is safe because the lock is refused at ``BEGIN IMMEDIATE``, before the transaction
has read or written anything, and a failed transaction is rolled back whole.

Only SQLite's "locked" and "busy" errors are retried; PostgreSQL waits for row locks itself,
and every other error is raised at once.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError

from ..core.errors import TradeAssistError

log = logging.getLogger(__name__)

LOCK_RETRY_SECONDS = 30.0
FIRST_DELAY = 0.1
MAX_DELAY = 2.0

T = TypeVar("T")


class DatabaseBusy(TradeAssistError):
    """The database stayed locked by other writers."""

    exit_code = 2


def is_locked(exc: BaseException) -> bool:
    """SQLite refused the lock ("database is locked", "database table is locked", busy)."""
    if not isinstance(exc, OperationalError) or not isinstance(exc.orig, sqlite3.OperationalError):
        return False
    message = str(exc.orig).lower()
    return "locked" in message or "busy" in message


def retry_locked(
    work: Callable[[], T],
    *,
    what: str = "the database",
    budget: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``work()``, run again while SQLite says the database is locked, for ``budget`` seconds
    (default: the ``lock_retry_seconds`` setting) after the first refusal; then ``DatabaseBusy``."""
    if budget is None:
        from ..core.config import settings

        budget = settings().lock_retry_seconds
    first: float | None = None
    delay = FIRST_DELAY
    attempts = 0
    while True:
        attempts += 1
        try:
            return work()
        except OperationalError as exc:
            if not is_locked(exc):
                raise
            now = time.monotonic()
            first = now if first is None else first
            waited = now - first
            if waited >= budget:
                raise DatabaseBusy(
                    f"{what}: the database stayed locked by other writers ({attempts} attempts over "
                    f"{waited:.0f} s after the first refusal); nothing was left half-written, "
                    "run the command again"
                ) from None
            pause = min(delay, MAX_DELAY) * random.uniform(0.5, 1.0)
            log.info("%s: database is locked; attempt %d again in %.2f s", what, attempts + 1, pause)
            sleep(min(pause, budget - waited))
            delay *= 2
