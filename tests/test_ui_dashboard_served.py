"""``tradeassist ui`` serves the dashboard beside the approval view (issue #18 item 4): the
approval view stays at ``/`` and links to ``/dashboard``, which opens on all the user's accounts
behind the same login, and whose picker chooses one account in the page's kernel.

Read through HTTP and the kernel's websocket as ``test_ui_login`` does, without a browser.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

from tests.conftest import ADMIN_EMAIL
from tests.support import widget_client
from tests.support.ui_server import ANN, ANN_PASSWORD, Served, serving
from tradeassist.demo import DEMO_PORTFOLIO
from tradeassist.ui.server import SIDE_PAGES

PAGE_TIMEOUT = 120  # the page answers once its kernel ran the notebook


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, sqlite_demo_template: Path) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("ui-dashboard"), sqlite_demo_template) as server:
        yield server


def cookie_header(session: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def open_page(session: requests.Session, served: Served, path: str) -> tuple[websocket.WebSocket, str]:
    """Load ``path`` (its kernel runs the notebook), then connect to that kernel as the browser
    would: the socket and the page's HTML."""
    answer = session.get(f"{served.base}{path}", allow_redirects=False, timeout=PAGE_TIMEOUT)
    assert answer.status_code == 200, (path, answer.status_code)
    sock = widget_client.connect(
        f"ws://127.0.0.1:{served.port}",
        widget_client.kernel_id(answer.text),
        headers={"Cookie": cookie_header(session), "Origin": served.base},
    )
    return sock, answer.text


def shown(states: dict[str, dict[str, Any]]) -> str:
    """The widgets' words and what their Output widgets show."""
    outputs = [out for state in states.values() for out in state.get("outputs", []) or []]
    return widget_client.texts(states) + "\n" + json.dumps(outputs)


def choose(sock: websocket.WebSocket, comm_id: str, index: int) -> None:
    """Pick an option of a Dropdown, as the browser does: an update of its ``index``."""
    content = {
        "comm_id": comm_id,
        "data": {"method": "update", "state": {"index": index}, "buffer_paths": []},
    }
    sock.send(widget_client._message("comm_msg", content, sock.session))  # type: ignore[attr-defined]


def picker_of(states: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    [found] = [
        (comm, state)
        for comm, state in states.items()
        if state.get("_model_name") == "DropdownModel"
        and "ta-dashboard-picker" in state.get("_dom_classes", [])
    ]
    return found


@pytest.mark.slow
def test_the_dashboard_is_served_beside_the_approval_view_behind_the_login(served: Served) -> None:
    assert SIDE_PAGES == {"dashboard": "dashboard.ipynb"}
    anonymous = requests.get(f"{served.base}/dashboard", allow_redirects=False, timeout=30)
    assert (anonymous.status_code, anonymous.headers["Location"]) == (302, "/login?next=%2Fdashboard")

    session = requests.Session()
    first = session.get(served.login_url, allow_redirects=False, timeout=30)
    assert first.status_code == 302 and first.headers["Location"] == "/"  # the approval view, as before
    sock, _html = open_page(session, served, "/")
    try:
        approval = widget_client.texts(widget_client.widget_states(sock))
    finally:
        sock.close()
    assert f"acting as {ADMIN_EMAIL}" in approval and f"ta-reco-{served.rid}" in approval
    assert "ta-dashboard-link" in approval and "/dashboard'>dashboard</a>" in approval

    sock, html = open_page(session, served, "/dashboard")
    try:
        assert "Dashboard" in html and "ta-reco-" not in html
        states = widget_client.widget_states(sock)
        page = shown(states)
        assert f"acting as {ADMIN_EMAIL}" in page and "ta-approval-link" in page
        comm, picker = picker_of(states)
        assert picker["_options_labels"] == ["All accounts", DEMO_PORTFOLIO] and picker["index"] == 0
        assert "All accounts: \\u00a3" in page and f"Holdings of {DEMO_PORTFOLIO}" in page

        choose(sock, comm, 1)  # the person picks the demo SIPP: the kernel reads it and redraws
        deadline = time.monotonic() + 60
        while "What the dashboard cannot show" not in page and "Nothing is missing" not in page:
            assert time.monotonic() < deadline, "the view did not change after the choice"
            time.sleep(0.5)
            page = shown(widget_client.widget_states(sock))
        assert f"{DEMO_PORTFOLIO}: value over time" in page and "All accounts: " not in page
    finally:
        sock.close()


@pytest.mark.slow
def test_a_person_without_portfolios_sees_none_on_the_dashboard(served: Served) -> None:
    session = requests.Session()
    session.get(f"{served.base}/login", timeout=30)
    answer = session.post(
        f"{served.base}/login",
        data={
            "email": ANN,
            "password": ANN_PASSWORD,
            "next": "/dashboard",
            "_xsrf": session.cookies["_xsrf"],
        },
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/dashboard"
    sock, _html = open_page(session, served, "/dashboard")
    try:
        states = widget_client.widget_states(sock)
    finally:
        sock.close()
    page = shown(states)
    assert f"acting as {ANN}" in page and "You may see no portfolio yet" in page
    assert DEMO_PORTFOLIO not in page and ADMIN_EMAIL not in page
    assert picker_of(states)[1]["_options_labels"] == ["All accounts"]
