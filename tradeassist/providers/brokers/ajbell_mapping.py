"""The user's mapping of AJ Bell descriptions to listings (``description,ticker,exchange``):
AJ Bell names instruments by neither ticker nor ISIN, and its two files can name one fund
differently, so every description goes through this mapping."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Problems, Source, csv_rows, header_error, is_blank, read_source

MAPPING_HEADER = ("description", "ticker", "exchange")


@dataclass(frozen=True, slots=True)
class ListingRef:
    """Where a broker's description points: a ticker and (optionally) an exchange."""

    ticker: str
    exchange: str | None = None


def normalise_description(text: str) -> str:
    """Descriptions match ignoring case and runs of spaces (AJ Bell pads with several)."""
    return " ".join(text.split()).casefold()


def load_mapping(source: Source) -> dict[str, ListingRef]:
    """Read the user's ``description,ticker,exchange`` CSV; rows without a ticker are skipped.

    Keys are normalised descriptions (see ``normalise_description``).
    """
    src = read_source(source)
    records = list(csv_rows(src))
    first = records[0][1] if records else []
    header = tuple(cell.strip().lower() for cell in first)
    if header[:2] != MAPPING_HEADER[:2] or header[2:] not in ((), ("exchange",)):
        raise header_error(src.name, first, MAPPING_HEADER)
    problems = Problems()
    mapping: dict[str, ListingRef] = {}
    first_line: dict[str, int] = {}
    for line, row in records[1:]:
        if is_blank(row):
            continue
        cells = [cell.strip() for cell in row] + ["", ""]
        description, ticker, exchange = cells[0], cells[1].upper(), cells[2].upper() or None
        if not description:
            problems.add(src.name, line, "the description is empty")
            continue
        if not ticker:
            continue  # a template line not filled in yet: still unmapped
        key = normalise_description(description)
        ref = ListingRef(ticker, exchange)
        if key in mapping and mapping[key] != ref:
            problems.add(src.name, line, f"{description!r} is mapped differently on line {first_line[key]}")
            continue
        mapping[key] = ref
        first_line.setdefault(key, line)
    problems.raise_if_any()
    return mapping
