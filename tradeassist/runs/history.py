"""Past runs now live in ``tradeassist.services.run_history`` (they are database reads).

Kept, re-exporting it, for ``tradeassist.cli.runs`` until that imports the service itself.
"""

from __future__ import annotations

from ..services.run_history import (
    RUNNING,
    Replay,
    compare_recommendations,
    list_runs,
    replay_run,
    show_run,
    stored_recommendation,
)

__all__ = [
    "RUNNING",
    "Replay",
    "compare_recommendations",
    "list_runs",
    "replay_run",
    "show_run",
    "stored_recommendation",
]
