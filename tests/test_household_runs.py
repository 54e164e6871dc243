"""A household's task (issue #19, item 3): a GLOBAL task naming a strategy runs the kind's own
notebook with a real kernel and records one run and one recommendation per account, linked by
``household_run_id``, with the joint input snapshot hashed once; replaying any of the runs
re-solves the household; approval stays per account. Both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from tests.support import household_accounts as h
from tradeassist.core.enums import RunStatus, TaskScope
from tradeassist.core.errors import AccessDenied, ValidationError
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import Recommendation, RunInputSnapshot, TaskRun, TaskRunClaim
from tradeassist.runs import runner
from tradeassist.services import recommendations, run_history
from tradeassist.services import tasks as task_service

CONFIG = '{"contributions": {"AJ Bell ISA": "500", "AJ Bell SIPP": "300"}}'


def _add_task(
    engine: Engine, email: str = h.OWNER, config: str = CONFIG, kind: str = "MONTHLY_ALLOC"
) -> None:
    with unit_of_work(engine) as s:
        task_service.add_task(
            s,
            actor=h.user(s, email),
            name="household monthly",
            kind=kind,
            schedule_type="RRULE",
            schedule_expr="FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=8",
            config=config,
            strategy=h.LABEL,
        )


def _run(engine: Engine, db_url: str, tmp_path: Path) -> runner.RunOutcome:
    with unit_of_work(engine, readonly=True) as s:
        actor = h.user(s, h.OWNER)
    return runner.run_task(
        engine, actor=actor, name="household monthly", db_url=db_url, at=h.AS_OF, reports=tmp_path / "r"
    )


def test_a_household_task_records_one_linked_run_and_recommendation_per_account(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    h.build_credit_household(engine)
    _add_task(engine)  # Ann's own task: she may use both accounts, though not an administrator
    with unit_of_work(engine, readonly=True) as s:
        task = task_service.get_task(s, "household monthly")
        assert (task.scope, task.portfolio_id) == (TaskScope.GLOBAL, None)
        assert task.module_config == {
            "strategy": h.LABEL,
            "contributions": {h.ISA: "500", h.SIPP: "300"},
        }

    outcome = _run(engine, db_url, tmp_path)
    assert outcome.status is RunStatus.SUCCESS, outcome.error
    runs = [outcome, *outcome.members]
    assert [o.portfolio for o in runs] == [h.SIPP, h.ISA]
    first = outcome.run_id
    assert {o.household_run_id for o in runs} == {first}
    assert all(o.recommendation_id is not None for o in runs)

    with unit_of_work(engine, readonly=True) as s:
        rows = s.exec(
            select(TaskRun).where(TaskRun.household_run_id == first).order_by(col(TaskRun.run_id))
        ).all()
        assert [r.run_id for r in rows] == [o.run_id for o in runs]
        assert len({r.input_hash for r in rows}) == 1  # the joint snapshot, hashed once
        assert {r.status for r in rows} == {RunStatus.SUCCESS}
        assert len({r.portfolio_id for r in rows}) == 2
        snapshots = [s.get(RunInputSnapshot, r.run_id).snapshot_json for r in rows]
        assert snapshots[0] == snapshots[1] and snapshots[0]["inputs"]["household"] == 1
        assert snapshots[0]["inputs"]["parameters"]["contributions"] == {h.SIPP: "300", h.ISA: "500"}
        claims = s.exec(
            select(TaskRunClaim).where(col(TaskRunClaim.run_id).in_([r.run_id for r in rows]))
        ).all()
        assert sorted(c.member for c in claims) == [0, 1]
        assert len({(c.task_id, c.slot_at, c.attempt) for c in claims}) == 1
        recos = s.exec(
            select(Recommendation).where(col(Recommendation.run_id).in_([r.run_id for r in rows]))
        ).all()
        assert {(r.run_id, r.portfolio_id) for r in recos} == {(r.run_id, r.portfolio_id) for r in rows}
        isa_run = rows[1]
        assert isa_run.output_summary["household"] == {
            "strategy": h.LABEL,
            "run_id": first,
            "member": 1,
            "accounts": [h.SIPP, h.ISA],
            "headline": outcome.summary["household"]["headline"],
        }
        isa = run_history.stored_recommendation(s, isa_run.run_id)
        assert isa is not None and ("BUY", "CRED") in [(x["action"], x["ticker"]) for x in isa["lines"]]
        sipp = run_history.stored_recommendation(s, first)
        assert sipp is not None and {x["ticker"] for x in sipp["lines"]} == {"EQTY"}

        ann = h.user(s, h.OWNER)
        for row in rows:  # any of them replays the joint solve exactly
            replay = run_history.replay_run(s, actor=ann, run_id=row.run_id)
            assert replay.identical, replay.differences
        shown = run_history.show_run(s, actor=ann, run_id=isa_run.run_id)
        assert shown["household_run_id"] == first
        assert [m["portfolio"] for m in shown["household"]] == [h.SIPP, h.ISA]
        listed = run_history.list_runs(s, actor=ann)
        assert [r["run_id"] for r in listed] == [first, isa_run.run_id]

        pending = recommendations.pending_recommendations(s, actor=ann)
        assert {p["household_run_id"] for p in pending} == {first}
        assert {p["portfolio"] for p in pending} == {h.SIPP, h.ISA}

    # The report page groups the lines by account and shows the household's allocation.
    page = Path(outcome.html_path or "").read_text(encoding="utf-8")
    assert h.SIPP in page and h.ISA in page and "The household&#x27;s allocation" in page
    assert f"for the accounts of strategy {h.LABEL}" in page
    assert outcome.html_path == runs[1].html_path

    # Approval stays per account: the ISA's recommendation is approved alone.
    with unit_of_work(engine) as s:
        isa_reco = next(
            p
            for p in recommendations.pending_recommendations(s, actor=h.user(s, h.OWNER))
            if p["portfolio"] == h.ISA
        )
        approved = recommendations.approve_recommendation(
            s, actor=h.user(s, h.OWNER), recommendation_id=isa_reco["recommendation_id"]
        )
        assert approved.status.value == "REVIEWED"
    with unit_of_work(engine, readonly=True) as s:
        statuses = {
            p["portfolio"]: p["status"]
            for p in recommendations.pending_recommendations(s, actor=h.user(s, h.OWNER))
        }
        assert statuses == {h.SIPP: "DRAFT", h.ISA: "REVIEWED"}


def test_a_household_task_is_refused_to_whoever_may_not_use_every_account(engine: Engine) -> None:
    h.build_credit_household(engine)
    with pytest.raises(AccessDenied, match=f"may not add tasks on portfolio {h.SIPP!r}"):
        _add_task(engine, email=h.OTHER)
    with pytest.raises(ValidationError) as caught:
        _add_task(engine, config='{"contributions": {"AJ Bell LISA": "500"}}')
    assert "no such account in strategy" in str(caught.value)
    with pytest.raises(ValidationError, match="give at least one"):
        _add_task(engine, config="{}")
    with pytest.raises(ValidationError, match="MONTHLY_ALLOC or a QUARTERLY_REBAL"):
        _add_task(engine, kind="WEEKLY_REVIEW", config="{}")
    _add_task(engine, kind="QUARTERLY_REBAL", config="{}")  # a rebalance needs no contribution
    with unit_of_work(engine, readonly=True) as s:
        assert task_service.get_task(s, "household monthly").module_config == {"strategy": h.LABEL}


def test_a_household_with_nothing_to_do_records_successful_runs_without_recommendations(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    """A run that executed to the end is SUCCESS even when it recommends nothing: every account's
    run is recorded, none with a recommendation, and each replays."""
    h.add_people(engine)
    h.add_listings(engine)
    h.add_prices(engine)
    sipp = [
        h.contribution("9000", h.DAY.replace(day=3)),
        h.trade(h.DAY.replace(day=4), h.E.BUY, "EQTY", 89, "100"),
    ]
    isa = [
        h.contribution("1050", h.DAY.replace(day=3)),
        h.trade(h.DAY.replace(day=4), h.E.BUY, "CRED", 20, "50"),
    ]
    h.add_account(engine, h.SIPP, "SIPP", ("EQTY",), sipp)
    h.add_account(engine, h.ISA, "ISA", ("EQTY", "CRED"), isa)
    h.add_strategy(engine, (h.SIPP, h.ISA))
    _add_task(engine, kind="QUARTERLY_REBAL", config="{}")
    outcome = _run(engine, db_url, tmp_path)
    runs = [outcome, *outcome.members]
    assert [(o.portfolio, o.status, o.recommendation_id) for o in runs] == [
        (h.SIPP, RunStatus.SUCCESS, None),
        (h.ISA, RunStatus.SUCCESS, None),
    ]
    with unit_of_work(engine, readonly=True) as s:
        assert s.exec(select(Recommendation)).all() == []
        for o in runs:
            row = s.get(TaskRun, o.run_id)
            assert row is not None and row.household_run_id == outcome.run_id
            assert row.output_summary["lines"] == 0
            replay = run_history.replay_run(s, actor=h.user(s, h.OWNER), run_id=o.run_id)
            assert replay.identical, replay.differences
