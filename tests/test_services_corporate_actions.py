"""Corporate actions: splits and merges keep the pooled cost, ISIN changes move holdings, every
affected portfolio is replayed, and an action the ledger cannot stand is refused (both backends)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from tradeassist.core.enums import EntryType
from tradeassist.core.errors import AlreadyExists, LedgerError, NotFound, ValidationError
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import AuditEvent, CashSnapshot, CorporateAction, HoldingSnapshot, User
from tradeassist.services import corporate_actions, identity, ledger, portfolios, registry
from tradeassist.services.ledger import NewEntry

D = Decimal
OLD, NEW, OTHER = "IE00B3RBWM25", "IE00BK5BQT80", "GB00B03MLX29"


def at(day: int) -> datetime:
    return datetime(2024, 1, 1, 12, tzinfo=UTC) + timedelta(days=day)


def setup(engine: Engine, admin: User) -> None:
    with unit_of_work(engine) as s:
        actor = s.get(User, admin.user_id)
        for isin, ticker, scale in ((OLD, "VWRL", "GBX"), (NEW, "VWRP", "GBP"), (OTHER, "RDSA", "GBX")):
            registry.add_instrument(s, actor=actor, isin=isin, instrument_type="ETF")
            registry.add_listing(
                s, actor=actor, isin=isin, ticker=ticker, exchange="XLON", currency="GBP", quote_scale=scale
            )
        for name in ("ISA", "GIA"):
            portfolios.add_portfolio(s, actor=actor, name=name, broker="x", tax_treatment="ISA")
    for name, units in (("ISA", "10"), ("GIA", "3")):
        post(
            engine,
            name,
            [
                NewEntry(at(0), EntryType.CONTRIBUTION, D(5000)),
                NewEntry(
                    at(1),
                    EntryType.BUY,
                    -D(units) * 80,
                    ticker="VWRL",
                    exchange="XLON",
                    units=D(units),
                    price=D(8000),
                ),
            ],
        )


def post(engine: Engine, portfolio: str, entries: list[NewEntry]) -> ledger.PostResult:
    with unit_of_work(engine) as s:
        return ledger.post_entries(
            s,
            actor=identity.bootstrap_admin(s),
            portfolio=portfolio,
            entries=entries,
            label="t",
            batch_type="MANUAL",
        )


def add(engine: Engine, **kw: Any) -> CorporateAction:
    with unit_of_work(engine) as s:
        return corporate_actions.add_corporate_action(s, actor=identity.bootstrap_admin(s), **kw)


def held(engine: Engine, portfolio: str) -> dict[str, tuple[Decimal, Decimal]]:
    with unit_of_work(engine, readonly=True) as s:
        rows = ledger.holdings(s, actor=identity.bootstrap_admin(s), portfolio=portfolio)
    return {r["ticker"]: (r["units"], r["avg_cost_base"]) for r in rows}


def state(engine: Engine) -> dict[str, Any]:
    with unit_of_work(engine, readonly=True) as s:
        return {
            "actions": s.execute(select(func.count()).select_from(CorporateAction)).scalar(),
            "audit": s.execute(select(func.count()).select_from(AuditEvent)).scalar(),
            "holdings": sorted(str(r.model_dump()) for r in s.execute(select(HoldingSnapshot)).scalars()),
            "cash": sorted(str(r.model_dump()) for r in s.execute(select(CashSnapshot)).scalars()),
        }


def test_split_then_merge_change_units_from_the_effective_date_and_keep_the_cost(
    engine: Engine, admin: User
) -> None:
    setup(engine, admin)
    add(engine, isin=OLD, action_type="SPLIT", effective=date(2024, 1, 10), ratio="5:1", notes="5 for 1")
    assert held(engine, "ISA") == {"VWRL": (D(50), D(16))}  # £800 over 50 units
    assert held(engine, "GIA") == {"VWRL": (D(15), D(16))}  # every holder is replayed
    # a sale after the split is in post-split units; one before is in the old units
    post(
        engine,
        "ISA",
        [
            NewEntry(
                at(20), EntryType.SELL, D(320), ticker="VWRL", exchange="XLON", units=D(20), price=D(1600)
            )
        ],
    )
    assert held(engine, "ISA") == {"VWRL": (D(30), D(16))}
    result = post(
        engine,
        "ISA",
        [NewEntry(at(5), EntryType.SELL, D(80), ticker="VWRL", exchange="XLON", units=D(1), price=D(8000))],
    )
    assert result.replayed and held(engine, "ISA") == {"VWRL": (D(25), D(16))}  # (10 − 1) × 5 − 20
    add(engine, isin=OLD, action_type="MERGE", effective="2024-02-01", ratio="1:5")
    assert held(engine, "ISA") == {"VWRL": (D(5), D(80))}
    with unit_of_work(engine, readonly=True) as s:
        rows = corporate_actions.list_corporate_actions(s)
        pid = ledger.load_listings(s)
        assert pid  # listings load
        audit = (
            s.execute(select(AuditEvent).where(AuditEvent.action == "CORPORATE_ACTION_ADDED")).scalars().all()
        )
    assert [(r["action_type"], r["ratio_num"], r["ratio_den"], r["isin"]) for r in rows] == [
        ("SPLIT", D(5), D(1), OLD),
        ("MERGE", D(1), D(5), OLD),
    ]
    assert len(audit) == 2 and audit[0].details["portfolios_replayed"] == 2
    with unit_of_work(engine) as s:
        for name in ("ISA", "GIA"):
            assert not ledger.rebuild(s, actor=identity.bootstrap_admin(s), portfolio=name).changed


def test_isin_change_moves_units_and_cost_to_the_new_instrument(engine: Engine, admin: User) -> None:
    setup(engine, admin)
    add(engine, isin=OLD, action_type="ISIN_CHANGE", effective="2024-01-15", new_isin=NEW)
    assert held(engine, "ISA") == {"VWRP": (D(10), D(80))}
    post(
        engine,
        "ISA",
        [NewEntry(at(30), EntryType.SELL, D(850), ticker="VWRP", exchange="XLON", units=D(10), price=D(85))],
    )
    assert held(engine, "ISA") == {}


def test_an_action_the_ledger_cannot_stand_is_refused_and_changes_nothing(
    engine: Engine, admin: User
) -> None:
    setup(engine, admin)
    post(
        engine,
        "ISA",
        [NewEntry(at(20), EntryType.SELL, D(640), ticker="VWRL", exchange="XLON", units=D(8), price=D(8000))],
    )
    before = state(engine)
    with pytest.raises(LedgerError, match=r"portfolio 'ISA'.*sells 8 units but only 5 are held"):
        add(engine, isin=OLD, action_type="MERGE", effective="2024-01-10", ratio="1:2")
    assert state(engine) == before


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"action_type": "SPLIT", "ratio": "1:2"}, ValidationError, "N > D"),
        ({"action_type": "MERGE", "ratio": "2:1"}, ValidationError, "N < D"),
        ({"action_type": "SPLIT"}, ValidationError, "needs a ratio"),
        ({"action_type": "SPLIT", "ratio": "two"}, ValidationError, "expected N:D"),
        ({"action_type": "SPLIT", "ratio": "0:1"}, ValidationError, "must be > 0"),
        ({"action_type": "DIVIDEND", "ratio": "2:1"}, ValidationError, "SPLIT, MERGE, ISIN_CHANGE"),
        ({"action_type": "ISIN_CHANGE"}, ValidationError, "needs the new ISIN"),
        ({"action_type": "ISIN_CHANGE", "new_isin": OLD}, ValidationError, "different ISIN"),
        ({"action_type": "ISIN_CHANGE", "new_isin": "US0378331005"}, NotFound, "unknown ISIN"),
        ({"action_type": "SPLIT", "ratio": "2:1", "new_isin": NEW}, ValidationError, "keeps the ISIN"),
        ({"action_type": "SPLIT", "ratio": "2:1", "effective": "2999-01-01"}, ValidationError, "future"),
        ({"action_type": "SPLIT", "ratio": "2:1", "effective": "01/02/2024"}, ValidationError, "YYYY-MM-DD"),
        ({"action_type": "SPLIT", "ratio": "2:1", "isin": "IE00B3RBWM26"}, ValidationError, "check digit"),
        (
            {"action_type": "SPLIT", "ratio": "3:1", "effective": "2024-01-10"},
            AlreadyExists,
            "recorded already",
        ),
    ],
)
def test_bad_actions_are_refused_clearly(
    engine: Engine, admin: User, kwargs: dict, error: type, message: str
) -> None:
    setup(engine, admin)
    add(engine, isin=OLD, action_type="SPLIT", effective="2024-01-10", ratio="2:1")
    before = state(engine)
    with pytest.raises(error, match=message):
        add(engine, **({"isin": OLD, "effective": "2024-01-20"} | kwargs))
    assert state(engine) == before


def test_prices_can_be_split_adjusted_for_charts(engine: Engine, admin: User) -> None:
    setup(engine, admin)
    add(engine, isin=OLD, action_type="SPLIT", effective="2024-01-10", ratio="4:1")
    with unit_of_work(engine, readonly=True) as s:
        series = corporate_actions.split_adjusted_prices(
            s, isin=OLD, prices=[(date(2024, 1, 9), D("8000")), (date(2024, 1, 10), D("2010"))]
        )
    assert series == [(date(2024, 1, 9), D(2000)), (date(2024, 1, 10), D(2010))]
