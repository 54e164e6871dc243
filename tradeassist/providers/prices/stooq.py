"""Stooq daily CSV: ``{base_url}/q/d/l/?s={symbol}&i=d``.

Formats read: the English header ``Date,Open,High,Low,Close,Volume``; the Polish one from
stooq.pl ``Data,Otwarcie,Najwyzszy,Najnizszy,Zamkniecie,Wolumen``; FX files, which have no
Volume; old rows that stop early (no volume); and the bulk files' ``...,Volume,OpenInt`` and
``<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,...`` headers (``YYYYMMDD`` dates).

Stooq declares no currency and no quote scale, and keeps each LSE line's native unit (pence
for some lines, pounds for others), so bars carry ``None`` for both.

Stooq answers refusals with HTTP 200 and a text body (``No data``, ``Exceeded the daily hits
limit``, an HTML page asking for an API key): anything without a Stooq header is an error,
never data. Since March 2026 downloads need an API key: pass ``api_key`` or set
``STOOQ_API_KEY``; it is sent as the ``apikey`` query parameter and never shown.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, ClassVar

from ...core.config import secret, settings
from ...core.errors import FileFormatError, ProviderError
from ...core.redaction import redact
from ..http_policy import HttpPolicy
from .base import (
    PriceBar,
    PriceSeries,
    Problems,
    csv_lines,
    decode,
    finish,
    header_map,
    http_client,
    optional_number,
    parse_iso_date,
    parse_number,
    snippet,
    vendor_csv,
)

if TYPE_CHECKING:  # httpx is loaded when a provider first downloads (base.http_client)
    from ..http import HttpClient

DEFAULT_BASE_URL = "https://stooq.com"

_ALIASES = {
    "date": "date",
    "data": "date",
    "open": "open",
    "otwarcie": "open",
    "high": "high",
    "najwyzszy": "high",
    "low": "low",
    "najnizszy": "low",
    "close": "close",
    "zamkniecie": "close",
    "volume": "volume",
    "vol": "volume",
    "wolumen": "volume",
    "openint": "openint",
    "ticker": "ticker",
    "per": "per",
    "time": "time",
}


def _stooq_date(text: str) -> date:
    if len(text) == 8 and text.isdigit():  # bulk files: YYYYMMDD
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return parse_iso_date(text)


class StooqProvider:
    name: ClassVar[str] = "stooq"

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        client: HttpClient | None = None,
        policy: HttpPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._client = client
        self._policy = policy  # without a client: HttpPolicy's defaults (a 120 s deadline)

    def parse(self, data: str | bytes, *, source_name: str = "<stooq>") -> PriceSeries:
        return self._parse(data, source_name=source_name, symbol=None)

    def _parse(self, data: str | bytes, *, source_name: str, symbol: str | None) -> PriceSeries:
        text = decode(data, source_name)
        problems = Problems(source_name)
        rows, header, columns = vendor_csv(text, source_name, _ALIASES, "Stooq")
        needed = columns["close"] + 1
        bars: list[PriceBar] = []
        for line, cells in rows:
            if len(cells) < needed or len(cells) > len(header):
                problems.add(line, f"expected {needed} to {len(header)} fields, found {len(cells)}")
                continue
            try:
                bars.append(self._bar(cells, columns, line))
            except ValueError as exc:
                problems.add(line, str(exc))
        return PriceSeries(
            source=self.name,
            source_name=source_name,
            bars=finish(bars, problems),
            symbol=symbol,
        )

    def _bar(self, cells: list[str], columns: dict[str, int], line: int) -> PriceBar:
        def cell(name: str) -> str | None:
            index = columns.get(name)
            return cells[index] if index is not None and index < len(cells) else None

        return PriceBar(
            as_of=_stooq_date(cells[columns["date"]]),
            close=parse_number(cells[columns["close"]], "close"),
            currency=None,
            quote_scale=None,
            source=self.name,
            open=optional_number(cell("open"), "open"),
            high=optional_number(cell("high"), "high"),
            low=optional_number(cell("low"), "low"),
            line=line,
        )

    def fetch(self, symbol: str, *, start: date | None = None, end: date | None = None) -> PriceSeries:
        """Daily bars for a Stooq symbol (``vusa.uk``, ``gbpusd``), ``start``..``end`` inclusive."""
        api_key = self._api_key or secret(settings().stooq_api_key) or None
        params: dict[str, str] = {"s": symbol, "i": "d"}
        if start is not None:
            params["d1"] = start.strftime("%Y%m%d")
        if end is not None:
            params["d2"] = end.strftime("%Y%m%d")
        if api_key:
            params["apikey"] = api_key
        client = http_client(self._client, self._policy)
        response = client.get(f"{self.base_url}/q/d/l/", params=params, secrets=[api_key])
        try:
            return self._parse(response.content, source_name=response.url, symbol=symbol)
        except FileFormatError as exc:
            problem = redact(str(exc), [api_key])
        if _has_header(response.text):
            why = f"the CSV is malformed: {problem}"
        else:
            why = redact(_refusal(response.text, have_key=bool(api_key)), [api_key])
        raise ProviderError(f"stooq {symbol}: {why} ({response.url})", symbol=symbol, reason=problem)


def _has_header(text: str) -> bool:
    try:
        first = next(csv_lines(text.removeprefix("\ufeff")), None)
    except FileFormatError:
        return False
    if first is None:
        return False
    columns, _ = header_map(first[1], _ALIASES)
    return "date" in columns and "close" in columns


def _refusal(body: str, *, have_key: bool) -> str:
    """Say what Stooq sent instead of price data."""
    lowered = body.lower()
    if "exceeded the daily hits limit" in lowered:
        return "Stooq's daily download limit is exceeded; try again tomorrow"
    if body.strip().lower() == "no data" or lowered.startswith("no data"):
        return "Stooq has no data for this symbol (check the symbol, e.g. vusa.uk)"
    if "apikey" in lowered or "api key" in lowered:
        hint = "the API key was refused" if have_key else "set STOOQ_API_KEY"
        return f"Stooq asks for an API key ({hint}): {snippet(body, 80)!r}"
    if "<html" in lowered or "<!doctype" in lowered:
        return f"Stooq sent a web page, not CSV: {snippet(body, 80)!r}"
    return f"Stooq sent something that is not price CSV: {snippet(body, 80)!r}"
