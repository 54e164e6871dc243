"""``tradeassist ui`` as the tests run it: a demo database with one DRAFT recommendation and two
more people (``bob``, who shares the demo portfolio, and ``ann``, who does not), served on a
free port; the one-time address it prints; stopping it with SIGTERM as a person's Ctrl-C would."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support.ports import free_port
from tests.support.recommendations import store
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.demo import DEMO_PORTFOLIO
from tradeassist.services import identity, portfolios

BOB, BOB_PASSWORD = "bob@example.com", "bob-password-123"  # shares the demo portfolio
ANN, ANN_PASSWORD = "ann@example.com", "ann-password-123"  # sees no portfolio


@dataclass(frozen=True)
class Served:
    login_url: str  # the one-time address ``tradeassist ui`` printed
    base: str  # http://127.0.0.1:PORT
    port: int
    db_url: str
    rid: int  # the DRAFT recommendation
    log: Path  # the command's stderr (and so Voilà's log)

    @property
    def token(self) -> str:
        return self.login_url.split("?token=", 1)[1]


def demo_with_people(database: Path, demo_template: Path) -> tuple[str, int]:
    """A fresh copy of the demo with a DRAFT recommendation (buying with a contribution, as the
    demo's monthly allocation does: within every rule, a PASS), bob and ann."""
    shutil.copy(demo_template, database)
    url = f"sqlite:///{database}"
    engine = create_db_engine(url)
    try:
        rid = store(engine, "MONTHLY_ALLOC", contribution="1000")
        with unit_of_work(engine) as s:
            admin = identity.bootstrap_admin(s)
            assert admin is not None
            identity.add_user(s, actor=admin, email=BOB, password=BOB_PASSWORD)
            identity.add_user(s, actor=admin, email=ANN, password=ANN_PASSWORD)
            portfolios.share_portfolio(s, actor=admin, name=DEMO_PORTFOLIO, email=BOB)
    finally:
        engine.dispose()
    return url, rid


def printed_url(server: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> str:
    """The address ``tradeassist ui`` prints on stdout once the server answers."""
    assert server.stdout is not None
    ready, _, _ = select.select([server.stdout], [], [], timeout)
    line = server.stdout.readline().decode().strip() if ready else ""
    if not line:
        server.poll()
        why = f"exit code {server.returncode}" if server.returncode is not None else "still running"
        pytest.fail(f"tradeassist ui printed no URL within {timeout:.0f} s ({why}):\n{log.read_text()}")
    return line


@contextmanager
def serving(folder: Path, demo_template: Path) -> Iterator[Served]:
    """``tradeassist ui --no-browser`` on the demo with people, as the bootstrap admin (no
    ``TRADEASSIST_USER``); stopped with SIGTERM afterwards, which must free the port."""
    db_url, rid = demo_with_people(folder / "demo.db", demo_template)
    port = free_port()
    log = folder / "ui.log"
    env = dict(os.environ, TRADEASSIST_DB_URL=db_url)
    env.pop("TRADEASSIST_USER", None)
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "tradeassist", "ui", "--port", str(port), "--no-browser"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=sink,
            start_new_session=True,
        )
    try:
        address = printed_url(server, log)
        assert re.fullmatch(rf"http://127\.0\.0\.1:{port}/\?token=[A-Za-z0-9_-]{{40,}}", address), address
        yield Served(address, f"http://127.0.0.1:{port}", port, db_url, rid, log)
    finally:
        server.send_signal(signal.SIGTERM)  # the command stops Voilà and its kernels, then exits
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
            pytest.fail(f"tradeassist ui did not stop on SIGTERM:\n{log.read_text()}")
        assert code == 0, f"{code}: {log.read_text()!r} {log}"
        with socket.socket() as probe:  # nothing listens on the port any more: Voilà went with it
            # (connections the server closed may linger in TIME_WAIT: SO_REUSEADDR binds past them)
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))
