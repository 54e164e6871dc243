"""Validating a batch against the portfolio's timeline.

If every new entry is at or after the latest entry of the portfolio and the latest corporate
action that touches it, the snapshot is advanced from where it stands (the common case: no
replay), once its cash and the pools the batch draws on are checked against the ledger
(``integrity.check_start``: the snapshots are writable, so they are not trusted). Otherwise (a
back-dated import, a correction) the portfolio's whole ledger is replayed with the new entries
merged in by time, so an earlier entry can never make past cash negative or a past sale exceed
the units then held. A correction's reversals leave the replay with the entries they reverse
(``engine.book.cancelled_pairs``): the book is the ledger's without them, and where that ledger
does not stand, the entry it fails at is named with the command that reverses it too.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from functools import partial
from operator import attrgetter, is_not
from typing import NamedTuple

from sqlmodel import Session

from ...core.money import ZERO, format_gbp
from ...core.timeutil import ensure_utc
from ...db.models import Portfolio
from ...engine import book as bk
from .integrity import check_start
from .model import BalanceCheck, ListingInfo
from .problems import Problems
from .reads import load_actions, load_timeline, relevant_actions, snapshot_book
from .validate import Checked

# A batch holds up to a million entries: its columns are read without a Python frame per entry.
_time_of, _listing_of = attrgetter("entry_time"), attrgetter("listing_id")
_corrects, _cost_from = attrgetter("corrects"), attrgetter("cost_from")
_not_none = partial(is_not, None)


class Validated(NamedTuple):
    ordered: list[bk.Entry]  # the new entries in time order: how they are written
    outcome: bk.Replay
    incremental: bool  # the snapshot was advanced (no replay of the whole ledger)


def validate_timeline(
    session: Session,
    portfolio_id: int,
    checked: Checked,
    listings: Mapping[int, ListingInfo],
    latest: datetime | None,
    balances: Sequence[BalanceCheck],
    keep: Sequence[int],
    watch_new: bool,
    problems: Problems,
) -> Validated:
    """The book with the new entries applied, refused (through ``problems``) where it breaks:
    a sale of more units than held, cash below zero, a broker's balance that disagrees."""
    new = checked.entries
    quotes = {k: v.quote for k, v in listings.items()}
    start = snapshot_book(session, portfolio_id)
    actions = load_actions(session, listings)
    incremental = start is not None and _can_advance(new, start, actions, quotes, latest)
    ordered = sorted(new, key=_time_of)
    track = {-(b.after_entries) for b in balances if b.after_entries > 0}
    existing_times: dict[int, datetime] = {}
    new_keys = {e.key for e in new} if watch_new else set()
    new_keys |= set(filter(_not_none, map(_cost_from, new)))
    if incremental:
        assert start is not None
        check_start(session, portfolio_id, start, new, listings, actions)  # checked, not trusted
        outcome = bk.replay(
            ordered, quotes=quotes, start=start, track=track, watch=new_keys, apply_remaining_actions=False
        )
        opening = start.cash
    else:
        timeline = load_timeline(session, portfolio_id)
        opening = _cash_before(timeline, ordered[0].entry_time) if balances else ZERO
        # Every action is replayed (they only touch pools that exist); relevance only decides
        # whether the snapshot can be advanced instead.
        outcome = bk.replay(
            bk.merge_timeline(timeline, ordered), quotes=quotes, actions=actions, track=track, watch=new_keys
        )
        existing_times = {e[0]: e[1] for e in timeline}
    # A broker's balance that disagrees before the replay stopped is the likelier cause.
    _check_balances(balances, keep, outcome, opening, problems)
    for issue in outcome.issues:
        reason = issue.reason
        if checked.reversed_ids and issue.key > 0:
            reason += _once_reversed(session, portfolio_id, sorted(checked.reversed_ids), issue.key)
        problems.key(issue.key, reason, existing_times)
    problems.raise_if_any()
    return Validated(ordered, outcome, incremental)


def _once_reversed(session: Session, portfolio_id: int, reversed_ids: list[int], key: int) -> str:
    """Why a stored entry fails only once the correction's entries are gone, and how to
    reverse it with them (they are usually what it depended on: the cash or the units)."""
    folio = session.get(Portfolio, portfolio_id)
    name = shlex.quote(folio.name) if folio is not None else "NAME"
    ids = " ".join(map(str, sorted([*reversed_ids, key])))
    many = len(reversed_ids) > 1
    return (
        f", once entr{'ies' if many else 'y'} {', '.join(map(str, reversed_ids))} "
        f"{'are' if many else 'is'} reversed: reverse them together: "
        f"`tradeassist ledger correct {ids} --portfolio {name}`"
    )


def _can_advance(
    new: Sequence[bk.Entry],
    start: bk.Book,
    actions: Sequence[bk.Action],
    quotes: Mapping[int, bk.Quote],
    latest: datetime | None,
) -> bool:
    """Whether the snapshot can be advanced: no correction, and no new entry before the latest
    entry or before the latest corporate action touching the instruments involved."""
    earliest = min(map(_time_of, new))
    instruments = {quotes[lid].instrument_id for lid in set(map(_listing_of, new)) if lid}
    instruments |= {quotes[lid].instrument_id for lid in start.holdings}
    relevant = relevant_actions(actions, instruments)
    last_action = max((bk.action_instant(a.effective) for a in relevant), default=None)
    return (
        not any(map(_not_none, map(_corrects, new)))
        and (latest is None or earliest >= ensure_utc(latest))
        and (last_action is None or earliest >= last_action)
    )


def _cash_before(timeline: Sequence[bk.Row], when: datetime) -> Decimal:
    """Cash from the entries before ``when``: where a broker's opening balance must agree."""
    total = ZERO
    for e in timeline:
        if e[1] > when:
            break
        total += e[3]
    return total


def _check_balances(
    balances: Sequence[BalanceCheck],
    keep: Sequence[int],
    outcome: bk.Replay,
    opening: Decimal,
    problems: Problems,
) -> None:
    """The first statement balance that disagrees with our cash refuses the import."""
    if not balances:
        return
    kept = set(keep)
    for b in sorted(balances, key=lambda b: b.after_entries):
        index = b.after_entries - 1
        if max(index, 0) not in kept:
            continue  # an entry recorded before: its balance was checked then
        ours = opening if index < 0 else outcome.cash_after.get(-index - 1)
        if ours is None:
            continue
        if ours != b.balance:
            problems.other(
                b.source,
                b.line,
                f"the statement's balance is {format_gbp(b.balance, exact=True)} but the ledger's cash is "
                f"{format_gbp(ours, exact=True)} there",
            )
            return
