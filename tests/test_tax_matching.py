"""Share matching for capital gains (engine.tax.matching): HMRC's HS284 examples and the
cases that the book's per-listing pool got wrong (same day, bed and breakfast)."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal as D

import pytest

from tradeassist.engine.tax.matching import (
    PoolTransfer,
    Reorganisation,
    Rule,
    Trade,
    match_shares,
    to_pennies,
)

LOBSTER = "GB00LOBSTER1"
MESO = "GB00MESOPOT1"


def buy(day: date, units: int | str, cost: str, isin: str = LOBSTER, ref: int = 0, fees: str = "0") -> Trade:
    return Trade(day, isin, D(units), D(cost), disposal=False, fees=D(fees), ref=ref)


def sell(
    day: date, units: int | str, proceeds: str, fees: str = "0", isin: str = LOBSTER, ref: int = 0
) -> Trade:
    return Trade(day, isin, D(units), D(proceeds), disposal=True, fees=D(fees), ref=ref)


def test_hs284_example_3_lobster_section_104_pool() -> None:
    """HS284 Example 3: 1,000 at 400p + £150, 500 at 410p + £80; sell 700 at 480p (£100 costs),
    then 400 at 520p (£105). HMRC's working rounds to whole pounds: gains £329 and £300; to
    the penny they are £329.33 and £300.33."""
    result = match_shares(
        [
            buy(date(2015, 4, 1), 1000, "4150"),
            buy(date(2018, 9, 1), 500, "2130"),
            sell(date(2023, 5, 1), 700, "3360", "100"),
            sell(date(2024, 2, 1), 400, "2080", "105"),
        ]
    )
    first, second = result.disposals
    assert (first.proceeds, first.allowable_cost, first.gain) == (D("3360.00"), D("3030.67"), D("329.33"))
    assert [(m.rule, m.units, m.cost) for m in first.matches] == [(Rule.SECTION_104, D(700), D("2930.67"))]
    assert (first.matches[0].pool_units_after, first.matches[0].pool_cost_after) == (D(800), D("3349.33"))
    assert (second.gain, second.allowable_cost) == (D("300.33"), D("1779.67"))
    assert [(p.units, p.cost) for p in result.pools] == [(D(400), D("1674.67"))]
    assert not result.issues


def test_hs284_example_2_bed_and_breakfast() -> None:
    """HS284 Example 2: 9,500 held (pool cost £1.00 a share, as measured in the issue); sell
    4,000 for £6,000 on 30 August; buy 500 for £850 on 11 September. 500 match the purchase
    (a £100 loss), 3,500 the pool (a £1,750 gain): £1,650, not £2,000."""
    result = match_shares(
        [
            buy(date(2015, 1, 1), 9500, "9500", MESO),
            sell(date(2023, 8, 30), 4000, "6000", isin=MESO),
            buy(date(2023, 9, 11), 500, "850", MESO),
        ]
    )
    (disposal,) = result.disposals
    assert disposal.gain == D("1650.00")
    assert [(m.rule, m.units, m.cost, m.acquisition_date) for m in disposal.matches] == [
        (Rule.BED_AND_BREAKFAST, D(500), D("850.00"), date(2023, 9, 11)),
        (Rule.SECTION_104, D(3500), D("3500.00"), None),
    ]
    assert [(p.units, p.cost) for p in result.pools] == [(D(6000), D("6000.00"))]


SAME_DAY = [
    buy(date(2020, 1, 1), 1000, "4000", ref=1),
    buy(date(2023, 6, 1), 200, "1200", ref=2),
    sell(date(2023, 6, 1), 300, "1830", ref=3),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_same_day_rule_whatever_the_order(order: tuple[int, ...]) -> None:
    """Pool 1,000 @ £4; buy 200 @ £6 and sell 300 @ £6.10 on one day: 200 match the day's
    purchase (£20 gain), 100 the pool (£210): £230, in any order of the entries."""
    (disposal,) = match_shares([SAME_DAY[i] for i in order]).disposals
    assert disposal.gain == D("230.00")
    assert [(m.rule, m.units) for m in disposal.matches] == [
        (Rule.SAME_DAY, D(200)),
        (Rule.SECTION_104, D(100)),
    ]


def test_many_buys_and_sells_in_one_day_are_one_acquisition_and_one_disposal() -> None:
    day = date(2023, 7, 3)
    trades = [
        buy(date(2021, 1, 4), 500, "1000"),
        buy(day, 100, "310.50", fees="1.50"),
        sell(day, 150, "480", "2"),
        buy(day, 50, "160"),
        sell(day, 120, "390", "2"),
    ]
    gains = set()
    for permutation in itertools.permutations(trades):
        (disposal,) = match_shares(permutation).disposals
        gains.add((disposal.units, disposal.gain, disposal.proceeds, disposal.fees))
    # 150 bought for £470.50 match 150 of the 270 sold; 120 come from the pool at £2.
    # proceeds £870 − costs £4 − £470.50 − £240 = £155.50
    assert gains == {(D(270), D("155.50"), D("870.00"), D("4.00"))}


def test_loss_harvest_bought_back_two_days_later() -> None:
    """Sell 1,000 at a £3,000 loss (pool £10,010 with fees; £7,000 less £10), buy back two
    days later for £7,060 with fees: the loss allowed is £70, not £3,020."""
    result = match_shares(
        [
            buy(date(2022, 3, 1), 1000, "10010", fees="10"),
            sell(date(2023, 10, 2), 1000, "7000", "10"),
            buy(date(2023, 10, 4), 1000, "7060", fees="10"),
        ]
    )
    (disposal,) = result.disposals
    assert disposal.gain == D("-70.00")
    assert [(p.units, p.cost) for p in result.pools] == [(D(1000), D("10010.00"))]


def test_thirty_days_is_the_limit_and_earliest_disposal_matches_first() -> None:
    trades = [
        buy(date(2022, 1, 4), 100, "100"),
        sell(date(2023, 5, 1), 50, "100"),  # 31 days later: pool
        buy(date(2023, 6, 1), 50, "150"),
        sell(date(2023, 7, 1), 40, "120"),
        sell(date(2023, 7, 5), 40, "120"),
        buy(date(2023, 7, 20), 60, "240"),  # 40 for the 1 July sale, 20 for the 5 July sale
    ]
    d1, d2, d3 = match_shares(trades).disposals
    assert [m.rule for m in d1.matches] == [Rule.SECTION_104]
    assert [(m.rule, m.units) for m in d2.matches] == [(Rule.BED_AND_BREAKFAST, D(40))]
    assert [(m.rule, m.units) for m in d3.matches] == [
        (Rule.BED_AND_BREAKFAST, D(20)),
        (Rule.SECTION_104, D(20)),
    ]


def test_a_later_days_own_sale_takes_its_purchase_before_an_earlier_sale() -> None:
    trades = [
        buy(date(2022, 1, 4), 100, "100"),
        sell(date(2023, 5, 1), 30, "90"),
        buy(date(2023, 5, 10), 30, "60"),
        sell(date(2023, 5, 10), 30, "75"),  # same day first: the earlier sale gets nothing
    ]
    d1, d2 = match_shares(trades).disposals
    assert [m.rule for m in d1.matches] == [Rule.SECTION_104]
    assert [m.rule for m in d2.matches] == [Rule.SAME_DAY]


def test_split_between_acquisition_and_disposal_rescales_the_pool() -> None:
    split = Reorganisation(date(2023, 1, 10), LOBSTER, LOBSTER, D(10), D(1))
    result = match_shares(
        [buy(date(2022, 1, 4), 100, "1000"), sell(date(2023, 6, 1), 400, "1200")], reorganisations=[split]
    )
    (disposal,) = result.disposals
    assert disposal.gain == D("800.00")  # 400 of 1,000 new units cost £400
    assert [(p.units, p.cost) for p in result.pools] == [(D(600), D("600.00"))]


def test_bed_and_breakfast_across_a_split_counts_units_before_and_after() -> None:
    split = Reorganisation(date(2023, 6, 5), LOBSTER, LOBSTER, D(2), D(1))
    trades = [
        buy(date(2022, 1, 4), 100, "1000"),
        sell(date(2023, 6, 1), 50, "600"),
        buy(date(2023, 6, 10), 100, "700"),
    ]
    (disposal,) = match_shares(trades, reorganisations=[split]).disposals
    # The 100 bought after the 2-for-1 split are the 50 sold before it.
    assert [(m.rule, m.units, m.cost) for m in disposal.matches] == [
        (Rule.BED_AND_BREAKFAST, D(50), D("700.00"))
    ]
    assert disposal.gain == D("-100.00")


def test_isin_change_carries_the_pool_to_the_new_isin() -> None:
    change = Reorganisation(date(2023, 3, 1), LOBSTER, MESO, D(1), D(2))
    result = match_shares(
        [buy(date(2022, 1, 4), 100, "1000"), sell(date(2023, 6, 1), 25, "400", isin=MESO)],
        reorganisations=[change],
    )
    (disposal,) = result.disposals
    assert (disposal.isin, disposal.units, disposal.gain) == (MESO, D(25), D("-100.00"))
    assert [(p.isin, p.units, p.cost) for p in result.pools] == [(MESO, D(25), D("500.00"))]


def test_units_moved_in_and_out_without_a_disposal() -> None:
    result = match_shares(
        [buy(date(2022, 1, 4), 100, "1000"), sell(date(2023, 6, 1), 100, "1500")],
        transfers=[
            PoolTransfer(date(2022, 5, 1), LOBSTER, D(50), D("300"), ref=7),  # from another broker
            PoolTransfer(date(2022, 6, 1), LOBSTER, D(-50)),  # out to an ISA: not a disposal
        ],
    )
    (disposal,) = result.disposals
    # pool 150 for £1,300; 50 leave at the average (£433.33); 100 cost £866.67
    assert disposal.gain == D("633.33")
    assert not result.pools


def test_until_counts_only_what_was_known_that_day() -> None:
    trades = [
        buy(date(2022, 1, 4), 1000, "10000"),
        sell(date(2023, 10, 2), 1000, "7000"),
        buy(date(2023, 10, 4), 1000, "7070"),
    ]
    (early,) = match_shares(trades, until=date(2023, 10, 3)).disposals
    assert early.gain == D("-3000.00")
    assert match_shares(trades).disposals[0].gain == D("-70.00")


def test_selling_more_than_the_pool_is_an_issue_naming_the_day() -> None:
    result = match_shares([buy(date(2022, 1, 4), 10, "100"), sell(date(2023, 6, 1), 20, "300")])
    assert result.issues and "2023-06-01" in result.issues[0] and "20 units sold" in result.issues[0]


@pytest.mark.parametrize(
    ("value", "pennies"),
    [("1.005", "1.01"), ("-1.005", "-1.01"), ("1.00499", "1.00"), ("0.004", "0.00"), ("-0.004", "0.00")],
)
def test_to_pennies_rounds_half_away_from_zero(value: str, pennies: str) -> None:
    from fractions import Fraction

    assert to_pennies(Fraction(D(value))) == D(pennies)
