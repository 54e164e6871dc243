"""``strategy`` and ``constituent`` as a user meets them: scopes named with --portfolio,
approvals that say what they retired and what other versions still govern, JSON for
scripts, one-line errors (exit 3 for an access denial). Run in-process (``tradeassist.cli.main``)
against a real database on each backend."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from tests.conftest import ADMIN_EMAIL
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import AuditEvent, User
from tradeassist.services import identity, portfolios, registry

POLICY = {
    "sleeve_targets": {"CORE": "0.70", "SEMIS": "0.15", "ENERGY": "0.15"},
    "drift_bands": {"absolute": "0.05", "relative": "0.25"},
    "min_trade_base": "100",
    "fee_per_trade_base": "1.50",
    "cash_buffer_base": "50",
    "allow_sells": {"MONTHLY_ALLOC": False, "QUARTERLY_REBAL": True},
}
TWO_SLEEVES = POLICY | {"sleeve_targets": {"CORE": "0.50", "SEMIS": "0.50"}}
MANIFESTO = "# Plan\n\nCORE is the anchor; SEMIS and ENERGY are satellites.\n\n- avoid: TSLA\n"
ROW_KEYS = {
    "strategy_version_id",
    "label",
    "version_label",
    "status",
    "portfolios",
    "governs",
    "policy_sha256",
    "manifesto_sha256",
    "created_at",
    "approved_at",
    "sleeve_targets",
    "hard_rules",
}


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``tradeassist --db URL ARGS...`` in this process: (exit code, stdout, stderr)."""
    from tradeassist.cli import main

    def run(*args: str, as_user: str = ADMIN_EMAIL) -> tuple[int, str, str]:
        capsys.readouterr()
        argv, sys.argv = sys.argv, ["tradeassist", "--db", db_url, "--as", as_user, *args]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.argv = argv
        out, err = capsys.readouterr()
        assert "Traceback" not in err, err
        return code, out, err

    return run


@pytest.fixture
def files(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a policy and a manifesto for a version: (--policy path, --manifesto path)."""

    def write(label: str, policy: dict = POLICY, manifesto: str = MANIFESTO) -> list[str]:
        (tmp_path / f"{label}.json").write_text(json.dumps(policy))
        (tmp_path / f"{label}.md").write_text(manifesto.replace("# Plan", f"# {label}"))
        return ["--policy", str(tmp_path / f"{label}.json"), "--manifesto", str(tmp_path / f"{label}.md")]

    return write


@pytest.fixture
def world(engine: Engine, admin: User) -> None:
    """The admin owns SIPP and ISA; Ola owns Ola ISA and is a member of nothing else; VWRP is a
    CORE constituent of SIPP."""
    with unit_of_work(engine) as s:
        actor = s.get(User, admin.user_id)
        ola = identity.add_user(s, actor=actor, email="ola@example.com", password="ola-pass-123")
        for name in ("SIPP", "ISA"):
            portfolios.add_portfolio(s, actor=actor, name=name, broker="AJBell", tax_treatment="SIPP")
        portfolios.add_portfolio(s, actor=ola, name="Ola ISA", broker="AJBell", tax_treatment="ISA")
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


def test_scope_approval_and_show(cli, files, world) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli("strategy", "add", "--label", "A", *files("A"))
    assert code == 0, err
    assert out.strip().endswith("for 'SIPP', 'ISA'")  # every portfolio the admin owns
    code, out, err = cli("strategy", "approve", "A")
    assert code == 0, err
    assert out.splitlines() == [
        "manifesto review: PASS (builtin-rules)",
        "strategy A governs 'SIPP', 'ISA'",
        "strategy approved: A",
    ]

    code, out, err = cli("strategy", "add", "--label", "B", *files("B", TWO_SLEEVES), "--portfolio", "SIPP")
    assert code == 0, err
    code, out, err = cli("strategy", "approve", "B")
    assert code == 0, err
    assert out.splitlines()[1:] == [
        "strategy A still governs 'ISA'",
        "strategy B governs 'SIPP'",
        "strategy approved: B",
    ]

    rows = json.loads(cli("strategy", "show", "--json")[1])
    assert all(set(row) == ROW_KEYS for row in rows)
    shown = {row["label"]: row for row in rows}
    assert shown["A"]["status"] == shown["B"]["status"] == "APPROVED"
    assert (shown["A"]["portfolios"], shown["A"]["governs"]) == (["SIPP", "ISA"], ["ISA"])
    assert (shown["B"]["portfolios"], shown["B"]["governs"]) == (["SIPP"], ["SIPP"])
    assert shown["B"]["sleeve_targets"] == {"CORE": "0.50", "SEMIS": "0.50"}
    assert shown["A"]["hard_rules"] == {
        "never_sell": [],
        "never_buy": ["TSLA"],  # the manifesto's `avoid:` line
        "max_trade_base": None,
        "max_turnover": "0.25",
        "untargeted": "hold",
        "unpriced": "block",
    }
    assert [r["label"] for r in json.loads(cli("strategy", "show", "--portfolio", "ISA", "--json")[1])] == [
        "A"
    ]

    # Repeated --portfolio: exactly those; approving takes ISA from A, which governs nothing now.
    code, out, err = cli(
        "strategy", "add", "--label", "C", *files("C"), "--portfolio", "ISA", "--portfolio", "SIPP"
    )
    assert code == 0 and out.strip().endswith("for 'SIPP', 'ISA'"), err
    code, out, err = cli("strategy", "approve", "C")
    assert code == 0, err
    assert "strategy retired: A (it governs no portfolio now)" in out.splitlines()
    assert "strategy retired: B (it governs no portfolio now)" in out.splitlines()
    assert {r["label"]: r["status"] for r in json.loads(cli("strategy", "show", "--json")[1])} == {
        "A": "RETIRED",
        "B": "RETIRED",
        "C": "APPROVED",
    }

    code, out, err = cli("strategy", "retire", "C")
    assert code == 0 and out.strip() == "strategy retired: C"
    assert err.startswith("warning: no approved strategy governs 'SIPP', 'ISA' now")
    code, out, err = cli("recommend", "--portfolio", "ISA", "--kind", "MONTHLY_ALLOC")
    assert code == 1 and err.startswith("error: no approved strategy governs portfolio 'ISA': add one with")


def test_a_non_member_is_refused_with_exit_3_and_audited(cli, files, world, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli(
        "strategy", "add", "--label", "O", *files("O"), "--portfolio", "SIPP", as_user="ola@example.com"
    )
    assert code == 3 and err.strip() == "error: ola@example.com may not set a strategy on portfolio 'SIPP'"
    code, out, err = cli("strategy", "add", "--label", "S", *files("S"), "--portfolio", "SIPP")
    assert code == 0, err
    code, out, err = cli("strategy", "approve", "S", as_user="ola@example.com")
    assert (
        code == 3 and err.strip() == "error: ola@example.com may not approve a strategy on portfolio 'SIPP'"
    )
    assert out == ""  # refused before the manifesto is reviewed
    with unit_of_work(engine, readonly=True) as s:
        denials = s.exec(select(AuditEvent).where(AuditEvent.action == "ACCESS_DENIED")).all()
    assert [e.details["operation"] for e in denials] == ["set a strategy", "approve a strategy"]
    assert {r["label"]: r["status"] for r in json.loads(cli("strategy", "show", "--json")[1])} == {
        "S": "DRAFT"
    }
    # Ola sees no version governing a portfolio of hers, and not the names of the admin's.
    assert [
        r["portfolios"] for r in json.loads(cli("strategy", "show", "--json", as_user="ola@example.com")[1])
    ] == [[]]


def test_a_manifesto_rule_contradicting_the_policy_is_refused_with_its_line(cli, files, world) -> None:  # type: ignore[no-untyped-def]
    args = files("X", POLICY | {"max_trade_base": "4000"}, MANIFESTO + "- max single trade: 5000\n")
    code, out, err = cli("strategy", "add", "--label", "X", *args)
    assert code == 1 and out == ""
    assert err.startswith(f"error: {args[3]}: manifesto line 6 (max single trade: 5000): ")
    assert "the policy's max_trade_base is 4000" in err
    assert json.loads(cli("strategy", "show", "--json")[1]) == []


def test_constituent_move_and_list(cli, files, world, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    assert cli("strategy", "add", "--label", "A", *files("A"))[0] == 0
    code, out, err = cli(
        "constituent",
        "move",
        "--portfolio",
        "SIPP",
        "--ticker",
        "VWRP",
        "--exchange",
        "XLON",
        "--sleeve",
        "SEMIS",
    )
    assert code == 1 and err.strip() == (
        "error: VWRP on XLON is not a constituent of 'SIPP': add it with `tradeassist constituent add`"
    )
    add = (
        "constituent",
        "add",
        "--portfolio",
        "SIPP",
        "--ticker",
        "VWRP",
        "--exchange",
        "XLON",
        "--sleeve",
        "CORE",
    )
    assert cli(*add)[0] == 0
    move = (
        "constituent",
        "move",
        "--portfolio",
        "SIPP",
        "--ticker",
        "vwrp",
        "--exchange",
        "xlon",
        "--sleeve",
    )
    code, out, err = cli(*move, "GOLD")
    assert code == 1 and err.startswith("error: unknown sleeve 'GOLD' (known: ")
    code, out, err = cli(*move, "semis")
    assert code == 0 and out.strip() == "constituent moved: VWRP on XLON -> SEMIS", err
    rows = json.loads(cli("constituent", "list", "--portfolio", "SIPP", "--json")[1])
    assert rows == [
        {
            "ticker": "VWRP",
            "exchange": "XLON",
            "sleeve": "SEMIS",
            "include_in_calcs": True,
            "is_monitored": True,
        }
    ]
    code, out, err = cli(*move, "CORE", as_user="ola@example.com")
    assert code == 3 and "may not map constituents on portfolio 'SIPP'" in err
    with unit_of_work(engine, readonly=True) as s:
        [moved] = s.exec(select(AuditEvent).where(AuditEvent.action == "CONSTITUENT_MOVED")).all()
    assert moved.details == {"ticker": "VWRP", "exchange": "XLON", "from": "CORE", "to": "SEMIS"}
