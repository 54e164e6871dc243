"""Strategy versions: archived by content hash, scoped to the portfolios they govern, at most
one approved per portfolio, the manifesto's rules merged into the policy, every transition
audited."""

from __future__ import annotations

import json
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from tests.support.cli import run_cli
from tradeassist.core.enums import StrategyStatus
from tradeassist.core.errors import AlreadyExists, NotFound, ValidationError
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import (
    AuditEvent,
    ManifestoArchive,
    PolicyArchive,
    Portfolio,
    Sleeve,
    SleeveTarget,
    User,
)
from tradeassist.policy import parse_policy, policy_sha256
from tradeassist.services import portfolios, registry, strategy

POLICY = """{"sleeve_targets": {"CORE": "0.70", "SEMIS": "0.15", "ENERGY": "0.15"},
 "drift_bands": {"absolute": "0.05", "relative": "0.25"},
 "min_trade_base": "100", "fee_per_trade_base": "1.50", "cash_buffer_base": "50",
 "whole_units": true,
 "allow_sells": {"MONTHLY_ALLOC": false, "QUARTERLY_REBAL": true}}"""
MANIFESTO = "# Manifesto\n\nHold CORE, SEMIS and ENERGY.\n"


@pytest.fixture
def sipp(engine: Engine, admin: User) -> int:
    """A portfolio the admin owns: what a version governs by default."""
    with unit_of_work(engine) as s:
        p = portfolios.add_portfolio(
            s, actor=s.get(User, admin.user_id), name="SIPP", broker="AJBell", tax_treatment="SIPP"
        )
        return p.portfolio_id


def _add(engine: Engine, admin: User, label: str, policy: str = POLICY, manifesto: str = MANIFESTO) -> None:
    with unit_of_work(engine) as s:
        strategy.add_strategy(
            s, actor=s.get(User, admin.user_id), label=label, policy_text=policy, manifesto=manifesto
        )


def test_same_policy_and_manifesto_is_refused_as_a_second_version(
    engine: Engine, admin: User, sipp: int
) -> None:
    _add(engine, admin, "1.0.0")
    reordered = json.dumps(dict(reversed(list(json.loads(POLICY).items()))), indent=4)
    with pytest.raises(AlreadyExists, match=r"version '1\.0\.0' already"):
        _add(engine, admin, "1.0.1", policy=reordered, manifesto=MANIFESTO.replace("\n", "\r\n"))
    _add(engine, admin, "1.1.0", manifesto=MANIFESTO + "\nAlso rebalance quarterly.\n")
    with unit_of_work(engine, readonly=True) as s:
        assert s.exec(select(func.count()).select_from(PolicyArchive)).one() == 1
        assert s.exec(select(func.count()).select_from(ManifestoArchive)).one() == 2
        assert {x.sleeve_code for x in s.exec(select(Sleeve)).all()} == {"CORE", "SEMIS", "ENERGY"}
        targets = s.exec(select(SleeveTarget)).all()
        assert sum((t.target_weight for t in targets), Decimal(0)) == 2  # two versions, each sums to 1


def test_lifecycle_one_approved_at_a_time_and_audited(engine: Engine, admin: User, sipp: int) -> None:
    _add(engine, admin, "1.0.0")
    _add(engine, admin, "2.0.0", manifesto=MANIFESTO + "v2\n")
    with unit_of_work(engine) as s:
        strategy.approve_strategy(s, actor=s.get(User, admin.user_id), label="1.0.0")
    with unit_of_work(engine) as s:
        done = strategy.approve(s, actor=s.get(User, admin.user_id), label="2.0.0")
    assert (done.retired, done.still_governing) == (("1.0.0",), {})
    with unit_of_work(engine, readonly=True) as s:
        rows = {r["version_label"]: r["status"] for r in strategy.strategy_rows(s)}
        assert rows == {"1.0.0": "RETIRED", "2.0.0": "APPROVED"}
        governing = strategy.governing_strategy(s, sipp)
        assert governing.version.version_label == "2.0.0"
        assert governing.policy.sleeve_targets["CORE"] == Decimal("0.70")
        actions = s.exec(select(AuditEvent.action).order_by(AuditEvent.audit_event_id)).all()
    assert actions[-3:] == ["STRATEGY_APPROVED", "STRATEGY_APPROVED", "STRATEGY_RETIRED"]
    with pytest.raises(ValidationError, match="only a DRAFT"), unit_of_work(engine) as s:
        strategy.approve_strategy(s, actor=s.get(User, admin.user_id), label="1.0.0")


def test_a_portfolio_without_an_approved_strategy_is_a_clear_error(engine: Engine, sipp: int) -> None:
    with (
        pytest.raises(NotFound, match=r"no approved strategy governs portfolio 'SIPP': .*strategy add"),
        unit_of_work(engine, readonly=True) as s,
    ):
        strategy.governing_strategy(s, sipp)


def test_a_version_needs_a_portfolio_to_govern(engine: Engine, admin: User) -> None:
    with pytest.raises(ValidationError, match=r"no portfolio to govern: admin@example\.com owns none"):
        _add(engine, admin, "1.0.0")
    with unit_of_work(engine, readonly=True) as s:
        assert strategy.strategy_rows(s) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sleeve_targets": {"CORE": "0.70", "SEMIS": "0.25"}}, "sleeve_targets"),
        ({"min_trade_base": "-1"}, "min_trade_base"),
        ({"surprise": 1}, "surprise: unknown key"),
    ],
)
def test_an_invalid_policy_names_the_key_and_writes_nothing(
    engine: Engine, admin: User, sipp: int, change, message
) -> None:
    bad = json.dumps(json.loads(POLICY) | change)
    with pytest.raises(ValidationError, match=message):
        _add(engine, admin, "bad", policy=bad)
    with unit_of_work(engine, readonly=True) as s:
        assert s.exec(select(func.count()).select_from(PolicyArchive)).one() == 0
        assert strategy.strategy_rows(s) == []


@pytest.mark.parametrize(
    ("rules", "policy_change", "message"),
    [
        (
            "- max single trade: 50\n",
            {},
            r"manifesto line 5 \(max single trade: 50\): below .*min_trade_base",
        ),
        (
            "- max single trade: 5000\n",
            {"max_trade_base": "4000"},
            r"manifesto line 5 \(max single trade: 5000\): the policy's max_trade_base is 4000",
        ),
        ("- never sell: 3IN\n", {}, r"manifesto line 5 \(never sell: 3IN\): '3IN'"),
        ("- avoid: \n", {}, r"manifesto line 5 \(avoid: \): expected sleeve codes"),
    ],
)
def test_a_manifesto_rule_contradicting_the_policy_is_refused_with_its_line(
    engine: Engine, admin: User, sipp: int, rules: str, policy_change: dict, message: str
) -> None:
    policy = json.dumps(json.loads(POLICY) | policy_change)
    with pytest.raises(ValidationError, match=message):
        _add(engine, admin, "1.0.0", policy=policy, manifesto=MANIFESTO + "\n" + rules)
    with unit_of_work(engine, readonly=True) as s:
        assert s.exec(select(func.count()).select_from(PolicyArchive)).one() == 0


def test_the_manifesto_rules_join_the_policy_once_and_the_archive_keeps_the_file(
    engine: Engine, admin: User, sipp: int
) -> None:
    manifesto = MANIFESTO + "\n- never sell: CORE, VWRP:XLON\n- avoid: TSLA\n- max single trade: 5000\n"
    policy = json.dumps(json.loads(POLICY) | {"never_buy": ["ARKK:XNAS"]})
    _add(engine, admin, "1.0.0", policy=policy, manifesto=manifesto)
    with unit_of_work(engine) as s:
        strategy.approve_strategy(s, actor=s.get(User, admin.user_id), label="1.0.0")
    with unit_of_work(engine, readonly=True) as s:
        governing = strategy.governing_strategy(s, sipp)
        assert governing.version.policy_sha256 == policy_sha256(parse_policy(policy))  # as written
        assert governing.policy.hard_rules() == {
            "never_sell": ["CORE", "VWRP:XLON"],
            "never_buy": ["ARKK:XNAS", "TSLA"],
            "max_trade_base": "5000",
            "max_turnover": "0.25",
            "untargeted": "hold",
            "unpriced": "block",
        }
        [row] = strategy.strategy_rows(s)
        assert row["hard_rules"] == governing.policy.hard_rules()
        assert row["portfolios"] == ["SIPP"] and row["label"] == row["version_label"] == "1.0.0"


def test_constituents_map_listings_to_known_sleeves_and_move(engine: Engine, admin: User, sipp: int) -> None:
    _add(engine, admin, "1.0.0")
    with unit_of_work(engine) as s:
        actor = s.get(User, admin.user_id)
        registry.add_instrument(s, actor=actor, isin="IE00BK5BQT80", instrument_type="ETF")
        registry.add_listing(
            s,
            actor=actor,
            isin="IE00BK5BQT80",
            ticker="VWRP",
            exchange="XLON",
            currency="GBP",
            quote_scale="GBP",
        )
        strategy.add_constituent(
            s,
            actor=actor,
            portfolio="SIPP",
            ticker="VWRP",
            exchange="XLON",
            sleeve="core",
            include_in_calcs=False,
        )
    with pytest.raises(NotFound, match="unknown sleeve 'BONDS'"), unit_of_work(engine) as s:
        strategy.add_constituent(
            s,
            actor=s.get(User, admin.user_id),
            portfolio="SIPP",
            ticker="VWRP",
            exchange="XLON",
            sleeve="BONDS",
        )
    with pytest.raises(NotFound, match="unknown sleeve 'BONDS'"), unit_of_work(engine) as s:
        strategy.move_constituent(
            s,
            actor=s.get(User, admin.user_id),
            portfolio="SIPP",
            ticker="VWRP",
            exchange="XLON",
            sleeve="BONDS",
        )
    with unit_of_work(engine) as s:
        strategy.move_constituent(
            s,
            actor=s.get(User, admin.user_id),
            portfolio="SIPP",
            ticker="vwrp",
            exchange="XLON",
            sleeve="semis",
        )
    with pytest.raises(ValidationError, match="in sleeve SEMIS of 'SIPP' already"), unit_of_work(engine) as s:
        strategy.move_constituent(
            s,
            actor=s.get(User, admin.user_id),
            portfolio="SIPP",
            ticker="VWRP",
            exchange="XLON",
            sleeve="SEMIS",
        )
    with unit_of_work(engine, readonly=True) as s:
        from tradeassist.services.access import portfolio_for

        rows = strategy.constituent_rows(s, portfolio_for(s, s.get(User, admin.user_id), "SIPP", "read"))
        moved = s.exec(select(AuditEvent).where(AuditEvent.action == "CONSTITUENT_MOVED")).one()
    assert rows == [
        {
            "ticker": "VWRP",
            "exchange": "XLON",
            "sleeve": "SEMIS",
            "include_in_calcs": False,
            "is_monitored": True,
        }
    ]
    assert moved.details["from"] == "CORE" and moved.details["to"] == "SEMIS"
    assert moved.entity_type == "portfolio" and moved.entity_id == str(sipp)


def test_moving_a_listing_that_is_not_a_constituent_is_refused(
    engine: Engine, admin: User, sipp: int
) -> None:
    _add(engine, admin, "1.0.0")
    with unit_of_work(engine) as s:
        actor = s.get(User, admin.user_id)
        registry.add_instrument(s, actor=actor, isin="IE00BK5BQT80", instrument_type="ETF")
        registry.add_listing(
            s,
            actor=actor,
            isin="IE00BK5BQT80",
            ticker="VWRP",
            exchange="XLON",
            currency="GBP",
            quote_scale="GBP",
        )
    with (
        pytest.raises(NotFound, match="VWRP on XLON is not a constituent of 'SIPP'"),
        unit_of_work(engine) as s,
    ):
        strategy.move_constituent(
            s,
            actor=s.get(User, admin.user_id),
            portfolio="SIPP",
            ticker="VWRP",
            exchange="XLON",
            sleeve="CORE",
        )
    with unit_of_work(engine, readonly=True) as s:
        assert s.exec(select(func.count()).select_from(Portfolio)).one() == 1


@pytest.mark.slow
def test_strategy_cli(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env["TRADEASSIST_DB_URL"] = f"sqlite:///{tmp_path / 's.db'}"
    (tmp_path / "policy.json").write_text(POLICY)
    (tmp_path / "manifesto.md").write_text(MANIFESTO)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(args, env)

    assert run("init").returncode == 0
    assert run("portfolio", "add", "SIPP", "--broker", "AJBell", "--tax-treatment", "SIPP").returncode == 0
    added = run(
        "strategy",
        "add",
        "--label",
        "1.0.0",
        "--policy",
        str(tmp_path / "policy.json"),
        "--manifesto",
        str(tmp_path / "manifesto.md"),
    )
    assert added.returncode == 0, added.stderr
    assert run("strategy", "approve", "1.0.0").returncode == 0
    shown = json.loads(run("strategy", "show", "--json").stdout)
    assert shown[0]["status"] == StrategyStatus.APPROVED.value
    assert shown[0]["sleeve_targets"] == {"CORE": "0.70", "ENERGY": "0.15", "SEMIS": "0.15"}
    assert shown[0]["portfolios"] == ["SIPP"]
    (tmp_path / "bad.json").write_text(POLICY.replace('"0.70"', '"0.60"'))
    bad = run(
        "strategy",
        "add",
        "--label",
        "x",
        "--policy",
        str(tmp_path / "bad.json"),
        "--manifesto",
        str(tmp_path / "manifesto.md"),
    )
    assert bad.returncode == 1 and "sleeve_targets" in bad.stderr and "bad.json" in bad.stderr
