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
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import ipywidgets as w
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..core.errors import ConfigError, TradeAssistError
from ..core.money import decimal_str, round_cash
from ..db.migrate import current_revision
from ..db.models import AuditEvent, InstrumentListing, User
from ..services import governance, ledger, prices, recommendations, registry
from ..services.recommendations import Fill
from . import approval_html as ah
from .common import ERROR, OK, error_lines, message_html, portfolio_names, resolve_engine, work

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


# --------------------------------------------------------------------------------------------
# Plain helpers
# --------------------------------------------------------------------------------------------
@contextmanager
def audit_trail() -> Iterator[list[str]]:
    """The actions of the audit entries written while inside, as they are flushed (whichever
    session writes them: a service may open its own). A listener, because a session's identity
    map holds its objects weakly and would forget them."""
    actions: list[str] = []

    def seen(_session: Session, instance: Any) -> None:
        if isinstance(instance, AuditEvent):
            actions.append(instance.action)

    event.listen(Session, "pending_to_persistent", seen)
    try:
        yield actions
    finally:
        event.remove(Session, "pending_to_persistent", seen)


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


@dataclass(frozen=True)
class FillDefault:
    """What the fills grid starts with for one line: the recommendation's estimate."""

    ticker: str
    exchange: str
    action: str
    units: str
    price: str
    quote_unit: str
    fees: str
    consideration: str | None = None  # GBP, for a listing quoted in another currency


def fill_defaults(session: Session, recommendation: Mapping[str, Any]) -> list[FillDefault]:
    """One row per line to be done (suppressed lines are left out): the estimated units, the
    price per unit in the listing's quote unit (pence for GBX, from the line's own figures; a
    foreign listing's latest good close, with the line's GBP amount as the consideration) and
    the policy's fee per trade."""
    fee = ah.number((recommendation.get("constraints_report") or {}).get("fee_per_trade"))
    rows = []
    for line in recommendation.get("lines") or []:
        if line.get("suppressed_by_min_trade"):
            continue
        listing = registry.get_listing(session, line["ticker"], line["exchange"])
        units = ah.number(line.get("estimated_units"))
        amount = ah.number(line.get("amount_base"))
        price = quote_price(session, listing, amount / units if units and amount is not None else None)
        rows.append(
            FillDefault(
                ticker=line["ticker"],
                exchange=line["exchange"],
                action=ah.word(line["action"]),
                units=ah.units_text(units),
                price="" if price is None else decimal_str(price) or "",
                quote_unit="pence" if listing.quote_scale == "GBX" else listing.quote_scale,
                fees="" if fee is None else f"{fee:.2f}",
                consideration=None
                if listing.quote_scale in ("GBP", "GBX") or amount is None
                else decimal_str(round_cash(amount)),
            )
        )
    return rows


def quote_price(session: Session, listing: InstrumentListing, gbp_per_unit: Decimal | None) -> Decimal | None:
    """A unit's price in the listing's quote unit: the recommendation's own for pounds and
    pence, else the latest good close as quoted (None when there is none)."""
    if gbp_per_unit is not None and listing.quote_scale in ("GBP", "GBX"):
        scaled = gbp_per_unit * (100 if listing.quote_scale == "GBX" else 1)
        return scaled.quantize(Decimal("0.0001")).normalize()
    latest = prices.latest_good_prices(session, [listing.listing_id]).get(listing.listing_id)  # type: ignore[list-item]
    if latest is None:
        return None
    day = prices.list_prices(
        session, ticker=listing.ticker, exchange=listing.exchange, start=latest.as_of, end=latest.as_of
    )
    closes = [p["raw_price"] for p in day if p["is_close"] and p["usable"]]
    return closes[-1] if closes else None


def show(widget: w.Widget, visible: bool) -> None:
    widget.layout.display = None if visible else "none"


def shown(widget: w.Widget) -> bool:
    return widget.layout.display != "none"


def button(description: str, css: str, style: str = "", icon: str = "", tooltip: str = "") -> w.Button:
    made = w.Button(description=description, button_style=style, icon=icon, tooltip=tooltip or description)
    made.layout.width = "auto"
    made.add_class(css)
    return made


def text(css: str, value: str = "", description: str = "", width: str = "160px", label: str = "") -> w.Text:
    made = w.Text(
        value=value,
        description=description,
        placeholder=label,
        style={"description_width": "initial"},
        layout=w.Layout(width=width),
    )
    made.add_class(css)
    return made


# --------------------------------------------------------------------------------------------
# Widgets
# --------------------------------------------------------------------------------------------
class FillRow:
    """One editable line of the fills grid: done or not, units, price (quote unit), fees (£)."""

    def __init__(self, default: FillDefault) -> None:
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

    def __init__(self, view: ApprovalView, recommendation: Mapping[str, Any]) -> None:
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
        frozen, blocked = bool(recommendation.get("frozen")), bool(recommendation.get("blocked"))
        draft, open_ = self.status == "DRAFT", self.status in ("DRAFT", "REVIEWED")
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
        defaults = self.view.read(lambda s, a: fill_defaults(s, self.data))
        if defaults is not None:
            self.show_fills(defaults)

    def on_cancel_execution(self, _: Any = None) -> None:
        show(self.fills_box, False)

    # --- the fills grid ----------------------------------------------------------------------
    def show_fills(self, defaults: Sequence[FillDefault]) -> None:
        self.fill_rows = [FillRow(d) for d in defaults]
        self.fills_grid.children = [row.widget for row in self.fill_rows]
        show(self.fills_box, True)

    def fills(self) -> list[Fill]:
        """The ticked rows as typed (the service checks the numbers and names each bad one; a
        time that is not ISO 8601 is a ``ValidationError`` here)."""
        typed = self.executed_at.value.strip()
        executed_at = ledger.parse_entry_time(typed) if typed else None
        return [row.fill(executed_at) for row in self.fill_rows if row.include.value]


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

    def read(self, call: Callable[[Session, User], Any], *, quiet: bool = True) -> Any:
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
        if current_revision(self.engine) is None:
            self.say(
                str(ConfigError("the database has no schema yet: run `make demo` or `tradeassist init`")),
                ERROR,
            )
            return
        page = self.read(self._gather)
        if page is not None:
            self._draw(page)

    def _gather(self, session: Session, actor: User) -> Page:
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
        self.who.value = f"<span class='ta-muted'>acting as {ah.esc(page.email)}</span>"
        self.banner.value = ah.freeze_banner_html(page.frozen)
        self.alerts.value = ah.alerts_html(page.alerts)
        self.summary.value = ah.summary_html(page.pending)
        self.cards = {card.rid: card for card in (RecommendationCard(self, r) for r in page.pending)}
        self.cards_box.children = [card.widget for card in self.cards.values()]
