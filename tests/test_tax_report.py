"""The tax-year report (``tradeassist tax report``): one HTML page to file from and a CSV of the
working, from a real book (SQLite and PostgreSQL), through the real CLI, and printed to PDF by
Debian's Chromium where it is installed."""

from __future__ import annotations

import csv
import html
import io
import os
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from tests.conftest import ADMIN_EMAIL
from tests.support.cli import run_cli
from tests.test_services_tax import ALICE, VUSA, cash_in, post, trade
from tests.test_ui_browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.presentation.tax import RULE_WORDS, headline
from tradeassist.presentation.tax_report import CSV_COLUMNS, report_csv, report_html
from tradeassist.services import identity, portfolios, registry
from tradeassist.services.tax import allowances, cgt

TRADEASSIST = [sys.executable, "-m", "tradeassist"]


def build(engine: Engine) -> Engine:
    """Alice's 2023-24: a same-day match, a bed and breakfast and a loss from the pool in her
    AJ Bell GIA; a 2024-25 sale after 30 October 2024; £19,000 into her ISA (nearly used)."""
    with unit_of_work(engine) as s:
        admin = identity.get_user(s, ADMIN_EMAIL)
        alice = identity.add_user(s, actor=admin, email=ALICE, password="a-long-password-1")
        registry.add_instrument(s, actor=admin, isin=VUSA, instrument_type="ETF")
        registry.add_listing(
            s, actor=admin, isin=VUSA, ticker="VUSA", exchange="XLON", currency="GBP", quote_scale="GBP"
        )
        for name, treatment in [
            ("Alice GIA AJ Bell", "GIA"),
            ("Alice GIA T212", "GIA"),
            ("Alice ISA", "ISA"),
        ]:
            portfolios.add_portfolio(s, actor=alice, name=name, broker="AJBell", tax_treatment=treatment)
    post(
        engine,
        ALICE,
        "Alice GIA AJ Bell",
        cash_in("2015-01-02", "20000"),
        trade("BUY", "2015-01-05", 9500, "1.00"),
        trade("BUY", "2023-06-01", 200, "1.40", hour=10),
        trade("SELL", "2023-06-01", 300, "1.45", hour=15),
        trade("SELL", "2023-08-30", 4000, "1.50"),
        trade("BUY", "2023-09-11", 500, "1.70"),
        trade("SELL", "2024-02-01", 1000, "0.90", "5"),
        trade("SELL", "2024-11-01", 100, "2"),
    )
    post(engine, ALICE, "Alice ISA", cash_in("2023-05-01", "19000"))
    return engine


@pytest.fixture
def book(engine: Engine, admin) -> Engine:  # type: ignore[no-untyped-def]
    return build(engine)


def figures(engine: Engine, year: str) -> tuple[dict[str, Any], dict[str, Any]]:
    with unit_of_work(engine, readonly=True) as s:
        actor = identity.get_user(s, ALICE)
        return (
            cgt.cgt_report(s, actor=actor, tax_year=year),
            allowances.allowances_report(s, actor=actor, tax_year=year),
        )


def test_the_html_report_puts_the_decision_first_and_shows_every_working(book: Engine) -> None:
    report, used = figures(book, "2023-24")
    assert report["totals"]["net_gain"] == D("1600.00")  # 55 + 1,650 - 105
    page = report_html(report, used)

    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    decision = page.index(html.escape(headline(report)))
    boxes = page.index("For your return (SA108")
    exact = page.index("Exact totals")
    working = page.index("Every disposal with its working")
    limits = page.index("<h2>Allowances</h2>")
    notes = page.index("<h2>Notes</h2>")
    assert decision < boxes < exact < working < limits < notes
    assert "3 disposals in 2023-24: net gain £1,600.00 against an annual exempt amount of £6,000.00" in page
    assert "reporting the losses (£105.00) within four years" in page

    sa108 = page[boxes:exact]
    for label, whole in [
        ("Number of disposals", "3"),
        ("Disposal proceeds", "£7,335"),
        ("Allowable costs (including purchase price)", "£5,735"),
        ("Gains in the year, before losses", "£1,705"),
        ("Losses in the year", "£105"),
    ]:
        assert (
            f'<td style="text-align:left">{html.escape(label)}</td><td style="text-align:right">{whole}</td>'
            in sa108
        )
    assert "£1,600.00" in page[exact:working] and "£4,400.00" in page[exact:working]  # net; exempt left

    disposals = page[working:limits].split('<div class="disposal">')[1:]
    assert len(disposals) == 3
    same_day, bed_and_breakfast, loss = disposals
    assert "01/06/2023: sold 300 VUSA (IE00B3XXRP09)" in same_day
    assert RULE_WORDS["SAME_DAY"] in same_day and RULE_WORDS["SECTION_104"] in same_day
    assert "£280.00" in same_day and "Gain</td>" in same_day and "£55.00" in same_day
    assert "30/08/2023: sold 4,000 VUSA" in bed_and_breakfast
    assert html.escape(RULE_WORDS["BED_AND_BREAKFAST"]) in bed_and_breakfast
    assert "11/09/2023" in bed_and_breakfast and "£850.00" in bed_and_breakfast
    assert "5,900 units costing £5,900.00" in bed_and_breakfast  # the pool afterwards
    assert "Loss</td>" in loss and "£105.00" in loss and "£5.00" in loss  # the costs of selling
    assert "From: Alice GIA AJ Bell" in loss

    allowances_part = page[limits:notes]
    assert "ISA subscriptions £19,000.00: only £1,000.00 of £20,000.00 left" in allowances_part
    assert "nearly used" in allowances_part and "Capital gains less losses" in allowances_part
    assert "Alice ISA £19,000.00" in allowances_part
    assert "Whole pounds, as the return asks" in page[notes:]
    assert "<li>Alice GIA AJ Bell</li><li>Alice GIA T212</li>" in page[notes:]
    assert "Alice ISA</li>" not in page[notes:]


def test_the_html_needs_nothing_but_itself_and_prints(book: Engine) -> None:
    page = report_html(*figures(book, "2023-24"))
    lowered = page.lower()
    assert "<script" not in lowered and "http://" not in lowered and "https://" not in lowered
    assert "<link" not in lowered and "@import" not in lowered and "url(" not in lowered
    assert "@media print" in page and "size: A4" in page and "break-before: page" in page
    assert page.count('<section class="new-page">') == 2  # the disposals and the allowances


def test_everything_is_escaped(book: Engine) -> None:
    report, used = figures(book, "2023-24")
    report["disposals"][0]["ticker"] = "A&B"
    report["general_accounts"] = ["<b>Mine</b>"]
    report["issues"] = ['"quoted" & <odd>']
    page = report_html(report, used)
    assert "sold 300 A&amp;B (IE00B3XXRP09)" in page and "A&B" not in page
    assert "<li>&lt;b&gt;Mine&lt;/b&gt;</li>" in page and "<b>" not in page
    assert "Warning: &quot;quoted&quot; &amp; &lt;odd&gt;" in page


def test_2024_25_shows_the_gains_either_side_of_30_october(book: Engine) -> None:
    report, used = figures(book, "2024-25")
    page = report_html(report, used)
    assert "also asks for the gains and losses before and from 30 October 2024" in page
    assert "Before and from 30 October 2024 (the rates changed on that day)" in page
    assert 'Gains from 30 October 2024</td><td style="text-align:right">£100.00' in page
    assert 'Gains before 30 October 2024</td><td style="text-align:right">£0.00' in page
    assert "1 disposal in 2024-25: net gain £100.00" in page


def test_a_year_without_disposals_still_reports_the_allowances(book: Engine) -> None:
    report, used = figures(book, "2022-23")
    page = report_html(report, used)
    assert "No disposals in your general accounts in 2022-23: nothing to report." in page
    assert "No disposals in your general accounts this tax year." in page
    assert "<h2>Allowances</h2>" in page
    assert report_csv(report) == ",".join(CSV_COLUMNS) + "\r\n"


def test_the_csv_is_one_row_per_match_with_exact_decimals(book: Engine) -> None:
    report, _ = figures(book, "2023-24")
    text = report_csv(report)
    assert "£" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [(r["disposal"], r["match"], r["rule"]) for r in rows] == [
        ("1", "1", "SAME_DAY"),
        ("1", "2", "SECTION_104"),
        ("2", "1", "BED_AND_BREAKFAST"),
        ("2", "2", "SECTION_104"),
        ("3", "1", "SECTION_104"),
    ]
    assert rows[2] | {} == {
        "disposal": "2",
        "date": "2023-08-30",
        "isin": VUSA,
        "ticker": "VUSA",
        "units": "4000",
        "proceeds": "6000.00",
        "disposal_costs": "0.00",
        "allowable_cost": "4350.00",
        "gain": "1650.00",
        "match": "1",
        "rule": "BED_AND_BREAKFAST",
        "match_units": "500",
        "match_cost": "850.00",
        "acquisition_date": "2023-09-11",
    }
    assert rows[3]["acquisition_date"] == "" and rows[3]["match_cost"] == "3500.00"
    net = sum((D(r["gain"]) for r in rows if r["match"] == "1"), D(0))
    assert net == report["totals"]["net_gain"] == D("1600.00")
    by_disposal = {r["disposal"]: D(r["gain"]) for r in rows}
    assert sum(by_disposal.values(), D(0)) == report["totals"]["net_gain"]


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    engine = create_db_engine(sqlite_url)
    build(engine)
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env |= {"TRADEASSIST_HOME": str(tmp_path / "home"), "TRADEASSIST_DB_URL": sqlite_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(args, env, cwd=tmp_path)

    return run


def test_the_cli_writes_the_report_and_prints_where(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "out").mkdir()
    written = cli("tax", "report", "--tax-year", "2023-24", "--owner", ALICE, "--out", "out/2023-24.html")
    assert written.returncode == 0, written.stderr
    target = (tmp_path / "out" / "2023-24.html").resolve()
    assert written.stdout == f"{target}\n"
    page = target.read_text(encoding="utf-8")
    assert "3 disposals in 2023-24: net gain £1,600.00" in page and "</html>" in page
    assert sorted(p.name for p in target.parent.iterdir()) == ["2023-24.html"]  # no partial file left

    as_csv = cli("tax", "report", "--tax-year", "2023-24", "--owner", ALICE, "--out", str(tmp_path / "w.CSV"))
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout.strip() == str((tmp_path / "w.CSV").resolve())
    rows = list(csv.DictReader(io.StringIO((tmp_path / "w.CSV").read_text(encoding="utf-8"))))
    assert len(rows) == 5 and sum(D(r["gain"]) for r in rows if r["match"] == "1") == D("1600.00")


@pytest.mark.parametrize(
    ("out", "says"),
    [
        ("report.pdf", "must end in .html or .csv"),
        ("report", "must end in .html or .csv"),
        ("missing/report.html", "does not exist; create it first"),
    ],
)
def test_the_cli_refuses_a_bad_target_in_one_line(cli, tmp_path: Path, out: str, says: str) -> None:  # type: ignore[no-untyped-def]
    refused = cli("tax", "report", "--tax-year", "2023-24", "--owner", ALICE, "--out", out)
    assert refused.returncode != 0 and refused.stdout == ""
    assert refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1, refused.stderr
    assert says in refused.stderr
    assert not (tmp_path / out).exists()


@pytest.mark.browser
@needs_chromium
def test_chromium_prints_the_report_to_pdf_without_fetching_anything(book: Engine, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    page_file = tmp_path / "report.html"
    page_file.write_text(report_html(*figures(book, "2023-24")), encoding="utf-8")
    fetched: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: fetched.append(request.url))
            page.goto(page_file.as_uri())
            assert "3 disposals in 2023-24" in page.locator(".decision").inner_text()
            page.emulate_media(media="print")
            breaks = page.eval_on_selector_all(
                "section.new-page", "nodes => nodes.map(n => getComputedStyle(n).breakBefore)"
            )
            assert breaks == ["page", "page"]
            pdf = page.pdf(format="A4", print_background=True)
        finally:
            browser.close()
    assert fetched == [page_file.as_uri()]
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
