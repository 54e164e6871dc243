"""Prices checked against your own trades, replaceable, amendable listings, one price per day
(issue #17, items 2 to 5), through the CLI on both backends.

* A first price file in the wrong unit is flagged against the book's trade of the listing (the
  XMUK case: pounds for a pence listing, with a BUY at 296.6p); on corruptions of the first 1 to
  10 rows of real series, every corrupted point and no other is flagged (precision and recall
  1, where they were 0). A pence file into a listing declared in pounds is flagged too, and the
  message says the quote unit may be wrong. With no trade the first level is accepted and the
  import says it is unverified.
* ``prices import --replace --reason`` supersedes stored points (append-only, audited); the
  later points flagged against the wrong level are checked again, the alert is resolved and the
  freeze ended; the counters count what was read.
* ``listing set`` amends provider, provider symbol, primary flag and source priority (audited);
  the identity columns stay immutable in the database.
* Three usable closes of VWRP on one day: the configured provider values the portfolio, the
  others disagreeing by more than 2 % raise one WARN alert, and ``prices list`` marks the close
  that values the portfolio.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.support.cli import admin_cli
from tradeassist.db.engine import create_db_engine

Cli = Callable[..., tuple[int, str, str]]
D = Decimal
STAN_ISIN = "GB0004082847"
GSK_ISIN = "GB00BN7SWP63"
VWRP_ISIN = "IE00BK5BQT80"


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``tradeassist --db URL ARGS...`` in this process: (exit code, stdout, stderr)."""
    return admin_cli(db_url, capsys)


def ok(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 0, err
    return out + err


def fails(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code != 0, out
    assert "Traceback" not in err
    return err


def listing(cli: Cli, isin: str, ticker: str, scale: str, *extra: str) -> None:
    ok(cli("instrument", "add", "--isin", isin, "--type", "ETF"))
    ok(cli("listing", "add", "--isin", isin, "--ticker", ticker, "--exchange", "XLON", "--currency", "GBP",
           "--quote-scale", scale, *extra))  # fmt: skip


def bought(cli: Cli, ticker: str, day: str, price: str, units: str = "10") -> None:
    """A GIA holding the listing, bought at ``price`` (in its quote unit) on ``day``."""
    _code, out, _ = cli("portfolio", "list", "--json")
    if "GIA" not in out:
        ok(cli("portfolio", "add", "GIA", "--broker", "AJBell", "--tax-treatment", "GIA"))
        ok(cli("ledger", "add", "--portfolio", "GIA", "--type", "CONTRIBUTION", "--amount", "100000",
               "--time", "2020-01-02"))  # fmt: skip
    ok(cli("ledger", "add", "--portfolio", "GIA", "--type", "BUY", "--ticker", ticker, "--exchange", "XLON",
           "--units", units, "--price", price, "--time", day))  # fmt: skip


def held(cli: Cli, portfolio: str, ticker: str) -> None:
    """A portfolio holding the listing by an in-specie transfer: no trade price in the book."""
    ok(cli("portfolio", "add", portfolio, "--broker", "AJBell", "--tax-treatment", portfolio))
    ok(cli("ledger", "add", "--portfolio", portfolio, "--type", "TRANSFER", "--ticker", ticker,
           "--exchange", "XLON", "--units", "10", "--cost", "500", "--time", "2020-01-02"))  # fmt: skip


def stooq_file(tmp_path: Path, real_data: Path, rows: int, *, wrong: range, factor: D, name: str) -> Path:
    """The last ``rows`` days of the real STAN series (pence) with the ``wrong`` rows × ``factor``."""
    lines = (real_data / "stooq" / "stan_uk_d.csv").read_text().splitlines()
    out = [lines[0]]
    for i, line in enumerate(lines[-rows:]):
        cells = line.split(",")
        if i in wrong:
            cells[4] = format(D(cells[4]) * factor, "f")
        out.append(",".join(cells))
    path = tmp_path / name
    path.write_text("\n".join(out) + "\n")
    return path


def stan_rows(real_data: Path, rows: int) -> list[list[str]]:
    return [
        line.split(",") for line in (real_data / "stooq" / "stan_uk_d.csv").read_text().splitlines()[-rows:]
    ]


def prices_of(cli: Cli, ticker: str, *extra: str) -> list[dict]:
    return json.loads(ok(cli("prices", "list", "--ticker", ticker, "--exchange", "XLON", "--json", *extra)))


def import_prices(cli: Cli, path: Path, ticker: str, *extra: str) -> tuple[int, str, str]:
    return cli(
        "prices", "import", str(path), "--ticker", ticker, "--exchange", "XLON", "--format", "stooq", *extra
    )


# --------------------------------------------------------------------------------------------
# Item 2: the first level is checked against your own trades
# --------------------------------------------------------------------------------------------
def test_a_first_file_in_pounds_is_flagged_against_your_own_trade(
    cli: Cli, real_data: Path, tmp_path: Path
) -> None:
    listing(cli, STAN_ISIN, "STAN", "GBX")
    first = stan_rows(real_data, 40)[0]
    bought(cli, "STAN", first[0], first[4])  # bought at the day's close, in pence
    path = stooq_file(tmp_path, real_data, 40, wrong=range(3), factor=D("0.01"), name="stan.csv")
    out = ok(import_prices(cli, path, "STAN"))
    assert "40 prices read, 40 new" in out
    assert "your own trade on" in out and "quote unit (GBX)" in out
    rows = prices_of(cli, "STAN")
    flagged = [i for i, r in enumerate(rows) if "scale_suspect" in r["quality_flags"]]
    assert flagged == [0, 1, 2]  # before: [3, ..., 39] (the pounds became the level)
    # A re-check (after a split, an accepted level, a replacement) starts from the trade too.
    ok(cli("prices", "recheck", "--ticker", "STAN", "--exchange", "XLON", "--from", rows[0]["as_of"]))
    again = [i for i, r in enumerate(prices_of(cli, "STAN")) if "scale_suspect" in r["quality_flags"]]
    assert again == [0, 1, 2]
    latest = json.loads(
        ok(cli("prices", "latest", "--portfolio", "GIA", "--json", "--as-of", rows[-1]["as_of"]))
    )
    assert D(latest[0]["price_gbp"]) == D(stan_rows(real_data, 40)[-1][4]) / 100


@pytest.mark.parametrize("factor", [D("0.01"), D("100")])
def test_first_rows_in_the_wrong_unit_are_found_exactly_on_real_series(
    cli: Cli, real_data: Path, tmp_path: Path, factor: D
) -> None:
    """The issue's measure: first 1-10 rows ×100 or ÷100, with a trade to anchor the level."""
    listing(cli, STAN_ISIN, "STAN", "GBX")
    start = stan_rows(real_data, 260)[0]
    bought(cli, "STAN", start[0], start[4])
    true_positive = false_positive = false_negative = 0
    for k in range(1, 11):
        # Each file is a fresh stretch of days for a fresh check from the trade's level.
        ok(cli("listing", "add", "--isin", STAN_ISIN, "--ticker", f"ST{k}", "--exchange", "XLON",
               "--currency", "GBP", "--quote-scale", "GBX"))  # fmt: skip
        bought(cli, f"ST{k}", start[0], start[4], units="1")
        path = stooq_file(tmp_path, real_data, 250, wrong=range(k), factor=factor, name=f"st{k}.csv")
        ok(import_prices(cli, path, f"ST{k}"))
        flagged = {i for i, r in enumerate(prices_of(cli, f"ST{k}")) if "scale_suspect" in r["quality_flags"]}
        true_positive += len(flagged & set(range(k)))
        false_positive += len(flagged - set(range(k)))
        false_negative += k - len(flagged & set(range(k)))
    assert (true_positive, false_positive, false_negative) == (55, 0, 0)  # precision 1, recall 1


def test_a_trade_years_away_does_not_judge_the_first_prices(
    cli: Cli, real_data: Path, tmp_path: Path
) -> None:
    """A price may move twentyfold in years: only a trade near the first price anchors it."""
    listing(cli, STAN_ISIN, "STAN", "GBX")
    bought(cli, "STAN", "2021-06-01", format(D(stan_rows(real_data, 30)[0][4]) * 25, "f"))
    path = stooq_file(tmp_path, real_data, 30, wrong=range(0), factor=D(1), name="stan.csv")
    out = ok(import_prices(cli, path, "STAN"))
    assert "level is unverified" in out and "CRITICAL" not in out
    assert not any(r["quality_flags"] for r in prices_of(cli, "STAN"))


def test_a_pence_file_into_a_listing_declared_in_pounds_is_reported(
    cli: Cli, real_data: Path, tmp_path: Path
) -> None:
    listing(cli, GSK_ISIN, "GSK", "GBP")
    first = stan_rows(real_data, 20)[0]
    bought(cli, "GSK", first[0], format(D(first[4]) / 100, "f"))  # the trade in pounds, as declared
    path = stooq_file(tmp_path, real_data, 20, wrong=range(0), factor=D(1), name="gsk.csv")  # pence
    out = ok(import_prices(cli, path, "GSK"))
    assert "CRITICAL" in out and "quote unit (GBP) is wrong" in out
    assert all("scale_suspect" in r["quality_flags"] for r in prices_of(cli, "GSK"))


def test_with_no_trade_the_first_level_is_accepted_but_said_to_be_unverified(
    cli: Cli, real_data: Path, tmp_path: Path
) -> None:
    listing(cli, STAN_ISIN, "STAN", "GBX")
    path = stooq_file(tmp_path, real_data, 30, wrong=range(3), factor=D("0.01"), name="stan.csv")
    out = ok(import_prices(cli, path, "STAN"))
    assert "level is unverified" in out and "--replace --reason" in out
    flagged = [i for i, r in enumerate(prices_of(cli, "STAN")) if "scale_suspect" in r["quality_flags"]]
    assert flagged == list(range(3, 30))


# --------------------------------------------------------------------------------------------
# Item 3: bad prices are replaceable
# --------------------------------------------------------------------------------------------
def test_wrong_first_prices_are_replaced_and_what_they_caused_is_ended(
    cli: Cli, db_url: str, real_data: Path, tmp_path: Path
) -> None:
    listing(cli, STAN_ISIN, "STAN", "GBX")
    held(cli, "SIPP", "STAN")
    wrong = stooq_file(tmp_path, real_data, 30, wrong=range(3), factor=D("0.01"), name="wrong.csv")
    out = ok(import_prices(cli, wrong, "STAN"))
    assert "1 portfolio(s) frozen" in out
    assert json.loads(ok(cli("freeze", "status", "--portfolio", "SIPP", "--json")))["is_frozen"] is True

    # A person's own freeze on top of the price alert's is theirs: the replacement leaves it.
    ok(cli("freeze", "set", "--portfolio", "SIPP", "--reason", "checking with the broker"))
    right = stooq_file(tmp_path, real_data, 3, wrong=range(0), factor=D(1), name="right.csv")
    right.write_text("\n".join(stooq_file(tmp_path, real_data, 30, wrong=range(0), factor=D(1),
                                          name="all.csv").read_text().splitlines()[:4]) + "\n")  # fmt: skip
    kept = ok(import_prices(cli, right, "STAN"))
    assert "3 prices read, 0 new, 0 already stored" in kept  # before: "0 prices read"
    assert "the stored price is kept" in kept and "--replace --reason" in kept
    assert "--reason" in fails(import_prices(cli, right, "STAN", "--replace"))

    replaced = ok(import_prices(cli, right, "STAN", "--replace", "--reason", "the feed sent pounds"))
    assert "3 prices read, 0 new, 3 replaced, 0 already stored" in replaced
    assert "1 alert(s) resolved" in replaced and "no longer frozen" not in replaced
    status = json.loads(ok(cli("freeze", "status", "--portfolio", "SIPP", "--json")))
    assert (status["is_frozen"], status["reason_code"]) == (True, "MANUAL")
    ok(cli("freeze", "clear", "--portfolio", "SIPP", "--reason", "the broker confirmed"))
    rows = prices_of(cli, "STAN")
    assert len(rows) == 30 and all(r["usable"] and r["quality_flags"] == [] for r in rows)
    assert [r["revision"] for r in rows[:4]] == [1, 1, 1, 0]
    every = prices_of(cli, "STAN", "--all")
    superseded = [r for r in every if r["superseded_by"] is not None]
    assert len(every) == 33 and len(superseded) == 3
    assert {r["as_of"] for r in superseded} == {r["as_of"] for r in rows[:3]}
    assert all(D(r["raw_price"]) < 20 for r in superseded)  # the pounds, kept, never changed
    assert json.loads(ok(cli("freeze", "status", "--portfolio", "SIPP", "--json")))["is_frozen"] is False
    again = ok(import_prices(cli, right, "STAN", "--replace", "--reason", "again"))
    assert "3 prices read, 0 new, 3 already stored" in again  # nothing to replace twice

    engine = create_db_engine(db_url)
    try:
        with engine.connect() as conn:
            reason = conn.execute(
                text("SELECT details FROM audit_events WHERE action = 'PRICES_REPLACED'")
            ).scalar_one()
            assert "the feed sent pounds" in json.dumps(reason)
            with pytest.raises(DBAPIError, match="append-only"):
                conn.execute(text("DELETE FROM price_supersessions"))
            conn.rollback()
            with pytest.raises(DBAPIError, match="append-only"):
                conn.execute(text("UPDATE price_points SET raw_price = '1'"))
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# Item 4: listings can be amended
# --------------------------------------------------------------------------------------------
def test_a_listing_gets_a_provider_later_and_its_identity_stays_fixed(cli: Cli, db_url: str) -> None:
    listing(cli, VWRP_ISIN, "VWRP", "GBP")
    ok(cli("listing", "add", "--isin", VWRP_ISIN, "--ticker", "VWRA", "--exchange", "XLON",
           "--currency", "USD", "--quote-scale", "USD", "--primary"))  # fmt: skip
    out = ok(cli("listing", "set", "--ticker", "VWRP", "--exchange", "XLON", "--provider", "stooq",
                 "--provider-symbol", "VWRP.UK", "--primary"))  # fmt: skip
    assert "price provider (none) -> stooq" in out and "VWRA:XLON no longer primary" in out
    rows = {r["ticker"]: r for r in json.loads(ok(cli("listing", "list", "--json")))}
    assert (rows["VWRP"]["price_provider"], rows["VWRP"]["provider_symbol"]) == ("stooq", "VWRP.UK")
    assert ok(
        cli("listing", "set", "--ticker", "VWRP", "--exchange", "XLON", "--provider", "stooq")
    ).endswith("nothing to change\n")
    assert "yahooo" in fails(
        cli("listing", "set", "--ticker", "VWRP", "--exchange", "XLON", "--provider", "yahooo")
    )
    assert "unknown source(s) stoq" in fails(
        cli("listing", "set", "--ticker", "VWRP", "--exchange", "XLON", "--source-priority", "stoq,yahoo")
    )
    ok(cli("listing", "set", "--ticker", "VWRP", "--exchange", "XLON", "--source-priority", "yahoo,csv"))
    cleared = ok(cli("listing", "set", "--ticker", "VWRP", "--exchange", "XLON", "--source-priority", "none"))
    assert "source priority yahoo,csv -> (none)" in cleared
    engine = create_db_engine(db_url)
    try:
        with engine.connect() as conn:
            changes = conn.execute(
                text(
                    "SELECT details FROM audit_events "
                    "WHERE action = 'LISTING_AMENDED' ORDER BY audit_event_id"
                )
            ).scalars()
            assert "VWRP.UK" in json.dumps(list(changes))
            with pytest.raises(DBAPIError, match="append-only"):
                conn.execute(text("UPDATE instrument_listings SET quote_scale = 'GBX' WHERE ticker = 'VWRP'"))
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# Item 5: one price per listing and day
# --------------------------------------------------------------------------------------------
def test_three_sources_on_one_day_one_values_the_portfolio_and_the_gap_is_an_alert(
    cli: Cli, tmp_path: Path
) -> None:
    listing(cli, VWRP_ISIN, "VWRP", "GBP", "--provider", "stooq")
    held(cli, "ISA", "VWRP")
    header = "Date,Open,High,Low,Close,Volume\n"
    for name, close in (("stooq", "99.19"), ("csv", "91.83"), ("yahoo", "99.19000244140625")):
        path = tmp_path / f"{name}.csv"
        if name == "stooq":
            path.write_text(header + f"2024-04-29,99,99,99,98.90,1\n2024-04-30,99,99,99,{close},1\n")
        elif name == "yahoo":
            path.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n"
                            f"2024-04-30,99,99,99,{close},{close},1\n")  # fmt: skip
        else:
            path.write_text(f"date,close\n2024-04-30,{close}\n")
        ok(cli("prices", "import", str(path), "--ticker", "VWRP", "--exchange", "XLON", "--format", name))
    alerts = json.loads(ok(cli("alerts", "--json")))
    disagree = [a for a in alerts if a["code"] == "PRICE_SOURCES_DISAGREE"]
    assert len(disagree) == 1 and disagree[0]["severity"] == "WARN"  # one alert, not one per import
    assert "stooq says £99.19 and values the portfolio" in disagree[0]["message"]
    assert "csv £91.83" in disagree[0]["message"]
    day = [r for r in prices_of(cli, "VWRP") if r["as_of"] == "2024-04-30"]
    assert sorted(r["source"] for r in day) == ["csv", "stooq", "yahoo"]
    assert [r["source"] for r in day if r["values_portfolio"]] == ["stooq"]
    latest = json.loads(ok(cli("prices", "latest", "--portfolio", "ISA", "--json", "--as-of", "30/04/2024")))
    assert (latest[0]["price_gbp"], latest[0]["source"]) == ("99.19", "stooq")
    assert json.loads(ok(cli("freeze", "status", "--portfolio", "ISA", "--json")))["is_frozen"] is False

    ok(cli("listing", "set", "--ticker", "VWRP", "--exchange", "XLON", "--source-priority", "csv,stooq"))
    latest = json.loads(ok(cli("prices", "latest", "--portfolio", "ISA", "--json", "--as-of", "2024-04-30")))
    assert (latest[0]["price_gbp"], latest[0]["source"]) == ("91.83", "csv")
    day = [r for r in prices_of(cli, "VWRP") if r["as_of"] == "2024-04-30"]
    assert [r["source"] for r in day if r["values_portfolio"]] == ["csv"]

    # The wrong close replaced, the sources agree again: the alert ends by itself.
    fixed = tmp_path / "csv-fixed.csv"
    fixed.write_text("date,close\n2024-04-30,99.19\n")
    replace = ["--replace", "--reason", "the csv close was another fund's"]
    ok(
        cli(
            "prices",
            "import",
            str(fixed),
            "--ticker",
            "VWRP",
            "--exchange",
            "XLON",
            "--format",
            "csv",
            *replace,
        )
    )
    settled = [a for a in json.loads(ok(cli("alerts", "--json"))) if a["code"] == "PRICE_SOURCES_DISAGREE"]
    assert [a["alert_id"] for a in settled] == [disagree[0]["alert_id"]]
    assert settled[0]["resolved_at"] is not None
