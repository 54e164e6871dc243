"""Normalisation to GBP: pence only where declared, FX as of the date, mismatches flagged."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from tradeassist.core.enums import QualityFlag
from tradeassist.core.errors import ValidationError
from tradeassist.engine.normalize import (
    FX_QUANTUM,
    FxSeries,
    Listing,
    PricePoint,
    RawPrice,
    normalize_price,
    normalize_prices,
    parse_quote_unit,
)

D = Decimal
AZN = Listing("AZN", "LSE", "GBP", "GBX")
VWRL = Listing("VWRL", "LSE", "GBP", "GBP")
QQQ = Listing("QQQ", "NASDAQ", "USD", "USD")
MONDAY = date(2024, 4, 29)


def usd_rates(*pairs: tuple[date, str]) -> FxSeries:
    return FxSeries.from_pairs("USD", [(day, D(rate)) for day, rate in pairs])


def test_pence_listing_without_declaration_is_divided_by_100_exactly() -> None:
    point = normalize_price(AZN, RawPrice(MONDAY, D("12138.5")))
    assert point.raw_price == D("12138.5")
    assert (point.raw_currency, point.raw_quote_scale) == ("GBP", "GBX")  # the listing's, documented
    assert str(point.price_local) == "121.385"
    assert str(point.normalized_price_base) == "121.385"
    assert point.flags == frozenset()
    assert point.usable_price == D("121.385")


def test_pound_listing_without_declaration_is_kept() -> None:
    point = normalize_price(VWRL, RawPrice(MONDAY, D("101.5")))
    assert (point.raw_currency, point.raw_quote_scale) == ("GBP", "GBP")
    assert point.normalized_price_base == D("101.5")


@pytest.mark.parametrize("code", ["GBp", "GBX", "GBx"])
def test_provider_declaring_pence_is_divided_even_on_a_pound_listing(code: str) -> None:
    point = normalize_price(VWRL, RawPrice(MONDAY, D("10150"), code))
    assert point.raw_quote_scale == "GBX"
    assert point.normalized_price_base == D("101.50")
    assert point.flags == frozenset()  # a scale matter, not a currency mismatch


def test_provider_declaring_pounds_wins_over_a_pence_listing() -> None:
    # The declaration describes the numbers sent; whether it is true is the scale check's job.
    point = normalize_price(AZN, RawPrice(MONDAY, D("121.38"), "GBP"))
    assert (point.raw_currency, point.raw_quote_scale) == ("GBP", "GBP")
    assert point.normalized_price_base == D("121.38")
    assert point.flags == frozenset()


def test_magnitude_and_ticker_suffix_are_never_used_to_guess_pence() -> None:
    # 12138 on a pound listing stays 12138: only a declaration divides.
    point = normalize_price(Listing("AZN.L", "LSE", "GBP", "GBP"), RawPrice(MONDAY, D("12138")))
    assert point.normalized_price_base == D("12138")


def test_declared_currency_other_than_the_listings_is_a_mismatch() -> None:
    point = normalize_price(VWRL, RawPrice(MONDAY, D("127.0"), "USD"))
    assert point.flags == frozenset({QualityFlag.CURRENCY_MISMATCH})
    assert (point.raw_currency, point.raw_quote_scale) == ("USD", "USD")
    assert point.price_local is None and point.normalized_price_base is None
    assert point.usable_price is None


def test_foreign_listing_uses_the_latest_rate_on_or_before_the_date() -> None:
    fx = usd_rates((date(2024, 4, 25), "1.25"), (date(2024, 4, 26), "1.28"), (date(2024, 4, 30), "1.30"))
    point = normalize_price(QQQ, RawPrice(MONDAY, D("128")), fx=fx)  # Friday's rate on Monday
    assert point.fx_rate == D("1.28")
    assert point.normalized_price_base == D("100.0000000000")
    assert point.flags == frozenset()


def test_fx_division_is_quantized_to_10_places_half_even() -> None:
    fx = usd_rates((MONDAY, "3"))
    assert normalize_price(QQQ, RawPrice(MONDAY, D("100")), fx=fx).normalized_price_base == D("33.3333333333")
    halves = usd_rates((MONDAY, "2"))
    # 0.00000000050 / 2 = 0.00000000025 exactly: half-even keeps the even digit (2), not 3.
    tie = normalize_price(QQQ, RawPrice(MONDAY, D("0.0000000005")), fx=halves)
    assert tie.normalized_price_base == D("0.0000000002")
    tie_up = normalize_price(QQQ, RawPrice(MONDAY, D("0.0000000007")), fx=halves)
    assert tie_up.normalized_price_base == D("0.0000000004")


@pytest.mark.parametrize(
    ("rate_day", "max_age", "usable"),
    [
        (MONDAY - timedelta(days=7), 7, True),
        (MONDAY - timedelta(days=8), 7, False),
        (MONDAY - timedelta(days=8), 10, True),
        (MONDAY + timedelta(days=1), 7, False),  # a rate after the date is never used
    ],
)
def test_an_fx_rate_older_than_the_limit_counts_as_missing(
    rate_day: date, max_age: int, usable: bool
) -> None:
    point = normalize_price(
        QQQ, RawPrice(MONDAY, D("50")), fx=usd_rates((rate_day, "1.25")), max_fx_age_days=max_age
    )
    if usable:
        assert point.normalized_price_base == D("40.0000000000")
    else:
        assert point.flags == frozenset({QualityFlag.MISSING_FX})
        assert point.normalized_price_base is None
        assert point.price_local == D("50")  # the scale check still has something to compare


def test_no_fx_series_at_all_is_missing_fx() -> None:
    point = normalize_price(QQQ, RawPrice(MONDAY, D("50")))
    assert point.flags == frozenset({QualityFlag.MISSING_FX})
    assert point.usable_price is None


def test_fx_series_of_another_currency_is_refused() -> None:
    eur = FxSeries.from_pairs("EUR", [(MONDAY, D("1.17"))])
    with pytest.raises(ValidationError, match="EUR"):
        normalize_price(QQQ, RawPrice(MONDAY, D("50")), fx=eur)


def test_fx_series_must_be_sorted_and_positive() -> None:
    with pytest.raises(ValidationError, match="not increasing"):
        usd_rates((MONDAY, "1.2"), (MONDAY - timedelta(days=1), "1.2"))
    with pytest.raises(ValidationError, match="not positive"):
        usd_rates((MONDAY, "0"))


def test_quote_unit_codes_are_case_sensitive_and_strict() -> None:
    assert parse_quote_unit("GBp").minor_exponent == 2
    assert parse_quote_unit("GBP").minor_exponent == 0
    assert parse_quote_unit("USD").scale == "USD"
    for bad in ["gbp", "£", "GB", "pence", ""]:
        with pytest.raises(ValidationError):
            parse_quote_unit(bad)


def test_listing_scale_must_belong_to_its_currency() -> None:
    with pytest.raises(ValidationError, match="not a unit of"):
        Listing("X", "LSE", "GBP", "USD")
    assert Listing("X", "LSE", "GBP", "GBX", listing_id=7).key == "LSE:X"


def test_floats_and_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError):
        normalize_price(VWRL, RawPrice(MONDAY, 101.5))  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        normalize_price(VWRL, RawPrice(datetime(2024, 4, 29, 16, 30), D("1")))


def test_inputs_come_back_unchanged_and_order_is_kept() -> None:
    raws = (RawPrice(MONDAY, D("100")), RawPrice(MONDAY - timedelta(days=1), D("200"), "GBp"))
    copy = tuple(raws)
    points = normalize_prices(AZN, raws)
    assert raws == copy
    assert [p.raw_price for p in points] == [D("100"), D("200")]
    assert all(isinstance(p, PricePoint) for p in points)


def test_real_gsej_series_declare_their_unit_and_normalise_exactly(real_data) -> None:
    # AZN.L is declared GBp (pence), VWRL.L GBP: both land in pounds with exact division.
    for name, listing, expected_scale in [("AZN.L", AZN, "GBX"), ("VWRL.L", VWRL, "GBP")]:
        rows = json.loads((real_data / "gsej_investment_tracker/prices" / f"{name}.json").read_text())
        raws = [RawPrice(date.fromisoformat(r["date"]), D(r["price"]), r["currency"]) for r in rows]
        points = normalize_prices(listing, raws)
        assert {p.raw_quote_scale for p in points} == {expected_scale}
        for raw, point in zip(raws, points, strict=True):
            divisor = 100 if expected_scale == "GBX" else 1
            assert point.normalized_price_base * divisor == raw.price
            assert point.flags == frozenset()
    pounds = [p.normalized_price_base for p in points]
    assert D("31") < min(pounds) and max(pounds) < D("102")  # VWRL's documented £31.19–£101.50


def test_real_ecb_cross_rate_values_a_euro_price_on_a_weekend(real_data) -> None:
    # ECB publishes per-EUR rates; GBP→EUR is 1 / (EURGBP). A Saturday uses Friday's rate.
    with (real_data / "ecb/eurofxref-hist.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["GBP"] not in ("", "N/A")]
    pairs = sorted(
        (date.fromisoformat(r["Date"]), (D(1) / D(r["GBP"])).quantize(D("1E-8"))) for r in rows[:30]
    )
    fx = FxSeries.from_pairs("EUR", pairs)
    friday = max(d for d, _ in pairs if d.weekday() == 4)
    saturday = friday + timedelta(days=1)
    listing = Listing("VWCE", "XETRA", "EUR", "EUR")
    point = normalize_price(listing, RawPrice(saturday, D("100")), fx=fx)
    assert point.fx_rate == dict(pairs)[friday]
    assert point.normalized_price_base == (D("100") / point.fx_rate).quantize(FX_QUANTUM)
    assert D("70") < point.normalized_price_base < D("100")  # a euro is worth less than a pound
