"""The demo loads once, through the services, and is what the README promises."""

from __future__ import annotations

import json
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from tests.conftest import DEMO_END
from tests.support.cli import run_cli
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import LedgerEntry, PricePoint, TaskDefinition
from tradeassist.demo import DEMO_PORTFOLIO, load_demo, summarize


def test_demo_is_a_sipp_with_pence_pounds_and_dollars(demo_engine: Engine) -> None:
    summary = summarize(demo_engine)
    assert (summary.portfolio, summary.broker, summary.tax_treatment) == (DEMO_PORTFOLIO, "AJBell", "SIPP")
    assert {ticker for ticker, units in summary.holdings if units > 0} == {"VWRP", "ISF", "SMGB", "XLE"}
    assert summary.cash_balance >= Decimal("50")  # the buffer was always kept
    with unit_of_work(demo_engine, readonly=True) as session:
        kinds = set(session.exec(select(TaskDefinition.task_kind)).all())
        points = session.exec(select(func.count()).select_from(PricePoint)).one()
        contributions = session.exec(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.entry_type == "CONTRIBUTION")
        ).one()
    assert {k.value for k in kinds} == {
        "PRICE_REFRESH",
        "WEEKLY_REVIEW",
        "MONTHLY_ALLOC",
        "QUARTERLY_REBAL",
        "ALERT_ONLY",
    }
    assert points >= 4 * 3 * 250  # three years of business days for four listings
    assert contributions == 36
    assert load_demo(demo_engine, end=DEMO_END) is False  # never loaded twice


@pytest.mark.slow
def test_demo_cli_without_running(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env["TRADEASSIST_HOME"] = str(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(args, env, timeout=300)

    assert run("init").returncode == 0
    first = run("demo", "--no-run")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("loaded: Demo SIPP")
    again = run("demo", "--no-run")
    assert again.returncode == 0 and again.stdout.startswith("already loaded: Demo SIPP")
    listed = json.loads(run("portfolio", "list", "--json").stdout)
    assert [p["name"] for p in listed] == ["Demo SIPP"]
