"""The generic price CSV (``docs/price-csv-format.md``): what to use when no feed fits.

Header ``date,close`` plus any of ``open``, ``high``, ``low``, ``currency``, ``quote_scale``,
``volume`` (ignored), in any order, names in any case. Dates are ``YYYY-MM-DD`` (a daily close)
or ISO 8601 timestamps with a UTC offset. Lines starting with ``#`` are comments. A column
name not listed is an error, so a misspelt ``quote_sacle`` cannot silently drop the scale.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from ...core import limits
from ...core.errors import FileFormatError
from .base import (
    PENCE,
    POUNDS,
    PriceBar,
    PriceSeries,
    Problems,
    common,
    csv_lines,
    declared_units,
    decode,
    finish,
    header_map,
    optional_number,
    parse_iso_date,
    parse_number,
)

COLUMNS = ("date", "close", "open", "high", "low", "currency", "quote_scale", "volume")
_ALIASES = {name: name for name in COLUMNS}


class CsvPriceProvider:
    name: ClassVar[str] = "csv"

    def parse(self, data: str | bytes, *, source_name: str = "<csv>") -> PriceSeries:
        text = decode(data, source_name)
        problems = Problems(source_name)
        rows = csv_lines(text, comments=True, source_name=source_name)
        first = next(rows, None)
        if first is None:
            raise FileFormatError(source_name, line=1, reason="empty: expected a header such as date,close")
        header_line, header = first
        columns, unknown = header_map(header, _ALIASES)
        missing = [name for name in ("date", "close") if name not in columns]
        if missing or unknown:
            reasons = []
            if missing:
                reasons.append(f"missing column(s) {', '.join(missing)}")
            if unknown:
                reasons.append(
                    f"unknown column(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(COLUMNS)}"
                )
            raise FileFormatError(source_name, line=header_line, reason="; ".join(reasons))
        bars: list[PriceBar] = []
        for line, cells in rows:
            if len(cells) != len(header):
                problems.add(line, f"expected {len(header)} fields, found {len(cells)}")
                continue
            try:
                bars.append(self._bar(cells, columns, line))
            except ValueError as exc:
                problems.add(line, str(exc))
        ordered = finish(bars, problems)
        return PriceSeries(
            source=self.name,
            source_name=source_name,
            bars=ordered,
            currency=common(bar.currency for bar in ordered),
            quote_scale=common(bar.quote_scale for bar in ordered),
        )

    def _bar(self, cells: list[str], columns: dict[str, int], line: int) -> PriceBar:
        def cell(name: str) -> str | None:
            index = columns.get(name)
            return None if index is None else cells[index]

        currency, scale = units(cell("currency"), cell("quote_scale"))
        return PriceBar(
            as_of=_as_of(cells[columns["date"]]),
            close=parse_number(cells[columns["close"]], "close"),
            currency=currency,
            quote_scale=scale,
            source=self.name,
            open=optional_number(cell("open"), "open"),
            high=optional_number(cell("high"), "high"),
            low=optional_number(cell("low"), "low"),
            line=line,
        )


def units(currency_text: str | None, scale_text: str | None) -> tuple[str | None, str | None]:
    """Resolve a row's ``currency`` and ``quote_scale`` cells; ``ValueError`` when they disagree.

    ``GBp`` or ``GBX`` in either cell means pence. A scale alone implies its currency (``GBX``
    implies ``GBP``). The scale must be the currency itself, or ``GBX`` for ``GBP``.
    """
    currency, implied = declared_units(currency_text)
    _scale_currency, scale = declared_units(scale_text)
    if scale is None:
        return currency, implied
    if currency is None:
        return (POUNDS if scale == PENCE else scale), scale
    allowed = {currency, PENCE} if currency == POUNDS else {currency}
    if scale not in allowed or (implied == PENCE and scale != PENCE):
        raise ValueError(f"currency {currency_text!r} and quote_scale {scale_text!r} disagree")
    return currency, scale


def _as_of(text: str) -> date | datetime:
    if len(text) == 10:
        return parse_iso_date(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"date {text!r} is not YYYY-MM-DD or an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset (write e.g. {text}+00:00)")
    limits.in_utc(moment, "timestamp", text)  # within the years a datetime holds, in UTC too
    return moment
