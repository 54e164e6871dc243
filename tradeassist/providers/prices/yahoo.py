"""Yahoo Finance: the web CSV download, the yfinance ``history()`` dump, and the chart JSON.

* Web CSV: ``Date,Open,High,Low,Close,Adj Close,Volume``; days Yahoo has no data for are
  written as ``null`` and skipped.
* yfinance dump: ``Date,Open,High,Low,Close,Volume,Dividends,Stock Splits,Capital Gains``
  with dates stamped in the exchange's zone (``2019-07-25 00:00:00+01:00``): the bar's date is
  the local date written there, not the UTC one.
* Chart JSON (``/v8/finance/chart/{symbol}``, what ``fetch`` uses): ``meta`` declares the
  currency (``GBp`` for pence lines) and the exchange time zone; timestamps become local dates.

``Close`` is the price used, never ``Adj Close`` (which is dividend-adjusted history, not a
price anyone traded at). The CSV forms declare no currency: bars carry ``None`` unless the
provider is told (``YahooProvider(currency="GBp")``). Numbers keep the text Yahoo wrote,
float artefacts included (``116.1500015258789``); rounding them is not a parser's call.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ...core import limits
from ...core.errors import FileFormatError, ProviderError
from ...core.frozen import FrozenDict
from ..http_policy import HttpPolicy
from .base import (
    PriceBar,
    PriceSeries,
    Problems,
    declared_units,
    decode,
    finish,
    http_client,
    json_number,
    load_json,
    optional_number,
    parse_iso_date,
    parse_number,
    snippet,
    vendor_csv,
)

if TYPE_CHECKING:  # httpx is loaded when a provider first downloads (base.http_client)
    from ..http import HttpClient

DEFAULT_BASE_URL = "https://query1.finance.yahoo.com"
# Yahoo turns away clients that do not look like a browser.
_HEADERS = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) tradeassist/0.1", "Accept": "application/json"}

_MAX_EPOCH = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a datetime holds

_ALIASES = {
    "date": "date",
    "datetime": "date",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adj close": "adj_close",
    "volume": "volume",
    "dividends": "dividends",
    "stock splits": "splits",
    "capital gains": "capital_gains",
}


class YahooProvider:
    name: ClassVar[str] = "yahoo"

    def __init__(
        self,
        *,
        currency: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        client: HttpClient | None = None,
        policy: HttpPolicy | None = None,
    ) -> None:
        self.currency, self.quote_scale = declared_units(currency)
        self.base_url = base_url.rstrip("/")
        self._client = client
        self._policy = policy  # without a client: HttpPolicy's defaults (a 120 s deadline)

    def parse(self, data: str | bytes, *, source_name: str = "<yahoo>") -> PriceSeries:
        """A web CSV, a yfinance dump or a chart JSON answer (told apart by the first character)."""
        text = decode(data, source_name)
        if text.lstrip().startswith("{"):
            return self._parse_chart(text, source_name)
        return self._parse_csv(text, source_name)

    # ---------------------------------------------------------------------------------- CSV
    def _parse_csv(self, text: str, source_name: str) -> PriceSeries:
        problems = Problems(source_name)
        rows, header, columns = vendor_csv(text, source_name, _ALIASES, "Yahoo")
        bars: list[PriceBar] = []
        skipped = 0
        for line, cells in rows:
            if len(cells) != len(header):
                problems.add(line, f"expected {len(header)} fields, found {len(cells)}")
                continue
            if cells[columns["close"]].lower() == "null":
                skipped += 1
                continue
            try:
                bars.append(self._csv_bar(cells, columns, line))
            except ValueError as exc:
                problems.add(line, str(exc))
        meta = {"format": "yfinance" if "dividends" in columns else "csv"}
        if skipped:
            meta["skipped_null_rows"] = str(skipped)
        bars_done = finish(bars, problems)
        return self._series(source_name, bars_done, None, meta, self.currency, self.quote_scale)

    def _csv_bar(self, cells: list[str], columns: dict[str, int], line: int) -> PriceBar:
        def cell(name: str) -> str | None:
            index = columns.get(name)
            return None if index is None else cells[index]

        return PriceBar(
            as_of=_local_date(cells[columns["date"]]),
            close=parse_number(cells[columns["close"]], "Close"),
            currency=self.currency,
            quote_scale=self.quote_scale,
            source=self.name,
            open=optional_number(cell("open"), "Open"),
            high=optional_number(cell("high"), "High"),
            low=optional_number(cell("low"), "Low"),
            line=line,
        )

    def _series(
        self,
        source_name: str,
        bars: tuple[PriceBar, ...],
        symbol: str | None,
        meta: dict[str, str],
        currency: str | None,
        scale: str | None,
    ) -> PriceSeries:
        return PriceSeries(
            source=self.name,
            source_name=source_name,
            bars=bars,
            symbol=symbol,
            currency=currency,
            quote_scale=scale,
            meta=FrozenDict(meta),
        )

    # ---------------------------------------------------------------------------------- chart JSON
    def _parse_chart(self, text: str, source_name: str) -> PriceSeries:
        try:
            document = load_json(text, source_name)
        except FileFormatError as exc:
            line, why = exc.problems[0]
            raise FileFormatError(source_name, line=line, reason=f"not a Yahoo chart answer: {why}") from None
        chart = document.get("chart") if isinstance(document, dict) else None
        if not isinstance(chart, dict):
            raise FileFormatError(source_name, line=1, reason=f"not a Yahoo chart answer: {snippet(text)!r}")
        error = chart.get("error")
        if error:
            detail = (error.get("description") or error.get("code")) if isinstance(error, dict) else error
            raise ProviderError(f"yahoo refused ({source_name}): {snippet(str(detail))}")
        results = chart.get("result")
        result = results[0] if isinstance(results, list) and results else None
        meta = result.get("meta") if isinstance(result, dict) else None
        if not isinstance(result, dict) or not isinstance(meta, dict):
            raise FileFormatError(source_name, line=1, reason="no chart result")
        problems = Problems(source_name)
        currency, scale = self.currency, self.quote_scale
        try:
            if meta.get("currency"):
                currency, scale = declared_units(str(meta["currency"]))
        except ValueError as exc:
            problems.add(None, f"meta.currency: {exc}")
            currency = scale = None
        zone = _chart_zone(meta)
        stamps = result.get("timestamp") or []
        indicators = result.get("indicators")
        quotes = (indicators.get("quote") if isinstance(indicators, dict) else None) or [{}]
        quote = quotes[0] if isinstance(quotes, list) and isinstance(quotes[0], dict) else None
        if not isinstance(stamps, list) or quote is None:
            raise FileFormatError(source_name, line=1, reason="the chart result has no timestamps and quotes")
        open_until = _open_session_start(meta)
        bars: list[PriceBar] = []
        for index, stamp in enumerate(stamps):
            try:
                bar = self._chart_bar(quote, index, stamp, zone, currency, scale, open_until)
            except (ValueError, TypeError, IndexError, OverflowError, OSError) as exc:
                problems.add(None, f"timestamp[{index}]: {limits.shown(exc, 120)}")
                continue
            if bar is not None:
                bars.append(bar)
        declared = {
            k: str(v)
            for k, v in meta.items()
            if isinstance(v, str | Decimal) or (isinstance(v, int) and not isinstance(v, bool) and _short(v))
        }
        declared["format"] = "chart"
        symbol = meta.get("symbol") if isinstance(meta.get("symbol"), str) else None
        return self._series(source_name, finish(bars, problems), symbol, declared, currency, scale)

    def _chart_bar(
        self,
        quote: dict[str, list[Any]],
        index: int,
        stamp: Any,
        zone: ZoneInfo,
        currency: str | None,
        scale: str | None,
        open_session_start: int | None,
    ) -> PriceBar | None:
        def value(name: str) -> Decimal | None:
            series = quote.get(name) or []
            if not isinstance(series, list):
                raise ValueError(f"{name} is not a list")
            item = series[index] if index < len(series) else None
            return None if item is None else json_number(item, name)

        close = value("close")
        if close is None:  # Yahoo's empty days
            return None
        seconds = _epoch_seconds(stamp)
        moment = datetime.fromtimestamp(seconds, tz=UTC).astimezone(zone)
        still_trading = open_session_start is not None and seconds >= open_session_start
        return PriceBar(
            as_of=moment.date(),
            close=close,
            currency=currency,
            quote_scale=scale,
            source=self.name,
            open=value("open"),
            high=value("high"),
            low=value("low"),
            is_close=not still_trading,
        )

    def fetch(self, symbol: str, *, start: date | None = None, end: date | None = None) -> PriceSeries:
        """Daily bars from the chart API (``VUSA.L``); a session still trading is not a close."""
        params: dict[str, str | int] = {"interval": "1d", "includePrePost": "false", "events": "div,split"}
        if start is None and end is None:
            params["range"] = "max"
        else:
            first = start or date(1970, 1, 2)
            last = (end or datetime.now(UTC).date()) + timedelta(days=1)
            params["period1"] = int(datetime.combine(first, time(0), tzinfo=UTC).timestamp())
            params["period2"] = int(datetime.combine(last, time(0), tzinfo=UTC).timestamp())
        client = http_client(self._client, self._policy)
        response = client.get(f"{self.base_url}/v8/finance/chart/{symbol}", params=params, headers=_HEADERS)
        try:
            series = self.parse(response.content, source_name=response.url)
        except FileFormatError as exc:
            problem = str(exc)
        else:
            return _window(series, symbol, start, end)
        raise ProviderError(f"yahoo {symbol}: the answer is not chart data: {problem}", symbol=symbol)


def _window(series: PriceSeries, symbol: str, start: date | None, end: date | None) -> PriceSeries:
    """Only the bars from ``start`` to ``end`` (Yahoo's periods are in UTC seconds, ours are dates)."""
    kept = tuple(
        bar
        for bar in series.bars
        if (start is None or bar.as_of >= start) and (end is None or bar.as_of <= end)
    )
    return dataclasses.replace(series, bars=kept, symbol=series.symbol or symbol)


def _local_date(text: str) -> date:
    """``2019-07-25`` or ``2019-07-25 00:00:00+01:00``: the date as written, in the exchange's zone."""
    if len(text) == 10:
        return parse_iso_date(text)
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        raise ValueError(f"Date {text!r} is not YYYY-MM-DD or an ISO timestamp") from None


def _epoch_seconds(stamp: Any) -> int:
    """A chart timestamp (seconds since 1970) as an int; ValueError for anything else."""
    if isinstance(stamp, bool) or not isinstance(stamp, int | Decimal | str):
        raise ValueError(f"{limits.shown(stamp)!r} is not a time")
    if not isinstance(stamp, int):
        stamp = int(parse_number(str(stamp).strip(), "the time", Decimal(_MAX_EPOCH)))
    if not 0 <= stamp <= _MAX_EPOCH:
        raise ValueError(f"{limits.shown(stamp)} is not a time (seconds since 1970)")
    return stamp


def _short(value: int) -> bool:
    """An int that converts to text (not one over Python's 4,300-digit limit)."""
    return value.bit_length() <= 1024


def _chart_zone(meta: dict[str, Any]) -> ZoneInfo:
    name = meta.get("exchangeTimezoneName")
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    return ZoneInfo("UTC")


def _open_session_start(meta: dict[str, Any]) -> int | None:
    """The start of today's session if it has not closed yet (its bar is a live price, not a close)."""
    try:
        regular = meta["currentTradingPeriod"]["regular"]
        # Times as the bars' own, within 1970..9999: int() of a JSON number such as
        # 1E+9999991720249200 would build an integer of that many digits (a MemoryError).
        start, end = _epoch_seconds(regular["start"]), _epoch_seconds(regular["end"])
        market_time = _epoch_seconds(meta["regularMarketTime"])
    except (KeyError, TypeError, ValueError):
        return None
    return start if market_time < end else None
