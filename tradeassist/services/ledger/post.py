"""``post_entries``: the one path that appends a batch, as a sequence of named stages.

1. the portfolio, the batch's kind and label, its cash row locked; a file imported before is
   a no-op;
2. each entry's types and listing (``validate.normalise_entries``);
3. references already recorded are skipped or refused (``validate.entries_to_add``);
4. each new entry's own rules and corrections (``validate.check_entries``);
5. the timeline: the snapshot advanced, or the whole ledger replayed (``timeline``);
6. the batch, its entries and the snapshots written, and the posting audited.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlmodel import Session, col

from ...core.enums import BatchType, EntryType, TaxTreatment
from ...core.errors import ValidationError
from ...core.timeutil import ensure_utc, london_date, utcnow
from ...db.models import LedgerBatch, Portfolio, User
from .. import access, audit
from .insert import insert_entries
from .model import BalanceCheck, NewEntry, PostResult
from .problems import Problems
from .reads import latest_entry_time, load_listings
from .snapshots import lock_cash, write_snapshots
from .timeline import Validated, validate_timeline
from .validate import Checked, check_entries, entries_to_add, normalise_entries, to_batch_type


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector around a bulk step: a million new tuples with no
    cycles would only be rescanned again and again (measured: 10-20% of an import)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True)
class _Batch:
    """What is recorded about the batch itself."""

    label: str
    kind: BatchType
    recommendation_id: int | None
    source_name: str | None
    source_sha256: str | None


@paused_gc()
def post_entries(
    session: Session,
    *,
    actor: User,
    portfolio: str | Portfolio,
    entries: Sequence[NewEntry],
    label: str,
    batch_type: BatchType | str,
    recommendation_id: int | None = None,
    source_name: str | None = None,
    source_sha256: str | None = None,
    balances: Sequence[BalanceCheck] = (),
    now: datetime | None = None,
    watch_new: bool = False,
    force: bool = False,
) -> PostResult:
    """Validate and append one batch; update the snapshots. Refused as a whole, naming every
    entry at fault (``FileFormatError`` for entries from a file, else ``LedgerError``).

    ``source_sha256`` (an imported file's content hash) makes a second import of the same
    file a no-op (``already_imported``). ``balances`` are a broker's running cash balances to
    check against ours after the import (the first disagreement refuses it). Entries that
    correct others (``corrects_entry_id``) belong in a MANUAL_FIX batch. ``watch_new`` also
    reports the Section 104 cost each new entry carried (``PostResult.transfer_costs``: a
    transfer posts its incoming half at the outgoing half's cost). A contribution that would
    take the owner's ISA subscriptions for a tax year over the allowance is refused unless
    ``force``.
    """
    folio = access.portfolio_for(session, actor, portfolio, "post ledger entries")
    pid = folio.portfolio_id
    assert pid is not None
    now = ensure_utc(now) if now is not None else utcnow()
    kind = to_batch_type(batch_type)
    batch = _Batch(_label(label), kind, recommendation_id, source_name, source_sha256)
    cash_row = lock_cash(session, pid)
    if source_sha256 is not None and _imported_before(session, pid, source_sha256):
        return PostResult(folio.name, None, 0, len(entries), cash_row.cash_balance, False, True)
    if not entries:
        raise ValidationError("a batch needs at least one entry")

    problems = Problems(entries)
    listings = load_listings(session)
    normalised, listing_ids, columns = normalise_entries(entries, listings, problems)
    latest = latest_entry_time(session, pid)
    keep = entries_to_add(session, pid, normalised, listing_ids, latest, problems)
    skipped = len(normalised) - len(keep)
    quotes = {k: v.quote for k, v in listings.items()}
    checked = check_entries(session, pid, normalised, listing_ids, keep, kind, quotes, now, problems, columns)
    if not force:
        _check_isa_allowance(session, folio, checked, problems)
    if not checked.entries:
        return PostResult(folio.name, None, 0, skipped, cash_row.cash_balance, False)
    validated = validate_timeline(
        session, pid, checked, listings, latest, balances, keep, watch_new, problems
    )

    batch_id = _append(session, actor, pid, batch, checked, validated, normalised, now)
    _audit(session, actor, folio.name, batch_id, batch, checked, validated, skipped)
    return _posted(folio.name, batch_id, skipped, checked, validated, watch_new)


def _check_isa_allowance(session: Session, folio: Portfolio, checked: Checked, problems: Problems) -> None:
    if folio.tax_treatment != TaxTreatment.ISA:
        return  # subscriptions are paid into ISAs: nothing else to count (nor to import the rules)
    from ..tax.allowances import isa_subscription_problems

    contributions = [
        (-e.key - 1, london_date(e.entry_time), e.cash)
        for e in checked.entries
        if e.entry_type is EntryType.CONTRIBUTION and e.key < 0
    ]
    for index, reason in isa_subscription_problems(session, folio, contributions):
        problems.new(index, reason)
    problems.raise_if_any()


def _label(label: str) -> str:
    label = (label or "").strip()
    if not label:
        raise ValidationError("a batch needs a label")
    return label


def _imported_before(session: Session, portfolio_id: int, source_sha256: str) -> bool:
    earlier = session.execute(
        select(col(LedgerBatch.ledger_batch_id)).where(
            col(LedgerBatch.portfolio_id) == portfolio_id, col(LedgerBatch.source_sha256) == source_sha256
        )
    ).scalar()
    return earlier is not None


def _append(
    session: Session,
    actor: User,
    portfolio_id: int,
    batch: _Batch,
    checked: Checked,
    validated: Validated,
    normalised: Sequence[NewEntry],
    now: datetime,
) -> int:
    """Write the batch and its entries (in time order) and the snapshots; the new batch's id."""
    assert actor.user_id is not None
    row = LedgerBatch(
        portfolio_id=portfolio_id,
        label=batch.label[:200],
        batch_type=batch.kind,
        created_by_user_id=actor.user_id,
        source_name=batch.source_name,
        source_sha256=batch.source_sha256,
        recommendation_id=batch.recommendation_id,
    )
    session.add(row)
    session.flush()
    batch_id = row.ledger_batch_id
    assert batch_id is not None
    effects = validated.outcome.effects
    carried: dict[int, Decimal] = {
        e.key: -effects[e.cost_from].cost
        for e in checked.entries
        if e.cost_from is not None and e.cost is None
    }
    insert_entries(session, batch_id, portfolio_id, validated.ordered, normalised, carried)
    write_snapshots(session, portfolio_id, validated.outcome.book, now)
    return batch_id


def _posted(
    portfolio: str, batch_id: int, skipped: int, checked: Checked, validated: Validated, watch_new: bool
) -> PostResult:
    transfer_costs = None
    if watch_new:
        transfer_costs = {-k - 1: eff.cost for k, eff in validated.outcome.effects.items() if k < 0}
    return PostResult(
        portfolio,
        batch_id,
        len(checked.entries),
        skipped,
        validated.outcome.book.cash,
        not validated.incremental,
        transfer_costs=transfer_costs,
    )


def _audit(
    session: Session,
    actor: User,
    portfolio: str,
    batch_id: int,
    batch: _Batch,
    checked: Checked,
    validated: Validated,
    skipped: int,
) -> None:
    audit.record(
        session,
        actor=actor,
        action="LEDGER_BATCH_POSTED",
        entity_type="ledger_batch",
        entity_id=batch_id,
        details={
            "portfolio": portfolio,
            "label": batch.label,
            "batch_type": batch.kind.value,
            "entries": len(checked.entries),
            "skipped": skipped,
            "source_name": batch.source_name,
            "source_sha256": batch.source_sha256,
            "recommendation_id": batch.recommendation_id,
            "replayed": not validated.incremental,
            "cash_balance": validated.outcome.book.cash,
        },
    )
