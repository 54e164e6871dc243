"""From the book of record to the engine's input and back: the demo portfolio on both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.engine import Engine

from tests.conftest import DEMO_AS_OF, DEMO_END
from tradeassist.core.money import ZERO
from tradeassist.db.engine import unit_of_work
from tradeassist.demo import DEMO_PORTFOLIO, data
from tradeassist.providers.prices.base import PriceBar, PriceSeries
from tradeassist.services import advice, governance, identity, prices, registry


def _inputs(engine: Engine, **kwargs):  # type: ignore[no-untyped-def]
    args = {"portfolio": DEMO_PORTFOLIO, "kind": "MONTHLY_ALLOC", "as_of": DEMO_AS_OF} | kwargs
    with unit_of_work(engine, readonly=True) as session:
        return advice.prepare_inputs(session, **args)


def test_monthly_allocation_conserves_money_and_replays_from_its_snapshot(demo_engine: Engine) -> None:
    inputs = _inputs(demo_engine, contribution="1000")
    result = advice.recommend(inputs)
    report = result.constraints_report
    assert result.executed_lines and all(line.action == "BUY" for line in result.lines)
    money = Decimal(report["money_available"])
    assert money == Decimal(report["cash"]) + Decimal("1000") - Decimal("50")
    spent = sum((line.amount_base for line in result.executed_lines), ZERO)
    assert spent + Decimal(report["fees"]) + Decimal(report["cash_left"]) == money
    # The snapshot alone gives the same recommendation, through JSON text and back.
    stored = json.loads(json.dumps(inputs.snapshot))
    assert advice.recommend_from_snapshot(stored).to_json_dict() == result.to_json_dict()
    assert _inputs(demo_engine, contribution="1000").input_hash == inputs.input_hash
    assert set(inputs.snapshot) == {
        "schema",
        "parameters",
        "strategy",
        "state",
        "holdings",
        "cash",
        "prices",
        "fx",
    }
    assert {p["ticker"] for p in inputs.snapshot["prices"]} == {"VWRP", "ISF", "SMGB", "XLE"}
    assert [f["pair"] for f in inputs.snapshot["fx"]] == ["GBPUSD"]


def test_a_past_moment_is_read_from_the_replayed_ledger(demo_engine: Engine) -> None:
    moment = datetime(2025, 1, 15, 12, tzinfo=UTC)
    inputs = _inputs(demo_engine, as_of=moment)
    units = {listing.ticker: 0 for listing in data.LISTINGS}
    cash = ZERO
    for day, trades in data.monthly_plan(DEMO_END):
        if data.at_london(day, 9) > moment:
            break
        cash += data.MONTHLY_CONTRIBUTION
        for trade in trades:
            units[trade.ticker] += trade.units
            cash -= trade.consideration + data.FEE
    assert inputs.state.cash_gbp == cash
    assert {p.ticker: int(p.units) for p in inputs.state.positions} == units
    prices_used = {p["ticker"]: p["as_of"] for p in inputs.snapshot["prices"]}
    # At noon the day's close is not in yet: the latest close is the previous business day's.
    assert all(when.startswith("2025-01-14") for when in prices_used.values())


def test_a_frozen_portfolio_is_never_traded(demo_engine: Engine) -> None:
    with unit_of_work(demo_engine) as session:
        admin = identity.bootstrap_admin(session)
        governance.freeze_portfolio(session, actor=admin, portfolio=DEMO_PORTFOLIO, reason="testing")
    inputs = _inputs(demo_engine, contribution="1000")
    assert inputs.state.frozen
    assert advice.recommend(inputs).executed_lines == ()


def test_a_price_a_hundred_times_off_is_never_used(demo_engine: Engine) -> None:
    closes = dict(data.closes(DEMO_END)["VWRP"])
    good = closes[DEMO_END]
    with unit_of_work(demo_engine) as session:
        admin = identity.bootstrap_admin(session)
        listing = registry.get_listing(session, "VWRP", "XLON")
        bar = PriceBar(
            as_of=datetime(2026, 7, 1).date(),
            close=good * 100,
            currency=None,
            quote_scale=None,
            source="demo",
        )
        prices.ingest_series(
            session,
            actor=admin,
            listing=listing,
            series=PriceSeries(source="demo", source_name="glitch", bars=(bar,)),
        )
    later = datetime(2026, 7, 1, 22, tzinfo=UTC)
    inputs = _inputs(demo_engine, as_of=later)
    vwrp = next(p for p in inputs.snapshot["prices"] if p["ticker"] == "VWRP")
    assert Decimal(vwrp["price_gbp"]) == good and vwrp["as_of"].startswith("2026-06-30")
    assert inputs.state.frozen  # the suspect point froze the portfolio that holds it


def test_recommend_cli_prints_the_documented_json(demo_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env["TRADEASSIST_DB_URL"] = demo_url
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tradeassist",
            "recommend",
            "--portfolio",
            DEMO_PORTFOLIO,
            "--kind",
            "QUARTERLY_REBAL",
            "--as-of",
            DEMO_END.isoformat(),
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {
        "headline",
        "rationale",
        "constraints_report",
        "lines",
        "left_alone",
        "excluded_value_base",
        "rules_fired",
        "objective",
        "lower_bound",
        "proven_optimal",
        "nodes",
    }
    for line in document["lines"]:
        assert set(line) == {
            "ticker",
            "exchange",
            "action",
            "amount_base",
            "estimated_units",
            "suppressed_by_min_trade",
            "reason_code",
        }
        assert isinstance(line["amount_base"], str)
