"""A small Jupyter kernel websocket client: it reads every widget's state from the kernel a
Voilà page started, as a script (or an attacker) could, without a browser."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import websocket  # websocket-client, a jupyter_server dependency

KERNEL_ID = re.compile(r'"kernelId":\s*"([0-9a-f-]{36})"')


def kernel_id(page_html: str) -> str:
    """The kernel the Voilà page started (its id is in the page's configuration)."""
    found = KERNEL_ID.search(page_html)
    assert found, "no kernelId in the page"
    return found.group(1)


def _message(msg_type: str, content: dict[str, Any], session: str) -> str:
    header = {
        "msg_id": uuid.uuid4().hex,
        "username": "script",
        "session": session,
        "msg_type": msg_type,
        "version": "5.3",
        "date": datetime.now(UTC).isoformat(),
    }
    return json.dumps(
        {
            "header": header,
            "parent_header": {},
            "metadata": {},
            "content": content,
            "channel": "shell",
            "buffers": [],
        }
    )


def connect(base_ws: str, kernel: str, *, headers: dict[str, str] | None = None) -> websocket.WebSocket:
    """Open the kernel's channels websocket; raises ``websocket.WebSocketBadStatusException``
    (with ``status_code``) when the server refuses the handshake."""
    session = uuid.uuid4().hex
    headers = dict(headers or {})
    host = headers.pop("Host", None)
    sock = websocket.create_connection(
        f"{base_ws}/api/kernels/{kernel}/channels?session_id={session}",
        header=[f"{k}: {v}" for k, v in headers.items()],
        host=host,
        suppress_origin=True,  # an Origin only when the caller gives one, as a script would
        timeout=30,
    )
    sock.session = session  # type: ignore[attr-defined]
    return sock


def widget_states(sock: websocket.WebSocket, timeout: float = 60.0) -> dict[str, dict[str, Any]]:
    """Every widget model's state, by comm id: ask for the comms, then each one's state."""
    session = sock.session  # type: ignore[attr-defined]
    sock.send(_message("comm_info_request", {"target_name": "jupyter.widget"}, session))
    comms: dict[str, Any] | None = None
    states: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = sock.recv()
        if not isinstance(raw, str):
            continue
        msg = json.loads(raw)
        kind = msg.get("msg_type") or msg["header"]["msg_type"]
        if kind == "comm_info_reply" and comms is None:
            comms = msg["content"]["comms"]
            for comm_id in comms:
                sock.send(
                    _message("comm_msg", {"comm_id": comm_id, "data": {"method": "request_state"}}, session)
                )
        elif kind == "comm_msg" and msg["content"]["data"].get("method") == "update":
            states[msg["content"]["comm_id"]] = msg["content"]["data"]["state"]
        if comms is not None and len(states) >= len(comms):
            return states
    raise TimeoutError(f"read {len(states)} widget states of {len(comms or {})} within {timeout:.0f} s")


def click(sock: websocket.WebSocket, comm_id: str) -> None:
    """Press a button, as the browser does: a custom ``click`` message to its model."""
    content = {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "click"}}}
    sock.send(_message("comm_msg", content, sock.session))  # type: ignore[attr-defined]


def texts(states: dict[str, dict[str, Any]]) -> str:
    """Every string value in the widgets' states, joined: what the page would show."""
    out: list[str] = []
    for state in states.values():
        for value in state.values():
            if isinstance(value, str):
                out.append(value)
            elif isinstance(value, list):
                out.extend(v for v in value if isinstance(v, str))
    return "\n".join(out)
