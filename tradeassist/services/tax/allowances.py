"""The year's allowances against what the book shows was used: ISA subscriptions, pension
contributions, dividends and interest in general accounts, the CGT exempt amount.

* ISA subscriptions: contributions paid into the owner's ISAs in the tax year (a transfer in
  from another ISA is a TRANSFER, not a subscription). A correction's reversal cancels the
  contribution it reverses. A contribution that would take the year over the allowance is
  refused unless forced (``isa_subscription_problems``), with the figures.
* Pension: personal contributions into the owner's SIPPs are paid net of basic-rate relief;
  grossed up (× 1.25) they count against the annual allowance. Relief the provider claimed
  and paid in (a contribution whose notes say "tax relief") is shown, not counted twice.
* Dividends and interest received in the owner's general accounts (ISA and SIPP income is
  tax-free) against the dividend allowance and the personal savings allowance (the basic-rate
  figure; £500 for a higher-rate taxpayer, none for additional rate).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, select

from ...core.enums import EntryType, TaxTreatment
from ...core.money import ZERO, format_gbp
from ...core.timeutil import london_date
from ...db.models import LedgerEntry, Portfolio, User
from ...engine.income import DIVIDEND, INTEREST, IncomeEntry, classify_all
from ...engine.tax.years import TaxYear, parse_tax_year, tax_year_of
from .cgt import matching_for, totals
from .events import load_tax_inputs, owner_portfolios, taxpayer

RELIEF_AT_SOURCE = Decimal("1.25")  # a net personal contribution of £80 is £100 gross
NEAR = Decimal("0.9")  # warn from 90% of an allowance
SAVINGS_NOTE = (
    "a basic-rate taxpayer's personal savings allowance: £500 at higher rate, none at additional rate"
)


def status(used: Decimal, limit: Decimal) -> str:
    """``over`` the limit, ``near`` it (90% or more), else ``within``."""
    if used > limit:
        return "over"
    return "near" if limit and used >= limit * NEAR else "within"


def _entries(session: Session, portfolios: Sequence[Portfolio], year: TaxYear) -> list[LedgerEntry]:
    ids = [p.portfolio_id for p in portfolios]
    if not ids:
        return []
    rows = session.exec(
        select(LedgerEntry)
        .where(col(LedgerEntry.portfolio_id).in_(ids))
        .order_by(col(LedgerEntry.entry_time))
    ).all()
    return [e for e in rows if year.contains(london_date(e.entry_time))]


def _is_relief(e: LedgerEntry) -> bool:
    return "tax relief" in (e.notes or "").casefold()


def allowances_report(
    session: Session, *, actor: User, tax_year: str, owner_email: str | None = None
) -> dict[str, Any]:
    """``tax allowances``: each allowance of the year, what was used, what is left."""
    year = parse_tax_year(tax_year)
    owner = taxpayer(session, actor, owner_email)
    portfolios = owner_portfolios(session, actor, owner, "see tax figures")
    name = {p.portfolio_id: p.name for p in portfolios}
    isas = [p for p in portfolios if p.tax_treatment == TaxTreatment.ISA]
    sipps = [p for p in portfolios if p.tax_treatment == TaxTreatment.SIPP]
    general = [p for p in portfolios if p.tax_treatment == TaxTreatment.GIA]

    subscriptions = [e for e in _entries(session, isas, year) if e.entry_type == EntryType.CONTRIBUTION]
    subscribed = sum((e.cash_amount_base for e in subscriptions), ZERO)
    pension_entries = [e for e in _entries(session, sipps, year) if e.entry_type == EntryType.CONTRIBUTION]
    net = sum((e.cash_amount_base for e in pension_entries if not _is_relief(e)), ZERO)
    relief = sum((e.cash_amount_base for e in pension_entries if _is_relief(e)), ZERO)
    gross = (net * RELIEF_AT_SOURCE).quantize(Decimal("0.01"))
    dividends, interest = _income(_entries(session, general, year))

    inputs = load_tax_inputs(session, actor, owner)
    cgt_totals = totals([d for d in matching_for(inputs).disposals if year.contains(d.day)], year)

    result: dict[str, Any] = {
        "tax_year": year.label,
        "owner": owner.email,
        "isa": {
            "allowance": year.isa_allowance,
            "subscribed": subscribed,
            "left": max(ZERO, year.isa_allowance - subscribed),
            "status": status(subscribed, year.isa_allowance),
            "by_portfolio": _by_portfolio(subscriptions, name),
        },
        "pension": {
            "annual_allowance": year.pension_annual_allowance,
            "personal_net": net,
            "personal_gross": gross,
            "tax_relief_recorded": relief,
            "left": max(ZERO, year.pension_annual_allowance - gross),
            "status": status(gross, year.pension_annual_allowance),
            "by_portfolio": _by_portfolio([e for e in pension_entries if not _is_relief(e)], name),
        },
        "dividends": {
            "allowance": year.dividend_allowance,
            "received": dividends,
            "left": max(ZERO, year.dividend_allowance - dividends),
            "status": status(dividends, year.dividend_allowance),
        },
        "interest": {
            "allowance": year.savings_allowance,
            "received": interest,
            "left": max(ZERO, year.savings_allowance - interest),
            "status": status(interest, year.savings_allowance),
            "note": SAVINGS_NOTE,
        },
        "capital_gains": {
            "annual_exempt_amount": year.annual_exempt_amount,
            "net_gain": cgt_totals["net_gain"],
            "used": min(max(cgt_totals["net_gain"], ZERO), year.annual_exempt_amount),
            "left": cgt_totals["annual_exempt_amount_left"],
            "status": status(max(cgt_totals["net_gain"], ZERO), year.annual_exempt_amount),
        },
    }
    result["warnings"] = warnings(result)
    return result


def _income(entries: Sequence[LedgerEntry]) -> tuple[Decimal, Decimal]:
    """Dividends and interest among ``entries``; a reversal counts as the kind it reverses."""
    rows = [
        IncomeEntry(
            e.ledger_entry_id or 0,
            e.entry_type,
            e.notes,
            e.listing_id,
            e.cash_amount_base,
            e.corrects_entry_id,
        )
        for e in entries
    ]
    classified = classify_all(rows, ())
    cash = {row.key: row.cash for row in rows}
    dividends = sum((cash[k] for k, c in classified.items() if c.kind == DIVIDEND), ZERO)
    interest = sum((cash[k] for k, c in classified.items() if c.kind == INTEREST), ZERO)
    return dividends, interest


def _by_portfolio(entries: Iterable[LedgerEntry], name: dict[int | None, str]) -> list[dict[str, Any]]:
    sums: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for e in entries:
        sums[name[e.portfolio_id]] += e.cash_amount_base
    return [{"portfolio": k, "amount": v} for k, v in sorted(sums.items())]


LABELS = {
    "isa": ("ISA subscriptions", "subscribed", "allowance"),
    "pension": ("Pension contributions (gross)", "personal_gross", "annual_allowance"),
    "dividends": ("Dividends in general accounts", "received", "allowance"),
    "interest": ("Interest in general accounts", "received", "allowance"),
    "capital_gains": ("Capital gains less losses", "net_gain", "annual_exempt_amount"),
}


def warnings(result: dict[str, Any]) -> list[str]:
    """One sentence per allowance that is used up or nearly so."""
    lines = []
    for key, (label, used_key, limit_key) in LABELS.items():
        part = result[key]
        used, limit = part[used_key], part[limit_key]
        if part["status"] == "over":
            lines.append(
                f"{label} {format_gbp(used)} are over the {format_gbp(limit)} allowance "
                f"by {format_gbp(used - limit)}"
            )
        elif part["status"] == "near":
            lines.append(
                f"{label} {format_gbp(used)}: only {format_gbp(limit - used)} of {format_gbp(limit)} left"
            )
    return lines


def isa_subscription_problems(
    session: Session, portfolio: Portfolio, new: Sequence[tuple[int, date, Decimal]]
) -> list[tuple[int, str]]:
    """Which of the contributions ``new`` (index, day, amount) into ISA ``portfolio`` would take
    the owner's subscriptions for a tax year over the allowance, and why: the first one to
    cross it in each year (none when nothing would)."""
    if portfolio.tax_treatment != TaxTreatment.ISA or not new:
        return []
    isas = session.exec(
        select(Portfolio).where(
            col(Portfolio.owner_user_id) == portfolio.owner_user_id,
            col(Portfolio.tax_treatment) == TaxTreatment.ISA,
        )
    ).all()
    paid: dict[str, Decimal] = {}
    crossed: set[str] = set()
    problems = []
    for index, day, amount in sorted(new, key=lambda n: n[1]):
        year = tax_year_of(day)
        if year.label not in paid:
            stored = _entries(session, isas, year)
            paid[year.label] = sum(
                (e.cash_amount_base for e in stored if e.entry_type == EntryType.CONTRIBUTION), ZERO
            )
        before = paid[year.label]
        paid[year.label] = after = before + amount
        if amount > 0 and after > year.isa_allowance and year.label not in crossed:
            crossed.add(year.label)
            problems.append(
                (
                    index,
                    f"ISA subscriptions for {year.label} would be {format_gbp(after)} ({format_gbp(before)} "
                    f"paid in before this {format_gbp(amount)}), over the {format_gbp(year.isa_allowance)} "
                    f"allowance by {format_gbp(after - year.isa_allowance)}; record it anyway with --force",
                )
            )
    return problems
