"""§7 Recommendations, their lines, and LLM (or built-in) review verdicts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from ...core.enums import RecommendationStatus, TradeAction, Verdict
from .base import enum_field, fk_field, id_field, json_field, money_field, text_field, ts_field


class Recommendation(SQLModel, table=True):
    """Added column: ``status_reason`` (why it was ignored, or the override of a FAIL verdict)."""

    __tablename__ = "recommendations"

    recommendation_id: int | None = id_field()
    run_id: int | None = fk_field("task_runs.run_id", nullable=True, index=True)
    portfolio_id: int = fk_field("portfolios.portfolio_id", index=True)
    created_at: datetime = ts_field(now=True)
    status: RecommendationStatus = enum_field(RecommendationStatus, default=RecommendationStatus.DRAFT)
    headline: str = Field(sa_column=Column(String(500), nullable=False))
    rationale: dict[str, Any] = json_field()
    constraints_report: dict[str, Any] = json_field()
    status_reason: str | None = text_field()


class RecommendationLine(SQLModel, table=True):
    __tablename__ = "recommendation_lines"

    line_id: int | None = id_field()
    recommendation_id: int = fk_field("recommendations.recommendation_id", index=True)
    listing_id: int = fk_field("instrument_listings.listing_id")
    action: TradeAction = enum_field(TradeAction)
    amount_base: Decimal = money_field()
    estimated_units: Decimal = money_field()
    suppressed_by_min_trade: bool = Field(default=False, nullable=False)
    reason_code: str = Field(sa_column=Column(String(64), nullable=False))


class LLMVerdict(SQLModel, table=True):
    __tablename__ = "llm_verdicts"

    llm_verdict_id: int | None = id_field()
    recommendation_id: int | None = fk_field("recommendations.recommendation_id", nullable=True)
    strategy_version_id: int | None = fk_field("strategy_versions.strategy_version_id", nullable=True)
    provider_name: str = Field(sa_column=Column(String(64), nullable=False))
    model_name: str = Field(sa_column=Column(String(128), nullable=False))
    verdict: Verdict = enum_field(Verdict)
    request_hash: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    response_json: dict[str, Any] = json_field()
    created_at: datetime = ts_field(now=True)
