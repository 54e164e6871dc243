"""``prices refresh``: download each listing's prices from its configured provider.

Three steps, so that no write lock is held while downloading: ``plan_refresh`` (read: which
listings, which provider and symbol, from which day), ``fetch_targets`` (network only, no
database; a failure is kept per listing, never raised) and ``apply_refresh`` (write: each
listing's series stored in a savepoint of its own, so one listing's failure is reported and
the others are still stored). ``refresh`` does the three in the caller's transaction.

Downloads run ``MAX_PARALLEL_DOWNLOADS`` (4) at a time in worker threads that never touch the
database (the session stays on the caller's thread); each is bounded by its provider's HTTP
deadline (120 s by default, connect to last byte), so a refresh of ``n`` listings whose servers
never answer gives up after at most ``ceil(n / 4)`` deadlines, not ``n``. Results come back in
the order of the targets whatever order the downloads finish in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select, true
from sqlmodel import Session, col

from ..core.errors import TradeAssistError, ValidationError
from ..db.models import InstrumentListing, User
from ..providers.prices import PriceSeries, get_price_provider
from .access import portfolio_for
from .market import close_day, source_id
from .price_checks import POINTS
from .price_ingest import ingest_series
from .price_reads import portfolio_listings

MAX_PARALLEL_DOWNLOADS = 4  # at once: enough to wait out dead servers together, few enough for rate limits


@dataclass(frozen=True)
class RefreshTarget:
    listing_id: int
    ticker: str
    exchange: str
    provider: str
    symbol: str
    start: date | None


@dataclass(frozen=True)
class Fetched:
    target: RefreshTarget
    series: PriceSeries | None
    error: str | None


@dataclass(frozen=True)
class RefreshOutcome:
    ticker: str
    exchange: str
    provider: str | None
    status: str  # "refreshed", "failed" or "skipped"
    message: str
    inserted: int = 0
    unchanged: int = 0
    conflicts: int = 0
    flagged: Mapping[str, int] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {
            "ticker": self.ticker,
            "exchange": self.exchange,
            "provider": self.provider,
            "status": self.status,
            "inserted": self.inserted,
            "unchanged": self.unchanged,
            "conflicts": self.conflicts,
            "flagged": dict(self.flagged),
            "message": self.message,
        }


def plan_refresh(
    session: Session, *, actor: User, portfolio: str | None = None
) -> tuple[list[RefreshTarget], list[RefreshOutcome]]:
    """What to download: the portfolio's held and mapped listings (or every listing), each
    from the day of its last stored close from its provider (that day is fetched again, to
    confirm it). Listings without a provider are reported as skipped."""
    if portfolio is not None:
        chosen = portfolio_for(session, actor, portfolio, "refresh prices")
        listings = [lst for lst, _, _ in portfolio_listings(session, chosen.portfolio_id)]
    else:
        listings = list(
            session.scalars(
                select(InstrumentListing).order_by(
                    col(InstrumentListing.ticker), col(InstrumentListing.exchange)
                )
            ).all()
        )
    targets: list[RefreshTarget] = []
    skipped: list[RefreshOutcome] = []
    for listing in listings:
        if not listing.price_provider:
            skipped.append(
                RefreshOutcome(
                    listing.ticker, listing.exchange, None, "skipped", "no price provider configured"
                )
            )
            continue
        src = source_id(session, listing.price_provider, create=False)
        last = None
        if src is not None:
            last = session.execute(
                select(func.max(POINTS.c.as_of)).where(
                    POINTS.c.listing_id == listing.listing_id,
                    POINTS.c.source_id == src,
                    POINTS.c.is_close == true(),
                )
            ).scalar()
        assert listing.listing_id is not None
        targets.append(
            RefreshTarget(
                listing_id=listing.listing_id,
                ticker=listing.ticker,
                exchange=listing.exchange,
                provider=listing.price_provider,
                symbol=listing.provider_symbol or listing.ticker,
                start=close_day(last) if last is not None else None,
            )
        )
    return targets, skipped


def fetch_targets(
    targets: Sequence[RefreshTarget],
    *,
    provider_options: Mapping[str, Mapping[str, Any]] | None = None,
    workers: int = MAX_PARALLEL_DOWNLOADS,
    on_step: Callable[[int], None] | None = None,
) -> list[Fetched]:
    """Download each target (no database), at most ``workers`` at once; one ``Fetched`` per
    target, in the targets' order. A failure is kept with its message, never raised.
    ``on_step(1)`` is called as each download ends (a progress bar)."""
    if workers < 1:
        raise ValidationError("workers must be at least 1")
    if not targets:
        return []
    options = provider_options or {}

    def fetch(target: RefreshTarget) -> Fetched:
        fetched = _fetch(target, options)
        if on_step is not None:
            on_step(1)
        return fetched

    with ThreadPoolExecutor(max_workers=min(workers, len(targets)), thread_name_prefix="price-fetch") as pool:
        return list(pool.map(fetch, targets))


def _fetch(target: RefreshTarget, provider_options: Mapping[str, Mapping[str, Any]]) -> Fetched:
    """One target's download (in a worker thread: no database here)."""
    options = dict(provider_options.get(target.provider, {}))
    if target.provider == "twelvedata":
        options.setdefault("mic_code", target.exchange)
    try:
        provider = get_price_provider(target.provider, **options)
        fetch = getattr(provider, "fetch", None)
        if fetch is None:
            raise ValidationError(f"price provider {target.provider!r} cannot download; import files instead")
        return Fetched(target, fetch(target.symbol, start=target.start), None)
    except TradeAssistError as exc:
        return Fetched(target, None, str(exc))


def apply_refresh(
    session: Session, *, actor: User | None, fetched: Sequence[Fetched]
) -> list[RefreshOutcome]:
    """Store what was downloaded, one listing at a time (a savepoint each): one listing's
    failure is reported and the others are still stored."""
    outcomes = []
    for item in fetched:
        target = item.target
        if item.series is None:
            outcomes.append(
                RefreshOutcome(
                    target.ticker, target.exchange, target.provider, "failed", item.error or "failed"
                )
            )
            continue
        try:
            with session.begin_nested():
                listing = session.get(InstrumentListing, target.listing_id)
                assert listing is not None
                result = ingest_series(
                    session, actor=actor, listing=listing, series=item.series, source=target.provider
                )
        except TradeAssistError as exc:
            outcomes.append(
                RefreshOutcome(target.ticker, target.exchange, target.provider, "failed", str(exc))
            )
            continue
        message = f"{result.inserted} new, {result.unchanged} unchanged"
        if result.conflicts:
            message += f", {len(result.conflicts)} differ from the stored prices (stored kept)"
        if result.flagged:
            message += ", flagged: " + ", ".join(f"{k} {v}" for k, v in sorted(result.flagged.items()))
        outcomes.append(
            RefreshOutcome(
                target.ticker,
                target.exchange,
                target.provider,
                "refreshed",
                message,
                inserted=result.inserted,
                unchanged=result.unchanged,
                conflicts=len(result.conflicts),
                flagged=result.flagged,
            )
        )
    return outcomes


def refresh(
    session: Session,
    *,
    actor: User,
    portfolio: str | None = None,
    provider_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[RefreshOutcome]:
    """Plan, download and store in the caller's transaction (notebooks, task runs). The CLI
    downloads between two transactions instead, so no write lock is held during downloads."""
    targets, skipped = plan_refresh(session, actor=actor, portfolio=portfolio)
    fetched = fetch_targets(targets, provider_options=provider_options)
    return skipped + apply_refresh(session, actor=actor, fetched=fetched)
