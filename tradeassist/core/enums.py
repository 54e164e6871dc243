"""Enumerations of the data model, stored as their string values."""

from __future__ import annotations

from enum import StrEnum


class TaxTreatment(StrEnum):
    SIPP = "SIPP"
    ISA = "ISA"
    GIA = "GIA"


class InstrumentType(StrEnum):
    ETF = "ETF"
    STOCK = "STOCK"
    ETC = "ETC"
    FUND = "FUND"


class StrategyStatus(StrEnum):
    DRAFT = "DRAFT"
    APPROVED = "APPROVED"
    RETIRED = "RETIRED"


class CorporateActionType(StrEnum):
    SPLIT = "SPLIT"
    MERGE = "MERGE"
    ISIN_CHANGE = "ISIN_CHANGE"


class EntryType(StrEnum):
    """The kinds of ledger entry. DIVIDEND extends the data model's enumeration (migration
    0006): cash income from a listing, which it names when known. INTEREST rows whose notes
    start ``dividend:`` (written before DIVIDEND existed) are read as dividends by
    ``engine.income.income_kind``; see docs/ledger.md."""

    BUY = "BUY"
    SELL = "SELL"
    CONTRIBUTION = "CONTRIBUTION"
    WITHDRAWAL = "WITHDRAWAL"
    FEE = "FEE"
    INTEREST = "INTEREST"
    TRANSFER = "TRANSFER"
    DIVIDEND = "DIVIDEND"


class BatchType(StrEnum):
    MONTHLY_CONTRIB = "MONTHLY_CONTRIB"
    WAVE_A = "WAVE_A"
    MANUAL_FIX = "MANUAL_FIX"
    MANUAL = "MANUAL"
    IMPORT = "IMPORT"
    EXECUTION = "EXECUTION"
    CORPORATE_ACTION = "CORPORATE_ACTION"


class TaskScope(StrEnum):
    GLOBAL = "GLOBAL"
    PORTFOLIO = "PORTFOLIO"


class ScheduleType(StrEnum):
    CRON = "CRON"
    RRULE = "RRULE"


class TaskKind(StrEnum):
    PRICE_REFRESH = "PRICE_REFRESH"
    WEEKLY_REVIEW = "WEEKLY_REVIEW"
    MONTHLY_ALLOC = "MONTHLY_ALLOC"
    QUARTERLY_REBAL = "QUARTERLY_REBAL"
    ALERT_ONLY = "ALERT_ONLY"


class RunStatus(StrEnum):
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    FROZEN = "FROZEN"


class RecommendationStatus(StrEnum):
    DRAFT = "DRAFT"
    REVIEWED = "REVIEWED"
    EXECUTED = "EXECUTED"
    IGNORED = "IGNORED"


class TradeAction(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class Verdict(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


class Severity(StrEnum):
    INFO = "INFO"
    WARN = "WARN"
    CRITICAL = "CRITICAL"


class Channel(StrEnum):
    EMAIL = "EMAIL"
    TELEGRAM = "TELEGRAM"
    SLACK = "SLACK"
    WEBPUSH = "WEBPUSH"


class NotificationStatus(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"
    SUPPRESSED = "SUPPRESSED"


class QualityFlag(StrEnum):
    STALE = "stale"
    SCALE_SUSPECT = "scale_suspect"
    CURRENCY_MISMATCH = "currency_mismatch"
    NON_POSITIVE = "non_positive"
    MISSING_FX = "missing_fx"


# The task kinds that produce recommendations and may trade; every other kind never trades.
TRADING_KINDS = (TaskKind.MONTHLY_ALLOC, TaskKind.QUARTERLY_REBAL, TaskKind.WEEKLY_REVIEW)
