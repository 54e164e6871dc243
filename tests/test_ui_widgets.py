"""The strategy editor and the ledger import view without a browser: set widget values, click
the buttons, then check what the widgets show and what the database holds (both backends)."""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import func, select

from tests.conftest import DEMO_END
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import AuditEvent, LedgerEntry, Portfolio
from tradeassist.db.models import Recommendation as RecommendationRow
from tradeassist.demo import DEMO_PORTFOLIO, DEMO_STRATEGY
from tradeassist.services import identity, ledger, strategy
from tradeassist.ui.ledger_import import ENTRY_COLUMNS, LedgerImportView
from tradeassist.ui.strategy_editor import StrategyEditor


def _counts(engine: Engine) -> dict[str, int]:
    with unit_of_work(engine, readonly=True) as s:
        return {
            "entries": s.exec(select(func.count()).select_from(LedgerEntry)).one(),
            "recommendations": s.exec(select(func.count()).select_from(RecommendationRow)).one(),
            "audit": s.exec(select(func.count()).select_from(AuditEvent)).one(),
        }


def _versions(engine: Engine) -> dict[str, str]:
    with unit_of_work(engine, readonly=True) as s:
        return {row["version_label"]: row["status"] for row in strategy.strategy_rows(s)}


def test_strategy_editor_validates_as_you_type_previews_then_adds_and_approves(demo_engine: Engine) -> None:
    editor = StrategyEditor(engine=demo_engine, portfolio=DEMO_PORTFOLIO)
    approved = json.loads(editor.policy.value)
    assert approved["sleeve_targets"] == {"CORE": "0.7", "SEMIS": "0.15", "ENERGY": "0.15"}
    assert "valid" in editor.validation.value and "give the new version a label" in editor.validation.value
    assert not editor.preview_button.disabled and editor.approve_button.disabled

    # typing: every change is validated, each problem named by its key
    draft = dict(approved, sleeve_targets={"CORE": "0.7", "SEMIS": "0.15", "ENERGY": "0.10"})
    editor.policy.value = json.dumps(draft)
    assert "policy: sleeve_targets: must sum to exactly 1 (got 0.95)" in editor.validation.value
    assert editor.preview_button.disabled and editor.approve_button.disabled
    editor.policy.value = json.dumps(dict(approved, colour="blue"))
    assert "policy: colour: unknown key" in editor.validation.value
    editor.policy.value = '{"sleeve_targets": '
    assert "policy: not valid JSON" in editor.validation.value
    draft = dict(approved, sleeve_targets={"CORE": "0.6", "SEMIS": "0.2", "ENERGY": "0.2"})
    editor.policy.value = json.dumps(draft, indent=1)
    assert "ta-error" not in editor.validation.value and not editor.preview_button.disabled

    # preview: the draft's recommendation on the portfolio, nothing stored
    before = _counts(demo_engine)
    editor.kind.value = "MONTHLY_ALLOC"
    editor.contribution.value = "1000"
    editor.preview_button.click()
    recommendation = editor.last_recommendation
    assert recommendation is not None
    assert recommendation.rationale["sleeves"]["CORE"]["target"] == Decimal("0.6")
    assert html.escape(recommendation.headline) in editor.preview_output.value
    assert "weight before %" in editor.preview_output.value
    assert _counts(demo_engine) == before
    assert _versions(demo_engine) == {DEMO_STRATEGY: "APPROVED"}

    # a label in use is refused as you type; a new one adds and approves in one transaction
    editor.label.value = DEMO_STRATEGY
    assert "used already" in editor.validation.value and editor.approve_button.disabled
    editor.label.value = "demo-2.0"
    assert not editor.approve_button.disabled
    editor.approve_button.click()
    assert "added and approved" in editor.status.value
    assert _versions(demo_engine) == {DEMO_STRATEGY: "RETIRED", "demo-2.0": "APPROVED"}
    with unit_of_work(demo_engine, readonly=True) as s:
        demo = s.exec(select(Portfolio).where(Portfolio.name == DEMO_PORTFOLIO)).one()
        governing = strategy.governing_strategy(s, demo.portfolio_id)
        assert {k: str(v) for k, v in governing.policy.sleeve_targets.items()} == {
            "CORE": "0.6",
            "SEMIS": "0.2",
            "ENERGY": "0.2",
        }
    assert "demo-2.0" in editor.versions_table.value
    assert "used already" in editor.validation.value  # the label is taken now

    # the same content under another label: the service refuses it, nothing changes
    audit = _counts(demo_engine)["audit"]
    editor.label.value = "demo-2.1"
    editor.approve_button.click()
    assert "are version &#x27;demo-2.0&#x27; already" in editor.status.value
    assert "ta-error" in editor.status.value
    assert _versions(demo_engine) == {DEMO_STRATEGY: "RETIRED", "demo-2.0": "APPROVED"}
    assert _counts(demo_engine)["audit"] == audit


CANONICAL_HEADER = (
    "entry_time,entry_type,ticker,exchange,units,price,fees_base,cash_amount_base,external_ref,notes\n"
)


def _book(engine: Engine) -> tuple[list[dict], list[dict], object]:
    with unit_of_work(engine, readonly=True) as s:
        actor = identity.bootstrap_admin(s)
        return (
            ledger.list_entries(s, actor=actor, portfolio=DEMO_PORTFOLIO),
            ledger.list_batches(s, actor=actor, portfolio=DEMO_PORTFOLIO),
            ledger.cash(s, actor=actor, portfolio=DEMO_PORTFOLIO)["cash_balance"],
        )


def test_ledger_import_refuses_bad_lines_previews_exactly_and_commits_once(
    demo_engine: Engine, tmp_path: Path
) -> None:
    day = DEMO_END.isoformat()  # after the demo's last entry (15:00 London), before now
    view = LedgerImportView(engine=demo_engine, portfolio=DEMO_PORTFOLIO)
    assert view.preview_button.disabled and view.commit_button.disabled
    assert "Demo: three years of contributions" in view.batches_table.value
    book = _book(demo_engine)

    # a file the parser refuses: every bad line with its reason, nothing written
    bad = tmp_path / "bad.csv"
    bad.write_text(
        CANONICAL_HEADER
        + f"{day}T20:00:00Z,CONTRIBUTION,,,,,0,lots,t-1,\n"
        + f"{day}T20:01:00Z,BUY,VWRP,XLON,-2,123.00,1.50,-247.50,t-2,\n"
    )
    view.path.value = str(bad)
    assert not view.preview_button.disabled
    view.preview_button.click()
    refused = [(r.line, r.reason) for r in view.last_preview.refused]
    assert [line for line, _ in refused] == [2, 3]
    assert "'lots' is not a number" in refused[0][1]
    assert "refused, nothing would be appended (2 problems" in view.summary.value
    assert "bad.csv" in view.refused_table.value and "lots" in view.refused_table.value
    assert view.commit_button.disabled

    # a file the book refuses (selling more than is held): named by its line, nothing written
    oversell = tmp_path / "oversell.csv"
    oversell.write_text(
        CANONICAL_HEADER + f"{day}T20:00:00Z,SELL,VWRP,XLON,-100000,123.00,1.50,12299998.50,t-3,\n"
    )
    view.path.value = str(oversell)
    view.preview_button.click()
    assert [r.line for r in view.last_preview.refused] == [2]
    assert view.commit_button.disabled
    view.commit()  # even called directly, commit needs a clean preview
    assert "preview the file first" in view.status.value
    assert _book(demo_engine) == book

    # an uploaded file: the preview is exactly what a commit appends, and writes nothing
    good = (
        CANONICAL_HEADER
        + f"{day}T20:00:00Z,CONTRIBUTION,,,,,0,500.00,t-c1,extra\n"
        + f"{day}T20:05:00Z,BUY,VWRP,XLON,2,123.00,1.50,-247.50,t-b1,\n"
    ).encode()
    view.path.value = ""
    upload = {"name": "good.csv", "type": "text/csv", "size": len(good), "content": memoryview(good)}
    view.upload.value = ({**upload, "last_modified": datetime.now()},)
    view.preview_button.click()
    preview = view.last_preview
    assert preview.ok and len(preview.entries) == 2 and preview.skipped == 0
    assert [e["entry_type"] for e in preview.entries] == ["CONTRIBUTION", "BUY"]
    assert preview.cash_after - preview.cash_before == 500 - 247.50
    assert "2 entries would be appended" in view.summary.value and "t-b1" in view.entries_table.value
    assert not view.commit_button.disabled
    assert _book(demo_engine) == book

    # any change of choice asks for a new preview
    view.format.value = "trading212"
    assert view.commit_button.disabled
    view.format.value = "canonical"
    view.preview_button.click()
    assert not view.commit_button.disabled

    view.commit_button.click()
    assert "batch" in view.status.value and "2 entries" in view.status.value
    entries, batches, cash = _book(demo_engine)
    assert len(batches) == len(book[1]) + 1 and batches[-1]["entries"] == 2
    assert batches[-1]["source_name"] == "good.csv"
    new = [
        {k: e[k] for k in ENTRY_COLUMNS}
        for e in entries
        if e["ledger_batch_id"] == batches[-1]["ledger_batch_id"]
    ]
    assert new == list(preview.entries)
    assert cash == preview.cash_after
    assert view.commit_button.disabled and "good.csv" in view.batches_table.value

    # the same file again: nothing to append
    view.preview_button.click()
    assert view.last_preview.already_imported and "imported already" in view.summary.value
    assert view.commit_button.disabled

    # AJ Bell: an unmapped description is refused with the line to paste into the mapping file;
    # with the mapping, the same file previews as a purchase of the mapped listing (dated the
    # next day: AJ Bell gives dates alone, and at midnight on DEMO_END the cash was not there yet)
    history = tmp_path / "history.csv"
    next_day = DEMO_END + timedelta(days=1)
    history.write_text(
        "Date,Transaction,Description,Quantity,Amount (GBP),Reference\n"
        f"{next_day:%d/%m/%Y},Purchase,Vanguard FTSE All-World UCITS ETF Acc,2,246.00,P9\n"
    )
    view.upload.value = ()
    view.format.value = "ajbell"
    view.path.value = str(history)
    assert view.mapping_box.layout.display is None  # shown for AJ Bell only
    view.preview_button.click()
    assert not view.last_preview.ok and view.commit_button.disabled
    assert view.template.layout.display is None
    assert '"Vanguard FTSE All-World UCITS ETF Acc",,' in view.template.value
    mapping = tmp_path / "mapping.csv"
    mapping.write_text("description,ticker,exchange\nVanguard FTSE All-World UCITS ETF Acc,VWRP,XLON\n")
    view.mapping_path.value = str(mapping)
    view.preview_button.click()
    assert view.last_preview.ok, view.last_preview.refused
    assert [(e["entry_type"], e["ticker"], e["units"]) for e in view.last_preview.entries] == [
        ("BUY", "VWRP", Decimal(2))
    ]
    assert view.template.layout.display == "none" and not view.commit_button.disabled
    assert _book(demo_engine)[1] == batches  # previews write nothing
