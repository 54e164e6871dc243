"""The approval view in a real browser: ``tradeassist ui`` serves it with Voilà, Debian's
Chromium (never a downloaded one) finds only the login page without a login, logs in with the
one-time address the command printed, approves the demo's recommendation, and the database
says REVIEWED with a ``RECO_APPROVED`` audit row by that user; then another person logs in on
the page with email and password and the page acts as them.

Skipped, with the reason, where Chromium is not installed (``.ci/run`` installs it). With
``TRADEASSIST_SCREENSHOT_DIR`` set, the screenshot is also saved there as ``approval.png``
(that is how ``docs/screenshots/approval.png`` is made).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from tests.conftest import ADMIN_EMAIL, REPO
from tests.support.ports import free_port
from tests.support.ui_server import BOB, BOB_PASSWORD, Served, serving
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.db.models import AuditEvent, Recommendation, User
from tradeassist.demo import DEMO_PORTFOLIO

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


@pytest.fixture
def served(tmp_path: Path, sqlite_demo_template: Path) -> Iterator[Served]:
    """``tradeassist ui`` on a fresh demo with one DRAFT recommendation, bob and ann."""
    with serving(tmp_path, sqlite_demo_template) as server:
        yield server


def ui(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tradeassist", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
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
    port = free_port()  # the one-time address would log in --as: no such user, no server
    nobody = ui(
        "--db", sqlite_url, "--as", "nobody@example.com", "ui", "--port", str(port), "--no-browser", env=env
    )
    assert nobody.returncode != 0 and nobody.stdout == ""
    assert nobody.stderr.strip().splitlines() == ["error: --as nobody@example.com: no such user"]


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
def test_approve_in_the_browser(served: Served, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    rid = served.rid
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1500})
            page.goto(f"{served.base}/", timeout=30_000)  # no login: the login page, nothing else
            page.locator(".ta-login").wait_for(state="visible", timeout=10_000)
            assert page.url.startswith(f"{served.base}/login")
            assert DEMO_PORTFOLIO not in page.content() and ADMIN_EMAIL not in page.content()

            page.goto(served.login_url, wait_until="commit", timeout=30_000)  # logs the admin in
            approve = page.locator(f".ta-reco-{rid} button.ta-approve")
            approve.wait_for(state="visible", timeout=75_000)  # once the kernel ran the notebook
            assert page.url == f"{served.base}/"  # the token is gone from the address
            assert f"acting as {ADMIN_EMAIL}" in page.locator(".ta-approval").inner_text()
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

            # Another person, in a browser of their own: the address is spent, the form logs in.
            other = browser.new_context(viewport={"width": 1200, "height": 1500}).new_page()
            other.goto(served.login_url, timeout=30_000)
            other.locator(".ta-login").wait_for(state="visible", timeout=10_000)
            other.fill("input[name=email]", BOB)
            other.fill("input[name=password]", BOB_PASSWORD)
            other.click("button[type=submit]")
            other.locator(f".ta-reco-{rid} button.ta-execute").wait_for(state="visible", timeout=75_000)
            assert f"acting as {BOB}" in other.locator(".ta-approval").inner_text()
            assert "REVIEWED" in other.locator(f".ta-reco-{rid}").inner_text()
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    if os.environ.get("TRADEASSIST_SCREENSHOT_DIR"):
        folder = Path(os.environ["TRADEASSIST_SCREENSHOT_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, folder / "approval.png")

    engine = create_db_engine(served.db_url)
    try:
        with unit_of_work(engine, readonly=True) as s:
            reco = s.get(Recommendation, rid)
            assert reco is not None and reco.status.value == "REVIEWED"
            approvals = s.exec(
                select(User.email)
                .join(AuditEvent, AuditEvent.actor_user_id == User.user_id)
                .where(
                    AuditEvent.entity_type == "recommendation",
                    AuditEvent.entity_id == str(rid),
                    AuditEvent.action == "RECO_APPROVED",
                )
            ).all()
            logins = s.exec(
                select(User.email)
                .join(AuditEvent, AuditEvent.actor_user_id == User.user_id)
                .where(AuditEvent.action == "USER_LOGIN")
            ).all()
    finally:
        engine.dispose()
    assert approvals == [ADMIN_EMAIL], served.log.read_text()
    assert logins == [BOB]  # the password login is audited; the token is the command's own user
    assert served.token not in served.log.read_text()
