"""The JSON price array of gsej/investment-tracker (registered as ``json``).

``[{"date": "YYYY-MM-DD", "price": "<text>", "stockSymbol": "VWRL.L", "currency": "GBP"|"GBp"}, ...]``
in any order. ``GBp`` declares pence. One file holds one symbol; a second symbol is an error.
JSON has no useful line numbers here, so problems name the array item (0-based) instead.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ...core.errors import FileFormatError
from .base import (
    PriceBar,
    PriceSeries,
    Problems,
    common,
    declared_units,
    decode,
    finish,
    json_number,
    load_json,
    parse_iso_date,
    snippet,
)


class JsonPriceProvider:
    name: ClassVar[str] = "json"

    def parse(self, data: str | bytes, *, source_name: str = "<json>") -> PriceSeries:
        text = decode(data, source_name)
        items = load_json(text, source_name)
        if not isinstance(items, list):
            raise FileFormatError(
                source_name, line=1, reason=f"expected a JSON array of prices: {snippet(text)!r}"
            )
        problems = Problems(source_name)
        bars: list[PriceBar] = []
        symbols: list[str] = []
        for index, item in enumerate(items):
            try:
                bar, symbol = self._bar(item)
            except ValueError as exc:
                problems.add(None, f"item {index}: {exc}")
                continue
            bars.append(bar)
            if symbol:
                symbols.append(symbol)
        distinct = sorted(set(symbols))
        if len(distinct) > 1:
            problems.add(None, f"more than one stockSymbol in one file: {', '.join(distinct)}")
        ordered = finish(bars, problems)
        return PriceSeries(
            source=self.name,
            source_name=source_name,
            bars=ordered,
            symbol=distinct[0] if distinct else None,
            currency=common(bar.currency for bar in ordered),
            quote_scale=common(bar.quote_scale for bar in ordered),
        )

    def _bar(self, item: Any) -> tuple[PriceBar, str | None]:
        if not isinstance(item, dict):
            raise ValueError("not an object")
        if "price" not in item:
            raise ValueError("no price")

        raw_date = item.get("date")
        if not isinstance(raw_date, str):
            raise ValueError(f"date {raw_date!r} is not text")
        currency_text = item.get("currency")
        if currency_text is not None and not isinstance(currency_text, str):
            raise ValueError(f"currency {currency_text!r} is not text")
        currency, scale = declared_units(currency_text)
        symbol = item.get("stockSymbol")
        bar = PriceBar(
            as_of=parse_iso_date(raw_date.strip()),
            close=json_number(item["price"], "price"),
            currency=currency,
            quote_scale=scale,
            source=self.name,
        )
        return bar, symbol if isinstance(symbol, str) and symbol else None
