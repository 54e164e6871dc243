"""The recommendation lifecycle on both backends, on the demo SIPP (GBP, pence and dollar
listings): review once per request, approve, override a FAIL, ignore, execute into the ledger,
and every refusal leaving the database as it was."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from tests.support.http_server import RecordingServer, Reply
from tests.support.recommendations import EVERY_SCALE, NEVER_SELL_SEMIS, store
from tests.test_providers_reviewers import WARN_JSON, openai_completion
from tradeassist.core.enums import BatchType, NotificationStatus, RecommendationStatus, RunStatus
from tradeassist.core.errors import (
    AccessDenied,
    ConfigError,
    FrozenError,
    LedgerError,
    NotFound,
    ProviderError,
    ValidationError,
)
from tradeassist.core.money import round_cash
from tradeassist.core.timeutil import utcnow
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import (
    AuditEvent,
    CashSnapshot,
    HoldingSnapshot,
    InstrumentListing,
    LedgerBatch,
    LedgerEntry,
    LLMVerdict,
    Notification,
    Recommendation,
    StrategyVersion,
    User,
)
from tradeassist.demo import DEMO_PORTFOLIO, data
from tradeassist.services import governance, identity, ledger, strategy
from tradeassist.services import recommendations as reco_service
from tradeassist.services.executions import Fill
from tradeassist.services.reviews import ReviewFailed

QUOTE_SCALES = {listing.ticker: listing.quote_scale for listing in data.LISTINGS}
FEE = Decimal("1.50")


def contribute(engine: Engine, amount: str) -> None:
    """The month's contribution arrives: a monthly allocation spends it."""
    with unit_of_work(engine) as s:
        ledger.post_entries(
            s,
            actor=admin_of(s),
            portfolio=DEMO_PORTFOLIO,
            entries=[ledger.NewEntry(utcnow(), "CONTRIBUTION", Decimal(amount))],
            label="contribution",
            batch_type="MONTHLY_CONTRIB",
        )


def admin_of(s) -> User:  # type: ignore[no-untyped-def]
    user = identity.bootstrap_admin(s)
    assert user is not None
    return user


def show(engine: Engine, rid: int) -> dict:
    with unit_of_work(engine, readonly=True) as s:
        return reco_service.get_recommendation(s, actor=admin_of(s), recommendation_id=rid)


def approve(engine: Engine, rid: int, reason: str | None = None) -> None:
    with unit_of_work(engine) as s:
        reco_service.approve_recommendation(
            s, actor=admin_of(s), recommendation_id=rid, override_reason=reason
        )


def execute(engine: Engine, rid: int, fills: list[Fill]):  # type: ignore[no-untyped-def]
    with unit_of_work(engine) as s:
        return reco_service.execute_recommendation(s, actor=admin_of(s), recommendation_id=rid, fills=fills)


def fills_at_estimates(lines: list[dict]) -> list[Fill]:
    """A fill for each executed line at the line's estimated price, quoted as the broker would:
    pence for a GBX listing, pounds for GBP, and dollars with the GBP consideration for USD."""
    fills = []
    for line in lines:
        if line["suppressed_by_min_trade"]:
            continue
        units = Decimal(line["estimated_units"])
        per_unit = Decimal(line["amount_base"]) / units
        scale = QUOTE_SCALES[line["ticker"]]
        if scale == "GBX":
            fill = Fill(
                line["ticker"], line["exchange"], line["action"], units, round(per_unit * 100, 2), FEE
            )
        elif scale == "GBP":
            fill = Fill(line["ticker"], line["exchange"], line["action"], units, round(per_unit, 2), FEE)
        else:
            fill = Fill(
                line["ticker"],
                line["exchange"],
                line["action"],
                units,
                round(per_unit * Decimal("1.27"), 2),
                FEE,
                consideration_base=round_cash(Decimal(line["amount_base"])),
            )
        fills.append(fill)
    return fills


def expected_cash(fill: Fill) -> Decimal:
    if fill.consideration_base is not None:
        value = Decimal(fill.consideration_base)
    elif QUOTE_SCALES[fill.ticker] == "GBX":
        value = round_cash(Decimal(fill.units) * Decimal(fill.price) / 100)
    else:
        value = round_cash(Decimal(fill.units) * Decimal(fill.price))
    return -(value + FEE) if fill.action == "BUY" else value - FEE


def counts(engine: Engine) -> dict[str, object]:
    """What a refused operation must leave exactly as it was."""
    with unit_of_work(engine, readonly=True) as s:
        return {
            "batches": s.exec(select(func.count()).select_from(LedgerBatch)).one(),
            "entries": s.exec(select(func.count()).select_from(LedgerEntry)).one(),
            "cash": [c.cash_balance for c in s.exec(select(CashSnapshot)).all()],
            "holdings": sorted((h.listing_id, h.units) for h in s.exec(select(HoldingSnapshot)).all()),
            "statuses": [(r.recommendation_id, r.status) for r in s.exec(select(Recommendation)).all()],
            "verdicts": s.exec(select(func.count()).select_from(LLMVerdict)).one(),
            "audit": s.exec(select(func.count()).select_from(AuditEvent)).one(),
        }


# --------------------------------------------------------------------------------------------
# The lifecycle
# --------------------------------------------------------------------------------------------
def test_review_approve_execute_posts_one_linked_batch_with_exact_cash(demo_engine: Engine) -> None:
    rid = store(demo_engine, "MONTHLY_ALLOC", "1000", policy_changes=EVERY_SCALE)
    [pending] = _pending(demo_engine)
    assert pending["recommendation_id"] == rid and pending["status"] == "DRAFT"
    assert (pending["latest_verdict"], pending["blocked"], pending["frozen"]) == (None, False, False)
    assert set(pending["lines"][0]) == {
        "line_id",
        "ticker",
        "exchange",
        "action",
        "amount_base",
        "estimated_units",
        "suppressed_by_min_trade",
        "reason_code",
    }
    lines = pending["lines"]
    assert {QUOTE_SCALES[line["ticker"]] for line in lines} == {"GBX", "GBP", "USD"}

    approve(demo_engine, rid)  # no verdict yet: reviewed first
    shown = show(demo_engine, rid)
    assert shown["status"] == "REVIEWED" and shown["latest_verdict"] == "PASS"
    [verdict] = shown["verdicts"]
    assert (verdict["provider"], verdict["model"]) == ("builtin-rules", "rules-v2")
    assert set(verdict) >= {"provider", "model", "verdict", "reasons", "created_at"}

    before = counts(demo_engine)
    with pytest.raises(LedgerError, match=r"cash would go below zero.*record it in the ledger first"):
        execute(demo_engine, rid, fills_at_estimates(lines))
    assert counts(demo_engine) == before
    contribute(demo_engine, "1000")
    execute_and_check(demo_engine, rid, lines)
    with unit_of_work(demo_engine, readonly=True) as s:
        actions = s.exec(
            select(AuditEvent.action).where(
                AuditEvent.entity_type == "recommendation", AuditEvent.entity_id == str(rid)
            )
        ).all()
    assert actions == ["RECO_REVIEWED", "RECO_APPROVED", "RECO_EXECUTED"]
    assert show(demo_engine, rid)["status"] == "EXECUTED"
    assert _pending(demo_engine) == []
    assert [r["status"] for r in _pending(demo_engine, include_closed=True)] == ["EXECUTED"]


def test_a_rebalance_sells_first_so_its_sales_pay_for_its_buys(demo_engine: Engine) -> None:
    rid = store(demo_engine)
    approve_whatever_the_verdict(demo_engine, rid)
    lines = show(demo_engine, rid)["lines"]
    buys = sum((Decimal(line["amount_base"]) for line in lines if line["action"] == "BUY"), Decimal(0))
    with unit_of_work(demo_engine, readonly=True) as s:
        assert s.exec(select(CashSnapshot)).one().cash_balance < buys  # the buys need the sales
    # The buys are typed first: the service still books the sales first at that moment.
    execute_and_check(demo_engine, rid, sorted(lines, key=lambda line: line["action"]))


def approve_whatever_the_verdict(engine: Engine, rid: int) -> None:
    with unit_of_work(engine) as s:
        verdict = reco_service.review_recommendation(s, actor=admin_of(s), recommendation_id=rid)
    approve(engine, rid, "testing execution" if verdict.verdict.value == "FAIL" else None)


def execute_and_check(engine: Engine, rid: int, lines: list[dict]) -> None:
    """Execute fills at the lines' estimates; check the one linked batch, its exact cash and
    the snapshots."""
    with unit_of_work(engine, readonly=True) as s:
        cash_before = s.exec(select(CashSnapshot)).one().cash_balance
        units_before = {h.listing_id: h.units for h in s.exec(select(HoldingSnapshot)).all()}
        ids = {lst.ticker: lst.listing_id for lst in s.exec(select(InstrumentListing)).all()}
    fills = fills_at_estimates(lines)
    result = execute(engine, rid, fills)
    assert result.added == len(fills)
    movement = sum((expected_cash(f) for f in fills), Decimal(0))
    with unit_of_work(engine, readonly=True) as s:
        [batch] = s.exec(select(LedgerBatch).where(LedgerBatch.recommendation_id == rid)).all()
        assert batch.batch_type is BatchType.EXECUTION and batch.ledger_batch_id == result.batch_id
        entries = s.exec(
            select(LedgerEntry).where(LedgerEntry.ledger_batch_id == batch.ledger_batch_id)
        ).all()
        by_listing = {e.listing_id: e for e in entries}
        for fill in fills:
            entry = by_listing[ids[fill.ticker]]
            assert entry.cash_amount_base == expected_cash(fill)  # pence become pounds, to the penny
            assert (entry.units, entry.price, entry.fees_base) == (fill.units, fill.price, FEE)
        assert (
            s.exec(select(CashSnapshot)).one().cash_balance == cash_before + movement == result.cash_balance
        )
        units_after = {h.listing_id: h.units for h in s.exec(select(HoldingSnapshot)).all()}
        for fill in fills:
            sign = 1 if fill.action == "BUY" else -1
            listing = ids[fill.ticker]
            assert units_after[listing] == units_before.get(listing, 0) + sign * fill.units


def _pending(engine: Engine, **kwargs) -> list[dict]:  # type: ignore[no-untyped-def]
    with unit_of_work(engine, readonly=True) as s:
        return reco_service.pending_recommendations(s, actor=admin_of(s), **kwargs)


def test_a_fail_blocks_approval_until_overridden_with_a_reason(demo_engine: Engine) -> None:
    # Stored under the demo strategy (it sells SMGB, a SEMIS listing), then reviewed under a
    # strategy approved since whose manifesto says never sell SEMIS (its search would not).
    rid = store(demo_engine)
    with unit_of_work(demo_engine) as s:
        admin = admin_of(s)
        strategy.add_strategy(
            s, actor=admin, label="careful", policy_text=data.POLICY, manifesto=NEVER_SELL_SEMIS
        )
        strategy.approve_strategy(s, actor=admin, label="careful")
    with unit_of_work(demo_engine) as s:  # reviewed on its own: the FAIL stays stored
        verdict = reco_service.review_recommendation(s, actor=admin_of(s), recommendation_id=rid)
    assert verdict.verdict.value == "FAIL"
    shown = show(demo_engine, rid)
    assert shown["blocked"] and shown["latest_verdict"] == "FAIL"
    assert any("never sell: SEMIS" in reason for reason in shown["verdicts"][0]["reasons"])

    before = counts(demo_engine)
    with pytest.raises(
        ReviewFailed, match=rf"recommendation {rid}: the review by builtin-rules .* FAILED: .*SEMIS"
    ):
        approve(demo_engine, rid)
    with pytest.raises(ReviewFailed):
        approve(demo_engine, rid, reason="   ")
    assert counts(demo_engine) == before

    approve(demo_engine, rid, reason="SEMIS is 10 points over target; selling some is the plan")
    shown = show(demo_engine, rid)
    assert shown["status"] == "REVIEWED" and not shown["blocked"]
    assert (
        shown["status_reason"] == "FAIL overridden: SEMIS is 10 points over target; selling some is the plan"
    )
    assert len(shown["verdicts"]) == 1  # never asked again
    with unit_of_work(demo_engine, readonly=True) as s:
        [event] = s.exec(select(AuditEvent).where(AuditEvent.action == "RECO_FAIL_OVERRIDDEN")).all()
    assert event.entity_id == str(rid) and event.actor_user_id is not None
    assert event.details["reason"].startswith("SEMIS is 10 points")
    assert event.details["llm_verdict_id"] == verdict.llm_verdict_id


def test_an_impossible_fill_changes_nothing(demo_engine: Engine) -> None:
    rid = store(demo_engine)
    approve_whatever_the_verdict(demo_engine, rid)
    lines = show(demo_engine, rid)["lines"]
    fills = fills_at_estimates(lines)
    sell = next(f for f in fills if f.action == "SELL")
    too_many = Fill(sell.ticker, sell.exchange, "SELL", Decimal(100_000), sell.price, FEE)
    before = counts(demo_engine)
    buys = [f for f in fills if f.action == "BUY"]
    # The sale goes first in the book (its proceeds pay for the buys); the error names it as typed.
    where = rf"fill {len(buys) + 1} \({sell.ticker}:XLON\)"
    with pytest.raises(
        LedgerError, match=rf"recommendation {rid}: the ledger refused the fills: {where}: sells"
    ):
        execute(demo_engine, rid, [*buys, too_many])
    assert counts(demo_engine) == before
    assert show(demo_engine, rid)["status"] == "REVIEWED"

    gbx = next(f for f in fills if QUOTE_SCALES[f.ticker] == "GBX")
    usd = next(f for f in fills if QUOTE_SCALES[f.ticker] == "USD")
    bad = [
        Fill("TSLA", "XNAS", "BUY", 1, 100, 0),
        Fill(gbx.ticker, gbx.exchange, "SELL" if gbx.action == "BUY" else "BUY", gbx.units, gbx.price, FEE),
        Fill(
            gbx.ticker, gbx.exchange, gbx.action, gbx.units, Decimal(gbx.price) / 100, FEE
        ),  # pounds, not pence
        Fill(usd.ticker, usd.exchange, usd.action, usd.units, usd.price, FEE),  # no GBP consideration
        Fill(gbx.ticker, gbx.exchange, gbx.action, 0, gbx.price, FEE),
    ]
    with pytest.raises(ValidationError) as refused:
        execute(demo_engine, rid, bad)
    message = str(refused.value)
    assert f"recommendation {rid}: 5 fill(s) refused" in message
    assert "fill 1 (TSLA:XNAS): not a listing of the recommendation" in message
    assert "the recommendation says" in message
    assert "more than 10x off" in message and "(pence)" in message
    assert "quoted in USD: give the GBP consideration" in message
    assert "units and price must be positive" in message
    with pytest.raises(ValidationError, match="at least one fill"):
        execute(demo_engine, rid, [])
    assert counts(demo_engine) == before


def test_every_transition_is_refused_from_the_wrong_state(demo_engine: Engine) -> None:
    rid = store(demo_engine, "MONTHLY_ALLOC", "1000")
    fills = fills_at_estimates(show(demo_engine, rid)["lines"])
    with pytest.raises(ValidationError, match=rf"recommendation {rid} is DRAFT: approve it before executing"):
        execute(demo_engine, rid, fills)
    approve(demo_engine, rid)
    with pytest.raises(ValidationError, match=rf"recommendation {rid} is REVIEWED: only a DRAFT .* approved"):
        approve(demo_engine, rid)
    with pytest.raises(ValidationError, match="needs a reason"), unit_of_work(demo_engine) as s:
        reco_service.ignore_recommendation(s, actor=admin_of(s), recommendation_id=rid, reason=" ")
    with unit_of_work(demo_engine) as s:
        reco_service.ignore_recommendation(
            s, actor=admin_of(s), recommendation_id=rid, reason="cash needed elsewhere"
        )
    shown = show(demo_engine, rid)
    assert (shown["status"], shown["status_reason"]) == ("IGNORED", "cash needed elsewhere")
    before = counts(demo_engine)
    with pytest.raises(
        ValidationError, match=rf"recommendation {rid} is IGNORED: only a REVIEWED .* executed"
    ):
        execute(demo_engine, rid, fills)
    with pytest.raises(ValidationError, match="is IGNORED: only a DRAFT"):
        approve(demo_engine, rid)
    with (
        pytest.raises(ValidationError, match=r"is IGNORED: only a DRAFT or REVIEWED .* ignored"),
        unit_of_work(demo_engine) as s,
    ):
        reco_service.ignore_recommendation(s, actor=admin_of(s), recommendation_id=rid, reason="again")
    with (
        pytest.raises(
            ValidationError, match="is IGNORED: only a DRAFT or REVIEWED recommendation is reviewed"
        ),
        unit_of_work(demo_engine) as s,
    ):
        reco_service.review_recommendation(s, actor=admin_of(s), recommendation_id=rid)
    with pytest.raises(NotFound, match="no recommendation 999"), unit_of_work(demo_engine) as s:
        reco_service.get_recommendation(s, actor=admin_of(s), recommendation_id=999)
    assert counts(demo_engine) == before


def test_a_frozen_portfolio_is_neither_approved_nor_executed(demo_engine: Engine) -> None:
    first = store(demo_engine, "MONTHLY_ALLOC", "1000")
    second = store(demo_engine, "MONTHLY_ALLOC", "1000")
    approve(demo_engine, second)
    with unit_of_work(demo_engine) as s:
        governance.freeze_portfolio(
            s, actor=admin_of(s), portfolio=DEMO_PORTFOLIO, reason="prices look wrong"
        )
    assert show(demo_engine, first)["frozen"]
    before = counts(demo_engine)
    with pytest.raises(FrozenError, match=r"cannot approve recommendation .* frozen"):
        approve(demo_engine, first)
    with pytest.raises(FrozenError, match="cannot execute recommendation"):
        execute(demo_engine, second, fills_at_estimates(show(demo_engine, second)["lines"]))
    assert counts(demo_engine) == before
    # Reviewed while frozen: a new request (the flag is part of it), and a FAIL.
    with unit_of_work(demo_engine) as s:
        verdict = reco_service.review_recommendation(s, actor=admin_of(s), recommendation_id=first)
    assert verdict.verdict.value == "FAIL"
    assert any("frozen" in r for r in verdict.response_json["reasons"])


def test_only_people_with_access_see_or_decide(demo_engine: Engine) -> None:
    rid = store(demo_engine)
    with unit_of_work(demo_engine) as s:
        identity.add_user(s, actor=admin_of(s), email="eve@example.com", password="eve-password-1")
    with unit_of_work(demo_engine, readonly=True) as s:
        eve = identity.get_user(s, "eve@example.com")
        assert reco_service.pending_recommendations(s, actor=eve) == []
    with pytest.raises(AccessDenied), unit_of_work(demo_engine) as s:
        reco_service.approve_recommendation(s, actor=s.get(User, eve.user_id), recommendation_id=rid)
    with pytest.raises(AccessDenied), unit_of_work(demo_engine) as s:
        reco_service.pending_recommendations(s, actor=s.get(User, eve.user_id), portfolio=DEMO_PORTFOLIO)
    with unit_of_work(demo_engine, readonly=True) as s:
        denied = s.exec(select(AuditEvent).where(AuditEvent.action == "ACCESS_DENIED")).all()
    assert len(denied) == 2
    assert show(demo_engine, rid)["status"] == "DRAFT"


# --------------------------------------------------------------------------------------------
# Reviews: one request, one call
# --------------------------------------------------------------------------------------------
def test_the_same_request_is_never_sent_twice(demo_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    rid = store(demo_engine)
    with RecordingServer([openai_completion(WARN_JSON)]) as server:
        monkeypatch.setenv("TRADEASSIST_LLM_BASE_URL", server.base_url + "/v1")
        monkeypatch.setenv("TRADEASSIST_LLM_MODEL", "local-test-model")
        monkeypatch.delenv("TRADEASSIST_LLM_API_KEY", raising=False)
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        for _ in range(2):
            with unit_of_work(demo_engine) as s:
                verdict = reco_service.review_recommendation(
                    s, actor=admin_of(s), recommendation_id=rid, reviewer="openai-compatible"
                )
        with unit_of_work(demo_engine, readonly=True) as s:
            admin_id = admin_of(s).user_id
        again = reco_service.review_outside_transaction(
            demo_engine, actor_id=admin_id, recommendation_id=rid, reviewer="openai-compatible"
        )
        assert len(server.seen) == 1
        sent = json.loads(server.seen[0].json()["messages"][1]["content"].split("\n", 1)[1])
        assert sent["kind"] == "recommendation" and sent["task_kind"] == "QUARTERLY_REBAL"
        assert sent["portfolio_frozen"] is False and "max single trade" in sent["manifesto"]
        assert {line.get("sleeve") for line in sent["recommendation"]["lines"]} <= {"CORE", "SEMIS", "ENERGY"}
        # A second recommendation with the same content is the same request: answered from the
        # stored verdict, stored again for it, not sent.
        twin = store(demo_engine)
        with unit_of_work(demo_engine) as s:
            copied = reco_service.review_recommendation(
                s, actor=admin_of(s), recommendation_id=twin, reviewer="openai-compatible"
            )
        assert len(server.seen) == 1
        # Something the reviewer sees changed (the freeze flag): a new request, sent once.
        with unit_of_work(demo_engine) as s:
            governance.freeze_portfolio(s, actor=admin_of(s), portfolio=DEMO_PORTFOLIO, reason="x")
        with unit_of_work(demo_engine) as s:
            reco_service.review_recommendation(
                s, actor=admin_of(s), recommendation_id=rid, reviewer="openai-compatible"
            )
        assert len(server.seen) == 2
    assert verdict.llm_verdict_id == again.llm_verdict_id
    assert (verdict.provider_name, verdict.model_name, verdict.verdict.value) == (
        "openai-compatible",
        "local-test-model",
        "WARN",
    )
    assert verdict.response_json["reasons"] == ["CORE is 1 point from its band", "cash is thin"]
    assert verdict.response_json["response"]["choices"][0]["message"]["content"] == WARN_JSON
    assert (copied.request_hash, copied.recommendation_id) == (verdict.request_hash, twin)
    with unit_of_work(demo_engine, readonly=True) as s:
        hashes = s.exec(select(LLMVerdict.request_hash).where(LLMVerdict.recommendation_id == rid)).all()
    assert len(hashes) == len(set(hashes)) == 2


def test_a_reviewer_that_cannot_answer_is_a_clear_error(demo_engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rid = store(demo_engine)
    before = counts(demo_engine)
    with RecordingServer([Reply(400, json.dumps({"error": {"message": "model not found"}}))]) as server:
        monkeypatch.setenv("TRADEASSIST_LLM_BASE_URL", server.base_url + "/v1")
        with (
            pytest.raises(ProviderError, match=rf"could not review recommendation {rid}"),
            unit_of_work(demo_engine) as s,
        ):
            reco_service.review_recommendation(
                s, actor=admin_of(s), recommendation_id=rid, reviewer="openai-compatible"
            )
    with pytest.raises(ConfigError, match="unknown reviewer 'nope'"), unit_of_work(demo_engine) as s:
        reco_service.review_recommendation(s, actor=admin_of(s), recommendation_id=rid, reviewer="nope")
    assert counts(demo_engine) == before


# --------------------------------------------------------------------------------------------
# The manifesto at strategy approval
# --------------------------------------------------------------------------------------------
def test_approving_a_strategy_reviews_its_manifesto(demo_engine: Engine) -> None:
    vague = "# Plan\n\nMostly CORE, some SEMIS.\n"  # says nothing of ENERGY
    with unit_of_work(demo_engine) as s:
        strategy.add_strategy(s, actor=admin_of(s), label="vague", policy_text=data.POLICY, manifesto=vague)
    with (
        pytest.raises(ReviewFailed, match=r"strategy 'vague': its manifesto: .* FAILED: .*ENERGY"),
        unit_of_work(demo_engine) as s,
    ):
        strategy.approve_strategy(s, actor=admin_of(s), label="vague")
    with unit_of_work(demo_engine) as s:
        version = strategy.approve_strategy(
            s, actor=admin_of(s), label="vague", override_reason="ENERGY is implied"
        )
        version_id = version.strategy_version_id
    with unit_of_work(demo_engine, readonly=True) as s:
        verdicts = s.exec(select(LLMVerdict).where(LLMVerdict.strategy_version_id == version_id)).all()
        assert [(v.verdict.value, v.recommendation_id) for v in verdicts] == [("FAIL", None)]
        [override] = s.exec(select(AuditEvent).where(AuditEvent.action == "STRATEGY_FAIL_OVERRIDDEN")).all()
        approved = s.exec(
            select(AuditEvent).where(
                AuditEvent.action == "STRATEGY_APPROVED", AuditEvent.entity_id == str(version_id)
            )
        ).one()
        assert s.get(StrategyVersion, version_id).status.value == "APPROVED"
    assert override.details["reason"] == "ENERGY is implied"
    assert approved.details["manifesto_verdict"] == "FAIL"
    assert approved.details["override_reason"] == "ENERGY is implied"


# --------------------------------------------------------------------------------------------
# After a run
# --------------------------------------------------------------------------------------------
def test_a_run_reviews_its_recommendation_and_enqueues_the_owners_email(
    engine: Engine, db_url: str, admin: User, tmp_path: Path
) -> None:
    from tradeassist.core.timeutil import end_of_london_day
    from tradeassist.demo import load_demo
    from tradeassist.runs import runner

    load_demo(engine, end=date(2026, 1, 9))
    outcome = runner.run_task(
        engine,
        actor=admin,
        name="demo monthly allocation",
        db_url=db_url,
        at=end_of_london_day(date(2026, 1, 9)),
        reports=tmp_path / "r",
    )
    assert outcome.status is RunStatus.SUCCESS, outcome.error
    with unit_of_work(engine, readonly=True) as s:
        reco = s.get(Recommendation, outcome.recommendation_id)
        assert reco.status is RecommendationStatus.DRAFT
        [verdict] = s.exec(
            select(LLMVerdict).where(LLMVerdict.recommendation_id == reco.recommendation_id)
        ).all()
        assert verdict.provider_name == "builtin-rules"
        request = verdict.response_json["request"]
        assert request["task_kind"] == "MONTHLY_ALLOC" and request["portfolio_frozen"] is False
        [note] = s.exec(
            select(Notification).where(Notification.dedup_key.like("RECOMMENDATION_READY:%"))
        ).all()
    assert (note.channel.value, note.target, note.status) == (
        "EMAIL",
        admin.email,
        NotificationStatus.PENDING,
    )
    assert note.payload["headline"] == reco.headline and note.payload["run_id"] == outcome.run_id
    assert note.payload["verdict"] == verdict.verdict.value
    assert note.payload["recommendation_id"] == reco.recommendation_id
    assert reco.headline in note.payload["subject"]
