"""The book's own bounds hold for every way in, not only the file readers (issue #16, item 9):
an entry handed to ``post_entries`` by code, a price typed on ``ledger add`` or in a fill."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.engine import Engine

from tests.test_snapshot_verification import T0, book, post, state  # noqa: F401 (fixture)
from tradeassist.core.enums import EntryType
from tradeassist.core.errors import LedgerError, ValidationError
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import User
from tradeassist.services.ledger import NewEntry
from tradeassist.services.ledger.manual import manual_entry


@pytest.mark.parametrize("amount", ["1E+40", "1000000000000000.01", "-1E+16"])
def test_an_entry_from_code_beyond_the_bounds_is_refused_and_nothing_is_written(
    book: Engine,  # noqa: F811
    admin: User,
    amount: str,
) -> None:
    before = state(book)
    with pytest.raises(LedgerError, match=r"cash_amount_base: .* is out of range"):
        post(book, admin, NewEntry(T0.replace(year=2025), EntryType.CONTRIBUTION, Decimal(amount)))
    assert state(book) == before


def test_the_largest_amount_is_still_accepted(book: Engine, admin: User) -> None:  # noqa: F811
    posted = post(book, admin, NewEntry(T0.replace(year=2025), EntryType.CONTRIBUTION, Decimal(10) ** 15))
    assert posted.cash_balance == Decimal(10) ** 15 + Decimal("8998.50")


def test_a_typed_price_is_held_to_the_price_bound(book: Engine) -> None:  # noqa: F811
    refused = pytest.raises(ValidationError, match=r"price: .*out of range")
    with unit_of_work(book, readonly=True) as s, refused:
        manual_entry(s, entry_type="BUY", ticker="VWRP", exchange="XLON", units="1", price="2E+9", fees="0")
