from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeassist.core.errors import ValidationError
from tradeassist.core.isin import is_valid_isin, isin_check_digit, validate_isin

REAL_ISINS = [
    "IE00BK5BQT80",  # Vanguard FTSE All-World Acc (VWRP)
    "IE00B3RBWM25",  # Vanguard FTSE All-World Dist (VWRL)
    "GB00B11V7W98",
    "US0378331005",  # Apple
    "US67066G1040",  # NVIDIA
    "GB00BLDYK618",  # Scottish Mortgage (Trading 212 sample)
    "NL0010273215",  # ASML
]


@pytest.mark.parametrize("isin", REAL_ISINS)
def test_real_isins_are_valid(isin: str) -> None:
    assert validate_isin(isin) == isin


def test_lower_case_and_spaces_are_normalised() -> None:
    assert validate_isin("  ie00bk5bqt80 ") == "IE00BK5BQT80"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("IE00BK5BQT81", "check digit is 1, expected 0"),
        ("US0378331006", "check digit is 6, expected 5"),
        ("IE00BK5BQT8", "must be 12 characters, got 11"),
        ("IE00BK5BQT800", "must be 12 characters, got 13"),
        ("", "must be 12 characters, got 0"),
        ("1E00BK5BQT80", "2-letter country code"),
        ("IE00BK5-QT80", "characters 3-11 must be letters or digits"),
        ("IE00BK5BQT8X", "last character must be a check digit"),
        ("IE00BK5BQTé0", "only the letters A-Z and digits"),
    ],
)
def test_bad_isins_say_why(bad: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_isin(bad)
    assert reason in str(info.value)
    assert bad.strip().upper() in str(info.value).upper() or bad == ""
    assert not is_valid_isin(bad)


def test_transposed_digits_in_a_real_isin_are_caught() -> None:
    # The commonest typing error: swapping two adjacent digits.
    assert not is_valid_isin("US0373831005")


BODY = st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=2).flatmap(
    lambda country: st.text(alphabet=string.ascii_uppercase + string.digits, min_size=9, max_size=9).map(
        lambda code: country + code
    )
)


@given(BODY, st.integers(min_value=1, max_value=9))
def test_only_the_computed_check_digit_validates(body: str, shift: int) -> None:
    good = body + isin_check_digit(body)
    assert validate_isin(good) == good
    wrong = body + str((int(good[-1]) + shift) % 10)
    assert not is_valid_isin(wrong)
