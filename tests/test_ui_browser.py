"""The approval view in a real browser: ``tradeassist ui`` serves it with Voilà, Debian's
Chromium (never a downloaded one) loads it, approves the demo's recommendation, and the
database says REVIEWED with a ``RECO_APPROVED`` audit row.

Skipped, with the reason, where Chromium is not installed (``.ci/run`` installs it). With
``TRADEASSIST_SCREENSHOT_DIR`` set, the screenshot is also saved there as ``approval.png``
(that is how ``docs/screenshots/approval.png`` is made).
"""

from __future__ import annotations

import os
import select as io_select
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from tests.conftest import REPO
from tests.support.ports import free_port
from tests.support.recommendations import store
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.db.models import AuditEvent, Recommendation

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium")) if p and os.path.exists(p)), None)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="browser test skipped: no Chromium at /usr/bin/chromium or on PATH "
    "(apt-get install chromium; .ci/run installs it)",
)


def printed_url(server: subprocess.Popen[bytes], log: Path, timeout: float = 45.0) -> str:
    """The URL ``tradeassist ui`` prints on stdout once the server answers."""
    assert server.stdout is not None
    ready, _, _ = io_select.select([server.stdout], [], [], timeout)
    line = server.stdout.readline().decode().strip() if ready else ""
    if not line:
        server.poll()
        why = f"exit code {server.returncode}" if server.returncode is not None else "still running"
        pytest.fail(f"tradeassist ui printed no URL within {timeout:.0f} s ({why}):\n{log.read_text()}")
    return line


@pytest.fixture
def served(tmp_path: Path, sqlite_demo_template: Path) -> Iterator[tuple[str, str, int, Path]]:
    """A fresh demo database with one DRAFT recommendation (buying with a contribution, as the
    demo's monthly allocation does), served by ``tradeassist ui``."""
    database = tmp_path / "demo.db"
    shutil.copy(sqlite_demo_template, database)
    url = f"sqlite:///{database}"
    engine = create_db_engine(url)
    rid = store(engine, "MONTHLY_ALLOC", contribution="1000")  # within every rule: a PASS
    engine.dispose()
    port = free_port()
    log = tmp_path / "ui.log"
    env = dict(os.environ, TRADEASSIST_DB_URL=url)
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
        assert address == f"http://127.0.0.1:{port}/"
        yield address, url, rid, log
    finally:
        server.send_signal(signal.SIGTERM)  # the command stops Voilà and its kernels, then exits
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
            pytest.fail(f"tradeassist ui did not stop on SIGTERM:\n{log.read_text()}")
        assert code == 0, f"{code}: {log.read_text()!r} {log}"
        with socket.socket() as probe:  # the port is free again: Voilà went with it
            probe.bind(("127.0.0.1", port))


def ui(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tradeassist", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_ui_says_what_is_wrong_before_serving(tmp_path: Path, sqlite_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    empty = ui("--db", f"sqlite:///{tmp_path / 'empty.db'}", "ui", "--no-browser", env=env)
    assert empty.returncode != 0 and empty.stdout == ""
    assert empty.stderr.strip().splitlines() == [
        "error: the database has no schema yet: run `tradeassist init` first"
    ]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = ui("--db", sqlite_url, "ui", "--port", str(port), "--no-browser", env=env)
    assert busy.returncode != 0 and busy.stdout == ""
    assert f"error: port {port} on 127.0.0.1 is in use: pass another with --port" in busy.stderr


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
def test_approve_in_the_browser(served: tuple[str, str, int, Path], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    address, url, rid, log = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1500})
            page.goto(address, wait_until="commit", timeout=30_000)
            approve = page.locator(f".ta-reco-{rid} button.ta-approve")
            approve.wait_for(state="visible", timeout=75_000)  # once the kernel ran the notebook
            assert "DRAFT" in page.locator(f".ta-reco-{rid}").inner_text()
            approve.click()
            page.locator(".ta-status", has_text="RECO_APPROVED").wait_for(timeout=30_000)
            status = page.locator(".ta-status").inner_text()
            assert f"Recommendation #{rid} approved (now REVIEWED)" in status, status
            page.locator(f".ta-reco-{rid} button.ta-execute").wait_for(state="visible", timeout=10_000)
            page.locator(f".ta-reco-{rid} .ta-rationale .jupyter-widget-Collapse-header").click()
            page.locator(f".ta-reco-{rid} .ta-sleeves").wait_for(state="visible", timeout=10_000)
            shot = tmp_path / "approval.png"
            box = page.locator(".ta-approval").bounding_box()
            assert box is not None
            margin = 16
            page.screenshot(
                path=str(shot),
                clip={
                    "x": max(box["x"] - margin, 0),
                    "y": max(box["y"] - margin, 0),
                    "width": box["width"] + 2 * margin,
                    "height": box["height"] + margin,  # the notebook's help text starts below
                },
            )
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    if os.environ.get("TRADEASSIST_SCREENSHOT_DIR"):
        folder = Path(os.environ["TRADEASSIST_SCREENSHOT_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, folder / "approval.png")

    engine = create_db_engine(url)
    try:
        with unit_of_work(engine, readonly=True) as s:
            reco = s.get(Recommendation, rid)
            assert reco is not None and reco.status.value == "REVIEWED"
            actions = s.exec(
                select(AuditEvent.action).where(
                    AuditEvent.entity_type == "recommendation", AuditEvent.entity_id == str(rid)
                )
            ).all()
    finally:
        engine.dispose()
    assert "RECO_APPROVED" in actions, log.read_text()
