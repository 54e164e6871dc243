"""Who may do what, command by command: every CLI command that reads or changes a portfolio,
run as its owner, a member, a non-member and the administrator. A non-member reads nothing of
it and changes nothing (every table equal before and after, but the audit of the refusal);
commands that change shared data (corporate actions, prices, FX) need access to every
portfolio they touch; user management is the administrator's.

In-process (typer's runner over the real CLI, on a copy of one prepared SQLite file per
command and role): 150-odd commands in a few seconds. The per-role results are the matrix the
issue asks for; ``test_print_matrix`` writes it out with ``-s``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlmodel import select
from typer.testing import CliRunner

from tests.conftest import ADMIN_EMAIL, DEMO_AS_OF, DEMO_END
from tradeassist.cli import app
from tradeassist.core.errors import AccessDenied, TradeAssistError
from tradeassist.db.engine import create_db_engine, dispose_engines, unit_of_work
from tradeassist.db.models import LedgerEntry, Portfolio
from tradeassist.demo import data
from tradeassist.services import advice, identity, notifications, portfolios, registry, strategy
from tradeassist.services.ledger import NewEntry, post_entries

ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"
ERIN = "erin@example.com"  # a user only the administrator may disable
VUSA = "IE00B3XXRP09"  # a listing only Alice's portfolios use
ROLES = {"owner": ALICE, "member": BOB, "non-member": CAROL, "admin": ADMIN_EMAIL}
P, P2 = "Alice ISA", "Alice GIA"
SMGB_ISIN = next(listing.isin for listing in data.LISTINGS if listing.ticker == "SMGB")


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)


@dataclass(frozen=True)
class Prepared:
    path: Path
    reco_id: int
    entry_id: int
    files: Path


@pytest.fixture(scope="module")
def prepared(sqlite_demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """The demo's listings and prices; Alice owns two portfolios (shared with Bob) run on her
    own strategy, with a stored recommendation and a pending notification; Carol has her own."""
    root = tmp_path_factory.mktemp("matrix")
    path = root / "prepared.db"
    shutil.copy(sqlite_demo_template, path)
    engine = create_db_engine(f"sqlite:///{path}")
    with unit_of_work(engine) as s:
        admin = identity.get_user(s, ADMIN_EMAIL)
        alice, bob, carol, _erin = (
            identity.add_user(s, actor=admin, email=e, password="a-long-password")
            for e in (ALICE, BOB, CAROL, ERIN)
        )
        registry.add_instrument(s, actor=admin, isin=VUSA, instrument_type="ETF")
        registry.add_listing(
            s, actor=admin, isin=VUSA, ticker="VUSA", exchange="XLON", currency="GBP", quote_scale="GBP"
        )
        portfolios.add_portfolio(s, actor=alice, name=P, broker="AJBell", tax_treatment="ISA")
        portfolios.add_portfolio(s, actor=alice, name=P2, broker="AJBell", tax_treatment="GIA")
        portfolios.add_portfolio(s, actor=carol, name="Carol GIA", broker="AJBell", tax_treatment="GIA")
        for name in (P, P2):
            portfolios.share_portfolio(s, actor=alice, name=name, email=BOB)
        manifesto = data.MANIFESTO + "\nAlice's own.\n"
        strategy.add_strategy(
            s, actor=alice, label="alice-1", policy_text=data.POLICY, manifesto=manifesto, portfolios=[P]
        )
        strategy.approve_strategy(s, actor=alice, label="alice-1")
        strategy.add_strategy(
            s,
            actor=alice,
            label="alice-2",
            policy_text=data.POLICY,
            manifesto=manifesto + "\nv2\n",
            portfolios=[P],
        )
        for listing in data.LISTINGS:
            strategy.add_constituent(
                s,
                actor=alice,
                portfolio=P,
                ticker=listing.ticker,
                exchange=listing.exchange,
                sleeve=listing.sleeve,
            )
        close = {ticker: series[-1][1] for ticker, series in data.closes(DEMO_END).items()}
        smgb, vwrp = close["SMGB"].quantize(D("0.01")), close["VWRP"].quantize(D("0.01"))
        entries = [
            NewEntry(at("2025-01-02"), "CONTRIBUTION", D("15000")),
            NewEntry(
                at("2025-01-03"),
                "BUY",
                -(D(100) * smgb / 100).quantize(D("0.01")),
                ticker="SMGB",
                exchange="XLON",
                units=D(100),
                price=smgb,
            ),
            NewEntry(
                at("2025-01-03"),
                "BUY",
                -(D(20) * vwrp),
                ticker="VWRP",
                exchange="XLON",
                units=D(20),
                price=vwrp,
            ),
        ]
        post_entries(s, actor=alice, portfolio=P, entries=entries, label="setup", batch_type="MANUAL")
        own = [
            NewEntry(at("2025-01-02"), "CONTRIBUTION", D("1000")),
            NewEntry(
                at("2025-01-03"), "BUY", D("-90"), ticker="VUSA", exchange="XLON", units=D(1), price=D(90)
            ),
        ]
        post_entries(s, actor=alice, portfolio=P2, entries=own, label="setup", batch_type="MANUAL")
        entry_id = s.exec(
            select(LedgerEntry.ledger_entry_id).where(
                LedgerEntry.entry_type == "BUY", LedgerEntry.price == vwrp
            )
        ).all()[-1]
        folio = s.exec(select(Portfolio).where(Portfolio.name == P)).one()
        inputs = advice.prepare_inputs(s, portfolio=P, kind="QUARTERLY_REBAL", as_of=DEMO_AS_OF)
        row = advice.store_recommendation(
            s,
            run_id=None,
            portfolio_id=inputs.portfolio_id,
            recommendation=advice.recommend(inputs),
            listing_ids=inputs.listing_ids,
        )
        assert row is not None and row.recommendation_id is not None
        reco_id = row.recommendation_id
        notifications.enqueue(
            s,
            user_id=alice.user_id or 0,
            portfolio_id=folio.portfolio_id,
            channel="EMAIL",
            target=ALICE,
            payload={"subject": "Alice ISA: a recommendation to review", "body": "Sell SMGB"},
        )
        assert bob and entry_id is not None
    engine.dispose()
    files = root / "files"
    files.mkdir()
    (files / "ledger.csv").write_text(
        "entry_time,entry_type,ticker,exchange,units,price,fees_base,cash_amount_base,external_ref,notes\n"
        "2026-06-01,CONTRIBUTION,,,,,,10.00,M1,matrix\n"
    )
    (files / "smgb.csv").write_text("date,close\n2026-06-29,1.00\n")  # a price 100x off
    (files / "vusa.csv").write_text("date,close\n2026-06-29,91.50\n")
    (files / "policy.json").write_text(data.POLICY)
    (files / "manifesto.md").write_text(data.MANIFESTO + "\nanother\n")
    (files / "ecb.csv").write_text("Date,USD,GBP,\n2026-06-29,1.1,0.5,\n")
    return Prepared(path, reco_id, entry_id, files)


def commands(p: Prepared) -> dict[str, tuple[str, list[str]]]:
    """name -> (kind, arguments). Kinds: read (the portfolio's data), write (changes it),
    shared (changes shared data P uses: the demo's SIPP, which only the administrator sees, holds
    the same listings, so only the administrator may), admin (the administrator's alone), scoped
    (lists only what the actor may see: a non-member gets an empty list, not a refusal)."""
    f = p.files
    reco = str(p.reco_id)
    return {
        "holdings": ("read", ["holdings", "--portfolio", P, "--json"]),
        "cash": ("read", ["cash", "--portfolio", P, "--json"]),
        "ledger list": ("read", ["ledger", "list", "--portfolio", P, "--json"]),
        "ledger batches": ("read", ["ledger", "batches", "--portfolio", P, "--json"]),
        "constituent list": ("read", ["constituent", "list", "--portfolio", P, "--json"]),
        "freeze status": ("read", ["freeze", "status", "--portfolio", P, "--json"]),
        "prices latest": ("read", ["prices", "latest", "--portfolio", P, "--json"]),
        "income": ("read", ["income", "--portfolio", P, "--json"]),
        "recommend": (
            "read",
            ["recommend", "--portfolio", P, "--kind", "QUARTERLY_REBAL", "--as-of", "2026-06-30"],
        ),
        "reco list": ("read", ["reco", "list", "--portfolio", P, "--json"]),
        "reco show": ("read", ["reco", "show", reco, "--json"]),
        "strategy show": ("read", ["strategy", "show", "--portfolio", P, "--json"]),
        "tax cgt": ("read", ["tax", "cgt", "--tax-year", "2024-25", "--owner", ALICE, "--json"]),
        "tax pools": ("read", ["tax", "pools", "--owner", ALICE, "--json"]),
        "tax allowances": (
            "read",
            ["tax", "allowances", "--tax-year", "2024-25", "--owner", ALICE, "--json"],
        ),
        "tax report": (
            "read",
            ["tax", "report", "--tax-year", "2024-25", "--owner", ALICE, "--out", str(f / "tax.html")],
        ),
        "ledger verify": ("read", ["ledger", "verify", "--portfolio", P, "--json"]),
        "runs list": ("scoped", ["runs", "list", "--portfolio", P, "--json"]),
        "ledger add": (
            "write",
            ["ledger", "add", "--portfolio", P, "--type", "CONTRIBUTION", "--amount", "5"],
        ),
        "ledger correct": ("write", ["ledger", "correct", str(p.entry_id), "--portfolio", P]),
        "ledger transfer": ("write", ["ledger", "transfer", "--from", P, "--to", P2, "--amount", "10"]),
        "ledger import": (
            "write",
            ["ledger", "import", str(f / "ledger.csv"), "--portfolio", P, "--format", "canonical"],
        ),
        "ledger rebuild": ("write", ["ledger", "rebuild", "--portfolio", P]),
        "constituent move": (
            "write",
            [
                "constituent",
                "move",
                "--portfolio",
                P,
                "--ticker",
                "VWRP",
                "--exchange",
                "XLON",
                "--sleeve",
                "SEMIS",
            ],
        ),
        "freeze set": ("write", ["freeze", "set", "--portfolio", P, "--reason", "matrix"]),
        "reco review": ("write", ["reco", "review", reco]),
        "reco approve": ("write", ["reco", "approve", reco]),
        "reco ignore": ("write", ["reco", "ignore", reco, "--reason", "matrix"]),
        "portfolio share": ("write", ["portfolio", "share", P, CAROL]),
        "strategy add": (
            "write",
            [
                "strategy",
                "add",
                "--label",
                "matrix-1",
                "--policy",
                str(f / "policy.json"),
                "--manifesto",
                str(f / "manifesto.md"),
                "--portfolio",
                P,
            ],
        ),
        "strategy approve": ("write", ["strategy", "approve", "alice-2"]),
        "tasks add": (
            "write",
            [
                "tasks",
                "add",
                "--name",
                "matrix",
                "--kind",
                "QUARTERLY_REBAL",
                "--portfolio",
                P,
                "--cron",
                "0 9 1 * *",
            ],
        ),
        "corporate-action add": (
            "shared",
            [
                "corporate-action",
                "add",
                "--isin",
                SMGB_ISIN,
                "--type",
                "SPLIT",
                "--effective",
                "2026-06-01",
                "--ratio",
                "10:1",
            ],
        ),
        "prices import": (
            "shared",
            [
                "prices",
                "import",
                str(f / "smgb.csv"),
                "--ticker",
                "SMGB",
                "--exchange",
                "XLON",
                "--format",
                "csv",
            ],
        ),
        "prices accept-level": (
            "shared",
            [
                "prices",
                "accept-level",
                "--ticker",
                "SMGB",
                "--exchange",
                "XLON",
                "--from",
                "2026-06-01",
                "--reason",
                "x",
            ],
        ),
        "fx import": (
            "shared",
            ["fx", "import", str(f / "ecb.csv"), "--format", "ecb", "--currencies", "USD"],
        ),
        "user add": ("admin", ["user", "add", "dave@example.com", "--password-stdin"]),
        "user disable": ("admin", ["user", "disable", ERIN]),
        "prices import (own listing)": (
            "write",
            [
                "prices",
                "import",
                str(f / "vusa.csv"),
                "--ticker",
                "VUSA",
                "--exchange",
                "XLON",
                "--format",
                "csv",
            ],
        ),
    }


SECRET_WORDS = (P, ALICE, "SMGB")  # what a non-member must never read of Alice's portfolio


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows (but the audit trail, where refusals are recorded)."""
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        tables = [t for t in inspect(conn).get_table_names() if t not in ("audit_events", "alembic_version")]
        result = {t: sorted(map(tuple, conn.execute(text(f'SELECT * FROM "{t}"'))), key=repr) for t in tables}
    engine.dispose()
    return result


def denials(path: Path) -> int:
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        count = conn.execute(
            text("SELECT COUNT(*) FROM audit_events WHERE action = 'ACCESS_DENIED'")
        ).scalar()
    engine.dispose()
    return int(count or 0)


@dataclass(frozen=True)
class Outcome:
    code: int
    output: str
    error: BaseException | None


def invoke(path: Path, who: str, args: list[str]) -> Outcome:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["--db", f"sqlite:///{path}", "--as", who, *args],
        input="a-long-password\n",
        catch_exceptions=True,
    )
    dispose_engines()
    error = result.exception if not isinstance(result.exception, SystemExit) else None
    code = result.exit_code
    if isinstance(error, TradeAssistError):
        code = error.exit_code
    return Outcome(code, result.output, error)


@pytest.fixture
def copy(prepared: Prepared, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "db.db"
    shutil.copy(prepared.path, path)
    yield path


MATRIX: dict[tuple[str, str], str] = {}


def allowed(kind: str, role: str) -> bool:
    if kind == "scoped":
        return role != "non-member"
    if kind in ("admin", "shared"):
        return role == "admin"
    return role != "non-member"


NAMES = (
    "holdings", "cash", "ledger list", "ledger batches", "constituent list", "freeze status",
    "prices latest", "income", "recommend", "reco list", "reco show", "strategy show", "tax cgt",
    "tax pools", "tax allowances", "tax report", "ledger verify", "runs list", "ledger add",
    "ledger correct", "ledger transfer",
    "ledger import", "ledger rebuild", "constituent move", "freeze set", "reco review", "reco approve",
    "reco ignore", "portfolio share", "strategy add", "strategy approve", "tasks add",
    "corporate-action add", "prices import", "prices accept-level", "fx import", "user add",
    "user disable", "prices import (own listing)",
)  # fmt: skip


def test_the_matrix_runs_every_prepared_command(prepared: Prepared) -> None:
    assert sorted(NAMES) == sorted(commands(prepared))


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("name", NAMES)
def test_command_as_role(prepared: Prepared, copy: Path, name: str, role: str) -> None:
    kind, args = commands(prepared)[name]
    before = dump(copy) if not allowed(kind, role) else None
    denied_before = denials(copy)
    outcome = invoke(copy, ROLES[role], args)
    if allowed(kind, role):
        MATRIX[(name, role)] = "ok" if outcome.code == 0 else f"exit {outcome.code}"
        assert not isinstance(outcome.error, AccessDenied), f"{name} as {role}: {outcome.error}"
        assert outcome.code == 0, f"{name} as {role}: {outcome.output} {outcome.error!r}"
        return
    if kind == "scoped":
        MATRIX[(name, role)] = "nothing shown" if outcome.code == 0 else f"exit {outcome.code}"
        assert outcome.code == 0 and outcome.output.strip() == "[]", outcome.output
        assert dump(copy) == before
        return
    MATRIX[(name, role)] = "refused" if isinstance(outcome.error, AccessDenied) else f"exit {outcome.code}"
    assert isinstance(outcome.error, AccessDenied), f"{name} as {role} was not refused: {outcome.output!r}"
    assert outcome.code == 3
    for word in SECRET_WORDS:
        assert word not in outcome.output, f"{name} as {role} printed {word!r}"
    assert dump(copy) == before, f"{name} as {role} changed the database"
    assert denials(copy) == denied_before + 1, f"{name} as {role}: the refusal was not audited"


def test_dispatch_sends_only_the_acting_users_notifications(copy: Path) -> None:
    before = dump(copy)["notifications"]
    outcome = invoke(copy, CAROL, ["notify", "dispatch", "--json"])
    assert outcome.code == 0, outcome.output
    assert '"sent": 0' in outcome.output and "Alice" not in outcome.output
    assert dump(copy)["notifications"] == before  # Alice's stays PENDING, never attempted


def test_print_matrix() -> None:
    """The matrix of the tests above (run with -s to read it); runs last in this module."""
    if not MATRIX:
        pytest.skip("run with the matrix tests")
    names = list(dict.fromkeys(name for name, _ in MATRIX))
    print("\n| command | " + " | ".join(ROLES) + " |\n|---|" + "---|" * len(ROLES))
    for name in names:
        print(f"| {name} | " + " | ".join(MATRIX.get((name, role), "") for role in ROLES) + " |")
