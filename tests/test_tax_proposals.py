"""Capital gains on proposed trades in a general account (engine.tax.proposals and the advice
service): SELL lines carry their estimated gain, the constraints report totals them against
the exempt amount left, a purchase soon after a sale is flagged; replays give the same."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from sqlalchemy.engine import Engine

from tests.conftest import DEMO_AS_OF, DEMO_END
from tradeassist.core.enums import TradeAction
from tradeassist.db.engine import unit_of_work
from tradeassist.demo import DEMO_PORTFOLIO, data
from tradeassist.engine.model import Recommendation, RecommendationLine
from tradeassist.engine.tax.matching import Trade
from tradeassist.engine.tax.proposals import TaxContext, apply_tax, context_from_dict, context_to_dict
from tradeassist.services import advice, identity, portfolios, strategy
from tradeassist.services.ledger import NewEntry, post_entries
from tradeassist.services.recommendation_records import lines_of

VWRL, ISF = "IE00B3RBWM25", "IE0005042456"


def line(action: str, ticker: str, units: str, amount: str) -> RecommendationLine:
    return RecommendationLine(ticker, "XLON", TradeAction(action), D(amount), D(units), False, "DRIFT")


def context(**changes: object) -> TaxContext:
    base = TaxContext(
        tax_year="2026-27",
        annual_exempt_amount=D(3000),
        net_gain_to_date=D("1000.00"),
        isin_by_listing={"VWRL:XLON": VWRL, "ISF:XLON": ISF},
        trades=(
            Trade(date(2020, 1, 6), VWRL, D(100), D("5000"), False),
            Trade(date(2021, 1, 6), ISF, D(1000), D("7000"), False),
            Trade(date(2026, 11, 20), ISF, D(100), D("800"), True),  # 17 days before
        ),
    )
    return TaxContext(**(base.__dict__ | changes))  # type: ignore[arg-type]


def recommendation(*lines: RecommendationLine) -> Recommendation:
    return Recommendation("Rebalance", {"rules_fired": []}, {"fees": "3.00"}, lines)


AS_OF = date(2026, 12, 7)


def test_a_sale_carries_its_gain_and_the_report_totals_them_against_the_exempt_amount_left() -> None:
    result = apply_tax(
        recommendation(line("SELL", "VWRL", "40", "4000"), line("BUY", "ISF", "50", "400")), context(), AS_OF
    )
    sell, buy = result.lines
    assert sell.estimated_gain_base == D("2000.00")  # 40 of 100 cost £2,000; sold for £4,000
    assert sell.to_json_dict()["estimated_gain_base"] == "2000.00"
    assert buy.estimated_gain_base is None and "estimated_gain_base" not in buy.to_json_dict()
    tax = result.constraints_report["tax"]
    assert (tax["exempt_amount_left"], tax["estimated_gains"], tax["within_exempt_amount"]) == (
        D(2000),
        D("2000.00"),
        True,
    )
    assert tax["message"] == (
        "The proposed sales realise an estimated gain of £2,000.00, within the £2,000.00 of the 2026-27 "
        "exempt amount left."
    )
    (flag,) = result.rationale["tax"]["flags"]
    assert (flag["ticker"], flag["rule"], flag["sold_on"]) == ("ISF", "BED_AND_BREAKFAST", date(2026, 11, 20))
    # The 100 sold on 20/11 for £800 came from the pool at £7 (a £100 gain); buying 50 today for
    # £400 matches half of them instead (bed and breakfast): £400 + £350 of cost, a £50 gain.
    assert flag["change_in_gains"] == D("-50.00")
    assert "within 30 days" in flag["message"] and "20/11/2026" in flag["message"]


def test_over_the_exempt_amount_says_tax_may_be_due() -> None:
    result = apply_tax(recommendation(line("SELL", "VWRL", "100", "9000")), context(), AS_OF)
    tax = result.constraints_report["tax"]
    assert tax["within_exempt_amount"] is False
    assert "£2,000.00 more than the £2,000.00" in tax["message"] and "tax may be due" in tax["message"]


def test_a_sale_the_same_day_as_a_purchase_uses_the_same_day_rule() -> None:
    bought_today = Trade(AS_OF, VWRL, D(10), D("1000"), False)
    ctx = context(trades=(*context().trades, bought_today))
    (sell,) = apply_tax(recommendation(line("SELL", "VWRL", "10", "990")), ctx, AS_OF).lines
    assert sell.estimated_gain_base == D("-10.00")  # matched with today's purchase, not the pool


def test_the_context_survives_the_snapshot_round_trip() -> None:
    import json

    from tradeassist.core.jsonutil import loads_decimal, plain

    ctx = context()
    again = context_from_dict(loads_decimal(json.dumps(plain(context_to_dict(ctx)))))
    assert again == ctx


# --- from the book --------------------------------------------------------------------------


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)


def last_close(ticker: str) -> D:
    return data.closes(DEMO_END)[ticker][-1][1]


@pytest.fixture
def gia(demo_engine: Engine) -> Engine:
    """The demo's owner with a general account run on the demo's strategy: SEMIS far over its
    target (SMGB bought at 80% of today's price), so the quarterly rebalance sells it."""
    with unit_of_work(demo_engine) as s:
        admin = identity.bootstrap_admin(s)
        assert admin is not None
        portfolios.add_portfolio(s, actor=admin, name="Demo GIA", broker="AJBell", tax_treatment="GIA")
        strategy.add_strategy(
            s,
            actor=admin,
            label="gia-1",
            policy_text=data.POLICY,
            manifesto=data.MANIFESTO + "\nHeld in a general account: capital gains tax applies.\n",
            portfolios=["Demo GIA"],
        )
        strategy.approve_strategy(s, actor=admin, label="gia-1")
        for listing in data.LISTINGS:
            strategy.add_constituent(
                s,
                actor=admin,
                portfolio="Demo GIA",
                ticker=listing.ticker,
                exchange=listing.exchange,
                sleeve=listing.sleeve,
            )
        smgb = (last_close("SMGB") * D("0.8")).quantize(D("0.01"))
        vwrp = last_close("VWRP").quantize(D("0.01"))
        smgb_cost = (D(300) * smgb / 100).quantize(D("0.01"))
        entries = [
            NewEntry(at("2025-01-02"), "CONTRIBUTION", D("30000")),
            NewEntry(
                at("2025-01-03"), "BUY", -smgb_cost, ticker="SMGB", exchange="XLON", units=D(300), price=smgb
            ),
            NewEntry(
                at("2025-01-03"),
                "BUY",
                -(D(20) * vwrp),
                ticker="VWRP",
                exchange="XLON",
                units=D(20),
                price=vwrp,
            ),
        ]
        post_entries(
            s, actor=admin, portfolio="Demo GIA", entries=entries, label="setup", batch_type="MANUAL"
        )
    return demo_engine


def test_the_rebalance_of_a_general_account_estimates_the_gain_of_each_sale(gia: Engine) -> None:
    with unit_of_work(gia) as s:
        inputs = advice.prepare_inputs(s, portfolio="Demo GIA", kind="QUARTERLY_REBAL", as_of=DEMO_AS_OF)
        result = advice.recommend(inputs)
        row = advice.store_recommendation(
            s,
            run_id=None,
            portfolio_id=inputs.portfolio_id,
            recommendation=result,
            listing_ids=inputs.listing_ids,
        )
        assert row is not None and row.recommendation_id is not None
        stored = lines_of(s, [row.recommendation_id])[row.recommendation_id]
    sells = [ln for ln in result.lines if ln.action is TradeAction.SELL and not ln.suppressed_by_min_trade]
    assert [ln.ticker for ln in sells] == ["SMGB"]
    (sell,) = sells
    # SMGB cost 80% of today's price: a sale at today's price gains a quarter of its cost.
    cost_per_unit = (last_close("SMGB") * D("0.8")).quantize(D("0.01")) / 100
    expected = (sell.amount_base - sell.estimated_units * cost_per_unit).quantize(D("0.01"))
    assert sell.estimated_gain_base == expected and expected > 0
    tax = result.constraints_report["tax"]
    assert tax["tax_year"] == "2026-27" and tax["estimated_gains"] == expected
    assert tax["annual_exempt_amount"] == D(3000) and tax["net_gain_to_date"] == D(0)
    assert [ln.get("estimated_gain_base") for ln in stored if ln["action"] == "SELL"] == [expected]
    assert advice.recommend_from_snapshot(inputs.snapshot) == result


def test_an_isa_or_sipp_recommendation_has_no_tax_figures(demo_engine: Engine) -> None:
    with unit_of_work(demo_engine) as s:
        inputs = advice.prepare_inputs(s, portfolio=DEMO_PORTFOLIO, kind="QUARTERLY_REBAL", as_of=DEMO_AS_OF)
    result = advice.recommend(inputs)
    assert "tax" not in inputs.snapshot and "tax" not in result.constraints_report
    assert all(ln.estimated_gain_base is None for ln in result.lines)
