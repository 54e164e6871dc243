"""Alerts and freezes: deduplication, access, audit, explicit clearing; on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from tradeassist.core.errors import AccessDenied, FrozenError, NotFound, ValidationError
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import AuditEvent, User
from tradeassist.services import governance, identity, portfolios


def _setup(engine: Engine, admin: User) -> tuple[int, int, User]:
    with unit_of_work(engine) as s:
        actor = s.get(User, admin.user_id)
        ann = identity.add_user(s, actor=actor, email="ann@example.com", password="ann-password-1")
        mine = portfolios.add_portfolio(
            s, actor=actor, name="Admin SIPP", broker="AJBell", tax_treatment="SIPP"
        )
        hers = portfolios.add_portfolio(s, actor=ann, name="Ann ISA", broker="AJBell", tax_treatment="ISA")
        return mine.portfolio_id, hers.portfolio_id, ann  # type: ignore[return-value]


def _actions(engine: Engine) -> list[str]:
    with unit_of_work(engine, readonly=True) as s:
        return [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.audit_event_id))]


def test_alerts_dedupe_per_portfolio_code_and_subject(engine: Engine, admin: User) -> None:
    mine, _hers, _ann = _setup(engine, admin)
    with unit_of_work(engine) as s:
        first, created = governance.raise_alert(
            s,
            portfolio_id=mine,
            code="PRICE_SCALE_SUSPECT",
            severity="critical",
            message="m",
            context={"listing_id": 1},
        )
        again, created_again = governance.raise_alert(
            s,
            portfolio_id=mine,
            code="PRICE_SCALE_SUSPECT",
            severity="CRITICAL",
            message="m2",
            context={"listing_id": 1},
        )
        other, created_other = governance.raise_alert(
            s,
            portfolio_id=mine,
            code="PRICE_SCALE_SUSPECT",
            severity="CRITICAL",
            message="m",
            context={"listing_id": 2},
        )
        loose, _ = governance.raise_alert(
            s, portfolio_id=None, code="RUN_FAILED", severity="WARN", message="x"
        )
        assert (created, created_again, created_other) == (True, False, True)
        assert again.alert_id == first.alert_id and other.alert_id != first.alert_id
        assert loose.portfolio_id is None
        with pytest.raises(ValidationError, match="severity"):
            governance.raise_alert(s, portfolio_id=None, code="X", severity="LOUD", message="x")
    with unit_of_work(engine) as s:
        governance.resolve_alert(s, actor=s.get(User, admin.user_id), alert_id=first.alert_id, note="fixed")
    with unit_of_work(engine) as s:
        # Resolved: the same subject raises a new alert.
        _, created = governance.raise_alert(
            s,
            portfolio_id=mine,
            code="PRICE_SCALE_SUSPECT",
            severity="CRITICAL",
            message="m",
            context={"listing_id": 1},
        )
        assert created
        with pytest.raises(ValidationError, match="already resolved"):
            governance.resolve_alert(s, actor=s.get(User, admin.user_id), alert_id=first.alert_id)
        with pytest.raises(NotFound):
            governance.resolve_alert(s, actor=s.get(User, admin.user_id), alert_id=9999)
    assert _actions(engine).count("ALERT_RAISED") == 4 and "ALERT_RESOLVED" in _actions(engine)


def test_listing_alerts_respects_access(engine: Engine, admin: User) -> None:
    mine, hers, ann = _setup(engine, admin)
    with unit_of_work(engine) as s:
        for pid in (mine, hers, None):
            governance.raise_alert(s, portfolio_id=pid, code="C", severity="INFO", message=f"for {pid}")
    with unit_of_work(engine, readonly=True) as s:
        admin_rows = governance.list_alerts(s, actor=s.get(User, admin.user_id))
        ann_rows = governance.list_alerts(s, actor=s.get(User, ann.user_id))
        assert {r["portfolio"] for r in admin_rows} == {"Admin SIPP", "Ann ISA", None}
        assert {r["portfolio"] for r in ann_rows} == {"Ann ISA", None}
        assert set(ann_rows[0]) >= {
            "alert_id",
            "severity",
            "code",
            "message",
            "context",
            "created_at",
            "resolved_at",
        }
        mine_rows = governance.list_alerts(s, actor=s.get(User, admin.user_id), portfolio="Admin SIPP")
        assert [r["message"] for r in mine_rows] == [f"for {mine}"]
    with pytest.raises(AccessDenied), unit_of_work(engine, readonly=True) as s:
        governance.list_alerts(s, actor=s.get(User, ann.user_id), portfolio="Admin SIPP")
    with pytest.raises(AccessDenied), unit_of_work(engine) as s:
        alert_id = governance.list_alerts(s, actor=s.get(User, admin.user_id), portfolio="Admin SIPP")[0][
            "alert_id"
        ]
        governance.resolve_alert(s, actor=s.get(User, ann.user_id), alert_id=alert_id)


def test_freeze_set_clear_status_audited(engine: Engine, admin: User) -> None:
    mine, _hers, ann = _setup(engine, admin)
    with unit_of_work(engine, readonly=True) as s:
        never = governance.portfolio_freeze_status(
            s, actor=s.get(User, admin.user_id), portfolio="Admin SIPP"
        )
        assert not never.is_frozen and never.reason_code is None and never.set_at is None
    with unit_of_work(engine) as s:
        actor = s.get(User, admin.user_id)
        status = governance.freeze_portfolio(s, actor=actor, portfolio="Admin SIPP", reason="holiday")
        assert status.changed and status.is_frozen and status.reason_code == "MANUAL"
        again = governance.set_freeze(s, actor=None, portfolio_id=mine, reason_code="PRICE_SCALE_SUSPECT")
        assert not again.changed and again.reason_detail == "holiday"  # the first reason stays
        with pytest.raises(FrozenError, match="holiday"):
            governance.require_not_frozen(s, mine, "trade")
    with pytest.raises(AccessDenied), unit_of_work(engine) as s:
        governance.unfreeze_portfolio(s, actor=s.get(User, ann.user_id), portfolio="Admin SIPP", reason="no")
    with pytest.raises(ValidationError, match="needs a reason"), unit_of_work(engine) as s:
        governance.unfreeze_portfolio(s, actor=s.get(User, admin.user_id), portfolio="Admin SIPP", reason=" ")
    with unit_of_work(engine) as s:
        cleared = governance.unfreeze_portfolio(
            s, actor=s.get(User, admin.user_id), portfolio="Admin SIPP", reason="back"
        )
        assert not cleared.is_frozen and cleared.cleared_at is not None
        assert not governance.is_frozen(s, mine)
        governance.require_not_frozen(s, mine, "trade")
    with pytest.raises(ValidationError, match="not frozen"), unit_of_work(engine) as s:
        governance.unfreeze_portfolio(
            s, actor=s.get(User, admin.user_id), portfolio="Admin SIPP", reason="again"
        )
    with unit_of_work(engine, readonly=True) as s:
        events = s.scalars(
            select(AuditEvent).where(AuditEvent.action.in_(["FREEZE_SET", "FREEZE_CLEARED"]))  # type: ignore[attr-defined]
        ).all()
        assert [e.action for e in events] == ["FREEZE_SET", "FREEZE_CLEARED"]
        assert (
            events[1].details["reason"] == "back" and events[1].details["was"]["reason_detail"] == "holiday"
        )
        assert events[1].actor_user_id == admin.user_id


def test_raise_and_freeze_targets_only_the_given_portfolios(engine: Engine, admin: User) -> None:
    mine, hers, _ann = _setup(engine, admin)
    with unit_of_work(engine) as s:
        raised = governance.raise_and_freeze(
            s,
            actor=None,
            portfolio_ids=[mine],
            code="RUN_FAILED",
            severity="CRITICAL",
            message="the weekly run failed",
            context={"listing_id": None},
        )
        assert raised.frozen == (mine,) and len(raised.created) == 1
        assert governance.is_frozen(s, mine) and not governance.is_frozen(s, hers)
        nobody = governance.raise_and_freeze(
            s, actor=None, portfolio_ids=[], code="PRICE_SCALE_SUSPECT", severity="CRITICAL", message="m"
        )
        assert nobody.alerts[0].portfolio_id is None and nobody.frozen == ()
