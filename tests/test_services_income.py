"""Income per listing and per tax year, on SQLite and PostgreSQL: DIVIDEND entries, and the
INTEREST rows the imports wrote for dividends before DIVIDEND existed, read as dividends without
being rewritten; tax years by their London dates; reversals; the dashboard's figure."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from tradeassist.core.enums import EntryType
from tradeassist.core.errors import AccessDenied, ValidationError
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import LedgerEntry, Portfolio, User
from tradeassist.presentation.dashboard import notes_markdown
from tradeassist.services import dashboard, identity, income, ledger, portfolios, registry
from tradeassist.services.ledger import NewEntry

D = Decimal
VWRL, AAPL = "IE00B3RBWM25", "US0378331005"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def build(engine: Engine, admin: User) -> None:
    with unit_of_work(engine) as s:
        actor = s.get(User, admin.user_id)
        registry.add_instrument(
            s, actor=actor, isin=VWRL, instrument_type="ETF", name="Vanguard FTSE All-World UCITS ETF"
        )
        registry.add_listing(
            s, actor=actor, isin=VWRL, ticker="VWRL", exchange="XLON", currency="GBP", quote_scale="GBX"
        )
        registry.add_instrument(s, actor=actor, isin=AAPL, instrument_type="STOCK", name="Apple Inc")
        registry.add_listing(
            s, actor=actor, isin=AAPL, ticker="AAPL", exchange="XNAS", currency="USD", quote_scale="USD"
        )
        vwrl = ledger.lookup_listing(s, "VWRL", "XLON").listing_id
        for name, treatment in (("ISA", "ISA"), ("GIA", "GIA")):
            portfolios.add_portfolio(s, actor=actor, name=name, broker="x", tax_treatment=treatment)
        post(s, actor, "ISA", [
            NewEntry(at("2023-04-01T09:00:00+01:00"), EntryType.CONTRIBUTION, D("1000")),
            # written by the imports before DIVIDEND existed: INTEREST with notes "dividend: …"
            NewEntry(at("2023-05-02T00:00:00+00:00"), EntryType.INTEREST, D("0.10"),
                     notes="dividend: Apple (10.13713692 units)", external_ref="L1"),
            NewEntry(at("2023-06-02T00:00:00+00:00"), EntryType.INTEREST, D("0.20"),
                     notes="dividend: VWRL", external_ref="L2"),
            NewEntry(at("2023-07-02T00:00:00+00:00"), EntryType.INTEREST, D("0.30"),
                     notes="dividend: ISH FT ALL STK GLT (43 units)", external_ref="L3"),
            NewEntry(at("2023-08-02T00:00:00+00:00"), EntryType.INTEREST, D("0.07"), notes="Gross interest"),
            NewEntry(at("2023-09-02T00:00:00+00:00"), EntryType.DIVIDEND, D("1.11"), listing_id=vwrl),
            # 5 April 23:30 UTC is 6 April 00:30 in London (BST): the next tax year
            NewEntry(at("2024-04-05T23:30:00+00:00"), EntryType.DIVIDEND, D("2.22"), listing_id=vwrl),
            NewEntry(at("2024-04-05T22:30:00+00:00"), EntryType.INTEREST, D("0.01")),  # 5 April 23:30
        ], "MANUAL")  # fmt: skip
        post(s, actor, "GIA", [
            NewEntry(at("2023-04-01T00:00:00+00:00"), EntryType.CONTRIBUTION, D("100")),
            NewEntry(at("2023-05-01T00:00:00+00:00"), EntryType.DIVIDEND, D("3.00"), listing_id=vwrl),
        ], "MANUAL")  # fmt: skip


def post(s: object, actor: User, portfolio: str, entries: list[NewEntry], kind: str) -> None:
    ledger.post_entries(s, actor=actor, portfolio=portfolio, entries=entries, label="t", batch_type=kind)  # type: ignore[arg-type]


def stored(engine: Engine) -> list[tuple[object, ...]]:
    with unit_of_work(engine, readonly=True) as s:
        return [
            (e.ledger_entry_id, e.entry_type, e.listing_id, e.notes, e.cash_amount_base)
            for e in s.execute(select(LedgerEntry).order_by(LedgerEntry.ledger_entry_id)).scalars()
        ]


def summary(rows: list[income.IncomeRow]) -> list[tuple[object, ...]]:
    return [(r.tax_year, r.portfolio, r.kind, r.ticker, r.payer, r.amount, r.entries) for r in rows]


def test_legacy_dividends_are_read_as_dividends_of_their_listing_without_being_rewritten(
    engine: Engine, admin: User
) -> None:
    build(engine, admin)
    before = stored(engine)
    with unit_of_work(engine, readonly=True) as s:
        rows = income.income_by_listing(s, tax_year="2023-24")
    assert summary(rows) == [
        ("2023-24", "GIA", "DIVIDEND", "VWRL", None, D("3.00"), 1),
        ("2023-24", "ISA", "DIVIDEND", "AAPL", None, D("0.10"), 1),  # "Apple" begins "Apple Inc"
        ("2023-24", "ISA", "DIVIDEND", "VWRL", None, D("1.31"), 2),  # a ticker in the notes + a DIVIDEND
        ("2023-24", "ISA", "DIVIDEND", None, "ISH FT ALL STK GLT", D("0.30"), 1),  # names no listing
        ("2023-24", "ISA", "INTEREST", None, None, D("0.08"), 2),
    ]
    isa = next(r for r in rows if r.ticker == "AAPL")
    assert (isa.tax_treatment, isa.exchange, isa.isin) == ("ISA", "XNAS", AAPL)
    assert stored(engine) == before  # classified as it is read: no row written or changed
    legacy = [row for row in before if row[3] and str(row[3]).startswith("dividend:")]
    assert {row[1] for row in legacy} == {EntryType.INTEREST} and len(legacy) == 3


def test_tax_years_follow_london_dates_and_every_year_is_one_query(engine: Engine, admin: User) -> None:
    build(engine, admin)
    with unit_of_work(engine, readonly=True) as s:
        everything = income.income_by_listing(s)
        isa = s.execute(select(Portfolio.portfolio_id).where(Portfolio.name == "ISA")).scalar_one()
        owned = income.income_by_listing(
            s, owner_user_id=admin.user_id, portfolio_ids=[isa], tax_year="2024/25"
        )
        assert income.income_by_listing(s, owner_user_id=admin.user_id + 99) == []
    assert [(r.tax_year, r.kind, r.amount) for r in everything if r.tax_year == "2024-25"] == [
        ("2024-25", "DIVIDEND", D("2.22"))
    ]
    assert summary(owned) == [("2024-25", "ISA", "DIVIDEND", "VWRL", None, D("2.22"), 1)]
    totals = income.totals(everything)
    assert totals[("2023-24", "ISA")] == {"DIVIDEND": D("1.71"), "INTEREST": D("0.08")}
    assert totals[("2023-24", "GIA")] == {"DIVIDEND": D("3.00"), "INTEREST": D("0")}
    for bad in ("2023-25", "23-24", "2023"):
        with pytest.raises(ValidationError, match="write it as 2023-24"):
            income.tax_year_label(bad)
    assert income.tax_year_label("2023-2024") == income.tax_year_label("2023/24") == "2023-24"


def test_a_reversed_legacy_dividend_nets_to_zero_as_a_dividend(engine: Engine, admin: User) -> None:
    build(engine, admin)
    with unit_of_work(engine) as s:
        actor = s.get(User, admin.user_id)
        legacy = s.execute(select(LedgerEntry).where(LedgerEntry.external_ref == "L1")).scalar_one()
        ledger.reverse_entries(s, actor=actor, portfolio="ISA", entry_ids=[legacy.ledger_entry_id])
    with unit_of_work(engine, readonly=True) as s:
        rows = income.income(s, actor=s.get(User, admin.user_id), portfolio="ISA", tax_year="2023-24")
    apple = next(r for r in rows if r.ticker == "AAPL")
    assert (apple.kind, apple.amount, apple.entries) == ("DIVIDEND", D("0.00"), 2)
    assert next(r for r in rows if r.kind == "INTEREST").amount == D("0.08")  # not −0.10 of interest


def test_people_see_the_income_of_the_portfolios_they_may_read(engine: Engine, admin: User) -> None:
    build(engine, admin)
    with unit_of_work(engine) as s:
        ann = identity.add_user(
            s, actor=s.get(User, admin.user_id), email="ann@example.com", password="pass-word-123"
        )
        portfolios.share_portfolio(s, actor=s.get(User, admin.user_id), name="GIA", email="ann@example.com")
    with unit_of_work(engine, readonly=True) as s:
        reader = s.get(User, ann.user_id)
        assert {r.portfolio for r in income.income(s, actor=reader)} == {"GIA"}
    with pytest.raises(AccessDenied), unit_of_work(engine, readonly=True) as s:
        income.income(s, actor=s.get(User, ann.user_id), portfolio="ISA")


def test_the_dashboard_says_this_tax_year_s_dividends_and_interest(engine: Engine, admin: User) -> None:
    build(engine, admin)
    with unit_of_work(engine, readonly=True) as s:
        actor = s.get(User, admin.user_id)
        late = dashboard.gather(s, actor=actor, portfolio="ISA", as_of=at("2024-04-05T23:59:00+01:00"))
        early = dashboard.gather(s, actor=actor, portfolio="ISA", as_of=at("2023-06-30T12:00:00+01:00"))
        next_year = dashboard.gather(s, actor=actor, portfolio="ISA", as_of=at("2024-04-06T12:00:00+01:00"))
    assert late.income_note == "Income this tax year (2023-24): dividends £1.71, interest £0.08."
    assert early.income_note == "Income this tax year (2023-24): dividends £0.30, interest £0.00."
    assert next_year.income_note == "Income this tax year (2024-25): dividends £2.22, interest £0.00."
    assert notes_markdown(late).endswith(
        "\n\n**Income this tax year (2023-24):** dividends £1.71, interest £0.08."
    )
