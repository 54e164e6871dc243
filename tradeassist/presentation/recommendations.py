"""A recommendation as HTML: its headline, trade lines, and each sleeve before and after.

``recommendation_html`` takes what ``services.advice.recommend`` returns (anything with
``to_json_dict()``); the strategy editor's preview and the getting-started notebook show it.
"""

from __future__ import annotations

import html
from decimal import Decimal
from typing import Any

from .html import INFO, messages_html, reason_words, table_html


def _pct(value: Any) -> str:
    return f"{Decimal(str(value)) * 100:+.2f}" if value is not None else ""


def recommendation_html(recommendation: Any) -> str:
    """A recommendation's headline, trade lines and sleeves (before -> after) as HTML."""
    data = recommendation.to_json_dict()
    lines = [
        {
            "action": line["action"],
            "listing": f"{line['ticker']}:{line['exchange']}",
            "amount (GBP)": f"{Decimal(line['amount_base']):,.2f}",
            "units": line["estimated_units"],
            "note": "below the minimum trade: not to execute" if line["suppressed_by_min_trade"] else "",
            "reason": reason_words(line["reason_code"]),
        }
        for line in data["lines"]
    ]
    sleeves = [
        {
            "sleeve": name,
            "target %": _pct(row["target"]).lstrip("+"),
            "weight before %": _pct(row["weight_before"]).lstrip("+"),
            "weight after %": _pct(row["weight_after"]).lstrip("+"),
            "drift before (pts)": _pct(row["drift_before"]),
            "drift after (pts)": _pct(row["drift_after"]),
            "outside band": _breached(row["breached_before"], row["breached_after"]),
        }
        for name, row in sorted(data["rationale"].get("sleeves", {}).items())
    ]
    numeric = ("amount (GBP)", "units", "target %", "weight before %", "weight after %")
    rationale = data["rationale"]
    notes = [f"rules: {', '.join(rationale.get('rules_fired', [])) or 'none'}"]
    left = [f"{x['ticker']}:{x['exchange']} ({x['reason']})" for x in rationale.get("left_alone", [])]
    if left:
        notes.append("left alone: " + ", ".join(left))
    return (
        f"<div class='ta-headline'><b>{html.escape(data['headline'])}</b></div>"
        + messages_html(notes, INFO)
        + table_html(lines, empty="no trades", numeric=numeric)
        + table_html(sleeves, numeric=(*numeric, "drift before (pts)", "drift after (pts)"))
    )


def _breached(before: bool, after: bool) -> str:
    return {(True, True): "before and after", (True, False): "before", (False, True): "after"}.get(
        (bool(before), bool(after)), ""
    )
