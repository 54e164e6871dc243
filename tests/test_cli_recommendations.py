"""``reco`` and ``strategy approve --override-reason`` as a user meets them: real processes,
JSON for scripts, one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.recommendations import store
from tests.test_services_recommendations import contribute, expected_cash, fills_at_estimates
from tradeassist.core.money import format_gbp
from tradeassist.db.engine import create_db_engine
from tradeassist.demo import data

ROW_KEYS = {
    "recommendation_id",
    "portfolio",
    "run_id",
    "kind",
    "created_at",
    "status",
    "status_reason",
    "headline",
    "rationale",
    "constraints_report",
    "lines",
    "verdicts",
    "latest_verdict",
    "blocked",
    "frozen",
    "household_run_id",
}


@pytest.fixture
def cli(demo_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env |= {"TRADEASSIST_HOME": str(tmp_path / "home"), "TRADEASSIST_DB_URL": demo_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = run_cli(args, env)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    return run


def fill_text(fill) -> str:  # type: ignore[no-untyped-def]
    parts = [fill.ticker, fill.exchange, fill.action, str(fill.units), str(fill.price), str(fill.fees_base)]
    if fill.consideration_base is not None:
        parts.append(str(fill.consideration_base))
    return ":".join(parts)


def test_list_approve_execute_ignore(cli, demo_url: str) -> None:  # type: ignore[no-untyped-def]
    engine = create_db_engine(demo_url)
    try:
        first, second = store(engine, "MONTHLY_ALLOC", "1000"), store(engine, "QUARTERLY_REBAL")
        contribute(engine, "1000")
    finally:
        engine.dispose()

    listed = json.loads(cli("reco", "list", "--json").stdout)
    assert [r["recommendation_id"] for r in listed] == [second, first]  # newest first
    assert all(set(r) == ROW_KEYS for r in listed)
    assert [(r["kind"], r["status"]) for r in listed] == [
        ("QUARTERLY_REBAL", "DRAFT"),
        ("MONTHLY_ALLOC", "DRAFT"),
    ]
    assert isinstance(listed[1]["lines"][0]["amount_base"], str)  # decimals as strings
    shown = json.loads(cli("reco", "show", str(first), "--json").stdout)
    assert shown == listed[1]

    approved = cli("reco", "approve", str(first))
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.splitlines()[0] == f"recommendation {first} approved: REVIEWED"
    text = cli("reco", "show", str(first))
    assert f"recommendation {first} (REVIEWED) for {listed[1]['portfolio']}" in text.stdout
    assert "PASS by builtin-rules (rules-v2)" in text.stdout
    for line in shown["lines"]:  # money in pounds and pence (the exact figures are in --json)
        assert format_gbp(Decimal(line["amount_base"])) in text.stdout
    assert not re.search(r"\d\.\d{3,}", text.stdout), text.stdout  # never 4607.0384345625

    fills = fills_at_estimates(shown["lines"])
    args = [arg for fill in fills for arg in ("--fill", fill_text(fill))]
    executed = cli("reco", "execute", str(first), *args, "--json")
    assert executed.returncode == 0, executed.stderr
    result = json.loads(executed.stdout)
    assert set(result) == {"recommendation_id", "status", "ledger_batch_id", "entries", "cash_balance"}
    assert (result["status"], result["entries"]) == ("EXECUTED", len(fills))
    cash_before = Decimal(shown["constraints_report"]["cash"]) + 1000
    assert Decimal(result["cash_balance"]) == cash_before + sum(expected_cash(f) for f in fills)
    batches = json.loads(cli("ledger", "batches", "--portfolio", listed[0]["portfolio"], "--json").stdout)
    assert [b["recommendation_id"] for b in batches if b["batch_type"] == "EXECUTION"] == [first]

    again = cli("reco", "execute", str(first), *args)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"error: recommendation {first} is EXECUTED: only a REVIEWED recommendation can be executed"
    )
    malformed = cli("reco", "execute", str(second), "--fill", "VWRP:XLON:BUY:3")
    assert malformed.returncode == 1 and malformed.stderr.startswith(
        "error: --fill 'VWRP:XLON:BUY:3': expected"
    )

    ignored = cli("reco", "ignore", str(second), "--reason", "holiday month")
    assert (
        ignored.returncode == 0
        and ignored.stdout.strip() == f"recommendation {second} ignored: holiday month"
    )
    refused = cli("reco", "approve", str(second))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"error: recommendation {second} is IGNORED: only a DRAFT recommendation can be approved"
    )
    assert json.loads(cli("reco", "list", "--json").stdout) == []
    closed = json.loads(cli("reco", "list", "--all", "--json").stdout)
    assert [(r["recommendation_id"], r["status"], r["status_reason"]) for r in closed] == [
        (second, "IGNORED", "holiday month"),
        (first, "EXECUTED", None),
    ]


def test_a_fail_needs_an_override_reason(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "policy.json").write_text(data.POLICY)
    (tmp_path / "manifesto.md").write_text("# Plan\n\nMostly CORE, some SEMIS.\n")
    added = cli(
        "strategy", "add", "--label", "vague", "--policy", str(tmp_path / "policy.json"),
        "--manifesto", str(tmp_path / "manifesto.md"),
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    refused = cli("strategy", "approve", "vague")
    assert refused.returncode == 1
    assert refused.stdout.strip() == "manifesto review: FAIL (builtin-rules)"
    assert refused.stderr.startswith("error: strategy 'vague': its manifesto: the review by builtin-rules")
    assert "ENERGY" in refused.stderr and "--override-reason" not in refused.stderr
    approved = cli("strategy", "approve", "vague", "--override-reason", "ENERGY is implied")
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.splitlines()[-1] == "strategy approved: vague"
    shown = json.loads(cli("strategy", "show", "--json").stdout)
    assert {r["version_label"]: r["status"] for r in shown}["vague"] == "APPROVED"
