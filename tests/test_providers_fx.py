"""ECB reference rates: the real history and daily files, GBP crosses checked by hand, fetch."""

from __future__ import annotations

import dataclasses
import io
import zipfile
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from tests.support.http_server import Reply, ScriptedServer, fast_policy
from tradeassist.core.errors import ConfigError, FileFormatError, ProviderError
from tradeassist.providers.fx import (
    CROSS_PRECISION,
    EcbFxProvider,
    FxProvider,
    FxRate,
    fx_provider_names,
    gbp_crosses,
    get_fx_provider,
    parse_ecb_csv,
)
from tradeassist.providers.http import HttpClient

D = Decimal


@pytest.fixture(scope="module")
def history(real_data: Path) -> tuple[FxRate, ...]:
    return parse_ecb_csv((real_data / "ecb" / "eurofxref-hist.csv").read_bytes(), source_name="hist")


def zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def test_registry() -> None:
    assert fx_provider_names() == ("ecb",)
    provider = get_fx_provider("ecb", base_url="http://127.0.0.1:1")
    assert isinstance(provider, EcbFxProvider) and isinstance(provider, FxProvider)
    with pytest.raises(ConfigError, match="unknown FX provider"):
        get_fx_provider("oanda")


def test_history_file(history: tuple[FxRate, ...]) -> None:
    days = sorted({r.as_of for r in history})
    assert len(days) == 6983 and days[0] == date(1999, 1, 4) and days[-1] == date(2026, 4, 13)
    assert history == tuple(sorted(history, key=lambda r: (r.as_of, r.quote_currency)))
    latest = {r.quote_currency: r.rate for r in history if r.as_of == date(2026, 4, 13)}
    assert latest["USD"] == D("1.1684") and latest["GBP"] == D("0.87058") and latest["JPY"] == D("186.75")
    assert "BGN" not in latest and "CYP" not in latest  # N/A is left out, not zero
    assert {r.base_currency for r in history} == {"EUR"}
    bgn = [r for r in history if r.quote_currency == "BGN"]
    assert bgn[-1].as_of == date(2025, 12, 31)
    first_day = {r.quote_currency: r.rate for r in history if r.as_of == date(1999, 1, 4)}
    assert first_day["GBP"] == D("0.7111") and first_day["USD"] == D("1.1789")


def test_daily_file_with_spaced_separators_and_a_written_date(real_data: Path) -> None:
    rates = parse_ecb_csv((real_data / "ecb" / "eurofxref.csv").read_bytes())
    assert {r.as_of for r in rates} == {date(2026, 4, 13)}
    by_code = {r.quote_currency: r.rate for r in rates}
    assert len(by_code) == 29
    assert by_code["USD"] == D("1.1684") and by_code["GBP"] == D("0.87058") and by_code["HUF"] == D("366.90")


def test_gbpusd_on_a_known_date_matches_the_hand_computation(history: tuple[FxRate, ...]) -> None:
    crosses = gbp_crosses(history, quotes={"USD", "EUR"})
    on_day = {r.quote_currency: r for r in crosses if r.as_of == date(2026, 4, 13)}
    # By hand: 1.1684 / 0.87058 = 1.342093776562751...; 12 significant digits, half even.
    assert on_day["USD"] == FxRate(date(2026, 4, 13), "GBP", "USD", D("1.34209377656"), "ecb")
    # 1 / 0.87058 = 1.148659514346757...
    assert on_day["EUR"].rate == D("1.14865951435")
    exact = Fraction("1.1684") / Fraction("0.87058")
    assert abs(Fraction(on_day["USD"].rate) - exact) <= Fraction(1, 10**11) / 2
    assert len(on_day["USD"].rate.as_tuple().digits) == CROSS_PRECISION
    first = {r.quote_currency: r.rate for r in crosses if r.as_of == date(1999, 1, 4)}
    assert first["USD"] == D("1.65785402897")  # 1.1789 / 0.7111 = 1.657854028969...


def test_crosses_cover_every_currency_and_only_gbp_based(history: tuple[FxRate, ...]) -> None:
    crosses = gbp_crosses([r for r in history if r.as_of == date(2026, 4, 13)])
    codes = {r.quote_currency for r in crosses}
    assert "GBP" not in codes and {"EUR", "USD", "JPY", "CHF", "ZAR"} <= codes
    assert all(r.base_currency == "GBP" for r in crosses)
    assert len(codes) == 29  # 29 published that day: 28 besides GBP, plus EUR


def test_days_without_gbp_give_no_crosses() -> None:
    rates = parse_ecb_csv("Date,USD,GBP,\n2024-01-03,1.09,N/A,\n2024-01-02,1.1,0.86,\n")
    assert {r.as_of for r in gbp_crosses(rates)} == {date(2024, 1, 2)}


def test_crosses_refuse_non_eur_bases() -> None:
    with pytest.raises(ValueError, match="EUR-based"):
        gbp_crosses([FxRate(date(2024, 1, 2), "GBP", "USD", D("1.27"))])


def test_values_are_frozen() -> None:
    rate = FxRate(date(2024, 1, 2), "EUR", "GBP", D("0.86"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        rate.rate = D("1")  # type: ignore[misc]


def test_bad_lines_are_collected_with_line_numbers() -> None:
    body = (
        "\ufeffDate,USD,GBP,\n"
        "2024-01-04,1.09,0.86,\n"
        "2024-01-03,abc,0.86,\n"  # line 3
        "2024-01-04,1.09,0.86,\n"  # line 4: duplicate
        "2024-01-02,0,0.86,\n"  # line 5: zero rate
        "yesterday,1.1,0.86,\n"  # line 6
        "2024-01-01,1.1,\n"  # line 7: a field short
    )
    with pytest.raises(FileFormatError) as caught:
        parse_ecb_csv(body.encode(), source_name="rates.csv")
    assert caught.value.file == "rates.csv"
    assert [line for line, _ in caught.value.problems] == [3, 4, 5, 6, 7]
    reasons = dict(caught.value.problems)
    assert "USD 'abc' is not a number" in reasons[3]
    assert "duplicate date 2024-01-04 (also on line 2)" in reasons[4]
    assert "not positive" in reasons[5]


def test_not_an_ecb_file() -> None:
    with pytest.raises(FileFormatError, match="not an ECB reference rate CSV"):
        parse_ecb_csv("<html>Service unavailable</html>")


def test_parse_accepts_the_zip_archive(real_data: Path) -> None:
    data = zipped("eurofxref.csv", (real_data / "ecb" / "eurofxref.csv").read_bytes())
    assert len(EcbFxProvider().parse(data)) == 29


def test_fetch_history_zip_from_a_local_server(real_data: Path) -> None:
    body = zipped("eurofxref-hist.csv", (real_data / "ecb" / "eurofxref-hist.csv").read_bytes())
    routes = {"/stats/eurofxref/eurofxref-hist.zip": Reply(200, body, content_type="application/zip")}
    with ScriptedServer(routes) as server:
        provider = EcbFxProvider(base_url=server.base_url, client=HttpClient(fast_policy()))
        rates = provider.fetch(start=date(2026, 4, 10), end=date(2026, 4, 13))
    assert {r.as_of for r in rates} == {date(2026, 4, 10), date(2026, 4, 13)}
    usd = [r for r in gbp_crosses(rates, quotes=["USD"]) if r.as_of == date(2026, 4, 10)]
    assert usd[0].rate == D("1.34446931864")  # 1.1711 / 0.87105 = 1.344469318638...


def test_fetch_latest_daily_zip(real_data: Path) -> None:
    body = zipped("eurofxref.csv", (real_data / "ecb" / "eurofxref.csv").read_bytes())
    with ScriptedServer({"/stats/eurofxref/eurofxref.zip": Reply(200, body)}) as server:
        rates = EcbFxProvider(base_url=server.base_url, client=HttpClient(fast_policy())).fetch(
            latest_only=True
        )
    assert {r.as_of for r in rates} == {date(2026, 4, 13)}


@pytest.mark.parametrize(
    "body",
    [b"<html><body>Maintenance</body></html>", b"PK\x03\x04not really a zip", zipped("readme.txt", b"x")],
)
def test_fetch_of_something_else_with_http_200_is_a_provider_error(body: bytes) -> None:
    routes = {"/stats/eurofxref/eurofxref-hist.zip": Reply(200, body, content_type="text/html")}
    with (
        ScriptedServer(routes) as server,
        pytest.raises(ProviderError, match="not reference rate data") as caught,
    ):
        EcbFxProvider(base_url=server.base_url, client=HttpClient(fast_policy())).fetch()
    assert not isinstance(caught.value, FileFormatError)


def test_fetch_server_errors_are_retried_then_fail() -> None:
    routes = {"/stats/eurofxref/eurofxref-hist.zip": Reply(502, "bad gateway")}
    with ScriptedServer(routes) as server:
        with pytest.raises(ProviderError, match="HTTP 502"):
            EcbFxProvider(base_url=server.base_url, client=HttpClient(fast_policy(max_attempts=2))).fetch()
        assert server.hits("/stats/eurofxref/eurofxref-hist.zip") == 2
