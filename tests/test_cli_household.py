"""``tradeassist recommend --strategy`` and a household's task as the owner meets them (issue
#19): the decision first, the lines grouped by account in pounds and pence, the household's
allocation before and after, ``--json`` with every line; ``tasks add --strategy``, ``tasks
run`` and ``runs replay`` of each of its runs; one-line refusals with the CLI's exit codes."""

from __future__ import annotations

import json
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support import household_accounts as h
from tests.support.cli import clean_env, run_cli
from tradeassist.db.engine import create_db_engine

D = Decimal
RECOMMEND = ("recommend", "--strategy", h.LABEL, "--as-of", "2024-06-28")
DOCUMENT_KEYS = {
    "strategy",
    "strategy_version_id",
    "kind",
    "as_of",
    "input_hash",
    "headline",
    "allocation",
    "rationale",
    "accounts",
    "lines",
}


@pytest.fixture
def cli(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = create_db_engine(db_url)
    try:
        h.build_credit_household(engine)
    finally:
        engine.dispose()
    env = clean_env(tmp_path, TRADEASSIST_DB_URL=db_url, TRADEASSIST_REPORTS_DIR=str(tmp_path / "reports"))

    def run(*args: str, user: str = h.OWNER) -> subprocess.CompletedProcess[str]:
        done = run_cli(["--as", user, *args], env)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    return run


def test_the_household_puts_the_credit_target_into_the_account_that_can_hold_it(cli) -> None:  # type: ignore[no-untyped-def]
    """The observation of issue #19: a 10% CREDIT target, a SIPP with no CREDIT fund, an ISA
    beside it that has one. The ISA buys the household's CREDIT; the SIPP's cash buys what the
    SIPP can hold instead of waiting, every quarter, for a fund it cannot buy."""
    done = cli(*RECOMMEND, "--kind", "QUARTERLY_REBAL", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert set(document) == DOCUMENT_KEYS
    assert [a["portfolio"] for a in document["accounts"]] == [h.SIPP, h.ISA]
    by_account = {
        name: [
            (x["action"], x["ticker"], D(x["amount_base"]))
            for x in document["lines"]
            if x["portfolio"] == name
        ]
        for name in (h.SIPP, h.ISA)
    }
    assert {ticker for _, ticker, _ in by_account[h.SIPP]} == {"EQTY"}
    credit = sum((amount for action, ticker, amount in by_account[h.ISA] if ticker == "CRED"), D(0))
    assert abs(credit - D("2000")) <= 100  # 10% of the household's £20,000
    sipp = next(a for a in document["accounts"] if a["portfolio"] == h.SIPP)
    assert D(sipp["constraints_report"]["cash_left"]) < 100  # no 10% of the SIPP left in cash
    allocation = {row["sleeve"]: row for row in document["allocation"]}
    assert D(allocation["CREDIT"]["target"]) == D("0.10")
    assert (D(allocation["CREDIT"]["weight_before"]), round(D(allocation["CREDIT"]["weight_after"]), 2)) == (
        0,
        D("0.10"),
    )
    assert all(
        set(line) >= {"portfolio", "ticker", "action", "amount_base", "estimated_units"}
        for line in document["lines"]
    )

    text = cli(*RECOMMEND, "--kind", "QUARTERLY_REBAL")
    assert text.returncode == 0, text.stderr
    out = text.stdout.splitlines()
    assert out[0] == document["headline"] and out[0].startswith("Household plan:")  # the decision first
    sipp_at, isa_at = (
        out.index(next(x for x in out if x.startswith(f"{h.SIPP} (SIPP)"))),
        out.index(next(x for x in out if x.startswith(f"{h.ISA} (ISA)"))),
    )
    assert sipp_at < isa_at
    isa_lines = out[isa_at:]
    cred = next(x for x in isa_lines if "CRED:XLON" in x)
    assert re.fullmatch(r"  Buy \d+ CRED:XLON for £[\d,]+\.\d\d", cred), cred
    assert any("only account that can hold it" in x for x in isa_lines)
    assert not any("CRED" in x for x in out[sipp_at:isa_at])
    assert "Allocation across the household (household-1), now and after the trades:" in out
    assert any(re.match(r"CREDIT\s+10\.0%\s+0\.0%\s+\d+\.\d%", x) for x in out), out
    assert not re.search(r"£[\d,]+\.\d{3,}", text.stdout)  # pounds and pence


def test_contributions_per_account(cli) -> None:  # type: ignore[no-untyped-def]
    done = cli(
        *RECOMMEND,
        "--kind",
        "MONTHLY_ALLOC",
        "--contribution",
        f"{h.ISA}=500",
        "--contribution",
        f"{h.SIPP}=300",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    accounts = {a["portfolio"]: a for a in json.loads(done.stdout)["accounts"]}
    assert {name: D(a["contribution"]) for name, a in accounts.items()} == {h.SIPP: D("300"), h.ISA: D("500")}
    assert D(accounts[h.ISA]["constraints_report"]["money_available"]) == D("10450")
    assert D(accounts[h.SIPP]["constraints_report"]["money_available"]) == D("5250")
    text = cli(*RECOMMEND, "--kind", "MONTHLY_ALLOC", "--contribution", f"{h.ISA}=500")
    assert f"{h.ISA} (ISA, contribution £500.00):" in text.stdout


@pytest.mark.parametrize(
    ("contribution", "message"),
    [
        (
            "AJ Bell ISA 500",
            "error: --contribution 'AJ Bell ISA 500': expected \"ACCOUNT=AMOUNT\", the account's name and "
            'the pounds it receives, e.g. "AJ Bell ISA=500"',
        ),
        ("AJ Bell ISA=five", "error: --contribution 'AJ Bell ISA=five': the amount: 'five' is not a number"),
        (
            "AJ Bell LISA=500",
            f"error: --contribution 'AJ Bell LISA': no such account in strategy {h.LABEL!r} "
            f"(its accounts: {h.SIPP!r}, {h.ISA!r})",
        ),
    ],
)
def test_bad_contribution_text_names_the_problem(cli, contribution: str, message: str) -> None:  # type: ignore[no-untyped-def]
    done = cli(*RECOMMEND, "--kind", "MONTHLY_ALLOC", "--contribution", contribution)
    assert done.returncode == 1
    assert done.stderr.strip() == message


def test_refusals_are_one_line_with_the_cli_s_exit_codes(cli) -> None:  # type: ignore[no-untyped-def]
    denied = cli(*RECOMMEND, "--kind", "QUARTERLY_REBAL", user=h.OTHER)
    assert denied.returncode == 3
    assert denied.stderr.strip() == (
        f"error: {h.OTHER} may not compute a household recommendation on portfolio {h.SIPP!r}"
    )
    both = cli(*RECOMMEND, "--portfolio", h.ISA, "--kind", "QUARTERLY_REBAL")
    assert both.returncode == 1
    assert both.stderr.strip() == (
        "error: give --portfolio NAME (one account) or --strategy LABEL (a household), not both"
    )
    weekly = cli(*RECOMMEND, "--kind", "WEEKLY_REVIEW")
    assert (
        weekly.returncode == 1
        and "a household recommendation is a MONTHLY_ALLOC or a QUARTERLY_REBAL" in weekly.stderr
    )
    # One portfolio still works as it did, with one plain contribution.
    single = cli(
        "recommend",
        "--portfolio",
        h.ISA,
        "--kind",
        "MONTHLY_ALLOC",
        "--contribution",
        "500",
        "--as-of",
        "2024-06-28",
    )
    assert single.returncode == 0, single.stderr


def test_a_strategy_over_two_owners_is_refused(db_url: str, tmp_path: Path) -> None:
    engine = create_db_engine(db_url)
    try:
        h.add_people(engine)
        h.add_listings(engine)
        h.add_account(engine, h.ISA, "ISA", ("EQTY",), [h.contribution("1000")])
        h.add_account(engine, "Bob ISA", "ISA", ("EQTY",), [h.contribution("1000")], owner=h.OTHER)
        h.add_strategy(engine, (h.ISA, "Bob ISA"))
    finally:
        engine.dispose()
    env = clean_env(tmp_path, TRADEASSIST_DB_URL=db_url)
    done = run_cli([*RECOMMEND, "--kind", "QUARTERLY_REBAL"], env)  # the administrator may use both
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: strategy {h.LABEL!r} covers portfolios of different owners ({h.ISA!r}, 'Bob ISA'): a "
        "household recommendation is for one person's accounts, whose cash and tax allowance are theirs"
    )


@pytest.mark.slow
def test_a_household_task_runs_and_each_of_its_runs_replays(cli) -> None:  # type: ignore[no-untyped-def]
    added = cli(
        "tasks",
        "add",
        "--name",
        "household monthly",
        "--kind",
        "MONTHLY_ALLOC",
        "--strategy",
        h.LABEL,
        "--rrule",
        "FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=8",
        "--config",
        json.dumps({"contributions": {h.ISA: "500", h.SIPP: "300"}}),
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("task added: household monthly (MONTHLY_ALLOC, id ")
    listed = json.loads(cli("tasks", "list", "--json").stdout)
    assert [(t["name"], t["portfolio"]) for t in listed] == [("household monthly", None)]

    ran = cli("tasks", "run", "household monthly", "--at", "2024-06-28", "--json")
    assert ran.returncode == 0, ran.stderr
    runs = json.loads(ran.stdout)
    assert [(r["portfolio"], r["status"]) for r in runs] == [(h.SIPP, "SUCCESS"), (h.ISA, "SUCCESS")]
    assert {r["household_run_id"] for r in runs} == {runs[0]["run_id"]}
    assert all(r["recommendation_id"] for r in runs)
    for run in runs:
        replay = cli("runs", "replay", str(run["run_id"]))
        assert (replay.returncode, replay.stdout.strip()) == (0, "identical"), replay.stdout + replay.stderr
    shown = json.loads(cli("runs", "show", str(runs[1]["run_id"]), "--json").stdout)
    assert shown["household_run_id"] == runs[0]["run_id"]
    assert [m["portfolio"] for m in shown["household"]] == [h.SIPP, h.ISA]
    recos = json.loads(cli("reco", "list", "--json").stdout)
    assert {(r["portfolio"], r["household_run_id"]) for r in recos} == {
        (h.SIPP, runs[0]["run_id"]),
        (h.ISA, runs[0]["run_id"]),
    }
    text = cli("tasks", "run", "household monthly", "--at", "2024-06-28T12:00:00+00:00")
    assert text.returncode == 0, text.stderr
    assert re.search(rf"run \d+ MONTHLY_ALLOC household monthly {h.SIPP}: SUCCESS", text.stdout)
    assert re.search(rf"run \d+ MONTHLY_ALLOC household monthly {h.ISA}: SUCCESS", text.stdout)
