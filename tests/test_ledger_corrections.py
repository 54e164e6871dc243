"""Corrections that always work (issue #17 item 1), on both backends.

* Any set of entries (a contribution and the purchase it paid for, a recommendation's executed
  fills) is reversed in one batch, in any order of the ids; one at a time where the book allows.
* An entry and its exact reversal leave the replay together, so the book is the book of the
  ledger without them whatever sits between them at the same instant (hypothesis, in the pure
  book and through the database).
* An import refused for cash names the entries recorded by hand or by executing a
  recommendation that probably duplicate its lines, and the command that reverses them; an AJ
  Bell history imported without its cash statement is told to bring it.
* Money in the ledger's messages is ``format_gbp``'s: ``-£80.00``, never ``£-80``.
"""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from tests.support.recommendations import EVERY_SCALE, store
from tests.test_cli_ledger import cli  # noqa: F401  (the fixture: real processes)
from tests.test_services_imports import ajbell, mapping_file
from tests.test_services_imports import setup as setup_listings
from tests.test_services_recommendations import approve, execute, fills_at_estimates, show
from tradeassist.core.enums import BatchType, EntryType
from tradeassist.core.errors import FileFormatError, LedgerError, ValidationError
from tradeassist.core.isin import isin_check_digit
from tradeassist.core.money import format_gbp
from tradeassist.core.timeutil import utcnow
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import (
    AuditEvent,
    CashSnapshot,
    HoldingSnapshot,
    LedgerBatch,
    LedgerEntry,
    Portfolio,
    User,
)
from tradeassist.demo import DEMO_PORTFOLIO
from tradeassist.engine import book as bk
from tradeassist.services import identity, imports, ledger, portfolios, registry
from tradeassist.services.ledger import NewEntry

D = Decimal
SMT = "GB00BLDYK618"
DAY = datetime(2024, 1, 2, tzinfo=UTC)
HEADER = "entry_time,entry_type,ticker,exchange,units,price,fees_base,cash_amount_base,external_ref,notes\n"


def on(days: float) -> datetime:
    return DAY + timedelta(days=days)


def setup(engine: Engine, name: str = "ISA") -> None:
    with unit_of_work(engine) as s:
        actor = identity.bootstrap_admin(s)
        if registry.find_instrument(s, SMT) is None:
            registry.add_instrument(s, actor=actor, isin=SMT, instrument_type="ETF")
            registry.add_listing(
                s, actor=actor, isin=SMT, ticker="SMT", exchange="XLON", currency="GBP", quote_scale="GBX"
            )
        portfolios.add_portfolio(s, actor=actor, name=name, broker="AJBell", tax_treatment="ISA")


def contribution(days: float, amount: str) -> NewEntry:
    return NewEntry(on(days), EntryType.CONTRIBUTION, D(amount))


def buy(days: float, units: str, pence: str, ticker: str = "SMT") -> NewEntry:
    cash = -(D(units) * D(pence) / 100).quantize(D("0.01"))
    return NewEntry(
        on(days), EntryType.BUY, cash, ticker=ticker, exchange="XLON", units=D(units), price=D(pence)
    )


def post(engine: Engine, entries: list[NewEntry], portfolio: str = "ISA", kind: str = "MANUAL") -> list[int]:
    """Post one batch; the ids of its entries."""
    with unit_of_work(engine) as s:
        result = ledger.post_entries(
            s,
            actor=identity.bootstrap_admin(s),
            portfolio=portfolio,
            entries=entries,
            label="t",
            batch_type=kind,
        )
        return list(
            s.execute(
                select(LedgerEntry.ledger_entry_id)
                .where(LedgerEntry.ledger_batch_id == result.batch_id)
                .order_by(LedgerEntry.ledger_entry_id)
            ).scalars()
        )


def correct(engine: Engine, ids: list[int], portfolio: str = "ISA", **kw: Any) -> ledger.PostResult:
    with unit_of_work(engine) as s:
        return ledger.reverse_entries(
            s, actor=identity.bootstrap_admin(s), portfolio=portfolio, entry_ids=ids, **kw
        )


def import_file(engine: Engine, path: Path, portfolio: str = "ISA", **kw: Any) -> imports.ImportResult:
    with unit_of_work(engine) as s:
        return imports.import_file(
            s,
            actor=identity.bootstrap_admin(s),
            portfolio=portfolio,
            path=path,
            format=kw.pop("format", "canonical"),
            **kw,
        )


def book(engine: Engine, portfolio: str = "ISA") -> tuple[Decimal, dict[int, tuple[Decimal, Decimal | None]]]:
    with unit_of_work(engine, readonly=True) as s:
        pid = s.execute(select(Portfolio.portfolio_id).where(Portfolio.name == portfolio)).scalar_one()
        cash = s.execute(
            select(CashSnapshot.cash_balance).where(CashSnapshot.portfolio_id == pid)
        ).scalar_one()
        held = {
            lid: (units, cost)
            for lid, units, cost in s.execute(
                select(HoldingSnapshot.listing_id, HoldingSnapshot.units, HoldingSnapshot.cost_base).where(
                    HoldingSnapshot.portfolio_id == pid
                )
            )
        }
    return cash, held


def verified(engine: Engine, portfolio: str = "ISA") -> bool:
    """The stored snapshots equal a replay of the ledger."""
    with unit_of_work(engine, readonly=True) as s:
        checks = ledger.verify_snapshots(s, actor=identity.bootstrap_admin(s), portfolio=portfolio)
    return all(check.matches for check in checks)


def state(engine: Engine) -> dict[str, Any]:
    with unit_of_work(engine, readonly=True) as s:
        counts = {
            m.__tablename__: s.execute(select(func.count()).select_from(m)).scalar()
            for m in (LedgerBatch, LedgerEntry, AuditEvent)
        }
        holdings = sorted(str(r.model_dump()) for r in s.execute(select(HoldingSnapshot)).scalars())
        cash = sorted(str(r.model_dump()) for r in s.execute(select(CashSnapshot)).scalars())
    return counts | {"holdings": holdings, "cash": cash}


def measured(engine: Engine, same_instant: bool = False) -> tuple[int, int]:
    """Issue #17's case: CONTRIBUTION 100 (A), then BUY 10 SMT @ 800p (B), each posted alone."""
    setup(engine)
    (a,) = post(engine, [contribution(1, "100")])
    (b,) = post(engine, [buy(1 if same_instant else 2, "10", "800")])
    return a, b


# --- the measured case --------------------------------------------------------------------


def test_the_purchase_then_the_contribution_one_at_a_time(engine: Engine) -> None:
    a, b = measured(engine)
    assert correct(engine, [b]).cash_balance == D(100)
    result = correct(engine, [a])  # refused before: the reversed BUY's original counted alone
    assert result.cash_balance == D(0) and book(engine) == (D(0), {})
    assert verified(engine)


@pytest.mark.parametrize("same_instant", [False, True])
def test_the_contribution_alone_is_refused_naming_the_purchase_it_paid_for(
    engine: Engine, same_instant: bool
) -> None:
    a, b = measured(engine, same_instant)
    before = state(engine)
    with pytest.raises(LedgerError) as info:
        correct(engine, [a])
    day = "2024-01-03" if same_instant else "2024-01-04"
    assert str(info.value) == (
        f"refused: ledger entry {b} ({day}): cash would go below zero: -£80.00 after this entry, once "
        f"entry {a} is reversed: reverse them together: `tradeassist ledger correct {a} {b} --portfolio ISA`"
    )
    assert state(engine) == before


@pytest.mark.parametrize("same_instant", [False, True])
@pytest.mark.parametrize("order", ["AB", "BA"])
def test_both_in_one_batch_in_either_order(engine: Engine, same_instant: bool, order: str) -> None:
    a, b = measured(engine, same_instant)
    audits = state(engine)["audit_events"]
    result = correct(engine, [a, b] if order == "AB" else [b, a])
    assert (result.added, result.replayed, result.cash_balance) == (2, True, D(0))
    assert book(engine) == (D(0), {}) and verified(engine)
    assert state(engine)["audit_events"] == audits + 1  # one batch, audited as every posting
    with unit_of_work(engine, readonly=True) as s:
        batch = s.get(LedgerBatch, result.batch_id)
        assert batch is not None and batch.batch_type is BatchType.MANUAL_FIX
        assert (
            batch.label == f"correction of entries {', '.join(map(str, [a, b] if order == 'AB' else [b, a]))}"
        )
        reversed_ = s.execute(
            select(LedgerEntry.corrects_entry_id).where(LedgerEntry.ledger_batch_id == result.batch_id)
        ).scalars()
        assert sorted(reversed_) == [a, b]
    # each is reversed now, once: naming either again is refused and changes nothing
    before = state(engine)
    with pytest.raises(LedgerError, match="reversed already"):
        correct(engine, [b])
    assert state(engine) == before


def test_an_id_named_twice_is_reversed_once_and_a_replacement_needs_one_entry(engine: Engine) -> None:
    a, b = measured(engine)
    before = state(engine)
    with pytest.raises(ValidationError, match="a replacement corrects one entry"):
        correct(engine, [a, b], replacements=[contribution(1, "50")])
    assert state(engine) == before
    assert correct(engine, [b, b]).added == 1
    # with one entry named, a replacement is posted beside its reversal (as documented)
    result = correct(engine, [a], replacements=[contribution(1, "90")])
    assert result.added == 2 and book(engine) == (D(90), {}) and verified(engine)


def test_a_reversal_sits_with_its_original_among_entries_at_the_same_instant(engine: Engine) -> None:
    """Two purchases and a sale at one instant; reversing the first purchase afterwards leaves
    what the ledger without it gives: the sale takes half the second purchase's cost, not a
    share of both purchases with the first one's cost then taken out whole."""
    setup(engine)
    post(engine, [contribution(0, "10000")])
    first, _, _ = post(
        engine,
        [
            buy(1, "10", "10000"),  # £1,000
            buy(1, "10", "20000"),  # £2,000
            NewEntry(
                on(1), EntryType.SELL, D(750), ticker="SMT", exchange="XLON", units=D(5), price=D(15000)
            ),
        ],
    )
    post(engine, [buy(2, "1", "100")])  # a later entry: the reversal is back-dated behind it
    correct(engine, [first])
    cash, held = book(engine)
    assert cash == D(10000) - 2000 + 750 - 1
    assert list(held.values()) == [(D(6), D(1000) + D(1))]  # 5 left of £2,000 pool (£1,000) + £1
    assert verified(engine)


@pytest.mark.slow
def test_ledger_correct_reverses_several_ids_in_one_batch(cli) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """The command line: ``ledger correct A B`` is one batch; a replacement goes with one id."""
    add = ("ledger", "add", "--portfolio", "ISA")
    (paid,) = cli((*add, "--type", "CONTRIBUTION", "--amount", "100", "--time", "2024-01-03"))
    (bought,) = cli(
        (*add, "--type", "BUY", "--ticker", "VWRL", "--units", "10", "--price", "800", "--time", "2024-01-04")
    )
    assert (paid.returncode, bought.returncode) == (0, 0), bought.stderr
    (alone,) = cli(("ledger", "correct", "1", "--portfolio", "ISA"))
    assert alone.returncode == 1 and alone.stderr.strip() == (
        "error: refused: ledger entry 2 (2024-01-04): cash would go below zero: -£80.00 after this entry, "
        "once entry 1 is reversed: reverse them together: `tradeassist ledger correct 1 2 --portfolio ISA`"
    )
    (replaced,) = cli(
        ("ledger", "correct", "1", "2", "--portfolio", "ISA", "--type", "CONTRIBUTION", "--amount", "5")
    )
    assert replaced.returncode != 0 and replaced.stderr.strip() == (
        "error: --type posts a replacement for one entry: name only that ENTRY_ID with it, and reverse "
        "the others in a `ledger correct` of their own"
    )
    (both,) = cli(("ledger", "correct", "1", "2", "--portfolio", "ISA"))
    assert both.returncode == 0, both.stderr
    assert both.stdout.strip() == "correction posted as batch 3; cash £0.00"
    (listed,) = cli(("ledger", "list", "--portfolio", "ISA", "--json"))
    rows = json.loads(listed.stdout)
    assert sorted(r["ledger_entry_id"] for r in rows) == [1, 2, 3, 4]


# --- a recommendation's execution -----------------------------------------------------------


def _executed(demo_engine: Engine, paid_at: datetime | None = None) -> tuple[list[int], int]:
    """The demo's monthly allocation executed (now) after the contribution it asked for (at
    ``paid_at``, default now): the ids of the executed entries and of the contribution."""
    rid = store(demo_engine, "MONTHLY_ALLOC", "1000", policy_changes=EVERY_SCALE)
    approve(demo_engine, rid)
    lines = show(demo_engine, rid)["lines"]
    paid_at = paid_at or utcnow()
    (paid,) = post(
        demo_engine, [NewEntry(paid_at, EntryType.CONTRIBUTION, D(1000))], DEMO_PORTFOLIO, "MONTHLY_CONTRIB"
    )
    result = execute(demo_engine, rid, fills_at_estimates(lines))
    with unit_of_work(demo_engine, readonly=True) as s:
        fills = list(
            s.execute(
                select(LedgerEntry.ledger_entry_id).where(LedgerEntry.ledger_batch_id == result.batch_id)
            ).scalars()
        )
    return fills, paid


def test_a_recommendations_executed_fills_and_their_contribution_are_reversed_together(
    demo_engine: Engine,
) -> None:
    before = book(demo_engine, DEMO_PORTFOLIO)
    fills, paid = _executed(demo_engine)
    assert len(fills) >= 2
    ids = [*fills, paid]
    random.Random(17).shuffle(ids)
    result = correct(demo_engine, ids, DEMO_PORTFOLIO)
    assert result.added == len(ids)
    assert book(demo_engine, DEMO_PORTFOLIO) == before
    assert verified(demo_engine, DEMO_PORTFOLIO)


def test_a_statement_repeating_executed_fills_names_them_and_imports_once_they_are_reversed(
    demo_engine: Engine, tmp_path: Path
) -> None:
    """Issue #17's second case: the contribution a recommendation asked for (typed three hours
    ago), the recommendation executed (now), then the broker's statement of the same trades
    (an hour ago, under its own references): refused for cash at the executed fills, naming
    them and the command that reverses them; run, the statement imports."""
    fills, paid = _executed(demo_engine, utcnow() - timedelta(hours=3))
    with unit_of_work(demo_engine, readonly=True) as s:
        rows = (
            s.execute(
                select(LedgerEntry)
                .where(LedgerEntry.ledger_entry_id.in_(fills))
                .order_by(LedgerEntry.ledger_entry_id)
            )
            .scalars()
            .all()
        )
        listings = ledger.load_listings(s)
    cash_now = book(demo_engine, DEMO_PORTFOLIO)[0]
    earlier = (utcnow() - timedelta(hours=1)).isoformat()
    lines = [
        f"{earlier},{r.entry_type.value},{listings[r.listing_id].ticker},{listings[r.listing_id].exchange},"
        f"{r.units},{r.price},{r.fees_base},{r.cash_amount_base},S{n},"
        for n, r in enumerate(rows, start=1)
        if r.listing_id is not None
    ]
    spent = -sum(r.cash_amount_base for r in rows)
    assert cash_now < spent  # the fills counted twice would overdraw the account
    statement = tmp_path / "statement.csv"
    statement.write_text(HEADER + "\n".join(lines) + "\n")
    before = state(demo_engine)
    with pytest.raises(LedgerError) as info:
        import_file(demo_engine, statement, DEMO_PORTFOLIO)
    message = str(info.value)
    assert message.startswith(f"refused: ledger entry {min(fills)} (")  # the first fill, now overdrawn
    assert "cash would go below zero: -£" in message
    command = f"`tradeassist ledger correct {' '.join(map(str, sorted(fills)))} --portfolio 'Demo SIPP'`"
    assert message.endswith(f"if they do, reverse them and import the file again: {command}"), message
    assert (
        message.count("EXECUTION of recommendation") == len(fills) and f"ledger entry {paid} " not in message
    )
    assert state(demo_engine) == before
    correct(demo_engine, fills, DEMO_PORTFOLIO)
    assert import_file(demo_engine, statement, DEMO_PORTFOLIO).added == len(lines)
    assert book(demo_engine, DEMO_PORTFOLIO)[0] == cash_now
    assert verified(demo_engine, DEMO_PORTFOLIO)


# --- imports refused for cash ---------------------------------------------------------------


def test_an_import_refused_for_cash_names_the_entries_it_probably_repeats(
    engine: Engine, tmp_path: Path
) -> None:
    """A broker's export of trades and charges (its contribution came in an earlier file, or
    was typed by hand) repeating a fill an execution posted and a charge typed by hand."""
    setup(engine)
    post(engine, [contribution(1, "100")])  # typed by hand; not in the file
    (fill,) = post(engine, [buy(2, "10", "800")], kind="EXECUTION")
    (fee,) = post(engine, [NewEntry(on(3), EntryType.FEE, D(-10), D(10))])  # typed by hand
    (far,) = post(engine, [contribution(30, "5")])  # a month from the file's 5.00: not it
    statement = tmp_path / "broker.csv"
    statement.write_text(
        HEADER
        + "2024-01-04,BUY,SMT,XLON,10,800,0,-80.00,X1,\n"
        + "2024-01-05,FEE,,,,,10,-10.00,X2,custody\n"
        + "2024-01-07,CONTRIBUTION,,,,,,5.00,X3,\n"
    )
    before = state(engine)
    with pytest.raises(FileFormatError) as info:
        import_file(engine, statement)
    assert str(info.value) == (
        "broker.csv: line 2: cash would go below zero: -£60.00 after this entry; "
        "entries recorded by hand or by a recommendation's execution probably repeat lines of this file: "
        f"ledger entry {fill} (EXECUTION, 2024-01-04: BUY 10 SMT, -£80.00) is line 2, "
        f"ledger entry {fee} (MANUAL, 2024-01-05: FEE -£10.00) is line 3; "
        "if they do, reverse them and import the file again: "
        f"`tradeassist ledger correct {fill} {fee} --portfolio ISA`"
    )
    assert f"entry {far} " not in str(info.value)
    assert state(engine) == before
    correct(engine, [fee, fill])
    assert import_file(engine, statement).added == 3
    assert book(engine)[0] == D(100) - 80 - 10 + 5 + 5
    assert verified(engine)


def test_an_import_refused_for_cash_with_nothing_it_repeats_says_only_why(
    engine: Engine, tmp_path: Path
) -> None:
    setup(engine)
    statement = tmp_path / "broker.csv"
    statement.write_text(HEADER + "2024-01-04,WITHDRAWAL,,,,,,-8416.93,X1,\n")
    with pytest.raises(FileFormatError) as info:  # an empty book: perhaps earlier years are missing
        import_file(engine, statement)
    assert str(info.value) == (
        "broker.csv: line 2: cash would go below zero: -£8,416.93 after this entry; this file starts "
        "on 04/01/2024 and the book of 'ISA' holds nothing earlier: if you have statements for "
        "earlier years, import those first, oldest first"
    )
    post(engine, [NewEntry(datetime(2024, 1, 2, tzinfo=UTC), EntryType.CONTRIBUTION, D(1000))])
    with pytest.raises(FileFormatError) as info:  # history before it, nothing it repeats: only why
        import_file(engine, statement)
    assert str(info.value) == "broker.csv: line 2: cash would go below zero: -£7,416.93 after this entry"


def test_an_ajbell_history_without_its_cash_statement_is_told_to_bring_it(
    engine: Engine, admin: User, real_data: Path, tmp_path: Path
) -> None:
    setup_listings(engine, admin, "ISA")
    history, _ = ajbell(real_data, "ISA-2022")
    with pytest.raises(FileFormatError) as info:
        import_file(engine, history, format="ajbell", mapping=mapping_file(tmp_path))
    message = str(info.value)
    assert "cash would go below zero: -£" in message and "£-" not in message
    assert message.endswith(
        "this AJ Bell transaction history came without its cash statement, which holds the "
        "contributions and income that pay for its trades: import the two together, with "
        "`--cash-statement FILE`"
    )


# --- the ledger's money ---------------------------------------------------------------------


def test_the_ledgers_messages_show_money_as_format_gbp_does(engine: Engine, tmp_path: Path) -> None:
    assert format_gbp(D("-713.9"), exact=True) == "-£713.90"
    assert format_gbp(D("-8416.934"), exact=True) == "-£8,416.934"  # never rounded away
    assert format_gbp(D("1.0000000000"), exact=True) == "£1.00"
    setup(engine)
    post(engine, [contribution(1, "1000")])
    with pytest.raises(LedgerError) as info:
        post(engine, [NewEntry(on(2), EntryType.WITHDRAWAL, D("-8416.93"))])
    assert "cash would go below zero: -£7,416.93 after this entry" in str(info.value)
    with pytest.raises(LedgerError) as info:
        post(
            engine,
            [
                NewEntry(
                    on(2),
                    EntryType.BUY,
                    D("-500.02"),
                    ticker="SMT",
                    exchange="XLON",
                    units=D(1),
                    price=D(50000),
                )
            ],
        )
    assert "units × price = £500.00 but cash -£500.02 and fees £0.00 imply a consideration of £500.02" in str(
        info.value
    )


# --- the ordering rule, as properties -------------------------------------------------------

QUOTES = {1: bk.Quote(1, "GBP", 2), 2: bk.Quote(2, "GBP", 0)}


@st.composite
def ledgers(draw: st.DrawFn) -> list[bk.Entry]:
    """Entries on a few instants (many at the same one), keyed 1..n in book order."""
    drawn = []
    for _ in range(draw(st.integers(1, 14))):
        when = DAY + timedelta(days=draw(st.integers(0, 3)))
        kind = draw(st.sampled_from(["in", "in", "buy", "buy", "sell", "out", "fee"]))
        listing = draw(st.sampled_from([1, 2]))
        units = D(draw(st.integers(1, 6)))
        price = D(draw(st.integers(50, 400)))
        drawn.append((when, kind, listing, units, price, D(draw(st.integers(1, 900)))))
    drawn.sort(key=lambda d: d[0])
    entries = []
    for key, (when, kind, listing, units, price, amount) in enumerate(drawn, start=1):
        value = bk.consideration(units, price, QUOTES[listing]).quantize(D("0.01"))
        if kind == "in":
            entries.append(bk.Entry(key, when, EntryType.CONTRIBUTION, amount))
        elif kind == "out":
            entries.append(bk.Entry(key, when, EntryType.WITHDRAWAL, -amount / 10))
        elif kind == "fee":
            entries.append(bk.Entry(key, when, EntryType.FEE, -amount / 100, amount / 100))
        else:
            cash = -value - 1 if kind == "buy" else value
            fees = D(1) if kind == "buy" else D(0)
            kind_ = EntryType.BUY if kind == "buy" else EntryType.SELL
            entries.append(bk.Entry(key, when, kind_, cash, fees, listing, units, price))
    return entries


def reversal(key: int, e: bk.Entry) -> bk.Entry:
    return bk.Entry(
        key, e.entry_time, e.entry_type, -e.cash, -e.fees, e.listing_id,
        None if e.units is None else -e.units, e.price, corrects=e.key,
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(entries=ledgers(), data=st.data())
def test_reversing_any_subset_replays_as_the_ledger_without_it(
    entries: list[bk.Entry], data: st.DataObject
) -> None:
    """In the pure book: reversals (dated at their originals, keyed after every entry, so in
    book order they follow whatever shares their instant) leave exactly the book of the ledger
    without the entries they reverse: its cash, its pools, and the entry it is refused at."""
    gone = data.draw(st.sets(st.sampled_from([e.key for e in entries])))
    order = data.draw(st.permutations(sorted(gone)))
    by_key = {e.key: e for e in entries}
    fixes = [reversal(len(entries) + n, by_key[k]) for n, k in enumerate(order, start=1)]
    timeline = sorted([*entries, *fixes], key=lambda e: (e.entry_time, e.key))
    with_fixes = bk.replay(timeline, quotes=QUOTES)
    without = bk.replay([e for e in entries if e.key not in gone], quotes=QUOTES)
    assert with_fixes.book == without.book
    assert with_fixes.issues == without.issues
    assert bk.cancelled_pairs(timeline) == frozenset(gone) | {f.key for f in fixes}


_serial = itertools.count()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=ledgers(), data=st.data())
def test_reversing_a_random_subset_in_one_batch_leaves_the_book_of_the_ledger_without_it(
    engine: Engine, entries: list[bk.Entry], data: st.DataObject
) -> None:
    """Through the database: the ledger posted entry by entry (those the book refuses are left
    out), then a random subset reversed in one batch, ids in a random order. Accepted exactly
    when the ledger without the subset stands, and then its snapshots are that ledger's book."""
    n = next(_serial)
    name = f"P{n}"
    with unit_of_work(engine) as s:
        actor = identity.bootstrap_admin(s)
        portfolios.add_portfolio(s, actor=actor, name=name, broker="x", tax_treatment="GIA")
        for listing, scale in ((1, "GBX"), (2, "GBP")):
            body = f"GB{n:08d}{listing}"
            isin = body + isin_check_digit(body)
            registry.add_instrument(s, actor=actor, isin=isin, instrument_type="ETF")
            registry.add_listing(
                s,
                actor=actor,
                isin=isin,
                ticker=f"L{listing}X{n}",
                exchange="XLON",
                currency="GBP",
                quote_scale=scale,
            )
    tickers = {1: f"L1X{n}", 2: f"L2X{n}"}
    posted: dict[int, bk.Entry] = {}  # ledger id -> the entry as drawn
    for e in entries:
        new = NewEntry(
            e.entry_time, e.entry_type, e.cash, e.fees,
            ticker=tickers[e.listing_id] if e.listing_id else None,
            exchange="XLON" if e.listing_id else None, units=e.units, price=e.price,
        )  # fmt: skip
        try:
            (entry_id,) = post(engine, [new], name)
        except LedgerError:
            continue
        posted[entry_id] = e
    if not posted:
        return
    gone = data.draw(st.lists(st.sampled_from(sorted(posted)), unique=True, min_size=1))
    kept = [e._replace(key=k) for k, e in sorted(posted.items()) if k not in gone]
    kept.sort(key=lambda e: (e.entry_time, e.key))
    with unit_of_work(engine, readonly=True) as s:
        quotes = {k: v.quote for k, v in ledger.load_listings(s).items()}
        ids = {t: lid for lid, v in ledger.load_listings(s).items() for t in [v.ticker]}
    expected = bk.replay(
        [e._replace(listing_id=ids[tickers[e.listing_id]]) if e.listing_id else e for e in kept],
        quotes=quotes,
    )
    before = state(engine)
    try:
        correct(engine, gone, name)
    except LedgerError:
        assert expected.issues, "refused, yet the ledger without those entries stands"
        assert state(engine) == before
        return
    assert not expected.issues
    cash, held = book(engine, name)
    assert cash == expected.book.cash
    assert held == {k: (h.units, h.cost) for k, h in expected.book.holdings.items()}
    assert verified(engine, name)


def test_a_later_year_imported_first_is_told_to_bring_the_earlier_ones(
    engine: Engine, admin: User, real_data: Path, tmp_path: Path
) -> None:
    setup_listings(engine, admin, "ISA")
    history, statement = ajbell(real_data, "ISA-2023")
    with pytest.raises((FileFormatError, LedgerError)) as info:
        import_file(
            engine, history, format="ajbell", mapping=mapping_file(tmp_path), cash_statement=statement
        )
    assert str(info.value).endswith(
        "and the book of 'ISA' holds nothing earlier: if you have statements for earlier years, "
        "import those first, oldest first"
    )
    for year in ("ISA-2022", "ISA-2023"):  # in order, both go in
        history, statement = ajbell(real_data, year)
        import_file(
            engine, history, format="ajbell", mapping=mapping_file(tmp_path), cash_statement=statement
        )
