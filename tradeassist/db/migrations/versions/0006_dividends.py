"""Dividends are first-class: ``DIVIDEND`` joins the ledger's entry types.

``ledger_entries.entry_type`` is a VARCHAR(20) with the CHECK constraint ``ck_entrytype``
listing the types; the constraint is widened to take DIVIDEND (8 characters: the column's
length stands). No row is rewritten: the ledger is append-only, and the INTEREST rows the
broker imports wrote for dividends until now (notes ``dividend: …``) keep their meaning
through ``engine.income.income_kind`` (docs/ledger.md, "Dividends").

SQLite cannot alter a CHECK constraint, so batch mode rebuilds the table (rows copied as
they are; dropping the old table fires no trigger) and the append-only triggers are
installed again; PostgreSQL drops and re-adds the constraint in place.

Revision ID: 0006_dividends
Revises: 0005_strategy_scope
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tradeassist.db import immutability

revision = "0006_dividends"
down_revision = "0005_strategy_scope"
branch_labels = None
depends_on = None

_BEFORE = ("BUY", "SELL", "CONTRIBUTION", "WITHDRAWAL", "FEE", "INTEREST", "TRANSFER")
_AFTER = (*_BEFORE, "DIVIDEND")


def _check(types: tuple[str, ...]) -> str:
    return "entry_type IN (" + ", ".join(f"'{t}'" for t in types) + ")"


def _replace_check(types: tuple[str, ...]) -> None:
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_constraint("ck_entrytype", type_="check")
        batch_op.create_check_constraint("ck_entrytype", _check(types))
    # Re-create the append-only triggers after any table change (SQLite batch mode rebuilds tables).
    immutability.install(op.get_bind())


def upgrade() -> None:
    _replace_check(_AFTER)


def downgrade() -> None:
    dividends = (
        op.get_bind()
        .execute(sa.text("SELECT COUNT(*) FROM ledger_entries WHERE entry_type = 'DIVIDEND'"))
        .scalar()
    )
    if dividends:
        # The ledger is append-only: its DIVIDEND rows cannot be rewritten to fit the old types.
        raise RuntimeError(
            f"cannot downgrade below 0006_dividends: the ledger holds {dividends} DIVIDEND entries"
        )
    _replace_check(_BEFORE)
