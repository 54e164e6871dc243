"""What the dashboard cannot value, in words: a holding is never valued at zero for want of a price.

Each listing held on days before its first usable close (none stored, or only flagged ones) is
named with its units, since when, and what to do (``missing_price_sentence``); the value chart
covers the latest stretch of days on which every holding has a price, or says why there is
none (``value_note``). Flagged closes that leave a held listing on an older price are named too
(``flagged_in_view``), and so are the holdings the allocation leaves out for want of a price
(``allocation_note``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd

from ..core.money import ZERO
from ..engine.value_series import LedgerEvent, PriceGap, ValuedSeries, units_held
from .dashboard_prices import PriceHistory


def sentence(text: str) -> str:
    """``text`` ending with a full stop (unless it ends with one already, or ! or ?)."""
    return text if text.endswith((".", "!", "?")) else f"{text}."


def long_date(day: date) -> str:
    """4 September 2022."""
    return f"{day.day} {day:%B %Y}"


def units_phrase(units: Decimal) -> str:
    """12 units; 1 unit; 0.5 units."""
    text = format(units.normalize(), "f")
    return f"{text} unit" if units == 1 else f"{text} units"


def _flags(rows: pd.DataFrame) -> str:
    flags = sorted({flag.strip() for text in rows["flags"] for flag in str(text).split(",") if flag.strip()})
    return ", ".join(flags) or "not usable"


def _closes_phrase(rows: pd.DataFrame) -> str:
    days = [pd.Timestamp(d).date() for d in rows.index]
    if len(days) == 1:
        return f"its close of {long_date(days[0])} is"
    return f"its {len(days)} closes from {long_date(min(days))} to {long_date(max(days))} are"


def _fix_flagged(rows: pd.DataFrame) -> str:
    them = "it" if len(rows) == 1 else "them"
    return (
        f"check {them} against the broker, then record the split with `tradeassist corporate-action add` "
        f"or accept the new level with `tradeassist prices accept-level`"
    )


def missing_price_sentence(gap: PriceGap, history: PriceHistory | None, portfolio: str) -> str:
    """One sentence: which listing, how many units, since when, and what to do.

    "XDWL on XLON (12 units) has no price from 4 September 2022: import prices with
    `tradeassist prices import FILE --ticker XDWL --exchange XLON --format csv`; it has no
    price provider, so `tradeassist prices refresh` skips it."
    """
    held = f"{gap.ticker} on {gap.exchange} ({units_phrase(gap.units)})"
    flagged = history.unusable(last=gap.until) if history is not None else pd.DataFrame()
    usable = "usable " if len(flagged) else ""
    command = f"`tradeassist prices import FILE --ticker {gap.ticker} --exchange {gap.exchange} --format csv`"
    if gap.first_close is None:
        when = f"{held} has no {usable}price from {long_date(gap.since)}"
    else:
        when = (
            f"{held} had no {usable}price from {long_date(gap.since)} to {long_date(gap.until)} "
            f"(its first usable close is on {long_date(gap.first_close)})"
        )
    if len(flagged):
        unused = f"{_closes_phrase(flagged)} flagged ({_flags(flagged)}) and not used"
        return f"{when}: {unused}; {_fix_flagged(flagged)}."
    if gap.first_close is not None:
        return f"{when}: import the earlier prices with {command}."
    if history is not None and history.provider:
        return (
            f'{when}: run `tradeassist prices refresh --portfolio "{portfolio}"` (its price provider '
            f"is {history.provider}) or import prices with {command}."
        )
    return (
        f"{when}: import prices with {command}; it has no price provider, so "
        f"`tradeassist prices refresh` skips it."
    )


def value_note(
    valued: ValuedSeries,
    histories: Mapping[str, PriceHistory],
    events: Sequence[LedgerEvent],
    portfolio: str,
    notes: list[str],
) -> str | None:
    """What the value chart leaves out, or why there is none; each sentence also goes to ``notes``."""
    missing = [missing_price_sentence(gap, histories.get(gap.listing), portfolio) for gap in valued.gaps]
    notes.extend(missing)
    parts = []
    if valued.values is None or valued.shown is None:
        parts.append("No value chart: no stretch of days has a price for every holding.")
    elif valued.gaps:
        first, last = valued.shown
        if last < valued.end:
            parts.append(
                f"The value chart covers {long_date(first)} to {long_date(last)} only: the latest days "
                f"on which every holding has a price."
            )
        else:
            parts.append(
                f"The value chart starts on {long_date(first)}, the first day from which every holding "
                f"has a price."
            )
    parts.extend(missing)
    if valued.values is not None and valued.shown is not None:
        flagged = flagged_in_view(valued.shown, histories, events)
        notes.extend(flagged)
        parts.extend(flagged)
    return " ".join(parts) or None


def flagged_in_view(
    shown: tuple[date, date], histories: Mapping[str, PriceHistory], events: Sequence[LedgerEvent]
) -> list[str]:
    """Held listings whose flagged closes in the chart's days leave them on an older close."""
    out = []
    for key, history in histories.items():
        rows = history.unusable(*shown)
        held = [d for d in (pd.Timestamp(x).date() for x in rows.index) if units_held(events, key, d) != ZERO]
        if not held:
            continue
        rows = rows[[pd.Timestamp(x).date() in held for x in rows.index]]
        out.append(flagged_sentence(history, rows, units_held(events, key, held[-1])))
    return out


def flagged_sentence(history: PriceHistory, rows: pd.DataFrame, units: Decimal) -> str:
    """A held listing's flagged closes (``rows``, of ``history.unusable``) in one sentence: which,
    why, and what to do."""
    return (
        f"{history.ticker} on {history.exchange} ({units_phrase(units)}): {_closes_phrase(rows)} flagged "
        f"({_flags(rows)}) and not used, so the value uses the last usable close before it; "
        f"{_fix_flagged(rows)}."
    )


def allocation_note(positions: Sequence[Any]) -> str | None:
    """The held listings the weights leave out for want of a price, in words."""
    unpriced = [p for p in positions if p.units > ZERO and p.price_gbp is None]
    if not unpriced:
        return None
    names = ", ".join(f"{p.ticker} on {p.exchange} ({units_phrase(p.units)})" for p in unpriced)
    return f"The allocation leaves out what has no price, never counting it as zero: {names}."
