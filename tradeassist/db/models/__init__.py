"""SQLModel tables, one module per section of the logical data model.

Importing this package registers every table on ``SQLModel.metadata``.
"""

from .advice import LLMVerdict, Recommendation, RecommendationLine
from .governance import Alert, AuditEvent, FreezeState, Notification
from .identity import Portfolio, PortfolioMembership, User
from .ledger import CashSnapshot, HoldingSnapshot, LedgerBatch, LedgerEntry, PortfolioSummary
from .market import (
    CorporateAction,
    FxRate,
    MarketDataSource,
    PriceLevelAcceptance,
    PricePoint,
    PriceSupersession,
)
from .operations import RunInputSnapshot, TaskDefinition, TaskRun, TaskRunClaim
from .registry import Instrument, InstrumentListing
from .strategy import (
    ManifestoArchive,
    PolicyArchive,
    PortfolioConstituent,
    Sleeve,
    SleeveTarget,
    StrategyVersion,
    StrategyVersionPortfolio,
)

__all__ = [
    "Alert",
    "AuditEvent",
    "CashSnapshot",
    "CorporateAction",
    "FreezeState",
    "FxRate",
    "HoldingSnapshot",
    "Instrument",
    "InstrumentListing",
    "LLMVerdict",
    "LedgerBatch",
    "LedgerEntry",
    "ManifestoArchive",
    "MarketDataSource",
    "Notification",
    "PolicyArchive",
    "Portfolio",
    "PortfolioConstituent",
    "PortfolioMembership",
    "PortfolioSummary",
    "PriceLevelAcceptance",
    "PricePoint",
    "PriceSupersession",
    "Recommendation",
    "RecommendationLine",
    "RunInputSnapshot",
    "Sleeve",
    "SleeveTarget",
    "StrategyVersion",
    "StrategyVersionPortfolio",
    "TaskDefinition",
    "TaskRun",
    "TaskRunClaim",
    "User",
]
