"""Price quality: pence/pound errors flagged against the accepted level, nothing else; staleness."""

from __future__ import annotations

import csv
import itertools
import json
import random
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeassist.core.enums import QualityFlag
from tradeassist.core.errors import ValidationError
from tradeassist.engine.normalize import Listing, PricePoint, RawPrice, normalize_prices
from tradeassist.engine.price_quality import (
    Acceptance,
    LevelState,
    Split,
    check_points,
    stale_issue,
    staleness,
)

D = Decimal
PENCE = Listing("AZN", "LSE", "GBP", "GBX", listing_id=11)
POUNDS = Listing("VWRL", "LSE", "GBP", "GBP", listing_id=12)
SCALE = QualityFlag.SCALE_SUSPECT


def weekdays(n: int, start: date = date(2020, 1, 6)) -> list[date]:
    days, day = [], start
    while len(days) < n:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def walk(n: int, *, seed: int, start: str = "1000") -> list[Decimal]:
    """A random walk with daily moves up to ±3%, to 0.01."""
    rng = random.Random(seed)
    price, out = D(start), []
    for _ in range(n):
        price = (price * D(1 + rng.uniform(-0.03, 0.03)).quantize(D("0.0001"))).quantize(D("0.01"))
        out.append(price)
    return out


def series(listing: Listing, days: list[date], raws: list[Decimal]) -> tuple[PricePoint, ...]:
    return normalize_prices(listing, [RawPrice(d, p) for d, p in zip(days, raws, strict=True)])


def check(points, listing=PENCE, prior=None, **kwargs):
    return check_points(points, listing=listing, prior_level=prior, **kwargs)


def flagged(points, flag=SCALE) -> list[date]:
    return [p.as_of for p in points if flag in p.flags]


# --- real data ---------------------------------------------------------------------------------
# Every real sample here is clean: no unit switch, no price <= 0, no jump beyond ×5 from one close
# to the next. So every one of them must come out with no flag at all.
GSEJ_CLEAN = ["AZN", "DLG", "GILS", "IDS", "IGLT", "MIDD", "NG", "SMT", "VUCP", "VWRL", "VWRP", "XASX"]
YAHOO_CLEAN = {  # file -> listing quote scale (as SOURCES.md documents)
    "GSK.L.csv": "GBX",
    "ISF.L_monthly.csv": "GBX",
    "VUSA.L.csv": "GBP",
    "VWRP.L.yfinance.csv": "GBP",
    "VUAG.L.yfinance.csv": "GBP",
}


def gsej(real_data: Path, name: str) -> tuple[Listing, list[RawPrice]]:
    rows = json.loads((real_data / "gsej_investment_tracker/prices" / f"{name}.L.json").read_text())
    rows.sort(key=lambda r: r["date"])  # most files are newest first, VWRL oldest first
    scales = {r["currency"] for r in rows}
    assert len(scales) == 1
    listing = Listing(name, "LSE", "GBP", "GBX" if scales == {"GBp"} else "GBP")
    return listing, [RawPrice(date.fromisoformat(r["date"]), D(r["price"]), r["currency"]) for r in rows]


def yahoo(real_data: Path, name: str) -> tuple[Listing, list[RawPrice]]:
    with (real_data / "yahoo" / name).open() as handle:
        rows = list(csv.DictReader(handle))
    listing = Listing(name.split(".")[0], "LSE", "GBP", YAHOO_CLEAN[name])
    return listing, [RawPrice(date.fromisoformat(r["Date"][:10]), D(r["Close"])) for r in rows]


@pytest.mark.parametrize("name", GSEJ_CLEAN)
def test_real_gsej_series_raise_no_flag(real_data: Path, name: str) -> None:
    listing, raws = gsej(real_data, name)
    checked, state, issues = check(normalize_prices(listing, raws), listing=listing)
    assert [p for p in checked if p.flags] == []
    assert issues == ()
    assert state is not None and state.as_of == raws[-1].as_of


@pytest.mark.parametrize("name", sorted(YAHOO_CLEAN))
def test_real_yahoo_series_raise_no_flag(real_data: Path, name: str) -> None:
    listing, raws = yahoo(real_data, name)
    checked, state, issues = check(normalize_prices(listing, raws), listing=listing)
    assert [p for p in checked if p.flags] == [] and issues == ()
    assert state == LevelState(checked[-1].price_local, raws[-1].as_of)


def test_real_vuag_launch_step_of_minus_21_percent_is_a_normal_move(real_data: Path) -> None:
    # Close 50.30 then 39.81 on 2019-05-16: bogus, but a factor of 1.26 is no unit error,
    # so it is not flagged and becomes the level.
    listing, raws = yahoo(real_data, "VUAG.L.yfinance.csv")
    checked, state, _ = check(normalize_prices(listing, raws[:3]), listing=listing)
    assert [p.flags for p in checked] == [frozenset()] * 3
    assert state == LevelState(D("39.810001373291016"), date(2019, 5, 16))


def test_real_vusa_corrupt_last_row_has_a_fine_close(real_data: Path) -> None:
    # The last row's Open/High/Low are 0, but the Close (the only field we read) is 63.8325.
    listing, raws = yahoo(real_data, "VUSA.L.csv")
    checked, state, _ = check(normalize_prices(listing, raws), listing=listing)
    assert checked[-1].as_of == date(2023, 5, 31) and checked[-1].flags == frozenset()
    assert state == LevelState(D("63.832500"), date(2023, 5, 31))


def test_real_stooq_stan_38_years_in_pence_raise_no_flag(real_data: Path) -> None:
    # The price goes from 44p to 1,682p over the years: the level follows day-to-day moves.
    with (real_data / "stooq/stan_uk_d.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    listing = Listing("STAN", "LSE", "GBP", "GBX")
    raws = [RawPrice(date.fromisoformat(r["Data"]), D(r["Zamkniecie"])) for r in rows]
    checked, _, issues = check(normalize_prices(listing, raws), listing=listing)
    assert len(checked) == 9464
    assert [p for p in checked if p.flags] == [] and issues == ()


def test_real_azn_with_40_days_in_pounds_is_flagged_on_exactly_those_days(real_data: Path) -> None:
    listing, raws = gsej(real_data, "AZN")
    bad = range(1500, 1540)
    raws = [
        RawPrice(r.as_of, r.price / 100 if i in bad else r.price, None) for i, r in enumerate(raws)
    ]  # no declaration: the listing says pence, the feed sent pounds for 40 days
    checked, _, issues = check(normalize_prices(listing, raws), listing=listing)
    assert flagged(checked) == [raws[i].as_of for i in bad]
    (issue,) = issues
    # real prices drift over 40 days, so the ratios to the (fixed) level spread around 1/100
    assert issue.count == 40 and D("0.008") < issue.ratio_min <= issue.ratio_max < D("0.0125")


def test_real_vwrl_with_40_days_in_pence_is_flagged_on_exactly_those_days(real_data: Path) -> None:
    listing, raws = gsej(real_data, "VWRL")
    bad = range(2000, 2040)
    raws = [RawPrice(r.as_of, r.price * 100 if i in bad else r.price, None) for i, r in enumerate(raws)]
    checked, _, issues = check(normalize_prices(listing, raws), listing=listing)
    assert flagged(checked) == [raws[i].as_of for i in bad]
    assert D("80") < issues[0].ratio_min <= issues[0].ratio_max < D("125")


# --- synthetic: unit switches ------------------------------------------------------------------


@pytest.mark.parametrize(("listing", "wrong"), [(PENCE, D("0.01")), (POUNDS, D("100"))])
def test_a_40_day_wrong_unit_stretch_is_flagged_on_exactly_those_days(listing, wrong) -> None:
    days, raws = weekdays(200), walk(200, seed=1)
    bad = set(range(80, 120))
    raws = [p * wrong if i in bad else p for i, p in enumerate(raws)]
    checked, state, _ = check(series(listing, days, raws), listing=listing)
    assert flagged(checked) == [days[i] for i in sorted(bad)]
    assert state == LevelState(checked[-1].price_local, days[-1])


def test_139_day_stretch_after_dozens_of_short_switches_is_flagged_on_every_day() -> None:
    rng = random.Random(7)
    n = 700
    days, raws = weekdays(n), walk(n, seed=3)
    bad: set[int] = set()
    i = 40
    for _ in range(36):  # dozens of 1–3 day switches back and forth
        length = rng.randint(1, 3)
        bad.update(range(i, i + length))
        i += length + rng.randint(2, 8)
    long_start = i + 5
    long_stretch = set(range(long_start, long_start + 139))
    bad |= long_stretch
    raws = [p / 100 if k in bad else p for k, p in enumerate(raws)]
    checked, state, issues = check(series(PENCE, days, raws))
    assert flagged(checked) == [days[k] for k in sorted(bad)]
    assert all(SCALE in checked[k].flags for k in long_stretch)
    assert issues[0].count == len(bad)
    # It never became the level by lasting: the level is the last correct point.
    assert state.as_of == days[-1] and max(bad) < n - 1


def test_a_wrong_unit_stretch_that_never_ends_stays_flagged() -> None:
    days, raws = weekdays(400), walk(400, seed=5)
    raws = raws[:100] + [p / 100 for p in raws[100:]]
    checked, state, _ = check(series(PENCE, days, raws))
    assert flagged(checked) == days[100:]
    assert state == LevelState(checked[99].price_local, days[99])


@pytest.mark.parametrize("factor", [D(60), D("1") / D(60), D(80), D(100), D(200), D("0.005"), D(250)])
def test_unit_mixups_between_20_and_200_and_beyond_are_flagged(factor: Decimal) -> None:
    days = weekdays(4)
    checked, _, issues = check(series(POUNDS, days, [D(50), D(50) * factor, D(51), D(50)]), listing=POUNDS)
    assert flagged(checked) == [days[1]]
    assert (
        issues[0].ratio_min == issues[0].ratio_max == (D(50) * factor / D(50)).quantize(issues[0].ratio_min)
    )


@pytest.mark.parametrize(
    ("price", "is_flagged"),
    [
        ("2000", True),  # exactly ×20
        ("1999.99", False),
        ("1999.9999999999", False),  # inside the float margin: decided exactly
        ("5", True),  # exactly ÷20
        ("5.000000000001", False),
        ("0.5", True),
    ],
)
def test_the_thresholds_are_exact(price: str, is_flagged: bool) -> None:
    days = weekdays(2)
    checked, _, _ = check(series(POUNDS, days, [D(100), D(price)]), listing=POUNDS)
    assert (SCALE in checked[1].flags) is is_flagged


@pytest.mark.parametrize("move", ["0.4", "0.06", "2", "10", "0.1"])
def test_market_moves_and_unrecorded_small_splits_are_not_flagged(move: str) -> None:
    # -60% crash, -94%, a doubling, and 10:1 and 1:10 (below the factor of 20) are not unit errors.
    days = weekdays(30)
    raws = [D(100)] * 10 + [D(100) * D(move)] * 20
    checked, state, issues = check(series(POUNDS, days, raws), listing=POUNDS)
    assert flagged(checked) == [] and issues == ()
    assert state.level == D(100) * D(move)


# --- synthetic: splits and acceptances ---------------------------------------------------------


@pytest.mark.parametrize(("num", "den"), [(10, 1), (50, 1), (100, 1), (1, 50), (1, 100)])
def test_a_recorded_split_explains_the_level_change_from_its_date(num: int, den: int) -> None:
    days, raws = weekdays(120), walk(120, seed=11, start="80")
    raws = raws[:60] + [p * den / num for p in raws[60:]]
    points = series(POUNDS, days, raws)
    split = Split(days[60], D(num), D(den))
    checked, state, issues = check(points, listing=POUNDS, splits=[split])
    assert flagged(checked) == [] and issues == ()
    assert state.level == raws[-1]
    unexplained, _, _ = check(points, listing=POUNDS)
    expected = [] if Fraction(num, den) in (10, Fraction(1, 10)) else days[60:]
    assert flagged(unexplained) == expected  # without the record, 50:1 and 100:1 stay suspect


def test_a_split_dated_on_a_weekend_applies_from_the_next_trading_day() -> None:
    days = weekdays(10)  # days[5] is a Monday
    raws = [D(100)] * 5 + [D(1)] * 5
    split = Split(days[5] - timedelta(days=2), D(100), D(1))
    checked, _, _ = check(series(POUNDS, days, raws), listing=POUNDS, splits=[split])
    assert flagged(checked) == []


def test_an_acceptance_makes_the_new_level_accepted_from_its_date() -> None:
    days, raws = weekdays(100), walk(100, seed=13)
    raws = raws[:50] + [p / 100 for p in raws[50:]]  # an unrecorded 100:1 change at day 50
    points = series(PENCE, days, raws)
    checked, state, _ = check(points, acceptances=[Acceptance("LSE:AZN", days[60])])
    assert flagged(checked) == days[50:60]
    assert state == LevelState(checked[-1].price_local, days[-1])
    from_the_start, _, _ = check(points, acceptances=[Acceptance("LSE:AZN", days[50])])
    assert flagged(from_the_start) == []


def test_an_acceptance_for_another_listing_is_refused() -> None:
    with pytest.raises(ValidationError, match="LSE:VWRL"):
        check(
            series(PENCE, weekdays(2), [D(1), D(2)]), acceptances=[Acceptance("LSE:VWRL", date(2020, 1, 1))]
        )


# --- level rules, flags, issues ----------------------------------------------------------------


def test_the_first_positive_point_sets_the_level_and_non_positive_never_does() -> None:
    days = weekdays(5)
    checked, state, issues = check(series(POUNDS, days, [D(0), D(-3), D(50), D(0), D(51)]), listing=POUNDS)
    assert [p.flags for p in checked] == [
        frozenset({QualityFlag.NON_POSITIVE}),
        frozenset({QualityFlag.NON_POSITIVE}),
        frozenset(),
        frozenset({QualityFlag.NON_POSITIVE}),
        frozenset(),
    ]
    assert state == LevelState(D(51), days[4])
    assert [(i.code, i.count) for i in issues] == [("NON_POSITIVE_PRICE", 3)]


def test_a_prior_level_carries_across_calls() -> None:
    days = weekdays(3)
    prior = LevelState(D("12.00"), days[0] - timedelta(days=400))  # however old
    checked, state, _ = check(series(PENCE, days, [D(1200), D(12), D(1210)]), prior=prior)
    assert flagged(checked) == [days[1]]
    assert state == LevelState(D("12.10"), days[2])


def test_currency_mismatches_are_skipped_by_the_scale_check() -> None:
    days = weekdays(3)
    raws = [RawPrice(days[0], D(100)), RawPrice(days[1], D(5), "USD"), RawPrice(days[2], D(101))]
    checked, state, issues = check(normalize_prices(POUNDS, raws), listing=POUNDS)
    assert state == LevelState(D(101), days[2])
    assert [p.flags for p in checked] == [
        frozenset(),
        frozenset({QualityFlag.CURRENCY_MISMATCH}),
        frozenset(),
    ]
    assert [i.code for i in issues] == ["CURRENCY_MISMATCH"]
    assert "USD" in issues[0].message


def test_issues_are_one_per_code_with_span_count_and_ratios() -> None:
    days, raws = weekdays(100), walk(100, seed=17)
    raws = [p / 100 if 30 <= i < 70 else p for i, p in enumerate(raws)]
    raws[80] = D(0)
    listing = Listing("QQQ", "NASDAQ", "USD", "USD", listing_id=99)
    _, _, issues = check(series(listing, days, raws), listing=listing)  # no FX given
    by_code = {i.code: i for i in issues}
    assert set(by_code) == {"MISSING_FX", "NON_POSITIVE_PRICE", "PRICE_SCALE_SUSPECT"}
    scale = by_code["PRICE_SCALE_SUSPECT"]
    assert (scale.first_date, scale.last_date, scale.count) == (days[30], days[69], 40)
    assert (scale.listing_key, scale.listing_id) == ("NASDAQ:QQQ", 99)
    assert D("0.008") < scale.ratio_min <= scale.ratio_max < D("0.012")
    assert "accept the new level" in scale.message
    assert by_code["MISSING_FX"].count == 100 and by_code["MISSING_FX"].ratio_min is None


def test_rechecking_recomputes_this_checks_flags_and_keeps_the_others() -> None:
    days = weekdays(4)
    raws = [RawPrice(days[0], D(100)), RawPrice(days[1], D(1)), RawPrice(days[2], D(1), "USD")]
    raws.append(RawPrice(days[3], D("1.01")))
    first, _, _ = check(normalize_prices(POUNDS, raws), listing=POUNDS)
    assert [sorted(p.flags) for p in first] == [[], [SCALE], [QualityFlag.CURRENCY_MISMATCH], [SCALE]]
    again, _, _ = check(first, listing=POUNDS, acceptances=[Acceptance("LSE:VWRL", days[1])])
    assert [sorted(p.flags) for p in again] == [[], [], [QualityFlag.CURRENCY_MISMATCH], []]


def test_inputs_come_back_unchanged_and_clean_points_are_the_same_objects() -> None:
    days, raws = weekdays(50), walk(50, seed=19)
    raws[20] = raws[20] / 100
    points = series(PENCE, days, raws)
    copy = tuple(points)
    splits, acceptances = (Split(days[40], D(1), D(1)),), (Acceptance("LSE:AZN", days[45]),)
    checked, _, _ = check(points, splits=splits, acceptances=acceptances)
    assert points == copy
    assert all(checked[i] is points[i] for i in range(50) if i != 20)
    assert checked[20] is not points[20] and points[20].flags == frozenset()


def test_points_out_of_date_order_are_refused() -> None:
    days = weekdays(2)
    with pytest.raises(ValidationError, match="date order"):
        check(series(PENCE, [days[1], days[0]], [D(1), D(1)]))


def test_an_empty_chunk_keeps_the_state() -> None:
    prior = LevelState(D(1), date(2020, 1, 1))
    assert check((), prior=prior) == ((), prior, ())


# --- chunked == whole, fast path == the plain rule --------------------------------------------


def reference(points, prior, splits, acceptances):
    """The rule written plainly with fractions: what the vectorised fast path must reproduce."""
    level = None if prior is None else (Fraction(prior.level), prior.as_of)
    flags = []
    for p in points:
        if p.price_local is None:
            flags.append(None)
            continue
        price = Fraction(p.price_local)
        if price <= 0:
            flags.append(QualityFlag.NON_POSITIVE)
            continue
        if level is None or any(level[1] < a.effective_date <= p.as_of for a in acceptances):
            level = (price, p.as_of)
            flags.append(None)
            continue
        expected = level[0]
        for s in splits:
            if level[1] < s.effective_date <= p.as_of:
                expected = expected * Fraction(s.ratio_den) / Fraction(s.ratio_num)
        if price >= 20 * expected or price * 20 <= expected:
            flags.append(SCALE)
        else:
            level = (price, p.as_of)
            flags.append(None)
    state = (
        None if level is None else LevelState(Decimal(level[0].numerator) / level[0].denominator, level[1])
    )
    return flags, state


MODES = ["ok"] * 6 + ["pounds", "pence", "x60", "zero", "usd", "x19", "x21"]
MULTIPLIERS = {"ok": D(1), "pounds": D("0.01"), "pence": D(100), "x60": D(60), "x19": D(19), "x21": D(21)}


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 90))
    gaps = draw(st.lists(st.sampled_from([0, 1, 1, 1, 3, 9]), min_size=n, max_size=n))
    modes = draw(st.lists(st.sampled_from(MODES), min_size=n, max_size=n))
    moves = draw(st.lists(st.integers(-40, 40), min_size=n, max_size=n))
    split_at = draw(
        st.lists(
            st.tuples(st.integers(0, n), st.sampled_from([(10, 1), (50, 1), (1, 100), (3, 2)])), max_size=3
        )
    )
    accept_at = draw(st.lists(st.integers(0, n + 5), max_size=2))
    cuts = draw(st.lists(st.integers(0, n), max_size=5))
    day, price = date(2021, 3, 1), D(500)
    days, raws = [], []
    splits = []
    for i in range(n):
        day += timedelta(days=gaps[i])
        for at, (num, den) in split_at:
            if at == i:
                price = price * den / num
                splits.append(Split(day, D(num), D(den)))
        price = (price * (1 + D(moves[i]) / 100)).quantize(D("0.0001"))
        days.append(day)
        mode = modes[i]
        if mode == "zero":
            raws.append(RawPrice(day, D(0)))
        elif mode == "usd":
            raws.append(RawPrice(day, price, "USD"))
        else:
            raws.append(RawPrice(day, price * MULTIPLIERS[mode]))
    acceptances = [Acceptance("LSE:VWRL", date(2021, 3, 1) + timedelta(days=k)) for k in accept_at]
    return normalize_prices(POUNDS, raws), splits, acceptances, sorted(set(cuts))


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.sampled_from([None, LevelState(D(480), date(2021, 2, 1))]))
def test_checking_in_chunks_equals_checking_in_one_go_and_the_plain_rule(scenario, prior) -> None:
    points, splits, acceptances, cuts = scenario
    whole, whole_state, whole_issues = check(
        points, listing=POUNDS, prior=prior, splits=splits, acceptances=acceptances
    )
    bounds = [0, *cuts, len(points)]
    state, chunked, counts = prior, [], {}
    for start, stop in itertools.pairwise(bounds):
        part, state, issues = check(
            points[start:stop], listing=POUNDS, prior=state, splits=splits, acceptances=acceptances
        )
        chunked.extend(part)
        for issue in issues:
            counts[issue.code] = counts.get(issue.code, 0) + issue.count
    assert tuple(chunked) == whole and state == whole_state
    assert counts == {i.code: i.count for i in whole_issues}
    expected_flags, expected_state = reference(points, prior, splits, acceptances)
    got = [next(iter(p.flags - {QualityFlag.CURRENCY_MISMATCH}), None) for p in whole]
    assert got == expected_flags and whole_state == expected_state


# --- staleness -----------------------------------------------------------------------------------

FRIDAY = date(2024, 5, 3)


@pytest.mark.parametrize(
    ("as_of", "max_days", "stale"),
    [
        (FRIDAY, 0, False),
        (FRIDAY + timedelta(days=2), 0, False),  # Sunday: weekends do not count
        (FRIDAY + timedelta(days=3), 1, False),  # Monday: one business day
        (FRIDAY + timedelta(days=3), 0, True),
        (FRIDAY + timedelta(days=4), 1, True),  # Tuesday: two
        (FRIDAY + timedelta(days=10), 5, True),
        (FRIDAY - timedelta(days=1), 0, False),  # a close after the date is not stale
    ],
)
def test_staleness_counts_business_days_only(as_of: date, max_days: int, stale: bool) -> None:
    assert staleness(FRIDAY, as_of, max_days) is stale


def test_staleness_skips_given_holidays_and_no_close_is_stale() -> None:
    bank_holiday_monday = FRIDAY + timedelta(days=3)
    assert staleness(FRIDAY, FRIDAY + timedelta(days=4), 1, holidays=[bank_holiday_monday]) is False
    assert staleness(None, FRIDAY, 100) is True


def test_stale_issue() -> None:
    assert stale_issue(PENCE, FRIDAY, FRIDAY + timedelta(days=3), 1) is None
    issue = stale_issue(PENCE, FRIDAY, FRIDAY + timedelta(days=7), 3)
    assert issue is not None and issue.code == "PRICE_STALE" and issue.flag is QualityFlag.STALE
    assert (issue.first_date, issue.last_date, issue.listing_id) == (FRIDAY, FRIDAY + timedelta(days=7), 11)
    assert "2024-05-03" in issue.message


def test_a_prior_level_dated_after_the_points_is_refused() -> None:
    days = weekdays(2)
    with pytest.raises(ValidationError, match="re-check from a state before"):
        check(series(PENCE, days, [D(1), D(1)]), prior=LevelState(D(1), days[1]))


@pytest.mark.parametrize("ratio", [D(0), D(-2), D("Infinity"), 1.5])
def test_a_split_ratio_must_be_a_positive_finite_number(ratio) -> None:
    with pytest.raises(ValidationError):
        Split(date(2024, 1, 2), ratio, D(1))
