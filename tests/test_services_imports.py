"""Imports: one file = one atomic batch; the real AJ Bell and Trading 212 samples; idempotency;
errors that name the file, the line and the reason, with the database left as it was."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from tradeassist.core.errors import FileFormatError, NotFound, ValidationError
from tradeassist.core.isin import isin_check_digit
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import AuditEvent, CashSnapshot, HoldingSnapshot, LedgerBatch, LedgerEntry, User
from tradeassist.providers.brokers import UnmappedDescriptionsError
from tradeassist.services import corporate_actions, identity, imports, ledger, portfolios, registry

D = Decimal
HEADER = "entry_time,entry_type,ticker,exchange,units,price,fees_base,cash_amount_base,external_ref,notes\n"

# The user's mapping for the real AJ Bell samples (ticker, exchange, quote scale).
AJBELL = {
    "Lyxor Core UK Govt Bd (DR) ETF D GBP": ("GILS", "GBX"),
    "Vanguard USD Corp Bd UCITS ETF GBP": ("VUCP", "GBP"),
    "Scottish Mortgage Ord": ("SMT", "GBX"),
    "DB X-TRACKERS MSCI WLD TRN IDX UCITS ETF1": ("XDWD", "GBX"),
    "iShares Core UK Gilts ETF GBP Dist": ("IGLT", "GBX"),
    "iShares FTSE 250 ETF GBP Dist": ("MIDD", "GBX"),
    "Vanguard FTSE All-World UCITS ETF": ("VWRL", "GBP"),
    "Vanguard FTSE All-World UCITS ETF GBP": ("VWRL", "GBP"),
    "Xtrackers MSCI UK ESG ETF 1D £": ("XUKS", "GBX"),
}


def fake_isin(n: int) -> str:
    body = f"GB00{n:07d}"
    return body + isin_check_digit(body)


def listing(s: Any, actor: User, isin: str, ticker: str, exchange: str, currency: str, scale: str) -> None:
    if registry.find_instrument(s, isin) is None:
        registry.add_instrument(s, actor=actor, isin=isin, instrument_type="ETF")
    registry.add_listing(
        s, actor=actor, isin=isin, ticker=ticker, exchange=exchange, currency=currency, quote_scale=scale
    )


def setup(engine: Engine, admin: User, *names: str) -> None:
    with unit_of_work(engine) as s:
        actor = s.get(User, admin.user_id)
        tickers = dict.fromkeys(AJBELL.values())
        for n, (ticker, scale) in enumerate(tickers, start=1):
            listing(s, actor, fake_isin(n), ticker, "LSE", "GBP", scale)
        for isin, ticker, exchange, currency, scale in (
            ("US0378331005", "AAPL", "XNAS", "USD", "USD"),
            ("US5949181045", "MSFT", "XNAS", "USD", "USD"),
            ("US83088M1027", "SWKS", "XNAS", "USD", "USD"),
            ("GB00BLDYK618", "SMT", "XLON", "GBP", "GBX"),
        ):
            listing(s, actor, isin, ticker, exchange, currency, scale)
        for name in names:
            portfolios.add_portfolio(s, actor=actor, name=name, broker="x", tax_treatment="ISA")


def state(engine: Engine) -> dict[str, Any]:
    with unit_of_work(engine, readonly=True) as s:
        counts = {
            m.__tablename__: s.execute(select(func.count()).select_from(m)).scalar()
            for m in (LedgerBatch, LedgerEntry, AuditEvent)
        }
        holdings = [r.model_dump() for r in s.execute(select(HoldingSnapshot)).scalars()]
        cash = [r.model_dump() for r in s.execute(select(CashSnapshot)).scalars()]
    return counts | {"holdings": sorted(holdings, key=str), "cash": sorted(cash, key=str)}


def do_import(engine: Engine, portfolio: str, path: Path, fmt: str, **kw: Any) -> imports.ImportResult:
    with unit_of_work(engine) as s:
        return imports.import_file(
            s, actor=identity.bootstrap_admin(s), portfolio=portfolio, path=path, format=fmt, **kw
        )


def holdings(engine: Engine, portfolio: str) -> dict[str, Decimal]:
    with unit_of_work(engine, readonly=True) as s:
        rows = ledger.holdings(s, actor=identity.bootstrap_admin(s), portfolio=portfolio)
    return {r["ticker"]: r["units"] for r in rows}


def cash(engine: Engine, portfolio: str) -> Decimal:
    with unit_of_work(engine, readonly=True) as s:
        return ledger.cash(s, actor=identity.bootstrap_admin(s), portfolio=portfolio)["cash_balance"]


def write(path: Path, *lines: str, bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + "".join(line + "\n" for line in lines).encode())
    return path


def mapping_file(tmp_path: Path) -> Path:
    lines = ["description,ticker,exchange"] + [f'"{d}",{t},LSE' for d, (t, _) in AJBELL.items()]
    return write(tmp_path / "mapping.csv", *lines)


def ajbell(real_data: Path, name: str) -> tuple[Path, Path]:
    folder = real_data / "gsej_investment_tracker" / "ajbell"
    return folder / f"{name}-transactionhistory.csv", folder / f"{name}-cashstatements.csv"


# --- canonical ----------------------------------------------------------------------------


def test_canonical_file_is_one_batch_and_importing_it_again_adds_nothing(
    engine: Engine, admin: User, tmp_path: Path
) -> None:
    setup(engine, admin, "ISA")
    newest_first = write(
        tmp_path / "ledger.csv",
        HEADER.strip(),
        "2024-03-05T10:00:00Z,SELL,VWRL,LSE,4,101.50,5.00,401.00,C4,",
        '2024-03-04,BUY,GILS,LSE,"1,000",1234.5,9.95,"-£12,354.95",C3,pence price',
        "2024-03-02T09:30:00+01:00,BUY,VWRL,LSE,10,100,0,-1000.00,C2,",
        '2024-03-01,CONTRIBUTION,,,,,,"£20,000.00",C1,',
        bom=True,
    )
    first = do_import(engine, "ISA", newest_first, "canonical")
    assert (first.added, first.skipped, first.already_imported) == (4, 0, False)
    assert holdings(engine, "ISA") == {"GILS": D(1000), "VWRL": D(6)}
    assert cash(engine, "ISA") == D("20000") - D("1000") - D("12354.95") + D("401.00")
    before = state(engine)
    again = do_import(engine, "ISA", newest_first, "canonical")
    assert again.already_imported and again.added == 0
    assert state(engine) == before
    # a longer export of the same account adds only what is new (by external_ref)
    longer = write(
        tmp_path / "longer.csv",
        HEADER.strip(),
        "2024-03-01,CONTRIBUTION,,,,,,20000.00,C1,",
        "2024-03-06,INTEREST,,,,,,1.23,C5,",
    )
    more = do_import(engine, "ISA", longer, "canonical")
    assert (more.added, more.skipped) == (1, 1)
    with unit_of_work(engine, readonly=True) as s:
        batches = ledger.list_batches(s, actor=identity.bootstrap_admin(s), portfolio="ISA")
        entries = ledger.list_entries(s, actor=identity.bootstrap_admin(s), portfolio="ISA")
    assert [(b["batch_type"], b["entries"], b["source_name"]) for b in batches] == [
        ("IMPORT", 4, "ledger.csv"),
        ("IMPORT", 1, "longer.csv"),
    ]
    assert [e["external_ref"] for e in entries] == ["C1", "C2", "C3", "C4", "C5"]
    assert str(entries[1]["entry_time"]) == "2024-03-02 08:30:00+00:00"


def test_a_bad_file_names_every_bad_line_and_writes_nothing(
    engine: Engine, admin: User, tmp_path: Path
) -> None:
    setup(engine, admin, "ISA")
    before = state(engine)
    bad = write(
        tmp_path / "bad.csv",
        HEADER.strip(),
        "2024-03-01,CONTRIBUTION,,,,,,1000,,",
        "2024-03-02,BUY,VWRL,LSE,-1,100,0,-100,,",
        "2024-03-03,BUY,NOPE,LSE,1,100,0,-100,,",
        "03/04/2024,BUY,VWRL,LSE,1,100,0,-100,,",
    )
    with pytest.raises(FileFormatError) as info:
        do_import(engine, "ISA", bad, "canonical")
    assert info.value.file == "bad.csv"
    assert [line for line, _ in info.value.problems] == [3, 5]  # the parser's: units, date
    unknown = write(
        tmp_path / "unknown.csv",
        HEADER.strip(),
        "2024-03-01,CONTRIBUTION,,,,,,1000,,",
        "2024-03-03,BUY,NOPE,LSE,1,100,0,-100,,",
        "2024-03-04,BUY,GONE,LSE,1,100,0,-100,,",
    )
    with pytest.raises(FileFormatError, match=r"unknown\.csv: line 3: unknown listing NOPE on LSE.*line 4"):
        do_import(engine, "ISA", unknown, "canonical")
    book = write(
        tmp_path / "book.csv",
        HEADER.strip(),
        "2024-03-01,CONTRIBUTION,,,,,,1000,,",
        "2024-03-02,BUY,VWRL,LSE,5,100,0,-500,,",
        "2024-03-03,SELL,VWRL,LSE,6,100,0,600,,",
        "2024-03-04,BUY,VWRL,LSE,5,100,0,-500.02,,",
    )
    with pytest.raises(FileFormatError) as info:
        do_import(engine, "ISA", book, "canonical")
    why = "units × price = £500.00 but cash -£500.02 and fees £0.00 imply a consideration of £500.02"
    assert info.value.problems == [(5, f"{why} (cash must be −(consideration + fees), to within £0.01)")]
    fixed = write(tmp_path / "book2.csv", *(book.read_text().splitlines()[:4]))
    with pytest.raises(FileFormatError, match=r"book2\.csv: line 4: sells 6 units but only 5 are held then"):
        do_import(engine, "ISA", fixed, "canonical")
    assert state(engine) == before
    with pytest.raises(NotFound, match="unknown broker format"):
        do_import(engine, "ISA", fixed, "ibkr")
    with pytest.raises(ValidationError, match="ajbell format only"):
        do_import(engine, "ISA", fixed, "canonical", mapping=fixed)


# --- AJ Bell ------------------------------------------------------------------------------


def test_real_ajbell_statements_import_and_agree_with_the_running_balance(
    engine: Engine, admin: User, real_data: Path, tmp_path: Path
) -> None:
    setup(engine, admin, "ISA", "SIPP")
    mapping = mapping_file(tmp_path)
    for name in ("ISA-2022", "ISA-2023"):
        history, statement = ajbell(real_data, name)
        result = do_import(engine, "ISA", history, "ajbell", mapping=mapping, cash_statement=statement)
        assert result.added > 0 and not result.already_imported
    assert cash(engine, "ISA") == D("386.33")  # the 2023 statement's closing balance
    assert holdings(engine, "ISA") == {"GILS": D(15), "SMT": D(100), "VUCP": D(33)}
    history, statement = ajbell(real_data, "SIPP-2022")
    sipp = do_import(engine, "SIPP", history, "ajbell", mapping=mapping, cash_statement=statement)
    assert sipp.added == 12 and cash(engine, "SIPP") == D("1115.74")
    # transferred-in stock keeps the book cost AJ Bell states: £972.85 for 328 XUKS
    with unit_of_work(engine, readonly=True) as s:
        rows = {
            r["ticker"]: r for r in ledger.holdings(s, actor=identity.bootstrap_admin(s), portfolio="SIPP")
        }
    assert rows["XUKS"]["units"] == 328 and rows["XUKS"]["avg_cost_base"] == D("2.9660060976")
    with unit_of_work(engine, readonly=True) as s:
        entries = ledger.list_entries(s, actor=identity.bootstrap_admin(s), portfolio="SIPP")
    dividends = {e["external_ref"]: e for e in entries if e["entry_type"] == "DIVIDEND"}
    assert (dividends["AV9XFWGG"]["ticker"], dividends["AV9XFWGG"]["notes"]) == (
        "MIDD",  # "Div 129 ISHARES FTSE 250" begins one mapped description
        "dividend: ISHARES FTSE 250 (129 units)",
    )
    gilts = dividends["NLGGLKHQ"]  # "Div 43 ISH FT ALL STK GLT": neither mapped nor registered
    assert gilts["ticker"] is None and gilts["cash_amount_base"] == D("5.71")
    assert gilts["notes"].startswith("dividend: ISH FT ALL STK GLT (43 units); listing unknown")
    before = state(engine)
    again = do_import(engine, "SIPP", history, "ajbell", mapping=mapping, cash_statement=statement)
    assert again.already_imported and state(engine) == before


def test_a_statement_that_disagrees_with_our_cash_is_refused_at_its_first_line(
    engine: Engine, admin: User, real_data: Path, tmp_path: Path
) -> None:
    setup(engine, admin, "ISA")
    before = state(engine)
    history, statement = ajbell(real_data, "ISA-2023")  # opens with 2022's 673.55, not imported
    with pytest.raises(FileFormatError) as info:
        do_import(engine, "ISA", history, "ajbell", mapping=mapping_file(tmp_path), cash_statement=statement)
    message = str(info.value)
    assert "ISA-2023-cashstatements.csv line" in message
    assert "the statement's balance is £673.55 but the ledger's cash is £0.00 there" in message
    assert state(engine) == before


def test_unmapped_descriptions_are_reported_all_at_once(engine: Engine, admin: User, real_data: Path) -> None:
    setup(engine, admin, "SIPP")
    history, statement = ajbell(real_data, "SIPP-2022")
    with pytest.raises(UnmappedDescriptionsError) as info:
        do_import(engine, "SIPP", history, "ajbell", cash_statement=statement)
    assert len(info.value.descriptions) == 6
    assert state(engine)["ledger_entries"] == 0


def _reorganisation(tmp_path: Path) -> tuple[Path, Path, Path]:
    history = write(
        tmp_path / "history.csv",
        "Date,Transaction,Description,Quantity,Amount (GBP),Reference",
        "04/03/2024,Removal of stock following a corporate action,Old Fund Acc,10,0,-",
        "04/03/2024,Receipt of stock following a corporate action,New Fund Acc,100,0,-",
        '01/03/2024,Purchase,Old Fund Acc,10,"1,000.00",P1',
        bom=True,
    )
    statement = write(
        tmp_path / "cash.csv",
        "Date,Description,Reference,Settlement date,Receipt (GBP),Payment (GBP),Balance (GBP)",
        '01/03/2024,Purchase 10 Old Fund Acc,C1,05/03/2024,-,"-1,005.00","8,995.00"',
        '01/03/2024,Subscription,-,-,"10,000.00",-,"10,000.00"',
        "01/01/2024,* BALANCE B/F *,-,-,0,0,0",
        bom=True,
    )
    mapping = write(
        tmp_path / "map.csv", "description,ticker,exchange", "Old Fund Acc,OLD,LSE", "New Fund Acc,NEW,LSE"
    )
    return history, statement, mapping


def test_corporate_action_rows_become_a_transfer_carrying_the_cost(
    engine: Engine, admin: User, tmp_path: Path
) -> None:
    setup(engine, admin, "ISA")
    with unit_of_work(engine) as s:
        actor = identity.bootstrap_admin(s)
        listing(s, actor, fake_isin(100), "OLD", "LSE", "GBP", "GBP")
        listing(s, actor, fake_isin(101), "NEW", "LSE", "GBP", "GBX")
    history, statement, mapping = _reorganisation(tmp_path)
    result = do_import(engine, "ISA", history, "ajbell", mapping=mapping, cash_statement=statement)
    assert (result.added, result.absorbed) == (4, 0)
    with unit_of_work(engine, readonly=True) as s:
        rows = ledger.holdings(s, actor=identity.bootstrap_admin(s), portfolio="ISA")
    assert [(r["ticker"], r["units"], r["avg_cost_base"]) for r in rows] == [("NEW", D(100), D("10.05"))]
    assert cash(engine, "ISA") == D("8995.00")


def test_corporate_action_rows_a_recorded_action_explains_are_left_to_it(
    engine: Engine, admin: User, tmp_path: Path
) -> None:
    setup(engine, admin, "ISA")
    with unit_of_work(engine) as s:
        actor = identity.bootstrap_admin(s)
        listing(s, actor, fake_isin(100), "OLD", "LSE", "GBP", "GBP")
        listing(s, actor, fake_isin(101), "NEW", "LSE", "GBP", "GBX")
        corporate_actions.add_corporate_action(
            s,
            actor=actor,
            isin=fake_isin(100),
            action_type="ISIN_CHANGE",
            effective="2024-03-01",
            ratio="10:1",
            new_isin=fake_isin(101),
        )
    history, statement, mapping = _reorganisation(tmp_path)
    # bought before the effective date: the recorded action moves them, as the broker's rows say
    history.write_text(history.read_text().replace("01/03/2024,Purchase", "29/02/2024,Purchase"))
    statement.write_text(
        statement.read_text()
        .replace("01/03/2024,Purchase", "29/02/2024,Purchase")
        .replace("01/03/2024,Subscription", "28/02/2024,Subscription")
    )
    result = do_import(engine, "ISA", history, "ajbell", mapping=mapping, cash_statement=statement)
    assert (result.added, result.absorbed) == (2, 2)
    assert holdings(engine, "ISA") == {"NEW": D(100)}


def test_an_ajbell_dividend_line_is_a_dividend_of_the_listing_its_payer_names(
    engine: Engine, admin: User, tmp_path: Path
) -> None:
    setup(engine, admin, "ISA")
    with unit_of_work(engine) as s:
        actor = identity.bootstrap_admin(s)
        registry.add_instrument(
            s, actor=actor, isin=fake_isin(200), instrument_type="STOCK", name="Acme Widgets plc"
        )
        registry.add_listing(
            s,
            actor=actor,
            isin=fake_isin(200),
            ticker="ACME",
            exchange="LSE",
            currency="GBP",
            quote_scale="GBX",
        )
    statement = write(
        tmp_path / "cash.csv",
        "Date,Description,Reference,Settlement date,Receipt (GBP),Payment (GBP),Balance (GBP)",
        "07/03/2024,Dividend 5   NOBODY WE KNOW PLC,D3,-,0.70,-,23.24",
        "06/03/2024,Dividend 123   ACME WIDGETS,D2,-,12.34,-,22.54",
        "05/03/2024,Dividend 40 iShares Core UK Gilts ETF GBP Dist,D1,-,10.20,-,10.20",
        "01/01/2024,* BALANCE B/F *,-,-,0,0,0",
    )
    result = do_import(engine, "ISA", statement, "ajbell", mapping=mapping_file(tmp_path))
    assert result.added == 3 and cash(engine, "ISA") == D("23.24")
    with unit_of_work(engine, readonly=True) as s:
        entries = ledger.list_entries(s, actor=identity.bootstrap_admin(s), portfolio="ISA")
    assert [(e["entry_type"], e["ticker"], e["units"], e["cash_amount_base"]) for e in entries] == [
        ("DIVIDEND", "IGLT", None, D("10.20")),  # the payer is a description the mapping names
        ("DIVIDEND", "ACME", None, D("12.34")),  # the payer begins an instrument's name in the registry
        ("DIVIDEND", None, None, D("0.70")),  # neither: kept, without a listing, and said so
    ]
    assert entries[1]["notes"] == "dividend: ACME WIDGETS (123 units)"
    assert entries[2]["notes"].startswith("dividend: NOBODY WE KNOW PLC (5 units); listing unknown")
    assert holdings(engine, "ISA") == {}  # income moves no units


def test_dividends_recorded_as_interest_before_are_not_refused_when_imported_again(
    engine: Engine, admin: User, tmp_path: Path
) -> None:
    """An export overlapping rows the old import wrote as INTEREST ``dividend: …`` adds only what
    is new: the legacy row and the DIVIDEND it now parses as are the same entry."""
    setup(engine, admin, "T212")
    with unit_of_work(engine) as s:
        ledger.post_entries(
            s,
            actor=identity.bootstrap_admin(s),
            portfolio="T212",
            entries=[
                ledger.NewEntry(
                    datetime(2022, 2, 12, 2, 30, tzinfo=UTC),
                    "INTEREST",
                    D("1.37"),
                    notes="dividend: Apple (10.13713692 units)",
                    external_ref="DIV1",
                )
            ],
            label="import before DIVIDEND existed",
            batch_type="IMPORT",
        )
    export = write(
        tmp_path / "t212.csv",
        "Action,Time,ISIN,Ticker,Name,No. of shares,Price / share,Currency (Price / share),Exchange rate,"
        "Total,Currency (Total),ID",
        "Dividend (Ordinary),2022-02-12 02:30:00,US0378331005,AAPL,Apple,10.13713692,0.16,USD,,1.37,GBP,DIV1",
        "Dividend (Ordinary),2022-03-09 09:05:00,US5949181045,MSFT,Microsoft,10,0.62,USD,,3.44,GBP,DIV2",
    )
    result = do_import(engine, "T212", export, "trading212")
    assert (result.added, result.skipped) == (1, 1)
    with unit_of_work(engine, readonly=True) as s:
        entries = ledger.list_entries(s, actor=identity.bootstrap_admin(s), portfolio="T212")
    assert [(e["entry_type"], e["ticker"], e["external_ref"]) for e in entries] == [
        ("INTEREST", None, "DIV1"),  # as it was written: the ledger is never rewritten
        ("DIVIDEND", "MSFT", "DIV2"),
    ]
    # a legacy row with other values is still refused
    changed = write(tmp_path / "changed.csv", *export.read_text().splitlines()[:2])
    changed.write_text(changed.read_text().replace(",1.37,GBP,", ",1.38,GBP,"))
    with pytest.raises(ValidationError, match="already recorded with other values"):
        do_import(engine, "T212", changed, "trading212")


# --- Trading 212 --------------------------------------------------------------------------


def test_real_trading212_export_imports_and_non_gbp_exports_are_refused(
    engine: Engine, admin: User, real_data: Path
) -> None:
    setup(engine, admin, "T212")
    folder = real_data / "brokers"
    result = do_import(engine, "T212", folder / "trading212_2021-2022_GBP_investir.csv", "trading212")
    assert result.added == 20 and cash(engine, "T212") == D("7286.89")
    assert holdings(engine, "T212") == {
        "AAPL": D(3),
        "MSFT": D(2),
        "SMT": D(162),
        "SWKS": D("8.720942136"),
    }
    with unit_of_work(engine, readonly=True) as s:
        entries = ledger.list_entries(s, actor=identity.bootstrap_admin(s), portfolio="T212")
    smt = next(e for e in entries if e["ticker"] == "SMT")
    assert smt["price"] == D("1349.295455")  # a GBP price stored in the GBX listing's pence
    dividends = [(e["ticker"], e["cash_amount_base"]) for e in entries if e["entry_type"] == "DIVIDEND"]
    assert dividends == [("AAPL", D("1.37")), ("MSFT", D("3.44")), ("SWKS", D("2.50"))]
    assert not any(e["entry_type"] == "INTEREST" and e["notes"].startswith("dividend") for e in entries)
    before = state(engine)
    for name in ("trading212_multi-currency_investir.csv", "trading212-export_EUR_export-to-ghostfolio.csv"):
        with pytest.raises(FileFormatError, match="cash is kept in GBP only"):
            do_import(engine, "T212", folder / name, "trading212")
    assert state(engine) == before


def test_trading212_pence_prices_go_into_pound_listings_scaled(
    engine: Engine, admin: User, tmp_path: Path
) -> None:
    setup(engine, admin, "T212")
    export = write(
        tmp_path / "t212.csv",
        "Action,Time,ISIN,Ticker,Name,No. of shares,Price / share,Currency (Price / share),Exchange rate,"
        "Total,Currency (Total),Stamp duty reserve tax,Currency (Stamp duty reserve tax),ID",
        f"Market buy,2024-03-02 10:00:00,{fake_isin(7)},VWRL,Vanguard,2.5,"
        '"9,012.00",GBX,0.01,225.30,GBP,,,EOF2',
        'Deposit,2024-03-01 09:00:00,,,,,,,,"1,000.00",GBP,,,EOF1',
    )
    result = do_import(engine, "T212", export, "trading212")
    assert result.added == 2
    with unit_of_work(engine, readonly=True) as s:
        entries = ledger.list_entries(s, actor=identity.bootstrap_admin(s), portfolio="T212")
    assert entries[1]["price"] == D("90.12") and entries[1]["ticker"] == "VWRL"  # £, the listing's scale
    assert cash(engine, "T212") == D("774.70")


def test_a_trading212_dividend_is_attached_to_its_listing_or_kept_without_one(
    engine: Engine, admin: User, tmp_path: Path
) -> None:
    setup(engine, admin, "T212")
    export = write(
        tmp_path / "t212.csv",
        "Action,Time,ISIN,Ticker,Name,No. of shares,Price / share,Currency (Price / share),Exchange rate,"
        "Total,Currency (Total),Withholding tax,Currency (Withholding tax),ID",
        'Deposit,2024-03-01 09:00:00,,,,,,,,"1,000.00",GBP,,,D1',
        "Dividend (Ordinary),2024-03-02 10:00:00,US0378331005,AAPL,Apple,10,0.24,USD,,1.61,GBP,0.36,USD,V1",
        "Dividend (Ordinary),2024-03-03 10:00:00,US88160R1014,TSLA,Tesla,3,0.10,USD,,0.20,GBP,,,V2",
    )
    result = do_import(engine, "T212", export, "trading212")
    assert result.added == 3 and cash(engine, "T212") == D("1001.81")
    with unit_of_work(engine, readonly=True) as s:
        entries = ledger.list_entries(s, actor=identity.bootstrap_admin(s), portfolio="T212")
    apple, tesla = entries[1], entries[2]
    assert (apple["entry_type"], apple["ticker"], apple["exchange"]) == ("DIVIDEND", "AAPL", "XNAS")
    assert (apple["units"], apple["price"], apple["notes"]) == (None, None, "dividend: Apple (10 units)")
    assert (tesla["entry_type"], tesla["ticker"]) == ("DIVIDEND", None)  # no Tesla listing: kept
    assert tesla["notes"].startswith("dividend: Tesla (3 units); listing unknown: unknown instrument TSLA")
