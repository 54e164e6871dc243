"""Household recommendations through the services (issue #19): one solve for every account of
a strategy, each account's own money, a general account's capital gains, the joint snapshot,
and the refusals, on both databases."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy.engine import Engine

from tests.support import household_accounts as h
from tradeassist.core.errors import AccessDenied, NotFound, ValidationError
from tradeassist.core.jsonutil import sha256_of
from tradeassist.db.engine import unit_of_work
from tradeassist.services import household, household_results, strategy

D = Decimal


def _advise(engine: Engine, kind: str = "QUARTERLY_REBAL", contributions=None, email: str = h.OWNER):  # type: ignore[no-untyped-def]
    with unit_of_work(engine, readonly=True) as s:
        inputs = household.prepare_household(
            s, actor=h.user(s, email), strategy=h.LABEL, kind=kind, as_of=h.AS_OF, contributions=contributions
        )
    return inputs, household_results.recommend(inputs)


def _lines(advice, name: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    reco = advice.for_portfolio(name).recommendation
    return [(line.action.value, line.ticker) for line in reco.executed_lines]


def _bought(advice, name: str, ticker: str) -> Decimal:  # type: ignore[no-untyped-def]
    reco = advice.for_portfolio(name).recommendation
    return sum(
        (x.amount_base for x in reco.executed_lines if x.ticker == ticker and x.action.value == "BUY"), D(0)
    )


def test_the_credit_target_goes_to_the_account_that_can_hold_it(engine: Engine) -> None:
    """The observation: a SIPP with no CREDIT fund beside an ISA that has one. The household buys
    its 10% CREDIT in the ISA and spends the SIPP's cash on what the SIPP can hold."""
    h.build_credit_household(engine)
    inputs, advice = _advise(engine)
    assert [a.portfolio for a in advice.accounts] == [h.SIPP, h.ISA]
    assert _lines(advice, h.SIPP) == [("BUY", "EQTY")]  # nothing of CREDIT: it cannot hold it
    assert ("BUY", "CRED") in _lines(advice, h.ISA)
    total = D("20000")  # £10,000 paid into each, the SIPP's 50 EQTY at £100 included
    assert abs(_bought(advice, h.ISA, "CRED") - total / 10) <= 100  # about 10% of the household
    sipp = advice.for_portfolio(h.SIPP).recommendation.constraints_report
    assert D(sipp["cash_left"]) < 100  # the SIPP's cash is not left idle for CREDIT
    after = {row["sleeve"]: row for row in household_results.allocation_rows(advice.rationale)}
    assert abs(D(after["CREDIT"]["weight_after"]) - D("0.10")) <= D("0.01")
    assert D(after["CREDIT"]["weight_before"]) == 0
    # Each account's rationale says which household it is part of, and why money went there.
    isa = advice.for_portfolio(h.ISA).recommendation.rationale
    assert isa["household"]["strategy"] == h.LABEL
    assert list(isa["household"]["account_names"]) == [h.SIPP, h.ISA]
    assert any("only account that can hold it" in why for why in isa["why"])
    assert inputs.input_hash == sha256_of(inputs.snapshot) == advice.input_hash


def test_each_account_spends_only_its_own_contribution(engine: Engine) -> None:
    h.build_credit_household(engine)
    inputs, advice = _advise(engine, "MONTHLY_ALLOC", [f"{h.ISA}=500"])
    assert inputs.snapshot["parameters"]["contributions"] == {h.SIPP: "0", h.ISA: "500"}
    isa = advice.for_portfolio(h.ISA)
    assert isa.contribution == D("500")
    report = isa.recommendation.constraints_report
    assert D(report["contribution"]) == D("500")
    assert D(report["money_available"]) == D("10000") + D("500") - D("50")
    sipp = advice.for_portfolio(h.SIPP).recommendation.constraints_report
    assert D(sipp["money_available"]) == D("5000") - D("50")  # never the ISA's money
    for account in advice.accounts:
        spent = sum((x.amount_base for x in account.recommendation.executed_lines), D(0))
        assert spent <= D(account.recommendation.constraints_report["money_available"])


def test_the_joint_snapshot_alone_gives_the_same_recommendations(engine: Engine) -> None:
    h.build_credit_household(engine)
    inputs, advice = _advise(engine, "MONTHLY_ALLOC", {h.SIPP: "300", h.ISA: "500"})
    snapshot = inputs.snapshot
    assert (
        snapshot["household"] == 1
        and snapshot["strategy"]["strategy_version_id"] == inputs.strategy_version_id
    )
    assert [a["portfolio"] for a in snapshot["accounts"]] == [h.SIPP, h.ISA]
    again = household_results.recommend_from_snapshot(snapshot)
    assert again.headline == advice.headline
    assert [a.recommendation.to_json_dict() for a in again.accounts] == [
        a.recommendation.to_json_dict() for a in advice.accounts
    ]
    document = household_results.document(advice)
    assert {line["portfolio"] for line in document["lines"]} <= {h.SIPP, h.ISA}
    assert [a["portfolio"] for a in document["accounts"]] == [h.SIPP, h.ISA]
    assert document["allocation"] and document["input_hash"] == inputs.input_hash


def _gia_household(engine: Engine, *, sold_cred_recently: bool = False, cgt: str | None = None) -> None:
    """Ann's ISA (CRED only) and her GIA (EQTY and CRED): the GIA holds 100 EQTY bought at £50,
    now £100; the ISA holds £1,000 of cash. Targets 50/50: only the GIA can sell EQUITY."""
    h.add_people(engine)
    h.add_listings(engine)
    h.add_prices(engine)
    gia = [h.contribution("5000", date(2023, 1, 2)), h.trade(date(2023, 1, 3), h.E.BUY, "EQTY", 100, "50")]
    if sold_cred_recently:  # 20 CRED bought in 2023 at £40, all sold on 14 June 2024
        gia += [
            h.trade(date(2023, 1, 4), h.E.BUY, "CRED", 20, "40"),
            h.contribution("800", date(2023, 1, 2)),
            h.trade(date(2024, 6, 14), h.E.SELL, "CRED", 20, "50"),
        ]
    h.add_account(engine, h.ISA, "ISA", ("CRED",), [h.contribution("1000")])
    h.add_account(engine, h.GIA, "GIA", ("EQTY", "CRED"), gia)
    policy = dict(h.POLICY) | {"sleeve_targets": {"EQUITY": "0.50", "CREDIT": "0.50"}}
    if cgt is not None:
        policy["cgt"] = cgt
    h.add_strategy(engine, (h.ISA, h.GIA), policy)


def test_a_general_account_sale_shows_its_estimated_gain(engine: Engine) -> None:
    _gia_household(engine)
    inputs, advice = _advise(engine)
    gia = advice.for_portfolio(h.GIA).recommendation
    sells = [x for x in gia.executed_lines if x.action.value == "SELL"]
    assert [x.ticker for x in sells] == ["EQTY"]
    sale = sells[0]
    # Bought at £50, sold at £100: half the proceeds is gain.
    assert sale.estimated_gain_base == sale.amount_base / 2
    assert D(sale.to_json_dict()["estimated_gain_base"]) == sale.amount_base / 2
    assert gia.constraints_report["tax"]["estimated_gains"] == sale.amount_base / 2
    assert inputs.gain_allowance_left == D("3000")  # 2024-25, nothing realised yet
    engine_snapshot = inputs.snapshot["engine"]
    assert engine_snapshot["accounts"][1]["gain_per_unit"] == {"EQTY:XLON": "50"}
    assert "tax" in inputs.snapshot["accounts"][1] and "tax" not in inputs.snapshot["accounts"][0]
    isa = advice.for_portfolio(h.ISA).recommendation
    assert all(x.estimated_gain_base is None for x in isa.lines) and "tax" not in isa.constraints_report


def test_a_general_account_buy_after_a_recent_sale_is_flagged(engine: Engine) -> None:
    _gia_household(engine, sold_cred_recently=True)
    _inputs, advice = _advise(engine)
    gia = advice.for_portfolio(h.GIA).recommendation
    assert ("BUY", "CRED") in [(x.action.value, x.ticker) for x in gia.executed_lines]
    flags = gia.rationale["tax"]["flags"]
    assert [(f["ticker"], f["rule"], f["sold_on"]) for f in flags] == [
        ("CRED", "BED_AND_BREAKFAST", date(2024, 6, 14))
    ]
    assert "bed and breakfast" in flags[0]["message"]


def test_no_sale_realises_gains_beyond_the_exempt_amount_left(engine: Engine) -> None:
    _gia_household(engine, cgt="avoid_gains_over_allowance")
    with unit_of_work(engine) as s:  # £2,950 of gains realised earlier in the tax year: £50 left
        from tradeassist.services import ledger

        ledger.post_entries(
            s,
            actor=h.user(s, h.OWNER),
            portfolio=h.GIA,
            entries=[
                h.trade(date(2024, 5, 1), h.E.BUY, "CRED", 59, "10"),
                h.contribution("590", date(2024, 4, 30)),
                h.trade(date(2024, 5, 2), h.E.SELL, "CRED", 59, "60"),
            ],
            label="earlier",
            batch_type="MANUAL",
        )
    inputs, advice = _advise(engine)
    assert inputs.gain_allowance_left == D("50")
    gia = advice.for_portfolio(h.GIA).recommendation
    gains = sum((x.estimated_gain_base or D(0) for x in gia.executed_lines if x.action.value == "SELL"), D(0))
    assert gains <= D("50")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("500", 'expected "ACCOUNT=AMOUNT"'),
        ("=500", 'expected "ACCOUNT=AMOUNT"'),
        ("AJ Bell ISA=", "no amount after '='"),
        ("AJ Bell ISA=lots", "'lots' is not a number"),
        ("AJ Bell ISA=-5", "cannot be negative"),
    ],
)
def test_bad_contribution_text_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        household.parse_contributions([text])
    assert str(caught.value).startswith(f"--contribution {text!r}")
    assert problem in str(caught.value)


def test_contributions_name_accounts_once_and_only_the_household_s(engine: Engine) -> None:
    assert household.parse_contributions(["A = B=1,000.50"]) == {"A = B": D("1000.50")}
    with pytest.raises(ValidationError, match="given twice"):
        household.parse_contributions(["X=1", "X=2"])
    h.build_credit_household(engine)
    with pytest.raises(ValidationError) as caught:
        _advise(engine, "MONTHLY_ALLOC", ["AJ Bell LISA=500"])
    assert str(caught.value) == (
        f"--contribution 'AJ Bell LISA': no such account in strategy {h.LABEL!r} "
        f"(its accounts: {h.SIPP!r}, {h.ISA!r})"
    )


def test_refusals_say_why(engine: Engine) -> None:
    h.build_credit_household(engine)
    with pytest.raises(AccessDenied) as denied:  # Bob may use neither account
        _advise(engine, email=h.OTHER)
    assert f"may not compute a household recommendation on portfolio {h.SIPP!r}" in str(denied.value)
    with pytest.raises(ValidationError, match="MONTHLY_ALLOC or a QUARTERLY_REBAL"):
        _advise(engine, "WEEKLY_REVIEW")
    with (
        unit_of_work(engine, readonly=True) as s,
        pytest.raises(NotFound, match="no strategy version 'nope'"),
    ):
        household.prepare_household(s, actor=h.user(s, h.OWNER), strategy="nope", kind="QUARTERLY_REBAL")


def test_a_strategy_over_two_owners_accounts_is_refused(engine: Engine) -> None:
    h.add_people(engine)
    h.add_listings(engine)
    h.add_prices(engine)
    h.add_account(engine, h.ISA, "ISA", ("EQTY", "CRED"), [h.contribution("1000")])
    h.add_account(engine, "Bob ISA", "ISA", ("EQTY",), [h.contribution("1000")], owner=h.OTHER)
    h.add_strategy(engine, (h.ISA, "Bob ISA"))
    with unit_of_work(engine, readonly=True) as s, pytest.raises(ValidationError) as caught:
        household.prepare_household(
            s, actor=strategy_admin(s), strategy=h.LABEL, kind="QUARTERLY_REBAL", as_of=h.AS_OF
        )
    assert "covers portfolios of different owners" in str(caught.value)
    assert "one person's accounts" in str(caught.value)


def strategy_admin(session):  # type: ignore[no-untyped-def]
    from tradeassist.services import identity

    return identity.bootstrap_admin(session)


def test_one_portfolio_or_a_draft_is_not_a_household(engine: Engine) -> None:
    h.add_people(engine)
    h.add_listings(engine)
    h.add_account(engine, h.ISA, "ISA", ("EQTY",), [h.contribution("1000")])
    h.add_strategy(engine, (h.ISA,))
    with unit_of_work(engine, readonly=True) as s, pytest.raises(ValidationError) as caught:
        household.prepare_household(s, actor=h.user(s, h.OWNER), strategy=h.LABEL, kind="QUARTERLY_REBAL")
    assert "covers one portfolio ('AJ Bell ISA')" in str(caught.value)
    assert "recommend --portfolio NAME" in str(caught.value)
    with unit_of_work(engine) as s:
        strategy.add_strategy(
            s,
            actor=strategy_admin(s),
            label="draft-2",
            policy_text=h.POLICY,
            manifesto=h.MANIFESTO + "\nA draft.\n",
            portfolios=[h.ISA],
        )
    with unit_of_work(engine, readonly=True) as s, pytest.raises(ValidationError, match="is DRAFT"):
        household.prepare_household(s, actor=h.user(s, h.OWNER), strategy="draft-2", kind="QUARTERLY_REBAL")


def test_a_broker_s_own_fee_applies_to_its_account(engine: Engine) -> None:
    h.add_people(engine)
    h.add_listings(engine)
    h.add_prices(engine)
    h.add_account(engine, h.SIPP, "SIPP", ("EQTY",), [h.contribution("5000")])
    h.add_account(engine, h.ISA, "ISA", ("EQTY", "CRED"), [h.contribution("5000")])
    h.add_strategy(engine, (h.SIPP, h.ISA), dict(h.POLICY) | {"fee_per_trade_by_portfolio": {h.SIPP: "0"}})
    _inputs, advice = _advise(engine, "MONTHLY_ALLOC", [f"{h.ISA}=0"])
    sipp = advice.for_portfolio(h.SIPP).recommendation
    isa = advice.for_portfolio(h.ISA).recommendation
    assert sipp.executed_lines and isa.executed_lines
    assert D(sipp.constraints_report["fees"]) == 0
    assert D(isa.constraints_report["fees"]) == D("1.50") * len(isa.executed_lines)


def test_a_sleeve_no_account_can_hold_is_named(engine: Engine) -> None:
    h.build_credit_household(engine, register=False)
    policy = dict(h.POLICY) | {"sleeve_targets": {"EQUITY": "0.80", "CREDIT": "0.10", "GOLD": "0.10"}}
    h.add_strategy(
        engine, (h.SIPP, h.ISA), policy, h.MANIFESTO + "\nGOLD: a tenth in gold, when we find a fund.\n"
    )
    _inputs, advice = _advise(engine)
    assert list(advice.rationale["household"]["sleeves_no_account_can_hold"]) == ["GOLD"]
    from tradeassist.presentation.household import text_lines

    lines = text_lines(household_results.document(advice))
    assert any(line.startswith("Sleeve GOLD: no account of the household can hold it") for line in lines)
