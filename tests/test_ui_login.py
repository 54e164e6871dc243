"""The approval app requires a login (issue #16): ``tradeassist ui`` prints a one-time address
that logs in its acting user, a person may log in on the page with email and password, and
without either nothing shows any portfolio data — not the page, not the kernel's websocket
(which the issue's reporter read all 95 widgets from). Foreign ``Host`` and ``Origin`` headers
are refused, and each page's kernel acts as the user logged in on it.

One server for the module (it takes a while to start): the tests read and click through HTTP
and the kernel websocket, as a script would, without a browser (``test_ui_browser`` drives
Chromium). The order matters once: ``logged_in`` spends the one-time token. The pieces the
server is made of are tested on their own first, quickly.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import websocket
from jupyter_server.auth.identity import User as WebUser
from jupyter_server.base.call_context import CallContext
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from sqlmodel import select
from tornado import web

from tests.conftest import ADMIN_EMAIL, REPO
from tests.support import widget_client
from tests.support.ui_server import ANN, ANN_PASSWORD, BOB, BOB_PASSWORD, Served, serving
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.db.models import AuditEvent, Recommendation, User
from tradeassist.demo import DEMO_PORTFOLIO
from tradeassist.ui.auth import login_page, without_token
from tradeassist.ui.server import KernelOwnerAuthorizer, UserKernelManager

PAGE_TIMEOUT = 120  # the page answers once its kernel ran the notebook


# --- the pieces -------------------------------------------------------------------------------
def test_the_token_is_taken_out_of_an_address() -> None:
    assert without_token("/?token=abc") == "/"
    assert without_token("/voila/x?a=1&token=abc&b=2") == "/voila/x?a=1&b=2"
    assert without_token("/login?next=%2F") == "/login?next=%2F"


def test_a_kernel_starts_only_as_the_logged_in_user(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[dict[str, Any]] = []

    async def start(self: Any, *args: Any, **kwargs: Any) -> str:
        started.append(kwargs)
        return "kernel-1"

    monkeypatch.setattr(AsyncMappingKernelManager, "start_kernel", start)
    manager = UserKernelManager()
    server_env = {"TRADEASSIST_USER": ADMIN_EMAIL, "TRADEASSIST_DB_URL": "sqlite:///x.db"}

    async def as_user(user: WebUser | None) -> str:
        CallContext.set(CallContext.JUPYTER_HANDLER, SimpleNamespace(current_user=user))
        return await manager.start_kernel(kernel_name="tradeassist", env=dict(server_env))

    with pytest.raises(web.HTTPError) as refused:  # no user: no kernel, not even the server's own
        asyncio.run(as_user(None))
    assert refused.value.status_code == 403 and started == []
    assert asyncio.run(as_user(WebUser(username=BOB))) == "kernel-1"
    assert started[0]["env"] == {"TRADEASSIST_USER": BOB, "TRADEASSIST_DB_URL": "sqlite:///x.db"}
    assert manager.owners == {"kernel-1": BOB}


def test_a_kernel_is_for_its_owner_only() -> None:
    def handler(kernel_id: str | None) -> SimpleNamespace:
        manager = SimpleNamespace(owners={"kernel-1": BOB})
        return SimpleNamespace(path_kwargs={"kernel_id": kernel_id}, settings={"kernel_manager": manager})

    allow = KernelOwnerAuthorizer().is_authorized
    assert allow(handler("kernel-1"), WebUser(username=BOB), "execute", "kernels")
    assert not allow(handler("kernel-1"), WebUser(username=ANN), "execute", "kernels")
    assert not allow(handler("kernel-2"), WebUser(username=BOB), "execute", "kernels")
    assert not allow(handler(None), WebUser(username=BOB), "read", "kernels")
    assert allow(handler(None), WebUser(username=ANN), "read", "contents")


def test_the_login_page_escapes_what_it_echoes() -> None:
    page = login_page(
        next_url='/"><script>x()</script>', xsrf_field="", email="<b>ann</b>", error="<i>no</i>"
    )
    assert "<script>" not in page and "<b>ann" not in page and "<i>no" not in page
    assert "&lt;b&gt;ann&lt;/b&gt;" in page


@pytest.mark.slow  # starting Python with Voilà's imports takes a while
def test_the_server_will_not_start_without_a_token_from_tradeassist_ui() -> None:
    notebook = str(REPO / "notebooks" / "approval.ipynb")
    ran = subprocess.run(
        [sys.executable, "-m", "tradeassist.ui.server", notebook, "--port=1"],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode != 0 and "start it with `tradeassist ui`" in ran.stderr


# --- the server ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, sqlite_demo_template: Path) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("ui-login"), sqlite_demo_template) as server:
        yield server


@pytest.fixture(scope="module")
def logged_in(served: Served) -> requests.Session:
    """A session logged in with the one-time address (as the bootstrap admin)."""
    session = requests.Session()
    first = session.get(served.login_url, allow_redirects=False, timeout=30)
    assert first.status_code == 302 and first.headers["Location"] == "/"  # the token leaves the address
    cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "expires" not in cookie.lower()
    return session


def page(session: requests.Session, served: Served) -> requests.Response:
    answer = session.get(f"{served.base}/", allow_redirects=False, timeout=PAGE_TIMEOUT)
    assert answer.status_code == 200, answer.status_code
    return answer


def cookie_header(session: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def widgets(session: requests.Session, served: Served) -> tuple[str, websocket.WebSocket, dict[str, Any]]:
    """Load the page, then read every widget of its kernel over the websocket, as the browser
    does (same origin, the session's cookie): the page's kernel id, the socket, the states."""
    kernel = widget_client.kernel_id(page(session, served).text)
    sock = widget_client.connect(
        f"ws://127.0.0.1:{served.port}",
        kernel,
        headers={"Cookie": cookie_header(session), "Origin": served.base},
    )
    return kernel, sock, widget_client.widget_states(sock)


def password_login(served: Served, email: str, password: str) -> tuple[requests.Session, requests.Response]:
    session = requests.Session()
    form = session.get(f"{served.base}/login", timeout=30)
    assert form.status_code == 200 and 'name="password"' in form.text
    answer = session.post(
        f"{served.base}/login",
        data={"email": email, "password": password, "next": "/", "_xsrf": session.cookies["_xsrf"]},
        allow_redirects=False,
        timeout=30,
    )
    return session, answer


def audit(served: Served, action: str) -> list[tuple[str | None, str | None]]:
    """(actor's email, entity id) of every audit row with this action, oldest first."""
    engine = create_db_engine(served.db_url)
    try:
        with unit_of_work(engine, readonly=True) as s:
            rows = s.exec(
                select(User.email, AuditEvent.entity_id)
                .join(User, AuditEvent.actor_user_id == User.user_id, isouter=True)
                .where(AuditEvent.action == action)
                .order_by(AuditEvent.audit_event_id)  # type: ignore[arg-type]
            ).all()
    finally:
        engine.dispose()
    return [(email, entity) for email, entity in rows]


def status(served: Served) -> str:
    engine = create_db_engine(served.db_url)
    try:
        with unit_of_work(engine, readonly=True) as s:
            reco = s.get(Recommendation, served.rid)
            assert reco is not None
            return reco.status.value
    finally:
        engine.dispose()


@pytest.mark.slow
def test_nothing_shows_without_a_login(served: Served) -> None:
    anonymous = requests.Session()
    for address, login_at in (
        ("/", "/login?next=%2F"),
        ("/?portfolio=1", "/login?next=%2F%3Fportfolio%3D1"),
        (f"/?token={'x' * 43}", "/login?next=%2F"),  # a wrong token goes no further than this
    ):
        answer = anonymous.get(served.base + address, allow_redirects=False, timeout=30)
        assert (answer.status_code, answer.headers["Location"]) == (302, login_at), address
    login = anonymous.get(f"{served.base}/login", timeout=30)
    assert login.status_code == 200 and 'name="email"' in login.text
    for secret in (DEMO_PORTFOLIO, ADMIN_EMAIL, BOB, "kernelId"):
        assert secret not in login.text
    assert "username-" not in "".join(anonymous.cookies.keys())


@pytest.mark.slow
def test_the_one_time_address_logs_the_commands_user_in_once(
    served: Served, logged_in: requests.Session
) -> None:
    _kernel, sock, states = widgets(logged_in, served)
    sock.close()
    shown = widget_client.texts(states)
    assert f"acting as {ADMIN_EMAIL}" in shown
    assert DEMO_PORTFOLIO in shown and f"ta-reco-{served.rid}" in shown
    assert served.token not in shown

    again = requests.get(served.login_url, allow_redirects=False, timeout=30)  # spent
    assert again.status_code == 302 and again.headers["Location"] == "/login?next=%2F"
    header = requests.get(
        f"{served.base}/",
        headers={"Authorization": f"token {served.token}"},
        allow_redirects=False,
        timeout=30,
    )
    assert header.status_code == 302 and header.headers["Location"].startswith("/login")
    assert served.token not in served.log.read_text()  # the command prints it on stdout only


@pytest.mark.slow
def test_a_websocket_needs_the_login_and_the_same_origin(served: Served, logged_in: requests.Session) -> None:
    kernel, sock, _states = widgets(logged_in, served)
    sock.close()
    refusals = {
        "no cookie": {"Origin": served.base},
        "foreign origin": {"Cookie": cookie_header(logged_in), "Origin": "http://evil.example.com"},
        "null origin": {"Cookie": cookie_header(logged_in), "Origin": "null"},
        "foreign host": {"Cookie": cookie_header(logged_in), "Host": "evil.example.com"},
    }
    for why, headers in refusals.items():
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            widget_client.connect(f"ws://127.0.0.1:{served.port}", kernel, headers=headers)
        assert refused.value.status_code == 403, why


@pytest.mark.slow
def test_foreign_host_headers_are_refused(served: Served, logged_in: requests.Session) -> None:
    for host in ("evil.example.com", f"evil.example.com:{served.port}", "127.0.0.1.nip.io"):
        for address in ("/", "/login"):
            answer = logged_in.get(
                served.base + address, headers={"Host": host}, allow_redirects=False, timeout=30
            )
            assert answer.status_code == 403, (host, address)
            assert DEMO_PORTFOLIO not in answer.text
    local = requests.get(
        f"{served.base}/", headers={"Host": f"localhost:{served.port}"}, allow_redirects=False
    )
    assert local.status_code == 302  # a local name: on to the login


@pytest.mark.slow
def test_a_foreign_origin_may_not_post(served: Served) -> None:
    session = requests.Session()
    session.get(f"{served.base}/login", timeout=30)
    answer = session.post(
        f"{served.base}/login",
        data={"email": BOB, "password": BOB_PASSWORD, "next": "/", "_xsrf": session.cookies["_xsrf"]},
        headers={"Origin": "http://evil.example.com"},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 403 and "username-" not in "".join(session.cookies.keys())
    no_xsrf = requests.post(
        f"{served.base}/login",
        data={"email": BOB, "password": BOB_PASSWORD},
        allow_redirects=False,
        timeout=30,
    )
    assert no_xsrf.status_code == 403  # a form posted from elsewhere has no XSRF token either


@pytest.mark.slow
def test_email_and_password_log_in_and_a_wrong_one_does_not(served: Served) -> None:
    before = audit(served, "USER_LOGIN")
    session, wrong = password_login(served, BOB, "not-bobs-password")
    assert wrong.status_code == 401 and "Wrong email or password" in wrong.text
    assert BOB in wrong.text  # the email typed is kept in the form; nothing else is shown
    assert DEMO_PORTFOLIO not in wrong.text
    assert "username-" not in "".join(session.cookies.keys())
    assert session.get(f"{served.base}/", allow_redirects=False, timeout=30).status_code == 302
    _session, unknown = password_login(served, "nobody@example.com", BOB_PASSWORD)
    assert unknown.status_code == 401
    assert audit(served, "USER_LOGIN") == before  # failures are not logins (nor audited: see docs)
    assert "login refused for 'bob@example.com'" in served.log.read_text()
    assert "not-bobs-password" not in served.log.read_text()

    session, right = password_login(served, BOB, BOB_PASSWORD)
    assert right.status_code == 302 and right.headers["Location"] == "/"
    assert audit(served, "USER_LOGIN")[len(before) :] == [(BOB, audit(served, "USER_LOGIN")[-1][1])]
    shown = widget_client.texts(widgets(session, served)[2])
    assert f"acting as {BOB}" in shown and DEMO_PORTFOLIO in shown

    session.get(f"{served.base}/logout", timeout=30)
    assert session.get(f"{served.base}/", allow_redirects=False, timeout=30).status_code == 302


@pytest.mark.slow
def test_the_kernel_acts_as_the_user_logged_in(served: Served) -> None:
    ann, answer = password_login(served, ANN, ANN_PASSWORD)
    assert answer.status_code == 302
    ann_kernel, sock, states = widgets(ann, served)
    sock.close()
    shown = widget_client.texts(states)
    assert f"acting as {ANN}" in shown
    assert DEMO_PORTFOLIO not in shown and f"ta-reco-{served.rid}" not in shown  # not hers: none of it
    assert ADMIN_EMAIL not in shown and BOB not in shown

    bob, answer = password_login(served, BOB, BOB_PASSWORD)
    assert answer.status_code == 302
    bob_kernel, sock, states = widgets(bob, served)
    try:
        assert f"acting as {BOB}" in widget_client.texts(states)
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:  # bob's kernel is his
            widget_client.connect(
                f"ws://127.0.0.1:{served.port}",
                bob_kernel,
                headers={"Cookie": cookie_header(ann), "Origin": served.base},
            )
        assert refused.value.status_code == 403
        assert ann_kernel != bob_kernel

        approve = [
            comm
            for comm, state in states.items()
            if state.get("_model_name") == "ButtonModel" and "ta-approve" in state.get("_dom_classes", [])
        ]
        assert len(approve) == 1 and status(served) == "DRAFT"
        widget_client.click(sock, approve[0])
        deadline = time.monotonic() + 30
        while status(served) != "REVIEWED" and time.monotonic() < deadline:
            time.sleep(0.25)
    finally:
        sock.close()
    assert status(served) == "REVIEWED"
    assert audit(served, "RECO_APPROVED") == [(BOB, str(served.rid))]


RECORDER = """\
import json, sys, urllib.parse, urllib.request, os, stat
page = urllib.request.url2pathname(urllib.parse.urlparse(sys.argv[1]).path)
mode = stat.S_IMODE(os.stat(page).st_mode)
with open(sys.argv[2], "w") as out:
    json.dump({"argv": sys.argv[1:], "page": open(page).read(), "mode": mode}, out)
"""


def test_the_browser_is_opened_on_a_private_page_never_with_the_token_in_its_arguments(
    tmp_path: Path, sqlite_url: str
) -> None:
    """A browser's arguments are readable by every local user (/proc/PID/cmdline): the token
    goes in a page only this user can read, which sends the browser on."""
    from tests.support.ports import free_port
    from tests.support.ui_server import printed_url

    recorder, seen = tmp_path / "browser.py", tmp_path / "seen.json"
    recorder.write_text(RECORDER)
    port = free_port()
    env = dict(os.environ, BROWSER=f"{sys.executable} {recorder} %s {seen}", TRADEASSIST_DB_URL=sqlite_url)
    log = tmp_path / "ui.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "tradeassist", "ui", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=sink,
            start_new_session=True,
        )
    try:
        address = printed_url(server, log)
        for _ in range(300):
            if seen.exists() and seen.stat().st_size:
                break
            time.sleep(0.1)
        opened = json.loads(seen.read_text())
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    token = address.partition("?token=")[2]
    assert token and token not in " ".join(opened["argv"])
    assert opened["argv"][0].startswith("file://")
    assert opened["mode"] == 0o600
    assert f'url={address}"' in opened["page"]
