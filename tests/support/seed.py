"""One row in every table, through the ORM, so that table-level rules can be exercised."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlmodel import Session

from tradeassist.core.enums import (
    BatchType,
    Channel,
    CorporateActionType,
    EntryType,
    InstrumentType,
    RunStatus,
    ScheduleType,
    Severity,
    TaskKind,
    TaskScope,
    TaxTreatment,
    TradeAction,
    Verdict,
)
from tradeassist.db import models as m

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def seed_every_table(session: Session, admin: m.User) -> dict[str, object]:
    """Insert one row per table (the bootstrap admin is the users row). Returns them by table."""
    rows: dict[str, object] = {"users": admin}

    def add(table: str, obj: object) -> object:
        session.add(obj)
        session.flush()
        rows[table] = obj
        return obj

    p = add(
        "portfolios",
        m.Portfolio(
            owner_user_id=admin.user_id, name="Seed", broker="AJBell", tax_treatment=TaxTreatment.SIPP
        ),
    )
    add("portfolio_memberships", m.PortfolioMembership(portfolio_id=p.portfolio_id, user_id=admin.user_id))
    i = add("instruments", m.Instrument(isin="IE00BK5BQT80", instrument_type=InstrumentType.ETF, name="VWRP"))
    i2 = session.add(m.Instrument(isin="IE00B3RBWM25", instrument_type=InstrumentType.ETF))
    session.flush()
    lst = add(
        "instrument_listings",
        m.InstrumentListing(
            instrument_id=i.instrument_id,
            ticker="VWRP",
            exchange="XLON",
            trading_currency="GBP",
            quote_scale="GBP",
        ),
    )
    add("sleeves", m.Sleeve(sleeve_code="CORE", name="Global equity"))
    add("policy_archives", m.PolicyArchive(policy_sha256="a" * 64, policy_json={"x": "1.0"}))
    add("manifesto_archives", m.ManifestoArchive(manifesto_sha256="b" * 64, manifesto_md="# M"))
    sv = add(
        "strategy_versions",
        m.StrategyVersion(
            version_label="1.0.0",
            policy_sha256="a" * 64,
            manifesto_sha256="b" * 64,
            created_by_user_id=admin.user_id,
        ),
    )
    add(
        "strategy_version_portfolios",
        m.StrategyVersionPortfolio(strategy_version_id=sv.strategy_version_id, portfolio_id=p.portfolio_id),
    )
    add(
        "sleeve_targets",
        m.SleeveTarget(
            strategy_version_id=sv.strategy_version_id, sleeve_code="CORE", target_weight=Decimal("1")
        ),
    )
    add(
        "portfolio_constituents",
        m.PortfolioConstituent(portfolio_id=p.portfolio_id, listing_id=lst.listing_id, sleeve_code="CORE"),
    )
    src = add("market_data_sources", m.MarketDataSource(name="stooq"))
    wrong = add(
        "price_points",
        m.PricePoint(
            listing_id=lst.listing_id,
            as_of=T0,
            source_id=src.source_id,
            raw_price=Decimal("101.25"),
            raw_currency="GBP",
            raw_quote_scale="GBP",
            normalized_price_base=Decimal("101.25"),
        ),
    )
    right = add(
        "price_points",
        m.PricePoint(
            listing_id=lst.listing_id,
            as_of=T0,
            source_id=src.source_id,
            raw_price=Decimal("102.50"),
            raw_currency="GBP",
            raw_quote_scale="GBP",
            normalized_price_base=Decimal("102.50"),
            revision=1,
        ),
    )
    add(
        "price_supersessions",
        m.PriceSupersession(
            price_point_id=wrong.price_point_id,
            superseded_by_point_id=right.price_point_id,
            listing_id=lst.listing_id,
            reason="the first close was wrong",
            replaced_by_user_id=admin.user_id,
        ),
    )
    add(
        "fx_rates",
        m.FxRate(
            base_currency="GBP",
            quote_currency="USD",
            as_of=T0,
            rate=Decimal("1.2705"),
            source_id=src.source_id,
        ),
    )
    add(
        "corporate_actions",
        m.CorporateAction(
            instrument_id=i.instrument_id,
            action_type=CorporateActionType.SPLIT,
            effective_date=date(2026, 1, 2),
            ratio_num=Decimal(2),
            ratio_den=Decimal(1),
        ),
    )
    add(
        "price_level_acceptances",
        m.PriceLevelAcceptance(
            listing_id=lst.listing_id, effective_date=date(2026, 1, 5), accepted_by_user_id=admin.user_id
        ),
    )
    task = add(
        "task_definitions",
        m.TaskDefinition(
            scope=TaskScope.PORTFOLIO,
            portfolio_id=p.portfolio_id,
            name="weekly",
            schedule_type=ScheduleType.CRON,
            schedule_expr="0 7 * * 1",
            task_kind=TaskKind.WEEKLY_REVIEW,
            created_by_user_id=admin.user_id,
        ),
    )
    claim = add("task_run_claims", m.TaskRunClaim(task_id=task.task_id, slot_at=T0))
    run = add(
        "task_runs",
        m.TaskRun(
            run_id=claim.run_id,
            task_id=task.task_id,
            portfolio_id=p.portfolio_id,
            strategy_version_id=sv.strategy_version_id,
            started_at=T0,
            ended_at=T0,
            status=RunStatus.SUCCESS,
            input_hash="c" * 64,
        ),
    )
    add("run_input_snapshots", m.RunInputSnapshot(run_id=run.run_id, snapshot_json={"cash": "1.00"}))
    reco = add(
        "recommendations",
        m.Recommendation(run_id=run.run_id, portfolio_id=p.portfolio_id, headline="Buy VWRP"),
    )
    add(
        "recommendation_lines",
        m.RecommendationLine(
            recommendation_id=reco.recommendation_id,
            listing_id=lst.listing_id,
            action=TradeAction.BUY,
            amount_base=Decimal("202.50"),
            estimated_units=Decimal("2"),
            reason_code="UNDERWEIGHT",
        ),
    )
    add(
        "llm_verdicts",
        m.LLMVerdict(
            recommendation_id=reco.recommendation_id,
            provider_name="builtin-rules",
            model_name="rules-v1",
            verdict=Verdict.PASS,
            request_hash="d" * 64,
        ),
    )
    batch = add(
        "ledger_batches",
        m.LedgerBatch(
            portfolio_id=p.portfolio_id,
            label="seed",
            batch_type=BatchType.MANUAL,
            created_by_user_id=admin.user_id,
        ),
    )
    add(
        "ledger_entries",
        m.LedgerEntry(
            ledger_batch_id=batch.ledger_batch_id,
            portfolio_id=p.portfolio_id,
            entry_time=T0,
            entry_type=EntryType.CONTRIBUTION,
            cash_amount_base=Decimal("1000.00"),
        ),
    )
    add(
        "holding_snapshots",
        m.HoldingSnapshot(
            portfolio_id=p.portfolio_id,
            listing_id=lst.listing_id,
            units=Decimal("2"),
            avg_cost_base=Decimal("101.25"),
        ),
    )
    add("cash_snapshots", m.CashSnapshot(portfolio_id=p.portfolio_id, cash_balance=Decimal("797.50")))
    add(
        "portfolio_summaries",
        m.PortfolioSummary(
            portfolio_id=p.portfolio_id,
            as_of=T0,
            total_value_base=Decimal("1000"),
            weights_by_sleeve={"CORE": "0.2"},
        ),
    )
    add("freeze_states", m.FreezeState(portfolio_id=p.portfolio_id, is_frozen=False))
    add("alerts", m.Alert(portfolio_id=p.portfolio_id, severity=Severity.WARN, code="TEST", message="seed"))
    add(
        "notifications",
        m.Notification(
            user_id=admin.user_id, portfolio_id=p.portfolio_id, channel=Channel.EMAIL, target="a@example.com"
        ),
    )
    add("audit_events", m.AuditEvent(actor_user_id=admin.user_id, action="SEED", entity_type="test"))
    del i2
    return rows
