"""Income classified by one pure rule: DIVIDEND entries, and the INTEREST rows the broker imports
wrote for dividends before DIVIDEND existed (notes ``dividend: …``), read as dividends."""

from __future__ import annotations

import pytest

from tradeassist.core.enums import EntryType
from tradeassist.engine.income import ListingName, income_kind, match_name, match_payer, payer_of

E = EntryType

LISTINGS = [
    ListingName(1, "VWRL", "IE00B3RBWM25", "Vanguard FTSE All-World UCITS ETF", 10, True),
    ListingName(2, "VWRL", "IE00B3RBWM25", "Vanguard FTSE All-World UCITS ETF", 10, False),  # another venue
    ListingName(3, "AAPL", "US0378331005", "Apple Inc", 20, True),
    ListingName(4, "MIDD", "IE00B00FV128", "iShares FTSE 250 ETF GBP Dist", 30, True),
    ListingName(5, "MIDA", "IE00BLFKPJ17", "iShares FTSE 250 ETF GBP Acc", 40, True),
    ListingName(6, "SMT", "GB00BLDYK618", None, 50, True),
]


@pytest.mark.parametrize(
    ("entry_type", "notes", "kind"),
    [
        (E.DIVIDEND, "dividend: Apple (10 units)", "DIVIDEND"),
        (E.DIVIDEND, None, "DIVIDEND"),
        (E.INTEREST, "dividend: Apple (10.13713692 units)", "DIVIDEND"),  # the legacy rows
        (E.INTEREST, "  Dividend: ISHARES FTSE 250 (129 units)", "DIVIDEND"),
        (E.INTEREST, "Interest on cash", "INTEREST"),
        (E.INTEREST, None, "INTEREST"),
        (E.INTEREST, "dividends reinvested? no: interest", "INTEREST"),  # only the prefix counts
        ("INTEREST", "dividend: x", "DIVIDEND"),  # the stored string value reads the same
        (E.CONTRIBUTION, "dividend: x", None),
        (E.BUY, None, None),
        (E.FEE, "dividend: charge", None),
    ],
)
def test_income_kind_is_one_rule_for_new_and_legacy_rows(
    entry_type: EntryType | str, notes: str | None, kind: str | None
) -> None:
    assert income_kind(entry_type, notes) == kind


def test_the_payer_is_read_from_a_dividend_note() -> None:
    assert payer_of("dividend: Apple (10.13713692 units)") == "Apple"
    assert payer_of("dividend: ISHARES FTSE 250 (129 units)") == "ISHARES FTSE 250"
    assert payer_of("dividend: US0378331005") == "US0378331005"
    assert payer_of("dividend: SMT (1,000 units); listing unknown: no such listing") == "SMT"
    assert payer_of("Interest on cash") is None and payer_of(None) is None and payer_of("dividend:") is None


@pytest.mark.parametrize(
    ("payer", "listing_id"),
    [
        ("US0378331005", 3),  # an ISIN: that instrument's primary listing
        ("paid by IE00B3RBWM25", 1),
        ("AAPL", 3),  # a ticker listed once
        ("smt", 6),
        ("VWRL", 1),  # one instrument on two venues: its primary listing
        ("Apple", 3),  # the start of an instrument's name, word by word
        ("apple inc", 3),
        ("ISHARES FTSE 250 ETF GBP D", 4),  # a name cut short mid-word
        ("ISHARES FTSE 250", None),  # the start of two instruments' names: ambiguous
        ("Appl", None),  # a bare fragment of a word is not a name
        ("Microsoft", None),
        ("", None),
    ],
)
def test_a_payer_is_matched_to_a_listing_only_when_it_names_one(payer: str, listing_id: int | None) -> None:
    assert match_payer(payer, LISTINGS) == listing_id


def test_match_name_returns_the_one_value_the_names_starting_with_the_payer_share() -> None:
    names = {
        "vanguard ftse all-world ucits etf": "VWRL",
        "vanguard ftse all-world ucits etf gbp": "VWRL",
        "ishares ftse 250 etf gbp dist": "MIDD",
        "ishares core uk gilts etf gbp dist": "IGLT",
    }
    assert match_name("Vanguard FTSE All-World", names) == "VWRL"  # two names, one listing
    assert match_name("ISHARES  FTSE 250", names) == "MIDD"
    assert match_name("ishares", names) is None  # two listings
    assert match_name("Vanguard FTSE All-World UCITS ETF GBP", names) == "VWRL"
