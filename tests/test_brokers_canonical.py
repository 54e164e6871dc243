from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tradeassist.core.enums import EntryType
from tradeassist.core.errors import FileFormatError
from tradeassist.core.money import round_cash
from tradeassist.providers.brokers import canonical, get_broker_format
from tradeassist.providers.brokers.base import NamedBytes
from tradeassist.providers.brokers.canonical import HEADER, parse_canonical

HEAD = ",".join(HEADER)


def write(tmp_path: Path, body: str, name: str = "ledger.csv", *, bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + body.encode("utf-8"))
    return path


def test_happy_path_values_and_time_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"{HEAD}\r\n"
        '2024-01-02,CONTRIBUTION,,,,,,"1,000.00",c1,first money in\r\n'
        "2024-01-03T10:15:00,BUY,vwrp,lse,10,112.34,1.50,-1124.90,b1,\r\n"
        "2024-01-04T09:00:00+01:00,SELL,ISF,LSE,5,812.5,0,£40.62,s1,\r\n"
        "2024-01-05T00:00:00Z,FEE,,,,,0.72,-0.72,f1,custody\r\n"
        "2024-01-06,TRANSFER,VWRP,LSE,-2,,,0,t1,in specie out\r\n"
        "2024-01-07,interest,,,,,,0.23,,\r\n",
        bom=True,
    )
    parsed = parse_canonical(path)
    assert parsed.format == "canonical" and parsed.name == "ledger.csv"
    contribution, buy, sell, fee, transfer, interest = parsed.entries
    assert contribution.entry_time == datetime(2024, 1, 2, tzinfo=UTC)  # a date: midnight UTC
    assert contribution.cash_amount_base == Decimal("1000.00")  # thousands separator
    assert contribution.notes == "first money in" and contribution.line == 2
    assert buy.entry_time == datetime(2024, 1, 3, 10, 15, tzinfo=UTC)  # naive: UTC
    assert (buy.ticker, buy.exchange, buy.units, buy.price) == ("VWRP", "LSE", Decimal(10), Decimal("112.34"))
    assert (buy.fees_base, buy.cash_amount_base) == (Decimal("1.50"), Decimal("-1124.90"))
    assert buy.external_ref == "b1"
    assert buy.price_currency is None  # the listing's own scale
    assert sell.entry_time == datetime(2024, 1, 4, 8, 0, tzinfo=UTC)  # offset honoured
    assert sell.cash_amount_base == Decimal("40.62")  # £ sign accepted
    assert fee.entry_type is EntryType.FEE
    assert (fee.fees_base, fee.cash_amount_base) == (Decimal("0.72"), Decimal("-0.72"))
    assert (transfer.entry_type, transfer.units, transfer.price) == (EntryType.TRANSFER, Decimal(-2), None)
    assert interest.entry_type is EntryType.INTEREST and interest.ticker is None
    assert interest.external_ref.startswith("h-")  # no reference given: a content hash
    for entry in parsed.entries:
        assert entry.entry_time.tzinfo is UTC and isinstance(entry.units, Decimal | None)
    assert parsed.content_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert parsed.sources[0].sha256 == parsed.content_sha256 and parsed.balances == ()


def test_newest_first_files_come_back_oldest_first_with_their_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"{HEAD}\n"
        "2024-03-01,WITHDRAWAL,,,,,,-5,w,\n"
        "2024-02-01,INTEREST,,,,,,1,i2,\n"
        "2024-02-01,INTEREST,,,,,,2,i1,\n"
        "2024-01-01,CONTRIBUTION,,,,,,100,c,\n",
    )
    entries = parse_canonical(path).entries
    assert [e.external_ref for e in entries] == ["c", "i1", "i2", "w"]
    assert [e.line for e in entries] == [5, 4, 3, 2]


def test_unordered_files_are_sorted_stably(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"{HEAD}\n"
        "2024-02-01,INTEREST,,,,,,1,a,\n"
        "2024-01-01,CONTRIBUTION,,,,,,100,b,\n"
        "2024-02-01,INTEREST,,,,,,2,c,\n",
    )
    assert [e.external_ref for e in parse_canonical(path).entries] == ["b", "a", "c"]


def test_every_bad_line_is_reported_at_once(tmp_path: Path) -> None:
    rows = [
        "2024-01-01,CONTRIBUTION,,,,,,100,ok1,",  # 2
        "yesterday,CONTRIBUTION,,,,,,100,x3,",  # 3
        "2024-01-01,DEPOSIT,,,,,,100,x4,",  # 4
        "2024-01-01,BUY,VWRP,LSE,ten,100,0,-1000,x5,",  # 5
        "2024-01-01,BUY,VWRP,LSE,10,100,0,1000,x6,",  # 6: a BUY that brings cash in
        "2024-01-01,FEE,,,,,1.50,-1.00,x7,",  # 7
        "2024-01-01,CONTRIBUTION,,LSE,,,,100,x8,",  # 8
        "2024-01-01,CONTRIBUTION,,,,,,NaN,x9,",  # 9
        "2024-01-01,CONTRIBUTION,,,,,,100,ok1,",  # 10: repeats line 2's reference
        "2024-01-01,CONTRIBUTION,,,,",  # 11
        "2024-01-01,BUY,,,10,100,0,-1000,x12,",  # 12
        "2024-01-01,CONTRIBUTION,,,,,,,x13,",  # 13
        "2024-01-01,SELL,VWRP,LSE,10,100,-1,1000,x14,",  # 14
        "2024-01-01,WITHDRAWAL,,,,,,50,x15,",  # 15
    ]
    path = write(tmp_path, HEAD + "\n" + "\n".join(rows) + "\n\n")  # a trailing blank line is fine
    with pytest.raises(FileFormatError) as info:
        parse_canonical(path)
    error = info.value
    assert error.file == "ledger.csv"
    reasons = dict(error.problems)
    assert sorted(reasons) == list(range(3, 16))
    assert "entry_time: 'yesterday' is not an ISO 8601" in reasons[3]
    assert "entry_type 'DEPOSIT' is not one of BUY, SELL" in reasons[4]
    assert "units: 'ten' is not a number" in reasons[5]
    assert "BUY's cash must be" in reasons[6]
    assert "FEE needs fees > 0 and cash = −fees" in reasons[7]
    assert "exchange without a ticker" in reasons[8]
    assert "not a finite number" in reasons[9]
    assert reasons[10] == "external_ref 'ok1' repeats line 2"
    assert reasons[11] == "has 6 fields, expected 10"
    assert "BUY needs an instrument" in reasons[12]
    assert reasons[13] == "cash_amount_base is empty"
    assert "must not be negative" in reasons[14]
    assert "WITHDRAWAL's cash must be negative" in reasons[15]
    assert "ledger.csv: line 3:" in str(error)


def test_wrong_header_names_the_expected_one(tmp_path: Path) -> None:
    path = write(tmp_path, "date,type,amount\n2024-01-01,CONTRIBUTION,100\n")
    with pytest.raises(FileFormatError) as info:
        parse_canonical(path)
    assert info.value.problems[0][0] == 1
    assert HEAD in str(info.value)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the file is empty"),
        (b"\xef\xbb\xbf\r\n  \n", "the file is empty"),
        (HEAD.encode() + b"\n", "no entries"),
    ],
)
def test_empty_files_are_refused_clearly(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(FileFormatError) as info:
        parse_canonical(path)
    assert reason in str(info.value) and info.value.file == "empty.csv"


def test_non_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        f"{HEAD}\n2024-01-01,CONTRIBUTION,,,,,,100,a,\n2024-01-02,INTEREST,,,,,,1,b,caf\xe9\n".encode(
            "latin-1"
        )
    )
    with pytest.raises(FileFormatError) as info:
        parse_canonical(path)
    assert info.value.problems[0][0] == 3 and "not UTF-8" in info.value.problems[0][1]


def test_references_and_hash_are_stable_and_repeated_rows_stay_distinct(tmp_path: Path) -> None:
    body = f"{HEAD}\n2024-01-01,CONTRIBUTION,,,,,,100,,\n2024-01-01,CONTRIBUTION,,,,,,100,,\n"
    first = parse_canonical(write(tmp_path, body, "a.csv"))
    again = parse_canonical(NamedBytes("upload.csv", body.encode()))
    refs = [e.external_ref for e in first.entries]
    assert len(set(refs)) == 2
    assert refs == [e.external_ref for e in again.entries]
    assert first.content_sha256 == again.content_sha256 == hashlib.sha256(body.encode()).hexdigest()


def test_the_fast_path_and_the_careful_path_agree(tmp_path: Path) -> None:
    # The first row with new texts takes the careful path; its twin then takes the fast one.
    row = "2024-01-03T10:15:00Z,BUY,VWRP,LSE,10,112.34,1.50,-1124.90,{ref},note"
    path = write(tmp_path, f"{HEAD}\n{row.format(ref='a')}\n{row.format(ref='b')}\n")
    one, two = parse_canonical(path).entries
    assert one._replace(line=0, external_ref="") == two._replace(line=0, external_ref="")


# --- the column path (a chunk of rows at a time) against the row path --------------------

ROWS = [
    "2024-01-02T09:00:00Z,CONTRIBUTION,,,,,0.00,5000.00,c1,",
    "2024-01-03T10:15:00Z,BUY,VWRP,LSE,10,112.34,1.50,-1124.90,b1,first",
    "2024-01-03T10:16:00Z,buy,vwrp,lse,3,112.3400,0,-337.02,b2,",
    "2024-01-04,SELL,VWRP,LSE,5,812.5,0,40.62,s1,",  # a date alone: midnight UTC
    "2024-01-05T00:00:00,FEE,,,,,0.72,-0.72,f1,  custody  ",  # naive: UTC
    "2024-01-06T09:00:00+01:00,INTEREST,,,,,,0.23,i1,",  # an offset: the row path converts it
    '2024-01-07T00:00:00Z,CONTRIBUTION,,,,,,"1,000.00",c2,',  # thousands: the row path
    "2024-01-08T00:00:00Z,INTEREST,,,,,,1,,",  # no reference: the row path hashes one
    '2024-01-09T00:00:00Z,INTEREST,,,,,,2,i2,"two\nlines"',  # a record over two lines
    "2024-01-10T00:00:00Z,BUY,VWRP,LSE,1,1000000000,0,-1000000000,b3,",  # price 10^9: the bound
    "2024-01-11T00:00:00Z,TRANSFER,VWRP,LSE,-2,,,0,t1,",
    "2024-01-12T00:00:00Z,WITHDRAWAL,,,,,,-0.5,w1,",
    "2024-01-13T00:00:00Z,INTEREST,,,,,,000.10,i3,",
]


def parse_both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any, list[bool]]:
    """The file parsed in chunks of two rows (each by columns where it can be), then row by row;
    and which chunks the column path took."""
    took: list[bool] = []
    bulk = canonical._Rows.bulk

    def watched(self: Any, *args: Any) -> Any:
        result = bulk(self, *args)
        took.append(result is not None)
        return result

    monkeypatch.setattr(canonical, "_CHUNK", 2)
    monkeypatch.setattr(canonical._Rows, "bulk", watched)
    by_columns = parse_canonical(path)
    monkeypatch.setattr(canonical._Rows, "bulk", lambda self, *args: None)
    by_rows = parse_canonical(path)
    return by_columns, by_rows, took


def test_the_column_path_and_the_row_path_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, HEAD + "\n" + "\n".join(ROWS) + "\n")
    by_columns, by_rows, took = parse_both(path, monkeypatch)
    assert by_columns.entries == by_rows.entries
    assert [type(e) for e in by_columns.entries] == [type(e) for e in by_rows.entries]
    assert [e.line for e in by_columns.entries] == [2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15]
    assert took == [True, True, False, False, True, True, True]  # a chunk of two rows each
    notes = {e.external_ref: e.notes for e in by_columns.entries}
    assert notes["b1"] == "first" and notes["f1"] == "custody" and notes["c1"] is None
    prices = {e.external_ref: e.price for e in by_columns.entries}
    assert prices["b2"] == Decimal("112.34") and str(prices["b2"]) == "112.3400"


def test_bad_rows_and_repeats_in_later_chunks_are_named_with_their_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        "2024-01-01T00:00:00Z,CONTRIBUTION,,,,,,100,a,",  # 2
        "2024-01-02T00:00:00Z,CONTRIBUTION,,,,,,100,b,",  # 3
        "2024-01-03T00:00:00Z,CONTRIBUTION,,,,,,100,c,",  # 4
        "2024-01-04T00:00:00Z,WITHDRAWAL,,,,,,100,d,",  # 5: the wrong sign
        "2024-01-05T00:00:00Z,CONTRIBUTION,,,,,,100,e,",  # 6
        "2024-01-06T00:00:00Z,CONTRIBUTION,,,,,,100,a,",  # 7: repeats line 2
    ]
    path = write(tmp_path, HEAD + "\n" + "\n".join(rows) + "\n")
    monkeypatch.setattr(canonical, "_CHUNK", 2)
    with pytest.raises(FileFormatError) as info:
        parse_canonical(path)
    reasons = dict(info.value.problems)
    assert sorted(reasons) == [5, 7]
    assert "WITHDRAWAL's cash must be negative" in reasons[5]
    assert reasons[7] == "external_ref 'a' repeats line 2"


def test_blank_references_and_notes_are_treated_as_empty(tmp_path: Path) -> None:
    row = "2024-01-01T00:00:00Z,CONTRIBUTION,,,,,0,100,  ,  "
    one, two = parse_canonical(write(tmp_path, f"{HEAD}\n{row}\n{row}\n")).entries
    assert one.external_ref.startswith("h-") and two.external_ref.startswith("h-")
    assert one.external_ref != two.external_ref
    assert one.notes is None and two.notes is None


def test_registry_and_protocol(tmp_path: Path) -> None:
    fmt = get_broker_format("canonical")
    path = write(tmp_path, f"{HEAD}\n2024-01-01,CONTRIBUTION,,,,,,100,a,\n")
    assert fmt.parse(path).entries[0].external_ref == "a"


# --- the benchmark ledger generator --------------------------------------------------


def load_generator():
    path = Path(__file__).resolve().parents[1] / "bench" / "gen_ledger.py"
    spec = importlib.util.spec_from_file_location("gen_ledger", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def test_generated_ledger_is_valid_and_deterministic(tmp_path: Path) -> None:
    gen = load_generator()
    expected = gen.generate(tmp_path / "a", rows=3000, portfolios=3, listings=10, seed=42)
    gen.generate(tmp_path / "b", rows=3000, portfolios=3, listings=10, seed=42)
    for name in ("ledger_p01.csv", "ledger.journal", "listings.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    with (tmp_path / "a" / "listings.csv").open() as handle:
        scale = {row["ticker"]: row["quote_scale"] for row in csv.DictReader(handle)}
    assert set(scale.values()) == {"GBX", "GBP"}
    assert json.loads((tmp_path / "a" / "expected.json").read_text()) == expected

    for code, final in expected.items():
        entries = parse_canonical(tmp_path / "a" / f"ledger_{code}.csv").entries
        assert entries[0].entry_type is EntryType.CONTRIBUTION
        cash, units = Decimal(0), dict[str, Decimal]()
        for e in entries:
            if e.entry_type in (EntryType.BUY, EntryType.SELL):
                gross = e.units * e.price / (100 if scale[e.ticker] == "GBX" else 1)
                consideration = round_cash(gross)
                sign = -1 if e.entry_type is EntryType.BUY else 1
                assert e.cash_amount_base == sign * consideration - e.fees_base, e
                units[e.ticker] = units.get(e.ticker, Decimal(0)) - sign * e.units
                assert units[e.ticker] >= 0
            cash += e.cash_amount_base
            assert cash >= 0
        assert len(entries) == final["entries"]
        assert cash == Decimal(final["cash"])
        assert {t: int(u) for t, u in units.items() if u} == final["units"]

    journal = (tmp_path / "a" / "ledger.journal").read_text()
    assert journal.count("\n\n") - 1 == 3000  # one blank-line-separated transaction each


@pytest.mark.skipif(shutil.which("hledger") is None, reason="hledger is not installed")
def test_generated_journal_balances_agree_in_hledger(tmp_path: Path) -> None:
    expected = load_generator().generate(tmp_path, rows=600, portfolios=2, listings=6, seed=42)
    for code, final in expected.items():
        result = subprocess.run(
            ["hledger", "-f", str(tmp_path / "ledger.journal"), "bal", f"assets:{code}", "-N", "-O", "csv"],
            capture_output=True,
            text=True,
            check=True,
        )
        rows = list(csv.reader(result.stdout.splitlines()))[1:]
        balances = {account.rsplit(":", 1)[1]: amount.split()[0] for account, amount in rows}
        assert balances.pop("cash") == final["cash"]
        assert {t: int(u) for t, u in balances.items()} == final["units"]
