"""Recommendations stored from the demo portfolio, for tests of what happens to them next."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import select

from tests.conftest import DEMO_AS_OF
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import Portfolio
from tradeassist.demo import DEMO_PORTFOLIO
from tradeassist.policy import parse_policy, policy_to_dict
from tradeassist.services import advice
from tradeassist.services.strategy import governing_strategy

# The demo's strategy with every line free (the plain squared-drift objective): its monthly
# allocation and quarterly rebalance then trade listings quoted in pence, pounds and dollars
# alike, which the execution and approval tests need. The default penalty gives fewer lines.
EVERY_SCALE = {"line_penalty_base": "0"}

# A manifesto whose rule the demo's quarterly rebalance breaks (it sells SMGB, a SEMIS listing).
NEVER_SELL_SEMIS = (
    "# Careful\n\nCORE is the anchor; SEMIS and ENERGY are satellites.\n\n- never sell: SEMIS\n"
)


def store(
    engine: Engine,
    kind: str = "QUARTERLY_REBAL",
    contribution: str | None = None,
    *,
    policy_changes: dict[str, object] | None = None,
) -> int:
    """A recommendation for the demo as of its last close, stored without a run: by default the
    quarterly rebalance (SEMIS is over its band: it sells SMGB, and buys listings quoted in
    pounds and dollars); ``MONTHLY_ALLOC`` with a contribution buys only, within every
    manifesto rule (a PASS). ``policy_changes`` computes it with the governing policy so
    changed (e.g. ``EVERY_SCALE``)."""
    with unit_of_work(engine) as s:
        policy = None
        if policy_changes:
            folio = s.exec(select(Portfolio).where(Portfolio.name == DEMO_PORTFOLIO)).one()
            governing = governing_strategy(s, folio)
            policy = parse_policy({**policy_to_dict(governing.policy), **policy_changes})
        inputs = advice.prepare_inputs(
            s, portfolio=DEMO_PORTFOLIO, kind=kind, as_of=DEMO_AS_OF, contribution=contribution, policy=policy
        )
        row = advice.store_recommendation(
            s,
            run_id=None,
            portfolio_id=inputs.portfolio_id,
            recommendation=advice.recommend(inputs),
            listing_ids=inputs.listing_ids,
        )
        assert row is not None and row.recommendation_id is not None
        return row.recommendation_id
