"""The approval view: pending recommendations, their review verdicts and rationale, and the
decisions a person takes on them (approve, ignore with a reason, override a FAIL verdict with
a reason, mark executed with the actual fills).

``ApprovalView(engine)`` displays itself (or use ``view.widget``). Every button is a one- to
three-line adapter over ``tradeassist.services.recommendations`` that ``ApprovalView.act``
runs in one unit of work: a user error (``TradeAssistError``) becomes a red line in the
status area, never a traceback; a success says what changed and which audit entries it
wrote, and the page is read again. Buttons carry stable descriptions and CSS classes
(``ta-approve``, ``ta-override``, ``ta-ignore``, ``ta-execute``, ``ta-confirm-execution``,
``ta-review``; each card ``ta-card`` and ``ta-reco-<id>``; the status area ``ta-status``, and
under each card the result of its last action, ``ta-card-status``).

The cards are ``approval_card``'s; their HTML is ``tradeassist.presentation.approval``'s.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import ipywidgets as w
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..core.errors import ConfigError, TradeAssistError
from ..presentation import approval as ah
from ..presentation.household import approval_header_html as household_header_html
from ..presentation.html import ERROR, OK, message_html
from ..services import governance, recommendations
from ..services.workbench import Actor, audit_trail, has_schema
from .approval_card import RecommendationCard
from .common import error_lines, portfolio_names, resolve_engine, work
from .widgets import button

log = logging.getLogger(__name__)

ALL_PORTFOLIOS = "All portfolios"
HISTORY = 8  # status lines kept, newest first
DONE = {
    "approve": "approved",
    "override": "approved over its FAIL verdict",
    "ignore": "ignored",
    "review": "reviewed",
    "execute": "marked executed",
}


def describe(result: Any) -> str:
    """What a service returned, in a few words: the new status, the ledger batch."""

    def get(key: str) -> Any:
        return result.get(key) if isinstance(result, Mapping) else getattr(result, key, None)

    if result is None:
        return ""
    parts = []
    if get("status") is not None:
        parts.append(f"now {ah.word(get('status'))}")
    elif get("verdict") is not None:
        parts.append(f"verdict {ah.word(get('verdict'))}")
    batch = next((get(k) for k in ("batch_id", "ledger_batch_id") if get(k) is not None), None)
    if batch is not None:
        parts.append(f"ledger batch {batch}")
    return ", ".join(parts)


def logout_link() -> str:
    """Served by ``tradeassist ui`` (Voilà tells its kernels their server's base URL): a link to
    log out, so another person can log in; in JupyterLab there is no login, so nothing."""
    base = os.environ.get("VOILA_BASE_URL")
    return f" · <a class='ta-logout' href='{ah.esc(base)}logout'>log out</a>" if base else ""


def dashboard_link() -> str:
    """Served by ``tradeassist ui``: a link to the dashboard it serves beside this view
    (``ui.server.SIDE_PAGES``); in JupyterLab, nothing (the notebook is a file beside this one)."""
    base = os.environ.get("VOILA_BASE_URL")
    return f" · <a class='ta-dashboard-link' href='{ah.esc(base)}dashboard'>dashboard</a>" if base else ""


@dataclass(frozen=True)
class Page:
    """What one refresh read."""

    email: str
    names: list[str]
    chosen: str | None
    frozen: list[tuple[str, governance.FreezeStatus]]
    alerts: list[dict[str, Any]]
    pending: list[dict[str, Any]]


class ApprovalView:
    """The approval page: a portfolio picker, the freeze banner and open alerts, one card per
    pending recommendation, and a status area that says what each action did."""

    def __init__(self, engine: Engine | str | None = None, *, portfolio: str | None = None) -> None:
        self.engine = resolve_engine(engine)
        self.cards: dict[int, RecommendationCard] = {}
        self.history: list[str] = []
        self.card_messages: dict[int, str] = {}
        self._wanted = portfolio
        self._first = True
        self._drawing = False

        self.portfolio_picker = w.Dropdown(
            options=[ALL_PORTFOLIOS],
            value=ALL_PORTFOLIOS,
            description="Portfolio",
            layout=w.Layout(width="320px"),
        )
        self.portfolio_picker.add_class("ta-portfolio")
        self.show_closed = w.Checkbox(
            value=False, description="Show executed and ignored", indent=False, layout=w.Layout(width="auto")
        )
        self.show_closed.add_class("ta-show-closed")
        self.refresh_button = button(
            "Refresh", "ta-refresh", icon="refresh", tooltip="Read the database again"
        )
        self.who = w.HTML()
        self.banner, self.alerts, self.status, self.summary = w.HTML(), w.HTML(), w.HTML(), w.HTML()
        for widget, css in (
            (self.banner, "ta-banner"),
            (self.alerts, "ta-alerts"),
            (self.status, "ta-status"),
        ):
            widget.add_class(css)
        self.cards_box = w.VBox([])
        self.cards_box.add_class("ta-cards")
        header = w.HBox(
            [self.portfolio_picker, self.show_closed, self.refresh_button, self.who],
            layout=w.Layout(align_items="center", flex_flow="row wrap"),
        )
        self.widget = w.VBox(
            [
                w.HTML(ah.STYLE + "<h2>Approvals</h2>"),
                header,
                self.banner,
                self.alerts,
                self.status,
                self.summary,
                self.cards_box,
            ]
        )
        self.widget.add_class("ta-approval")
        self.refresh()
        self.portfolio_picker.observe(self.on_change, names="value")
        self.show_closed.observe(self.on_change, names="value")
        self.refresh_button.on_click(self.on_change)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    @property
    def portfolio(self) -> str | None:
        value = self.portfolio_picker.value
        return None if value in (None, ALL_PORTFOLIOS) else value

    # --- doing ---------------------------------------------------------------------------------
    def say(self, message: str, kind: str = OK, rid: int | None = None) -> None:
        """Put a line at the top of the status area (the older ones stay below, greyed), and
        under the recommendation's card, where the button was pressed."""
        line = message_html(message, kind)
        self.history = [line, *self.history][:HISTORY]
        self.status.value = "".join(self.history)
        if rid is not None:
            self.card_messages[rid] = line
            if rid in self.cards:
                self.cards[rid].message.value = line

    def act(
        self, verb: str, rid: int, service: Callable[..., Any], *, alone: bool = False, **arguments: Any
    ) -> bool:
        """Call ``service(session, actor=..., recommendation_id=rid, **arguments)`` in one unit of
        work, or with ``alone`` ``service(engine, actor_id=..., recommendation_id=rid)`` (a service
        that opens its own transactions). An argument given as a function is called inside, so
        bad input typed in the page is reported like the service's own refusals. Says what was
        done, or why it was refused, then reads the page again."""
        try:
            with audit_trail() as actions:
                if alone:
                    actor_id = self.read(lambda _s, actor: actor.user_id, quiet=False)
                    result = service(self.engine, actor_id=actor_id, recommendation_id=rid, **arguments)
                else:
                    with work(self.engine) as (session, actor):
                        values = {k: v() if callable(v) else v for k, v in arguments.items()}
                        result = service(session, actor=actor, recommendation_id=rid, **values)
        except TradeAssistError as exc:
            self.say(f"Could not {verb} recommendation #{rid}: {'; '.join(error_lines(exc))}", ERROR, rid)
            return False
        except Exception as exc:  # a bug, not a user error: one line here, the traceback in the log
            log.exception("%s of recommendation %s failed", verb, rid)
            self.say(
                f"Could not {verb} recommendation #{rid}: unexpected {type(exc).__name__}: {exc}", ERROR, rid
            )
            return False
        detail = describe(result)
        audit = f" Audit: {', '.join(actions)}." if actions else ""
        self.say(
            f"Recommendation #{rid} {DONE.get(verb, verb)}{f' ({detail})' if detail else ''}.{audit}", OK, rid
        )
        self.refresh()
        return True

    def read(self, call: Callable[[Session, Actor], Any], *, quiet: bool = True) -> Any:
        """``call(session, actor)`` in a read-only unit of work. A user error is said in the
        status area (None returned), or with ``quiet=False`` raised."""
        try:
            with work(self.engine, readonly=True) as (session, actor):
                return call(session, actor)
        except TradeAssistError as exc:
            if not quiet:
                raise
            self.say("; ".join(error_lines(exc)), ERROR)
            return None

    # --- reading -------------------------------------------------------------------------------
    def on_change(self, _: Any = None) -> None:
        if not self._drawing:
            self.refresh()

    def refresh(self) -> None:
        """Read everything the page shows in one read-only unit of work and draw it again."""
        if not has_schema(self.engine):
            self.say(
                str(ConfigError("the database has no schema yet: run `make demo` or `tradeassist init`")),
                ERROR,
            )
            return
        page = self.read(self._gather)
        if page is not None:
            self._draw(page)

    def _gather(self, session: Session, actor: Actor) -> Page:
        names = portfolio_names(session, actor)
        wanted = self.portfolio
        if self._first:  # the portfolio asked for, else the only one there is
            wanted = self._wanted or (names[0] if len(names) == 1 else None)
        chosen = wanted if wanted in names else None
        frozen = []
        for name in [chosen] if chosen is not None else names:
            status = governance.portfolio_freeze_status(session, actor=actor, portfolio=name)
            if status.is_frozen:
                frozen.append((name, status))
        return Page(
            email=actor.email,
            names=names,
            chosen=chosen,
            frozen=frozen,
            alerts=governance.list_alerts(session, actor=actor, portfolio=chosen, open_only=True),
            pending=recommendations.pending_recommendations(
                session, actor=actor, portfolio=chosen, include_closed=self.show_closed.value
            ),
        )

    def _draw(self, page: Page) -> None:
        self._first, self._drawing = False, True
        try:
            options = [ALL_PORTFOLIOS, *page.names]
            if list(self.portfolio_picker.options) != options:
                self.portfolio_picker.options = options
            self.portfolio_picker.value = page.chosen if page.chosen is not None else ALL_PORTFOLIOS
        finally:
            self._drawing = False
        self.who.value = (
            f"<span class='ta-muted'>acting as {ah.esc(page.email)}{dashboard_link()}{logout_link()}</span>"
        )
        self.banner.value = ah.freeze_banner_html(page.frozen)
        self.alerts.value = ah.alerts_html(page.alerts)
        self.summary.value = ah.summary_html(page.pending)
        self.cards = {card.rid: card for card in (RecommendationCard(self, r) for r in page.pending)}
        self.cards_box.children = grouped(page.pending, self.cards)


def grouped(pending: list[dict[str, Any]], cards: Mapping[int, RecommendationCard]) -> list[w.Widget]:
    """The cards in the page's order, a household's together (its accounts in run order) under
    a head showing the household's plan and its allocation before and after per sleeve."""
    children: list[w.Widget] = []
    seen: set[int] = set()
    for row in pending:
        group = row.get("household_run_id")
        if group is None:
            children.append(cards[int(row["recommendation_id"])].widget)
            continue
        if group in seen:
            continue
        seen.add(group)
        members = sorted(
            (r for r in pending if r.get("household_run_id") == group),
            key=lambda r: int(r.get("run_id") or 0),
        )
        summary = (members[0].get("rationale") or {}).get("household") or {}
        head = w.HTML(household_header_html(summary, members))
        head.add_class("ta-household-head")
        box = w.VBox([head, *(cards[int(r["recommendation_id"])].widget for r in members)])
        box.add_class("ta-household")
        box.add_class(f"ta-household-{group}")
        children.append(box)
    return children
