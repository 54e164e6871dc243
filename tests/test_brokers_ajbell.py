from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tradeassist.core.enums import EntryType
from tradeassist.core.errors import FileFormatError, ValidationError
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.providers.brokers import ParsedFile, UnmappedDescriptionsError, get_broker_format
from tradeassist.providers.brokers.ajbell import ListingRef, load_mapping, parse_ajbell
from tradeassist.services import identity, imports, portfolios

BOM = "\ufeff"
HISTORY_HEAD = "Date,Transaction,Description,Quantity,Amount (GBP),Reference"
CASH_HEAD = "Date,Description,Reference,Settlement date,Receipt (GBP),Payment (GBP),Balance (GBP)"

# What the user would keep in their mapping file for the real samples.
MAPPING = {
    "Lyxor Core UK Govt Bd (DR) ETF D GBP": ("GILS", "LSE"),
    "Vanguard USD Corp Bd UCITS ETF GBP": ("VUCP", "LSE"),
    "Scottish Mortgage Ord": ("SMT", "LSE"),
    "DB X-TRACKERS MSCI WLD TRN IDX UCITS ETF1": ("XDWD", "LSE"),
    "iShares Core UK Gilts ETF GBP Dist": ("IGLT", "LSE"),
    "iShares FTSE 250 ETF GBP Dist": ("MIDD", "LSE"),
    "Vanguard FTSE All-World UCITS ETF": ("VWRL", "LSE"),
    "Vanguard FTSE All-World UCITS ETF GBP": ("VWRL", "LSE"),
    "Xtrackers MSCI UK ESG ETF 1D £": ("XUKS", "LSE"),
}


def real(real_data: Path, name: str) -> list[Path]:
    folder = real_data / "gsej_investment_tracker" / "ajbell"
    return [folder / f"{name}-transactionhistory.csv", folder / f"{name}-cashstatements.csv"]


def write(tmp_path: Path, name: str, head: str, *rows: str) -> Path:
    path = tmp_path / name
    path.write_text(BOM + head + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def replay_balances(parsed: ParsedFile) -> None:
    """What the service does: cash before the import + entries so far = each stated balance."""
    opening = parsed.opening_balance
    assert opening is not None
    sums = [Decimal(0)]
    for entry in parsed.entries:
        sums.append(sums[-1] + entry.cash_amount_base)
    start = opening.balance - sums[opening.after_entries]
    for balance in parsed.balances:
        assert start + sums[balance.after_entries] == balance.balance, balance


def holdings(parsed: ParsedFile) -> dict[str, Decimal]:
    units: dict[str, Decimal] = {}
    for e in parsed.entries:
        if e.units is not None:
            units[e.ticker] = units.get(e.ticker, Decimal(0)) + (
                -e.units if e.entry_type is EntryType.SELL else e.units
            )
    return units


def test_isa_2022_trades_are_matched_to_statement_payments(real_data: Path) -> None:
    parsed = parse_ajbell(*real(real_data, "ISA-2022"), mapping=MAPPING)
    assert parsed.format == "ajbell"
    assert parsed.name == "ISA-2022-transactionhistory.csv + ISA-2022-cashstatements.csv"
    # 22 statement lines after the B/F line; the 4 purchases are one entry each, not two.
    assert len(parsed.entries) == 22
    first = parsed.entries[0]
    assert (first.entry_type, first.cash_amount_base, first.notes) == (
        EntryType.CONTRIBUTION,
        Decimal(1000),
        "Debit card subscription",
    )
    assert first.entry_time == datetime(2022, 7, 14, tzinfo=UTC)
    assert (first.source, first.line) == ("ISA-2022-cashstatements.csv", 23)  # oldest first, own line

    gils = parsed.entries[2]
    assert (gils.source, gils.line) == ("ISA-2022-transactionhistory.csv", 5)
    assert (gils.entry_type, gils.ticker, gils.exchange, gils.units) == (
        EntryType.BUY,
        "GILS",
        "LSE",
        Decimal(6),
    )
    assert gils.description == "Lyxor Core UK Govt Bd (DR) ETF D GBP"
    assert gils.consideration_base == Decimal("913.9")
    assert gils.price == Decimal("152.31666667") and gils.price_currency == "GBP"  # 913.90 / 6
    assert gils.fees_base == 0 and gils.cash_amount_base == Decimal("-913.9")
    assert gils.external_ref == "RDAUJOZC"
    assert gils.extra["cash_ref"] == "299162 / 1"
    assert gils.extra["cash_description"] == "Purchase 6 Amundi UK Govt Bd ETF Dist"  # renamed fund
    assert gils.extra["settlement_date"] == "12/08/2022"

    fx = next(e for e in parsed.entries if e.notes == "FX Charge (0.50%)")
    assert (fx.entry_type, fx.fees_base, fx.cash_amount_base) == (
        EntryType.FEE,
        Decimal("0.01"),
        Decimal("-0.01"),
    )
    custody = next(e for e in parsed.entries if (e.notes or "").startswith("Shares Custody"))
    assert (custody.entry_type, custody.cash_amount_base) == (EntryType.FEE, Decimal("-0.72"))
    dividend = next(e for e in parsed.entries if e.external_ref == "386463 / 1")
    assert dividend.entry_type is EntryType.DIVIDEND and dividend.cash_amount_base == Decimal("1.62")
    assert (
        dividend.notes == "dividend: VANGUARD FUNDS PLC VANGUARD USD CORP BOND UCITS ETF USD DIS (19 units)"
    )
    # The payer's name is not in the mapping: no listing from the parser, the name for the service.
    assert dividend.extra["dividend_units"] == "19" and dividend.ticker is None
    assert dividend.description == "VANGUARD FUNDS PLC VANGUARD USD CORP BOND UCITS ETF USD DIS"
    assert (dividend.units, dividend.price) == (None, None)

    assert parsed.opening_balance.balance == 0 and parsed.opening_balance.on == date(2022, 1, 1)
    assert parsed.balances[-1].balance == Decimal("673.55")
    assert parsed.balances[-1].after_entries == len(parsed.entries)
    replay_balances(parsed)
    assert holdings(parsed) == {"GILS": 7, "VUCP": 24}


def test_isa_2023_opens_with_2022s_closing_balance(real_data: Path) -> None:
    parsed = parse_ajbell(*real(real_data, "ISA-2023"), mapping=MAPPING)
    assert parsed.opening_balance.balance == Decimal("673.55")
    assert len(parsed.entries) == 55
    assert sum(e.cash_amount_base for e in parsed.entries) == Decimal("386.33") - Decimal("673.55")
    replay_balances(parsed)
    assert holdings(parsed) == {"GILS": 8, "SMT": 100, "VUCP": 9}
    # Three purchases on 10/12/2023 keep the statement's order (oldest first).
    same_day = [e.ticker for e in parsed.entries if e.entry_time.date() == date(2023, 12, 10)]
    assert same_day == ["SMT", "GILS", "VUCP", None]


def test_sipp_2022_transfers_contributions_and_interest(real_data: Path) -> None:
    parsed = parse_ajbell(*real(real_data, "SIPP-2022"), mapping=MAPPING)
    kinds = [(e.entry_type.value, e.ticker, e.units, e.cash_amount_base) for e in parsed.entries[:4]]
    assert kinds == [
        ("TRANSFER", "IGLT", Decimal(43), 0),
        ("TRANSFER", "XDWD", Decimal(96), 0),
        ("TRANSFER", "XUKS", Decimal(328), 0),
        ("TRANSFER", None, None, Decimal(3999)),  # "Transfer Value": cash moved in
    ]
    assert parsed.entries[0].notes == "transfer in (in specie)"
    assert parsed.entries[0].consideration_base == Decimal("523.53")
    div = next(e for e in parsed.entries if e.external_ref == "AV9XFWGG")
    assert div.notes == "dividend: ISHARES FTSE 250 (129 units)" and div.cash_amount_base == Decimal("10.75")
    # "ISHARES FTSE 250" begins one mapped description only ("iShares FTSE 250 ETF GBP Dist"): MIDD.
    assert (div.entry_type, div.ticker, div.exchange) == (EntryType.DIVIDEND, "MIDD", "LSE")
    interest = parsed.entries[-1]
    assert (interest.entry_type, interest.cash_amount_base) == (EntryType.INTEREST, Decimal("0.23"))
    replay_balances(parsed)
    assert holdings(parsed) == {"IGLT": 43, "XDWD": 96, "XUKS": 328, "MIDD": 129, "VWRL": 101}


def test_unmapped_descriptions_are_listed_all_at_once(real_data: Path, tmp_path: Path) -> None:
    with pytest.raises(UnmappedDescriptionsError) as info:
        parse_ajbell(*real(real_data, "SIPP-2022"), mapping={})
    error = info.value
    assert error.descriptions == (
        "DB X-TRACKERS MSCI WLD TRN IDX UCITS ETF1",
        "iShares Core UK Gilts ETF GBP Dist",
        "iShares FTSE 250 ETF GBP Dist",
        "Vanguard FTSE All-World UCITS ETF",
        "Vanguard FTSE All-World UCITS ETF GBP",
        "Xtrackers MSCI UK ESG ETF 1D £",
    )
    assert error.file == "SIPP-2022-transactionhistory.csv"
    assert (4, "description 'iShares FTSE 250 ETF GBP Dist' is not in the mapping") in error.problems
    # The template, filled in, is a mapping file that makes the import work.
    template = error.mapping_template().splitlines()
    assert template[0] == "description,ticker,exchange" and len(template) == 7
    filled = [template[0]] + [line[:-2] + f",{MAPPING[line[1:-3]][0]},LSE" for line in template[1:]]
    (tmp_path / "mapping.csv").write_text("\n".join(filled) + "\n", encoding="utf-8")
    assert len(
        parse_ajbell(*real(real_data, "SIPP-2022"), mapping=load_mapping(tmp_path / "mapping.csv")).entries
    )


def test_a_description_on_many_lines_is_listed_once(real_data: Path) -> None:
    with pytest.raises(UnmappedDescriptionsError) as info:
        parse_ajbell(
            *real(real_data, "ISA-2023"), mapping={"Vanguard USD Corp Bd UCITS ETF GBP": ("VUCP", "LSE")}
        )
    assert info.value.descriptions == ("Lyxor Core UK Govt Bd (DR) ETF D GBP", "Scottish Mortgage Ord")
    assert (
        7,
        "description 'Scottish Mortgage Ord' is not in the mapping (also lines 6, 5, 4)",
    ) in info.value.problems


def test_history_alone_has_no_fees_and_cash_is_the_amount(real_data: Path) -> None:
    parsed = parse_ajbell(real(real_data, "ISA-2022")[0], mapping=MAPPING)
    assert [e.external_ref for e in parsed.entries] == ["RDAUJOZC", "5WHNWXJM", "ZDEG5RQB", "LB1TOQ23"]
    vucp = parsed.entries[-1]
    assert (vucp.fees_base, vucp.cash_amount_base, vucp.price) == (0, Decimal("-222.71"), Decimal("44.542"))
    assert parsed.balances == () and parsed.opening_balance is None
    assert "cash_statement" not in vucp.extra


def test_cash_statement_alone_takes_trades_from_its_descriptions(real_data: Path) -> None:
    mapping = {"Amundi UK Govt Bd ETF Dist": ListingRef("GILS", "LSE"), **MAPPING}
    mapping["Vanguard USD Corp Bd UCITS ETF GBP"] = ListingRef("VUCP", "LSE")
    parsed = parse_ajbell(real(real_data, "ISA-2022")[1], mapping=mapping)
    assert len(parsed.entries) == 22
    gils = parsed.entries[2]
    assert (gils.entry_type, gils.ticker, gils.units, gils.cash_amount_base) == (
        EntryType.BUY,
        "GILS",
        Decimal(6),
        Decimal("-913.9"),
    )
    assert gils.external_ref == "299162 / 1" and "includes any dealing charge" in gils.notes
    replay_balances(parsed)


def test_file_order_does_not_matter_and_hashes_are_stable(real_data: Path) -> None:
    history, cash = real(real_data, "ISA-2023")
    one = parse_ajbell(history, cash, mapping=MAPPING)
    two = parse_ajbell(cash, history, mapping=MAPPING)
    assert [e.external_ref for e in one.entries] == [e.external_ref for e in two.entries]
    assert one.content_sha256 == two.content_sha256
    assert {s.sha256 for s in one.sources} == {
        hashlib.sha256(p.read_bytes()).hexdigest() for p in (history, cash)
    }
    assert parse_ajbell(history, cash, mapping=MAPPING).entries == one.entries


def test_fees_come_from_the_statement_and_corporate_actions_move_units(tmp_path: Path) -> None:
    history = write(
        tmp_path,
        "history.csv",
        HISTORY_HEAD,
        '05/03/2024,Sale,iShares Core FTSE 100,"1,000",£812.50,S1',
        "04/03/2024,Removal of stock following a corporate action,Old Fund Acc,10,0,-",
        "04/03/2024,Receipt of stock following a corporate action,New Fund Acc,100,0,-",
        '01/03/2024,Purchase,iShares Core FTSE 100,"1,000","7,950.00",P1',
    )
    cash = write(
        tmp_path,
        "cash.csv",
        CASH_HEAD,
        '05/03/2024,Sale 1000 iShares Core FTSE 100 UCITS ETF,C2,07/03/2024,807.55,-,"2,852.55"',
        '01/03/2024,Purchase 1000 iShares Core FTSE 100 UCITS ETF,C1,05/03/2024,-,"-7,955.00","2,045.00"',
        '01/03/2024,Subscription,-,-,"10,000.00",-,"10,000.00"',
        "01/01/2024,* BALANCE B/F *,-,-,0,0,0",
    )
    mapping = {
        "ishares core ftse 100": ("ISF", "LSE"),
        "OLD FUND ACC": ("OLD", "LSE"),
        "New  Fund Acc": ("NEW", "LSE"),
    }
    parsed = parse_ajbell(history, cash, mapping=mapping)
    sub, buy, new, old, sell = parsed.entries
    assert sub.entry_type is EntryType.CONTRIBUTION and sub.cash_amount_base == Decimal("10000.00")
    assert (buy.units, buy.consideration_base, buy.fees_base, buy.cash_amount_base) == (
        Decimal(1000),
        Decimal("7950.00"),
        Decimal("5.00"),
        Decimal("-7955.00"),
    )
    assert buy.price == Decimal("7.95") and buy.ticker == "ISF"
    assert (sell.units, sell.fees_base, sell.cash_amount_base) == (
        Decimal(1000),
        Decimal("4.95"),
        Decimal("807.55"),
    )
    assert (new.entry_type, new.ticker, new.units, new.cash_amount_base) == (
        EntryType.TRANSFER,
        "NEW",
        100,
        0,
    )
    assert (old.units, old.extra["corporate_action"], old.notes) == (
        Decimal(-10),
        "removal",
        "corporate action: removal of stock",
    )
    assert new.price is None  # no amount: no price made up
    assert old.external_ref.startswith("h-") and old.external_ref != new.external_ref
    replay_balances(parsed)
    again = parse_ajbell(history, cash, mapping=mapping)
    assert [e.external_ref for e in again.entries] == [e.external_ref for e in parsed.entries]


def test_every_bad_line_in_both_files_is_reported(tmp_path: Path) -> None:
    history = write(
        tmp_path,
        "history.csv",
        HISTORY_HEAD,
        "10/03/2024,Purchase,Fund A,5,100,R1",  # 2: no statement line although covered
        "32/03/2024,Purchase,Fund A,5,100,R2",  # 3: no such date
        "09/03/2024,Gift,Fund A,5,100,R3",  # 4: unknown transaction
        "09/03/2024,Purchase,Fund A,,100,R4",  # 5: no quantity
        "08/03/2024,Purchase,Fund A,2,50,R6",  # 6
        "07/03/2024,Purchase,Fund A,1,10,R6",  # 7: reference repeats line 6
        "2024-03-06,Sale,Fund A,1,10,R8",  # 8: ISO date
        "06/03/2024,Sale,Fund A,1,10",  # 9: a field short
    )
    cash = write(
        tmp_path,
        "cash.csv",
        CASH_HEAD,
        "11/03/2024,Lottery win,-,-,5,0,1045",  # 2: unknown kind of line
        "09/03/2024,Purchase 3 Fund B,X1,-,0,-30,1040",  # 3: no such trade in the history
        "08/03/2024,Purchase 2 Fund A,X2,-,0,-49,1070",  # 4: payment < amount → negative fees
        "07/03/2024,Purchase 1 Fund A,X3,-,0,-10,1119",  # 5
        "06/03/2024,Subscription,-,-,1000,0,1100",  # 6: balance should be 1129 + ... (mismatch)
        "01/03/2024,* BALANCE B/F *,-,-,0,0,129",
    )
    with pytest.raises(FileFormatError) as info:
        parse_ajbell(history, cash, mapping={"Fund A": ("AAA", "LSE")})
    error = info.value
    assert error.file == "history.csv + cash.csv"
    text = "\n".join(why for _, why in error.problems)
    expected = [
        "history.csv line 2: Purchase of 5 'Fund A' on 10/03/2024 has no matching 'Purchase 5 …' line",
        "history.csv line 3: date '32/03/2024' does not exist",
        "history.csv line 4: transaction 'Gift' is not one of",
        "history.csv line 5: Quantity is empty or zero",
        "history.csv line 6: the cash statement's payment on line 4 (49) implies negative fees",
        "history.csv line 7: reference 'R6' repeats line 6",
        "history.csv line 8: date '2024-03-06' is not dd/mm/yyyy",
        "history.csv line 9: has 5 fields, expected 6",
        "cash.csv line 2: description 'Lottery win' is not a cash line this parser knows",
        "cash.csv line 3: 'Purchase 3 Fund B' has no 09/03/2024 trade of that quantity in history.csv",
        "cash.csv line 6: balance 1100 does not follow: previous balance 129 + 1000 = 1129",
    ]
    for fragment in expected:
        assert fragment in text, fragment
    assert all(line is None for line, _ in error.problems)


def test_history_trades_outside_the_statement_are_kept_and_flagged(tmp_path: Path) -> None:
    history = write(tmp_path, "h.csv", HISTORY_HEAD, "01/02/2024,Purchase,Fund A,5,100,R1")
    cash = write(
        tmp_path,
        "c.csv",
        CASH_HEAD,
        "05/03/2024,Contribution,-,-,100,-,100",
        "01/03/2024,* BALANCE B/F *,-,-,0,0,0",
    )
    parsed = parse_ajbell(history, cash, mapping={"Fund A": ("AAA", None)})
    trade, contribution = parsed.entries
    assert trade.extra["cash_statement"] == "not covered" and trade.cash_amount_base == -100
    assert trade.exchange is None
    assert parsed.opening_balance.after_entries == 1  # the early trade comes before B/F
    assert contribution.entry_type is EntryType.CONTRIBUTION


def test_dividend_lines_are_dividends_of_the_listing_the_mapping_names(tmp_path: Path) -> None:
    cash = write(
        tmp_path,
        "c.csv",
        CASH_HEAD,
        "07/03/2024,Div 7   SOMEONE ELSE PLC,D3,-,0.70,-,623.57",
        '06/03/2024,"Dividend 1,234   iShares  Core FTSE 100",D2,-,12.34,-,622.87',
        "05/03/2024,Dividend 123 iShares Core FTSE 100 UCITS ETF,D1,-,10.53,-,610.53",
        "01/03/2024,Subscription,-,-,600,-,600",
        "01/01/2024,* BALANCE B/F *,-,-,0,0,0",
    )
    mapping = {"iShares Core FTSE 100 UCITS ETF": ("ISF", "LSE")}
    _, exact, truncated, unknown = parse_ajbell(cash, mapping=mapping).entries
    assert (exact.entry_type, exact.ticker, exact.exchange, exact.cash_amount_base) == (
        EntryType.DIVIDEND,
        "ISF",
        "LSE",
        Decimal("10.53"),
    )
    assert exact.notes == "dividend: iShares Core FTSE 100 UCITS ETF (123 units)"
    assert (exact.units, exact.price, exact.extra["dividend_units"]) == (None, None, "123")
    # the payer's name cut short still begins exactly one mapped description
    assert (truncated.ticker, truncated.extra["dividend_units"]) == ("ISF", "1234")
    # a payer the mapping does not name is still a dividend, without a listing (never an error)
    assert (unknown.entry_type, unknown.ticker, unknown.description) == (
        EntryType.DIVIDEND,
        None,
        "SOMEONE ELSE PLC",
    )


def test_statement_without_brought_forward_line_derives_the_opening(tmp_path: Path) -> None:
    cash = write(
        tmp_path,
        "c.csv",
        CASH_HEAD,
        "06/03/2024,Withdrawal,-,-,-,-40,560",
        "05/03/2024,Contribution,-,-,100,-,600",
    )
    parsed = parse_ajbell(cash, mapping={})
    assert parsed.opening_balance.balance == 500 and parsed.opening_balance.after_entries == 0
    assert parsed.entries[1].entry_type is EntryType.WITHDRAWAL
    replay_balances(parsed)


def test_headers_empty_files_and_pairs(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.csv", "Date,Type,Amount", "01/01/2024,x,1")
    with pytest.raises(FileFormatError) as info:
        parse_ajbell(bad, mapping={})
    assert HISTORY_HEAD in str(info.value) and CASH_HEAD in str(info.value)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"\xef\xbb\xbf")
    with pytest.raises(FileFormatError, match="the file is empty"):
        parse_ajbell(empty, mapping={})
    only_header = write(tmp_path, "h.csv", HISTORY_HEAD)
    with pytest.raises(FileFormatError, match="no entries"):
        parse_ajbell(only_header, mapping={})
    twice = write(tmp_path, "h2.csv", HISTORY_HEAD, "01/02/2024,Purchase,Fund A,5,100,R1")
    with pytest.raises(FileFormatError, match="same kind"):
        parse_ajbell(twice, twice, mapping={})
    with pytest.raises(ValidationError):
        parse_ajbell(mapping={})


def test_load_mapping(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text(
        BOM + "Description,Ticker,Exchange\n"
        '"Vanguard  FTSE All-World UCITS ETF",vwrl,lse\n'
        "Scottish Mortgage Ord,SMT,\n"
        "Not yet filled in,,\n",
        encoding="utf-8",
    )
    mapping = load_mapping(path)
    assert mapping == {
        "vanguard ftse all-world ucits etf": ListingRef("VWRL", "LSE"),
        "scottish mortgage ord": ListingRef("SMT", None),
    }
    path.write_text("description,ticker,exchange\nA,AAA,LSE\nA,BBB,LSE\n,CCC,LSE\n", encoding="utf-8")
    with pytest.raises(FileFormatError) as info:
        load_mapping(path)
    assert info.value.problems == [
        (3, "'A' is mapped differently on line 2"),
        (4, "the description is empty"),
    ]
    path.write_text("name,symbol\nA,AAA\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="description,ticker,exchange"):
        load_mapping(path)


def test_registry_needs_a_mapping(real_data: Path) -> None:
    fmt = get_broker_format("AJBell")
    with pytest.raises(ValidationError, match="mapping"):
        fmt.parse(*real(real_data, "ISA-2022"))
    assert len(fmt.parse(*real(real_data, "ISA-2022"), mapping=MAPPING).entries) == 22


def test_a_header_only_history_with_a_cash_statement_is_accepted(tmp_path: Path, sqlite_url: str) -> None:
    """A period with no trades: AJ Bell's history is its header alone, the statement holds the cash."""
    history = write(tmp_path, "h.csv", HISTORY_HEAD)
    cash = write(
        tmp_path,
        "c.csv",
        CASH_HEAD,
        "06/03/2024,Gross interest,-,-,0.42,-,100.42",
        "05/03/2024,Subscription,-,-,100,-,100",
        "01/01/2024,* BALANCE B/F *,-,-,0,0,0",
    )
    for order in ((history, cash), (cash, history)):
        parsed = parse_ajbell(*order, mapping={})
        assert [(e.entry_type, e.cash_amount_base) for e in parsed.entries] == [
            (EntryType.CONTRIBUTION, Decimal(100)),
            (EntryType.INTEREST, Decimal("0.42")),
        ]
        assert parsed.cash_hint is None  # the statement came with it
        replay_balances(parsed)
    # both header-only: nothing to import, still refused
    with pytest.raises(FileFormatError, match="no entries"):
        parse_ajbell(history, write(tmp_path, "c0.csv", CASH_HEAD), mapping={})

    # and through the import service, into a real SQLite file, once
    engine = create_db_engine(sqlite_url)
    with unit_of_work(engine) as s:
        portfolios.add_portfolio(
            s, actor=identity.bootstrap_admin(s), name="ISA", broker="AJ Bell", tax_treatment="ISA"
        )
    for _ in range(2):
        with unit_of_work(engine) as s:
            result = imports.import_file(
                s,
                actor=identity.bootstrap_admin(s),
                portfolio="ISA",
                path=history,
                cash_statement=cash,
                format="ajbell",
            )
    assert result.already_imported and result.cash_balance == Decimal("100.42")
    engine.dispose()
