"""The strategy editor: draft a policy, see what is wrong as you type, preview the
recommendation it would give on a portfolio, then add it as a version and approve it.

``StrategyEditor(engine=None)`` is an ipywidgets box (display it, or ``editor.widget``). It
opens with the policy and manifesto of the version governing the chosen portfolio, so a new
version starts from the current one.

* Typing in the policy or manifesto box re-validates the draft (``policy.parse_policy``, then
  the manifesto's rule lines merged as ``strategy.effective_policy`` does): every problem is
  one red line naming its key path or manifesto line; the buttons stay disabled until the
  draft is valid.
* **Preview** computes, read-only, what the draft would recommend on the chosen portfolio
  (``advice.prepare_inputs(..., policy=draft)`` with the manifesto's rules merged, then
  ``advice.recommend``): headline, trade lines and each sleeve's weight and drift before and
  after. Nothing is stored.
* **Add and approve** adds the draft as a DRAFT version governing the chosen portfolio and
  approves it, in one transaction (``strategy.add_strategy`` + ``strategy.approve``); the
  version that governed the portfolio keeps its other portfolios (named), and is retired by
  the service when it has none. Other portfolios keep their strategies. A refusal
  (a label used already, the same content as an existing version) is a red line and changes
  nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import ipywidgets as w
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..core.enums import TaskKind
from ..core.errors import NotFound, TradeAssistError
from ..core.money import decimal_str
from ..policy import Policy, parse_policy, policy_to_dict
from ..presentation.html import ERROR, INFO, OK, WARN, message_html, messages_html, table_html
from ..presentation.recommendations import recommendation_html
from ..services import advice, strategy
from ..services.access import portfolio_for
from ..services.workbench import Actor
from .common import error_lines, portfolio_names, work

PREVIEW_KINDS = (TaskKind.MONTHLY_ALLOC.value, TaskKind.QUARTERLY_REBAL.value, TaskKind.WEEKLY_REVIEW.value)


def _pretty(policy: Mapping[str, Any]) -> str:
    return json.dumps(policy, indent=2, sort_keys=False)


def _governing(session: Session, actor: Actor, portfolio: str | None) -> tuple[dict[str, Any] | None, str]:
    """The policy (as archived: its own rules only, the manifesto holds the rest) and the
    manifesto of the version governing ``portfolio``; (None, "") when none does."""
    if portfolio is None:
        return None, ""
    try:
        governing = strategy.governing_strategy(session, portfolio_for(session, actor, portfolio, "read"))
        return policy_to_dict(strategy.archived_policy(session, governing.version)), governing.manifesto
    except NotFound:
        return None, ""


class StrategyEditor:
    """Edit a draft policy, validate it as you type, preview it, add and approve it."""

    def __init__(
        self,
        *,
        engine: Engine | str | None = None,
        portfolio: str | None = None,
        label: str = "",
        policy_text: str | None = None,
        manifesto: str | None = None,
    ) -> None:
        self.engine = engine
        self.draft: Policy | None = None
        self.last_recommendation: Any = None
        with work(engine, readonly=True) as (session, actor):
            names = portfolio_names(session, actor)
            self.versions = strategy.strategy_rows(session, actor=actor)
            chosen = portfolio or (names[0] if names else None)
            current_policy, current_manifesto = _governing(session, actor, chosen)
        self.label = w.Text(value=label, description="Label", placeholder="e.g. 2.0")
        self.policy = w.Textarea(
            value=policy_text
            if policy_text is not None
            else (_pretty(current_policy) if current_policy else ""),
            description="Policy",
            continuous_update=True,
            layout=w.Layout(width="100%", height="260px"),
        )
        self.manifesto = w.Textarea(
            value=manifesto if manifesto is not None else current_manifesto,
            description="Manifesto",
            layout=w.Layout(width="100%", height="140px"),
        )
        self.validation = w.HTML()
        self._controls(names, portfolio)
        self._wire()
        self.widget = w.VBox(
            [
                w.HTML("<h3>Draft policy</h3>"),
                self.policy,
                self.validation,
                self.manifesto,
                w.HTML("<h3>Preview on a portfolio</h3>"),
                w.HBox([self.portfolio, self.kind, self.contribution, self.preview_button]),
                self.preview_output,
                w.HTML("<h3>Add and approve</h3>"),
                w.HBox([self.label, self.approve_button]),
                self.status,
                w.HTML("<h3>Versions</h3>"),
                self.versions_table,
            ]
        )
        self.validate()

    def _controls(self, names: list[str], portfolio: str | None) -> None:
        """The preview's choices, the two buttons, and where the results are said."""
        self.portfolio = w.Dropdown(
            options=names, value=portfolio or (names[0] if names else None), description="Portfolio"
        )
        self.kind = w.Dropdown(options=PREVIEW_KINDS, value=TaskKind.MONTHLY_ALLOC.value, description="Task")
        self.contribution = w.Text(value="", description="Contribution", placeholder="GBP, optional")
        self.preview_button = w.Button(
            description="Preview", icon="eye", tooltip="What this draft would recommend"
        )
        self.approve_button = w.Button(
            description="Add and approve",
            button_style="success",
            icon="check",
            tooltip="Add as a version governing the chosen portfolio and approve it",
        )
        self.preview_output = w.HTML()
        self.status = w.HTML()
        self.versions_table = w.HTML(self._versions_html())

    def _wire(self) -> None:
        """Typing re-validates the draft; the buttons preview and approve."""
        self.preview_button.add_class("ta-preview")
        self.approve_button.add_class("ta-approve-strategy")
        self.status.add_class("ta-status")
        for box in (self.policy, self.label, self.manifesto):
            box.observe(self._changed, names="value")
        self.preview_button.on_click(lambda _: self.preview())
        self.approve_button.on_click(lambda _: self.approve())

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # --- validation ---------------------------------------------------------------------------

    def _changed(self, _change: Any) -> None:
        self.validate()

    def problems(self) -> list[str]:
        """What stops the draft being added, one line each (empty when it may be)."""
        found: list[str] = []
        self.draft = None
        if not self.policy.value.strip():
            found.append("policy: empty")
        else:
            try:
                self.draft = parse_policy(self.policy.value)
            except TradeAssistError as exc:
                found.extend(error_lines(exc))
        if not self.manifesto.value.strip():
            found.append("manifesto: empty")
        elif self.draft is not None:
            try:  # what the version would run with: the manifesto's rules merged
                self.draft = strategy.effective_policy(self.draft, self.manifesto.value)
            except TradeAssistError as exc:
                self.draft = None
                found.extend(error_lines(exc))
        return found

    def validate(self) -> bool:
        """Re-check the draft and show the verdict; returns whether it may be added."""
        problems = self.problems()
        label = self.label.value.strip()
        taken = label and any(v["version_label"] == label for v in self.versions)
        if problems:
            self.validation.value = messages_html(problems, ERROR)
        else:
            self.validation.value = message_html("policy and manifesto are valid", OK)
        if not label:
            self.validation.value += message_html("label: give the new version a label to add it", INFO)
        elif taken:
            self.validation.value += message_html(f"label: {label!r} is used already", WARN)
        self.preview_button.disabled = self.draft is None or not self.portfolio.value
        self.approve_button.disabled = bool(problems or not label or taken)
        return not self.approve_button.disabled

    # --- actions (thin adapters over services) ------------------------------------------------

    def preview(self) -> Any:
        """What the draft would recommend on the portfolio now; nothing is stored."""
        self.validate()
        if self.draft is None:
            self.preview_output.value = message_html("no preview: fix the policy first", ERROR)
            return None
        try:
            with work(self.engine, readonly=True) as (session, actor):
                inputs = advice.prepare_inputs(
                    session,
                    portfolio=self.portfolio.value,
                    kind=self.kind.value,
                    contribution=self.contribution.value.strip() or None,
                    actor=actor,
                    policy=self.draft,
                )
                self.last_recommendation = advice.recommend(inputs)
        except TradeAssistError as exc:
            self.last_recommendation = None
            self.preview_output.value = messages_html(error_lines(exc), ERROR)
            return None
        self.preview_output.value = recommendation_html(self.last_recommendation)
        return self.last_recommendation

    def approve(self) -> bool:
        """Add the draft as a version and approve it (one transaction)."""
        if not self.validate():
            self.status.value = message_html("not added: fix the problems above first", ERROR)
            return False
        label = self.label.value.strip()
        portfolio = self.portfolio.value
        if not portfolio:
            self.status.value = message_html("not added: choose the portfolio it governs first", ERROR)
            return False
        try:
            with work(self.engine) as (session, actor):
                strategy.add_strategy(
                    session,
                    actor=actor,
                    label=label,
                    policy_text=self.policy.value,
                    manifesto=self.manifesto.value,
                    portfolios=[portfolio],
                )
                done = strategy.approve(session, actor=actor, label=label)
        except TradeAssistError as exc:
            self.status.value = messages_html(error_lines(exc), ERROR)
            return False
        self.status.value = message_html(
            f"{label!r} added and approved: it drives {portfolio!r}'s recommendations from now on", OK
        )
        if done.retired:
            self.status.value += message_html(f"retired: {', '.join(map(repr, done.retired))}", INFO)
        for old, kept in sorted(done.still_governing.items()):
            shown = ", ".join(map(repr, kept)) or "portfolios you have no access to"
            self.status.value += message_html(f"{old!r} still governs {shown}", INFO)
        self.refresh_versions()
        return True

    def refresh_versions(self) -> None:
        with work(self.engine, readonly=True) as (session, actor):
            self.versions = strategy.strategy_rows(session, actor=actor)
        self.versions_table.value = self._versions_html()
        self.validate()

    def _versions_html(self) -> str:
        rows = [
            {
                "label": v["version_label"],
                "status": v["status"],
                "portfolios": ", ".join(v["portfolios"]),
                "governs": ", ".join(v["governs"]),
                "targets": ", ".join(f"{k} {decimal_str(t)}" for k, t in sorted(v["sleeve_targets"].items())),
                "approved_at": v["approved_at"],
                "policy_sha256": v["policy_sha256"][:12],
            }
            for v in reversed(self.versions)
        ]
        return table_html(rows, empty="no strategy versions yet")
