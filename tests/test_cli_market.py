"""prices, fx, alerts and freeze as a user meets them: real processes, real files, both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.support.cli import run_cli
from tests.support.http_server import Reply, ScriptedServer
from tests.test_services_market import STAN, add_listing, add_portfolio, stan_tail
from tradeassist.db.models import User

TRADEASSIST = [sys.executable, "-m", "tradeassist"]
LIST_KEYS = {
    "as_of",
    "source",
    "is_close",
    "raw_price",
    "raw_currency",
    "raw_quote_scale",
    "normalized_price_base",
    "quality_flags",
}
ALERT_KEYS = {"alert_id", "severity", "code", "message", "context", "created_at", "resolved_at"}


@pytest.fixture
def cli(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env["TRADEASSIST_HOME"] = str(tmp_path / "home")
    env["TWELVEDATA_API_KEY"] = "td-test-key"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(["--db", db_url, *args], env)

    return run


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def test_suspect_prices_alert_freeze_accept_resolve_and_clear(
    cli, engine: Engine, admin: User, real_data: Path, tmp_path: Path
) -> None:
    stan = add_listing(engine, admin, STAN[0], "STAN", scale="GBX")
    add_portfolio(engine, admin, "Holder", holds=stan)
    add_portfolio(engine, admin, "Bystander")
    path = stan_tail(real_data, tmp_path, 120, pounds=range(100, 120))  # pounds for good from day 100

    imported = ok(
        cli("prices", "import", str(path), "--ticker", "STAN", "--exchange", "XLON", "--format", "stooq")
    )
    assert "120 prices read, 120 new" in imported.stdout
    assert (
        "CRITICAL: XLON:STAN: 20 prices from" in imported.stderr
        and "1 portfolio(s) frozen" in imported.stderr
    )

    rows = json.loads(ok(cli("prices", "list", "--ticker", "STAN", "--exchange", "XLON", "--json")).stdout)
    assert len(rows) == 120 and set(rows[0]) >= LIST_KEYS
    assert rows[0]["raw_quote_scale"] == "GBX" and rows[0]["quality_flags"] == []
    assert rows[-1]["quality_flags"] == ["scale_suspect"] and rows[-1]["raw_price"] == "6.05"
    assert Decimal(rows[0]["normalized_price_base"]) * 100 == Decimal(rows[0]["raw_price"])

    alerts = json.loads(ok(cli("alerts", "--json")).stdout)
    assert len(alerts) == 1 and set(alerts[0]) >= ALERT_KEYS
    alert = alerts[0]
    assert (alert["severity"], alert["code"], alert["resolved_at"]) == (
        "CRITICAL",
        "PRICE_SCALE_SUSPECT",
        None,
    )
    assert alert["context"]["listing"] == "XLON:STAN" and alert["context"]["first_date"] == rows[100]["as_of"]
    assert json.loads(ok(cli("alerts", "--portfolio", "Bystander", "--json")).stdout) == []

    frozen = json.loads(ok(cli("freeze", "status", "--portfolio", "Holder", "--json")).stdout)
    assert frozen["is_frozen"] is True and frozen["reason_code"] == "PRICE_SCALE_SUSPECT" and frozen["set_at"]
    calm = json.loads(ok(cli("freeze", "status", "--portfolio", "Bystander", "--json")).stdout)
    assert calm["is_frozen"] is False and calm["reason_code"] is None

    latest = json.loads(
        ok(cli("prices", "latest", "--portfolio", "Holder", "--as-of", "2024-01-15", "--json")).stdout
    )
    assert latest[0]["ticker"] == "STAN" and latest[0]["as_of"] == rows[99]["as_of"]
    assert latest[0]["price_gbp"] == rows[99]["normalized_price_base"] and latest[0]["is_stale"] is True
    assert latest[0]["age_business_days"] > 5

    accept = [
        "prices",
        "accept-level",
        "--ticker",
        "STAN",
        "--exchange",
        "XLON",
        "--from",
        rows[100]["as_of"],
    ]
    accepted = ok(cli(*accept, "--reason", "share consolidation"))
    assert "20 now usable" in accepted.stdout
    recheck = ["prices", "recheck", "--ticker", "STAN", "--exchange", "XLON", "--from", rows[100]["as_of"]]
    assert "20 stored prices checked again, 0 now usable, 0 now flagged" in ok(cli(*recheck)).stdout
    latest = json.loads(
        ok(cli("prices", "latest", "--portfolio", "Holder", "--as-of", "2024-01-15", "--json")).stdout
    )
    assert latest[0]["as_of"] == "2024-01-15" and latest[0]["price_gbp"] == "0.0605"

    # Accepting the level ended what it resolved: the alert and the freeze it set (issue #17).
    assert "1 alert(s) resolved" in accepted.stdout and "1 portfolio(s) no longer frozen" in accepted.stdout
    assert json.loads(ok(cli("alerts", "--json")).stdout)[0]["resolved_at"] is not None
    assert (
        json.loads(ok(cli("freeze", "status", "--portfolio", "Holder", "--json")).stdout)["is_frozen"]
        is False
    )
    already = cli("alerts", "resolve", str(alert["alert_id"]))
    assert already.returncode != 0 and "already resolved" in already.stderr

    ok(cli("freeze", "set", "--portfolio", "Bystander", "--reason", "going away"))
    assert (
        json.loads(ok(cli("freeze", "status", "--portfolio", "Bystander", "--json")).stdout)["is_frozen"]
        is True
    )
    missing = cli("freeze", "clear", "--portfolio", "Bystander")
    assert missing.returncode != 0  # --reason is required
    ok(cli("freeze", "clear", "--portfolio", "Bystander", "--reason", "back"))
    ok(cli("freeze", "set", "--portfolio", "Bystander", "--reason", "going away again"))

    again = ok(
        cli("prices", "import", str(path), "--ticker", "STAN", "--exchange", "XLON", "--format", "stooq")
    )
    assert "0 new, 120 already stored" in again.stdout
    bad = cli("prices", "import", str(path), "--ticker", "NOPE", "--exchange", "XLON", "--format", "stooq")
    assert (
        bad.returncode != 0
        and bad.stderr.startswith("error: unknown listing NOPE")
        and "Traceback" not in bad.stderr
    )


def test_yahoo_json_and_ecb_fx_through_the_cli(cli, engine: Engine, admin: User, real_data: Path) -> None:
    add_listing(engine, admin, "IE00B3XXRP09", "VUSA")
    add_listing(engine, admin, "IE00B3RBWM25", "VWRL")
    add_listing(engine, admin, "US46090E1038", "QQQ", exchange="XNAS", currency="USD", scale="USD")
    vusa = ok(cli("prices", "import", str(real_data / "yahoo" / "VUSA.L.csv"), "--ticker", "VUSA",
                  "--exchange", "XLON", "--format", "yahoo", "--json"))  # fmt: skip
    assert json.loads(vusa.stdout)["inserted"] == 1261
    vwrl = ok(cli("prices", "import", str(real_data / "gsej_investment_tracker" / "prices" / "VWRL.L.json"),
                  "--ticker", "VWRL", "--exchange", "XLON", "--format", "json"))  # fmt: skip
    assert "3016 new" in vwrl.stdout
    qqq = ok(cli("prices", "import", str(real_data / "stooq" / "qqq_us_d.csv"), "--ticker", "QQQ",
                 "--exchange", "XNAS", "--format", "stooq"))  # fmt: skip
    assert "warning: XNAS:QQQ: 207 prices" in qqq.stderr
    listed = json.loads(ok(cli("prices", "list", "--ticker", "QQQ", "--exchange", "XNAS", "--json")).stdout)
    assert listed[-1]["quality_flags"] == ["missing_fx"] and listed[-1]["normalized_price_base"] is None

    fx = ok(cli("fx", "import", str(real_data / "ecb" / "eurofxref-hist.csv"), "--format", "ecb",
                "--currencies", "USD,EUR"))  # fmt: skip
    assert "1999-01-04 to 2026-04-13" in fx.stdout and "207 stored prices now have a GBP price" in fx.stdout
    listed = json.loads(ok(cli("prices", "list", "--ticker", "QQQ", "--exchange", "XNAS", "--json")).stdout)
    assert listed[-1]["quality_flags"] == [] and Decimal(listed[-1]["normalized_price_base"]) < Decimal(
        "635.77"
    )
    bad = cli("fx", "import", str(real_data / "stooq" / "qqq_us_d.csv"), "--format", "ecb")
    assert bad.returncode != 0 and "qqq_us_d.csv" in bad.stderr and "Traceback" not in bad.stderr


TD_BODY = {
    "meta": {
        "symbol": "VUSA",
        "interval": "1day",
        "currency": "GBP",
        "exchange_timezone": "Europe/London",
        "exchange": "LSE",
        "mic_code": "XLON",
        "type": "ETF",
    },
    "values": [
        {
            "datetime": "2024-01-12",
            "open": "77.0",
            "high": "77.5",
            "low": "76.8",
            "close": "77.10",
            "volume": "1",
        },
        {
            "datetime": "2024-01-11",
            "open": "76.5",
            "high": "77.0",
            "low": "76.1",
            "close": "76.90",
            "volume": "1",
        },
    ],
    "status": "ok",
}


def test_refresh_against_local_servers_reports_the_failing_listing_and_stores_the_rest(
    cli, engine: Engine, admin: User, real_data: Path
) -> None:
    add_listing(engine, admin, STAN[0], "ASTAN", scale="GBX", provider="stooq", symbol="stan.uk")
    add_listing(engine, admin, STAN[0], "BSTAN", scale="GBX", provider="stooq", symbol="nope.uk")
    add_listing(engine, admin, "IE00B3XXRP09", "VUSA", provider="twelvedata")
    add_listing(engine, admin, "IE00B3RBWM25", "VWRL")  # no provider: skipped
    stooq_csv = (real_data / "stooq" / "stan_uk_d.csv").read_bytes()
    stooq_routes = {
        "/q/d/l/": Reply(200, stooq_csv, content_type="text/csv"),
        "/q/d/l/?s=nope.uk": Reply(200, "No data"),
    }
    td_routes = {"/time_series": Reply(200, json.dumps(TD_BODY), content_type="application/json")}
    with ScriptedServer(stooq_routes) as stooq, ScriptedServer(td_routes) as td:
        result = cli(
            "prices", "refresh", "--base-url", f"stooq={stooq.base_url}",
            "--base-url", f"twelvedata={td.base_url}", "--json",
        )  # fmt: skip
        td_query = td.seen[0].query
    assert (
        result.returncode == 1 and "1 listing(s) failed" in result.stderr and "Traceback" not in result.stderr
    )
    outcomes = {row["ticker"]: row for row in json.loads(result.stdout)}
    assert outcomes["ASTAN"]["status"] == "refreshed" and outcomes["ASTAN"]["inserted"] == 9464
    assert outcomes["BSTAN"]["status"] == "failed" and "no data" in outcomes["BSTAN"]["message"].lower()
    assert outcomes["VUSA"]["status"] == "refreshed" and outcomes["VUSA"]["inserted"] == 2
    assert outcomes["VWRL"]["status"] == "skipped"
    assert td_query["symbol"] == ["VUSA"] and td_query["mic_code"] == ["XLON"]
    assert "td-test-key" not in result.stdout + result.stderr
    vusa = json.loads(ok(cli("prices", "list", "--ticker", "VUSA", "--exchange", "XLON", "--json")).stdout)
    assert [(r["as_of"], r["raw_price"], r["source"]) for r in vusa] == [
        ("2024-01-11", "76.90", "twelvedata"),
        ("2024-01-12", "77.10", "twelvedata"),
    ]

    # The next refresh asks only from the last stored day on, and stores nothing new.
    with ScriptedServer({"/q/d/l/": Reply(200, stooq_csv, content_type="text/csv")}) as stooq:
        again = cli("prices", "refresh", "--portfolio", "Nope", "--base-url", f"stooq={stooq.base_url}")
        assert again.returncode != 0 and "no portfolio named 'Nope'" in again.stderr
        pid = add_portfolio(engine, admin, "Mine", holds=1)
        assert pid
        second = ok(
            cli("prices", "refresh", "--portfolio", "Mine", "--base-url", f"stooq={stooq.base_url}", "--json")
        )
        assert stooq.seen[-1].query["d1"] == ["20240115"]
    [row] = json.loads(second.stdout)
    assert (row["ticker"], row["status"], row["inserted"]) == ("ASTAN", "refreshed", 0)
