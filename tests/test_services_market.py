"""Price and FX services on real samples, on SQLite and PostgreSQL: normalisation, quality
flags, alerts and freezes, re-ingest and conflicts, accepted levels, splits, latest good prices."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from tradeassist.core.errors import FileFormatError, ValidationError
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import (
    Alert,
    AuditEvent,
    FreezeState,
    HoldingSnapshot,
    Portfolio,
    PortfolioConstituent,
    PricePoint,
    Sleeve,
    User,
)
from tradeassist.engine.normalize import FX_QUANTUM
from tradeassist.services import fx, governance, market_workflows, portfolios, price_checks, prices, registry

D = Decimal
STAN = ("GB0004082847", "STAN", "XLON")


def _user(session, admin: User) -> User:  # type: ignore[no-untyped-def]
    return session.get(User, admin.user_id)


def add_listing(
    engine: Engine,
    admin: User,
    isin: str,
    ticker: str,
    *,
    exchange: str = "XLON",
    currency: str = "GBP",
    scale: str = "GBP",
    provider: str | None = None,
    symbol: str | None = None,
) -> int:
    with unit_of_work(engine) as s:
        actor = _user(s, admin)
        if registry.find_instrument(s, isin) is None:
            registry.add_instrument(s, actor=actor, isin=isin, instrument_type="ETF")
        listing = registry.add_listing(
            s,
            actor=actor,
            isin=isin,
            ticker=ticker,
            exchange=exchange,
            currency=currency,
            quote_scale=scale,
            price_provider=provider,
            provider_symbol=symbol,
        )
        return listing.listing_id  # type: ignore[return-value]


def add_portfolio(
    engine: Engine, admin: User, name: str, *, holds: int | None = None, maps: int | None = None
) -> int:
    with unit_of_work(engine) as s:
        p = portfolios.add_portfolio(
            s, actor=_user(s, admin), name=name, broker="AJBell", tax_treatment="SIPP"
        )
        if holds is not None:
            s.add(HoldingSnapshot(portfolio_id=p.portfolio_id, listing_id=holds, units=D("10")))
        if maps is not None:
            if s.get(Sleeve, "CORE") is None:
                s.add(Sleeve(sleeve_code="CORE", name="Core"))
                s.flush()
            s.add(PortfolioConstituent(portfolio_id=p.portfolio_id, listing_id=maps, sleeve_code="CORE"))
        return p.portfolio_id  # type: ignore[return-value]


def import_file(engine: Engine, admin: User, path: Path, ticker: str, fmt: str, exchange: str = "XLON"):  # type: ignore[no-untyped-def]
    with unit_of_work(engine) as s:
        return prices.import_price_file(
            s, actor=_user(s, admin), path=path, ticker=ticker, exchange=exchange, fmt=fmt
        )


def point_count(engine: Engine) -> int:
    with unit_of_work(engine, readonly=True) as s:
        return s.execute(select(func.count()).select_from(PricePoint)).scalar_one()


def listed(engine: Engine, ticker: str, exchange: str = "XLON") -> list[dict]:
    with unit_of_work(engine, readonly=True) as s:
        return prices.list_prices(s, ticker=ticker, exchange=exchange)


def stan_tail(
    real_data: Path, tmp_path: Path, rows: int, *, pounds: range = range(0), scale: Decimal = D(1)
) -> Path:
    """The last ``rows`` days of the real STAN file (pence), with the ``pounds`` rows divided by 100
    (a feed that slipped into pounds) and every row multiplied by ``scale``."""
    lines = (real_data / "stooq" / "stan_uk_d.csv").read_text().splitlines()
    header, body = lines[0], lines[-rows:]
    out = [header]
    for i, line in enumerate(body):
        cells = line.split(",")
        close = D(cells[4]) * scale
        if i in pounds:
            close = close / 100
        cells[4] = format(close, "f")
        out.append(",".join(cells))
    path = tmp_path / "stan_uk_d.csv"
    path.write_text("\n".join(out) + "\n")
    return path


# --------------------------------------------------------------------------------------------
# Normalisation on real files
# --------------------------------------------------------------------------------------------
def test_stooq_stan_in_pence_is_divided_by_100_and_a_clean_series_has_no_flag(
    engine: Engine, admin: User, real_data: Path
) -> None:
    add_listing(engine, admin, STAN[0], "STAN", scale="GBX")
    result = import_file(engine, admin, real_data / "stooq" / "stan_uk_d.csv", "STAN", "stooq")
    assert (result.received, result.inserted, result.unchanged, result.flagged) == (9464, 9464, 0, {})
    rows = listed(engine, "STAN")
    assert len(rows) == 9464 and all(r["quality_flags"] == [] and r["usable"] for r in rows)
    day = next(r for r in rows if r["as_of"] == date(2024, 1, 12))
    assert (day["raw_price"], day["raw_currency"], day["raw_quote_scale"]) == (D("613.6"), "GBP", "GBX")
    assert day["normalized_price_base"] == D("6.136") and day["source"] == "stooq"
    with unit_of_work(engine, readonly=True) as s:
        assert s.execute(select(func.count()).select_from(Alert)).scalar_one() == 0
        audit_row = s.exec(select(AuditEvent).where(AuditEvent.action == "PRICES_IMPORTED")).one()[0]
        assert audit_row.details["inserted"] == 9464 and audit_row.details["flagged"] == {}


def test_yahoo_vusa_against_a_gbp_listing_and_gsej_json_files(
    engine: Engine, admin: User, real_data: Path
) -> None:
    add_listing(engine, admin, "IE00B3XXRP09", "VUSA")
    add_listing(engine, admin, "GB0009895292", "AZN", scale="GBX")
    add_listing(engine, admin, "IE00B3RBWM25", "VWRL")
    vusa = import_file(engine, admin, real_data / "yahoo" / "VUSA.L.csv", "VUSA", "yahoo")
    assert (vusa.inserted, vusa.flagged) == (1261, {})
    last = listed(engine, "VUSA")[-1]
    assert last["as_of"] == date(2023, 5, 31) and last["normalized_price_base"] == D("63.832500")
    assert last["raw_quote_scale"] == "GBP"
    azn = import_file(
        engine, admin, real_data / "gsej_investment_tracker" / "prices" / "AZN.L.json", "AZN", "json"
    )
    assert (azn.inserted, azn.flagged) == (3116, {})
    newest = listed(engine, "AZN")[-1]
    assert (newest["as_of"], newest["raw_price"], newest["raw_quote_scale"]) == (
        date(2024, 5, 2),
        D("12138"),
        "GBX",
    )
    assert newest["normalized_price_base"] == D("121.38")
    vwrl = import_file(
        engine, admin, real_data / "gsej_investment_tracker" / "prices" / "VWRL.L.json", "VWRL", "json"
    )
    assert (vwrl.inserted, vwrl.flagged) == (3016, {})
    # A file of another instrument is refused by its declared symbol, and nothing is stored.
    before = point_count(engine)
    with pytest.raises(ValidationError, match=r"for symbol AZN\.L, not for VWRL"):
        import_file(
            engine, admin, real_data / "gsej_investment_tracker" / "prices" / "AZN.L.json", "VWRL", "json"
        )
    assert point_count(engine) == before


def test_a_malformed_file_names_the_line_and_changes_nothing(
    engine: Engine, admin: User, tmp_path: Path
) -> None:
    add_listing(engine, admin, STAN[0], "STAN", scale="GBX")
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,1,600,5\n2024-01-03,1,2,1,oops,5\n")
    with pytest.raises(FileFormatError, match=r"bad.csv: line 3: close 'oops'"):
        import_file(engine, admin, bad, "STAN", "stooq")
    assert point_count(engine) == 0


# --------------------------------------------------------------------------------------------
# Suspect prices: flags, alerts, freezes
# --------------------------------------------------------------------------------------------
def test_a_pounds_stretch_is_flagged_stored_alerted_once_per_holder_and_freezes_only_holders(
    engine: Engine, admin: User, real_data: Path, tmp_path: Path
) -> None:
    stan = add_listing(engine, admin, STAN[0], "STAN", scale="GBX")
    unheld = add_listing(engine, admin, STAN[0], "STAN2", scale="GBX")
    holder = add_portfolio(engine, admin, "Holder", holds=stan)
    mapper = add_portfolio(engine, admin, "Mapper", maps=stan)
    bystander = add_portfolio(engine, admin, "Bystander")
    path = stan_tail(real_data, tmp_path, 300, pounds=range(200, 220))
    result = import_file(engine, admin, path, "STAN", "stooq")
    assert result.inserted == 300 and result.flagged == {"scale_suspect": 20}
    rows = listed(engine, "STAN")
    flagged = [r for r in rows if r["quality_flags"]]
    assert len(flagged) == 20 and all(
        r["quality_flags"] == ["scale_suspect"] and not r["usable"] for r in flagged
    )
    assert all(r["normalized_price_base"] is not None for r in flagged)  # stored as received, just not usable
    first_bad, last_bad = flagged[0]["as_of"], flagged[-1]["as_of"]

    with unit_of_work(engine, readonly=True) as s:
        alerts = s.exec(select(Alert).order_by(Alert.alert_id)).all()
        alerts = [a[0] for a in alerts]
        assert sorted(a.portfolio_id for a in alerts) == [holder, mapper]
        for alert in alerts:
            assert (alert.severity.value, alert.code) == ("CRITICAL", "PRICE_SCALE_SUSPECT")
            ctx = alert.context
            assert (ctx["listing"], ctx["listing_id"], ctx["count"]) == ("XLON:STAN", stan, 20)
            assert (ctx["first_date"], ctx["last_date"]) == (first_bad.isoformat(), last_bad.isoformat())
            assert D(ctx["ratio_min"]) < D("0.05") and D(ctx["ratio_max"]) < D("0.05")
        assert governance.is_frozen(s, holder) and governance.is_frozen(s, mapper)
        assert not governance.is_frozen(s, bystander) and s.get(FreezeState, bystander) is None
        status = governance.freeze_status(s, holder)
        assert status.reason_code == "PRICE_SCALE_SUSPECT" and "XLON:STAN" in (status.reason_detail or "")
        actions = [e[0].action for e in s.exec(select(AuditEvent).order_by(AuditEvent.audit_event_id)).all()]
        assert actions.count("FREEZE_SET") == 2 and actions.count("ALERT_RAISED") == 2
        bystander_alerts = governance.list_alerts(s, actor=_user(s, admin), portfolio="Bystander")
        assert bystander_alerts == []

    # The latest good price skips nothing here (the stretch is in the past) and reports its age.
    with unit_of_work(engine, readonly=True) as s:
        during = prices.latest_good_prices(s, [stan], last_bad)[stan]
        assert during.as_of < first_bad and during.age_days == (last_bad - during.as_of).days
        assert during.age_business_days >= 19

    # The same file again adds nothing and raises nothing.
    again = import_file(engine, admin, path, "STAN", "stooq")
    assert (again.inserted, again.unchanged, again.conflicts, again.alert_ids) == (0, 300, (), ())
    # A listing that no portfolio holds: its points are flagged, its alert has no portfolio.
    other = import_file(engine, admin, path, "STAN2", "stooq")
    assert other.flagged == {"scale_suspect": 20} and other.frozen_portfolio_ids == ()
    with unit_of_work(engine, readonly=True) as s:
        orphan = [
            a for a in governance.open_alerts(s, portfolio_id=None) if a.context["listing_id"] == unheld
        ]
        assert len(orphan) == 1 and orphan[0].severity.value == "CRITICAL"
        every = governance.list_alerts(s, actor=_user(s, admin))
        assert len(every) == 3 and any(a["portfolio"] is None for a in every)


def test_new_suspect_points_keep_one_open_alert_and_freeze_again_after_a_clear(
    engine: Engine, admin: User, real_data: Path, tmp_path: Path
) -> None:
    stan = add_listing(engine, admin, STAN[0], "STAN", scale="GBX")
    holder = add_portfolio(engine, admin, "Holder", holds=stan)
    full = stan_tail(real_data, tmp_path, 100, pounds=range(90, 95))
    lines = full.read_text().splitlines()
    first = tmp_path / "first.csv"
    first.write_text("\n".join(lines[:96]) + "\n")  # header + 95 days, 5 of them in pounds
    assert import_file(engine, admin, first, "STAN", "stooq").flagged == {"scale_suspect": 5}
    with unit_of_work(engine) as s:
        governance.clear_freeze(s, actor=_user(s, admin), portfolio_id=holder, reason="looked at it")
        assert not governance.is_frozen(s, holder)
    # The next download has two more days in pounds: still one open alert for the listing,
    # and the portfolio is frozen again (new suspect data arrived after the freeze was cleared).
    second = tmp_path / "second.csv"
    tail = [
        ",".join([*c[:4], format(D(c[4]) / 100, "f"), *c[5:]]) for c in (x.split(",") for x in lines[-2:])
    ]
    second.write_text("\n".join([*lines[:-2], *tail]) + "\n")
    result = import_file(engine, admin, second, "STAN", "stooq")
    assert (result.inserted, result.unchanged, result.flagged) == (5, 95, {"scale_suspect": 2})
    assert result.alert_ids == () and result.frozen_portfolio_ids == (holder,)
    with unit_of_work(engine, readonly=True) as s:
        assert len(governance.open_alerts(s, portfolio_id=holder)) == 1
        assert governance.is_frozen(s, holder)


def test_a_conflicting_value_is_reported_and_the_stored_one_kept(
    engine: Engine, admin: User, real_data: Path, tmp_path: Path
) -> None:
    add_listing(engine, admin, STAN[0], "STAN", scale="GBX")
    path = stan_tail(real_data, tmp_path, 50)
    import_file(engine, admin, path, "STAN", "stooq")
    text = path.read_text().replace("2024-01-12,", "2024-01-12,", 1)
    rows = list(csv.reader(text.splitlines()))
    for row in rows:
        if row[0] == "2024-01-12":
            row[4] = "614"
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    result = import_file(engine, admin, path, "STAN", "stooq")
    assert (result.inserted, result.unchanged, len(result.conflicts)) == (0, 49, 1)
    conflict = result.conflicts[0]
    assert (conflict.as_of, conflict.stored[0], conflict.new[0]) == (date(2024, 1, 12), D("613.6"), D("614"))
    assert next(r for r in listed(engine, "STAN") if r["as_of"] == date(2024, 1, 12))["raw_price"] == D(
        "613.6"
    )
    with unit_of_work(engine, readonly=True) as s:
        last = s.exec(select(AuditEvent).order_by(AuditEvent.audit_event_id.desc())).first()[0]
        assert last.action == "PRICES_IMPORTED" and last.details["conflicts"] == 1
        assert last.details["conflict_examples"][0]["new_raw_price"] == "614"


# --------------------------------------------------------------------------------------------
# Accepted levels, splits, latest good prices
# --------------------------------------------------------------------------------------------
def test_a_level_change_stays_suspect_until_accepted_then_later_points_are_usable(
    engine: Engine, admin: User, real_data: Path, tmp_path: Path
) -> None:
    stan = add_listing(engine, admin, STAN[0], "STAN", scale="GBX")
    add_portfolio(engine, admin, "Holder", holds=stan)
    # From row 150 on the feed reports pounds for good: it never becomes the level by lasting.
    path = stan_tail(real_data, tmp_path, 200, pounds=range(150, 200))
    result = import_file(engine, admin, path, "STAN", "stooq")
    assert result.flagged == {"scale_suspect": 50}
    rows = listed(engine, "STAN")
    switch = rows[150]["as_of"]
    with unit_of_work(engine, readonly=True) as s:
        before = prices.latest_good_prices(s, [stan], date(2024, 1, 15))[stan]
        assert before.as_of == rows[149]["as_of"] and before.price_gbp == rows[149]["normalized_price_base"]
        # 53 weekdays less Christmas Day, Boxing Day and New Year's Day: the exchange was shut
        assert before.is_stale and before.age_business_days == 50
    with pytest.raises(ValidationError, match="needs a reason"), unit_of_work(engine) as s:
        price_checks.accept_level(
            s, actor=_user(s, admin), ticker="STAN", exchange="XLON", effective_date=switch, reason=" "
        )
    with unit_of_work(engine) as s:
        outcome = price_checks.accept_level(
            s,
            actor=_user(s, admin),
            ticker="STAN",
            exchange="XLON",
            effective_date=switch,
            reason="consolidation",
        )
    assert (outcome.rechecked, outcome.now_usable, outcome.now_flagged) == (50, 50, 0)
    after_rows = listed(engine, "STAN")
    assert all(r["usable"] and r["quality_flags"] == [] for r in after_rows)
    assert after_rows[-1]["ingest_quality_flags"] == ["scale_suspect"]  # the stored point is unchanged
    with unit_of_work(engine, readonly=True) as s:
        latest = prices.latest_good_prices(s, [stan], date(2024, 1, 15))[stan]
        assert latest.as_of == date(2024, 1, 15) and latest.price_gbp == D("0.0605") and not latest.is_stale
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "PRICE_LEVEL_ACCEPTED")).one()[0]
        assert event.details["now_usable"] == 50 and event.details["reason"] == "consolidation"
    # New points at the accepted level are not flagged; a return to pence is (both directions count).
    lines = (real_data / "stooq" / "stan_uk_d.csv").read_text().splitlines()
    more = tmp_path / "more.csv"
    more.write_text(f"{lines[0]}\n2024-01-16,6,6,6,6.10,1\n2024-01-17,6,6,6,612,1\n")
    extra = import_file(engine, admin, more, "STAN", "stooq")
    assert extra.inserted == 2 and extra.flagged == {"scale_suspect": 1}
    assert listed(engine, "STAN")[-1]["quality_flags"] == ["scale_suspect"]


def test_recording_a_split_makes_the_new_level_usable(
    engine: Engine, admin: User, real_data: Path, tmp_path: Path
) -> None:
    stan = add_listing(engine, admin, STAN[0], "STAN", scale="GBX")
    path = stan_tail(real_data, tmp_path, 60, pounds=range(40, 60))  # a 100:1 split, not yet recorded
    assert import_file(engine, admin, path, "STAN", "stooq").flagged == {"scale_suspect": 20}
    split_day = listed(engine, "STAN")[40]["as_of"]
    with unit_of_work(engine) as s:
        action, results = market_workflows.record_split(
            s, actor=_user(s, admin), isin=STAN[0], effective_date=split_day, ratio_num=D(100), ratio_den=D(1)
        )
    assert action.action_type.value == "SPLIT" and results[0].now_usable == 20
    with unit_of_work(engine, readonly=True) as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "PRICES_RECHECKED")).one()
        assert event.details["now_usable"] == 20 and event.details["rechecked"] == {"XLON:STAN": 20}
    # Checking again changes nothing more.
    with unit_of_work(engine) as s:
        [again] = price_checks.recheck_prices(
            s, actor=_user(s, admin), ticker="STAN", exchange="XLON", from_date=split_day
        )
    assert (again.rechecked, again.now_usable, again.now_flagged) == (20, 0, 0)
    with unit_of_work(engine, readonly=True) as s:
        assert prices.latest_good_prices(s, [stan], date(2024, 1, 15))[stan].as_of == date(2024, 1, 15)


def test_latest_good_prices_skip_flagged_points_and_pick_per_listing(
    engine: Engine, admin: User, real_data: Path, tmp_path: Path
) -> None:
    stan = add_listing(engine, admin, STAN[0], "STAN", scale="GBX")
    vusa = add_listing(engine, admin, "IE00B3XXRP09", "VUSA")
    empty = add_listing(engine, admin, "IE00B3RBWM25", "VWRL")
    import_file(engine, admin, stan_tail(real_data, tmp_path, 30, pounds=range(28, 30)), "STAN", "stooq")
    import_file(engine, admin, real_data / "yahoo" / "VUSA.L.csv", "VUSA", "yahoo")
    with unit_of_work(engine, readonly=True) as s:
        latest = prices.latest_good_prices(s, [stan, vusa, empty], date(2024, 1, 15), max_age_business_days=5)
        assert set(latest) == {stan, vusa}
        assert latest[stan].as_of == date(2024, 1, 11) and latest[stan].price_gbp == D("6.134")
        assert (latest[stan].age_days, latest[stan].age_business_days, latest[stan].is_stale) == (4, 2, False)
        assert (
            latest[vusa].as_of == date(2023, 5, 31)
            and latest[vusa].is_stale
            and latest[vusa].source == "yahoo"
        )
        # As of a past moment: nothing after it is seen.
        past = prices.latest_good_prices(s, [vusa], datetime(2020, 3, 16, 12, 0, tzinfo=UTC))
        assert past[vusa].as_of == date(2020, 3, 13)


# --------------------------------------------------------------------------------------------
# FX
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_missing_fx_is_flagged_then_the_real_ecb_file_normalises_the_usd_listing(
    engine: Engine, admin: User, real_data: Path
) -> None:
    qqq = add_listing(engine, admin, "US46090E1038", "QQQ", exchange="XNAS", currency="USD", scale="USD")
    holder = add_portfolio(engine, admin, "Holder", holds=qqq)
    result = import_file(engine, admin, real_data / "stooq" / "qqq_us_d.csv", "QQQ", "stooq", exchange="XNAS")
    assert result.flagged == {"missing_fx": 207}
    rows = listed(engine, "QQQ", "XNAS")
    assert all(r["quality_flags"] == ["missing_fx"] and r["normalized_price_base"] is None for r in rows)
    with unit_of_work(engine, readonly=True) as s:
        [alert] = governance.open_alerts(s, portfolio_id=holder)
        assert (alert.code, alert.severity.value) == ("MISSING_FX", "WARN")
        assert not governance.is_frozen(s, holder)
        assert prices.latest_good_prices(s, [qqq], date(2025, 10, 29)) == {}

    with unit_of_work(engine) as s:
        imported = fx.import_fx_file(s, actor=_user(s, admin), path=real_data / "ecb" / "eurofxref-hist.csv")
    assert imported.first_date == date(1999, 1, 4) and imported.last_date == date(2026, 4, 13)
    assert "USD" in imported.currencies and imported.renormalized == 207
    rows = listed(engine, "QQQ", "XNAS")
    assert all(r["usable"] and r["quality_flags"] == [] for r in rows)
    last = rows[-1]
    with unit_of_work(engine, readonly=True) as s:
        series = fx.fx_series(s, "USD", date(2025, 10, 29), date(2025, 10, 29))
        rate = series.rate_on(date(2025, 10, 29))
        assert rate is not None
        assert last["normalized_price_base"] == (D("635.77") / rate).quantize(FX_QUANTUM)
        assert prices.latest_good_prices(s, [qqq], date(2025, 10, 29))[qqq].as_of == date(2025, 10, 29)

    # Re-importing adds nothing; prices imported now are normalised at once.
    with unit_of_work(engine) as s:
        again = fx.import_fx_file(s, actor=_user(s, admin), path=real_data / "ecb" / "eurofxref.csv")
    assert again.inserted == 0 and again.unchanged == again.received > 0


def test_fx_conflicts_are_reported(engine: Engine, admin: User, tmp_path: Path) -> None:
    first = tmp_path / "a.csv"
    first.write_text("Date,USD,GBP,\n2026-04-13,1.1684,0.87058,\n")
    second = tmp_path / "b.csv"
    second.write_text("Date,USD,GBP,\n2026-04-13,1.1700,0.87058,\n")
    with unit_of_work(engine) as s:
        assert fx.import_fx_file(s, actor=_user(s, admin), path=first).inserted == 2
    with unit_of_work(engine) as s:
        result = fx.import_fx_file(s, actor=_user(s, admin), path=second, currencies=["USD"])
    assert (result.inserted, result.unchanged, len(result.conflicts)) == (0, 0, 1)
    assert result.conflicts[0].stored_rate == D("1.34209377656")
    with pytest.raises(ValidationError, match="FX format"), unit_of_work(engine) as s:
        fx.import_fx_file(s, actor=_user(s, admin), path=first, fmt="oanda")


def test_portfolio_latest_lists_held_and_mapped_listings(
    engine: Engine, admin: User, real_data: Path
) -> None:
    stan = add_listing(engine, admin, STAN[0], "STAN", scale="GBX")
    vusa = add_listing(engine, admin, "IE00B3XXRP09", "VUSA")
    pid = add_portfolio(engine, admin, "Mine", holds=stan, maps=vusa)
    import_file(engine, admin, real_data / "stooq" / "stan_uk_d.csv", "STAN", "stooq")
    with unit_of_work(engine, readonly=True) as s:
        rows = prices.portfolio_latest(s, actor=_user(s, admin), portfolio="Mine", as_of=date(2024, 1, 16))
        assert s.get(Portfolio, pid) is not None
    assert [(r["ticker"], r["held"], r["constituent"]) for r in rows] == [
        ("STAN", True, False),
        ("VUSA", False, True),
    ]
    assert rows[0]["price_gbp"] == D("6.05") and rows[0]["age_business_days"] == 1 and not rows[0]["is_stale"]
    assert rows[1]["price_gbp"] is None and rows[1]["is_stale"]
