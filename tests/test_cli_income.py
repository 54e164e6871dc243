"""``tradeassist income`` as a user meets it: real processes, dividends per listing and tax year,
legacy INTEREST ``dividend: …`` rows counted as dividends, sums exact, decimals as strings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.services import identity, portfolios, registry

TRADEASSIST = [sys.executable, "-m", "tradeassist"]
VWRL = "IE00B3RBWM25"


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = create_db_engine(sqlite_url)
    with unit_of_work(engine) as s:
        actor = identity.bootstrap_admin(s)
        registry.add_instrument(s, actor=actor, isin=VWRL, instrument_type="ETF")
        registry.add_listing(
            s, actor=actor, isin=VWRL, ticker="VWRL", exchange="XLON", currency="GBP", quote_scale="GBX"
        )
        portfolios.add_portfolio(s, actor=actor, name="ISA", broker="AJBell", tax_treatment="ISA")
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env |= {"TRADEASSIST_HOME": str(tmp_path / "home"), "TRADEASSIST_DB_URL": sqlite_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(args, env)

    return run


def test_income_json_sums_exactly_per_listing_and_tax_year(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ledger_csv = tmp_path / "ledger.csv"
    ledger_csv.write_text(
        "entry_time,entry_type,ticker,exchange,units,price,fees_base,cash_amount_base,external_ref,notes\n"
        "2023-04-10,CONTRIBUTION,,,,,,1000.00,C1,\n"
        "2023-05-01,DIVIDEND,VWRL,XLON,,,,0.1,D1,dividend: VWRL\n"
        "2023-06-01,DIVIDEND,VWRL,XLON,,,,0.2,D2,\n"
        "2023-06-15,INTEREST,,,,,,0.3,L1,dividend: VWRL (12 units)\n"  # as the imports wrote them before
        "2023-07-01,INTEREST,,,,,,0.07,I1,Gross interest\n"
        "2024-05-01,DIVIDEND,VWRL,XLON,,,,1.00,D3,\n"
    )
    imported = cli("ledger", "import", str(ledger_csv), "--portfolio", "ISA", "--format", "canonical")
    assert imported.returncode == 0, imported.stderr
    added = cli(
        "ledger", "add", "--portfolio", "ISA", "--type", "DIVIDEND", "--ticker", "VWRL", "--exchange", "XLON",
        "--amount", "0.1", "--time", "2023-08-01",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = json.loads(cli("ledger", "list", "--portfolio", "ISA", "--json").stdout)
    assert (listed[-2]["entry_type"], listed[-2]["ticker"], listed[-2]["cash_amount_base"]) == (
        "DIVIDEND",
        "VWRL",
        "0.1",
    )

    everything = cli("income", "--json")
    assert everything.returncode == 0, everything.stderr
    rows = json.loads(everything.stdout)
    assert rows == [
        {
            "tax_year": "2023-24", "portfolio": "ISA", "tax_treatment": "ISA", "kind": "DIVIDEND",
            "ticker": "VWRL", "exchange": "XLON", "isin": VWRL, "payer": None, "amount": "0.7", "entries": 4,
        },  # 0.1 + 0.2 + 0.3 + 0.1: exactly 0.7, never 0.7000000000000001
        {
            "tax_year": "2023-24", "portfolio": "ISA", "tax_treatment": "ISA", "kind": "INTEREST",
            "ticker": None, "exchange": None, "isin": None, "payer": None, "amount": "0.07", "entries": 1,
        },
        {
            "tax_year": "2024-25", "portfolio": "ISA", "tax_treatment": "ISA", "kind": "DIVIDEND",
            "ticker": "VWRL", "exchange": "XLON", "isin": VWRL, "payer": None, "amount": "1.00", "entries": 1,
        },
    ]  # fmt: skip

    one_year = cli("income", "--portfolio", "ISA", "--tax-year", "2023/24", "--json")
    assert [(r["tax_year"], r["kind"], r["amount"]) for r in json.loads(one_year.stdout)] == [
        ("2023-24", "DIVIDEND", "0.7"),
        ("2023-24", "INTEREST", "0.07"),
    ]
    text = cli("income", "--tax-year", "2023-24")
    assert text.returncode == 0, text.stderr
    assert "2023-24 ISA: dividends £0.70, interest £0.07" in text.stdout
    assert text.stdout.splitlines()[0].split()[:4] == ["tax_year", "portfolio", "tax_treatment", "kind"]

    bad = cli("income", "--tax-year", "2023")
    assert bad.returncode != 0 and bad.stderr.strip() == (
        "error: tax year '2023': write it as 2023-24 (6 April 2023 to 5 April 2024)"
    )
    unknown = cli("income", "--portfolio", "NOPE")
    assert (
        unknown.returncode != 0 and unknown.stderr.startswith("error: ") and "Traceback" not in unknown.stderr
    )
