"""Alerts and freezes: the safety brake every other service can pull.

* An **alert** says something is wrong (a suspect price, a failed run). It is a row of
  ``alerts``, optionally tied to a portfolio and a run; only ``resolved_at`` ever changes.
  ``raise_alert(..., dedupe=True)`` keeps one *open* alert per (portfolio, code, subject): the
  subject is the values of ``dedupe_keys`` in the context (by default the listing), so a feed
  that stays wrong for a month raises one alert, not one per price.
* A **freeze** stops a portfolio's trading runs until a person clears it: one mutable row of
  ``freeze_states`` per portfolio. Services freeze (``set_freeze``, ``raise_and_freeze``);
  clearing is an explicit user action (``unfreeze_portfolio``), or a price check that
  resolves the alert which set it (``price_alerts.resolve_cleared``). Freezing a portfolio
  that is already frozen keeps the first reason (the alerts carry every later detail), but a
  person freezing what a service froze makes the freeze theirs (MANUAL): only they clear it.

Every change is audited in the caller's transaction. Functions taking ``portfolio_id`` are for
services that have already checked access; the ``*_portfolio`` functions and
``list_alerts``/``resolve_alert`` take a user and check access first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from ..core.enums import Severity
from ..core.errors import FrozenError, NotFound, ValidationError
from ..core.jsonutil import plain
from ..core.timeutil import utcnow
from ..db.models import Alert, FreezeState, Portfolio, User
from . import audit
from .access import accessible_portfolios, portfolio_for, require_access

MANUAL_FREEZE = "MANUAL"
DEFAULT_DEDUPE_KEYS: tuple[str, ...] = ("listing_id",)


# --------------------------------------------------------------------------------------------
# Alerts
# --------------------------------------------------------------------------------------------
def _severity(value: Severity | str) -> Severity:
    try:
        return Severity(str(value).upper())
    except ValueError:
        raise ValidationError(f"severity {value!r}: expected INFO, WARN or CRITICAL") from None


def open_alerts(
    session: Session,
    *,
    portfolio_id: int | None = None,
    any_portfolio: bool = False,
    code: str | None = None,
) -> list[Alert]:
    """Unresolved alerts of one portfolio (``portfolio_id=None``: the portfolio-less ones), or of
    every portfolio with ``any_portfolio``; optionally of one code. Oldest first."""
    query = select(Alert).where(col(Alert.resolved_at).is_(None))
    if not any_portfolio:
        query = query.where(
            col(Alert.portfolio_id).is_(None) if portfolio_id is None else Alert.portfolio_id == portfolio_id
        )
    if code is not None:
        query = query.where(Alert.code == code)
    return list(session.exec(query.order_by(col(Alert.alert_id))).all())


def raise_alert(
    session: Session,
    *,
    portfolio_id: int | None,
    code: str,
    severity: Severity | str,
    message: str,
    context: Mapping[str, Any] | None = None,
    run_id: int | None = None,
    dedupe: bool = True,
    dedupe_keys: Sequence[str] = DEFAULT_DEDUPE_KEYS,
    actor: User | None = None,
) -> tuple[Alert, bool]:
    """Raise an alert, or with ``dedupe`` return the open one with the same portfolio, code and
    subject (``context`` values of ``dedupe_keys``). Returns ``(alert, created)``."""
    level = _severity(severity)
    if not code or len(code) > 64:
        raise ValidationError(f"alert code {code!r}: 1 to 64 characters")
    body = dict(context or {})
    if dedupe:
        subject = {key: plain(body.get(key)) for key in dedupe_keys}
        for existing in open_alerts(session, portfolio_id=portfolio_id, code=code):
            if all(existing.context.get(key) == value for key, value in subject.items()):
                return existing, False
    alert = Alert(
        portfolio_id=portfolio_id,
        run_id=run_id,
        severity=level,
        code=code,
        message=message[:2000],
        context=plain(body),
    )
    session.add(alert)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="ALERT_RAISED",
        entity_type="alert",
        entity_id=alert.alert_id,
        details={"portfolio_id": portfolio_id, "code": code, "severity": level.value, "run_id": run_id},
    )
    return alert, True


def alert_row(alert: Alert, portfolio_name: str | None = None) -> dict[str, Any]:
    return {
        "alert_id": alert.alert_id,
        "portfolio": portfolio_name,
        "severity": alert.severity.value,
        "code": alert.code,
        "message": alert.message,
        "context": alert.context,
        "run_id": alert.run_id,
        "created_at": alert.created_at,
        "resolved_at": alert.resolved_at,
    }


def list_alerts(
    session: Session, *, actor: User, portfolio: str | None = None, open_only: bool = False
) -> list[dict[str, Any]]:
    """Alerts of one portfolio, or (no ``portfolio``) of every portfolio the user may see plus
    the alerts tied to no portfolio; newest first."""
    if portfolio is not None:
        chosen = portfolio_for(session, actor, portfolio, "list alerts")
        names = {chosen.portfolio_id: chosen.name}
        query = select(Alert).where(Alert.portfolio_id == chosen.portfolio_id)
    else:
        names = {p.portfolio_id: p.name for p in accessible_portfolios(session, actor)}
        query = select(Alert).where(
            col(Alert.portfolio_id).is_(None) | col(Alert.portfolio_id).in_(list(names))
        )
    if open_only:
        query = query.where(col(Alert.resolved_at).is_(None))
    alerts = session.exec(query.order_by(col(Alert.alert_id).desc())).all()
    return [alert_row(a, names.get(a.portfolio_id) if a.portfolio_id else None) for a in alerts]


def resolve_alert(session: Session, *, actor: User, alert_id: int, note: str | None = None) -> Alert:
    """Mark an alert resolved (audited). Resolving never clears a freeze: that is its own action."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    if alert.portfolio_id is not None:
        portfolio = session.get(Portfolio, alert.portfolio_id)
        assert portfolio is not None
        require_access(session, actor, portfolio, "resolve alerts")
    if alert.resolved_at is not None:
        raise ValidationError(f"alert {alert_id} was already resolved at {alert.resolved_at.isoformat()}")
    alert.resolved_at = utcnow()
    session.add(alert)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="ALERT_RESOLVED",
        entity_type="alert",
        entity_id=alert.alert_id,
        details={"portfolio_id": alert.portfolio_id, "code": alert.code, "note": note},
    )
    return alert


# --------------------------------------------------------------------------------------------
# Freezes
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FreezeStatus:
    portfolio_id: int
    is_frozen: bool
    reason_code: str | None = None
    reason_detail: str | None = None
    set_at: datetime | None = None
    set_by_user_id: int | None = None
    cleared_at: datetime | None = None
    cleared_by_user_id: int | None = None
    changed: bool = False  # whether the call that returned this changed anything

    def row(self, portfolio_name: str | None = None) -> dict[str, Any]:
        return {
            "portfolio": portfolio_name,
            "is_frozen": self.is_frozen,
            "reason_code": self.reason_code,
            "reason_detail": self.reason_detail,
            "set_at": self.set_at,
            "cleared_at": self.cleared_at,
        }


def _status(portfolio_id: int, state: FreezeState | None, changed: bool = False) -> FreezeStatus:
    if state is None:
        return FreezeStatus(portfolio_id=portfolio_id, is_frozen=False, changed=changed)
    return FreezeStatus(
        portfolio_id=portfolio_id,
        is_frozen=state.is_frozen,
        reason_code=state.reason_code,
        reason_detail=state.reason_detail,
        set_at=state.set_at,
        set_by_user_id=state.set_by_user_id,
        cleared_at=state.cleared_at,
        cleared_by_user_id=state.cleared_by_user_id,
        changed=changed,
    )


def _locked_state(session: Session, portfolio_id: int) -> FreezeState | None:
    query = select(FreezeState).where(FreezeState.portfolio_id == portfolio_id).with_for_update()
    return session.exec(query).first()


def freeze_status(session: Session, portfolio_id: int) -> FreezeStatus:
    """The portfolio's freeze state; never frozen reads as ``is_frozen`` False."""
    return _status(portfolio_id, session.get(FreezeState, portfolio_id))


def is_frozen(session: Session, portfolio_id: int) -> bool:
    state = session.get(FreezeState, portfolio_id)
    return bool(state is not None and state.is_frozen)


def require_not_frozen(session: Session, portfolio_id: int, operation: str) -> None:
    """Raise ``FrozenError`` (naming the reason) when the portfolio is frozen."""
    status = freeze_status(session, portfolio_id)
    if status.is_frozen:
        raise FrozenError(
            f"cannot {operation}: the portfolio is frozen since {status.set_at} "
            f"({status.reason_code}: {status.reason_detail}); clear the freeze first",
            portfolio_id=portfolio_id,
        )


def set_freeze(
    session: Session,
    *,
    actor: User | None,
    portfolio_id: int,
    reason_code: str,
    reason_detail: str | None = None,
    alert_id: int | None = None,
) -> FreezeStatus:
    """Freeze a portfolio (audited). Already frozen: unchanged, the first reason stays."""
    if not reason_code or len(reason_code) > 64:
        raise ValidationError(f"freeze reason code {reason_code!r}: 1 to 64 characters")
    state = _locked_state(session, portfolio_id)
    if state is not None and state.is_frozen:
        if reason_code != MANUAL_FREEZE or state.reason_code == MANUAL_FREEZE:
            return _status(portfolio_id, state)
        # A person freezes what a service froze: the freeze becomes theirs, so that ending the
        # service's reason (a price alert resolved) never lifts it.
        previous = {"reason_code": state.reason_code, "reason_detail": state.reason_detail}
        state.reason_code, state.reason_detail = reason_code, reason_detail
        session.add(state)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="FREEZE_SET",
            entity_type="portfolio",
            entity_id=portfolio_id,
            details={"reason_code": reason_code, "reason_detail": reason_detail, "was": previous},
        )
        return _status(portfolio_id, state, changed=True)
    if state is None:
        state = FreezeState(portfolio_id=portfolio_id)
    state.is_frozen = True
    state.reason_code = reason_code
    state.reason_detail = reason_detail
    state.set_by_user_id = actor.user_id if actor is not None else None
    state.set_at = utcnow()
    state.cleared_by_user_id = None
    state.cleared_at = None
    session.add(state)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="FREEZE_SET",
        entity_type="portfolio",
        entity_id=portfolio_id,
        details={"reason_code": reason_code, "reason_detail": reason_detail, "alert_id": alert_id},
    )
    return _status(portfolio_id, state, changed=True)


def clear_freeze(session: Session, *, actor: User, portfolio_id: int, reason: str) -> FreezeStatus:
    """Lift a freeze (audited with the user's reason). Refused when the portfolio is not frozen."""
    if not reason or not reason.strip():
        raise ValidationError("clearing a freeze needs a reason")
    state = _locked_state(session, portfolio_id)
    if state is None or not state.is_frozen:
        raise ValidationError("the portfolio is not frozen")
    previous = {"reason_code": state.reason_code, "reason_detail": state.reason_detail}
    state.is_frozen = False
    state.cleared_by_user_id = actor.user_id
    state.cleared_at = utcnow()
    session.add(state)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="FREEZE_CLEARED",
        entity_type="portfolio",
        entity_id=portfolio_id,
        details={"reason": reason.strip(), "was": previous},
    )
    return _status(portfolio_id, state, changed=True)


def freeze_portfolio(session: Session, *, actor: User, portfolio: str, reason: str) -> FreezeStatus:
    """A user freezes a portfolio by name (reason code ``MANUAL``)."""
    if not reason or not reason.strip():
        raise ValidationError("freezing needs a reason")
    chosen = portfolio_for(session, actor, portfolio, "freeze")
    return set_freeze(
        session,
        actor=actor,
        portfolio_id=_stored_id(chosen),
        reason_code=MANUAL_FREEZE,
        reason_detail=reason.strip(),
    )


def unfreeze_portfolio(session: Session, *, actor: User, portfolio: str, reason: str) -> FreezeStatus:
    chosen = portfolio_for(session, actor, portfolio, "clear the freeze")
    return clear_freeze(session, actor=actor, portfolio_id=_stored_id(chosen), reason=reason)


def portfolio_freeze_status(session: Session, *, actor: User, portfolio: str) -> FreezeStatus:
    chosen = portfolio_for(session, actor, portfolio, "read the freeze state")
    return freeze_status(session, _stored_id(chosen))


def _stored_id(portfolio: Portfolio) -> int:
    """The id of a portfolio read from the database (always set)."""
    assert portfolio.portfolio_id is not None
    return portfolio.portfolio_id


# --------------------------------------------------------------------------------------------
# The one call other services make
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Raised:
    """What ``raise_and_freeze`` did: the alerts (new or already open) and the freezes it set."""

    alerts: tuple[Alert, ...]
    created: tuple[int, ...]  # alert ids created by this call
    frozen: tuple[int, ...]  # portfolio ids newly frozen by this call


def raise_and_freeze(
    session: Session,
    *,
    actor: User | None,
    portfolio_ids: Iterable[int],
    code: str,
    severity: Severity | str,
    message: str,
    context: Mapping[str, Any] | None = None,
    run_id: int | None = None,
    freeze: bool = True,
    dedupe_keys: Sequence[str] = DEFAULT_DEDUPE_KEYS,
) -> Raised:
    """One (deduplicated) alert on each portfolio, each frozen with ``code`` as the reason.

    With no portfolio at all, one alert tied to no portfolio is raised (and nothing frozen).
    """
    targets: list[int | None] = [*sorted(set(portfolio_ids))] or [None]
    alerts: list[Alert] = []
    created: list[int] = []
    frozen: list[int] = []
    for portfolio_id in targets:
        alert, is_new = raise_alert(
            session,
            portfolio_id=portfolio_id,
            code=code,
            severity=severity,
            message=message,
            context=context,
            run_id=run_id,
            dedupe_keys=dedupe_keys,
            actor=actor,
        )
        alerts.append(alert)
        if is_new and alert.alert_id is not None:  # flushed: the id is set
            created.append(alert.alert_id)
        if freeze and portfolio_id is not None:
            status = set_freeze(
                session,
                actor=actor,
                portfolio_id=portfolio_id,
                reason_code=code,
                reason_detail=message,
                alert_id=alert.alert_id,
            )
            if status.changed:
                frozen.append(portfolio_id)
    return Raised(tuple(alerts), tuple(created), tuple(frozen))
