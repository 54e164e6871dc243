"""The runner end to end with a real kernel: statuses, artefacts, the one recording
transaction, HTML reports that work offline, and secrets that never leave the environment."""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import nbformat
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import select

from tradeassist.core import jsonutil
from tradeassist.core.enums import Channel, InstrumentType, NotificationStatus, RunStatus
from tradeassist.core.errors import ValidationError
from tradeassist.core.timeutil import end_of_london_day
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import (
    Alert,
    AuditEvent,
    HoldingSnapshot,
    Instrument,
    InstrumentListing,
    MarketDataSource,
    Notification,
    PricePoint,
    Recommendation,
    RunInputSnapshot,
    TaskRun,
    User,
)
from tradeassist.runs import runner
from tradeassist.runs.notebook_api import RESULT_MIME
from tradeassist.services import governance, identity, portfolios
from tradeassist.services import tasks as task_service

SMTP_CANARY = "smtp-canary-Secret-4411"
API_CANARY = "td-canary-Key-9920"
AT = end_of_london_day(date(2026, 1, 6))  # a Tuesday
PARAMETERS = 'run_id = 0\nportfolio = None\nas_of = ""\ndb_url = ""'


def write_notebook(folder: Path, kind: str, *cells: str, parameters: str = PARAMETERS) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{kind}.ipynb")
    return folder


def publish_cell(summary: str = "{}") -> str:
    return (
        "from IPython.display import display\n"
        f"display({{{RESULT_MIME!r}: {{'version': 1, 'run_id': run_id, 'kind': 'ALERT_ONLY', "
        f"'summary': {summary}, 'inputs': {{}}, 'issues': [], 'recommendation': None}}}}, raw=True)"
    )


@pytest.fixture
def canaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEASSIST_SMTP_PASSWORD", SMTP_CANARY)
    monkeypatch.setenv("TWELVEDATA_API_KEY", API_CANARY)


@pytest.fixture
def owner(engine: Engine, admin: User) -> User:
    """Ola owns the SIPP, which holds VWRP (priced the day before AT) and VUAG (never priced)."""
    with unit_of_work(engine) as s:
        ola = identity.add_user(
            s, actor=s.get(User, admin.user_id), email="ola@example.com", password="ola-pass-123"
        )
        sipp = portfolios.add_portfolio(s, actor=ola, name="SIPP", broker="AJBell", tax_treatment="SIPP")
        source = MarketDataSource(name="stooq")
        s.add(source)
        s.flush()
        for isin, ticker in (("IE00BK5BQT80", "VWRP"), ("IE00BFMXXD54", "VUAG")):
            instrument = Instrument(isin=isin, instrument_type=InstrumentType.ETF)
            s.add(instrument)
            s.flush()
            listing = InstrumentListing(
                instrument_id=instrument.instrument_id,
                ticker=ticker,
                exchange="XLON",
                trading_currency="GBP",
                quote_scale="GBP",
            )
            s.add(listing)
            s.flush()
            s.add(
                HoldingSnapshot(
                    portfolio_id=sipp.portfolio_id, listing_id=listing.listing_id, units=Decimal(10)
                )
            )
            if ticker == "VWRP":
                s.add(
                    PricePoint(
                        listing_id=listing.listing_id,
                        as_of=end_of_london_day(date(2026, 1, 5)),
                        source_id=source.source_id,
                        raw_price=Decimal("101.25"),
                        raw_currency="GBP",
                        raw_quote_scale="GBP",
                        normalized_price_base=Decimal("101.25"),
                        usable=True,
                    )
                )
        return ola


def _task(engine: Engine, user: User, name: str, kind: str = "ALERT_ONLY", config: str | None = None) -> None:
    with unit_of_work(engine) as s:
        task_service.add_task(
            s,
            actor=s.get(User, user.user_id),
            name=name,
            kind=kind,
            schedule_type="CRON",
            schedule_expr="0 7 * * 1",
            portfolio="SIPP",
            config=config,
        )


def _run(engine: Engine, db_url: str, user: User, name: str, tmp_path: Path, **kwargs) -> runner.RunOutcome:  # type: ignore[no-untyped-def]
    return runner.run_task(
        engine, actor=user, name=name, db_url=db_url, at=AT, reports=tmp_path / "reports", **kwargs
    )


def _secrets(db_url: str) -> list[str]:
    found = [SMTP_CANARY, API_CANARY]
    password = make_url(db_url).password
    if password:
        found.append(password)
    return found


def _stored_text(engine: Engine) -> str:
    """Everything the run may have written, as text."""
    tables = (
        "task_runs",
        "run_input_snapshots",
        "alerts",
        "notifications",
        "audit_events",
        "recommendations",
    )
    with engine.connect() as conn:
        return "\n".join(
            str(row) for table in tables for row in conn.execute(text(f"SELECT * FROM {table}")).all()
        )


def _assert_no_secret(db_url: str, *texts: str) -> None:
    for secret in _secrets(db_url):
        for index, body in enumerate(texts):
            assert secret not in body, f"secret found in text #{index}"


def test_a_run_records_everything_in_one_go_and_leaks_no_secret(
    engine: Engine,
    db_url: str,
    owner: User,
    canaries: None,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    _task(engine, owner, "sipp prices", config='{"max_age_business_days": 2}')
    outcome = _run(engine, db_url, owner, "sipp prices", tmp_path)
    assert outcome.status is RunStatus.SUCCESS, outcome.error
    notebook, html = Path(outcome.notebook_path), Path(outcome.html_path)
    assert notebook.is_absolute() and notebook.is_file() and html.is_file()
    started = datetime.now(UTC)
    assert notebook == (
        tmp_path
        / "reports"
        / "runs"
        / f"{started:%Y}"
        / f"{started:%m}"
        / f"{outcome.run_id}-ALERT_ONLY.ipynb"
    )
    with unit_of_work(engine, readonly=True) as s:
        run = s.get(TaskRun, outcome.run_id)
        assert run is not None and run.status is RunStatus.SUCCESS and run.error_message is None
        assert run.as_of == AT and run.notebook_path == str(notebook) and run.html_path == str(html)
        snapshot = s.get(RunInputSnapshot, outcome.run_id).snapshot_json
        assert run.input_hash == jsonutil.sha256_of(snapshot)
        assert snapshot["run"]["portfolio"] == "SIPP" and snapshot["run"]["module_config"] == {
            "max_age_business_days": 2
        }
        priced = {row["ticker"]: row for row in snapshot["inputs"]["prices"]}
        assert priced["VWRP"]["price_gbp"] == "101.25" and priced["VWRP"]["source"] == "stooq"
        assert priced["VWRP"]["as_of"] == "2026-01-05" and priced["VUAG"]["as_of"] is None
        assert run.output_summary["missing"] == 1 and run.output_summary["stale"] == 0
        alerts = s.exec(select(Alert)).all()
        assert [(a.code, a.run_id, a.context["ticker"]) for a in alerts] == [
            ("PRICE_MISSING", outcome.run_id, "VUAG")
        ]
        assert s.exec(select(Recommendation)).all() == []  # nothing recommended: still SUCCESS
        assert s.exec(select(Notification)).all() == []
        recorded = s.exec(select(AuditEvent).where(AuditEvent.action == "TASK_RUN_RECORDED")).one()
        assert recorded.entity_id == str(outcome.run_id)
    executed = nbformat.read(notebook, as_version=4)
    passed = executed.metadata["papermill"]["parameters"]["db_url"]
    assert passed == runner.redact_url(db_url) and make_url(passed).password is None
    out, err = capfd.readouterr()
    _assert_no_secret(
        db_url, notebook.read_text(), html.read_text(), caplog.text, out, err, _stored_text(engine)
    )


def test_a_cell_error_fails_keeps_the_notebook_alerts_and_notifies_without_secrets(
    engine: Engine,
    db_url: str,
    owner: User,
    canaries: None,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    notebooks = write_notebook(
        tmp_path / "notebooks",
        "ALERT_ONLY",
        "import os\nprint('starting')",
        "raise RuntimeError('feed down: https://api.twelvedata.com/time_series?symbol=VWRP&apikey='"
        " + os.environ['TWELVEDATA_API_KEY'] + ' smtp ' + os.environ['TRADEASSIST_SMTP_PASSWORD']"
        " + ' db ' + os.environ.get('PGPASSWORD', 'none'))",
        publish_cell(),
    )
    _task(engine, owner, "broken")
    outcome = _run(engine, db_url, owner, "broken", tmp_path, notebooks=notebooks)
    assert outcome.status is RunStatus.FAILED
    assert outcome.error.startswith("In [4] raised RuntimeError: feed down: https://api.twelvedata.com/")
    assert "apikey=***" in outcome.error
    notebook, html = Path(outcome.notebook_path), Path(outcome.html_path)
    kept = nbformat.read(notebook, as_version=4)
    assert "This run FAILED" in kept.cells[0].source
    errors = [o for c in kept.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors and errors[0].ename == "RuntimeError"
    with unit_of_work(engine, readonly=True) as s:
        run = s.get(TaskRun, outcome.run_id)
        assert run.status is RunStatus.FAILED and run.error_message == outcome.error
        assert s.get(RunInputSnapshot, outcome.run_id) is not None
        alert = s.exec(select(Alert).where(Alert.code == runner.RUN_FAILED)).one()
        assert alert.run_id == outcome.run_id and alert.portfolio_id == run.portfolio_id
        note = s.exec(select(Notification)).one()
        assert (note.channel, note.target, note.status) == (
            Channel.EMAIL,
            "ola@example.com",
            NotificationStatus.PENDING,
        )
        assert note.payload["event"] == runner.RUN_FAILED and note.payload["run_id"] == outcome.run_id
    out, err = capfd.readouterr()
    _assert_no_secret(
        db_url, notebook.read_text(), html.read_text(), caplog.text, out, err, _stored_text(engine)
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_timeout_fails_and_the_saved_notebook_says_so(
    engine: Engine, db_url: str, owner: User, tmp_path: Path
):  # type: ignore[no-untyped-def]
    notebooks = write_notebook(tmp_path / "nb", "ALERT_ONLY", "import time\ntime.sleep(60)", publish_cell())
    _task(engine, owner, "slow")
    started = time.monotonic()
    outcome = _run(engine, db_url, owner, "slow", tmp_path, notebooks=notebooks, timeout=2)
    assert time.monotonic() - started < 40
    assert outcome.status is RunStatus.FAILED
    assert (
        outcome.error.startswith("timeout: a cell ran longer than 2 s") and "time.sleep(60)" in outcome.error
    )
    kept = nbformat.read(outcome.notebook_path, as_version=4)
    assert kept.cells[0].cell_type == "markdown" and "timeout" in kept.cells[0].source
    assert kept.metadata["tradeassist"]["status"] == "FAILED"
    with unit_of_work(engine, readonly=True) as s:
        assert s.exec(select(Alert).where(Alert.code == runner.RUN_FAILED)).one().run_id == outcome.run_id


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_unknown_parameters_are_refused_before_anything_runs(
    engine: Engine, db_url: str, owner: User, tmp_path: Path
) -> None:
    notebooks = write_notebook(
        tmp_path / "nb", "ALERT_ONLY", publish_cell(), parameters='run_id = 0\nportfolio = None\nas_of = ""'
    )
    with pytest.raises(ValidationError, match=r"unknown parameter\(s\) colour"):
        runner.check_parameters(notebooks / "ALERT_ONLY.ipynb", {"run_id": 1, "colour": "red"})
    _task(engine, owner, "old notebook")
    outcome = _run(engine, db_url, owner, "old notebook", tmp_path, notebooks=notebooks)
    assert outcome.status is RunStatus.FAILED and outcome.notebook_path is None
    assert "unknown parameter(s) db_url" in outcome.error
    assert not list((tmp_path / "reports").rglob("*.ipynb"))


def test_a_frozen_portfolio_gives_a_frozen_run_and_a_notification(
    engine: Engine, db_url: str, owner: User, tmp_path: Path
) -> None:
    _task(engine, owner, "weekly", kind="WEEKLY_REVIEW")
    with unit_of_work(engine) as s:
        governance.freeze_portfolio(
            s, actor=s.get(User, owner.user_id), portfolio="SIPP", reason="checking a feed"
        )
    outcome = _run(engine, db_url, owner, "weekly", tmp_path)
    assert outcome.status is RunStatus.FROZEN and outcome.notebook_path is None
    assert not (tmp_path / "reports").exists() or not list((tmp_path / "reports").rglob("*"))
    with unit_of_work(engine, readonly=True) as s:
        run = s.get(TaskRun, outcome.run_id)
        assert run.status is RunStatus.FROZEN and run.output_summary["frozen"]["reason_code"] == "MANUAL"
        snapshot = s.get(RunInputSnapshot, outcome.run_id).snapshot_json
        assert snapshot["inputs"]["freeze"]["is_frozen"] is True
        assert run.input_hash == jsonutil.sha256_of(snapshot)
        assert s.exec(select(Recommendation)).all() == []
        note = s.exec(select(Notification)).one()
        assert note.payload["event"] == runner.RUN_FROZEN and note.target == "ola@example.com"
        assert s.exec(select(Alert).where(Alert.code == runner.RUN_FAILED)).all() == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_report_has_no_code_no_plotly_js_and_the_kernel_keeps_no_history(
    engine: Engine, db_url: str, owner: User, tmp_path: Path
) -> None:
    notebooks = write_notebook(
        tmp_path / "nb",
        "ALERT_ONLY",
        "from tradeassist.runs import notebook_api\n"
        "import plotly.graph_objects as go\n"
        "print('a line for people')\n"
        "notebook_api.show_figure(go.Figure(go.Bar(x=['VWRP'], y=[1]), layout_title_text='first chart'))\n"
        "notebook_api.use_offline_charts()  # fig.show() for people, the same way\n"
        "go.Figure(go.Bar(x=['VUAG'], y=[2]), layout_title_text='second chart').show()",
        "ip = get_ipython()\n"
        "history = {'enabled': ip.history_manager.enabled, 'dir': ip.profile_dir.location}",
        publish_cell("history"),
    )
    _task(engine, owner, "charts")
    outcome = _run(engine, db_url, owner, "charts", tmp_path, notebooks=notebooks)
    assert outcome.status is RunStatus.SUCCESS, outcome.error
    assert outcome.summary["enabled"] is False
    profile = Path(outcome.summary["dir"])
    assert not str(profile).startswith(str(Path.home() / ".ipython")) and not profile.exists()
    html = Path(outcome.html_path).read_text()
    assert "notebook_api" not in html and "go.Figure" not in html and "db_url" not in html
    assert "<script" not in html and "plotly.js" not in html  # 5 MB per run, once
    assert "a line for people" in html
    assert "first chart" in html and "second chart" in html  # as SVG, or as words without kaleido
    assert RESULT_MIME not in html
    notebook = Path(outcome.notebook_path)
    kept = nbformat.read(notebook, as_version=4)
    charts = [
        o
        for c in kept.cells
        for o in c.get("outputs", [])
        if "application/vnd.plotly.v1+json" in o.get("data", {})
    ]
    assert len(charts) == 2  # interactive when the notebook is opened in Jupyter
    assert notebook.stat().st_size < 200_000 and "plotly.js" not in notebook.read_text()


def test_secret_values_cover_the_environment_and_database_urls() -> None:
    env = {
        "TRADEASSIST_SMTP_PASSWORD": SMTP_CANARY,
        "TWELVEDATA_API_KEY": API_CANARY,
        "PWD": "/work/main",
        "TRADEASSIST_DB_URL": "postgresql://u:db-Secret-1@h/x",
        "SHORT_TOKEN": "abc",
    }
    found = runner.secret_values("postgresql+psycopg://u:other-Secret-2@h/x", env)
    assert found == {SMTP_CANARY, API_CANARY, "db-Secret-1", "other-Secret-2"}
    assert runner.scrub_text(f"GET https://x/y?apikey={API_CANARY}&a=1 {SMTP_CANARY}", found) == (
        "GET https://x/y?apikey=***&a=1 ***"
    )
    assert runner.strip_secrets({"a": [f"x{SMTP_CANARY}y", 1]}, found) == {"a": ["x***y", 1]}
    assert json.dumps(runner.strip_secrets({"k": "plain"}, found)) == '{"k": "plain"}'


def test_a_monthly_allocation_stores_its_recommendation_and_replays_identically(
    engine: Engine, db_url: str, admin: User, tmp_path: Path
) -> None:
    from tradeassist.demo import load_demo
    from tradeassist.services import run_history as history

    load_demo(engine, end=date(2026, 1, 9))
    at = end_of_london_day(date(2026, 1, 9))
    with unit_of_work(engine, readonly=True) as s:
        actor = s.get(User, admin.user_id)
    outcome = runner.run_task(
        engine, actor=actor, name="demo monthly allocation", db_url=db_url, at=at, reports=tmp_path / "r"
    )
    assert outcome.status is RunStatus.SUCCESS, outcome.error
    with unit_of_work(engine, readonly=True) as s:
        run = s.get(TaskRun, outcome.run_id)
        reco = s.exec(select(Recommendation).where(Recommendation.run_id == outcome.run_id)).one()
        stored = history.stored_recommendation(s, outcome.run_id)
        assert stored is not None and stored["lines"] and stored["headline"] == reco.headline
        assert run.output_summary["lines"] == len(stored["lines"])
        snapshot = s.get(RunInputSnapshot, outcome.run_id).snapshot_json
        assert run.strategy_version_id == snapshot["inputs"]["strategy"]["strategy_version_id"]
        assert snapshot["inputs"]["parameters"]["contribution"] == "1000"
        assert snapshot["inputs"]["prices"] and all(p["source"] for p in snapshot["inputs"]["prices"])
        replay = history.replay_run(s, actor=s.get(User, admin.user_id), run_id=outcome.run_id)
        assert replay.identical, replay.differences


def test_replay_comparison_names_each_difference() -> None:
    from tradeassist.services.run_history import compare_recommendations

    line = {
        "ticker": "VWRP",
        "exchange": "XLON",
        "action": "BUY",
        "amount_base": "202.50",
        "estimated_units": "2",
        "suppressed_by_min_trade": False,
        "reason_code": "ALLOCATE_CASH",
    }
    stored = {
        "headline": "Buy",
        "rationale": {"drift": {"CORE": "0.1"}},
        "constraints_report": {},
        "lines": [line],
    }
    same = {**stored, "lines": [{**line, "amount_base": Decimal("202.5")}]}
    assert compare_recommendations(stored, same) == []
    assert compare_recommendations(None, {**stored, "lines": []}) == []
    changed = {
        **stored,
        "rationale": {"drift": {"CORE": "0.2"}},
        "lines": [{**line, "estimated_units": "3"}, {**line, "ticker": "VUAG"}],
    }
    assert compare_recommendations(stored, changed) == [
        'rationale.drift.CORE: stored "0.1", recomputed "0.2"',
        'line VUAG:XLON BUY: not stored, recomputed {"ticker": "VUAG", "exchange": "XLON", "action": "BUY", '
        '"amount_base": "202.50", "estimated_units": "2", "suppressed_by_min_trade": false, '
        '"reason_code": "ALLOCATE_CASH"}',
        'line VWRP:XLON BUY estimated_units: stored "2", recomputed "3"',
    ]
    assert compare_recommendations(stored, None) == ["recommendation: only stored has one ('Buy', 1 lines)"]


@pytest.mark.parametrize(
    "kind", ["PRICE_REFRESH", "WEEKLY_REVIEW", "MONTHLY_ALLOC", "QUARTERLY_REBAL", "ALERT_ONLY"]
)
def test_task_notebooks_declare_the_parameters_and_only_call_the_library(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(runner.NOTEBOOKS_ENV, raising=False)
    assert runner.notebooks_dir() == Path(__file__).resolve().parents[1] / "notebooks" / "tasks"
    path = runner.notebooks_dir() / f"{kind}.ipynb"
    assert sorted(runner.declared_parameters(path)) == sorted(runner.PARAMETERS)
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)  # committed stripped
    body = "\n".join(cell.source for cell in code[1:])
    imports = re.findall(r"^\s*(?:from|import)\s+([\w.]+)", body, flags=re.MULTILINE)
    assert imports == ["tradeassist.runs"]
    for forbidden in ("select", "session", "unit_of_work", "sql", "for ", "if "):
        assert forbidden not in body.lower()
