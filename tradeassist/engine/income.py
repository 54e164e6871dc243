"""Income, classified by one rule: what is a dividend, what is interest, and whose dividend it is.

A dividend is a ``DIVIDEND`` entry. Before that type existed the AJ Bell and Trading 212
imports wrote dividends as INTEREST with notes starting ``dividend:`` (``dividend: Apple
(10.13713692 units)``). The ledger is append-only, so those rows are never rewritten: they
keep their meaning through ``income_kind``, the one place income is classified. Their payer
is read back from the notes (``payer_of``) and matched to a listing where it names exactly
one (``match_payer``); otherwise their listing stays unknown.

Pure: plain values in and out.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Literal, NamedTuple, TypeVar

from ..core.enums import EntryType

IncomeKind = Literal["DIVIDEND", "INTEREST"]
DIVIDEND: IncomeKind = "DIVIDEND"
INTEREST: IncomeKind = "INTEREST"

#: What the broker imports write at the start of a dividend's notes (then and now).
DIVIDEND_NOTES_PREFIX = "dividend:"

_UNITS_SUFFIX = re.compile(r"\s*\([\d,.]+ units?\)\s*$", re.IGNORECASE)
_ISIN_TOKEN = re.compile(r"\b[A-Z]{2}[A-Z0-9]{9}[0-9]\b")

V = TypeVar("V", bound=Hashable)


def is_dividend_note(notes: str | None) -> bool:
    """Whether ``notes`` are a dividend's: they start ``dividend:`` (any case, spaces before)."""
    return notes is not None and notes.lstrip().casefold().startswith(DIVIDEND_NOTES_PREFIX)


def income_kind(entry_type: EntryType | str, notes: str | None) -> IncomeKind | None:
    """DIVIDEND, INTEREST, or None for an entry that is not income.

    A DIVIDEND entry is a dividend. An INTEREST entry is a dividend when its notes start
    ``dividend:`` (the rows the imports wrote before DIVIDEND existed), else interest.
    """
    kind = entry_type.value if isinstance(entry_type, EntryType) else str(entry_type)
    if kind == EntryType.DIVIDEND.value:
        return DIVIDEND
    if kind == EntryType.INTEREST.value:
        return DIVIDEND if is_dividend_note(notes) else INTEREST
    return None


def payer_of(notes: str | None) -> str | None:
    """Who paid the dividend a ``dividend: <payer> (N units)`` note names, else None.

    Anything after a ``;`` (what an import added, such as why the listing is unknown) and the
    units held are not part of the payer.
    """
    if not is_dividend_note(notes):
        return None
    assert notes is not None
    text = notes.lstrip()[len(DIVIDEND_NOTES_PREFIX) :].split(";", 1)[0]
    text = _UNITS_SUFFIX.sub("", text).strip()
    return text or None


def normalise_name(text: str) -> str:
    """Names compare ignoring case and runs of spaces (brokers pad and capitalise freely)."""
    return " ".join(text.split()).casefold()


def _starts(payer: list[str], name: list[str]) -> bool:
    """Whether the words of ``payer`` begin ``name``. The last word may be cut short when
    at least two whole words come before it (a long name a broker truncated)."""
    if not payer or len(payer) > len(name):
        return False
    *whole, last = payer
    if name[: len(whole)] != whole:
        return False
    word = name[len(whole)]
    return word == last or (len(whole) >= 2 and word.startswith(last))


def match_name(payer: str, names: Mapping[str, V] | Iterable[tuple[str, V]]) -> V | None:
    """The one value of the names ``payer`` is, else the one value shared by every name that
    ``payer`` begins; None when there is none or more than one.

    ``names`` (a mapping, or pairs) are ``normalise_name`` spellings with their values.
    """
    key = normalise_name(payer)
    if not key:
        return None
    pairs = list(names.items() if isinstance(names, Mapping) else names)
    exact = {value for name, value in pairs if name == key}
    if exact:
        return exact.pop() if len(exact) == 1 else None
    words = key.split()
    found = {value for name, value in pairs if _starts(words, name.split())}
    return found.pop() if len(found) == 1 else None


class ListingName(NamedTuple):
    """What a payer is matched against: a listing, its instrument's ISIN and name."""

    listing_id: int
    ticker: str
    isin: str
    name: str | None  # the instrument's name, when the registry has one
    instrument_id: int
    is_primary: bool


def _instrument_listing(listings: Iterable[ListingName], instrument_id: int) -> int | None:
    """The instrument's primary listing, else its first."""
    mine = [item for item in listings if item.instrument_id == instrument_id]
    if not mine:
        return None
    return min(mine, key=lambda item: (not item.is_primary, item.listing_id)).listing_id


def match_payer(payer: str | None, listings: Iterable[ListingName]) -> int | None:
    """The listing a dividend's payer names, or None when it names none or several.

    In order: an ISIN in the text (that instrument's primary listing); the text being a
    ticker listed for one instrument; the text being, or beginning, the names of exactly one
    instrument (``match_name``).
    """
    if not payer or not payer.strip():
        return None
    items = list(listings)
    for isin in _ISIN_TOKEN.findall(payer.upper()):
        instruments = {item.instrument_id for item in items if item.isin == isin}
        if len(instruments) == 1:
            return _instrument_listing(items, instruments.pop())
    ticker = payer.strip().upper()
    instruments = {item.instrument_id for item in items if item.ticker == ticker}
    if len(instruments) == 1:
        return _instrument_listing(items, instruments.pop())
    names = [(normalise_name(item.name), item.instrument_id) for item in items if item.name]
    instrument = match_name(payer, names)
    return _instrument_listing(items, instrument) if instrument is not None else None


class IncomeEntry(NamedTuple):
    """What classifying an entry reads of it."""

    key: int  # the ledger_entry_id
    entry_type: EntryType | str
    notes: str | None
    listing_id: int | None
    cash: Decimal
    corrects: int | None = None  # the entry it corrects, if any


class Classified(NamedTuple):
    kind: IncomeKind
    listing_id: int | None  # the paying listing; None for interest, or a dividend's unknown payer
    payer: str | None  # a dividend of unknown listing: the payer its notes name, if any


def classify(entry: IncomeEntry, listings: Sequence[ListingName]) -> Classified | None:
    """The entry as income, on its own: its kind, and for a dividend the listing that paid it
    (the one it names, else the one the payer in its notes names) or the payer's name."""
    kind = income_kind(entry.entry_type, entry.notes)
    if kind is None:
        return None
    if kind == INTEREST:
        return Classified(INTEREST, None, None)
    if entry.listing_id is not None:
        return Classified(DIVIDEND, entry.listing_id, None)
    payer = payer_of(entry.notes)
    listing_id = match_payer(payer, listings)
    return Classified(DIVIDEND, listing_id, None if listing_id is not None else payer)


def classify_all(
    entries: Iterable[IncomeEntry],
    listings: Sequence[ListingName],
    originals: Mapping[int, IncomeEntry] | None = None,
) -> dict[int, Classified]:
    """Each income entry of ``entries`` classified, by key. A reversal (it corrects an entry of
    the same type and negates its cash; its notes say only ``reverses entry N``) is income of
    the kind and listing of the entry it reverses, so a reversed legacy dividend nets to zero
    as a dividend. ``originals``: corrected entries not among ``entries``."""
    items = list(entries)
    known = dict(originals or {}) | {entry.key: entry for entry in items}
    result: dict[int, Classified] = {}
    for entry in items:
        target = known.get(entry.corrects) if entry.corrects is not None else None
        if (
            target is not None
            and str(target.entry_type) == str(entry.entry_type)
            and target.cash == -entry.cash
            and target.listing_id == entry.listing_id
        ):
            found = classify(target, listings)
        else:
            found = classify(entry, listings)
        if found is not None:
            result[entry.key] = found
    return result


__all__ = [
    "DIVIDEND",
    "DIVIDEND_NOTES_PREFIX",
    "INTEREST",
    "Classified",
    "IncomeEntry",
    "IncomeKind",
    "ListingName",
    "classify",
    "classify_all",
    "income_kind",
    "is_dividend_note",
    "match_name",
    "match_payer",
    "normalise_name",
    "payer_of",
]
