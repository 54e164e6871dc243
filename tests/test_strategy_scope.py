"""A strategy version governs the portfolios of its scope and nothing else: approving one never
changes the strategy of a portfolio outside it, whoever approves it and in whatever order."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import select

from tests.conftest import DEMO_END
from tradeassist.core.enums import RunStatus
from tradeassist.core.errors import AccessDenied, NotFound, ValidationError
from tradeassist.db import migrate
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.db.models import AuditEvent, Portfolio, StrategyVersion, TaskRun, User
from tradeassist.services import identity, portfolios, strategy

THREE_SLEEVES = {
    "sleeve_targets": {"CORE": "0.70", "SEMIS": "0.15", "ENERGY": "0.15"},
    "drift_bands": {"absolute": "0.05", "relative": "0.25"},
    "min_trade_base": "100",
    "fee_per_trade_base": "1.50",
    "cash_buffer_base": "50",
    "allow_sells": {"MONTHLY_ALLOC": False, "QUARTERLY_REBAL": True},
}
TWO_SLEEVES = THREE_SLEEVES | {"sleeve_targets": {"CORE": "0.50", "SEMIS": "0.50"}}


def manifesto(label: str) -> str:
    """A manifesto the built-in reviewer passes (it names every sleeve), one per label."""
    return f"# {label}\n\nCORE is the anchor; SEMIS and ENERGY are satellites.\n"


def user(engine: Engine, admin: User, email: str) -> User:
    with unit_of_work(engine) as s:
        return identity.add_user(s, actor=s.get(User, admin.user_id), email=email, password="pass-word-123")


def folio(engine: Engine, owner: User, name: str) -> int:
    with unit_of_work(engine) as s:
        p = portfolios.add_portfolio(
            s, actor=s.get(User, owner.user_id), name=name, broker="AJBell", tax_treatment="ISA"
        )
        return p.portfolio_id


def share(engine: Engine, owner: User, name: str, email: str) -> None:
    with unit_of_work(engine) as s:
        portfolios.share_portfolio(s, actor=s.get(User, owner.user_id), name=name, email=email)


def add(
    engine: Engine, actor: User, label: str, scope: list[str] | None = None, policy: dict | None = None
) -> list[str]:
    """Add a version; returns the names of the portfolios it governs."""
    with unit_of_work(engine) as s:
        version = strategy.add_strategy(
            s,
            actor=s.get(User, actor.user_id),
            label=label,
            policy_text=json.dumps(policy or THREE_SLEEVES),
            manifesto=manifesto(label),
            portfolios=scope,
        )
        return [p.name for p in strategy.scope_of(s, version)]


def approve(engine: Engine, actor: User, label: str) -> strategy.Approval:
    with unit_of_work(engine) as s:
        return strategy.approve(s, actor=s.get(User, actor.user_id), label=label)


def governing(engine: Engine, name: str) -> str | None:
    with unit_of_work(engine, readonly=True) as s:
        p = s.exec(select(Portfolio).where(Portfolio.name == name)).one()
        try:
            return strategy.governing_strategy(s, p.portfolio_id).version.version_label
        except NotFound:
            return None


def statuses(engine: Engine) -> dict[str, str]:
    with unit_of_work(engine, readonly=True) as s:
        return {v.version_label: v.status.value for v in s.exec(select(StrategyVersion)).all()}


def test_approving_for_one_portfolio_leaves_the_other_on_its_strategy(engine: Engine, admin: User) -> None:
    """The observed failure: after the demo, approving a two-sleeve policy re-targeted the
    demo portfolio too (its quarterly run then sold four lines)."""
    folio(engine, admin, "SIPP")
    folio(engine, admin, "ISA")
    assert add(engine, admin, "A") == ["SIPP", "ISA"]
    approve(engine, admin, "A")
    assert add(engine, admin, "B", ["SIPP"], TWO_SLEEVES) == ["SIPP"]
    done = approve(engine, admin, "B")

    assert (governing(engine, "SIPP"), governing(engine, "ISA")) == ("B", "A")
    assert done.retired == () and done.still_governing == {"A": ("ISA",)}
    with unit_of_work(engine, readonly=True) as s:
        isa = s.exec(select(Portfolio).where(Portfolio.name == "ISA")).one()
        assert set(strategy.governing_strategy(s, isa.portfolio_id).policy.sleeve_targets) == {
            "CORE",
            "SEMIS",
            "ENERGY",
        }
        rows = {r["label"]: r for r in strategy.strategy_rows(s)}
    assert (rows["A"]["status"], rows["A"]["portfolios"], rows["A"]["governs"]) == (
        "APPROVED",
        ["SIPP", "ISA"],
        ["ISA"],
    )
    assert (rows["B"]["portfolios"], rows["B"]["governs"]) == (["SIPP"], ["SIPP"])

    # A version is retired once a later approval has taken every portfolio it governed.
    add(engine, admin, "C", ["ISA"])
    done = approve(engine, admin, "C")
    assert done.retired == ("A",) and done.still_governing == {}
    assert statuses(engine) == {"A": "RETIRED", "B": "APPROVED", "C": "APPROVED"}
    assert (governing(engine, "SIPP"), governing(engine, "ISA")) == ("B", "C")


def test_the_default_scope_is_the_portfolios_the_author_owns(engine: Engine, admin: User) -> None:
    ola = user(engine, admin, "ola@example.com")
    folio(engine, admin, "Admin SIPP")
    folio(engine, ola, "Ola ISA")
    folio(engine, ola, "Ola GIA")
    share(engine, admin, "Admin SIPP", "ola@example.com")  # a member, not the owner
    assert add(engine, ola, "ola-1") == ["Ola ISA", "Ola GIA"]
    assert add(engine, ola, "ola-2", ["Admin SIPP", "Ola GIA", "Admin SIPP"]) == ["Admin SIPP", "Ola GIA"]
    with unit_of_work(engine, readonly=True) as s:
        added = s.exec(select(AuditEvent).where(AuditEvent.action == "STRATEGY_ADDED")).all()
    assert [e.details["portfolios"] for e in added] == [["Ola ISA", "Ola GIA"], ["Admin SIPP", "Ola GIA"]]


def test_a_version_needs_access_to_each_of_its_portfolios(engine: Engine, admin: User) -> None:
    ola, bob = user(engine, admin, "ola@example.com"), user(engine, admin, "bob@example.com")
    folio(engine, ola, "Ola ISA")
    folio(engine, bob, "Bob ISA")
    share(engine, ola, "Ola ISA", "bob@example.com")
    with pytest.raises(AccessDenied, match=r"ola@example\.com may not .* 'Bob ISA'"):
        add(engine, ola, "ola-1", ["Ola ISA", "Bob ISA"])
    # Bob may use both portfolios; Ola may not approve what governs Bob's.
    assert add(engine, bob, "bob-1", ["Ola ISA", "Bob ISA"]) == ["Ola ISA", "Bob ISA"]
    with pytest.raises(
        AccessDenied, match=r"ola@example\.com may not approve a strategy on portfolio 'Bob ISA'"
    ):
        approve(engine, ola, "bob-1")
    with (
        pytest.raises(
            AccessDenied, match=r"ola@example\.com may not retire a strategy on portfolio 'Bob ISA'"
        ),
        unit_of_work(engine) as s,
    ):
        strategy.retire(s, actor=s.get(User, ola.user_id), label="bob-1")
    assert statuses(engine) == {"bob-1": "DRAFT"}
    with unit_of_work(engine, readonly=True) as s:
        denials = s.exec(select(AuditEvent).where(AuditEvent.action == "ACCESS_DENIED")).all()
    assert [(e.actor_user_id, e.details["operation"]) for e in denials] == [
        (ola.user_id, "set a strategy"),
        (ola.user_id, "approve a strategy"),
        (ola.user_id, "retire a strategy"),
    ]
    approve(engine, bob, "bob-1")
    assert (governing(engine, "Ola ISA"), governing(engine, "Bob ISA")) == ("bob-1", "bob-1")


def test_retiring_leaves_its_portfolios_without_a_strategy_and_no_older_one_returns(
    engine: Engine, admin: User
) -> None:
    folio(engine, admin, "SIPP")
    folio(engine, admin, "ISA")
    add(engine, admin, "A")
    approve(engine, admin, "A")
    add(engine, admin, "B", ["SIPP"], TWO_SLEEVES)
    approve(engine, admin, "B")
    with unit_of_work(engine) as s:
        done = strategy.retire(s, actor=s.get(User, admin.user_id), label="B")
    assert done.left_without_strategy == ("SIPP",)
    assert (governing(engine, "SIPP"), governing(engine, "ISA")) == (None, "A")  # A does not come back
    with (
        pytest.raises(
            NotFound, match=r"no approved strategy governs portfolio 'SIPP': add one with `tradeassist"
        ),
        unit_of_work(engine, readonly=True) as s,
    ):
        strategy.governing_strategy(s, s.exec(select(Portfolio).where(Portfolio.name == "SIPP")).one())
    with pytest.raises(ValidationError, match="only a DRAFT can be approved"):
        approve(engine, admin, "A")


def test_approvals_racing_for_one_portfolio_leave_it_one_strategy(engine: Engine, admin: User) -> None:
    folio(engine, admin, "SIPP")
    labels = ["race-1", "race-2"]
    for label in labels:
        add(engine, admin, label)
    barrier, errors = threading.Barrier(len(labels)), []

    def go(label: str) -> None:
        try:
            barrier.wait()
            approve(engine, admin, label)
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(label,)) for label in labels]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    final = statuses(engine)
    assert sorted(final.values()) == ["APPROVED", "RETIRED"]
    assert governing(engine, "SIPP") == next(k for k, v in final.items() if v == "APPROVED")


PORTFOLIOS = ("P0", "P1", "P2", "P3")


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(
            st.sets(st.sampled_from(PORTFOLIOS), min_size=1),
            st.sampled_from(["approve", "approve", "approve", "retire-one"]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_approving_never_changes_a_portfolio_outside_its_scope(
    sqlite_template: Path, steps: list[tuple[set[str], str]]
) -> None:
    """Over random scopes, approvals and retirements: each approval leaves every portfolio
    outside its scope on the version it had, gives each of its own portfolios to itself, and
    no portfolio is ever governed by two versions."""
    folder = Path(tempfile.mkdtemp(prefix="scope-"))
    try:
        shutil.copy(sqlite_template, folder / "t.db")
        engine = create_db_engine(f"sqlite:///{folder / 't.db'}")
        with unit_of_work(engine, readonly=True) as s:
            admin = identity.bootstrap_admin(s)
        for name in PORTFOLIOS:
            folio(engine, admin, name)
        for number, (scope, action) in enumerate(steps):
            if action == "retire-one":
                approved = [k for k, v in statuses(engine).items() if v == "APPROVED"]
                if approved:
                    with unit_of_work(engine) as s:
                        strategy.retire(s, actor=s.get(User, admin.user_id), label=approved[0])
                continue
            label = f"v{number}"
            add(engine, admin, label, sorted(scope))
            before = {name: governing(engine, name) for name in PORTFOLIOS}
            approve(engine, admin, label)
            after = {name: governing(engine, name) for name in PORTFOLIOS}
            for name in PORTFOLIOS:
                assert after[name] == (label if name in scope else before[name]), (name, steps)
            # Every approved version governs a portfolio; every governed portfolio has one.
            with unit_of_work(engine, readonly=True) as s:
                for row in strategy.strategy_rows(s):
                    assert (row["status"] == "APPROVED") == bool(row["governs"]), row
                    for name in row["governs"]:
                        assert after[name] == row["label"]
        engine.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_migration_gives_every_existing_version_every_portfolio(tmp_path: Path) -> None:
    """A database from before scopes: its one approved version governs every portfolio after
    the upgrade, and recommendations keep working."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(engine, "0004_runs")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (user_id, email, password_hash, is_enabled, is_bootstrap_admin, "
                "created_at) VALUES (1, 'a@example.com', 'x', 1, 1, '2026-01-01 00:00:00')"
            )
        )
        for pid, name in ((1, "SIPP"), (2, "ISA")):
            conn.execute(
                text(
                    "INSERT INTO portfolios (portfolio_id, owner_user_id, name, broker, tax_treatment, "
                    "base_currency, created_at) VALUES (:id, 1, :name, 'AJBell', 'SIPP', 'GBP', '2026-01-01')"
                ),
                {"id": pid, "name": name},
            )
        policy = json.dumps(THREE_SLEEVES | {"whole_units": True})
        conn.execute(
            text("INSERT INTO policy_archives VALUES ('p', :policy, '2026-01-01')"), {"policy": policy}
        )
        conn.execute(
            text("INSERT INTO manifesto_archives VALUES ('m1', '# one CORE SEMIS ENERGY', '2026-01-01')")
        )
        conn.execute(
            text("INSERT INTO manifesto_archives VALUES ('m2', '# two CORE SEMIS ENERGY', '2026-01-01')")
        )
        conn.execute(
            text(
                "INSERT INTO strategy_versions (strategy_version_id, version_label, status, policy_sha256, "
                "manifesto_sha256, created_by_user_id, created_at, approved_at) VALUES "
                "(1, 'old', 'RETIRED', 'p', 'm1', 1, '2026-01-01', '2026-01-02'), "
                "(2, 'current', 'APPROVED', 'p', 'm2', 1, '2026-01-03', '2026-01-04')"
            )
        )
    migrate.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT strategy_version_id, portfolio_id FROM strategy_version_portfolios ORDER BY 1, 2")
        ).all()
    assert [tuple(r) for r in rows] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert (governing(engine, "SIPP"), governing(engine, "ISA")) == ("current", "current")
    engine.dispose()


def test_a_task_run_records_the_version_governing_its_portfolio(
    demo_engine: Engine, demo_url: str, tmp_path: Path
) -> None:
    """Another portfolio's approval does not reach the demo's run; the run row names the
    version that governed the demo portfolio."""
    from tradeassist.core.timeutil import end_of_london_day
    from tradeassist.demo import DEMO_PORTFOLIO, DEMO_STRATEGY
    from tradeassist.runs import runner

    with unit_of_work(demo_engine, readonly=True) as s:
        admin = identity.bootstrap_admin(s)
    folio(demo_engine, admin, "Other ISA")
    add(demo_engine, admin, "two-sleeves", ["Other ISA"], TWO_SLEEVES)
    approve(demo_engine, admin, "two-sleeves")
    outcome = runner.run_task(
        demo_engine,
        actor=admin,
        name="demo quarterly rebalance",
        db_url=demo_url,
        at=end_of_london_day(DEMO_END),
        reports=tmp_path / "r",
    )
    assert outcome.status is RunStatus.SUCCESS, outcome.error
    with unit_of_work(demo_engine, readonly=True) as s:
        run = s.get(TaskRun, outcome.run_id)
        demo = strategy.governing_strategy(
            s, s.exec(select(Portfolio).where(Portfolio.name == DEMO_PORTFOLIO)).one()
        ).version
        assert demo.version_label == DEMO_STRATEGY
        assert run.strategy_version_id == demo.strategy_version_id
