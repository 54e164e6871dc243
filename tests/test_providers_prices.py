"""Price providers: the real sample files parsed directly, and fetched from a local server
(including the refusal bodies feeds send with HTTP 200)."""

from __future__ import annotations

import dataclasses
import itertools
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.http_server import Reply, ScriptedServer, fast_policy
from tradeassist.core.errors import ConfigError, FileFormatError, ProviderError
from tradeassist.providers.http import HttpClient
from tradeassist.providers.prices import (
    CsvPriceProvider,
    FetchingPriceProvider,
    JsonPriceProvider,
    PriceBar,
    PriceProvider,
    StooqProvider,
    TwelveDataProvider,
    YahooProvider,
    declared_units,
    get_price_provider,
    parse_price_file,
    price_provider_names,
)

D = Decimal


def client() -> HttpClient:
    return HttpClient(fast_policy(max_attempts=2))


def ascending(bars: tuple[PriceBar, ...]) -> bool:
    return all(a.as_of < b.as_of for a, b in itertools.pairwise(bars))


# --------------------------------------------------------------------------------------------
# Registry and shared rules
# --------------------------------------------------------------------------------------------
def test_registry_lists_and_builds_providers_with_options() -> None:
    assert price_provider_names() == ("csv", "json", "stooq", "twelvedata", "yahoo")
    stooq = get_price_provider("stooq", base_url="http://127.0.0.1:1/")
    assert isinstance(stooq, StooqProvider) and stooq.base_url == "http://127.0.0.1:1"
    for name in price_provider_names():
        provider = get_price_provider(name)
        assert isinstance(provider, PriceProvider) and provider.name == name
    assert isinstance(get_price_provider("twelvedata"), FetchingPriceProvider)
    assert not isinstance(get_price_provider("csv"), FetchingPriceProvider)
    with pytest.raises(ConfigError, match=r"unknown price provider 'bloomberg'.*stooq"):
        get_price_provider("bloomberg")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GBp", ("GBP", "GBX")),
        ("GBX", ("GBP", "GBX")),
        ("GBP", ("GBP", "GBP")),
        ("usd", ("USD", "USD")),
        (None, (None, None)),
        ("", (None, None)),
    ],
)
def test_declared_units(text: str | None, expected: tuple[str | None, str | None]) -> None:
    assert declared_units(text) == expected


def test_bars_and_series_are_frozen() -> None:
    series = StooqProvider().parse("Date,Close\n2024-01-02,1.5\n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        series.bars[0].close = D("2")  # type: ignore[misc]
    with pytest.raises(TypeError):
        series.meta["x"] = "y"  # type: ignore[index]
    assert isinstance(series.bars, tuple)


BOM = "\ufeff"
SMALL_BODIES = {
    "stooq": "Date,Open,High,Low,Close,Volume\n2024-01-03,1,1,1,2.5,10\n2024-01-02,1,1,1,1.5,10\n",
    "yahoo": "Date,Open,High,Low,Close,Adj Close,Volume\n"
    "2024-01-03,1,1,1,2.5,2.4,10\n2024-01-02,1,1,1,1.5,1.4,10\n",
    "csv": "date,close\n2024-01-03,2.5\n2024-01-02,1.5\n",
    "json": '[{"date":"2024-01-03","price":"2.5"},{"date":"2024-01-02","price":"1.5"}]',
    "twelvedata": json.dumps(
        {
            "meta": {"symbol": "X", "interval": "1day", "currency": "GBP"},
            "values": [
                {"datetime": "2024-01-03", "close": "2.5"},
                {"datetime": "2024-01-02", "close": "1.5"},
            ],
            "status": "ok",
        }
    ),
}


@pytest.mark.parametrize("name", sorted(SMALL_BODIES))
@pytest.mark.parametrize("as_bytes", [True, False])
def test_every_parser_tolerates_a_bom_and_sorts_ascending(name: str, as_bytes: bool) -> None:
    text = BOM + SMALL_BODIES[name]
    series = get_price_provider(name).parse(text.encode("utf-8") if as_bytes else text, source_name="f")
    assert [b.as_of for b in series.bars] == [date(2024, 1, 2), date(2024, 1, 3)]
    assert [b.close for b in series.bars] == [D("1.5"), D("2.5")]
    assert all(b.is_close and b.source == name for b in series.bars)
    assert series.source == name and series.source_name == "f"


DUPLICATED = {
    "stooq": "Date,Close\n2024-01-02,1.5\n2024-01-02,1.6\n",
    "yahoo": "Date,Close\n2024-01-02,1.5\n2024-01-02,1.6\n",
    "csv": "date,close\n2024-01-02,1.5\n2024-01-02,1.6\n",
    "json": '[{"date":"2024-01-02","price":"1.5"},{"date":"2024-01-02","price":"1.6"}]',
    "twelvedata": '{"meta":{"interval":"1day"},"values":[{"datetime":"2024-01-02","close":"1"},'
    '{"datetime":"2024-01-02","close":"2"}]}',
}


@pytest.mark.parametrize("name", sorted(DUPLICATED))
def test_every_parser_refuses_duplicate_dates(name: str) -> None:
    with pytest.raises(FileFormatError, match="duplicate date 2024-01-02") as caught:
        get_price_provider(name).parse(DUPLICATED[name], source_name="dup.txt")
    assert caught.value.file == "dup.txt"


NON_POSITIVE = {
    "stooq": "Date,Close\n2024-01-02,0\n2024-01-03,-1.5\n",
    "yahoo": "Date,Close\n2024-01-02,0\n2024-01-03,-1.5\n",
    "csv": "date,close\n2024-01-02,0\n2024-01-03,-1.5\n",
    "json": '[{"date":"2024-01-02","price":"0"},{"date":"2024-01-03","price":-1.5}]',
    "twelvedata": '{"meta":{},"values":[{"datetime":"2024-01-03","close":-1.5},'
    '{"datetime":"2024-01-02","close":"0"}]}',
}


@pytest.mark.parametrize("name", sorted(NON_POSITIVE))
def test_non_positive_closes_are_kept_for_the_quality_checks(name: str) -> None:
    series = get_price_provider(name).parse(NON_POSITIVE[name])
    assert [b.close for b in series.bars] == [D("0"), D("-1.5")]


def test_all_bad_lines_are_reported_at_once_with_file_and_line() -> None:
    body = (
        "Date,Open,High,Low,Close,Volume\n"
        "2024-01-02,1,2,0.5,abc,10\n"  # line 2: close not a number
        "2024-01-03,1,2,0.5,1.5,10\n"
        "2024-01-03,1,2,0.5,1.6,10\n"  # line 4: duplicate
        "2024-01-04,1,2\n"  # line 5: too few fields
        "2024-13-01,1,2,0.5,1.5,10\n"  # line 6: no such date
        "2024-01-08,x,2,0.5,1.5,10\n"  # line 7: open not a number
    )
    with pytest.raises(FileFormatError) as caught:
        StooqProvider().parse(body, source_name="vusa.csv")
    error = caught.value
    assert [line for line, _ in error.problems] == [2, 4, 5, 6, 7]
    reasons = dict(error.problems)
    assert "close 'abc' is not a number" in reasons[2]
    assert "duplicate date 2024-01-03 (also on line 3)" in reasons[4]
    assert "expected 5 to 6 fields, found 3" in reasons[5]
    assert "not a valid" in reasons[6]
    assert "open 'x'" in reasons[7]
    assert str(error).startswith("vusa.csv: line 2:")


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "1,5", "1.2.3", "£5"])
def test_unparseable_numbers_are_errors(bad: str) -> None:
    with pytest.raises(FileFormatError, match="line 2"):
        CsvPriceProvider().parse(f'date,close\n2024-01-02,"{bad}"\n')


def test_not_utf8_is_a_file_format_error() -> None:
    with pytest.raises(FileFormatError, match="not UTF-8"):
        StooqProvider().parse(b"Date,Close\n2024-01-02,\xff\n", source_name="bin")


def test_parse_price_file_reports_the_path(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("date,close\n2024-01-02,x\n")
    with pytest.raises(FileFormatError) as caught:
        parse_price_file("csv", path)
    assert caught.value.file == str(path)
    with pytest.raises(FileFormatError, match="cannot read"):
        parse_price_file("csv", tmp_path / "missing.csv")


# --------------------------------------------------------------------------------------------
# Stooq
# --------------------------------------------------------------------------------------------
def test_stooq_polish_file_with_short_old_rows(real_data: Path) -> None:
    path = real_data / "stooq" / "stan_uk_d.csv"
    lines = path.read_text().splitlines()
    assert lines[0] == "Data,Otwarcie,Najwyzszy,Najnizszy,Zamkniecie,Wolumen"
    assert lines[1].count(",") == 4  # the old rows have no volume
    series = parse_price_file("stooq", path)
    assert len(series) == 9464
    assert series.bars[0] == PriceBar(
        date(1986, 1, 6), D("84.1994"), None, None, "stooq", D("84.1994"), D("84.1994"), D("84.1994")
    )
    by_date = {b.as_of: b for b in series.bars}
    assert by_date[date(2024, 1, 12)].close == D("613.6")  # pence, but Stooq does not say so
    assert series.last.as_of == date(2024, 1, 15) and series.last.close == D("605")
    assert series.currency is None and series.quote_scale is None
    assert all(b.currency is None and b.quote_scale is None for b in series.bars)
    assert ascending(series.bars)


def test_stooq_fx_file_has_no_volume(real_data: Path) -> None:
    series = parse_price_file("stooq", real_data / "stooq" / "gbpusd_d.csv")
    assert len(series) == 6715
    assert (series.first.as_of, series.first.close) == (date(2000, 3, 1), D("1.5865"))
    assert (series.last.as_of, series.last.close, series.last.low) == (
        date(2026, 1, 30),
        D("1.36839"),
        D("1.36811"),
    )


def test_stooq_english_equity_file_with_crlf(real_data: Path) -> None:
    series = parse_price_file("stooq", real_data / "stooq" / "qqq_us_d.csv")
    assert len(series) == 207 and series.first.close == D("509.471")


def test_stooq_bulk_formats() -> None:
    old = "Date,Open,High,Low,Close,Volume,OpenInt\n2015-03-04,44.59,44.59,43.871,44.07,11213,0\n"
    assert StooqProvider().parse(old).bars[0].close == D("44.07")
    bracketed = (
        "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>\n"
        "VWRL.UK,D,20150304,000000,44.59,44.59,43.871,44.07,11213,0\n"
    )
    bar = StooqProvider().parse(bracketed).bars[0]
    assert (bar.as_of, bar.open, bar.close) == (date(2015, 3, 4), D("44.59"), D("44.07"))


REFUSALS = {
    "no data": "No data",
    "limit": "Exceeded the daily hits limit",
    "html": "<!DOCTYPE html><html><head><title>Stooq</title></head><body>Pobierz dane</body></html>",
    "apikey": "<html><body>To download data, get your apikey: https://stooq.com/q/d/?s=spy.us&get_apikey</body></html>",
    "empty": "",
}


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_stooq_refusal_files_are_format_errors_not_data(kind: str) -> None:
    with pytest.raises(FileFormatError, match=r"not a Stooq CSV|empty"):
        StooqProvider().parse(REFUSALS[kind], source_name="x")


def test_stooq_fetch_serves_the_real_file(real_data: Path) -> None:
    body = (real_data / "stooq" / "stan_uk_d.csv").read_bytes()
    with ScriptedServer({"/q/d/l/": Reply(200, body, content_type="text/csv")}) as server:
        provider = StooqProvider(base_url=server.base_url, client=client())
        series = provider.fetch("stan.uk", start=date(2024, 1, 1), end=date(2024, 1, 15))
        seen = server.seen[0]
    assert seen.query == {"s": ["stan.uk"], "i": ["d"], "d1": ["20240101"], "d2": ["20240115"]}
    assert len(series) == 9464 and series.symbol == "stan.uk"
    assert series.source_name.startswith(server.base_url + "/q/d/l/?s=stan.uk")


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("no data", "no data for this symbol"),
        ("limit", "daily download limit"),
        ("html", "web page"),
        ("apikey", "asks for an API key"),
        ("empty", "not price CSV"),
    ],
)
def test_stooq_fetch_refusals_with_http_200_are_provider_errors(kind: str, message: str) -> None:
    reply = Reply(200, REFUSALS[kind], content_type="text/html")
    with ScriptedServer({"/q/d/l/": reply}) as server, pytest.raises(ProviderError, match=message) as caught:
        StooqProvider(base_url=server.base_url, client=client()).fetch("vusa.uk")
    assert not isinstance(caught.value, FileFormatError)
    assert "vusa.uk" in str(caught.value)


def test_stooq_fetch_sends_the_api_key_and_never_shows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOOQ_API_KEY", "STOOQSECRET42")
    with ScriptedServer({"/q/d/l/": Reply(200, REFUSALS["apikey"])}) as server:
        with pytest.raises(ProviderError) as caught:
            StooqProvider(base_url=server.base_url, client=client()).fetch("vusa.uk")
        assert server.seen[0].query["apikey"] == ["STOOQSECRET42"]
    assert "STOOQSECRET42" not in str(caught.value) + repr(caught.value.context)
    assert "refused" in str(caught.value)


def test_stooq_fetch_of_a_malformed_csv_says_what_is_wrong() -> None:
    reply = Reply(200, "Date,Close\n2024-01-02,oops\n")
    with (
        ScriptedServer({"/q/d/l/": reply}) as server,
        pytest.raises(ProviderError, match=r"malformed.*line 2: close 'oops'"),
    ):
        StooqProvider(base_url=server.base_url, client=client()).fetch("vusa.uk")


def test_stooq_fetch_server_error_is_retried_then_fails() -> None:
    with ScriptedServer({"/q/d/l/": Reply(503, "busy")}) as server:
        with pytest.raises(ProviderError, match="HTTP 503"):
            StooqProvider(base_url=server.base_url, client=client()).fetch("vusa.uk")
        assert server.hits("/q/d/l/") == 2


# --------------------------------------------------------------------------------------------
# Yahoo
# --------------------------------------------------------------------------------------------
def test_yahoo_web_csv_uses_close_not_adj_close(real_data: Path) -> None:
    series = parse_price_file("yahoo", real_data / "yahoo" / "GSK.L.csv")
    assert len(series) == 1263
    assert series.first.as_of == date(2018, 4, 16)
    assert series.first.close == D("1418.964111")  # Adj Close is 1051.669434
    assert series.currency is None and series.first.currency is None
    assert series.meta["format"] == "csv"


def test_yahoo_corrupt_last_row_is_kept_for_quality_checks(real_data: Path) -> None:
    series = parse_price_file("yahoo", real_data / "yahoo" / "VUSA.L.csv")
    assert len(series) == 1261
    last = series.last
    assert (last.as_of, last.open, last.low, last.close) == (
        date(2023, 5, 31),
        D("0"),
        D("0"),
        D("63.832500"),
    )


def test_yfinance_dump_takes_the_local_date(real_data: Path) -> None:
    series = parse_price_file("yahoo", real_data / "yahoo" / "VWRP.L.yfinance.csv")
    assert len(series) == 1526
    # 2019-07-25 00:00:00+01:00 is 2019-07-24 in UTC; the trading day is the 25th.
    assert series.first.as_of == date(2019, 7, 25)
    assert series.first.close == D("64.03500366210938")
    assert series.last.as_of == date(2025, 8, 8)
    assert series.meta["format"] == "yfinance"
    assert all(type(b.as_of) is date for b in series.bars)


def test_yahoo_monthly_and_vuag_files_parse(real_data: Path) -> None:
    assert len(parse_price_file("yahoo", real_data / "yahoo" / "ISF.L_monthly.csv")) == 144
    vuag = parse_price_file("yahoo", real_data / "yahoo" / "VUAG.L.yfinance.csv")
    assert len(vuag) == 1577
    by_date = {b.as_of: b.close for b in vuag.bars}
    assert by_date[date(2019, 5, 16)] < by_date[date(2019, 5, 15)]  # the bogus launch step is kept


def test_yahoo_null_rows_are_skipped_and_currency_only_when_told() -> None:
    body = (
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2020-03-09,500,510,490,495.5,480,1000\n"
        "2020-03-10,null,null,null,null,null,null\n"
        "2020-03-11,496,499,480,481.25,466,1200\n"
    )
    series = YahooProvider().parse(body)
    assert [b.as_of.day for b in series.bars] == [9, 11]
    assert series.meta["skipped_null_rows"] == "1"
    assert series.currency is None
    told = YahooProvider(currency="GBp").parse(body)
    assert (told.currency, told.quote_scale) == ("GBP", "GBX")
    assert (told.bars[0].currency, told.bars[0].quote_scale) == ("GBP", "GBX")


def _chart(closes: list[str | None], *, currency: str = "GBp", live_last: bool = False) -> str:
    # Daily bars stamped at 08:00 London (07:00 UTC in summer) from 2024-07-01.
    first = int(datetime(2024, 7, 1, 7, 0, tzinfo=UTC).timestamp())
    stamps = [first + 86400 * i for i in range(len(closes))]
    values = ", ".join("null" if c is None else c for c in closes)
    last = stamps[-1]
    market_time = last + 3600 if live_last else last + 86400
    meta = {
        "currency": currency,
        "symbol": "ISF.L",
        "exchangeName": "LSE",
        "instrumentType": "ETF",
        "gmtoffset": 3600,
        "timezone": "BST",
        "exchangeTimezoneName": "Europe/London",
        "regularMarketTime": market_time,
        "dataGranularity": "1d",
        "currentTradingPeriod": {
            "regular": {"timezone": "BST", "start": last, "end": last + 8 * 3600 + 1800, "gmtoffset": 3600}
        },
    }
    # Prices are spliced in as raw JSON number text, as Yahoo writes them.
    return (
        f'{{"chart":{{"result":[{{"meta":{json.dumps(meta)},"timestamp":{json.dumps(stamps)},'
        f'"indicators":{{"quote":[{{"close":[{values}],"open":[{values}]}}],'
        f'"adjclose":[{{"adjclose":[{values}]}}]}}}}],"error":null}}}}'
    )


def test_yahoo_chart_json_declares_pence_and_local_dates() -> None:
    series = YahooProvider().parse(_chart(["812.4", None, "815.60000000000002"]))
    assert series.symbol == "ISF.L" and (series.currency, series.quote_scale) == ("GBP", "GBX")
    assert [b.as_of for b in series.bars] == [date(2024, 7, 1), date(2024, 7, 3)]
    assert series.bars[1].close == D("815.60000000000002")  # from the JSON text, not a float
    assert all(b.is_close for b in series.bars)
    assert series.meta["exchangeName"] == "LSE"


def test_yahoo_chart_bar_of_a_session_still_trading_is_not_a_close() -> None:
    series = YahooProvider().parse(_chart(["812.4", "815.6"], live_last=True))
    assert [b.is_close for b in series.bars] == [True, False]


def test_yahoo_fetch_chart_and_404_error() -> None:
    not_found = (
        '{"chart":{"result":null,"error":{"code":"Not Found",'
        '"description":"No data found, symbol may be delisted"}}}'
    )
    routes = {
        "/v8/finance/chart/ISF.L": Reply(
            200, _chart(["812.4", "813", "815.6"]), content_type="application/json"
        ),
        "/v8/finance/chart/NOPE.L": Reply(404, not_found, content_type="application/json"),
    }
    with ScriptedServer(routes) as server:
        provider = YahooProvider(base_url=server.base_url, client=client())
        series = provider.fetch("ISF.L", start=date(2024, 7, 2), end=date(2024, 7, 3))
        query = server.seen[0].query
        assert query["interval"] == ["1d"] and "period1" in query and "period2" in query
        with pytest.raises(ProviderError, match="No data found"):
            provider.fetch("NOPE.L")
        assert server.seen[1].query["range"] == ["max"]
    assert [b.as_of for b in series.bars] == [date(2024, 7, 2), date(2024, 7, 3)]


def test_yahoo_chart_error_with_http_200_is_an_error() -> None:
    body = '{"chart":{"result":null,"error":{"code":"Bad Request","description":"Invalid input"}}}'
    with pytest.raises(ProviderError, match="Invalid input"):
        YahooProvider().parse(body)


# --------------------------------------------------------------------------------------------
# Twelve Data
# --------------------------------------------------------------------------------------------
TD_SERIES = {
    "meta": {
        "symbol": "ISF",
        "interval": "1day",
        "currency": "GBp",
        "exchange_timezone": "Europe/London",
        "exchange": "LSE",
        "mic_code": "XLON",
        "type": "ETF",
    },
    "values": [
        {
            "datetime": "2024-01-12",
            "open": "760.5",
            "high": "764.1",
            "low": "758.9",
            "close": "762.3",
            "volume": "4183950",
        },
        {
            "datetime": "2024-01-11",
            "open": "758.0",
            "high": "761.2",
            "low": "755.1",
            "close": "760.1",
            "volume": "3895120",
        },
        {
            "datetime": "2024-01-10",
            "open": "757.2",
            "high": "759.9",
            "low": "754.0",
            "close": "758.4",
            "volume": "5120334",
        },
    ],
    "status": "ok",
}
TD_ERROR = {
    "code": 401,
    "message": "**apikey** parameter is incorrect or not specified. You can get your free API key instantly.",
    "status": "error",
}


def test_twelvedata_series_declares_pence_and_meta() -> None:
    series = TwelveDataProvider().parse(json.dumps(TD_SERIES), source_name="isf.json")
    assert [b.as_of for b in series.bars] == [date(2024, 1, 10), date(2024, 1, 11), date(2024, 1, 12)]
    assert series.last == PriceBar(
        date(2024, 1, 12), D("762.3"), "GBP", "GBX", "twelvedata", D("760.5"), D("764.1"), D("758.9")
    )
    assert (series.symbol, series.currency, series.quote_scale) == ("ISF", "GBP", "GBX")
    assert series.meta["mic_code"] == "XLON" and series.meta["currency"] == "GBp"


def test_twelvedata_numbers_sent_as_json_numbers_stay_exact() -> None:
    body = (
        '{"meta":{"symbol":"VUSA","interval":"1day","currency":"GBP"},'
        '"values":[{"datetime":"2024-01-12","close":76.10000000000001,"open":76}]}'
    )
    bar = TwelveDataProvider().parse(body).bars[0]
    assert bar.close == D("76.10000000000001") and bar.open == D("76")
    assert (bar.currency, bar.quote_scale) == ("GBP", "GBP")


def test_twelvedata_intraday_bars_are_aware_and_not_closes() -> None:
    body = (
        '{"meta":{"symbol":"VUSA","interval":"1h","currency":"GBP","exchange_timezone":"Europe/London"},'
        '"values":[{"datetime":"2024-07-01 15:00:00","close":"90.1"}]}'
    )
    bar = TwelveDataProvider().parse(body).bars[0]
    assert bar.as_of == datetime(2024, 7, 1, 14, 0, tzinfo=UTC) and bar.as_of.tzinfo is not None
    assert bar.is_close is False


def test_twelvedata_error_object_is_a_provider_error_even_as_a_file() -> None:
    with pytest.raises(ProviderError, match=r"apikey\*\* parameter is incorrect.*code 401"):
        TwelveDataProvider().parse(json.dumps(TD_ERROR))


def test_twelvedata_bad_values_are_collected() -> None:
    body = {
        "meta": {"interval": "1day"},
        "values": [{"datetime": "2024-01-12", "close": "x"}, {"close": "1"}, {"datetime": "2024-01-10"}],
    }
    with pytest.raises(FileFormatError) as caught:
        TwelveDataProvider().parse(json.dumps(body), source_name="td")
    reasons = [why for _, why in caught.value.problems]
    assert reasons == [
        "values[0]: close 'x' is not a number",
        "values[1]: datetime None is missing",
        "values[2]: no close",
    ]


def test_twelvedata_fetch_sends_key_and_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWELVEDATA_API_KEY", "TDSECRET77")
    with ScriptedServer(
        {"/time_series": Reply(200, json.dumps(TD_SERIES), content_type="application/json")}
    ) as s:
        provider = TwelveDataProvider(base_url=s.base_url, client=client(), mic_code="XLON")
        series = provider.fetch("ISF", start=date(2024, 1, 10), end=date(2024, 1, 12))
        query = s.seen[0].query
    assert query["apikey"] == ["TDSECRET77"] and query["symbol"] == ["ISF"] and query["interval"] == ["1day"]
    assert query["start_date"] == ["2024-01-10"] and query["end_date"] == ["2024-01-12"]
    assert query["mic_code"] == ["XLON"]
    assert len(series) == 3 and "TDSECRET77" not in series.source_name


def test_twelvedata_fetch_error_with_http_200_never_shows_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWELVEDATA_API_KEY", "TDSECRET77")
    error = dict(TD_ERROR, message="apikey TDSECRET77 is not valid")
    with (
        ScriptedServer({"/time_series": Reply(200, json.dumps(error), content_type="application/json")}) as s,
        pytest.raises(ProviderError, match="code 401") as caught,
    ):
        TwelveDataProvider(base_url=s.base_url, client=client()).fetch("ISF")
    assert "TDSECRET77" not in str(caught.value) + repr(caught.value.context)


def test_twelvedata_fetch_without_a_key_fails_before_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWELVEDATA_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="TWELVEDATA_API_KEY"):
        TwelveDataProvider(base_url="http://127.0.0.1:9").fetch("ISF")


def test_twelvedata_fetch_of_an_html_page_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWELVEDATA_API_KEY", "k")
    with (
        ScriptedServer(
            {"/time_series": Reply(200, "<html>maintenance</html>", content_type="text/html")}
        ) as s,
        pytest.raises(ProviderError, match="not JSON") as caught,
    ):
        TwelveDataProvider(base_url=s.base_url, client=client()).fetch("ISF")
    assert not isinstance(caught.value, FileFormatError)


# --------------------------------------------------------------------------------------------
# Generic CSV
# --------------------------------------------------------------------------------------------
def test_csv_documented_examples() -> None:
    pounds = CsvPriceProvider().parse(
        "# VUSA on the LSE, closes in pounds\ndate,close,currency,quote_scale\n"
        "2024-01-02,76.12,GBP,GBP\n2024-01-03,75.40,GBP,GBP\n"
    )
    assert (pounds.currency, pounds.quote_scale, pounds.last.close) == ("GBP", "GBP", D("75.40"))
    pence = CsvPriceProvider().parse(
        "date,open,high,low,close,currency\n2024-01-02,612.0,619.4,608.2,613.6,GBp\n"
        "2024-01-03,613.6,615.0,601.0,605.0,GBp\n"
    )
    assert (pence.currency, pence.quote_scale) == ("GBP", "GBX")
    assert pence.first.high == D("619.4")


@pytest.mark.parametrize(
    ("currency", "scale", "expected"),
    [
        ("GBP", "GBX", ("GBP", "GBX")),
        ("GBX", "", ("GBP", "GBX")),
        ("", "GBX", ("GBP", "GBX")),
        ("", "GBp", ("GBP", "GBX")),
        ("USD", "", ("USD", "USD")),
        ("", "", (None, None)),
        ("GBp", "GBP", None),
        ("USD", "GBX", None),
        ("pounds", "", None),
    ],
)
def test_csv_currency_and_scale_rules(currency: str, scale: str, expected: tuple | None) -> None:
    body = f"date,close,currency,quote_scale\n2024-01-02,1,{currency},{scale}\n"
    if expected is None:
        with pytest.raises(FileFormatError, match="line 2"):
            CsvPriceProvider().parse(body)
    else:
        bar = CsvPriceProvider().parse(body).bars[0]
        assert (bar.currency, bar.quote_scale) == expected


def test_csv_header_problems_are_named() -> None:
    with pytest.raises(FileFormatError, match=r"unknown column\(s\) 'quote_sacle'"):
        CsvPriceProvider().parse("date,close,quote_sacle\n2024-01-02,1,GBX\n")
    with pytest.raises(FileFormatError, match=r"missing column\(s\) close"):
        CsvPriceProvider().parse("date,price\n2024-01-02,1\n")


def test_csv_timestamps_need_an_offset() -> None:
    ok = CsvPriceProvider().parse("Date,Close\n2024-01-02T16:35:00+00:00,1\n2024-01-02T16:36:00Z,2\n")
    assert [b.as_of.minute for b in ok.bars] == [35, 36]
    with pytest.raises(FileFormatError, match="no UTC offset"):
        CsvPriceProvider().parse("date,close\n2024-01-02T16:35:00,1\n")


def test_csv_mixed_currencies_leave_the_series_undeclared() -> None:
    series = CsvPriceProvider().parse("date,close,currency\n2024-01-02,1,GBP\n2024-01-03,100,GBp\n")
    assert series.currency == "GBP" and series.quote_scale is None


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.dates(min_value=date(1990, 1, 1), max_value=date(2026, 1, 1)),  # later is the future: refused
        st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-10, max_value=10**6),
        min_size=1,
        max_size=30,
    ),
    st.randoms(use_true_random=False),
)
def test_csv_round_trip_any_order(closes: dict[date, Decimal], rnd: object) -> None:
    rows = [f"{day.isoformat()},{close}" for day, close in closes.items()]
    rnd.shuffle(rows)  # type: ignore[attr-defined]
    series = CsvPriceProvider().parse("date,close\n" + "\n".join(rows) + "\n")
    assert [(b.as_of, b.close) for b in series.bars] == sorted(closes.items())
    assert all(str(b.close) == str(closes[b.as_of]) for b in series.bars)


# --------------------------------------------------------------------------------------------
# gsej JSON
# --------------------------------------------------------------------------------------------
GSEJ = {
    "AZN.L": (3116, "GBX"),
    "DLG.L": (2919, "GBX"),
    "GILS.L": (1092, "GBX"),
    "IDS.L": (2667, "GBX"),
    "MIDD.L": (3115, "GBX"),
    "NG.L": (3116, "GBX"),
    "SMT.L": (2357, "GBX"),
    "XASX.L": (3107, "GBX"),
    "IGLT.L": (3118, "GBP"),
    "VUCP.L": (1093, "GBP"),
    "VWRL.L": (3016, "GBP"),
    "VWRP.L": (1205, "GBP"),
}


@pytest.mark.parametrize("symbol", sorted(GSEJ))
def test_gsej_json_files(real_data: Path, symbol: str) -> None:
    series = parse_price_file("json", real_data / "gsej_investment_tracker" / "prices" / f"{symbol}.json")
    rows, scale = GSEJ[symbol]
    assert len(series) == rows and series.symbol == symbol
    assert (series.currency, series.quote_scale) == ("GBP", scale)
    assert ascending(series.bars)


def test_gsej_known_values(real_data: Path) -> None:
    prices = real_data / "gsej_investment_tracker" / "prices"
    vwrl = parse_price_file("json", prices / "VWRL.L.json")  # oldest first in the file
    assert vwrl.first.as_of == date(2012, 5, 22) and vwrl.last.as_of == date(2024, 4, 30)
    azn = parse_price_file("json", prices / "AZN.L.json")  # newest first in the file
    assert (azn.last.as_of, azn.last.close) == (date(2024, 5, 2), D("12138"))
    vwrp = parse_price_file("json", prices / "VWRP.L.json")
    assert vwrp.last.close == D("99.1900") and str(vwrp.last.close) == "99.1900"


def test_gsej_refuses_two_symbols_and_bad_items() -> None:
    body = json.dumps(
        [
            {"date": "2024-01-02", "price": "1", "stockSymbol": "A.L", "currency": "GBP"},
            {"date": "2024-01-03", "price": "1", "stockSymbol": "B.L", "currency": "GBP"},
            {"date": "02/01/2024", "price": "1", "stockSymbol": "A.L", "currency": "GBP"},
            {"date": "2024-01-05", "stockSymbol": "A.L"},
        ]
    )
    with pytest.raises(FileFormatError) as caught:
        JsonPriceProvider().parse(body, source_name="two.json")
    reasons = [why for _, why in caught.value.problems]
    assert any("item 2: date '02/01/2024'" in r for r in reasons)
    assert "item 3: no price" in reasons
    assert any("more than one stockSymbol" in r for r in reasons)


def test_gsej_not_an_array() -> None:
    with pytest.raises(FileFormatError, match="expected a JSON array"):
        JsonPriceProvider().parse('{"date": "2024-01-02"}')


def test_dates_and_timestamps_in_one_file_sort_by_instant() -> None:
    # A date sorts as its midnight UTC; 23:30 at UTC-5 on the 2nd is 04:30 UTC on the 3rd.
    series = CsvPriceProvider().parse("date,close\n2024-01-02T23:30:00-05:00,2\n2024-01-03,1\n")
    assert [b.close for b in series.bars] == [D("1"), D("2")]
