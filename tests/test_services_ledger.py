"""Posting batches, snapshots, refusals that leave the database as it was, corrections,
transfers, rebuild, and the property that incremental snapshots equal rebuilt ones (both backends)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from tradeassist.core.enums import EntryType
from tradeassist.core.errors import AccessDenied, AlreadyExists, LedgerError, NotFound, ValidationError
from tradeassist.core.isin import isin_check_digit
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import (
    AuditEvent,
    CashSnapshot,
    CorporateAction,
    HoldingSnapshot,
    LedgerBatch,
    LedgerEntry,
    User,
)
from tradeassist.engine import book as bk
from tradeassist.services import corporate_actions, identity, ledger, portfolios, registry
from tradeassist.services.ledger import NewEntry

D = Decimal
T0 = datetime(2024, 1, 2, 9, 0, tzinfo=UTC)
VWRL, VWRP = "IE00B3RBWM25", "IE00BK5BQT80"


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def setup_book(engine: Engine, admin: User, *names: str) -> None:
    with unit_of_work(engine) as s:
        actor = s.get(User, admin.user_id)
        for isin, ticker, scale in ((VWRL, "VWRL", "GBX"), (VWRP, "VWRP", "GBP")):
            registry.add_instrument(s, actor=actor, isin=isin, instrument_type="ETF")
            registry.add_listing(
                s, actor=actor, isin=isin, ticker=ticker, exchange="XLON", currency="GBP", quote_scale=scale
            )
        for name in names or ("ISA",):
            portfolios.add_portfolio(s, actor=actor, name=name, broker="AJBell", tax_treatment="ISA")


def post(engine: Engine, admin: User, entries: list[NewEntry], portfolio: str = "ISA", **kw: Any):  # type: ignore[no-untyped-def]
    with unit_of_work(engine) as s:
        kw.setdefault("batch_type", "MANUAL")
        return ledger.post_entries(
            s, actor=s.get(User, admin.user_id), portfolio=portfolio, entries=entries, label="test", **kw
        )


def contribution(days: float, amount: str, **kw: Any) -> NewEntry:
    return NewEntry(at(days), EntryType.CONTRIBUTION, D(amount), **kw)


def trade(
    kind: EntryType, days: float, ticker: str, units: str, price: str, cash: str, fees: str = "0", **kw: Any
) -> NewEntry:
    return NewEntry(
        at(days), kind, D(cash), D(fees), ticker=ticker, exchange="XLON", units=D(units), price=D(price), **kw
    )


def state(engine: Engine) -> dict[str, Any]:
    """Everything a refused post must leave exactly as it was."""
    with unit_of_work(engine, readonly=True) as s:
        counts = {
            model.__tablename__: s.execute(select(func.count()).select_from(model)).scalar()
            for model in (LedgerBatch, LedgerEntry, AuditEvent, CorporateAction)
        }
        holdings = s.execute(
            select(HoldingSnapshot).order_by(HoldingSnapshot.portfolio_id, HoldingSnapshot.listing_id)
        )
        cash = s.execute(select(CashSnapshot).order_by(CashSnapshot.portfolio_id))
        return counts | {
            "holdings": [r.model_dump() for r in holdings.scalars()],
            "cash": [r.model_dump() for r in cash.scalars()],
        }


Held = dict[str, tuple[Decimal, Decimal | None, Decimal | None]]


def book_of(engine: Engine, portfolio: str = "ISA") -> tuple[Decimal, Held]:
    with unit_of_work(engine, readonly=True) as s:
        actor = identity.bootstrap_admin(s)
        cash = ledger.cash(s, actor=actor, portfolio=portfolio)["cash_balance"]
        pid = s.execute(
            text("select portfolio_id from portfolios where name = :n"), {"n": portfolio}
        ).scalar()
        mine = HoldingSnapshot.portfolio_id == pid
        costs = dict(
            s.execute(select(HoldingSnapshot.listing_id, HoldingSnapshot.cost_base).where(mine)).all()
        )
        listings = ledger.load_listings(s)
        held = {
            listings[lid].ticker: (units, avg, costs[lid])
            for lid, units, avg in s.execute(
                select(
                    HoldingSnapshot.listing_id, HoldingSnapshot.units, HoldingSnapshot.avg_cost_base
                ).where(HoldingSnapshot.portfolio_id == pid)
            )
        }
        return cash, held


def assert_snapshots_equal_rebuild(engine: Engine, portfolio: str = "ISA") -> None:
    with unit_of_work(engine, readonly=True) as s:
        pid = s.execute(
            text("select portfolio_id from portfolios where name = :n"), {"n": portfolio}
        ).scalar()
        stored = ledger.snapshot_book(s, pid)
        replayed, _ = ledger.replay_portfolio(s, pid)
        mine = HoldingSnapshot.portfolio_id == pid
        avgs = dict(
            s.execute(select(HoldingSnapshot.listing_id, HoldingSnapshot.avg_cost_base).where(mine)).all()
        )
    assert replayed.issues == ()
    assert stored == replayed.book
    assert avgs == {k: h.avg_cost for k, h in replayed.book.holdings.items()}


def test_a_batch_updates_snapshots_in_the_same_transaction(engine: Engine, admin: User) -> None:
    setup_book(engine, admin)
    result = post(
        engine,
        admin,
        [
            contribution(0, "5000"),
            trade(EntryType.BUY, 1, "VWRL", "10", "8512.5", "-856.25", "5"),  # pence
            trade(EntryType.BUY, 2, "VWRP", "4", "101.255", "-405.02"),  # pounds, consideration rounded
            trade(EntryType.SELL, 3, "VWRL", "4", "8600", "339.00", "5"),
            NewEntry(at(4), EntryType.FEE, D("-1.50"), D("1.50")),
            NewEntry(at(5), EntryType.INTEREST, D("0.42")),
            NewEntry(at(6), EntryType.WITHDRAWAL, D("-100")),
        ],
    )
    assert (result.added, result.skipped, result.replayed) == (7, 0, False)
    cash, held = book_of(engine)
    assert cash == D("5000") - D("856.25") - D("405.02") + D("339.00") - D("1.50") + D("0.42") - D("100")
    # VWRL pool: £856.25 for 10; selling 4 removes 342.50
    assert held == {
        "VWRL": (D(6), D("85.6250000000"), D("513.75")),
        "VWRP": (D(4), D("101.2550000000"), D("405.02")),
    }
    assert_snapshots_equal_rebuild(engine)
    with unit_of_work(engine, readonly=True) as s:
        audit = (
            s.execute(select(AuditEvent).where(AuditEvent.action == "LEDGER_BATCH_POSTED")).scalars().all()
        )
        assert len(audit) == 1 and audit[0].details["entries"] == 7
        rows = ledger.holdings(s, actor=identity.bootstrap_admin(s), portfolio="ISA")
        assert [set(r) for r in rows] == [{"ticker", "exchange", "isin", "units", "avg_cost_base"}] * 2
        assert rows[0]["isin"] == VWRL and isinstance(rows[0]["units"], Decimal)


REFUSALS = [
    (
        "BUY without a listing",
        [NewEntry(at(1), EntryType.BUY, D("-10"), units=D(1), price=D(10))],
        "needs a listing",
    ),
    ("BUY of 0 units", [trade(EntryType.BUY, 1, "VWRP", "0", "10", "0")], "units > 0"),
    ("BUY of negative units", [trade(EntryType.BUY, 1, "VWRP", "-1", "10", "10")], "units > 0"),
    ("BUY at price 0", [trade(EntryType.BUY, 1, "VWRP", "1", "0", "0")], "price > 0"),
    ("SELL at a negative price", [trade(EntryType.SELL, 1, "VWRP", "1", "-1", "1")], "price > 0"),
    ("SELL of more than held", [trade(EntryType.SELL, 1, "VWRP", "2", "10", "20")], "only 1 are held"),
    ("cash below zero", [NewEntry(at(1), EntryType.WITHDRAWAL, D("-1000.01"))], "below zero"),
    (
        "future",
        [NewEntry(datetime.now(UTC) + timedelta(days=1), EntryType.CONTRIBUTION, D(1))],
        "in the future",
    ),
    ("unknown listing", [trade(EntryType.BUY, 1, "NOPE", "1", "10", "-10")], "unknown listing NOPE on XLON"),
    (
        "unknown listing id",
        [NewEntry(at(1), EntryType.BUY, D(-10), listing_id=999, units=D(1), price=D(10))],
        "unknown listing id 999",
    ),
    ("price 100× off", [trade(EntryType.BUY, 1, "VWRP", "1", "8512.5", "-85.13")], "imply a consideration"),
    (
        "cash ≠ consideration + fees",
        [trade(EntryType.BUY, 1, "VWRL", "10", "8512.5", "-851.25", "5")],
        "imply a consideration",
    ),
    ("negative fees", [trade(EntryType.BUY, 1, "VWRP", "1", "10", "-5", "-5")], "must not be negative"),
    ("float money", [NewEntry(at(1), EntryType.CONTRIBUTION, 10.5)], "floats are not accepted"),  # type: ignore[arg-type]
    (
        "a repeated reference",
        [contribution(1, "1", external_ref="A"), contribution(2, "1", external_ref="A")],
        "repeats entry 2",
    ),
    (
        "back-dated withdrawal making past cash negative",
        [NewEntry(at(-1), EntryType.WITHDRAWAL, D("-1"))],
        "below zero",
    ),
    (
        "back-dated sale of units bought later",
        [trade(EntryType.SELL, 0.5, "VWRP", "1", "10", "10")],
        "only 0 are held",
    ),
    ("correction outside MANUAL_FIX", [contribution(1, "1", corrects_entry_id=1)], "MANUAL_FIX"),
]


@pytest.mark.parametrize(("entries", "reason"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_every_refusal_names_the_reason_and_leaves_the_database_unchanged(
    engine: Engine, admin: User, entries: list[NewEntry], reason: str
) -> None:
    setup_book(engine, admin)
    post(engine, admin, [contribution(0, "1000"), trade(EntryType.BUY, 0.7, "VWRP", "1", "10", "-10")])
    before = state(engine)
    with pytest.raises((LedgerError, ValidationError), match=reason):
        post(engine, admin, [contribution(1, "5"), *entries])
    assert state(engine) == before


def test_every_bad_entry_of_a_file_is_named_with_its_line(engine: Engine, admin: User) -> None:
    setup_book(engine, admin)
    entries = [
        contribution(0, "100", source="f.csv", line=2),
        contribution(1, "-1", source="f.csv", line=3),
        trade(EntryType.BUY, 1, "NOPE", "1", "1", "-1", source="f.csv", line=4),
        trade(EntryType.BUY, 1, "VWRP", "1", "0", "-1", source="f.csv", line=5),
    ]
    with pytest.raises(ValidationError) as info:
        post(engine, admin, entries)
    assert info.value.file == "f.csv"  # type: ignore[attr-defined]
    assert [line for line, _ in info.value.problems] == [4]  # type: ignore[attr-defined]  # listings first
    with pytest.raises(ValidationError) as info:
        post(engine, admin, [e for e in entries if e.line != 4])
    assert [line for line, _ in info.value.problems] == [3, 5]  # type: ignore[attr-defined]


def test_same_reference_same_values_is_skipped_different_values_refused(engine: Engine, admin: User) -> None:
    setup_book(engine, admin)
    first = post(engine, admin, [contribution(0, "100", external_ref="C1")])
    again = post(
        engine, admin, [contribution(0, "100", external_ref="C1"), contribution(1, "5", external_ref="C2")]
    )
    assert (first.added, again.added, again.skipped) == (1, 1, 1)
    nothing = post(engine, admin, [contribution(0, "100.00", external_ref="C1")])  # 100 == 100.00
    assert (nothing.batch_id, nothing.added, nothing.skipped) == (None, 0, 1)
    before = state(engine)
    with pytest.raises(LedgerError, match="already recorded with other values"):
        post(engine, admin, [contribution(0, "101", external_ref="C1")])
    assert state(engine) == before
    assert book_of(engine)[0] == D(105)


def test_same_source_file_is_imported_once(engine: Engine, admin: User) -> None:
    setup_book(engine, admin)
    post(engine, admin, [contribution(0, "100")], source_sha256="a" * 64, batch_type="IMPORT")
    before = state(engine)
    again = post(engine, admin, [contribution(0, "100")], source_sha256="a" * 64, batch_type="IMPORT")
    assert again.already_imported and again.added == 0
    assert state(engine) == before


def test_back_dated_entries_are_validated_against_the_whole_timeline(engine: Engine, admin: User) -> None:
    setup_book(engine, admin)
    post(engine, admin, [contribution(0, "1000"), trade(EntryType.BUY, 5, "VWRP", "10", "50", "-500")])
    late = post(engine, admin, [contribution(10, "10")])
    assert not late.replayed
    early = post(engine, admin, [NewEntry(at(3), EntryType.WITHDRAWAL, D("-500")), contribution(4, "1")])
    assert early.replayed and early.cash_balance == D("11")
    assert_snapshots_equal_rebuild(engine)
    before = state(engine)
    with pytest.raises(LedgerError, match=r"ledger entry 2 \(2024-01-07\): cash would go below zero"):
        post(engine, admin, [NewEntry(at(3.5), EntryType.WITHDRAWAL, D("-2"))])
    assert state(engine) == before
    # entries within one batch are ordered by time, whatever order they come in
    post(engine, admin, [trade(EntryType.SELL, 20, "VWRP", "10", "50", "500"), contribution(15, "1")])
    assert book_of(engine) == (D("512"), {})


def test_reversal_and_replacement_in_a_manual_fix_batch(engine: Engine, admin: User) -> None:
    setup_book(engine, admin)
    post(
        engine,
        admin,
        [
            contribution(0, "2000"),
            trade(EntryType.BUY, 1, "VWRP", "10", "50", "-505", "5"),
            trade(EntryType.BUY, 2, "VWRP", "10", "60", "-600"),
            trade(EntryType.SELL, 3, "VWRP", "5", "70", "350"),
        ],
    )
    with unit_of_work(engine) as s:
        actor = identity.bootstrap_admin(s)
        buy_id = (
            s.execute(select(LedgerEntry.ledger_entry_id).where(LedgerEntry.units == D(10))).scalars().first()
        )
        replacement = trade(EntryType.BUY, 1, "VWRP", "12", "50", "-605", "5")
        result = ledger.reverse_entries(
            s, actor=actor, portfolio="ISA", entry_ids=[buy_id], replacements=[replacement]
        )
    assert result.replayed and result.added == 2
    cash, held = book_of(engine)
    assert cash == D(2000) - 605 - 600 + 350
    # 12 @ 605 then 10 @ 600: 22 units, £1205; selling 5 removes 273.86
    assert held == {"VWRP": (D(17), (D("931.14") / 17).quantize(D("1E-10")), D("931.14"))}
    assert_snapshots_equal_rebuild(engine)
    before = state(engine)
    with pytest.raises(LedgerError, match="reversed already"), unit_of_work(engine) as s:
        ledger.reverse_entries(s, actor=identity.bootstrap_admin(s), portfolio="ISA", entry_ids=[buy_id])
    with pytest.raises(NotFound), unit_of_work(engine) as s:
        ledger.reverse_entries(s, actor=identity.bootstrap_admin(s), portfolio="ISA", entry_ids=[999])
    assert state(engine) == before


def test_transfers_between_portfolios_carry_units_cost_and_cash(engine: Engine, admin: User) -> None:
    setup_book(engine, admin, "GIA", "ISA")
    post(
        engine,
        admin,
        [contribution(0, "1000"), trade(EntryType.BUY, 1, "VWRP", "30", "10", "-305", "5")],
        "GIA",
    )
    with unit_of_work(engine) as s:
        actor = identity.bootstrap_admin(s)
        ledger.transfer_between(
            s,
            actor=actor,
            source="GIA",
            destination="ISA",
            entry_time=at(2),
            ticker="VWRP",
            exchange="XLON",
            units=D(10),
        )
        ledger.transfer_between(
            s, actor=actor, source="GIA", destination="ISA", entry_time=at(3), amount=D(200)
        )
    assert book_of(engine, "GIA") == (D(495), {"VWRP": (D(20), D("10.1665000000"), D("203.33"))})
    assert book_of(engine, "ISA") == (D(200), {"VWRP": (D(10), D("10.1670000000"), D("101.67"))})
    for name in ("GIA", "ISA"):
        assert_snapshots_equal_rebuild(engine, name)
    before = state(engine)
    with pytest.raises(LedgerError, match="only 20 are held"), unit_of_work(engine) as s:
        ledger.transfer_between(
            s,
            actor=identity.bootstrap_admin(s),
            source="GIA",
            destination="ISA",
            entry_time=at(4),
            ticker="VWRP",
            units=D(21),
        )
    assert state(engine) == before


def test_rebuild_restores_damaged_snapshots_and_is_audited(engine: Engine, admin: User) -> None:
    setup_book(engine, admin)
    post(engine, admin, [contribution(0, "1000"), trade(EntryType.BUY, 1, "VWRL", "3", "1000", "-30")])
    good = book_of(engine)
    with unit_of_work(engine) as s:
        s.execute(text("update cash_snapshots set cash_balance = '1'"))
        s.execute(text("delete from holding_snapshots"))
    with unit_of_work(engine) as s:
        result = ledger.rebuild(s, actor=identity.bootstrap_admin(s), portfolio="ISA")
    assert result.changed and result.entries == 2
    assert book_of(engine) == good
    with unit_of_work(engine) as s:
        assert not ledger.rebuild(s, actor=identity.bootstrap_admin(s), portfolio="ISA").changed


def test_only_members_may_post_or_read(engine: Engine, admin: User) -> None:
    setup_book(engine, admin)
    with unit_of_work(engine) as s:
        identity.add_user(s, actor=s.get(User, admin.user_id), email="eve@example.com", password="x" * 12)
    before = state(engine)
    with pytest.raises(AccessDenied), unit_of_work(engine) as s:
        eve = identity.get_user(s, "eve@example.com")
        ledger.post_entries(
            s, actor=eve, portfolio="ISA", entries=[contribution(0, "1")], label="x", batch_type="MANUAL"
        )
    with pytest.raises(AccessDenied), unit_of_work(engine, readonly=True) as s:
        ledger.holdings(s, actor=identity.get_user(s, "eve@example.com"), portfolio="ISA")
    after = state(engine)
    assert after.pop("audit_events") == before.pop("audit_events") + 2  # the denials, audited
    assert after == before


# --- property: incremental snapshots equal rebuilt ones, on both backends -------------------

_serial = itertools.count()


@st.composite
def batches(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """Steps: batches of entries (often back-dated, sometimes invalid) and corporate actions."""
    steps: list[tuple[str, Any]] = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.integers(0, 5)) == 0:
            steps.append(("split", (draw(st.integers(0, 40)), draw(st.sampled_from(["2:1", "1:2", "3:2"])))))
            continue
        batch = []
        for _ in range(draw(st.integers(1, 5))):
            day = draw(st.integers(0, 40)) + draw(st.sampled_from([0, 0.25, 0.5]))
            kind = draw(st.sampled_from(["in", "buy", "buy", "sell", "fee", "out", "move"]))
            ticker = draw(st.sampled_from(["A", "B"]))
            units = D(draw(st.integers(1, 8 if kind in ("buy", "move") else 3)))
            price = D(draw(st.integers(100, 5000)))  # A: pence, B: pounds ÷ 100
            batch.append((kind, day, ticker, units, price, draw(st.integers(1, 3000))))
        steps.append(("batch", batch))
    return steps


def _entries(batch: list[tuple[Any, ...]], tickers: dict[str, str]) -> list[NewEntry]:
    out = []
    for kind, day, ticker, units, price, amount in batch:
        real, p = tickers[ticker], price if ticker == "A" else price / 100
        value = (units * p / (100 if ticker == "A" else 1)).quantize(D("0.01"))
        if kind == "in":
            out.append(contribution(day, str(amount)))
        elif kind == "buy":
            out.append(trade(EntryType.BUY, day, real, str(units), str(p), str(-value - 1), "1"))
        elif kind == "sell":
            out.append(trade(EntryType.SELL, day, real, str(units), str(p), str(value)))
        elif kind == "fee":
            out.append(NewEntry(at(day), EntryType.FEE, -D(amount) / 100, D(amount) / 100))
        elif kind == "out":
            out.append(
                NewEntry(at(day), EntryType.TRANSFER, D(0), ticker=real, exchange="XLON", units=-units)
            )
        else:
            out.append(
                NewEntry(
                    at(day),
                    EntryType.TRANSFER,
                    D(0),
                    ticker=real,
                    exchange="XLON",
                    units=units,
                    cost_base=value,
                )
            )
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=batches())
def test_incremental_snapshots_equal_rebuilt_ones(
    engine: Engine, admin: User, steps: list[tuple[str, Any]]
) -> None:
    n = next(_serial)
    name = f"P{n}"
    isins = {}
    with unit_of_work(engine) as s:
        actor = s.get(User, admin.user_id)
        portfolios.add_portfolio(s, actor=actor, name=name, broker="x", tax_treatment="GIA")
        for letter, scale in (("A", "GBX"), ("B", "GBP")):
            body = f"GB{n:08d}{letter}"
            isins[letter] = body + isin_check_digit(body)
            registry.add_instrument(s, actor=actor, isin=isins[letter], instrument_type="ETF")
            registry.add_listing(
                s,
                actor=actor,
                isin=isins[letter],
                ticker=f"{letter}{n}",
                exchange="XLON",
                currency="GBP",
                quote_scale=scale,
            )
    tickers = {"A": f"A{n}", "B": f"B{n}"}
    seed = [("in", -1, "A", D(0), D(0), 100_000), ("move", -1, "A", D(10), D(500), 0)]
    post(engine, admin, _entries([*seed, ("move", -1, "B", D(10), D(500), 0)], tickers), name)
    for kind, payload in steps:
        before = state(engine)
        try:
            if kind == "split":
                day, ratio = payload
                with unit_of_work(engine) as s:
                    corporate_actions.add_corporate_action(
                        s,
                        actor=s.get(User, admin.user_id),
                        isin=isins["A"],
                        action_type="SPLIT" if ratio != "1:2" else "MERGE",
                        effective=date(2024, 1, 2) + timedelta(days=day),
                        ratio=ratio,
                    )
            else:
                post(engine, admin, _entries(payload, tickers), name)
        except (LedgerError, ValidationError, AlreadyExists):
            assert state(engine) == before  # a refusal changes nothing
        assert_snapshots_equal_rebuild(engine, name)


def test_book_order_is_time_then_id(engine: Engine, admin: User) -> None:
    setup_book(engine, admin)
    post(engine, admin, [contribution(1, "1"), contribution(0, "2")])
    with unit_of_work(engine, readonly=True) as s:
        timeline = ledger.load_timeline(s, 1)
    entries = [bk.Entry._make(row) for row in timeline]
    assert [e.cash for e in entries] == [D(2), D(1)]
    assert all(e.entry_time.tzinfo is UTC and e.entry_type is EntryType.CONTRIBUTION for e in entries)
