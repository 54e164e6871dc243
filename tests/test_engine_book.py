"""The pure book: conventions, Section 104 pooled cost, refusals, corporate actions, reversals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeassist.core.enums import CorporateActionType, EntryType
from tradeassist.engine import book as bk
from tradeassist.engine.book import Action, Entry, Quote

D = Decimal
GBX, GBP, USD = Quote(1, "GBP", 2), Quote(2, "GBP", 0), Quote(3, "USD", 0)
QUOTES = {10: GBX, 20: GBP, 30: USD, 11: Quote(1, "GBP", 0), 40: Quote(4, "GBP", 0)}
NOW = datetime(2025, 1, 1, tzinfo=UTC)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(day: int) -> datetime:
    return T0 + timedelta(days=day)


def contribution(key: int, day: int, amount: str) -> Entry:
    return Entry(key, at(day), EntryType.CONTRIBUTION, D(amount))


def buy(key: int, day: int, listing: int, units: str, price: str, cash: str, fees: str = "0") -> Entry:
    return Entry(key, at(day), EntryType.BUY, D(cash), D(fees), listing, D(units), D(price))


def sell(key: int, day: int, listing: int, units: str, price: str, cash: str, fees: str = "0") -> Entry:
    return Entry(key, at(day), EntryType.SELL, D(cash), D(fees), listing, D(units), D(price))


def run(*entries: Entry, actions: tuple[Action, ...] = (), **kwargs) -> bk.Replay:  # type: ignore[no-untyped-def]
    return bk.replay(entries, quotes=QUOTES, actions=actions, **kwargs)


def test_section_104_pool_includes_fees_and_a_sale_removes_cost_in_proportion() -> None:
    result = run(
        contribution(1, 0, "10000"),
        buy(2, 1, 20, "10", "100", "-1005.00", "5"),  # pool 10 units, £1005
        buy(3, 2, 20, "30", "120", "-3609.95", "9.95"),  # pool 40 units, £4614.95
        sell(4, 3, 20, "10", "130", "1295.00", "5"),  # removes 4614.95 × 10/40 = 1153.7375 → 1153.74
    )
    assert result.issues == ()
    holding = result.book.holdings[20]
    assert holding == bk.Holding(D(30), D("3461.21"))
    assert holding.avg_cost == D("115.3736666667")
    assert result.book.cash == D("10000") - D("1005.00") - D("3609.95") + D("1295.00")
    everything = run(
        *[contribution(1, 0, "10000"), buy(2, 1, 20, "10", "100", "-1005")], sell(3, 2, 20, "10", "1", "10")
    )
    assert everything.book.holdings == {}  # the last unit takes all the cost with it


def test_pence_prices_are_scaled_and_the_consideration_must_agree_to_the_penny() -> None:
    ok = buy(1, 1, 10, "10", "8512.5", "-856.25", "5")  # 10 × 8512.5p = £851.25
    assert bk.entry_problem(ok, GBX, NOW) is None
    assert bk.consideration(D(10), D("8512.5"), GBX) == D("851.250")
    rounded = buy(1, 1, 10, "3", "1234.567", "-37.04")  # £37.03701 rounds to 37.04: within a penny
    assert bk.entry_problem(rounded, GBX, NOW) is None
    off = buy(1, 1, 10, "10", "8512.5", "-856.27", "5")
    assert "imply a consideration" in (bk.entry_problem(off, GBX, NOW) or "")
    hundredfold = buy(1, 1, 20, "10", "8512.5", "-856.25", "5")  # pence given for a GBP listing
    assert "£85,125.00" in (bk.entry_problem(hundredfold, GBP, NOW) or "")
    foreign = buy(1, 1, 30, "2", "150", "-240.00", "1")  # USD listing: the broker's GBP stands
    assert bk.entry_problem(foreign, USD, NOW) is None
    sale = sell(1, 1, 20, "2", "10.005", "15.01", "5")  # 20.01 − 5
    assert bk.entry_problem(sale, GBP, NOW) is None


@pytest.mark.parametrize(
    ("entry", "quote", "reason"),
    [
        (Entry(1, at(1), EntryType.BUY, D("-10"), units=D(1), price=D(10)), None, "needs a listing"),
        (buy(1, 1, 20, "0", "10", "0"), GBP, "units > 0"),
        (buy(1, 1, 20, "-1", "10", "10"), GBP, "units > 0"),
        (buy(1, 1, 20, "1", "0", "0"), GBP, "price > 0"),
        (Entry(1, at(1), EntryType.BUY, D("-10"), listing_id=20, units=D(1)), GBP, "price > 0"),
        (buy(1, 1, 99, "1", "10", "-10"), None, "unknown listing"),
        (buy(1, 1, 20, "1", "10", "-15", "-5"), GBP, "must not be negative"),
        (Entry(1, NOW + timedelta(seconds=1), EntryType.CONTRIBUTION, D(1)), None, "in the future"),
        (contribution(1, 1, "-10"), None, "must be positive"),
        (Entry(1, at(1), EntryType.WITHDRAWAL, D("10")), None, "must be negative"),
        (Entry(1, at(1), EntryType.FEE, D("-10"), D("9")), None, "cash_amount_base = −fees_base"),
        (Entry(1, at(1), EntryType.INTEREST, D("10"), listing_id=20), GBP, "cash only"),
        (Entry(1, at(1), EntryType.DIVIDEND, D("-10"), listing_id=20), GBP, "must be positive"),
        (Entry(1, at(1), EntryType.DIVIDEND, D("10"), D("1"), 20), GBP, "no fees"),
        (Entry(1, at(1), EntryType.DIVIDEND, D("10"), listing_id=20, units=D(5)), GBP, "no units or price"),
        (Entry(1, at(1), EntryType.DIVIDEND, D("10"), listing_id=20, price=D(1)), GBP, "no units or price"),
        (Entry(1, at(1), EntryType.DIVIDEND, D("10"), listing_id=99), None, "unknown listing"),
        (Entry(1, at(1), EntryType.CONTRIBUTION, D("10"), D("1")), None, "no fees"),
        (Entry(1, at(1), EntryType.TRANSFER, D("0"), listing_id=20, units=D(0)), GBP, "units ≠ 0"),
        (Entry(1, at(1), EntryType.TRANSFER, D("5"), listing_id=20, units=D(1)), GBP, "moves no cash"),
        (Entry(1, at(1), EntryType.TRANSFER, D("0")), None, "non-zero amount"),
        (
            Entry(1, at(1), EntryType.TRANSFER, D("0"), listing_id=20, units=D(-1), cost=D(5)),
            GBP,
            "coming in",
        ),
    ],
)
def test_each_convention_is_enforced_with_a_reason(entry: Entry, quote: Quote | None, reason: str) -> None:
    problem = bk.entry_problem(entry, quote, NOW)
    assert problem is not None and reason in problem


def test_a_dividend_is_cash_income_that_names_its_listing_and_leaves_the_pool_alone() -> None:
    paid = Entry(3, at(3), EntryType.DIVIDEND, D("12.34"), listing_id=20)
    unknown = Entry(4, at(4), EntryType.DIVIDEND, D("0.66"))  # the payer's listing is not known
    assert bk.entry_problem(paid, GBP, NOW) is None and bk.entry_problem(unknown, None, NOW) is None
    result = run(contribution(1, 0, "1000"), buy(2, 1, 20, "10", "100", "-1000"), paid, unknown)
    assert result.issues == ()
    assert result.book == bk.Book(D("13.00"), {20: bk.Holding(D(10), D(1000))})
    reversal = Entry(5, at(3), EntryType.DIVIDEND, D("-12.34"), listing_id=20, corrects=3)
    assert bk.is_reversal(reversal, paid)


def test_selling_more_than_held_and_negative_cash_stop_the_replay_at_that_entry() -> None:
    oversold = run(
        contribution(1, 0, "100"), buy(2, 1, 20, "1", "10", "-10"), sell(3, 2, 20, "2", "10", "20")
    )
    assert oversold.issues == (bk.Issue(3, "sells 2 units but only 1 are held then"),)
    overdrawn = run(contribution(1, 0, "100"), buy(2, 1, 20, "11", "10", "-110"), contribution(3, 2, "50"))
    assert overdrawn.issues[0].key == 2 and "below zero" in overdrawn.issues[0].reason
    transfer_out = run(Entry(1, at(1), EntryType.TRANSFER, D(0), listing_id=20, units=D(-1)))
    assert "transfers out 1 units but only 0" in transfer_out.issues[0].reason


def test_static_checks_report_every_bad_entry() -> None:
    issues = bk.check_entries(
        [contribution(1, 1, "-1"), contribution(2, 1, "1"), buy(3, 1, 20, "1", "1", "5")], QUOTES, NOW
    )
    assert [i.key for i in issues] == [1, 3]


def test_transfers_carry_cost_in_and_remove_it_in_proportion_out() -> None:
    result = run(
        Entry(1, at(1), EntryType.TRANSFER, D(0), listing_id=20, units=D(328), cost=D("972.85")),
        Entry(2, at(2), EntryType.TRANSFER, D(0), listing_id=20, units=D(-28)),
        Entry(3, at(3), EntryType.TRANSFER, D(0), listing_id=10, units=D(10), price=D("123.4")),  # 12.34
        Entry(4, at(4), EntryType.TRANSFER, D("-5")),  # cash out...
        contribution(5, 4, "5"),
        watch={2},
    )
    assert result.issues[0].key == 4  # ...before any cash came in
    result = run(
        Entry(1, at(1), EntryType.TRANSFER, D(0), listing_id=20, units=D(328), cost=D("972.85")),
        Entry(2, at(2), EntryType.TRANSFER, D(0), listing_id=20, units=D(-28)),
        Entry(3, at(3), EntryType.TRANSFER, D(0), listing_id=10, units=D(10), price=D("123.4")),
        Entry(4, at(4), EntryType.TRANSFER, D("5")),
        watch={2},
    )
    assert result.effects[2].cost == D("-83.05")  # 972.85 × 28/328 = 83.047…
    assert result.book.holdings[20] == bk.Holding(D(300), D("889.80"))
    assert result.book.holdings[10] == bk.Holding(D(10), D("12.34"))
    assert result.book.cash == D(5)


def test_a_reorganisation_carries_the_removed_cost_to_the_new_shares() -> None:
    result = run(
        contribution(1, 0, "1000"),
        buy(2, 1, 20, "10", "50", "-500"),
        Entry(3, at(2), EntryType.TRANSFER, D(0), listing_id=20, units=D(-10)),
        Entry(4, at(2), EntryType.TRANSFER, D(0), listing_id=40, units=D(100), cost_from=3),
        watch={3},
    )
    assert result.book.holdings == {40: bk.Holding(D(100), D(500))}
    wrong = run(Entry(4, at(2), EntryType.TRANSFER, D(0), listing_id=40, units=D(100), cost_from=3))
    assert "not a transfer out" in wrong.issues[0].reason


def test_splits_merges_and_isin_changes_apply_at_the_start_of_their_london_day() -> None:
    split = Action(1, date(2024, 1, 10), CorporateActionType.SPLIT, 2, D(3), D(1))
    merge = Action(2, date(2024, 1, 20), CorporateActionType.MERGE, 2, D(1), D(4))
    change = Action(
        3, date(2024, 1, 30), CorporateActionType.ISIN_CHANGE, 2, target_listing_id=40, target_instrument_id=4
    )
    entries = [
        contribution(1, 0, "10000"),
        buy(2, 1, 20, "10", "100", "-1000"),
        # 2024-01-10 00:00 UTC is after the London midnight (also 00:00 in winter): post-split
        sell(3, 9, 20, "30", "30", "900"),  # needs the split: 30 units held from the 10th
        buy(4, 10, 20, "2", "30", "-60"),
    ]
    result = run(*entries, actions=(split, merge, change))
    assert result.issues == ()
    # 10 → 30 (split) → sold 30 → bought 2 → 0.5 (merge 1:4) → moved to listing 40, cost with it
    assert result.book.holdings == {40: bk.Holding(D("0.5"), D(60))}
    refused = run(*entries[:2], sell(3, 8, 20, "30", "30", "900"), actions=(split,))
    assert "only 10 are held" in refused.issues[0].reason
    odd = run(
        contribution(1, 0, "100"),
        buy(2, 1, 20, "10", "1", "-10"),
        actions=(Action(1, date(2024, 1, 5), CorporateActionType.MERGE, 2, D(1), D(3)),),
    )
    assert odd.book.holdings[20].units == D("3.3333333333")  # rounded down where it does not end
    assert bk.action_instant(date(2024, 7, 1)) == datetime(2024, 6, 30, 23, tzinfo=UTC)


def test_a_reversal_undoes_exactly_what_the_entry_did() -> None:
    entries = [
        contribution(1, 0, "10000"),
        buy(2, 1, 20, "10", "100", "-1005", "5"),
        buy(3, 2, 20, "10", "200", "-2000"),
        sell(4, 3, 20, "5", "150", "750"),
    ]
    reversal = Entry(5, at(3), EntryType.SELL, D(-750), D(0), 20, D(-5), D(150), corrects=4)
    assert bk.is_reversal(reversal, entries[3])
    result = run(*entries, reversal, watch={4})
    assert result.book == run(*entries[:3]).book
    undo_buy = Entry(6, at(1), EntryType.BUY, D(1005), D(-5), 20, D(-10), D(100), corrects=2)
    result = run(*entries[:2], undo_buy, *entries[2:3], watch={2})
    assert result.book.holdings[20] == bk.Holding(D(10), D(2000))


def test_split_adjusted_prices_divide_earlier_prices_by_later_splits() -> None:
    actions = [
        Action(1, date(2024, 1, 10), CorporateActionType.SPLIT, 2, D(2), D(1)),
        Action(2, date(2024, 2, 10), CorporateActionType.SPLIT, 3, D(5), D(1)),  # another instrument
    ]
    prices = [(date(2024, 1, 9), D(100)), (date(2024, 1, 10), D(51))]
    assert bk.split_adjusted(prices, actions, 2) == [(date(2024, 1, 9), D(50)), (date(2024, 1, 10), D(51))]


def test_inputs_come_back_unchanged_and_results_are_frozen() -> None:
    start = bk.Book(D(100), {20: bk.Holding(D(1), D(10))})
    entries = (sell(1, 1, 20, "1", "11", "11"),)
    result = run(*entries, start=start)
    assert start.holdings[20] == bk.Holding(D(1), D(10)) and result.book.cash == D(111)
    with pytest.raises(TypeError):
        result.book.holdings[20] = bk.Holding(D(1), D(1))  # type: ignore[index]


# --- property: advancing a book equals replaying it --------------------------------------

LISTINGS = (10, 20)


@st.composite
def ledgers(draw: st.DrawFn) -> list[Entry]:
    """Random, mostly valid ledgers: trades priced so that cash always agrees."""
    entries: list[Entry] = [contribution(1, 0, "5000")]
    for key in range(2, draw(st.integers(2, 30))):
        day = key
        kind = draw(st.sampled_from(["buy", "sell", "in", "out", "fee"]))
        listing = draw(st.sampled_from(LISTINGS))
        units = D(draw(st.integers(1, 20)))
        price = D(draw(st.integers(50, 20000))) / (100 if listing == 20 else 1)
        value = bk.consideration(units, price, QUOTES[listing]).quantize(D("0.01"))
        if kind == "buy":
            entries.append(buy(key, day, listing, str(units), str(price), str(-value - 1), "1"))
        elif kind == "sell":
            entries.append(sell(key, day, listing, str(units), str(price), str(value)))
        elif kind == "in":
            entries.append(
                Entry(key, at(day), EntryType.TRANSFER, D(0), listing_id=listing, units=units, cost=value)
            )
        elif kind == "out":
            entries.append(Entry(key, at(day), EntryType.TRANSFER, D(0), listing_id=listing, units=-units))
        else:
            entries.append(Entry(key, at(day), EntryType.FEE, D("-2.50"), D("2.50")))
    return entries


@settings(max_examples=60, deadline=None)
@given(ledgers(), st.integers(0, 30))
def test_advancing_from_a_prefix_equals_replaying_everything(entries: list[Entry], cut: int) -> None:
    whole = run(*entries)
    cut = min(cut, len(entries))
    first = run(*entries[:cut])
    if first.issues:
        assert whole.issues == first.issues
        return
    rest = run(*entries[cut:], start=first.book)
    assert rest.issues == whole.issues
    if not whole.issues:
        assert rest.book == whole.book
        for holding in whole.book.holdings.values():
            assert holding.units > 0 and holding.cost >= 0
