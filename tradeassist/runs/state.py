"""A run as the runner carries it from claim to record (``ActiveRun``), and what it returns
(``RunOutcome``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..core.enums import RunStatus, TaskKind
from ..db.models import Portfolio, TaskDefinition, User
from ..services.governance import FreezeStatus
from .claims import Claim


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    task: str
    kind: TaskKind
    portfolio: str | None
    status: RunStatus
    slot_at: datetime
    as_of: datetime
    notebook_path: str | None = None
    html_path: str | None = None
    error: str | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)
    recommendation_id: int | None = None
    attempt: int = 1
    retry_of: int | None = None  # the dead run this one retried
    # A household's run (one run per account): the household's first run, and on that run the
    # outcomes of the others.
    household_run_id: int | None = None
    members: tuple[RunOutcome, ...] = ()

    def row(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "task": self.task,
            "kind": self.kind.value,
            "portfolio": self.portfolio,
            "status": self.status.value,
            "slot_at": self.slot_at,
            "as_of": self.as_of,
            "notebook_path": self.notebook_path,
            "html_path": self.html_path,
            "recommendation_id": self.recommendation_id,
            "error": self.error,
            "attempt": self.attempt,
            "retry_of": self.retry_of,
            "household_run_id": self.household_run_id,
        }


@dataclass
class ActiveRun:
    """What the runner knows about the run it is executing."""

    claim: Claim
    task: TaskDefinition
    portfolio: Portfolio | None
    owner: User
    as_of: datetime
    started_at: datetime
    secrets: set[str]
    frozen: FreezeStatus | None = None
    status: RunStatus = RunStatus.FAILED
    error: str | None = None
    result: dict[str, Any] | None = None
    notebook_path: Path | None = None
    html_path: Path | None = None
    notebook: Any = None  # the executed notebook as saved (secrets removed), for the final report
    extra_summary: dict[str, Any] = field(default_factory=dict)
    # Added to the RUN_FAILED alert's context and to the run's audit event (a lapsed lease).
    extra_context: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> TaskKind:
        return self.task.task_kind

    @property
    def portfolio_name(self) -> str | None:
        return self.portfolio.name if self.portfolio else None

    def run_params(self) -> dict[str, Any]:
        """The run's own inputs, part of the hashed snapshot (ids and the database left out)."""
        return {
            "task": self.task.name,
            "kind": self.kind.value,
            "portfolio": self.portfolio_name,
            "as_of": self.as_of,
            "slot_at": self.claim.slot_at,
            "manual": self.claim.manual,
            "module_config": self.task.module_config,
        }
