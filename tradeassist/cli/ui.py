"""``tradeassist ui``: serve the approval view (``notebooks/approval.ipynb``) with Voilà, and
the dashboard (``notebooks/dashboard.ipynb``) beside it at ``/dashboard``.

Voilà runs as a child process (``tradeassist.ui.server``: Voilà with logins) on 127.0.0.1
with this command's environment, so the kernels find the same database (``--db``, else
``TRADEASSIST_DB_URL``, else the default, passed on as an absolute ``TRADEASSIST_DB_URL``).
Nothing is served without a login: the command draws a one-time token that logs in its acting
user (``--as``, else ``TRADEASSIST_USER``, else the bootstrap admin), hands it to the server on
its stdin, and prints ``http://127.0.0.1:PORT/?token=…`` on stdout once the server answers;
anyone else logs in on the page with email and password. Each page's kernel acts as the user
logged in on it. Ctrl-C (or SIGTERM) stops the server.
"""

from __future__ import annotations

import html
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import webbrowser
from pathlib import Path
from types import FrameType

import typer
from sqlalchemy.engine import make_url

from .context import fail, info, state, work

HOST = "127.0.0.1"
DEFAULT_PORT = 8866
START_TIMEOUT_S = 60.0


def approval_notebook() -> Path:
    return Path(__file__).resolve().parents[2] / "notebooks" / "approval.ipynb"


def absolute_db_url(url: str) -> str:
    """A SQLite URL with a relative path made absolute (the kernel runs in another directory)."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if os.path.isabs(database) or database.startswith("file:"):
        return url
    return parsed.set(database=str(Path(database).resolve())).render_as_string(hide_password=False)


def server_environment() -> dict[str, str]:
    """This command's environment with the database made absolute, and no acting user: each
    kernel is given the user logged in on its page, never a default."""
    env = dict(os.environ)
    env["TRADEASSIST_DB_URL"] = absolute_db_url(state.url)
    env.pop("TRADEASSIST_USER", None)
    return env


def token_user() -> str:
    """The email the one-time token logs in: the acting user, checked now (no such user, or a
    disabled one, is an error here rather than in the browser)."""
    with work(readonly=True) as (_session, actor):
        return actor.email


def voila_command(notebook: Path, port: int, kernel: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tradeassist.ui.server",
        str(notebook),
        f"--port={port}",
        "--no-browser",
        f"--Voila.ip={HOST}",
        "--Voila.port_retries=0",
        # The notebook names the ``tradeassist`` kernel; where it is not registered, python3.
        f"--VoilaConfiguration.language_kernel_mapping=python={kernel}",
        "--Voila.log_level=WARN",
    ]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # Voilà stops its kernels on SIGTERM
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def ui(
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Port on 127.0.0.1."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a web browser."),
) -> None:
    """Serve the approval view (Voilà) on 127.0.0.1 behind a login and open it in a browser;
    the dashboard is served beside it at /dashboard.

    Prints a one-time address with a token that logs in the acting user (--as); anyone else
    logs in on the page with email and password. Ctrl-C stops it."""
    from ..runs.runner import kernel_name  # lazy: keeps start-up fast

    state.initialised_engine()  # no schema: say so now, not in the browser
    notebook = approval_notebook()
    if not notebook.is_file():
        fail(f"the approval notebook is missing: {notebook}")
    if not 0 < port < 65536:
        fail(f"--port {port}: expected 1 to 65535")
    if not port_is_free(port):
        fail(f"port {port} on {HOST} is in use: pass another with --port")
    email = token_user()
    token = secrets.token_urlsafe(32)
    url = f"http://{HOST}:{port}/"
    # Ctrl-C (even where the shell started us with SIGINT ignored) and SIGTERM both stop the server.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    process = subprocess.Popen(
        voila_command(notebook, port, kernel_name()), env=server_environment(), stdin=subprocess.PIPE
    )
    try:
        assert process.stdin is not None
        with process.stdin:  # the token goes to the server only, never on its command line
            process.stdin.write((json.dumps({"token": token, "email": email}) + "\n").encode())
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(port):
            if process.poll() is not None:
                fail(f"Voilà stopped (exit code {process.returncode}) before serving {url}")
            if time.monotonic() > deadline:
                fail(f"Voilà did not answer on {url} within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.1)
        login_url = f"{url}?token={token}"
        typer.echo(login_url)
        info(
            f"serving the approval view, and the dashboard at {url}dashboard; the address above logs "
            f"{email} in once; Ctrl-C stops it"
        )
        if not no_browser:
            with tempfile.TemporaryDirectory(prefix="tradeassist-ui-") as private:
                webbrowser.open(redirect_page(Path(private), login_url).as_uri())
                process.wait()  # the page is there while the browser may still read it
        else:
            process.wait()
    except KeyboardInterrupt:
        info("stopping ...")
    finally:
        _stop(process)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if process.returncode not in (0, -signal.SIGTERM, -signal.SIGINT):
        fail(f"Voilà exited with code {process.returncode}", process.returncode)


def redirect_page(directory: Path, login_url: str) -> Path:
    """A page, readable by this user only, that sends the browser on to ``login_url``.

    The browser is opened on this file rather than on the address: a browser is started with
    its address as an argument, which every local user can read (``/proc/PID/cmdline``), and
    the token in it logs in whoever uses it first (Jupyter opens its token the same way)."""
    page = directory / "open-approval-app.html"
    target = html.escape(login_url, quote=True)
    fd = os.open(page, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(
            f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={target}">'
            f'<title>tradeassist</title><p><a href="{target}">Open the approval app</a></p>\n'
        )
    return page


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)
