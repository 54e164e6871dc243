"""Twelve Data ``/time_series`` JSON.

The answer is ``{"meta": {...}, "values": [...], "status": "ok"}``: ``meta`` declares symbol,
interval, currency, exchange_timezone, exchange, mic_code and type; ``values`` run newest
first, each ``{datetime, open, high, low, close, volume}`` as strings. A refusal is
``{"status": "error", "code": ..., "message": ...}``, often with HTTP 200: it is an error,
never an empty series.

Currency ``GBp`` (and ``GBX``) means the line is quoted in pence: bars get currency ``GBP``
and quote_scale ``GBX``. Numbers are read as Decimal from the JSON text, whether Twelve Data
sent them as strings or as numbers.

The API key comes from ``api_key`` or ``TWELVEDATA_API_KEY`` and travels as the ``apikey``
query parameter; it never appears in errors or logs.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ...core import limits
from ...core.config import secret, settings
from ...core.errors import ConfigError, FileFormatError, ProviderError
from ...core.frozen import FrozenDict
from ...core.redaction import redact
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
    parse_iso_date,
    snippet,
)

if TYPE_CHECKING:  # httpx is loaded when a provider first downloads (base.http_client)
    from ..http import HttpClient

DEFAULT_BASE_URL = "https://api.twelvedata.com"
ENV_KEY = "TWELVEDATA_API_KEY"
# Bars at these intervals are closing prices; intraday bars are not.
_CLOSING_INTERVALS = frozenset({"1day", "1week", "1month"})


class TwelveDataProvider:
    name: ClassVar[str] = "twelvedata"

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        client: HttpClient | None = None,
        policy: HttpPolicy | None = None,
        mic_code: str | None = None,
        outputsize: int = 5000,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._client = client
        self._policy = policy  # without a client: HttpPolicy's defaults (a 120 s deadline)
        self.mic_code = mic_code
        self.outputsize = outputsize

    def parse(self, data: str | bytes, *, source_name: str = "<twelvedata>") -> PriceSeries:
        return self._parse(data, source_name=source_name, secrets=())

    def _parse(self, data: str | bytes, *, source_name: str, secrets: tuple[str | None, ...]) -> PriceSeries:
        text = decode(data, source_name)
        try:
            document = load_json(text, source_name)
        except FileFormatError as exc:
            raise FileFormatError(
                source_name, line=exc.problems[0][0], reason=f"{exc.problems[0][1]}: {snippet(text)!r}"
            ) from None
        if not isinstance(document, dict):
            raise FileFormatError(source_name, line=1, reason="not a Twelve Data time series object")
        if document.get("status") == "error":
            code = limits.shown(document.get("code", "?"))
            message = redact(snippet(str(document.get("message", "no message"))), secrets)
            raise ProviderError(f"twelvedata refused ({source_name}): {message} (code {code})", code=code)
        meta = document.get("meta")
        values = document.get("values")
        if not isinstance(meta, dict) or not isinstance(values, list):
            raise FileFormatError(
                source_name, line=1, reason=f"no 'meta' object and 'values' list: {snippet(text)!r}"
            )
        problems = Problems(source_name)
        declared = {
            str(k): str(v) for k, v in meta.items() if isinstance(v, str | Decimal | bool) or _short_int(v)
        }
        try:
            currency, scale = declared_units(declared.get("currency"))
        except ValueError as exc:
            problems.add(None, f"meta.currency: {exc}")
            currency = scale = None
        zone = _zone(declared.get("exchange_timezone"), problems)
        interval = declared.get("interval", "1day")
        is_close = interval in _CLOSING_INTERVALS
        bars: list[PriceBar] = []
        for index, item in enumerate(values):
            try:
                bars.append(self._bar(item, currency, scale, zone, is_close))
            except ValueError as exc:
                problems.add(None, f"values[{index}]: {exc}")
        return PriceSeries(
            source=self.name,
            source_name=source_name,
            bars=finish(bars, problems),
            symbol=declared.get("symbol"),
            currency=currency,
            quote_scale=scale,
            meta=FrozenDict(declared),
        )

    def _bar(
        self,
        item: Any,
        currency: str | None,
        scale: str | None,
        zone: ZoneInfo | None,
        is_close: bool,
    ) -> PriceBar:
        if not isinstance(item, dict):
            raise ValueError("not an object")
        if "close" not in item:
            raise ValueError("no close")

        def optional(name: str) -> Decimal | None:
            value = item.get(name)
            return None if value in (None, "") else json_number(value, name)

        return PriceBar(
            as_of=_as_of(item.get("datetime"), zone),
            close=json_number(item["close"], "close"),
            currency=currency,
            quote_scale=scale,
            source=self.name,
            open=optional("open"),
            high=optional("high"),
            low=optional("low"),
            is_close=is_close,
        )

    def fetch(self, symbol: str, *, start: date | None = None, end: date | None = None) -> PriceSeries:
        """Daily bars for ``symbol`` (e.g. ``VUSA``; set ``mic_code="XLON"`` for the LSE line)."""
        api_key = self._api_key or secret(settings().twelvedata_api_key)
        if not api_key:
            raise ConfigError(f"Twelve Data needs an API key: set {ENV_KEY}")
        params: dict[str, str | int | None] = {
            "symbol": symbol,
            "interval": "1day",
            "outputsize": self.outputsize,
            "format": "JSON",
            "mic_code": self.mic_code,
            "start_date": start.isoformat() if start else None,
            "end_date": end.isoformat() if end else None,
            "apikey": api_key,
        }
        client = http_client(self._client, self._policy)
        response = client.get(f"{self.base_url}/time_series", params=params, secrets=[api_key])
        try:
            return self._parse(response.content, source_name=response.url, secrets=(api_key,))
        except FileFormatError as exc:
            problem = redact(str(exc), [api_key])
        raise ProviderError(f"twelvedata {symbol}: the answer is not a time series: {problem}", symbol=symbol)


def _short_int(value: object) -> bool:
    """An int that converts to text (not one over Python's 4,300-digit limit)."""
    return isinstance(value, int) and value.bit_length() <= 1024


def _zone(name: str | None, problems: Problems) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        problems.add(None, f"meta.exchange_timezone {limits.shown(name)!r} is not a known time zone")
        return None


def _as_of(value: object, zone: ZoneInfo | None) -> date | datetime:
    """A date for daily bars; an aware datetime (exchange time zone) for intraday ones."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"datetime {value!r} is missing")
    text = value.strip()
    if len(text) == 10:
        return parse_iso_date(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"datetime {text!r} is not an ISO date or timestamp") from None
    if moment.tzinfo is None:
        if zone is None:
            raise ValueError(f"datetime {text!r} has no time zone and meta declares none")
        moment = moment.replace(tzinfo=zone)
    limits.in_utc(moment, "datetime", text)  # within the years a datetime holds, in UTC too
    return moment
