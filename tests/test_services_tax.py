"""Capital gains from the book (services.tax): per owner, across that owner's general accounts
at any broker, per ISIN; ISAs and SIPPs outside; transfers, splits and corrections as HMRC
treats them. Real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from sqlalchemy.engine import Engine

from tradeassist.core.errors import AccessDenied, NotFound, ValidationError
from tradeassist.db.engine import unit_of_work
from tradeassist.services import corporate_actions, identity, portfolios, registry
from tradeassist.services.ledger import NewEntry, post_entries, reverse_entries
from tradeassist.services.ledger.transfers import transfer_between
from tradeassist.services.tax import cgt

ISF = "IE0005042456"  # iShares Core FTSE 100, quoted in pence
VUSA = "IE00B3XXRP09"  # quoted in pounds here
ALICE = "alice@example.com"


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def trade(kind: str, day: str, units: int | str, price: str, fees: str = "0", hour: int = 12) -> NewEntry:
    """A VUSA trade at a price in pounds; the cash follows from units, price and fees."""
    consideration = D(units) * D(price)
    cash = -(consideration + D(fees)) if kind == "BUY" else consideration - D(fees)
    return NewEntry(
        at(day, hour), kind, cash, D(fees), ticker="VUSA", exchange="XLON", units=D(units), price=D(price)
    )


def cash_in(day: str, amount: str) -> NewEntry:
    return NewEntry(at(day, 8), "CONTRIBUTION", D(amount))


@pytest.fixture
def book(engine: Engine, admin):  # type: ignore[no-untyped-def]
    """Alice with two general accounts at two brokers and an ISA; Bob with his own GIA."""
    with unit_of_work(engine) as s:
        alice = identity.add_user(s, actor=admin, email=ALICE, password="a-long-password-1")
        bob = identity.add_user(s, actor=admin, email="bob@example.com", password="a-long-password-2")
        for isin in (ISF, VUSA):
            registry.add_instrument(s, actor=admin, isin=isin, instrument_type="ETF")
        registry.add_listing(
            s, actor=admin, isin=VUSA, ticker="VUSA", exchange="XLON", currency="GBP", quote_scale="GBP"
        )
        registry.add_listing(
            s, actor=admin, isin=ISF, ticker="ISF", exchange="XLON", currency="GBP", quote_scale="GBX"
        )
        for name, broker, treatment, owner in [
            ("Alice GIA AJ Bell", "AJBell", "GIA", alice),
            ("Alice GIA T212", "Trading212", "GIA", alice),
            ("Alice ISA", "AJBell", "ISA", alice),
            ("Bob GIA", "AJBell", "GIA", bob),
        ]:
            portfolios.add_portfolio(s, actor=owner, name=name, broker=broker, tax_treatment=treatment)
    return engine


def post(engine: Engine, who: str, portfolio: str, *entries: NewEntry) -> None:
    with unit_of_work(engine) as s:
        post_entries(
            s,
            actor=identity.get_user(s, who),
            portfolio=portfolio,
            entries=list(entries),
            label="t",
            batch_type="MANUAL",
        )


def report(engine: Engine, year: str, who: str = ALICE, owner: str | None = None) -> dict:  # type: ignore[type-arg]
    with unit_of_work(engine, readonly=True) as s:
        return cgt.cgt_report(s, actor=identity.get_user(s, who), tax_year=year, owner_email=owner)


def gains(result: dict) -> list[D]:  # type: ignore[type-arg]
    return [d["gain"] for d in result["disposals"]]


def test_hs284_example_2_from_the_book(book: Engine) -> None:
    post(
        book,
        ALICE,
        "Alice GIA AJ Bell",
        cash_in("2015-01-02", "10000"),
        trade("BUY", "2015-01-05", 9500, "1.00"),
        trade("SELL", "2023-08-30", 4000, "1.50"),
        trade("BUY", "2023-09-11", 500, "1.70"),
    )
    result = report(book, "2023-24")
    (disposal,) = result["disposals"]
    assert (disposal["date"], disposal["ticker"], disposal["isin"], disposal["units"]) == (
        date(2023, 8, 30),
        "VUSA",
        VUSA,
        D(4000),
    )
    assert (disposal["proceeds"], disposal["allowable_cost"], disposal["gain"]) == (
        D("6000.00"),
        D("4350.00"),
        D("1650.00"),
    )
    assert [(m["rule"], m["units"], m["cost"], m["acquisition_date"]) for m in disposal["matches"]] == [
        ("BED_AND_BREAKFAST", D(500), D("850.00"), date(2023, 9, 11)),
        ("SECTION_104", D(3500), D("3500.00"), None),
    ]
    totals = result["totals"]
    assert totals["disposal_count"] == 1 and totals["net_gain"] == D("1650.00")
    assert totals["annual_exempt_amount"] == D(6000) and totals["reporting_required"] is False
    assert result["whole_pounds"] == {
        "disposal_count": 1,
        "proceeds": 6000,
        "allowable_costs": 4350,
        "gains": 1650,
        "losses": 0,
        "net_gain": 1650,
    }


@pytest.mark.parametrize("sell_first", [True, False])
def test_same_day_across_two_brokers_whatever_the_order(book: Engine, sell_first: bool) -> None:
    """Pool 1,000 @ £4 (900 at AJ Bell, 100 at Trading 212); on one day buy 200 @ £6 at one
    broker and sell 300 @ £6.10 at the other: £230, sold before or after the purchase."""
    post(
        book, ALICE, "Alice GIA AJ Bell", cash_in("2020-01-02", "5000"), trade("BUY", "2020-01-06", 900, "4")
    )
    post(book, ALICE, "Alice GIA T212", cash_in("2020-01-02", "2000"), trade("BUY", "2020-01-06", 100, "4"))
    hours = (9, 15) if sell_first else (15, 9)
    post(book, ALICE, "Alice GIA AJ Bell", trade("SELL", "2023-06-01", 300, "6.10", hour=hours[0]))
    post(book, ALICE, "Alice GIA T212", trade("BUY", "2023-06-01", 200, "6", hour=hours[1]))
    (disposal,) = report(book, "2023-24")["disposals"]
    assert disposal["gain"] == D("230.00")
    assert [m["rule"] for m in disposal["matches"]] == ["SAME_DAY", "SECTION_104"]
    assert disposal["portfolios"] == ["Alice GIA AJ Bell"]


def test_loss_harvest_bought_back_two_days_later(book: Engine) -> None:
    post(
        book,
        ALICE,
        "Alice GIA AJ Bell",
        cash_in("2022-01-04", "20000"),
        trade("BUY", "2022-03-01", 1000, "10", "10"),
        trade("SELL", "2023-10-02", 1000, "7", "10"),
        trade("BUY", "2023-10-04", 1000, "7.05", "10"),
    )
    result = report(book, "2023-24")
    assert gains(result) == [D("-70.00")]
    assert result["totals"]["losses"] == D("70.00") and result["totals"]["gains"] == D("0")


def test_bed_and_isa_is_a_plain_section_104_disposal(book: Engine) -> None:
    post(
        book,
        ALICE,
        "Alice GIA AJ Bell",
        cash_in("2022-01-04", "20000"),
        trade("BUY", "2022-03-01", 1000, "10"),
        trade("SELL", "2023-10-02", 1000, "7"),
    )
    post(book, ALICE, "Alice ISA", cash_in("2023-10-03", "7100"), trade("BUY", "2023-10-03", 1000, "7.05"))
    (disposal,) = report(book, "2023-24")["disposals"]
    assert disposal["gain"] == D("-3000.00")
    assert [m["rule"] for m in disposal["matches"]] == ["SECTION_104"]


def test_isa_and_sipp_disposals_are_not_reported(book: Engine) -> None:
    post(
        book,
        ALICE,
        "Alice ISA",
        cash_in("2022-01-04", "20000"),
        trade("BUY", "2022-03-01", 100, "10"),
        trade("SELL", "2023-10-02", 100, "70"),
    )
    result = report(book, "2023-24")
    assert result["disposals"] == [] and result["totals"]["disposal_count"] == 0


def test_split_between_acquisition_and_disposal(book: Engine, admin) -> None:  # type: ignore[no-untyped-def]
    post(
        book, ALICE, "Alice GIA AJ Bell", cash_in("2022-01-04", "2000"), trade("BUY", "2022-03-01", 100, "10")
    )
    with unit_of_work(book) as s:
        corporate_actions.add_corporate_action(
            s, actor=admin, isin=VUSA, action_type="SPLIT", effective="2023-01-10", ratio="2:1"
        )
    post(book, ALICE, "Alice GIA AJ Bell", trade("SELL", "2023-06-01", 50, "6"))
    (disposal,) = report(book, "2023-24")["disposals"]
    assert (disposal["units"], disposal["gain"]) == (D(50), D("50.00"))  # 50 of 200 new units cost £250
    with unit_of_work(book, readonly=True) as s:
        pools = cgt.pools(s, actor=identity.get_user(s, ALICE))["pools"]
    assert [(p["isin"], p["units"], p["cost"]) for p in pools] == [(VUSA, D(150), D("750.00"))]


def test_transfer_between_own_general_accounts_is_not_a_disposal(book: Engine) -> None:
    post(
        book, ALICE, "Alice GIA AJ Bell", cash_in("2022-01-04", "5000"), trade("BUY", "2022-03-01", 100, "10")
    )
    post(book, ALICE, "Alice GIA T212", cash_in("2022-01-04", "5000"), trade("BUY", "2022-04-01", 100, "20"))
    with unit_of_work(book) as s:
        transfer_between(
            s,
            actor=identity.get_user(s, ALICE),
            source="Alice GIA AJ Bell",
            destination="Alice GIA T212",
            entry_time=at("2022-05-02"),
            ticker="VUSA",
            exchange="XLON",
            units=D(100),
        )
    post(book, ALICE, "Alice GIA T212", trade("SELL", "2023-06-01", 200, "25"))
    result = report(book, "2023-24")
    # One pool of 200 costing £3,000, whichever account the units sat in; no disposal in 2022-23.
    assert gains(result) == [D("2000.00")]
    assert report(book, "2022-23")["disposals"] == []


def test_a_reversed_sale_is_no_disposal(book: Engine) -> None:
    post(
        book,
        ALICE,
        "Alice GIA AJ Bell",
        cash_in("2022-01-04", "5000"),
        trade("BUY", "2022-03-01", 100, "10"),
        trade("SELL", "2023-06-01", 100, "15"),
    )
    with unit_of_work(book, readonly=True) as s:
        from tradeassist.services.ledger import list_entries

        entries = list_entries(s, actor=identity.get_user(s, ALICE), portfolio="Alice GIA AJ Bell")
    sell_id = next(e["ledger_entry_id"] for e in entries if e["entry_type"] == "SELL")
    with unit_of_work(book) as s:
        reverse_entries(
            s, actor=identity.get_user(s, ALICE), portfolio="Alice GIA AJ Bell", entry_ids=[sell_id]
        )
    assert report(book, "2023-24")["disposals"] == []


def test_tax_is_the_owners_and_others_may_not_read_it(book: Engine, admin) -> None:  # type: ignore[no-untyped-def]
    post(
        book, ALICE, "Alice GIA AJ Bell", cash_in("2022-01-04", "5000"), trade("BUY", "2022-03-01", 100, "10")
    )
    with pytest.raises(AccessDenied):
        report(book, "2023-24", who="bob@example.com", owner=ALICE)
    assert report(book, "2023-24", who=admin.email, owner=ALICE)["owner"] == ALICE
    assert report(book, "2023-24", who="bob@example.com")["general_accounts"] == ["Bob GIA"]
    with pytest.raises(NotFound, match=r"no user .carol@example\.com."):
        report(book, "2023-24", owner="carol@example.com")


@pytest.mark.parametrize("year", ["2023", "2023-25", "23-24", "1999-00"])
def test_a_tax_year_that_is_not_one_is_refused(book: Engine, year: str) -> None:
    with pytest.raises(ValidationError, match="tax year"):
        report(book, year)


def test_2024_25_splits_gains_at_30_october(book: Engine) -> None:
    post(
        book,
        ALICE,
        "Alice GIA AJ Bell",
        cash_in("2022-01-04", "5000"),
        trade("BUY", "2022-03-01", 300, "10"),
        trade("SELL", "2024-10-29", 100, "20"),
        trade("SELL", "2024-10-30", 100, "25"),
        trade("SELL", "2025-01-10", 100, "5"),
    )
    totals = report(book, "2024-25")["totals"]
    assert totals["gains_before_30_october_2024"] == D("1000.00")
    assert totals["gains_from_30_october_2024"] == D("1500.00")
    assert totals["losses_from_30_october_2024"] == D("500.00")
    assert totals["annual_exempt_amount"] == D(3000) and totals["net_gain"] == D("2000.00")


def test_reporting_required_when_proceeds_pass_the_limit(book: Engine) -> None:
    post(
        book,
        ALICE,
        "Alice GIA AJ Bell",
        cash_in("2022-01-04", "60000"),
        trade("BUY", "2022-03-01", 1000, "55"),
        trade("SELL", "2023-06-01", 1000, "55.50"),
    )
    totals = report(book, "2023-24")["totals"]
    assert totals["net_gain"] == D("500.00") and totals["reporting_required"] is True
    assert "£55,500.00" in totals["reporting_reason"] and "£50,000.00" in totals["reporting_reason"]
