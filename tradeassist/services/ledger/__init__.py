"""The book of record: post batches of entries, keep the snapshots, rebuild them, read them.

One code path appends every batch (manual postings, imports, executions of recommendations,
corrections, transfers): ``post_entries``. It validates the batch against the portfolio's
whole timeline, appends the batch and its entries, and updates ``holding_snapshots`` and
``cash_snapshots`` in the same transaction (the caller owns it; nothing here commits).

How a batch is validated:

1. Each entry on its own (``engine.book.entry_problem``): every bad entry is reported at once.
2. Entries whose ``external_ref`` the portfolio already holds are skipped when identical (so
   importing the same rows again adds nothing) and refused when they differ.
3. The timeline: if every new entry is at or after the latest entry of the portfolio and the
   latest corporate action that touches it, the snapshot is advanced from where it stands
   (the common case: no replay). Otherwise (a back-dated import, a correction) the portfolio's
   whole ledger is replayed with the new entries merged in by time, so an earlier entry can
   never make past cash negative or a past sale exceed the units then held.

Book order is (entry_time, ledger_entry_id); new entries are written in time order, so a
rebuild replays them exactly as they were validated. An entry and its exact reversal are left
out of every replay together, so a correction leaves the book of the ledger without the
entries it reverses. The computation is ``engine.book``.

The modules, in the order a posting goes through them:

* ``model``: the value types (``NewEntry``, ``BalanceCheck``, ``PostResult``, ...);
* ``reads``: listings, corporate actions, a portfolio's timeline and stored snapshots;
* ``problems``, ``validate``, ``timeline``: the stages that refuse a batch;
* ``insert``, ``snapshots``: writing the entries and the snapshots (and ``rebuild``);
* ``integrity``: the snapshots checked against the ledger before a posting builds on them,
  and ``verify_snapshots`` (``tradeassist ledger verify``);
* ``post``: ``post_entries``, the stages in sequence;
* ``corrections``, ``transfers``, ``manual``: the postings people ask for;
* ``overlaps``: the entries typed by hand or executed that an import probably records again;
* ``queries``: holdings, cash, entries and batches as people read them.
"""

from __future__ import annotations

from .corrections import reverse_entries
from .integrity import SnapshotCheck, verify_snapshots
from .manual import lookup_listing, manual_entry, parse_entry_time
from .model import BalanceCheck, ListingInfo, NewEntry, PostResult, RebuildResult
from .overlaps import Repeat, earlier_history_hint, probable_repeats, repeats_hint
from .post import paused_gc, post_entries
from .queries import cash, holdings, list_batches, list_entries
from .reads import instrument_listing, load_actions, load_listings, load_timeline, snapshot_book
from .snapshots import rebuild, replay_portfolio, replay_portfolios
from .transfers import transfer_between

_lookup = lookup_listing  # the name the CLI uses today

__all__ = [
    "BalanceCheck",
    "ListingInfo",
    "NewEntry",
    "PostResult",
    "RebuildResult",
    "Repeat",
    "SnapshotCheck",
    "cash",
    "earlier_history_hint",
    "holdings",
    "instrument_listing",
    "list_batches",
    "list_entries",
    "load_actions",
    "load_listings",
    "load_timeline",
    "lookup_listing",
    "manual_entry",
    "parse_entry_time",
    "paused_gc",
    "post_entries",
    "probable_repeats",
    "rebuild",
    "repeats_hint",
    "replay_portfolio",
    "replay_portfolios",
    "reverse_entries",
    "snapshot_book",
    "transfer_between",
    "verify_snapshots",
]
