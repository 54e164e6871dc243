"""The ledger commands as a user meets them: real processes, exact JSON keys, decimals as strings,
one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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

    def start(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*TRADEASSIST, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def run(*commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
        """Run commands at once (read-only ones, or one writer) and wait for them all."""
        started = [(c, start(*c)) for c in commands]
        done = []
        for command, process in started:
            out, err = process.communicate(timeout=120)
            done.append(subprocess.CompletedProcess(command, process.returncode, out, err))
        return done

    return run


@pytest.mark.slow
def test_import_list_holdings_cash_and_corporate_actions(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ledger_csv = tmp_path / "ledger.csv"
    ledger_csv.write_text(
        "entry_time,entry_type,ticker,exchange,units,price,fees_base,cash_amount_base,external_ref,notes\n"
        "2024-01-02,CONTRIBUTION,,,,,,1000.00,C1,first\n"
        "2024-01-03,BUY,VWRL,XLON,10,8512.5,5.00,-856.25,C2,\n"
    )
    (imported,) = cli(("ledger", "import", str(ledger_csv), "--portfolio", "ISA", "--format", "canonical"))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "ledger.csv: 2 entries added (batch 1); cash £143.75"

    again, added = cli(
        ("ledger", "import", str(ledger_csv), "--portfolio", "ISA", "--format", "canonical"),
        (
            "corporate-action",
            "add",
            "--isin",
            VWRL,
            "--type",
            "SPLIT",
            "--effective",
            "2024-02-01",
            "--ratio",
            "2:1",
        ),
    )
    assert "imported before; nothing added" in again.stdout, again.stderr
    assert added.returncode == 0 and "corporate action 1 recorded" in added.stdout, added.stderr

    holdings, cash, entries, actions, rebuilt = cli(
        ("holdings", "--portfolio", "ISA", "--json"),
        ("cash", "--portfolio", "ISA", "--json"),
        ("ledger", "list", "--portfolio", "ISA", "--json"),
        ("corporate-action", "list", "--json"),
        ("ledger", "rebuild", "--portfolio", "ISA"),
    )
    [held] = json.loads(holdings.stdout)
    assert {k: held[k] for k in ("ticker", "exchange", "isin", "units", "avg_cost_base")} == {
        "ticker": "VWRL", "exchange": "XLON", "isin": VWRL, "units": "20", "avg_cost_base": "42.8125000000"
    }  # fmt: skip
    assert (held["book_cost"], held["market_value"], held["price_status"]) == ("856.25", None, "no price")
    assert json.loads(cash.stdout) == {"currency": "GBP", "cash_balance": "143.75"}
    rows = json.loads(entries.stdout)
    assert [
        (r["entry_type"], r["units"], r["price"], r["cash_amount_base"], r["external_ref"]) for r in rows
    ] == [
        ("CONTRIBUTION", None, None, "1000.00", "C1"),
        ("BUY", "10", "8512.5", "-856.25", "C2"),
    ]
    assert rows[0]["entry_time"] == "2024-01-02T00:00:00+00:00"
    assert json.loads(actions.stdout) == [
        {
            "corp_action_id": 1,
            "isin": VWRL,
            "action_type": "SPLIT",
            "effective_date": "2024-02-01",
            "ratio_num": "2",
            "ratio_den": "1",
            "new_isin": None,
            "notes": None,
        }
    ]
    assert "rebuilt ISA from 2 entries: 1 holdings, cash £143.75 (unchanged)" in rebuilt.stdout, (
        rebuilt.stderr
    )


def test_manual_posting_correction_and_one_line_errors(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (contribution,) = cli(
        (
            "ledger",
            "add",
            "--portfolio",
            "ISA",
            "--type",
            "CONTRIBUTION",
            "--amount",
            "1000",
            "--time",
            "2024-01-02",
        )
    )
    assert contribution.stdout.strip() == "posted batch 1; cash £1,000.00", contribution.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "entry_time,entry_type,ticker,exchange,units,price,fees_base,cash_amount_base,external_ref,notes\n"
        "2024-01-03,BUY,VWRL,XLON,10,8512.5,5.00,-856.26,X1,\n"
        "2024-01-04,SELL,NOPE,XLON,1,1,0,1,X2,\n"
    )
    oversell, refused, wrong_format, correct = cli(
        (
            "ledger",
            "add",
            "--portfolio",
            "ISA",
            "--type",
            "SELL",
            "--ticker",
            "VWRL",
            "--units",
            "1",
            "--price",
            "100",
        ),
        ("ledger", "import", str(bad), "--portfolio", "ISA", "--format", "canonical"),
        ("ledger", "import", str(bad), "--portfolio", "ISA", "--format", "ibkr"),
        (
            "ledger",
            "correct",
            "1",
            "--portfolio",
            "ISA",
            "--type",
            "CONTRIBUTION",
            "--amount",
            "900",
            "--time",
            "2024-01-02",
        ),
    )
    assert oversell.returncode != 0
    assert oversell.stderr.strip() == "error: refused: entry 1: sells 1 units but only 0 are held then"
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert (
        refused.stderr.strip()
        == "error: bad.csv: line 3: unknown listing NOPE on XLON: add it with `tradeassist listing add`"
    )
    assert (
        wrong_format.returncode != 0
        and "expected one of canonical, ajbell, trading212" in wrong_format.stderr
    )
    assert correct.returncode == 0, correct.stderr
    assert correct.stdout.strip() == "correction posted as batch 2; cash £900.00"
    (cash,) = cli(("cash", "--portfolio", "ISA"))
    assert cash.stdout.split() == ["currency", "cash_balance", "GBP", "900"]
