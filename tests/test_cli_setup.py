"""``tradeassist setup``: listings.csv read with every bad line named, AJ Bell exports paired and
put in date order, price files matched to their listings, and the commands run twice as a
person re-running the README's walkthrough would. (The walkthrough itself: test_readme.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tradeassist.cli.setup import _listing_for, _parse_ajbell, read_listings
from tradeassist.core.errors import FileFormatError, ValidationError

HEADER = "description,isin,ticker,exchange,currency,quote_scale,type,sleeve,provider,provider_symbol"
GILS = "Lyxor Core UK Govt Bd (DR) ETF D GBP,LU1407892592,GILS,XLON,GBP,GBX,ETF,GILTS,yahoo,GILS.L"
VUCP = "Vanguard USD Corp Bd UCITS ETF GBP,IE00BZ163K21,VUCP,XLON,GBP,GBP,ETF,BONDS,,"
SMT = "Scottish Mortgage Ord,GB00BLDYK618,SMT,xlon,GBP,GBX,STOCK,EQUITY,,"


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_listing_takes_one_row_per_description(tmp_path: Path) -> None:
    payer = "SCOTTISH MORTGAGE  INVESTMENT TRUST,,SMT,XLON,,,,,,"
    specs = read_listings(write(tmp_path / "listings.csv", HEADER, GILS, SMT, "", payer))
    assert [(s.name, s.line) for s in specs] == [("GILS on XLON", 2), ("SMT on XLON", 3)]
    smt = specs[1]
    assert smt.descriptions == ["Scottish Mortgage Ord", "SCOTTISH MORTGAGE  INVESTMENT TRUST"]
    assert (smt.get("isin"), smt.get("quote_scale"), smt.get("type"), smt.get("provider")) == (
        "GB00BLDYK618",
        "GBX",
        "STOCK",
        None,
    )


def test_every_bad_line_of_listings_csv_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match=r"line 1: unknown column\(s\) units; missing column\(s\) isin"):
        read_listings(
            write(tmp_path / "a.csv", "ticker,exchange,currency,quote_scale,units", "X,XLON,GBP,GBX,1")
        )
    bad = write(
        tmp_path / "b.csv",
        HEADER,
        GILS,
        ",LU1407892592,,XLON,GBP,GBX,ETF,GILTS,,",
        "Other words,LU1407892592,GILS,XLON,GBP,GBP,ETF,GILTS,,",
        "Fund,,ABC,XLON,GBP,,,,,",
    )
    with pytest.raises(FileFormatError) as info:
        read_listings(bad)
    assert info.value.problems == [
        (3, "ticker and exchange are required on every row"),
        (4, "GILS on XLON: quote_scale 'GBP', but 'GBX' on an earlier row"),
        (5, "ABC on XLON: no isin, quote_scale on any of its rows"),
    ]
    with pytest.raises(FileFormatError, match="has a header but no listings"):
        read_listings(write(tmp_path / "c.csv", HEADER, ""))


def test_price_files_are_matched_by_provider_symbol_else_ticker() -> None:
    rows = [
        {"ticker": "GILS", "exchange": "XLON", "provider_symbol": "GILS.L"},
        {"ticker": "VUCP", "exchange": "XLON", "provider_symbol": None},
        {"ticker": "VWRL", "exchange": "XLON", "provider_symbol": None},
        {"ticker": "VWRL", "exchange": "XAMS", "provider_symbol": None},
    ]
    assert _listing_for(Path("gils.l.json"), rows) is rows[0]
    assert _listing_for(Path("VUCP.L.json"), rows) is rows[1]
    assert _listing_for(Path("VUCP.csv"), rows) is rows[1]
    with pytest.raises(ValidationError, match=r"AZN\.L\.json: no listing has the provider symbol or ticker"):
        _listing_for(Path("AZN.L.json"), rows)
    with pytest.raises(ValidationError, match=r"2 listings \(VWRL on XLON, VWRL on XAMS\) have"):
        _listing_for(Path("VWRL.L.json"), rows)


def _samples(real_data: Path, tmp_path: Path, **names: str) -> list[Path]:
    folder = real_data / "gsej_investment_tracker" / "ajbell"
    return [
        Path(shutil.copy(folder / f"{source}.csv", tmp_path / f"{name}.csv"))
        for name, source in names.items()
    ]


def test_exports_are_paired_by_name_and_imported_oldest_first(real_data: Path, tmp_path: Path) -> None:
    mapping = {
        "Lyxor Core UK Govt Bd (DR) ETF D GBP": ("GILS", "XLON"),
        "Vanguard USD Corp Bd UCITS ETF GBP": ("VUCP", "XLON"),
        "Scottish Mortgage Ord": ("SMT", "XLON"),
    }
    files = _samples(
        real_data,
        tmp_path,
        **{
            "2023 CashStatement": "ISA-2023-cashstatements",
            "2022 cash_statements": "ISA-2022-cashstatements",
            "2023 TransactionHistory": "ISA-2023-transactionhistory",
            "2022 transaction-history": "ISA-2022-transactionhistory",
        },
    )
    parsed = _parse_ajbell(files, mapping)
    names = sorted((p.entries[0].entry_time, p.name) for p in parsed)
    assert [n for _, n in names] == [
        "2022 transaction-history.csv + 2022 cash_statements.csv",
        "2023 TransactionHistory.csv + 2023 CashStatement.csv",
    ]
    # one of each kind pairs whatever the names
    (one,) = _parse_ajbell([files[2], tmp_path / "2023 CashStatement.csv"], mapping)
    assert len(one.entries) == 55
    # a history and a statement imported apart would each post the trades: unpaired is refused
    odd = _samples(real_data, tmp_path, a="ISA-2022-transactionhistory", b="ISA-2023-transactionhistory")
    with pytest.raises(
        ValidationError, match=r"^a\.csv, b\.csv, 2023 CashStatement\.csv, 2022 cash_statements\.csv: "
    ):
        _parse_ajbell([*odd, files[0], files[1]], mapping)
    # only histories (or only statements): each is its own batch
    assert [p.name for p in _parse_ajbell(odd, mapping)] == ["a.csv", "b.csv"]
    # every description no listing names, from every file, in one error
    with pytest.raises(ValidationError) as info:
        _parse_ajbell(files, {"Scottish Mortgage Ord": ("SMT", "XLON")})
    assert str(info.value).startswith(
        "no listing has the description(s) 'Lyxor Core UK Govt Bd (DR) ETF D GBP', "
        "'Vanguard USD Corp Bd UCITS ETF GBP': add a row for each"
    )


def test_setup_listings_twice_adds_once_and_a_changed_listing_is_refused(
    sqlite_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env |= {"TRADEASSIST_HOME": str(tmp_path / "home"), "TRADEASSIST_DB_URL": sqlite_url}

    def setup_listings(path: Path) -> subprocess.CompletedProcess[str]:
        return run_cli(["setup", "listings", str(path)], env)

    listings = write(tmp_path / "listings.csv", HEADER, GILS, VUCP)
    first = setup_listings(listings)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "listing added: GILS on XLON (GBX), instrument LU1407892592 added",
        "listing added: VUCP on XLON (GBP), instrument IE00BZ163K21 added",
    ]
    again = setup_listings(write(tmp_path / "more.csv", HEADER, GILS, VUCP, SMT))
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        "GILS on XLON: registered already",
        "VUCP on XLON: registered already",
        "listing added: SMT on XLON (GBX), instrument GB00BLDYK618 added",
    ]
    changed = setup_listings(write(tmp_path / "changed.csv", HEADER, GILS.replace(",GBX,", ",GBP,")))
    assert changed.returncode != 0 and changed.stdout == ""
    assert changed.stderr.strip() == (
        "error: line 2: GILS on XLON is registered already with quote_scale GBX, not GBP "
        "(a listing never changes: fix the file)"
    )
