"""The tax commands as a user meets them: real processes on a real database, the JSON keys the
issue names, the measured cases' figures, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ADMIN_EMAIL
from tests.support.cli import run_cli
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.services import identity, portfolios, registry

TRADEASSIST = [sys.executable, "-m", "tradeassist"]
VUSA = "IE00B3XXRP09"
VWRL = "IE00B3RBWM25"


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = create_db_engine(sqlite_url)
    with unit_of_work(engine) as s:
        admin = identity.bootstrap_admin(s)
        assert admin is not None
        for isin, ticker in ((VUSA, "VUSA"), (VWRL, "VWRL")):
            registry.add_instrument(s, actor=admin, isin=isin, instrument_type="ETF")
            registry.add_listing(
                s, actor=admin, isin=isin, ticker=ticker, exchange="XLON", currency="GBP", quote_scale="GBP"
            )
        portfolios.add_portfolio(s, actor=admin, name="GIA", broker="AJBell", tax_treatment="GIA")
        portfolios.add_portfolio(s, actor=admin, name="ISA", broker="AJBell", tax_treatment="ISA")
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env |= {"TRADEASSIST_HOME": str(tmp_path / "home"), "TRADEASSIST_DB_URL": sqlite_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(args, env)

    return run


def post(cli, kind: str, time: str, *extra: str) -> None:  # type: ignore[no-untyped-def]
    done = cli("ledger", "add", "--portfolio", "GIA", "--type", kind, "--time", time, *extra)
    assert done.returncode == 0, done.stderr


def trade(
    cli, kind: str, time: str, units: str, price: str, cash: str, ticker: str = "VUSA", fees: str = "0"
) -> None:  # type: ignore[no-untyped-def]
    listing = ("--ticker", ticker, "--exchange", "XLON")
    post(cli, kind, time, *listing, "--units", units, "--price", price, "--cash", cash, "--fees", fees)


def test_the_measured_same_day_and_loss_harvest_cases_from_the_cli(cli) -> None:  # type: ignore[no-untyped-def]
    post(cli, "CONTRIBUTION", "2020-01-02", "--amount", "30000")
    trade(cli, "BUY", "2020-01-06", "1000", "4", "-4000")
    trade(cli, "SELL", "2022-06-01T09:00", "300", "6.10", "1830")  # sold before the day's purchase
    trade(cli, "BUY", "2022-06-01T15:00", "200", "6", "-1200")
    trade(cli, "BUY", "2022-03-01", "1000", "10", "-10010", "VWRL", "10")
    trade(cli, "SELL", "2023-10-02", "1000", "7", "6990", "VWRL", "10")
    trade(cli, "BUY", "2023-10-04", "1000", "7.05", "-7060", "VWRL", "10")
    same_day = json.loads(cli("tax", "cgt", "--tax-year", "2022-23", "--json").stdout)
    assert [(d["ticker"], d["gain"]) for d in same_day["disposals"]] == [("VUSA", "230.00")]
    harvest = json.loads(cli("tax", "cgt", "--tax-year", "2023-24", "--json").stdout)
    assert [(d["ticker"], d["gain"]) for d in harvest["disposals"]] == [("VWRL", "-70.00")]
    assert (harvest["totals"]["losses"], harvest["totals"]["net_gain"]) == ("70.00", "-70.00")


def test_hs284_example_2_from_the_cli(cli) -> None:  # type: ignore[no-untyped-def]
    post(cli, "CONTRIBUTION", "2015-01-02", "--amount", "10000")
    trade(cli, "BUY", "2015-01-05", "9500", "1.00", "-9500")
    trade(cli, "SELL", "2023-08-30", "4000", "1.50", "6000")
    trade(cli, "BUY", "2023-09-11", "500", "1.70", "-850")

    done = cli("tax", "cgt", "--tax-year", "2023-24", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {"tax_year", "owner", "disposals", "totals"} <= report.keys()
    assert (report["tax_year"], report["owner"]) == ("2023-24", ADMIN_EMAIL)
    (disposal,) = report["disposals"]
    assert {
        "date",
        "isin",
        "ticker",
        "units",
        "proceeds",
        "allowable_cost",
        "gain",
        "matches",
    } <= disposal.keys()
    assert (disposal["date"], disposal["isin"], disposal["ticker"], disposal["units"]) == (
        "2023-08-30",
        VUSA,
        "VUSA",
        "4000",
    )
    assert (disposal["proceeds"], disposal["allowable_cost"], disposal["gain"]) == (
        "6000.00",
        "4350.00",
        "1650.00",
    )
    assert disposal["matches"] == [
        {
            "rule": "BED_AND_BREAKFAST",
            "units": "500",
            "cost": "850.00",
            "acquisition_date": "2023-09-11",
            "entries": [4],
        },
        {
            "rule": "SECTION_104",
            "units": "3500",
            "cost": "3500.00",
            "acquisition_date": None,
            "entries": [],
            "pool_units_after": "6000",
            "pool_cost_after": "6000.00",
        },
    ]
    totals = report["totals"]
    assert {
        "disposal_count",
        "proceeds",
        "allowable_costs",
        "gains",
        "losses",
        "net_gain",
        "annual_exempt_amount",
        "reporting_required",
    } <= totals.keys()
    assert (totals["disposal_count"], totals["net_gain"], totals["annual_exempt_amount"]) == (
        1,
        "1650.00",
        "6000",
    )
    assert totals["reporting_required"] is False and totals["reporting_reason"].startswith("not required")
    assert report["whole_pounds"]["gains"] == 1650

    text = cli("tax", "cgt", "--tax-year", "2023-24")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == (
        "1 disposal in 2023-24: net gain £1,650.00 against an annual exempt amount of £6,000.00; "
        "reporting is not required."
    )
    assert (
        "30/08/2023  sold 4,000 VUSA (IE00B3XXRP09): proceeds £6,000.00, allowable cost £4,350.00, "
        "gain £1,650.00" in lines
    )
    assert (
        "    500 units bought within 30 days after (bed and breakfast) on 11/09/2023: cost £850.00" in lines
    )

    pools = json.loads(cli("tax", "pools", "--json").stdout)
    assert [(p["isin"], p["units"], p["cost"]) for p in pools["pools"]] == [(VUSA, "6000", "6000.00")]
    before = json.loads(cli("tax", "pools", "--as-of", "2023-09-10", "--json").stdout)
    assert [(p["units"], p["cost"]) for p in before["pools"]] == [("5500", "5500.00")]
    assert before["as_of"] == "2023-09-10"


def test_allowances_and_the_isa_limit_from_the_cli(cli) -> None:  # type: ignore[no-untyped-def]
    paid = cli(
        "ledger",
        "add",
        "--portfolio",
        "ISA",
        "--type",
        "CONTRIBUTION",
        "--time",
        "2024-05-01",
        "--amount",
        "19500",
    )
    assert paid.returncode == 0, paid.stderr
    over = cli(
        "ledger",
        "add",
        "--portfolio",
        "ISA",
        "--type",
        "CONTRIBUTION",
        "--time",
        "2025-04-05",
        "--amount",
        "600",
    )
    assert over.returncode != 0
    assert over.stderr.strip().splitlines() == [
        "error: refused: entry 1: ISA subscriptions for 2024-25 would be £20,100.00 (£19,500.00 paid in "
        "before this £600.00), over the £20,000.00 allowance by £100.00; record it anyway with --force"
    ]
    forced = cli(
        "ledger",
        "add",
        "--portfolio",
        "ISA",
        "--type",
        "CONTRIBUTION",
        "--time",
        "2025-04-05",
        "--amount",
        "600",
        "--force",
    )
    assert forced.returncode == 0, forced.stderr
    result = json.loads(cli("tax", "allowances", "--tax-year", "2024-25", "--json").stdout)
    assert {"isa", "pension", "dividends", "interest", "capital_gains", "warnings"} <= result.keys()
    assert (result["isa"]["subscribed"], result["isa"]["status"]) == ("20100", "over")
    text = cli("tax", "allowances", "--tax-year", "2024-25").stdout.splitlines()
    assert (
        text[0].startswith("Allowances 2024-25 for ")
        and "over the £20,000.00 allowance by £100.00" in text[0]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tax", "cgt", "--tax-year", "2023"), "error: tax year '2023': write it as 2023-24"),
        (("tax", "cgt", "--tax-year", "2010-11"), "error: tax year 2010-11: no allowances are known for it"),
        (
            ("tax", "cgt", "--tax-year", "2023-24", "--owner", "nobody@example.com"),
            "error: no user 'nobody@example.com'",
        ),
        (("tax", "pools", "--as-of", "yesterday"), "error: --as-of: 'yesterday' is not a date"),
    ],
)
def test_bad_input_is_one_line(cli, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    done = cli(*args)
    assert done.returncode != 0
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(message), line
