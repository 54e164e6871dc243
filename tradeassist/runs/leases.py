"""Leases: how a runner says it is still working on a claimed run, and how another one tells that
it died.

* **Who** (``Worker``): ``host:pid`` for people (``task_run_claims.worker``), and for machines
  the process's identity ``<boot id>/<pid namespace>/<pid>/<start time>`` (``worker_process``;
  Linux, read from ``/proc``; None elsewhere).
* **The lease**: a claim is made with ``lease_expires_at`` = now + the lease
  (``TRADEASSIST_RUN_LEASE_SECONDS``, default 300 s), and ``Heartbeat`` renews it every fifth of
  the lease while the run executes and is recorded, in a thread of its own, so a notebook cell
  that runs for an hour keeps its lease. A worker that is killed, loses its machine or is cut off
  from the database stops renewing.
* **Dead or alive** (``lapse``): a claim whose run was not recorded is taken for dead when its
  lease has expired, or sooner when its process ran on this machine (same boot, same pid
  namespace) and is gone (no such pid, a zombie, or another process with that pid). A process
  still alive on this machine is never taken for dead, however old its lease: a suspended
  laptop's run resumes and records itself (stop it, and the next ``run-due`` fails and retries
  its run). Elsewhere only the lease counts, so machines sharing a PostgreSQL database should
  keep their clocks within a small part of the lease (NTP does).
* A claim made before leases existed (no ``lease_expires_at``) expires a day after it was
  claimed.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from types import TracebackType

from sqlalchemy.engine import Engine

from ..core.config import settings
from ..core.errors import ConfigError
from ..core.timeutil import ensure_utc, utcnow
from ..db.engine import unit_of_work
from ..db.models import TaskRunClaim
from ..services import run_records

log = logging.getLogger(__name__)

LEASE_ENV = "TRADEASSIST_RUN_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 300.0
MIN_LEASE_SECONDS = 1.0
MAX_LEASE_SECONDS = 24 * 3600.0
RENEWALS_PER_LEASE = 5
LEGACY_LEASE = timedelta(days=1)  # claims made before leases existed

ALIVE = "alive"
GONE = "gone"
UNKNOWN = "unknown"


def lease_seconds() -> float:
    """The lease this process takes: ``TRADEASSIST_RUN_LEASE_SECONDS``, else 300 s."""
    raw = (settings().run_lease_seconds or "").strip()
    if not raw:
        return DEFAULT_LEASE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not MIN_LEASE_SECONDS <= value <= MAX_LEASE_SECONDS:
        raise ConfigError(
            f"{LEASE_ENV}={raw!r}: expected seconds from {MIN_LEASE_SECONDS:g} to {MAX_LEASE_SECONDS:g}"
        )
    return value


# --------------------------------------------------------------------------------------------
# Who holds a claim
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Worker:
    name: str  # host:pid
    process: str | None  # boot/pidns/pid/start, for the liveness check on this machine


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


@lru_cache(maxsize=1)
def _machine() -> tuple[str, str] | None:
    """This process's boot id and pid namespace (None: no /proc to tell)."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.readlink("/proc/self/ns/pid")  # e.g. pid:[4026531836]
    except OSError:
        return None
    digits = "".join(ch for ch in namespace if ch.isdigit())
    if not boot or not digits:
        return None
    return boot, digits


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks after boot); None when there is no such live
    process (a zombie has finished)."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat or ")" not in stat:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if len(fields) < 20 or fields[0] in ("Z", "X", "x"):
        return None
    return fields[19]


def process_identity(pid: int | None = None) -> str | None:
    machine = _machine()
    pid = os.getpid() if pid is None else pid
    start = _start_time(pid)
    if machine is None or start is None:
        return None
    return f"{machine[0]}/{machine[1]}/{pid}/{start}"


def this_worker() -> Worker:
    return Worker(f"{socket.gethostname()}:{os.getpid()}"[:200], process_identity())


def process_state(identity: str | None) -> str:
    """ALIVE or GONE for a process of this machine (same boot, same pid namespace); UNKNOWN for
    any other, or without an identity."""
    parts = (identity or "").split("/")
    machine = _machine()
    if len(parts) != 4 or machine is None or (parts[0], parts[1]) != machine or not parts[2].isdigit():
        return UNKNOWN
    return ALIVE if _start_time(int(parts[2])) == parts[3] else GONE


def split_worker(worker: str | None) -> tuple[str, str | None]:
    """(host, pid) of a ``host:pid`` worker name."""
    host, _, pid = (worker or "").rpartition(":")
    if host and pid.isdigit():
        return host, pid
    return worker or "unknown", None


# --------------------------------------------------------------------------------------------
# Dead or alive
# --------------------------------------------------------------------------------------------
def expires_at(claim: TaskRunClaim) -> datetime:
    if claim.lease_expires_at is not None:
        return ensure_utc(claim.lease_expires_at)
    return ensure_utc(claim.claimed_at) + LEGACY_LEASE


@dataclass(frozen=True)
class Lapse:
    """Why a claimed run is taken for dead."""

    worker: str | None
    lease_expires_at: datetime
    expired: bool  # the lease ran out (else: its process is known to be gone, before that)

    def describe(self) -> str:
        host, pid = split_worker(self.worker)
        who = f"the worker ({host}, pid {pid})" if pid else f"the worker ({host})"
        when = self.lease_expires_at.isoformat(timespec="seconds")
        if self.expired:
            return f"{who} stopped without finishing; lease expired at {when}"
        return f"{who} stopped without finishing: its process has ended (lease until {when})"


def lapse(claim: TaskRunClaim, clock: datetime) -> Lapse | None:
    """Why ``claim`` (whose run is not recorded) is dead at ``clock``; None while it may live."""
    state = process_state(claim.worker_process)
    if state == ALIVE:
        return None
    expiry = expires_at(claim)
    if ensure_utc(clock) >= expiry:
        return Lapse(claim.worker, expiry, expired=True)
    if state == GONE:
        return Lapse(claim.worker, expiry, expired=False)
    return None


# --------------------------------------------------------------------------------------------
# The heartbeat
# --------------------------------------------------------------------------------------------
class Heartbeat:
    """Renews a claim's lease every fifth of it, in a thread, while the ``with`` block runs.

    A renewal that fails (the database locked or unreachable) is logged and tried again at the
    next beat: four may fail before the lease runs out.
    """

    def __init__(self, engine: Engine, run_id: int, lease: float) -> None:
        self.engine = engine
        self.run_id = run_id
        self.lease = lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{run_id}", daemon=True)

    def renew(self) -> None:
        with unit_of_work(self.engine) as session:
            run_records.renew_lease(session, self.run_id, utcnow() + timedelta(seconds=self.lease))

    def _beat(self) -> None:
        while not self._stop.wait(self.lease / RENEWALS_PER_LEASE):
            try:
                self.renew()
            except Exception as exc:  # the next beat tries again
                log.warning("run %s: lease not renewed: %s: %s", self.run_id, type(exc).__name__, exc)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
