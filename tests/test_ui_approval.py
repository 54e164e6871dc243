"""The approval view without a browser, on both backends: set widget values, click the
buttons, then check what the widgets show and what the database holds."""

from __future__ import annotations

import html
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from tests.support.recommendations import EVERY_SCALE, NEVER_SELL_SEMIS, store
from tradeassist.core.enums import BatchType
from tradeassist.core.money import round_cash
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.db.models import AuditEvent, LedgerBatch, LedgerEntry, Recommendation, User
from tradeassist.demo import DEMO_PORTFOLIO, data
from tradeassist.services import governance, identity, strategy
from tradeassist.services import recommendations as reco_service
from tradeassist.ui.approval import ALL_PORTFOLIOS, ApprovalView
from tradeassist.ui.approval_card import RecommendationCard
from tradeassist.ui.widgets import shown


def state(engine: Engine, rid: int) -> dict[str, object]:
    """What an action may change: the recommendation, its audit trail, the ledger."""
    with unit_of_work(engine, readonly=True) as s:
        reco = s.get(Recommendation, rid)
        assert reco is not None
        return {
            "status": reco.status.value,
            "status_reason": reco.status_reason,
            "audit": s.exec(
                select(AuditEvent.action)
                .where(AuditEvent.entity_type == "recommendation", AuditEvent.entity_id == str(rid))
                .order_by(AuditEvent.audit_event_id)
            ).all(),
            "batches": s.exec(select(func.count()).select_from(LedgerBatch)).one(),
            "entries": s.exec(select(func.count()).select_from(LedgerEntry)).one(),
        }


def admin_of(s) -> User:  # type: ignore[no-untyped-def]
    user = identity.bootstrap_admin(s)
    assert user is not None
    return user


def latest_message(view: ApprovalView) -> str:
    return view.history[0] if view.history else ""


def card(view: ApprovalView, rid: int) -> RecommendationCard:
    return view.cards[rid]


def test_the_pending_recommendation_is_shown_and_approved(demo_engine: Engine) -> None:
    rid = store(demo_engine, "MONTHLY_ALLOC", contribution="1000", policy_changes=EVERY_SCALE)
    view = ApprovalView(demo_engine)
    assert view.portfolio_picker.options == (ALL_PORTFOLIOS, DEMO_PORTFOLIO)
    assert view.portfolio_picker.value == DEMO_PORTFOLIO  # the only one: chosen
    assert "1 recommendation(s) shown, 1 waiting for approval" in view.summary.value
    assert view.banner.value == "" and view.alerts.value == ""
    shown_card = card(view, rid)
    assert shown_card.widget._dom_classes[:2] == ("ta-card", f"ta-reco-{rid}")
    page = "".join(child.value for child in shown_card.widget.children[:3])
    headline = shown_card.data["headline"]
    assert headline.startswith("Buy ") and html.escape(headline) in page
    for text in ("DRAFT", "no review yet", "VWRP", "XLE", "BUY", "<td>invests cash</td>"):
        assert text in page
    assert "ALLOCATE_CASH" not in page  # the reason in words, not its code
    rationale = shown_card.rationale.children[0].value
    assert "<b>SEMIS</b>" in rationale and "% ⚠" in rationale  # over its band before
    assert "<td>Contribution</td><td class='num'>£1,000.00</td>" in rationale
    assert shown(shown_card.approve_button) and not shown_card.approve_button.disabled
    assert shown(shown_card.review_button) and shown(shown_card.ignore_button)
    assert not shown(shown_card.override_button) and not shown(shown_card.execute_button)
    assert shown_card.approve_button.description == "Approve"
    assert "ta-approve" in shown_card.approve_button._dom_classes

    shown_card.approve_button.click()
    message = latest_message(view)
    assert "ta-ok" in message and f"Recommendation #{rid} approved (now REVIEWED)" in message
    assert "Audit: RECO_REVIEWED, RECO_APPROVED." in message  # no verdict yet: reviewed first
    assert state(demo_engine, rid)["status"] == "REVIEWED"
    assert state(demo_engine, rid)["audit"] == ["RECO_REVIEWED", "RECO_APPROVED"]

    again = card(view, rid)  # the page was read again, the result kept under the card
    assert f"Recommendation #{rid} approved" in again.message.value
    assert again is not shown_card and again.status == "REVIEWED"
    assert not shown(again.approve_button) and not shown(again.review_button)
    assert shown(again.execute_button) and shown(again.ignore_button)
    assert "review PASS" in again.widget.children[0].value
    assert "builtin-rules" in again.widget.children[2].value
    assert "0 waiting for approval" in view.summary.value


def test_marking_executed_posts_the_edited_fills_as_one_batch(demo_engine: Engine) -> None:
    rid = store(demo_engine, policy_changes=EVERY_SCALE)
    with unit_of_work(demo_engine) as s:  # whatever the review says: this test is about the fills
        reco_service.approve_recommendation(
            s, actor=admin_of(s), recommendation_id=rid, override_reason="the fills are what this tests"
        )
    view = ApprovalView(demo_engine)
    item = card(view, rid)
    assert not shown(item.fills_box)
    item.execute_button.click()
    assert shown(item.fills_box)
    rows = {row.default.ticker: row for row in item.fill_rows}
    lines = {line["ticker"]: line for line in item.data["lines"]}
    assert list(rows) == [t for t, line in lines.items() if not line["suppressed_by_min_trade"]]
    assert {"SMGB", "VWRP", "XLE"} <= set(rows)  # pence, pounds and dollars
    # pre-filled from the lines, each price in its listing's quote unit
    smgb = Decimal(lines["SMGB"]["amount_base"]) / Decimal(lines["SMGB"]["estimated_units"])
    assert rows["SMGB"].units.value == "20" and rows["SMGB"].price.description == "price (pence)"
    assert Decimal(rows["SMGB"].price.value) == (smgb * 100).quantize(Decimal("0.0001"))
    vwrp = Decimal(lines["VWRP"]["amount_base"]) / Decimal(lines["VWRP"]["estimated_units"])
    assert rows["VWRP"].price.description == "price (GBP)"
    assert Decimal(rows["VWRP"].price.value) == vwrp.quantize(Decimal("0.0001"))
    assert rows["XLE"].price.description == "price (USD)" and Decimal(rows["XLE"].price.value) > 0
    assert shown(rows["XLE"].consideration) and not shown(rows["SMGB"].consideration)
    assert rows["XLE"].consideration.value == str(round_cash(Decimal(lines["XLE"]["amount_base"])))
    assert {row.fees.value for row in rows.values()} == {"1.50"}

    # a typo is refused with the line named, and nothing changes
    before = state(demo_engine, rid)
    rows["VWRP"].units.value = "fifty"
    item.confirm_button.click()
    assert "ta-error" in latest_message(view)
    assert "Could not execute recommendation" in latest_message(view)
    assert "VWRP" in latest_message(view) and "fifty" in latest_message(view)
    assert "Traceback" not in view.status.value
    assert item.message.value == latest_message(view)  # under the card too
    assert state(demo_engine, rid) == before
    assert card(view, rid) is item and shown(item.fills_box)  # the grid stays as typed

    # pounds typed for a pence listing: the service's sanity check says so
    vwrp_units = Decimal(lines["VWRP"]["estimated_units"]) - 1  # one fewer bought than advised
    rows["VWRP"].units.value = str(vwrp_units)
    rows["SMGB"].price.value = str((smgb).quantize(Decimal("0.01")))
    item.confirm_button.click()
    assert "quote scale (pence)" in latest_message(view)
    assert state(demo_engine, rid) == before

    rows["SMGB"].price.value = str((smgb * 100).quantize(Decimal("0.01")))
    rows["XLE"].include.value = False  # not done at the broker
    item.executed_at.value = "2026-07-01T10:15:00+01:00"
    item.confirm_button.click()
    message = latest_message(view)
    assert "ta-ok" in message and f"Recommendation #{rid} marked executed (ledger batch" in message
    assert "RECO_EXECUTED" in message
    after = state(demo_engine, rid)
    assert after["status"] == "EXECUTED" and after["batches"] == before["batches"] + 1  # type: ignore[operator]
    assert after["entries"] == before["entries"] + len(rows) - 1  # type: ignore[operator]
    with unit_of_work(demo_engine, readonly=True) as s:
        batch = s.exec(select(LedgerBatch).where(LedgerBatch.recommendation_id == rid)).one()
        assert batch.batch_type is BatchType.EXECUTION and f"batch {batch.ledger_batch_id}" in message
        entries = s.exec(
            select(LedgerEntry).where(LedgerEntry.ledger_batch_id == batch.ledger_batch_id)
        ).all()
    done = {t: Decimal(line["estimated_units"]) for t, line in lines.items() if t in rows and t != "XLE"}
    assert sorted(e.units for e in entries) == sorted((done | {"VWRP": vwrp_units}).values())
    assert {e.entry_time.isoformat() for e in entries} == {"2026-07-01T09:15:00+00:00"}

    assert view.cards == {} and "No recommendations waiting" in view.summary.value
    view.show_closed.value = True
    assert card(view, rid).status == "EXECUTED"
    assert not any(shown(b) for b in (card(view, rid).approve_button, card(view, rid).execute_button))


def test_ignoring_needs_a_reason(demo_engine: Engine) -> None:
    rid = store(demo_engine)
    view = ApprovalView(demo_engine)
    before = state(demo_engine, rid)
    card(view, rid).ignore_button.click()
    assert "ta-error" in latest_message(view) and "needs a reason" in latest_message(view)
    assert state(demo_engine, rid) == before

    card(view, rid).reason.value = "  markets closed for the holiday; next quarter  "
    card(view, rid).ignore_button.click()
    assert f"Recommendation #{rid} ignored (now IGNORED). Audit: RECO_IGNORED." in latest_message(view)
    after = state(demo_engine, rid)
    assert after["status"] == "IGNORED" and after["audit"] == ["RECO_IGNORED"]
    assert after["status_reason"] == "markets closed for the holiday; next quarter"
    assert rid not in view.cards
    view.show_closed.value = True
    assert "markets closed for the holiday" in card(view, rid).note.value


def test_a_fail_verdict_is_overridden_only_with_a_reason(demo_engine: Engine) -> None:
    # Stored under the demo strategy (it sells SMGB, a SEMIS listing), then reviewed under a
    # strategy approved since whose manifesto says never sell SEMIS (its search would not).
    rid = store(demo_engine)
    with unit_of_work(demo_engine) as s:
        admin = admin_of(s)
        strategy.add_strategy(
            s, actor=admin, label="careful", policy_text=data.POLICY, manifesto=NEVER_SELL_SEMIS
        )
        strategy.approve_strategy(s, actor=admin, label="careful")
    view = ApprovalView(demo_engine)
    card(view, rid).review_button.click()
    assert "reviewed (verdict FAIL)" in latest_message(view)
    item = card(view, rid)
    assert (
        "review FAIL" in item.widget.children[0].value
        and "never sell: SEMIS" in item.widget.children[2].value
    )
    assert "ta-verdict-FAIL" in item.widget._dom_classes
    assert item.approve_button.disabled and shown(item.override_button) and not item.override_button.disabled
    assert not shown(item.review_button)  # reviewed: approving would not ask again
    assert "press Override &amp; approve" in item.note.value

    before = state(demo_engine, rid)
    item.override_button.click()
    assert "Could not override recommendation" in latest_message(view) and "FAILED" in latest_message(view)
    assert state(demo_engine, rid) == before

    item.reason.value = "SEMIS is 4 points over target; selling some is the plan"
    item.override_button.click()
    assert "approved over its FAIL verdict" in latest_message(view)
    assert "Audit: RECO_FAIL_OVERRIDDEN, RECO_APPROVED." in latest_message(view)
    after = state(demo_engine, rid)
    assert after["status"] == "REVIEWED"
    assert after["audit"] == ["RECO_REVIEWED", "RECO_FAIL_OVERRIDDEN", "RECO_APPROVED"]
    assert "FAIL overridden: SEMIS is 4 points" in card(view, rid).note.value


def test_a_frozen_portfolio_shows_the_banner_and_its_alerts_and_refuses(demo_engine: Engine) -> None:
    rid = store(demo_engine)
    with unit_of_work(demo_engine) as s:
        admin = admin_of(s)
        governance.freeze_portfolio(
            s, actor=admin, portfolio=DEMO_PORTFOLIO, reason="broker statement disagrees"
        )
        portfolio_id = governance.portfolio_freeze_status(
            s, actor=admin, portfolio=DEMO_PORTFOLIO
        ).portfolio_id
        governance.raise_alert(
            s, portfolio_id=portfolio_id, code="PRICE_JUMP", severity="CRITICAL", message="SMGB moved 100x"
        )
    view = ApprovalView(demo_engine)
    assert "Demo SIPP is frozen" in view.banner.value and "broker statement disagrees" in view.banner.value
    assert "tradeassist freeze clear" in view.banner.value
    assert "Open alerts (1)" in view.alerts.value and "PRICE_JUMP" in view.alerts.value
    assert "SMGB moved 100x" in view.alerts.value
    item = card(view, rid)
    assert shown(item.approve_button) and item.approve_button.disabled
    assert "frozen" in item.note.value

    before = state(demo_engine, rid)
    item.on_approve()  # even when pressed anyway, the service refuses: a message, not a traceback
    assert "ta-error" in latest_message(view) and "the portfolio is frozen" in latest_message(view)
    assert state(demo_engine, rid) == before


def test_the_picker_and_the_acting_user(demo_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    rid = store(demo_engine)
    view = ApprovalView(demo_engine, portfolio=DEMO_PORTFOLIO)
    view.portfolio_picker.value = ALL_PORTFOLIOS
    assert list(view.cards) == [rid] and view.portfolio is None
    view.portfolio_picker.value = DEMO_PORTFOLIO
    assert list(view.cards) == [rid]
    assert "acting as admin@example.com" in view.who.value

    with unit_of_work(demo_engine) as s:
        identity.add_user(s, actor=admin_of(s), email="guest@example.com", password="guest-pass-123")
    monkeypatch.setenv("TRADEASSIST_USER", "guest@example.com")
    guest = ApprovalView(demo_engine)
    assert guest.portfolio_picker.options == (ALL_PORTFOLIOS,) and guest.cards == {}
    assert (
        "No recommendations waiting" in guest.summary.value
        and "acting as guest@example.com" in guest.who.value
    )
    monkeypatch.setenv("TRADEASSIST_USER", "nobody@example.com")
    assert "TRADEASSIST_USER=nobody@example.com: no such user" in latest_message(ApprovalView(demo_engine))


def test_a_database_without_a_schema_is_a_message(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        view = ApprovalView(engine)
    finally:
        engine.dispose()
    assert "no schema yet" in latest_message(view) and "tradeassist init" in latest_message(view)
    assert view.cards == {}
