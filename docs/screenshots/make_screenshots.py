"""Regenerate ``docs/screenshots/dashboard.png`` and ``approval.png``: what ``make demo`` produces.

    .venv/bin/python docs/screenshots/make_screenshots.py [--out DIR] [--keep-html PATH]

Runs ``make demo``'s own two commands, ``tradeassist init`` and ``tradeassist demo`` (the demo
loaded with prices to yesterday, each of its tasks run once), in a temporary
``TRADEASSIST_HOME``, nothing planted. Then:

* ``dashboard.png``: the dashboard's charts for the demo portfolio, rendered into one static
  HTML page (plotly.js inlined) and screenshot with headless Chromium;
* ``approval.png``: ``tradeassist ui`` serving the approval view, opened with the one-time
  address it prints, as it first shows: the recommendations the demo's tasks made, waiting.

Needs Chromium (``/usr/bin/chromium``: ``apt-get install -y chromium``) and Playwright (the
``test`` extra); no network. Prints what each picture shows, for the README's captions.
"""

from __future__ import annotations

import argparse
import html
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from tradeassist.db.engine import create_db_engine  # noqa: E402
from tradeassist.demo import DEMO_PORTFOLIO  # noqa: E402
from tradeassist.ui import dashboard  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTH = 1400


def make_demo(home: Path) -> dict[str, str]:
    """``tradeassist init`` and ``tradeassist demo`` as ``make demo`` runs them, in ``home``;
    the environment they ran in (none of the caller's TRADEASSIST_ settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env |= {"TRADEASSIST_HOME": str(home), "TRADEASSIST_REPORTS_DIR": str(home / "reports")}
    for command in ("init", "demo"):
        print(f"tradeassist {command} ...", flush=True)
        subprocess.run([sys.executable, "-m", "tradeassist", command], cwd=REPO, env=env, check=True)
    return env


def dashboard_page(db_url: str) -> tuple[str, int, str]:
    """The page, its height in pixels, and one line saying what it shows."""
    engine = create_db_engine(db_url)
    try:
        data = dashboard.load(DEMO_PORTFOLIO, engine=engine)
    finally:
        engine.dispose()
    charts = dashboard.figures_for(data)
    prices = [name for name in charts if name.startswith("price ")]
    layout = [("value",), ("allocation", "drift"), ("performance",)]
    layout += [tuple(prices[i : i + 2]) for i in range(0, len(prices), 2)] + [("alerts",)]
    rows, first, height = [], True, 80  # the heading
    for names in layout:
        cells = []
        for name in names:
            fig = charts[name]
            fig.update_layout(width=(WIDTH - 60) // len(names), height=fig.layout.height)
            config = {"displayModeBar": False, "staticPlot": True}
            cells.append(
                fig.to_html(include_plotlyjs="inline" if first else False, full_html=False, config=config)
            )
            first = False
        height += max(int(charts[name].layout.height or 450) for name in names) + 12
        rows.append('<div class="row">' + "".join(f'<div class="cell">{c}</div>' for c in cells) + "</div>")
    alerts = len(data.alerts)
    shows = (
        f"{data.portfolio} after make demo: prices to the day before, {alerts} open "
        f"alert{'s' if alerts != 1 else ''}, {'frozen' if data.freeze['is_frozen'] else 'not frozen'}, "
        f"cash £{data.cash:,.2f}"
    )
    style = (
        "body{font-family:sans-serif;margin:16px;background:#fff}"
        "h1{font-size:22px;margin:0 0 4px}p{color:#555;margin:0 0 8px}"
        ".row{display:flex;gap:12px}.cell{flex:1}"
    )
    head = f"<h1>{html.escape(data.portfolio)}: dashboard</h1><p>{html.escape(shows)}</p>"
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><style>{style}</style></head>"
        f"<body>{head}{''.join(rows)}</body></html>"
    )
    return page, height, shows


def screenshot_page(page: Path, png: Path, height: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                CHROMIUM,
                "--headless",
                *CHROMIUM_ARGS,
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={WIDTH},{height}",
                "--virtual-time-budget=5000",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving_ui(env: dict[str, str], log: Path) -> Iterator[str]:
    """``tradeassist ui --no-browser`` on a free port; the one-time address it prints. Stopped
    with SIGTERM, as Ctrl-C would."""
    port = _free_port()
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "tradeassist", "ui", "--port", str(port), "--no-browser"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=sink,
        )
    try:
        assert server.stdout is not None
        ready, _, _ = select.select([server.stdout], [], [], 120)
        address = server.stdout.readline().decode().strip() if ready else ""
        if not address:
            raise SystemExit(f"tradeassist ui printed no address:\n{log.read_text()}")
        yield address
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def screenshot_approval(env: dict[str, str], png: Path, log: Path) -> str:
    """The approval view as it first opens; one line saying what it shows."""
    from playwright.sync_api import sync_playwright

    with serving_ui(env, log) as address, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1500})
            page.goto(address, wait_until="commit", timeout=60_000)
            page.locator("button.ta-approve").first.wait_for(state="visible", timeout=120_000)
            view = page.locator(".ta-approval")
            drafts = page.locator("button.ta-approve").count()
            box = view.bounding_box()
            assert box is not None
            margin = 16
            clip = {
                "x": max(box["x"] - margin, 0),
                "y": max(box["y"] - margin, 0),
                "width": box["width"] + 2 * margin,
                "height": min(box["height"] + margin, 2400),
            }
            page.screenshot(path=str(png), clip=clip, full_page=True)
        finally:
            browser.close()
    return f"the approval view after make demo: {drafts} recommendations of the demo's tasks waiting (DRAFT)"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="Where the PNGs go (default: here).")
    parser.add_argument("--keep-html", type=Path, default=None, help="Also keep the dashboard page here.")
    args = parser.parse_args()
    out = args.out.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = make_demo(home)
        page, height, shows = dashboard_page(f"sqlite:///{home / 'tradeassist.db'}")
        html_file = Path(tmp) / "dashboard.html"
        html_file.write_text(page, encoding="utf-8")
        if args.keep_html:
            shutil.copy(html_file, args.keep_html)
        screenshot_page(html_file, out / "dashboard.png", height)
        print(f"{out / 'dashboard.png'}: {shows}")
        approval = screenshot_approval(env, out / "approval.png", Path(tmp) / "ui.log")
        print(f"{out / 'approval.png'}: {approval}")


if __name__ == "__main__":
    main()
