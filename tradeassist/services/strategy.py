"""Strategy versions: a policy and a manifesto archived under their SHA-256, the portfolios the
version governs (its scope), a DRAFT -> APPROVED -> RETIRED lifecycle, and the portfolio
constituents that implement the strategy's sleeves.

A portfolio is governed by the version most recently approved for it (a version whose scope
holds it), while that version stays APPROVED (``governing_strategy``). Approving a version
takes over the portfolios of its scope and nothing else: a portfolio outside its scope keeps
the version that governs it, and a previously approved version is RETIRED once it governs no
portfolio any more. ``approve`` documents how this stays one version per portfolio.

The policy a version is used with is its *effective* policy (``load_version``): the archived
policy (the file as written, its hash unchanged) with the manifesto's rule lines merged into
its hard rules (``policy.with_manifesto_rules``). Recommendations, their input snapshots, the
review request and ``strategy show`` all read that one policy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from ..core.enums import StrategyStatus, Verdict
from ..core.errors import AlreadyExists, NotFound, ValidationError
from ..core.timeutil import utcnow
from ..db.models import (
    InstrumentListing,
    ManifestoArchive,
    PolicyArchive,
    Portfolio,
    PortfolioConstituent,
    Sleeve,
    SleeveTarget,
    StrategyVersion,
    StrategyVersionPortfolio,
    User,
)
from ..manifesto import parse_manifesto_rules
from ..policy import Policy, parse_policy, policy_sha256, policy_to_dict, with_manifesto_rules
from . import audit
from .access import can_access, portfolio_for, require_access
from .registry import get_listing


@dataclass(frozen=True)
class ApprovedStrategy:
    """A version with its effective policy (manifesto rules merged) and its manifesto."""

    version: StrategyVersion
    policy: Policy
    manifesto: str


@dataclass(frozen=True)
class Approval:
    """What approving a version did: the versions it retired (labels: they govern no
    portfolio any more), and the versions it took a portfolio from that still govern others
    (label -> the names of those portfolios the actor may see)."""

    version: StrategyVersion
    retired: tuple[str, ...]
    still_governing: dict[str, tuple[str, ...]]


def canonical_manifesto(text: str) -> str:
    """Line endings normalised, trailing blanks removed, one final newline: the text hashed."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip("\n") + "\n"


def manifesto_sha256(text: str) -> str:
    return hashlib.sha256(canonical_manifesto(text).encode("utf-8")).hexdigest()


def _archive_policy(session: Session, policy: Policy) -> str:
    sha = policy_sha256(policy)
    if session.get(PolicyArchive, sha) is None:
        session.add(PolicyArchive(policy_sha256=sha, policy_json=policy_to_dict(policy)))
    return sha


def _archive_manifesto(session: Session, text: str) -> str:
    canonical = canonical_manifesto(text)
    if not canonical.strip():
        raise ValidationError("manifesto: empty")
    sha = manifesto_sha256(canonical)
    if session.get(ManifestoArchive, sha) is None:
        session.add(ManifestoArchive(manifesto_sha256=sha, manifesto_md=canonical))
    return sha


def effective_policy(policy: Policy, manifesto: str) -> Policy:
    """``policy`` with the manifesto's rule lines merged into its hard rules; a rule that
    contradicts the policy raises ``ValidationError`` naming the manifesto line."""
    text = canonical_manifesto(manifesto)
    return with_manifesto_rules(policy, parse_manifesto_rules(text), manifesto=text)


def _scope(session: Session, actor: User, label: str, names: Sequence[str] | None) -> list[Portfolio]:
    """The portfolios a new version governs: those named (the actor needs access to each),
    else every portfolio the actor owns."""
    chosen: dict[int, Portfolio] = {}
    for name in names or ():
        p = portfolio_for(session, actor, name.strip(), "set a strategy")
        chosen[p.portfolio_id] = p  # type: ignore[index]
    if not names:
        owned = session.exec(
            select(Portfolio).where(Portfolio.owner_user_id == actor.user_id).order_by(Portfolio.portfolio_id)
        ).all()
        chosen = {p.portfolio_id: p for p in owned}  # type: ignore[misc]
    if not chosen:
        raise ValidationError(
            f"strategy {label!r}: no portfolio to govern: {actor.email} owns none; "
            "name the portfolios with --portfolio NAME"
        )
    return [chosen[k] for k in sorted(chosen)]


def add_strategy(
    session: Session,
    *,
    actor: User,
    label: str,
    policy_text: str | bytes | dict[str, Any],
    manifesto: str,
    portfolios: Sequence[str] | None = None,
) -> StrategyVersion:
    """Archive the policy and manifesto (the same content is never archived twice) and add a
    DRAFT version with its sleeve targets, creating sleeves the policy names for the first time.

    The version governs ``portfolios`` (names; the actor needs access to each), by default
    every portfolio the actor owns. The manifesto's rule lines are merged into the policy's
    hard rules now, once: a rule that contradicts the policy refuses the version, naming the
    manifesto line. The archive keeps the policy as written.
    """
    label = label.strip()
    if not label:
        raise ValidationError("strategy label: empty")
    if session.exec(select(StrategyVersion).where(StrategyVersion.version_label == label)).first():
        raise AlreadyExists(f"strategy version {label!r} exists already")
    policy = parse_policy(policy_text)
    effective_policy(policy, manifesto)
    scope = _scope(session, actor, label, portfolios)
    policy_hash = _archive_policy(session, policy)
    manifesto_hash = _archive_manifesto(session, manifesto)
    session.flush()
    twin = session.exec(
        select(StrategyVersion).where(
            StrategyVersion.policy_sha256 == policy_hash, StrategyVersion.manifesto_sha256 == manifesto_hash
        )
    ).first()
    if twin is not None:
        raise AlreadyExists(f"the same policy and manifesto are version {twin.version_label!r} already")
    for code in policy.sleeve_targets:
        if session.get(Sleeve, code) is None:
            session.add(Sleeve(sleeve_code=code, name=code.replace("_", " ").title()))
    version = StrategyVersion(
        version_label=label,
        status=StrategyStatus.DRAFT,
        policy_sha256=policy_hash,
        manifesto_sha256=manifesto_hash,
        created_by_user_id=actor.user_id,
    )
    session.add(version)
    session.flush()
    for code, weight in policy.sleeve_targets.items():
        session.add(
            SleeveTarget(
                strategy_version_id=version.strategy_version_id, sleeve_code=code, target_weight=weight
            )
        )
    for p in scope:
        session.add(
            StrategyVersionPortfolio(
                strategy_version_id=version.strategy_version_id, portfolio_id=p.portfolio_id
            )
        )
    audit.record(
        session,
        actor=actor,
        action="STRATEGY_ADDED",
        entity_type="strategy_version",
        entity_id=version.strategy_version_id,
        details={
            "label": label,
            "policy_sha256": policy_hash,
            "manifesto_sha256": manifesto_hash,
            "portfolios": [p.name for p in scope],
        },
    )
    session.flush()
    return version


def scope_of(session: Session, version: StrategyVersion) -> list[Portfolio]:
    """The portfolios of ``version``'s scope (written with it, never changed), by id."""
    return list(
        session.exec(
            select(Portfolio)
            .join(StrategyVersionPortfolio, StrategyVersionPortfolio.portfolio_id == Portfolio.portfolio_id)
            .where(StrategyVersionPortfolio.strategy_version_id == version.strategy_version_id)
            .order_by(Portfolio.portfolio_id)
        ).all()
    )


def require_scope_access(session: Session, actor: User, version: StrategyVersion, operation: str) -> None:
    """``AccessDenied`` (audited) unless the actor may use every portfolio of the version's scope."""
    for p in scope_of(session, version):
        require_access(session, actor, p, operation)


def _last_approved(session: Session, portfolio_id: int) -> StrategyVersion | None:
    """The version most recently approved for the portfolio, whatever its status now."""
    return session.exec(
        select(StrategyVersion)
        .join(
            StrategyVersionPortfolio,
            StrategyVersionPortfolio.strategy_version_id == StrategyVersion.strategy_version_id,
        )
        .where(
            StrategyVersionPortfolio.portfolio_id == portfolio_id,
            col(StrategyVersion.approved_at).is_not(None),
        )
        .order_by(col(StrategyVersion.approved_at).desc(), col(StrategyVersion.strategy_version_id).desc())
        .limit(1)
    ).first()


def governing_version(session: Session, portfolio_id: int) -> StrategyVersion | None:
    """The version governing the portfolio: the one most recently approved for it, if it is
    still APPROVED (retiring it leaves the portfolio without one; an older version does not
    come back)."""
    last = _last_approved(session, portfolio_id)
    return last if last is not None and last.status is StrategyStatus.APPROVED else None


def governed_by(session: Session, version: StrategyVersion) -> list[Portfolio]:
    """The portfolios of ``version``'s scope that it governs now."""
    return [
        p
        for p in scope_of(session, version)
        if (g := governing_version(session, p.portfolio_id)) is not None  # type: ignore[arg-type]
        and g.strategy_version_id == version.strategy_version_id
    ]


def get_version(session: Session, label: str) -> StrategyVersion:
    version = session.exec(select(StrategyVersion).where(StrategyVersion.version_label == label)).first()
    if version is None:
        raise NotFound(f"no strategy version {label!r}")
    return version


def _set_status(
    session: Session,
    actor: User,
    version: StrategyVersion,
    status: StrategyStatus,
    extra: dict[str, Any] | None = None,
    approved_at: datetime | None = None,
) -> None:
    previous = version.status
    version.status = status
    if status is StrategyStatus.APPROVED:
        version.approved_at = approved_at or utcnow()
    session.add(version)
    audit.record(
        session,
        actor=actor,
        action=f"STRATEGY_{status.value}",
        entity_type="strategy_version",
        entity_id=version.strategy_version_id,
        details={"label": version.version_label, "from": previous.value, "to": status.value, **(extra or {})},
    )


def approve(session: Session, *, actor: User, label: str, override_reason: str | None = None) -> Approval:
    """DRAFT -> APPROVED: the version governs the portfolios of its scope from now on. Every
    transition audited.

    The actor needs access to each portfolio of the version's scope (a denial is audited).
    The manifesto is reviewed first (the default reviewer; a verdict stored with the version):
    a FAIL refuses approval unless ``override_reason`` is given (audited).

    Only the APPROVED versions that governed one of these portfolios are touched: each keeps
    governing its other portfolios, and is RETIRED once it governs none. A portfolio outside
    the scope keeps the version governing it.

    One version per portfolio: a portfolio is governed by the version most recently approved
    for it (``governing_version``), so two approved versions can never both govern it. The
    order is made certain here: the scope's portfolio rows are locked first (``SELECT ... FOR
    UPDATE`` in portfolio id order, so approvals sharing a portfolio run one after the other
    and cannot deadlock; SQLite's write transactions are serialised by ``BEGIN IMMEDIATE``),
    and under that lock ``approved_at`` is made strictly later than that of every version
    approved before for any of these portfolios, whatever the clocks of the machines say.
    The approval then checks that it governs each portfolio of its scope.
    """
    version = get_version(session, label)
    if version.status is not StrategyStatus.DRAFT:
        raise ValidationError(f"strategy {label!r} is {version.status.value}: only a DRAFT can be approved")
    scope = scope_of(session, version)
    if not scope:
        raise ValidationError(
            f"strategy {label!r} governs no portfolio: add a version naming them with --portfolio"
        )
    require_scope_access(session, actor, version, "approve a strategy")
    review = _review_manifesto(session, actor, version, override_reason)
    scope_ids = [p.portfolio_id for p in scope]
    session.exec(
        select(Portfolio.portfolio_id)
        .where(col(Portfolio.portfolio_id).in_(scope_ids))
        .order_by(Portfolio.portfolio_id)
        .with_for_update()
    ).all()
    before: dict[int, StrategyVersion] = {}
    approved_at = utcnow()
    for pid in scope_ids:
        last = _last_approved(session, pid)  # type: ignore[arg-type]
        if last is None:
            continue
        assert last.approved_at is not None
        approved_at = max(approved_at, last.approved_at + timedelta(microseconds=1))
        if last.status is StrategyStatus.APPROVED:
            before[last.strategy_version_id] = last  # type: ignore[index]
    _set_status(
        session,
        actor,
        version,
        StrategyStatus.APPROVED,
        {
            **review,
            "portfolios": [p.name for p in scope],
            "taken_from": sorted(old.version_label for old in before.values()),
        },
        approved_at=approved_at,
    )
    session.flush()
    retired: list[str] = []
    still: dict[str, tuple[str, ...]] = {}
    for old in before.values():
        governs = governed_by(session, old)
        if governs:
            still[old.version_label] = tuple(p.name for p in governs if can_access(session, actor, p))
        else:
            _set_status(session, actor, old, StrategyStatus.RETIRED, {"retired_by": label})
            retired.append(old.version_label)
    session.flush()
    for p in scope:
        governing = governing_version(session, p.portfolio_id)  # type: ignore[arg-type]
        if governing is None or governing.strategy_version_id != version.strategy_version_id:
            raise ValidationError(
                f"strategy {label!r}: another approval for {p.name!r} came first; try again"
            )
    return Approval(version, tuple(sorted(retired)), still)


def approve_strategy(
    session: Session, *, actor: User, label: str, override_reason: str | None = None
) -> StrategyVersion:
    """``approve``, returning the approved version alone."""
    return approve(session, actor=actor, label=label, override_reason=override_reason).version


def _review_manifesto(
    session: Session, actor: User, version: StrategyVersion, override_reason: str | None
) -> dict[str, Any]:
    """The manifesto's verdict (what the approval's audit row records); a FAIL without an
    override reason refuses the approval."""
    from .recommendations import ReviewFailed, fail_message, review_manifesto, verdict_row

    verdict = review_manifesto(session, actor=actor, version=version)
    shown = {
        "manifesto_verdict": verdict.verdict.value,
        "llm_verdict_id": verdict.llm_verdict_id,
        "reviewer": verdict.provider_name,
    }
    if verdict.verdict is not Verdict.FAIL:
        return shown
    reason = (override_reason or "").strip()
    if not reason:
        raise ReviewFailed(fail_message(f"strategy {version.version_label!r}: its manifesto", verdict))
    audit.record(
        session,
        actor=actor,
        action="STRATEGY_FAIL_OVERRIDDEN",
        entity_type="strategy_version",
        entity_id=version.strategy_version_id,
        details={
            "label": version.version_label,
            "reason": reason,
            "llm_verdict_id": verdict.llm_verdict_id,
            "reasons": verdict_row(verdict)["reasons"],
        },
    )
    return {**shown, "override_reason": reason}


@dataclass(frozen=True)
class Retirement:
    """A retired version and the portfolios it governed, now without an approved strategy."""

    version: StrategyVersion
    left_without_strategy: tuple[str, ...]


def retire(session: Session, *, actor: User, label: str) -> Retirement:
    """Retire a version (the actor needs access to each portfolio of its scope, as to approve
    it). The portfolios it governed are then without an approved strategy until one is
    approved for them: an older version does not come back."""
    version = get_version(session, label)
    if version.status is StrategyStatus.RETIRED:
        raise ValidationError(f"strategy {label!r} is retired already")
    require_scope_access(session, actor, version, "retire a strategy")
    governed = governed_by(session, version)
    _set_status(
        session, actor, version, StrategyStatus.RETIRED, {"left_without_strategy": [p.name for p in governed]}
    )
    session.flush()
    return Retirement(version, tuple(p.name for p in governed))


def retire_strategy(session: Session, *, actor: User, label: str) -> StrategyVersion:
    """``retire``, returning the retired version alone."""
    return retire(session, actor=actor, label=label).version


def archived_policy(session: Session, version: StrategyVersion) -> Policy:
    """The version's policy as archived (the file as written): without the manifesto's rules."""
    row = session.get(PolicyArchive, version.policy_sha256)
    assert row is not None  # the foreign key guarantees it
    return parse_policy(row.policy_json)


def load_version(session: Session, version: StrategyVersion) -> ApprovedStrategy:
    """The version with its effective policy: the archived policy with the manifesto's rules
    merged (``effective_policy``); a version whose rules contradict its policy (stored before
    the rules were checked) is a ``ValidationError`` naming the version and the line."""
    manifesto_row = session.get(ManifestoArchive, version.manifesto_sha256)
    assert manifesto_row is not None  # the foreign key guarantees it
    try:
        policy = effective_policy(archived_policy(session, version), manifesto_row.manifesto_md)
    except ValidationError as exc:
        raise ValidationError(
            f"strategy {version.version_label!r}: {exc}; add a corrected version and approve it"
        ) from None
    return ApprovedStrategy(version, policy, manifesto_row.manifesto_md)


def governing_strategy(session: Session, portfolio_id: int | Portfolio) -> ApprovedStrategy:
    """The approved version governing the portfolio, with its effective policy: what drives
    the portfolio's recommendations, runs and previews."""
    portfolio = portfolio_id if isinstance(portfolio_id, Portfolio) else session.get(Portfolio, portfolio_id)
    if portfolio is None:
        raise NotFound(f"no portfolio with id {portfolio_id}")
    version = governing_version(session, portfolio.portfolio_id)  # type: ignore[arg-type]
    if version is None:
        raise NotFound(
            f"no approved strategy governs portfolio {portfolio.name!r}: add one with "
            f"`tradeassist strategy add --label LABEL --policy FILE --manifesto FILE "
            f"--portfolio {portfolio.name!r}` and approve it with `tradeassist strategy approve LABEL`"
        )
    return load_version(session, version)


def strategy_rows(
    session: Session, *, actor: User | None = None, portfolio: Portfolio | None = None
) -> list[dict[str, Any]]:
    """Every version (``portfolio``: those whose scope holds it), oldest first, with its
    status, its scope (``portfolios``) and the part of it it governs now (``governs``: a later
    approval may have taken some over), as names of the portfolios ``actor`` may see (all
    without an actor), its sleeve targets and its hard rules (the effective policy's)."""
    query = select(StrategyVersion).order_by(StrategyVersion.strategy_version_id)
    if portfolio is not None:
        query = query.where(
            col(StrategyVersion.strategy_version_id).in_(
                select(StrategyVersionPortfolio.strategy_version_id).where(
                    StrategyVersionPortfolio.portfolio_id == portfolio.portfolio_id
                )
            )
        )
    rows = []
    for v in session.exec(query).all():
        targets = session.exec(
            select(SleeveTarget).where(SleeveTarget.strategy_version_id == v.strategy_version_id)
        ).all()
        scope = [p for p in scope_of(session, v) if actor is None or can_access(session, actor, p)]
        governs = (
            {p.portfolio_id for p in governed_by(session, v)}
            if v.status is StrategyStatus.APPROVED
            else set()
        )
        rows.append(
            {
                "strategy_version_id": v.strategy_version_id,
                "label": v.version_label,
                "version_label": v.version_label,
                "status": v.status.value,
                "portfolios": [p.name for p in scope],
                "governs": [p.name for p in scope if p.portfolio_id in governs],
                "policy_sha256": v.policy_sha256,
                "manifesto_sha256": v.manifesto_sha256,
                "created_at": v.created_at,
                "approved_at": v.approved_at,
                "sleeve_targets": {t.sleeve_code: t.target_weight for t in targets},
                "hard_rules": _hard_rules(session, v),
            }
        )
    return rows


def _hard_rules(session: Session, version: StrategyVersion) -> dict[str, Any]:
    try:
        return load_version(session, version).policy.hard_rules()
    except ValidationError as exc:  # stored before rules were checked: shown, never used
        return {**archived_policy(session, version).hard_rules(), "problem": str(exc)}


def add_constituent(
    session: Session,
    *,
    actor: User,
    portfolio: str,
    ticker: str,
    exchange: str,
    sleeve: str,
    include_in_calcs: bool = True,
    is_monitored: bool = True,
) -> PortfolioConstituent:
    p = portfolio_for(session, actor, portfolio, "map constituents")
    listing = get_listing(session, ticker, exchange)
    code = _known_sleeve(session, sleeve)
    if session.get(PortfolioConstituent, (p.portfolio_id, listing.listing_id)) is not None:
        raise AlreadyExists(f"{listing.ticker} on {listing.exchange} is a constituent of {p.name!r} already")
    row = PortfolioConstituent(
        portfolio_id=p.portfolio_id,
        listing_id=listing.listing_id,
        sleeve_code=code,
        include_in_calcs=include_in_calcs,
        is_monitored=is_monitored,
    )
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action="CONSTITUENT_ADDED",
        entity_type="portfolio",
        entity_id=p.portfolio_id,
        details={
            "ticker": listing.ticker,
            "exchange": listing.exchange,
            "sleeve": code,
            "include_in_calcs": include_in_calcs,
            "is_monitored": is_monitored,
        },
    )
    session.flush()
    return row


def _known_sleeve(session: Session, sleeve: str) -> str:
    code = sleeve.strip().upper()
    if session.get(Sleeve, code) is None:
        known = ", ".join(s.sleeve_code for s in session.exec(select(Sleeve)).all()) or "none yet"
        raise NotFound(f"unknown sleeve {code!r} (known: {known}); sleeves come from a strategy's policy")
    return code


def move_constituent(
    session: Session, *, actor: User, portfolio: str, ticker: str, exchange: str, sleeve: str
) -> PortfolioConstituent:
    """Map a constituent to another sleeve (constituents are a snapshot: the row is updated);
    audited as ``CONSTITUENT_MOVED`` with the sleeve it left and the one it joined."""
    p = portfolio_for(session, actor, portfolio, "map constituents")
    listing = get_listing(session, ticker, exchange)
    row = session.get(PortfolioConstituent, (p.portfolio_id, listing.listing_id))
    if row is None:
        raise NotFound(
            f"{listing.ticker} on {listing.exchange} is not a constituent of {p.name!r}: "
            "add it with `tradeassist constituent add`"
        )
    code = _known_sleeve(session, sleeve)
    previous = row.sleeve_code
    if previous == code:
        raise ValidationError(
            f"{listing.ticker} on {listing.exchange} is in sleeve {code} of {p.name!r} already"
        )
    row.sleeve_code = code
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action="CONSTITUENT_MOVED",
        entity_type="portfolio",
        entity_id=p.portfolio_id,
        details={"ticker": listing.ticker, "exchange": listing.exchange, "from": previous, "to": code},
    )
    session.flush()
    return row


def constituent_rows(session: Session, portfolio: Portfolio) -> list[dict[str, Any]]:
    rows = session.exec(
        select(PortfolioConstituent, InstrumentListing)
        .join(InstrumentListing, InstrumentListing.listing_id == PortfolioConstituent.listing_id)
        .where(PortfolioConstituent.portfolio_id == portfolio.portfolio_id)
        .order_by(PortfolioConstituent.sleeve_code, InstrumentListing.ticker)
    ).all()
    return [
        {
            "ticker": lst.ticker,
            "exchange": lst.exchange,
            "sleeve": c.sleeve_code,
            "include_in_calcs": c.include_in_calcs,
            "is_monitored": c.is_monitored,
        }
        for c, lst in rows
    ]
