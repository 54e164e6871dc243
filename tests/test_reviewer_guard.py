"""The built-in reviewer as a guard independent of the optimizer (rules-v2).

Plain dict requests, shaped as the engine stores a recommendation: each FAIL case (turnover, a
sleeve sold to zero, a held listing valued at zero, an untargeted holding sold, the policy's
and the manifesto's hard rules), each exception, the idle-cash WARN, a clean PASS, and a
recommendation without its holdings. Then a property: recommendations built to respect every
rule never FAIL, and one line changed to break a rule always does.
"""

from __future__ import annotations

import copy
from decimal import ROUND_CEILING, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeassist.core.enums import Verdict
from tradeassist.providers.reviewers import BuiltinRulesReviewer, ReviewRequest, request_hash
from tradeassist.providers.reviewers.builtin import MODEL

D = Decimal

POLICY: dict[str, Any] = {
    "schema_version": 1,
    "sleeve_targets": {"CORE": "0.6", "SEMIS": "0.2", "ENERGY": "0.2"},
    "drift_bands": {"absolute": "0.05", "relative": "0.25"},
    "min_trade_base": "100",
    "fee_per_trade_base": "1.5",
    "cash_buffer_base": "50",
    "whole_units": True,
    "allow_sells": {"MONTHLY_ALLOC": False, "QUARTERLY_REBAL": True, "WEEKLY_REVIEW": True},
    "never_sell": [],
    "never_buy": [],
    "max_trade_base": None,
    "max_turnover": "0.25",
    "untargeted": "hold",
    "unpriced": "block",
}

MANIFESTO = "# Plan\n\nCORE is a global tracker; SEMIS and ENERGY are tilts.\n"


def held(
    ticker: str,
    sleeve: str | None,
    units: str,
    price: str | None,
    *,
    exchange: str = "XLON",
    in_base: bool = True,
    targeted: bool = True,
    value: str | None = "auto",
) -> dict[str, Any]:
    if value == "auto":
        value = None if price is None else str(D(units) * D(price))
    return {
        "ticker": ticker,
        "exchange": exchange,
        "sleeve": sleeve,
        "units": units,
        "price_gbp": price,
        "value_base": value,
        "in_base": in_base,
        "targeted": targeted,
    }


def trade(ticker: str, action: str, units: int, price: str, *, exchange: str = "XLON") -> dict[str, Any]:
    return {
        "ticker": ticker,
        "exchange": exchange,
        "action": action,
        "amount_base": str(units * D(price)),
        "estimated_units": str(units),
        "suppressed_by_min_trade": False,
        "reason_code": "REBALANCE_SELL" if action == "SELL" else "REBALANCE_BUY",
    }


# £10,000 CORE, £3,000 SEMIS, £3,000 ENERGY and £1,000 cash: a base of £17,000.
HOLDINGS = [
    held("VWRP", "CORE", "100", "100"),
    held("SEMI", "SEMIS", "60", "50"),
    held("INRG", "ENERGY", "300", "10"),
]


def reco(
    lines: list[dict[str, Any]],
    *,
    positions: list[dict[str, Any]] | None = None,
    cash: str = "1000",
    contribution: str = "0",
    left_alone: list[dict[str, Any]] | None = None,
    policy: dict[str, Any] | None = None,
    **report_changes: Any,
) -> dict[str, Any]:
    """A recommendation whose constraints report adds up (cash after, fees, base value)."""
    policy = policy or POLICY
    positions = copy.deepcopy(HOLDINGS) if positions is None else positions
    buys = sum((D(x["amount_base"]) for x in lines if x["action"] == "BUY"), D(0))
    sells = sum((D(x["amount_base"]) for x in lines if x["action"] == "SELL"), D(0))
    fees = D(policy["fee_per_trade_base"]) * len(lines)
    invested = sum((D(p.get("value_base") or 0) for p in positions if p["in_base"]), D(0))
    report = {
        "cash": cash,
        "contribution": contribution,
        "cash_buffer": policy["cash_buffer_base"],
        "buy_consideration": str(buys),
        "sell_consideration": str(sells),
        "fees": str(fees),
        "cash_after": str(D(cash) + D(contribution) - buys + sells - fees),
        "base_value": str(invested + D(cash) + D(contribution)),
        **report_changes,
    }
    return {
        "headline": "test",
        "rationale": {"positions": positions, "left_alone": left_alone or []},
        "constraints_report": report,
        "lines": lines,
    }


def review(
    recommendation: dict[str, Any],
    *,
    policy: dict[str, Any] | None = None,
    manifesto: str = MANIFESTO,
    kind: str = "QUARTERLY_REBAL",
    frozen: bool = False,
):  # type: ignore[no-untyped-def]
    request = ReviewRequest(
        "recommendation",
        policy or POLICY,
        manifesto=manifesto,
        recommendation=recommendation,
        task_kind=kind,
        portfolio_frozen=frozen,
    )
    return BuiltinRulesReviewer().review(request)


def policy_with(**changes: Any) -> dict[str, Any]:
    return {**POLICY, **changes}


def has(verdict, fragment: str) -> bool:  # type: ignore[no-untyped-def]
    return any(fragment in reason for reason in verdict.reasons)


# --------------------------------------------------------------------------------------------
# A clean recommendation, and one without its holdings
# --------------------------------------------------------------------------------------------
def test_a_clean_rebalance_passes_and_names_every_check() -> None:
    # Sell 20 VWRP (£2,000, within 25% of £17,000), buy 20 SEMI and 192 INRG:
    # 1000 + 2000 - 1000 - 1920 - 4.50 = £75.50 cash after, £25.50 over the buffer.
    lines = [
        trade("VWRP", "SELL", 20, "100"),
        trade("SEMI", "BUY", 20, "50"),
        trade("INRG", "BUY", 192, "10"),
    ]
    verdict = review(reco(lines, cash="1000"))
    assert verdict.verdict is Verdict.PASS, verdict.reasons
    checks = verdict.response_json["checks"]
    for check in (
        "turnover",
        "no sleeve sold to zero",
        "every holding valued",
        "untargeted holdings kept",
        "hard rules",
        "sells within holdings",
        "cash invested",
    ):
        assert check in checks
    assert verdict.model == MODEL == "rules-v2"
    assert verdict.request_hash == request_hash(
        ReviewRequest(
            "recommendation",
            POLICY,
            manifesto=MANIFESTO,
            recommendation=reco(lines),
            task_kind="QUARTERLY_REBAL",
        ),
        "builtin-rules",
        "rules-v2",
    )


def test_a_recommendation_without_holdings_warns_and_does_not_crash() -> None:
    old = reco([trade("VWRP", "BUY", 2, "100")], cash="300")
    del old["rationale"]["positions"]
    verdict = review(old, kind="MONTHLY_ALLOC")
    assert verdict.verdict is Verdict.WARN
    assert has(verdict, "does not list the holdings it was computed from, so they could not be checked")
    for broken in ("not a list", 7, {"VWRP": "100"}):
        odd = copy.deepcopy(old)
        odd["rationale"]["positions"] = broken
        assert review(odd, kind="MONTHLY_ALLOC").verdict is Verdict.WARN
    nothing = {"headline": "x", "rationale": None, "constraints_report": None, "lines": []}
    assert review(nothing, kind="MONTHLY_ALLOC").verdict is Verdict.WARN


def test_a_holding_that_cannot_be_read_fails() -> None:
    bad = [*copy.deepcopy(HOLDINGS), {"ticker": "XDWL", "exchange": "XLON", "units": "lots", "in_base": True}]
    verdict = review(reco([], positions=bad))
    assert verdict.verdict is Verdict.FAIL
    assert has(verdict, "holding #4 (XDWL:XLON) cannot be read: units: 'lots' is not a number")


# --------------------------------------------------------------------------------------------
# 1. Turnover, on a base recomputed from the holdings
# --------------------------------------------------------------------------------------------
def test_selling_more_than_the_turnover_allows_fails_whatever_the_report_says() -> None:
    lines = [trade("VWRP", "SELL", 45, "100"), trade("SEMI", "BUY", 20, "50")]
    stated = reco(lines, base_value="100000", turnover_limit="25000")  # the report's base is inflated
    verdict = review(stated)
    assert verdict.verdict is Verdict.FAIL
    assert has(
        verdict,
        "the sells come to £4,500.00, more than the 25% of the portfolio (£4,250.00 of £17,000.00) "
        "one recommendation may sell",
    )
    assert has(verdict, "states a portfolio of £100,000.00; its holdings and cash come to £17,000.00")
    # within the limit: 42 units are £4,200
    within = [
        trade("VWRP", "SELL", 42, "100"),
        trade("SEMI", "BUY", 80, "50"),
        trade("INRG", "BUY", 110, "10"),
    ]
    assert review(reco(within)).verdict is Verdict.PASS


def test_turnover_counts_the_contribution_and_defaults_to_a_quarter() -> None:
    lines = [trade("VWRP", "SELL", 45, "100"), trade("SEMI", "BUY", 89, "50")]
    policy = {k: v for k, v in POLICY.items() if k != "max_turnover"}  # default 0.25
    # base 10,000 + 3,000 + 3,000 + 0 cash + 1,000 contribution = 17,000: £4,500 is too much
    verdict = review(reco(lines, cash="0", contribution="1000"), policy=policy)
    assert has(verdict, "more than the 25% of the portfolio (£4,250.00 of £17,000.00)")
    tighter = policy_with(max_turnover="0.1")
    verdict = review(reco([trade("VWRP", "SELL", 18, "100"), trade("SEMI", "BUY", 36, "50")]), policy=tighter)
    assert has(verdict, "the sells come to £1,800.00, more than the 10% of the portfolio (£1,700.00")


def test_a_sell_amount_understated_is_checked_at_units_times_price() -> None:
    line = trade("VWRP", "SELL", 45, "100")
    line["amount_base"] = "4000"  # 45 x £100 is £4,500
    verdict = review(reco([line, trade("SEMI", "BUY", 80, "50")]))
    assert has(verdict, "45 units at £100.00 come to £4,500.00, not the amount stated")
    assert has(verdict, "the sells come to £4,500.00, more than the 25%")


# --------------------------------------------------------------------------------------------
# 2. A sleeve sold to zero, and its exceptions
# --------------------------------------------------------------------------------------------
def test_selling_a_whole_sleeve_fails() -> None:
    lines = [trade("SEMI", "SELL", 60, "50"), trade("VWRP", "BUY", 30, "100")]
    verdict = review(reco(lines))
    assert verdict.verdict is Verdict.FAIL
    assert has(verdict, "the trades sell all of sleeve SEMIS (£3,000.00 before, nothing after)")
    # a sleeve of two listings: selling one of them out is a switch, not a sale of the sleeve
    two = [*copy.deepcopy(HOLDINGS), held("SMH", "SEMIS", "10", "20")]
    switch = [
        trade("SEMI", "SELL", 60, "50"),
        trade("SMH", "BUY", 100, "20"),
        trade("VWRP", "BUY", 19, "100"),
    ]
    assert review(reco(switch, positions=two)).verdict is Verdict.PASS


def test_selling_a_sleeve_to_zero_its_target_asks_for_is_allowed() -> None:
    positions = [*copy.deepcopy(HOLDINGS), held("OLD", "LEGACY", "100", "20", targeted=False)]
    lines = [trade("OLD", "SELL", 100, "20"), trade("VWRP", "BUY", 29, "100")]
    sell = policy_with(untargeted="sell")
    verdict = review(reco(lines, positions=positions, policy=sell), policy=sell)
    assert verdict.verdict is Verdict.PASS, verdict.reasons
    # the same sale under "hold" breaks two rules: an untargeted holding sold, its sleeve emptied
    verdict = review(reco(lines, positions=positions))
    assert has(verdict, "#1 SELL OLD:XLON £2,000.00: OLD on XLON is not in the strategy (sleeve LEGACY)")
    assert has(verdict, "sell all of sleeve LEGACY")
    # a sleeve the policy targets at 0 may be sold out whatever "untargeted" says
    zero = policy_with(sleeve_targets={"CORE": "0.6", "SEMIS": "0.2", "ENERGY": "0.2", "LEGACY": "0"})
    positions[-1]["targeted"] = True
    assert review(reco(lines, positions=positions), policy=zero).verdict is Verdict.PASS


def test_selling_more_than_is_held_fails() -> None:
    verdict = review(reco([trade("SEMI", "SELL", 61, "50"), trade("VWRP", "BUY", 30, "100")]))
    assert has(verdict, "#1 SELL SEMI:XLON £3,050.00: sells 61 units of SEMI on XLON, only 60 units held")
    verdict = review(reco([trade("TSLA", "SELL", 2, "150", exchange="XNAS")]))
    assert has(verdict, "sells 2 units of TSLA on XNAS, none held")


# --------------------------------------------------------------------------------------------
# 3. A held listing valued at zero
# --------------------------------------------------------------------------------------------
COUNTED = "XDWL on XLON (12 units) is counted in the portfolio"


@pytest.mark.parametrize(
    ("xdwl", "fragment"),
    [
        (held("XDWL", "CORE", "12", None), f"{COUNTED} with no price"),
        (held("XDWL", "CORE", "12", "80", value=None), f"{COUNTED} with no value"),
        (held("XDWL", "CORE", "12", "80", value="0"), f"{COUNTED} at £0.00"),
        (
            held("XDWL", "CORE", "12", None, in_base=False),
            "XDWL on XLON (12 units) is held but neither counted in the portfolio nor listed as left alone",
        ),
    ],
    ids=["no price", "no value", "valued at zero", "gone missing"],
)
def test_a_held_listing_is_never_valued_at_zero(xdwl: dict[str, Any], fragment: str) -> None:
    verdict = review(reco([], positions=[*copy.deepcopy(HOLDINGS), xdwl]), kind="WEEKLY_REVIEW")
    assert verdict.verdict is Verdict.FAIL
    assert has(verdict, fragment), verdict.reasons


def test_a_holding_left_alone_and_said_so_passes() -> None:
    xdwl = held("XDWL", "CORE", "12", None, in_base=False)
    alone = [{"ticker": "XDWL", "exchange": "XLON", "reason": "NO_GOOD_PRICE", "value_base": None}]
    verdict = review(
        reco([], positions=[*copy.deepcopy(HOLDINGS), xdwl], left_alone=alone), kind="WEEKLY_REVIEW"
    )
    assert verdict.verdict is Verdict.PASS, verdict.reasons
    sold_out = held("GONE", "CORE", "0", None)  # not held: no price needed
    verdict = review(reco([], positions=[*copy.deepcopy(HOLDINGS), sold_out]), kind="WEEKLY_REVIEW")
    assert verdict.verdict is Verdict.PASS, verdict.reasons


def test_a_stale_price_in_the_base_fails() -> None:
    stale = {**held("XDWL", "CORE", "12", "80"), "price_stale": True}
    verdict = review(reco([], positions=[*copy.deepcopy(HOLDINGS), stale]), kind="WEEKLY_REVIEW")
    assert has(verdict, "XDWL on XLON (12 units) is counted in the portfolio on a price too old to trust")


# --------------------------------------------------------------------------------------------
# 4. An untargeted holding sold
# --------------------------------------------------------------------------------------------
def test_an_untargeted_holding_is_sold_only_when_the_policy_says_sell() -> None:
    positions = [
        *copy.deepcopy(HOLDINGS),
        held("ARKK", "UNMAPPED", "50", "40", targeted=False, in_base=False),
    ]
    alone = [{"ticker": "ARKK", "exchange": "XLON", "reason": "UNTARGETED", "value_base": "2000"}]
    lines = [trade("ARKK", "SELL", 10, "40")]
    verdict = review(reco(lines, positions=positions, left_alone=alone))
    assert verdict.verdict is Verdict.FAIL
    assert has(
        verdict,
        "#1 SELL ARKK:XLON £400.00: ARKK on XLON is not in the strategy (sleeve UNMAPPED); the policy "
        'leaves such holdings alone (set "untargeted" to "sell" to sell them)',
    )
    # "targeted" is the engine's word, but a sleeve outside the targets is enough on its own
    positions[-1]["targeted"] = True
    assert has(review(reco(lines, positions=positions, left_alone=alone)), "is not in the strategy")
    positions[-1].update(targeted=False, in_base=True)
    sell = policy_with(untargeted="sell")
    lines = [trade("ARKK", "SELL", 10, "40"), trade("VWRP", "BUY", 13, "100")]
    verdict = review(reco(lines, positions=positions), policy=sell)
    assert verdict.verdict is Verdict.PASS, verdict.reasons


# --------------------------------------------------------------------------------------------
# 5. Hard rules: the policy's and the manifesto's, once each
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["SEMIS", "SEMI", "SEMI:XLON", "semi:xlon"])
def test_never_sell_matches_a_sleeve_a_ticker_or_a_listing(name: str) -> None:
    lines = [trade("SEMI", "SELL", 10, "50"), trade("VWRP", "BUY", 4, "100")]
    policy = policy_with(never_sell=[name])
    verdict = review(reco(lines, policy=policy), policy=policy)
    assert verdict.verdict is Verdict.FAIL
    assert has(verdict, f"#1 SELL SEMI:XLON £500.00: the policy says never sell: {name.upper()}")


def test_never_buy_and_the_largest_trade() -> None:
    policy = policy_with(never_buy=["ENERGY"], max_trade_base="1000")
    lines = [trade("VWRP", "SELL", 15, "100"), trade("INRG", "BUY", 50, "10"), trade("SEMI", "BUY", 20, "50")]
    verdict = review(reco(lines, policy=policy), policy=policy)
    assert verdict.verdict is Verdict.FAIL
    assert has(verdict, "#2 BUY INRG:XLON £500.00: the policy says never buy: ENERGY")
    assert has(verdict, "#1 SELL VWRP:XLON £1,500.00: above the policy's largest single trade of £1,000.00")
    assert not has(verdict, "#3 BUY SEMI")


def test_a_rule_in_both_the_policy_and_the_manifesto_fails_once() -> None:
    # the strategy service merges the manifesto's rules into the policy: both say the same thing
    manifesto = MANIFESTO + "\n- never sell: SEMIS\n- avoid: INRG\n- max single trade: 1000\n"
    policy = policy_with(never_sell=["SEMIS"], never_buy=["INRG"], max_trade_base="1000")
    lines = [trade("SEMI", "SELL", 30, "50"), trade("INRG", "BUY", 110, "10")]
    verdict = review(reco(lines, policy=policy), policy=policy, manifesto=manifesto)
    fails = verdict.response_json["failures"]
    assert fails == [
        "#1 SELL SEMI:XLON £1,500.00: above the largest single trade of £1,000.00 that the policy "
        "and the manifesto set",
        "#2 BUY INRG:XLON £1,100.00: above the largest single trade of £1,000.00 that the policy "
        "and the manifesto set",
        "#1 SELL SEMI:XLON £1,500.00: the policy and the manifesto say never sell: SEMIS",
        "#2 BUY INRG:XLON £1,100.00: the policy says never buy and the manifesto says avoid: INRG",
    ]
    # the stricter of two different limits counts, named by where it comes from
    policy = policy_with(max_trade_base="2000")
    verdict = review(reco(lines[:1], policy=policy), policy=policy, manifesto=manifesto)
    assert has(verdict, "above the manifesto's max single trade of £1,000.00")


# --------------------------------------------------------------------------------------------
# Cash left idle
# --------------------------------------------------------------------------------------------
def test_cash_left_idle_above_the_buffer_warns() -> None:
    verdict = review(reco([trade("VWRP", "BUY", 2, "100")], cash="1000"), kind="MONTHLY_ALLOC")
    # 1000 - 200 - 1.50 = 798.50 after: 748.50 over the £50 buffer, and a £100 line fits
    assert verdict.verdict is Verdict.WARN
    assert verdict.reasons == (
        "£748.50 is left unspent above the £50.00 cash buffer, more than the smallest trade of £100.00: "
        "another line could have been bought (for example 1 unit of VWRP on XLON for £100.00)",
    )
    # recomputed from cash, contribution, the lines and fees, not the report's cash_after
    claims = reco([trade("VWRP", "BUY", 2, "100")], cash="1000", cash_after="120")
    assert has(review(claims, kind="MONTHLY_ALLOC"), "the constraints report leaves £120.00 cash")


def test_idle_cash_is_not_warned_when_no_line_could_be_bought_or_nothing_may_trade() -> None:
    dear = [
        held("VWRP", "CORE", "10", "900"),
        held("SEMI", "SEMIS", "10", "300"),
        held("INRG", "ENERGY", "10", "300"),
    ]
    # £300 of cash is £250 over the buffer: more than the £100 minimum, but no unit costs under £300
    verdict = review(reco([], positions=dear, cash="300"), kind="MONTHLY_ALLOC")
    assert verdict.verdict is Verdict.PASS, verdict.reasons
    # £400 is £350 over: one SEMI (£300 and a £1.50 fee) fits
    assert has(review(reco([], positions=dear, cash="400"), kind="MONTHLY_ALLOC"), "1 unit of SEMI on XLON")
    assert review(reco([], cash="5000"), kind="MONTHLY_ALLOC", frozen=True).verdict is Verdict.PASS
    assert review(reco([], cash="5000"), kind="QUARTERLY_REBAL").verdict is Verdict.PASS  # nothing to do
    # a held listing of the strategy without a price stops the recommendation ("unpriced": "block")
    unpriced = [*copy.deepcopy(HOLDINGS), held("XDWL", "CORE", "12", None, in_base=False)]
    alone = [{"ticker": "XDWL", "exchange": "XLON", "reason": "NO_GOOD_PRICE", "value_base": None}]
    blocked = reco([], positions=unpriced, left_alone=alone, cash="5000")
    assert review(blocked, kind="MONTHLY_ALLOC").verdict is Verdict.PASS
    exclude = policy_with(unpriced="exclude")
    assert has(review(blocked, kind="MONTHLY_ALLOC", policy=exclude), "£4,950.00 is left unspent")
    never = policy_with(never_buy=["CORE", "SEMIS", "ENERGY"])
    assert (
        review(reco([], cash="5000", policy=never), policy=never, kind="MONTHLY_ALLOC").verdict
        is Verdict.PASS
    )


# --------------------------------------------------------------------------------------------
# The property: a recommendation that respects every rule never fails; one line broken always does
# --------------------------------------------------------------------------------------------
SLEEVES = ("CORE", "SEMIS", "ENERGY")
PROPERTY_POLICY = policy_with(
    never_sell=["KEEP:XLON"], never_buy=["AVOID"], max_trade_base="3000", max_turnover="0.25"
)
PROPERTY_MANIFESTO = MANIFESTO + "\n- never sell: KEEP:XLON\n- avoid: AVOID\n- max single trade: 3000\n"
MIN_TRADE, MAX_TRADE, FEE, BUFFER = D(100), D(3000), D("1.5"), D(50)


@st.composite
def clean_recommendations(draw: st.DrawFn) -> dict[str, Any]:
    """Holdings, then lines that keep every rule (sizes, whole units, held units, sleeves kept,
    turnover, the hard rules), then enough cash that the buffer holds."""
    positions = []
    for index, sleeve in enumerate(SLEEVES):
        for n in range(draw(st.integers(1, 2))):
            ticker = "KEEP" if (index, n) == (0, 1) else f"{sleeve[:3]}{n}"
            price = D(draw(st.integers(100, 20000))) / 100  # £1 to £200
            units = draw(st.integers(0 if n else 1, 200))
            positions.append(held(ticker, sleeve, str(units), str(price)))
    untargeted = held("OLDX", "LEGACY", str(draw(st.integers(1, 50))), "12", in_base=False, targeted=False)
    positions.append(untargeted)
    alone = [
        {"ticker": "OLDX", "exchange": "XLON", "reason": "UNTARGETED", "value_base": untargeted["value_base"]}
    ]
    invested = sum((D(p["value_base"]) for p in positions if p["in_base"]), D(0))
    cash = D(draw(st.integers(0, 3000)))
    limit = D("0.25") * (invested + cash)

    lines: list[dict[str, Any]] = []
    sold = D(0)
    left_in_sleeve = {s: sum(D(p["units"]) for p in positions if p["sleeve"] == s) for s in SLEEVES}
    for p in positions:
        if not p["in_base"]:
            continue
        price = D(p["price_gbp"])
        lowest = int((MIN_TRADE / price).to_integral_value(rounding=ROUND_CEILING))  # reaches the minimum
        highest = int(MAX_TRADE // price)
        if lowest > highest:
            continue
        choice = draw(st.sampled_from(["none", "buy", "sell"]))
        if choice == "buy":
            lines.append(trade(p["ticker"], "BUY", draw(st.integers(lowest, highest)), p["price_gbp"]))
        elif choice == "sell" and p["ticker"] != "KEEP":
            # keep at least one unit in the sleeve, stay within the turnover limit
            most = min(
                highest,
                int(D(p["units"])),
                int(left_in_sleeve[p["sleeve"]]) - 1,
                int((limit - sold) // price),
            )
            if most >= lowest:
                units = draw(st.integers(lowest, most))
                lines.append(trade(p["ticker"], "SELL", units, p["price_gbp"]))
                sold += units * price
                left_in_sleeve[p["sleeve"]] -= units
    buys = sum((D(x["amount_base"]) for x in lines if x["action"] == "BUY"), D(0))
    need = buys - sold + FEE * len(lines) + BUFFER
    cash = max(cash, need)
    lines.sort(key=lambda x: x["action"] == "BUY")
    return reco(lines, positions=positions, cash=str(cash), left_alone=alone, policy=PROPERTY_POLICY)


def property_review(recommendation: dict[str, Any]):  # type: ignore[no-untyped-def]
    return review(
        recommendation, policy=PROPERTY_POLICY, manifesto=PROPERTY_MANIFESTO, kind="QUARTERLY_REBAL"
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clean_recommendations())
def test_a_recommendation_within_every_rule_never_fails(recommendation: dict[str, Any]) -> None:
    verdict = property_review(recommendation)
    assert verdict.verdict is not Verdict.FAIL, verdict.reasons


def _break(recommendation: dict[str, Any], how: str, index: int) -> tuple[dict[str, Any], str]:
    """One line changed (or, with no line, one added) so that it breaks rule ``how``."""
    rec = copy.deepcopy(recommendation)
    positions = rec["rationale"]["positions"]
    lines = rec["lines"]
    by_ticker = {p["ticker"]: p for p in positions}
    slot = index % len(lines) if lines else None

    def put(new: dict[str, Any]) -> None:
        if slot is None:
            lines.append(new)
        else:
            lines[slot] = new

    if how == "never sell":
        keep = by_ticker.get("KEEP") or next(p for p in positions if p["sleeve"] == "CORE")
        keep["ticker"] = "KEEP"
        put(trade("KEEP", "SELL", 1, keep["price_gbp"]))
        return rec, "never sell: KEEP:XLON"
    if how == "never buy":
        put(trade("AVOID", "BUY", 1, "500"))
        return rec, "never buy and the manifesto says avoid: AVOID"
    if how == "largest trade":
        put(trade("VWRP", "BUY", 31, "100"))
        return rec, "above the largest single trade of £3,000.00"
    if how == "untargeted":
        put(trade("OLDX", "SELL", 1, "12"))
        return rec, "OLDX on XLON is not in the strategy"
    if how == "sleeve to zero":
        # sell every unit of the sleeve's first holding, and empty the others' units
        target = next(p for p in positions if p["sleeve"] == "ENERGY")
        for p in positions:
            if p["sleeve"] == "ENERGY" and p is not target:
                p.update(units="0", value_base="0")
        target["units"] = max(target["units"], "1", key=D)
        target["value_base"] = str(D(target["units"]) * D(target["price_gbp"]))
        rec["lines"] = [x for x in lines if by_ticker.get(x["ticker"], {}).get("sleeve") != "ENERGY"]
        slot_lines = rec["lines"]
        new = trade(target["ticker"], "SELL", int(D(target["units"])), target["price_gbp"])
        if slot_lines:
            slot_lines[index % len(slot_lines)] = new
        else:
            slot_lines.append(new)
        return rec, "the trades sell all of sleeve ENERGY"
    if how == "more than held":
        target = positions[index % 3]
        rec["lines"] = lines = [x for x in lines if x["ticker"] != target["ticker"]]
        slot = index % len(lines) if lines else None
        put(trade(target["ticker"], "SELL", int(D(target["units"])) + 1, target["price_gbp"]))
        return rec, f"only {D(target['units'])} unit" if D(target["units"]) else "none held"
    if how == "valued at zero":
        positions[index % 3].update(
            units=str(D(positions[index % 3]["units"]) + 1), price_gbp=None, value_base=None
        )
        return rec, "is counted in the portfolio with no price"
    raise AssertionError(how)


RULES = (
    "never sell",
    "never buy",
    "largest trade",
    "untargeted",
    "sleeve to zero",
    "more than held",
    "valued at zero",
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clean_recommendations(), st.sampled_from(RULES), st.integers(0, 50))
def test_one_line_breaking_a_rule_always_fails(recommendation: dict[str, Any], how: str, index: int) -> None:
    broken, fragment = _break(recommendation, how, index)
    verdict = property_review(broken)
    assert verdict.verdict is Verdict.FAIL, (how, verdict.reasons)
    assert has(verdict, fragment), (how, fragment, verdict.reasons)
