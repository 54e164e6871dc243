"""The approval view shows a household's recommendations together, in run order, under a head
with the household's plan and its allocation before and after (issue #19, item 3)."""

from __future__ import annotations

from types import SimpleNamespace

import ipywidgets as w

from tradeassist.presentation.household import approval_header_html, text_lines
from tradeassist.ui.approval import grouped

SUMMARY = {
    "strategy": "household-1",
    "headline": "Household plan: AJ Bell ISA: buy £1,900.00; fees £1.50.",
    "account_names": ["AJ Bell SIPP", "AJ Bell ISA"],
    "sleeves": {
        "CREDIT": {
            "target": "0.10",
            "weight_before": "0",
            "weight_after": "0.095",
            "drift_before": "-0.1",
            "drift_after": "-0.005",
        },
    },
    "sleeves_no_account_can_hold": ["GOLD"],
}


def _row(rid: int, run_id: int, portfolio: str, household: int | None) -> dict[str, object]:
    rationale = {"household": SUMMARY} if household else {}
    return {"recommendation_id": rid, "run_id": run_id, "portfolio": portfolio, "household_run_id": household,
            "rationale": rationale}  # fmt: skip


def test_a_household_s_cards_are_grouped_under_its_plan() -> None:
    pending = [  # newest first, as the service lists them
        _row(9, 30, "Other ISA", None),
        _row(8, 21, "AJ Bell ISA", 20),
        _row(7, 20, "AJ Bell SIPP", 20),
        _row(6, 10, "Other ISA", None),
    ]
    cards = {
        int(r["recommendation_id"]): SimpleNamespace(widget=w.HTML(str(r["recommendation_id"])))
        for r in pending
    }
    children = grouped(pending, cards)  # type: ignore[arg-type]
    assert len(children) == 3
    assert children[0] is cards[9].widget and children[2] is cards[6].widget
    box = children[1]
    assert "ta-household" in box._dom_classes and "ta-household-20" in box._dom_classes
    head, *members = box.children
    assert members == [cards[7].widget, cards[8].widget]  # the household's accounts in run order
    assert "Household plan" in head.value and "household-1" in head.value
    assert "AJ Bell SIPP, AJ Bell ISA" in head.value
    assert "10.0%" in head.value and "9.5%" in head.value and "GOLD" in head.value


def test_the_header_escapes_and_the_text_shows_each_account() -> None:
    html = approval_header_html(SUMMARY | {"strategy": "<b>x</b>"}, [{"portfolio": "A&B"}])
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "A&amp;B" in html
    document = {
        "headline": "Household plan: X",
        "strategy": "household-1",
        "rationale": {"sleeves": SUMMARY["sleeves"], "household": {"accounts": [
            {"account": "AJ Bell ISA", "why": ["Buys £1,900.00 of CREDIT: under target."]}],
            "sleeves_no_account_can_hold": ["GOLD"]}},
        "accounts": [
            {"portfolio": "AJ Bell GIA", "tax_treatment": "GIA", "contribution": "0",
             "headline": "AJ Bell GIA: Sell 1 line(s)", "lines": [
                 {"action": "SELL", "ticker": "EQTY", "exchange": "XLON", "amount_base": "2700",
                  "estimated_units": "27", "estimated_gain_base": "1350.00",
                  "suppressed_by_min_trade": False}],
             "constraints_report": {"tax": {"message": "within the exempt amount"}},
             "rationale": {"tax": {"flags": [{"message": "you sold CRED on 14/06/2024"}]}}},
            {"portfolio": "AJ Bell ISA", "tax_treatment": "ISA", "contribution": "500", "headline": "Buy",
             "lines": [], "constraints_report": {}, "rationale": {}},
        ],
    }  # fmt: skip
    lines = text_lines(document)
    assert lines[0] == "Household plan: X"
    assert "AJ Bell GIA (GIA): Sell 1 line(s)" in lines
    assert "  Sell 27 EQTY:XLON for £2,700.00, estimated gain £1,350.00" in lines
    assert "  capital gains: within the exempt amount" in lines
    assert "  warning: you sold CRED on 14/06/2024" in lines
    assert "AJ Bell ISA (ISA, contribution £500.00): Buy" in lines
    assert "  why: Buys £1,900.00 of CREDIT: under target." in lines
    assert any(line.startswith("Sleeve GOLD: no account of the household can hold it") for line in lines)
