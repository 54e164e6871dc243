"""The year's allowances from the book (services.tax.allowances), and the ISA allowance as a
limit on what may be posted."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from sqlalchemy.engine import Engine

from tradeassist.core.errors import LedgerError
from tradeassist.db.engine import unit_of_work
from tradeassist.services import identity, portfolios
from tradeassist.services.ledger import NewEntry, cash, post_entries
from tradeassist.services.tax.allowances import allowances_report

ALICE = "alice@example.com"


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)


@pytest.fixture
def alice(engine: Engine, admin) -> Engine:  # type: ignore[no-untyped-def]
    with unit_of_work(engine) as s:
        user = identity.add_user(s, actor=admin, email=ALICE, password="a-long-password-1")
        for name, treatment in [("ISA one", "ISA"), ("ISA two", "ISA"), ("SIPP", "SIPP"), ("GIA", "GIA")]:
            portfolios.add_portfolio(s, actor=user, name=name, broker="AJBell", tax_treatment=treatment)
    return engine


def post(engine: Engine, portfolio: str, *entries: NewEntry, force: bool = False) -> None:
    with unit_of_work(engine) as s:
        post_entries(
            s,
            actor=identity.get_user(s, ALICE),
            portfolio=portfolio,
            entries=list(entries),
            label="t",
            batch_type="MANUAL",
            force=force,
        )


def allowances(engine: Engine, year: str) -> dict:  # type: ignore[type-arg]
    with unit_of_work(engine, readonly=True) as s:
        return allowances_report(s, actor=identity.get_user(s, ALICE), tax_year=year)


def paid(day: str, amount: str, notes: str | None = None) -> NewEntry:
    return NewEntry(at(day), "CONTRIBUTION", D(amount), notes=notes)


def test_isa_subscriptions_across_two_isas_count_against_one_allowance(alice: Engine) -> None:
    post(alice, "ISA one", paid("2023-04-06", "12000"), paid("2024-04-05", "3000"))
    post(alice, "ISA two", paid("2023-09-01", "3500"), paid("2024-04-06", "20000"))  # the last: next year
    post(
        alice,
        "ISA two",
        NewEntry(at("2023-10-01"), "TRANSFER", D("5000"), notes="transfer in from another ISA"),
    )
    isa = allowances(alice, "2023-24")["isa"]
    assert (isa["allowance"], isa["subscribed"], isa["left"], isa["status"]) == (
        D(20000),
        D(18500),
        D(1500),
        "near",
    )
    assert isa["by_portfolio"] == [
        {"portfolio": "ISA one", "amount": D(15000)},
        {"portfolio": "ISA two", "amount": D(3500)},
    ]
    report = allowances(alice, "2023-24")
    assert report["warnings"] == ["ISA subscriptions £18,500.00: only £1,500.00 of £20,000.00 left"]


def test_a_subscription_over_the_allowance_is_refused_with_the_figures_unless_forced(alice: Engine) -> None:
    post(alice, "ISA one", paid("2023-05-01", "19000"))
    with pytest.raises(LedgerError) as refused:
        post(alice, "ISA two", paid("2024-01-10", "1500"))
    assert str(refused.value) == (
        "refused: entry 1: ISA subscriptions for 2023-24 would be £20,500.00 (£19,000.00 paid in before this "
        "£1,500.00), over the £20,000.00 allowance by £500.00; record it anyway with --force"
    )
    with unit_of_work(alice, readonly=True) as s:
        assert cash(s, actor=identity.get_user(s, ALICE), portfolio="ISA two")["cash_balance"] == D(0)
    post(alice, "ISA two", paid("2024-01-10", "1000"))  # exactly the allowance is fine
    post(alice, "ISA two", paid("2024-02-10", "1"), force=True)
    isa = allowances(alice, "2023-24")["isa"]
    assert (isa["subscribed"], isa["status"]) == (D(20001), "over")
    assert allowances(alice, "2023-24")["warnings"][0] == (
        "ISA subscriptions £20,001.00 are over the £20,000.00 allowance by £1.00"
    )


def test_general_account_contributions_are_never_limited(alice: Engine) -> None:
    post(alice, "GIA", paid("2023-05-01", "250000"))
    assert allowances(alice, "2023-24")["isa"]["subscribed"] == D(0)


def test_pension_contributions_are_grossed_up_for_relief_at_source(alice: Engine) -> None:
    post(
        alice,
        "SIPP",
        paid("2023-06-01", "40000", "Contribution"),
        paid("2023-08-01", "10000.00", "Tax relief"),
        paid("2022-06-01", "8000", "Contribution"),
    )
    pension = allowances(alice, "2023-24")["pension"]
    assert pension["personal_net"] == D(40000) and pension["personal_gross"] == D("50000.00")
    assert pension["tax_relief_recorded"] == D("10000.00")
    assert (pension["annual_allowance"], pension["left"], pension["status"]) == (
        D(60000),
        D("10000.00"),
        "within",
    )
    assert allowances(alice, "2022-23")["pension"]["annual_allowance"] == D(40000)


def test_dividends_and_interest_in_general_accounts_only(alice: Engine) -> None:
    post(
        alice,
        "GIA",
        NewEntry(
            at("2024-05-01"), "INTEREST", D("300"), notes="dividend: Vanguard FTSE All-World (10 units)"
        ),
        NewEntry(at("2024-06-01"), "INTEREST", D("250"), notes="dividend: iShares Core FTSE 100"),
        NewEntry(at("2024-06-30"), "INTEREST", D("12.34"), notes="Gross interest"),
        NewEntry(at("2024-07-01"), "DIVIDEND", D("100"), notes="dividend: a payer not in the registry"),
    )
    post(alice, "ISA one", NewEntry(at("2024-05-01"), "INTEREST", D("999"), notes="dividend: sheltered"))
    report = allowances(alice, "2024-25")
    assert report["dividends"] == {"allowance": D(500), "received": D(650), "left": D(0), "status": "over"}
    assert (report["interest"]["received"], report["interest"]["allowance"]) == (D("12.34"), D(1000))
    assert (
        "Dividends in general accounts £650.00 are over the £500.00 allowance by £150.00"
        in report["warnings"]
    )
