"""Retention of run artefacts: which files under the reports directory may go, and going.

A run leaves a set of artefacts, ``<reports>/runs/<yyyy>/<mm>/<run_id>-<KIND>.ipynb`` and
``.html``; they are pruned together. ``prune`` deletes the sets that are

* beyond the ``keep`` newest (newest first by their files' modification time), and/or
* older than ``older_than`` (their newest file),

both when both are given. A file the database names (``task_runs.notebook_path`` or
``html_path``: what ``runs show`` and ``report email`` open; a pending notification's report
path) is **referenced**: its set is kept and listed, unless ``include_referenced``; then it is
deleted and each row says which run named it (``task_runs`` is append-only: the run keeps
naming a file that is gone, and says so when asked for it). Anything else under ``runs/`` is
no run artefact and is left alone. Folders emptied by a prune are removed.

Only the administrator prunes (the reports directory holds every user's runs); a prune that
deletes something is audited (``REPORTS_PRUNED``). ``dry_run`` says what would go and deletes
nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from ..core.enums import NotificationStatus
from ..core.errors import ValidationError
from ..db.models import Notification, TaskRun, User
from . import access, audit

ARTEFACT = re.compile(r"^(?P<run_id>\d+)-(?P<kind>[A-Z][A-Z_]*)\.(?:ipynb|html)$")
DELETED, WOULD_DELETE, KEPT = "deleted", "would delete", "kept"
NAMED_BY = "named by the database"


@dataclass(frozen=True)
class Artefact:
    path: Path  # absolute
    run_id: int
    kind: str
    size: int
    modified_at: datetime

    @property
    def set_key(self) -> tuple[str, str]:
        return (str(self.path.parent), self.path.stem)


@dataclass(frozen=True)
class PruneRow:
    path: str
    run_id: int
    kind: str
    bytes: int
    modified_at: datetime
    action: str  # deleted, would delete, kept
    reason: str
    referenced_by: tuple[str, ...] = ()

    @property
    def kept_as_named(self) -> bool:
        """Kept only because the database names it (or its run's other file)."""
        return self.action == KEPT and self.reason.startswith(NAMED_BY)

    def row(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "run_id": self.run_id,
            "kind": self.kind,
            "bytes": self.bytes,
            "modified_at": self.modified_at,
            "action": self.action,
            "reason": self.reason,
            "referenced_by": list(self.referenced_by),
        }


def _real(path: str | Path) -> str:
    return os.path.realpath(os.path.expanduser(str(path)))


def find_artefacts(root: Path) -> list[Artefact]:
    """Every run artefact under ``<root>/runs`` (other files are none of ours)."""
    found = []
    for path in sorted((root / "runs").rglob("*")):
        match = ARTEFACT.match(path.name)
        if match is None or not path.is_file() or path.is_symlink():
            continue
        stat = path.stat()
        found.append(
            Artefact(
                path=Path(_real(path)),
                run_id=int(match["run_id"]),
                kind=match["kind"],
                size=stat.st_size,
                modified_at=datetime.fromtimestamp(stat.st_mtime, UTC),
            )
        )
    return found


def references(session: Session) -> dict[str, list[str]]:
    """Each file the database names, with who names it."""
    named: dict[str, list[str]] = {}
    for run_id, notebook, page in session.exec(
        select(TaskRun.run_id, TaskRun.notebook_path, TaskRun.html_path)
    ).all():
        for path, what in ((notebook, "notebook"), (page, "report")):
            if path:
                named.setdefault(_real(path), []).append(f"run {run_id} ({what})")
    for note in session.exec(
        select(Notification).where(col(Notification.status) == NotificationStatus.PENDING)
    ).all():
        for key in ("html_path", "notebook_path"):
            path = (note.payload or {}).get(key)
            if isinstance(path, str) and path:
                named.setdefault(_real(path), []).append(f"notification {note.notification_id} (pending)")
    return named


def _sets(artefacts: Iterable[Artefact]) -> list[list[Artefact]]:
    """Artefacts grouped by run, newest set first."""
    grouped: dict[tuple[str, str], list[Artefact]] = {}
    for artefact in artefacts:
        grouped.setdefault(artefact.set_key, []).append(artefact)
    return sorted(
        grouped.values(),
        key=lambda files: (max(a.modified_at for a in files), max(a.run_id for a in files)),
        reverse=True,
    )


def plan(
    artefacts: Iterable[Artefact],
    named: Mapping[str, list[str]],
    *,
    keep: int | None,
    older_than: timedelta | None,
    now: datetime,
    include_referenced: bool,
) -> list[tuple[Artefact, bool, str, tuple[str, ...]]]:
    """Each artefact with whether it goes, why, and who names it (nothing deleted here). A run's
    notebook and page go or stay together: one named keeps both."""
    out = []
    for rank, files in enumerate(_sets(artefacts)):
        newest = max(a.modified_at for a in files)
        by = tuple(sorted({who for a in files for who in named.get(str(a.path), [])}))
        reason = ""
        goes = True
        if keep is not None and rank < keep:
            goes, reason = False, f"among the {keep} newest runs"
        elif older_than is not None and newest > now - older_than:
            goes, reason = False, f"newer than {older_than.days} days"
        elif by and not include_referenced:
            goes = False
            reason = f"{NAMED_BY}: {', '.join(by)} (--include-referenced deletes it)"
        elif by:
            reason = f"{NAMED_BY} ({', '.join(by)}), deleted as asked (--include-referenced)"
        else:
            reason = " and ".join(
                part
                for part in (
                    f"beyond the {keep} newest runs" if keep is not None else "",
                    f"older than {older_than.days} days" if older_than is not None else "",
                )
                if part
            )
        out += [
            (artefact, goes, reason, tuple(named.get(str(artefact.path), [])))
            for artefact in sorted(files, key=lambda a: a.path.name)
        ]
    return out


def _remove_empty_folders(root: Path, folders: Iterable[Path]) -> None:
    for folder in sorted(set(folders), key=lambda p: len(p.parts), reverse=True):
        here = folder
        while here != root and root in here.parents:
            try:
                here.rmdir()  # only when empty
            except OSError:
                break
            here = here.parent


def prune(
    session: Session,
    *,
    actor: User,
    root: Path,
    keep: int | None = None,
    older_than_days: int | None = None,
    include_referenced: bool = False,
    dry_run: bool = False,
    now: datetime | None = None,
) -> list[PruneRow]:
    """Delete old run artefacts under ``root`` (see the module's docstring); every artefact
    looked at comes back as a row, with what was done and why."""
    if keep is None and older_than_days is None:
        raise ValidationError("say what to keep: --keep N (the newest runs) and/or --older-than DAYS")
    if keep is not None and keep < 0:
        raise ValidationError("--keep: at least 0")
    if older_than_days is not None and older_than_days < 0:
        raise ValidationError("--older-than: at least 0 days")
    access.require_admin(session, actor, "prune run reports")
    root = Path(_real(root))
    now = now or datetime.now(UTC)
    older = timedelta(days=older_than_days) if older_than_days is not None else None
    decided = plan(
        find_artefacts(root),
        references(session),
        keep=keep,
        older_than=older,
        now=now,
        include_referenced=include_referenced,
    )
    rows, emptied = [], []
    for artefact, goes, reason, by in decided:
        action = KEPT
        if goes and dry_run:
            action = WOULD_DELETE
        elif goes:
            artefact.path.unlink(missing_ok=True)
            emptied.append(artefact.path.parent)
            action = DELETED
        rows.append(
            PruneRow(
                str(artefact.path),
                artefact.run_id,
                artefact.kind,
                artefact.size,
                artefact.modified_at,
                action,
                reason,
                by,
            )
        )
    _remove_empty_folders(root, emptied)
    deleted = [r for r in rows if r.action == DELETED]
    if deleted:
        audit.record(
            session,
            actor=actor,
            action="REPORTS_PRUNED",
            entity_type="reports",
            entity_id=str(root),
            details={
                "deleted": len(deleted),
                "bytes": sum(r.bytes for r in deleted),
                "keep": keep,
                "older_than_days": older_than_days,
                "referenced_deleted": sorted({who for r in deleted for who in r.referenced_by}),
            },
        )
    return rows
