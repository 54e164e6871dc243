"""The six observations that made advice unsafe, rerun as a user would: real processes on the
demo database (SQLite), the commands and JSON keys the issue names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import DEMO_END
from tests.support.cli import run_cli
from tradeassist.demo import DEMO_PORTFOLIO

AS_OF = DEMO_END.isoformat()
EXAMPLE_POLICY = {
    "drift_bands": {"absolute": "0.05", "relative": "0.25"},
    "min_trade_base": "100",
    "fee_per_trade_base": "1.50",
    "cash_buffer_base": "50",
    "whole_units": True,
    "allow_sells": {"MONTHLY_ALLOC": False, "QUARTERLY_REBAL": True},
}


@pytest.fixture
def cli(sqlite_demo_template: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "demo.db"
    shutil.copy(sqlite_demo_template, path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env |= {
        "TRADEASSIST_HOME": str(tmp_path / "home"),
        "TRADEASSIST_DB_URL": f"sqlite:///{path}",
        "TRADEASSIST_REPORTS_DIR": str(tmp_path / "reports"),
    }

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = run_cli(args, env, timeout=300)
        assert "Traceback" not in done.stderr, done.stderr
        if ok:
            assert done.returncode == 0, done.stderr
        return done

    return run


def strategy(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, label: str, targets: dict, manifesto: str, *scope: str, **policy
) -> None:
    policy_file, manifesto_file = tmp_path / f"{label}.json", tmp_path / f"{label}.md"
    policy_file.write_text(json.dumps({**EXAMPLE_POLICY, "sleeve_targets": targets, **policy}))
    manifesto_file.write_text(manifesto)
    portfolios = [arg for name in scope for arg in ("--portfolio", name)]
    cli(
        "strategy",
        "add",
        "--label",
        label,
        "--policy",
        str(policy_file),
        "--manifesto",
        str(manifesto_file),
        *portfolios,
    )
    cli("strategy", "approve", label)


def recommend(cli, kind: str = "QUARTERLY_REBAL", *extra: str) -> dict:  # type: ignore[no-untyped-def]
    done = cli("recommend", "--portfolio", DEMO_PORTFOLIO, "--kind", kind, "--as-of", AS_OF, "--json", *extra)
    return json.loads(done.stdout)


def sells(document: dict) -> list[dict]:
    return [
        line for line in document["lines"] if line["action"] == "SELL" and not line["suppressed_by_min_trade"]
    ]


def test_1_a_strategy_change_never_liquidates_the_holdings_it_does_not_name(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    strategy(
        cli,
        tmp_path,
        "two-sleeves",
        {"EQUITY": "0.80", "BONDS": "0.20"},
        "# Two sleeves\n\nEQUITY and BONDS.\n",
    )
    document = recommend(cli)
    assert sells(document) == []
    left = {(e["ticker"], e["reason"]) for e in document["left_alone"]}
    assert {
        ("VWRP", "UNTARGETED"),
        ("ISF", "UNTARGETED"),
        ("SMGB", "UNTARGETED"),
        ("XLE", "UNTARGETED"),
    } <= left
    assert all(
        e["value_base"] not in (None, "0") for e in document["left_alone"] if e["reason"] == "UNTARGETED"
    )
    assert "constituent add" in document["headline"]
    text = cli(
        "recommend", "--portfolio", DEMO_PORTFOLIO, "--kind", "QUARTERLY_REBAL", "--as-of", AS_OF
    ).stdout
    assert "Left alone: " in text and "not in the strategy" in text
    # The scheduled run does the same, and its stored recommendation (if any) sells nothing.
    cli("tasks", "run", "demo quarterly rebalance", "--at", AS_OF)
    for reco in json.loads(cli("reco", "list", "--all", "--json").stdout):
        if reco["kind"] == "QUARTERLY_REBAL":
            assert not [line for line in reco["lines"] if line["action"] == "SELL"]


def test_2_unpriced_holdings_block_instead_of_being_valued_at_zero(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for isin, ticker, name in (
        ("IE00BJ0KDQ92", "XDWL", "Xtrackers MSCI World"),
        ("IE00BM67HS53", "XMUK", "Xtrackers MSCI UK"),
    ):
        cli("instrument", "add", "--isin", isin, "--type", "ETF", "--name", name)
        listing = ("--ticker", ticker, "--exchange", "XLON", "--currency", "GBP", "--quote-scale", "GBP")
        cli("listing", "add", "--isin", isin, *listing)
        cli(
            "constituent",
            "add",
            "--portfolio",
            DEMO_PORTFOLIO,
            "--ticker",
            ticker,
            "--exchange",
            "XLON",
            "--sleeve",
            "CORE",
        )
    book = tmp_path / "transfer.csv"
    book.write_text(
        "entry_time,entry_type,ticker,exchange,units,price,fees_base,cash_amount_base,external_ref,notes\n"
        "2026-06-01,CONTRIBUTION,,,,,,2000.00,T0,\n"
        "2026-06-02,BUY,XDWL,XLON,10,80,0,-800.00,T1,\n"
        "2026-06-02,BUY,XMUK,XLON,20,50,0,-1000.00,T2,\n"
    )
    cli("ledger", "import", str(book), "--portfolio", DEMO_PORTFOLIO, "--format", "canonical")
    document = recommend(cli)
    assert document["lines"] == []
    assert "UNPRICED_HOLDING" in document["rules_fired"]
    assert "XDWL:XLON" in document["headline"] and "XMUK:XLON" in document["headline"]
    positions = {p["ticker"]: p for p in document["rationale"]["positions"]}
    assert positions["XDWL"]["value_base"] is None and positions["XDWL"]["in_base"] is False


def test_3_a_sleeve_the_portfolio_cannot_hold_is_shared_out(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    targets = {"CORE": "0.60", "SEMIS": "0.15", "ENERGY": "0.15", "CREDIT": "0.10"}
    strategy(cli, tmp_path, "with-credit", targets, "# With credit\n\nCORE, SEMIS, ENERGY and CREDIT.\n")
    document = recommend(cli, "MONTHLY_ALLOC", "--contribution", "1500")
    assert "SLEEVE_NOT_HELD" in document["rules_fired"]
    assert document["rationale"]["sleeves_not_held"] == ["CREDIT"]
    used = document["rationale"]["targets_used"]
    assert set(used) == {"CORE", "SEMIS", "ENERGY"}
    report = document["constraints_report"]
    # No idle 10 %: what is left unspent is less than one more minimum line.
    assert float(report["cash_left"]) < float(report["min_trade"])
    # A portfolio with no constituents at all is told to map them, not that nothing was affordable.
    cli("portfolio", "add", "Empty ISA", "--broker", "AJBell", "--tax-treatment", "ISA")
    cli("ledger", "add", "--portfolio", "Empty ISA", "--type", "CONTRIBUTION", "--amount", "1000")
    strategy(cli, tmp_path, "isa", targets, "# ISA\n\nCORE, SEMIS, ENERGY and CREDIT.\n", "Empty ISA")
    empty = json.loads(
        cli("recommend", "--portfolio", "Empty ISA", "--kind", "MONTHLY_ALLOC", "--json").stdout
    )
    assert "constituent add" in empty["headline"] and "affordable" not in empty["headline"]


def test_4_a_manifesto_rule_is_a_constraint_of_the_search(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    targets = {"CORE": "0.40", "SEMIS": "0.30", "ENERGY": "0.30"}
    strategy(cli, tmp_path, "free", targets, "# Free\n\nCORE, SEMIS and ENERGY.\n", max_turnover="1")
    sold = {line["ticker"] for line in sells(recommend(cli))}
    assert sold, "the unconstrained rebalance sells something"
    rule = ", ".join(sorted(sold))
    manifesto = f"# Kept\n\nCORE, SEMIS and ENERGY.\n\n- never sell: {rule}\n"
    strategy(cli, tmp_path, "kept", targets, manifesto, max_turnover="1")
    shown = json.loads(cli("strategy", "show", "--json").stdout)
    kept = next(row for row in shown if row["label"] == "kept")
    assert set(sold) <= set(kept["hard_rules"]["never_sell"])
    document = recommend(cli)
    assert not {line["ticker"] for line in sells(document)} & sold
    # The stored, reviewed recommendation of the scheduled run needs no override.
    cli("tasks", "run", "demo quarterly rebalance", "--at", AS_OF)
    for reco in json.loads(cli("reco", "list", "--json").stdout):
        verdict = reco["latest_verdict"] or {}
        assert "never sell" not in json.dumps(verdict)


def test_5_the_rebalance_is_short_and_proven_optimal(cli) -> None:  # type: ignore[no-untyped-def]
    document = recommend(cli)
    if document["lines"]:
        assert document["proven_optimal"] is True
        assert float(document["lower_bound"]) <= float(document["objective"])
    executed = [line for line in document["lines"] if not line["suppressed_by_min_trade"]]
    assert len(executed) <= 4


def test_6_a_listing_can_be_moved_to_another_sleeve(cli) -> None:  # type: ignore[no-untyped-def]
    listed = json.loads(cli("constituent", "list", "--portfolio", DEMO_PORTFOLIO, "--json").stdout)
    assert {"ticker": "SMGB", "exchange": "XLON", "sleeve": "SEMIS"}.items() <= next(
        row for row in listed if row["ticker"] == "SMGB"
    ).items()
    cli(
        "constituent",
        "move",
        "--portfolio",
        DEMO_PORTFOLIO,
        "--ticker",
        "SMGB",
        "--exchange",
        "XLON",
        "--sleeve",
        "CORE",
    )
    listed = json.loads(cli("constituent", "list", "--portfolio", DEMO_PORTFOLIO, "--json").stdout)
    assert next(row for row in listed if row["ticker"] == "SMGB")["sleeve"] == "CORE"
    refused = cli(
        "constituent",
        "move",
        "--portfolio",
        DEMO_PORTFOLIO,
        "--ticker",
        "SMGB",
        "--exchange",
        "XLON",
        "--sleeve",
        "NOPE",
        ok=False,
    )
    assert refused.returncode != 0 and refused.stderr.startswith("error: ")
