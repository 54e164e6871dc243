"""One price per listing and day: which source values the portfolio, and sources that disagree.

Several sources may hold a usable close of one listing on one day (a provider's download, a
price file, a second provider). The one that values the portfolio is chosen by the listing's
**source priority**:

1. the sources named in the listing's ``source_priority`` (``listing set --source-priority``),
   in that order;
2. then the listing's configured provider (``price_provider``);
3. then prices derived from a broker's files (sources named after a broker);
4. then any other provider;
5. then price files (``csv``, ``json``).

Within one rank the newest stored point wins. Superseded points (``prices import --replace``)
never take part. Closes from different sources that differ by more than
``DISAGREEMENT_TOLERANCE`` (2 %) of the lower one on the same day raise one WARN alert per
listing (``PRICE_SOURCES_DISAGREE``; nothing is frozen): the chosen source still values the
portfolio, and the alert says which one and by how much the others differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ..core.money import format_gbp

DISAGREEMENT_TOLERANCE = Decimal("0.02")
DISAGREEMENT_CODE = "PRICE_SOURCES_DISAGREE"
FILE_SOURCES = frozenset({"csv", "json"})
BROKER_SOURCES = frozenset({"broker", "ajbell", "trading212", "freetrade", "investengine"})
DEFAULT_ORDER_TEXT = (
    "your listed sources, then the listing's provider, then broker prices, then other providers, then files"
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A usable, current close of one listing on one day."""

    price_point_id: int
    source: str
    price_gbp: Decimal


def source_rank(source: str, *, provider: str | None, priority: Sequence[str] | None) -> tuple[int, int]:
    """Lower ranks value the portfolio first (see the module docstring)."""
    name = source.strip().lower()
    named = [p.strip().lower() for p in priority or ()]
    if name in named:
        return (0, named.index(name))
    if provider is not None and name == provider.strip().lower():
        return (1, 0)
    if name in BROKER_SOURCES or name.startswith("broker"):
        return (2, 0)
    if name in FILE_SOURCES:
        return (4, 0)
    return (3, 0)


def choose(
    candidates: Iterable[Candidate], *, provider: str | None, priority: Sequence[str] | None
) -> Candidate | None:
    """The candidate that values the portfolio: best rank, then the newest stored point."""
    return min(
        candidates,
        key=lambda c: (source_rank(c.source, provider=provider, priority=priority), -c.price_point_id),
        default=None,
    )


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A day on which the sources' closes differ by more than the tolerance."""

    day: date
    chosen: Candidate
    others: tuple[Candidate, ...]

    @property
    def spread(self) -> Decimal:
        """The largest relative difference from the chosen close (0.08 is 8 %)."""
        return max(
            abs(o.price_gbp - self.chosen.price_gbp) / min(o.price_gbp, self.chosen.price_gbp)
            for o in self.others
        )


def disagreements(
    by_day: dict[date, list[Candidate]],
    *,
    provider: str | None,
    priority: Sequence[str] | None,
    tolerance: Decimal = DISAGREEMENT_TOLERANCE,
) -> list[Disagreement]:
    """The days whose closes from different sources differ by more than ``tolerance``."""
    found = []
    for day in sorted(by_day):
        candidates = by_day[day]
        if len({c.source for c in candidates}) < 2:
            continue
        chosen = choose(candidates, provider=provider, priority=priority)
        assert chosen is not None
        off = tuple(
            c
            for c in candidates
            if c.source != chosen.source
            and c.price_gbp > 0
            and abs(c.price_gbp - chosen.price_gbp) > tolerance * min(c.price_gbp, chosen.price_gbp)
        )
        if off:
            found.append(Disagreement(day, chosen, off))
    return found


def disagreement_message(listing_key: str, found: Sequence[Disagreement]) -> str:
    """One sentence for the investor: how many days, the first example, what values the portfolio."""
    first = found[0]
    others = ", ".join(f"{c.source} {format_gbp(c.price_gbp, exact=True)}" for c in first.others)
    days = "1 day" if len(found) == 1 else f"{len(found)} days"
    span = first.day.isoformat() if len(found) == 1 else f"{first.day} to {found[-1].day}"
    return (
        f"{listing_key}: price sources disagree by more than {DISAGREEMENT_TOLERANCE:%} on {days} ({span}); "
        f"on {first.day} {first.chosen.source} says {format_gbp(first.chosen.price_gbp, exact=True)} "
        f"and values the portfolio, {others}. Check which is right; if the chosen source is wrong, "
        "replace its price (`tradeassist prices import ... --replace --reason ...`) or change the "
        "listing's order (`tradeassist listing set ... --source-priority ...`)."
    )
