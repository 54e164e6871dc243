"""Regenerate ``docs/screenshots/dashboard.png`` from the demo data.

    .venv/bin/python docs/screenshots/make_dashboard.py [--keep-html PATH]

Loads the demo into a fresh temporary SQLite database (prices ending on a fixed day, so the
picture is repeatable), lets a second feed send one close in pounds instead of pence (so a
flagged point, its alert and the freeze it causes show), renders the dashboard's charts into
one static HTML page with plotly.js inlined, and screenshots it with headless Chromium (``/usr/bin/chromium``:
``apt-get install -y chromium``). Needs no network.
"""

from __future__ import annotations

import argparse
import html
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from sqlalchemy.engine import Engine  # noqa: E402

from tradeassist.db.engine import create_db_engine, unit_of_work  # noqa: E402
from tradeassist.demo import DEMO_PORTFOLIO, load_demo  # noqa: E402
from tradeassist.providers.prices.base import PriceBar, PriceSeries  # noqa: E402
from tradeassist.services import identity, prices, registry  # noqa: E402
from tradeassist.services.setup import init_database  # noqa: E402
from tradeassist.ui import dashboard  # noqa: E402

DEMO_END = date(2026, 6, 30)
AS_OF = datetime(2026, 6, 30, 22, 0, tzinfo=UTC)
WIDTH, HEIGHT = 1400, 1850
# The page shows these charts, two a row where they are narrow.
LAYOUT = (
    ("value",),
    ("allocation", "drift"),
    ("performance",),
    ("price SMGB:XLON", "price XLE:ARCX"),
    ("alerts",),
)


def feed_sends_pounds_for_pence(engine: Engine) -> None:
    """A second feed quotes SMGB's last close in pounds, not pence: the check flags it 100x off,
    raises an alert and freezes the portfolio, so the picture shows all three."""
    with unit_of_work(engine) as session:
        listing = registry.get_listing(session, "SMGB", "XLON")
        close = prices.list_prices(session, ticker="SMGB", exchange="XLON", start=DEMO_END)[-1]["raw_price"]
        bar = PriceBar(as_of=DEMO_END, close=close.scaleb(-2), currency=None, quote_scale=None, source="feed")
        prices.ingest_series(
            session,
            actor=identity.bootstrap_admin(session),
            listing=listing,
            series=PriceSeries(source="feed", source_name="feed.csv", bars=(bar,), symbol="SMGB"),
        )


def build_page(engine_url: str) -> str:
    engine = create_db_engine(engine_url)
    init_database(engine)
    load_demo(engine, end=DEMO_END)
    feed_sends_pounds_for_pence(engine)
    data = dashboard.load(DEMO_PORTFOLIO, engine=engine, as_of=AS_OF)
    engine.dispose()
    charts = dashboard.figures_for(data)
    rows, first = [], True
    for names in LAYOUT:
        cells = []
        for name in names:
            fig = charts[name]
            fig.update_layout(width=(WIDTH - 60) // len(names), height=fig.layout.height)
            cells.append(
                fig.to_html(
                    include_plotlyjs="inline" if first else False,
                    full_html=False,
                    config={"displayModeBar": False, "staticPlot": True},
                )
            )
            first = False
        rows.append('<div class="row">' + "".join(f'<div class="cell">{c}</div>' for c in cells) + "</div>")
    status = "frozen" if data.freeze["is_frozen"] else "not frozen"
    alerts = len(data.alerts)
    head = (
        f"<h1>{html.escape(data.portfolio)}: dashboard</h1>"
        f"<p>Demo data to {DEMO_END:%d %B %Y} · {alerts} open alert{'s' if alerts != 1 else ''} · "
        f"{status} · cash £{data.cash:,.2f}</p>"
    )
    style = (
        "body{font-family:sans-serif;margin:16px;background:#fff}"
        "h1{font-size:22px;margin:0 0 4px}p{color:#555;margin:0 0 8px}"
        ".row{display:flex;gap:12px}.cell{flex:1}"
    )
    body = head + "".join(rows)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><style>{style}</style></head>"
        f"<body>{body}</body></html>"
    )


def screenshot(page: Path, png: Path) -> None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={WIDTH},{HEIGHT}",
                "--virtual-time-budget=5000",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "dashboard.png")
    parser.add_argument("--keep-html", type=Path, default=None, help="Also keep the HTML page here.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "dashboard.html"
        page.write_text(build_page(f"sqlite:///{Path(tmp) / 'demo.db'}"), encoding="utf-8")
        if args.keep_html:
            shutil.copy(page, args.keep_html)
        screenshot(page, args.out.resolve())
    print(f"{args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
