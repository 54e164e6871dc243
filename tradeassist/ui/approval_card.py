"""One recommendation's card in the approval view: what it says, what the reviewers said, its
buttons, and the grid of actual fills to mark it executed.

A card's buttons are one-line adapters: each asks its host (the ``ApprovalView``) to run a
service of ``tradeassist.services.recommendations`` in one unit of work (``CardHost.act``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import ipywidgets as w
from sqlmodel import Session

from ..presentation import approval as ah
from ..services import ledger, recommendations
from ..services.fill_estimates import fill_estimates
from ..services.recommendations import Fill
from ..services.workbench import Actor
from .widgets import button, show, text


class CardHost(Protocol):
    """What a card needs of the view it sits in."""

    card_messages: dict[int, str]

    def act(
        self, verb: str, rid: int, service: Callable[..., Any], *, alone: bool = False, **arguments: Any
    ) -> bool: ...

    def read(self, call: Callable[[Session, Actor], Any], *, quiet: bool = True) -> Any: ...


class FillRow:
    """One editable line of the fills grid: done or not, units, price (quote unit), fees (£)."""

    def __init__(self, default: ah.FillDefault) -> None:
        self.default = default
        self.include = w.Checkbox(value=True, indent=False, layout=w.Layout(width="24px"))
        self.include.add_class("ta-fill-include")
        label = f"<b>{ah.esc(default.action)}</b> {ah.esc(default.ticker)} <span class='ta-muted'>"
        self.label = w.HTML(f"{label}{ah.esc(default.exchange)}</span>", layout=w.Layout(width="150px"))
        self.units = text("ta-fill-units", default.units, "units", "150px")
        self.price = text("ta-fill-price", default.price, f"price ({default.quote_unit})", "230px")
        self.fees = text("ta-fill-fees", default.fees, "fees (£)", "140px")
        self.price.style.description_width = "95px"
        self.consideration = text(
            "ta-fill-consideration", default.consideration or "", "consideration (£)", "230px"
        )
        show(self.consideration, default.consideration is not None)
        self.widget = w.HBox(
            [self.include, self.label, self.units, self.price, self.fees, self.consideration]
        )
        self.widget.add_class("ta-fill-row")
        self.widget.add_class(f"ta-fill-{default.ticker}")

    def fill(self, executed_at: datetime | None) -> Fill:
        """As typed: the service checks the numbers and names every bad one."""
        d = self.default
        return Fill(
            ticker=d.ticker,
            exchange=d.exchange,
            action=d.action,
            units=self.units.value,
            price=self.price.value,
            fees_base=self.fees.value.strip() or "0",
            executed_at=executed_at,
            consideration_base=self.consideration.value.strip() or None
            if d.consideration is not None
            else None,
        )


class RecommendationCard:
    """One recommendation: what it says, what the reviewers said, and its buttons."""

    def __init__(self, view: CardHost, recommendation: Mapping[str, Any]) -> None:
        self.view = view
        self.data = recommendation
        self.rid = int(recommendation["recommendation_id"])
        self.status = ah.word(recommendation["status"])
        verdict = ah.verdict_of(recommendation)
        draft = self.status == "DRAFT"
        rationale = w.HTML(
            ah.rationale_html(
                recommendation.get("rationale") or {}, recommendation.get("constraints_report") or {}
            )
        )
        self.rationale = w.Accordion(
            children=[rationale], titles=("Why: drift per sleeve before and after",), selected_index=None
        )
        self.rationale.add_class("ta-rationale")
        self.message = w.HTML(view.card_messages.get(self.rid, ""))  # its last action's result
        self.message.add_class("ta-card-status")
        self.widget = w.VBox(
            [
                w.HTML(ah.title_html(recommendation)),
                w.HTML(ah.lines_html(recommendation.get("lines") or [])),
                w.HTML(ah.verdicts_html(recommendation.get("verdicts") or [], can_review=draft)),
                self.rationale,
                self._actions(recommendation),
                self._fills_box(),
                self.message,
            ]
        )
        for css in (
            "ta-card",
            f"ta-reco-{self.rid}",
            f"ta-verdict-{verdict or 'NONE'}",
            f"ta-status-{self.status}",
        ):
            self.widget.add_class(css)

    def _actions(self, recommendation: Mapping[str, Any]) -> w.VBox:
        self._buttons()
        frozen, blocked = bool(recommendation.get("frozen")), bool(recommendation.get("blocked"))
        draft, open_ = self.status == "DRAFT", self.status in ("DRAFT", "REVIEWED")
        show(self.approve_button, draft)
        show(self.override_button, draft and blocked)
        show(self.review_button, draft and not recommendation.get("verdicts"))
        show(self.ignore_button, open_)
        show(self.reason, open_)
        show(self.execute_button, self.status == "REVIEWED")
        self.approve_button.disabled = frozen or blocked
        self.override_button.disabled = self.execute_button.disabled = frozen
        notes = []
        if frozen and open_:
            for widget in (self.approve_button, self.override_button, self.execute_button):
                widget.tooltip = "The portfolio is frozen"
            notes.append("The portfolio is frozen: approving and executing wait until the freeze is cleared.")
        elif blocked and draft:
            self.approve_button.tooltip = "The review FAILED: use Override & approve, with a reason"
            notes.append(
                "The latest review FAILED: to approve anyway, type a reason and press Override & approve."
            )
        if recommendation.get("status_reason"):
            notes.append(f"Reason recorded: {recommendation['status_reason']}")
        self.note = w.HTML("".join(f"<div class='ta-muted'>{ah.esc(n)}</div>" for n in notes))
        row = w.HBox(
            [
                self.approve_button,
                self.override_button,
                self.reason,
                self.ignore_button,
                self.execute_button,
                self.review_button,
            ],
            layout=w.Layout(flex_flow="row wrap", align_items="center"),
        )
        return w.VBox([self.note, row])

    def _buttons(self) -> None:
        self.reason = text(
            "ta-reason", width="340px", label="Reason (needed to ignore, or to override a FAIL)"
        )
        self.approve_button = button("Approve", "ta-approve", "success", "check")
        self.override_button = button(
            "Override & approve",
            "ta-override",
            "danger",
            "exclamation-triangle",
            "Approve despite the FAIL verdict",
        )
        self.ignore_button = button("Ignore", "ta-ignore", "warning", "times", "Set it aside, with a reason")
        self.execute_button = button(
            "Mark executed", "ta-execute", "primary", "pencil", "Enter the actual fills"
        )
        self.review_button = button("Review", "ta-review", "", "search", "Run the reviewer now")
        self.approve_button.on_click(self.on_approve)
        self.override_button.on_click(self.on_override)
        self.ignore_button.on_click(self.on_ignore)
        self.execute_button.on_click(self.on_open_fills)
        self.review_button.on_click(self.on_review)

    def _fills_box(self) -> w.VBox:
        self.fill_rows: list[FillRow] = []
        self.executed_at = text(
            "ta-executed-at", description="executed at", width="300px", label="now, or 2026-07-01T10:15+01:00"
        )
        self.confirm_button = button("Confirm execution", "ta-confirm-execution", "primary", "check")
        self.cancel_button = button("Cancel", "ta-cancel-execution")
        self.confirm_button.on_click(self.on_confirm_execution)
        self.cancel_button.on_click(self.on_cancel_execution)
        self.fills_grid = w.VBox([])
        help_text = (
            "<b>Actual fills</b> <span class='ta-muted'>as the broker's contract note shows them "
            "(price per unit in the listing's quote unit, fees in pounds); untick a line that was "
            "not done</span>"
        )
        self.fills_box = w.VBox(
            [
                w.HTML(help_text),
                self.fills_grid,
                w.HBox([self.executed_at, self.confirm_button, self.cancel_button]),
            ]
        )
        self.fills_box.add_class("ta-fills")
        show(self.fills_box, False)
        return self.fills_box

    # --- callbacks: thin adapters over the services ------------------------------------------
    def on_approve(self, _: Any = None) -> None:
        self.view.act("approve", self.rid, recommendations.approve_recommendation)

    def on_override(self, _: Any = None) -> None:
        self.view.act(
            "override", self.rid, recommendations.approve_recommendation, override_reason=self.reason.value
        )

    def on_ignore(self, _: Any = None) -> None:
        self.view.act("ignore", self.rid, recommendations.ignore_recommendation, reason=self.reason.value)

    def on_review(self, _: Any = None) -> None:
        self.view.act("review", self.rid, recommendations.review_outside_transaction, alone=True)

    def on_confirm_execution(self, _: Any = None) -> None:
        self.view.act("execute", self.rid, recommendations.execute_recommendation, fills=self.fills)

    def on_open_fills(self, _: Any = None) -> None:
        defaults = self.view.read(lambda s, _a: [ah.fill_default(e) for e in fill_estimates(s, self.data)])
        if defaults is not None:
            self.show_fills(defaults)

    def on_cancel_execution(self, _: Any = None) -> None:
        show(self.fills_box, False)

    # --- the fills grid ----------------------------------------------------------------------
    def show_fills(self, defaults: Sequence[ah.FillDefault]) -> None:
        self.fill_rows = [FillRow(d) for d in defaults]
        self.fills_grid.children = [row.widget for row in self.fill_rows]
        show(self.fills_box, True)

    def fills(self) -> list[Fill]:
        """The ticked rows as typed (the service checks the numbers and names each bad one; a
        time that is not ISO 8601 is a ``ValidationError`` here)."""
        typed = self.executed_at.value.strip()
        executed_at = ledger.parse_entry_time(typed) if typed else None
        return [row.fill(executed_at) for row in self.fill_rows if row.include.value]
