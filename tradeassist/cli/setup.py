"""``tradeassist setup``: a broker account's first steps, one command each.

Setting up an account with the single commands took some twenty of them: an ``instrument
add`` and a ``listing add`` per holding, a mapping file for AJ Bell's descriptions, one
``ledger import`` per year in date order, a ``prices import`` per listing, the ``strategy
add`` before the ``constituent add`` of every listing (the sleeves come from the policy).
These commands do each step over one file the user writes, ``listings.csv``, or a list of
files, in one transaction, through the same services. The README walks through them.

``listings.csv`` has one row per listing (a listing may take more rows, one per description
the broker uses for it; its other cells need be on one row only)::

    description,isin,ticker,exchange,currency,quote_scale,type,name,sleeve,provider,provider_symbol

``ticker`` and ``exchange`` are required on every row; ``isin``, ``currency`` and
``quote_scale`` on one row of each listing. ``type`` defaults to ETF.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..core.errors import FileFormatError, ValidationError
from ..core.money import format_gbp
from .context import FORMAT_OPTION_HELP, PORTFOLIO_OPTION, format_options, info, work

if TYPE_CHECKING:
    from sqlmodel import Session

    from ..providers.brokers.base import ParsedFile

setup_app = typer.Typer(
    help="A broker account's first steps, one command each: listings, strategy, imports, prices.",
    no_args_is_help=True,
)

COLUMNS = (
    "description",
    "isin",
    "ticker",
    "exchange",
    "currency",
    "quote_scale",
    "type",
    "name",
    "sleeve",
    "provider",
    "provider_symbol",
)
NEEDED = ("isin", "currency", "quote_scale")  # on one row of each listing
LISTINGS_OPTION = typer.Option(
    ..., "--listings", help="Your listings.csv (see `tradeassist setup listings --help`)."
)


@dataclass
class ListingSpec:
    """One listing of ``listings.csv``, merged from its rows."""

    line: int  # its first row
    ticker: str
    exchange: str
    cells: dict[str, str] = field(default_factory=dict)
    descriptions: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.ticker} on {self.exchange}"

    def get(self, column: str) -> str | None:
        return self.cells.get(column) or None


def read_listings(path: Path) -> list[ListingSpec]:
    """The listings of the file, in its order; every bad line named in one error."""
    from ..providers.brokers.base import csv_rows, read_source

    src = read_source(path)
    rows = list(csv_rows(src))
    header = [cell.strip().lower() for cell in rows[0][1]] if rows else []
    unknown = [c for c in header if c not in COLUMNS]
    missing = [c for c in ("ticker", "exchange", *NEEDED) if c not in header]
    if unknown or missing:
        why = (f"unknown column(s) {', '.join(unknown)}; " if unknown else "") + (
            f"missing column(s) {', '.join(missing)}; " if missing else ""
        )
        raise FileFormatError(src.name, [(1, f"{why}the columns are {','.join(COLUMNS)}")])
    specs: dict[tuple[str, str], ListingSpec] = {}
    problems: list[tuple[int | None, str]] = []
    for line, row in rows[1:]:
        cells = {c: v.strip() for c, v in zip(header, row, strict=False) if v.strip()}
        if not cells:
            continue
        ticker, exchange = cells.pop("ticker", "").upper(), cells.pop("exchange", "").upper()
        if not ticker or not exchange:
            problems.append((line, "ticker and exchange are required on every row"))
            continue
        spec = specs.setdefault((ticker, exchange), ListingSpec(line, ticker, exchange))
        if description := cells.pop("description", None):
            spec.descriptions.append(description)
        for column, value in cells.items():
            known = spec.cells.setdefault(column, value)
            if known.upper() != value.upper():
                problems.append((line, f"{spec.name}: {column} {value!r}, but {known!r} on an earlier row"))
    for spec in specs.values():
        if absent := [c for c in NEEDED if not spec.get(c)]:
            problems.append((spec.line, f"{spec.name}: no {', '.join(absent)} on any of its rows"))
    if problems:
        raise FileFormatError(src.name, problems)
    if not specs:
        raise FileFormatError(src.name, [(None, "has a header but no listings")])
    return list(specs.values())


# --------------------------------------------------------------------------------------------
# setup listings
# --------------------------------------------------------------------------------------------
@setup_app.command("listings")
def setup_listings(file: Path = typer.Argument(..., help="listings.csv")) -> None:
    """Register every instrument and listing of listings.csv.

    Those registered already are checked, not added again. Columns: description (how your
    broker's export names it; AJ Bell), isin, ticker, exchange (a MIC such as XLON), currency
    (the trading currency), quote_scale (GBX for pence, GBP, USD, ...), type (ETF, STOCK,
    ETC, FUND; default ETF), name, sleeve (for `setup strategy`), provider and provider_symbol
    (for `prices refresh`)."""
    from ..services import registry

    specs = read_listings(file)
    with work() as (session, actor):
        for spec in specs:
            isin = spec.get("isin") or ""
            added = ""
            if registry.find_instrument(session, isin) is None:
                registry.add_instrument(
                    session,
                    actor=actor,
                    isin=isin,
                    instrument_type=spec.get("type") or "ETF",
                    name=spec.get("name"),
                )
                added = f", instrument {isin.upper()} added"
            listing = registry.find_listing(session, spec.ticker, spec.exchange)
            if listing is not None:
                _same_listing(session, spec, registry.listing_row(session, listing))
                typer.echo(f"{spec.name}: registered already")
                continue
            registry.add_listing(
                session,
                actor=actor,
                isin=isin,
                ticker=spec.ticker,
                exchange=spec.exchange,
                currency=spec.get("currency") or "",
                quote_scale=spec.get("quote_scale") or "",
                provider_symbol=spec.get("provider_symbol"),
                price_provider=spec.get("provider"),
            )
            typer.echo(f"listing added: {spec.name} ({spec.get('quote_scale')}){added}")


def _same_listing(session: Session, spec: ListingSpec, row: dict[str, Any]) -> None:
    """A listing registered already must be the one the file describes (they never change)."""
    for column, key in (("isin", "isin"), ("currency", "trading_currency"), ("quote_scale", "quote_scale")):
        if (spec.get(column) or "").upper() != str(row[key]).upper():
            raise ValidationError(
                f"line {spec.line}: {spec.name} is registered already with {column} {row[key]}, "
                f"not {spec.get(column)} (a listing never changes: fix the file)"
            )


# --------------------------------------------------------------------------------------------
# setup strategy
# --------------------------------------------------------------------------------------------
@setup_app.command("strategy")
def setup_strategy(
    portfolio: str = PORTFOLIO_OPTION,
    label: str = typer.Option(..., "--label", help="The new version's label, e.g. isa-1."),
    policy: Path = typer.Option(..., "--policy", help="policy.json"),
    manifesto: Path = typer.Option(..., "--manifesto", help="manifesto.md"),
    listings: Path = LISTINGS_OPTION,
) -> None:
    """Add a DRAFT strategy for the portfolio and map its listings to their sleeves.

    The listings are mapped by the `sleeve` column of listings.csv; a listing without one
    stays outside the strategy. Approve the version with `tradeassist strategy approve LABEL`."""
    from ..policy import parse_policy
    from ..services import strategy
    from ..services.access import portfolio_for
    from .strategy import _read

    specs = read_listings(listings)
    policy_text, manifesto_text = _read(policy, "policy"), _read(manifesto, "manifesto")
    with work() as (session, actor):
        folio = portfolio_for(session, actor, portfolio, "map constituents")
        version = strategy.add_strategy(
            session,
            actor=actor,
            label=label,
            policy_text=policy_text,
            manifesto=manifesto_text,
            portfolios=[folio.name],
        )
        typer.echo(
            f"strategy added: {version.version_label} (DRAFT, policy {version.policy_sha256[:12]}) "
            f"for {folio.name!r}"
        )
        rows = strategy.constituent_rows(session, folio)
        current = {(r["ticker"], r["exchange"]): r["sleeve"] for r in rows}
        for spec in specs:
            sleeve = (spec.get("sleeve") or "").upper()
            was = current.get((spec.ticker, spec.exchange))
            if not sleeve or sleeve == was:
                continue
            change = strategy.add_constituent if was is None else strategy.move_constituent
            change(
                session,
                actor=actor,
                portfolio=folio.name,
                ticker=spec.ticker,
                exchange=spec.exchange,
                sleeve=sleeve,
            )
            if was is None:
                typer.echo(f"constituent added: {spec.name} -> {sleeve}")
            else:
                typer.echo(f"constituent moved: {spec.name} -> {sleeve} (was {was})")
            current[(spec.ticker, spec.exchange)] = sleeve
        targets = set(parse_policy(policy_text).sleeve_targets)
        for sleeve in sorted(targets - set(current.values())):
            info(
                f"warning: sleeve {sleeve} has no listing in {folio.name!r}: "
                f"give one that sleeve in {listings.name}"
            )
        for (ticker, exchange), sleeve in sorted(current.items()):
            if sleeve not in targets:
                info(f"note: {ticker} on {exchange} is in sleeve {sleeve}, which has no target: left alone")


# --------------------------------------------------------------------------------------------
# setup import
# --------------------------------------------------------------------------------------------
_KIND_WORDS = re.compile(r"transaction[\s_-]*history|cash[\s_-]*statements?", re.IGNORECASE)


@setup_app.command("import")
def setup_import(
    files: list[Path] = typer.Argument(..., help="Every export of the account, in any order."),
    portfolio: str = PORTFOLIO_OPTION,
    fmt: str = typer.Option(
        ..., "--format", help="ajbell, canonical, trading212, freetrade or investengine."
    ),
    listings: Path = typer.Option(
        None, "--listings", help="AJ Bell: listings.csv, whose descriptions name the listings."
    ),
    force: bool = typer.Option(
        False, "--force", help="Record ISA subscriptions even over the tax year's allowance."
    ),
    option: list[str] = typer.Option(None, "--option", help=FORMAT_OPTION_HELP),
) -> None:
    """Import every export of an account, oldest first.

    Each is one batch (as `ledger import`), all in one transaction. AJ Bell: each transaction
    history goes with the cash statement of the same name but for its kind
    (ISA-2023-transactionhistory.csv with ISA-2023-cashstatements.csv); one of each pairs
    whatever their names."""
    from ..services import imports

    fmt = fmt.strip().lower()
    if fmt not in imports.FORMATS:
        raise ValidationError(f"--format {fmt!r}: expected one of {', '.join(imports.FORMATS)}")
    options = format_options(option)
    if fmt == "ajbell" and options:
        raise ValidationError(f"the ajbell format takes no --option (got {', '.join(options)})")
    if fmt == "ajbell":
        mapping = (
            {d: (s.ticker, s.exchange) for s in read_listings(listings) for d in s.descriptions}
            if listings
            else {}
        )
        parsed = _parse_ajbell(files, mapping)
    elif listings is not None:
        raise ValidationError("--listings is for the ajbell format only")
    else:
        parsed = [imports.parse_file(f, format=fmt, options=options) for f in files]
    parsed.sort(key=lambda p: (p.entries[0].entry_time, p.name))  # a parsed file is never empty
    with work() as (session, actor):
        for one in parsed:
            result = imports.import_parsed(session, actor=actor, portfolio=portfolio, parsed=one, force=force)
            cash = format_gbp(result.cash_balance)
            if result.already_imported:
                typer.echo(f"{result.file}: imported before; nothing added (cash {cash})")
                continue
            extra = f", {result.skipped} already recorded" if result.skipped else ""
            typer.echo(
                f"{result.file}: {result.added} entries added (batch {result.batch_id}{extra}); cash {cash}"
            )


def _pairs(files: list[Path], kinds: dict[Path, int]) -> list[list[Path]]:
    """The files to parse together: each history with its statement (0: a history, 1: a
    statement), the history first. Imported apart, a history and its statement would each
    post the trades, so where there are both every file must find its pair."""
    if len(files) == len(set(kinds.values())):  # one history, one statement or one of each
        return [sorted(files, key=kinds.__getitem__)]
    if len(set(kinds.values())) == 1:  # only histories, or only statements
        return [[path] for path in files]
    groups: dict[str, list[Path]] = {}
    for path in sorted(files, key=kinds.__getitem__):
        groups.setdefault(_KIND_WORDS.sub("", path.name).lower(), []).append(path)
    unpaired = [p.name for g in groups.values() if [kinds[p] for p in g] != [0, 1] for p in g]
    if unpaired:
        raise ValidationError(
            f"{', '.join(unpaired)}: cannot tell which transaction history goes with which cash "
            "statement: name each pair PERIOD-transactionhistory.csv and PERIOD-cashstatements.csv"
        )
    return list(groups.values())


def _parse_ajbell(files: list[Path], mapping: dict[str, tuple[str, str]]) -> list[ParsedFile]:
    """Each history with its statement, parsed; every description no listing names, in one error."""
    from ..providers.brokers import UnmappedDescriptionsError, get_broker_format
    from ..providers.brokers.ajbell_files import identify
    from ..providers.brokers.base import read_source

    kinds = {path: 0 if identify([read_source(path)])[0] is not None else 1 for path in files}
    fmt, parsed, unmapped = get_broker_format("ajbell"), [], {}
    for group in _pairs(files, kinds):
        try:
            parsed.append(fmt.parse(*group, mapping=mapping))
        except UnmappedDescriptionsError as exc:
            unmapped.update(dict.fromkeys(exc.descriptions))
    if unmapped:
        shown = ", ".join(repr(d) for d in sorted(unmapped, key=str.lower))
        raise ValidationError(
            f"no listing has the description(s) {shown}: add a row for each to your listings.csv "
            "(description,isin,ticker,...), run `tradeassist setup listings` with it, and import again"
            + ("" if mapping else " with --listings")
        )
    return parsed


# --------------------------------------------------------------------------------------------
# setup prices
# --------------------------------------------------------------------------------------------
@setup_app.command("prices")
def setup_prices(
    files: list[Path] = typer.Argument(..., help="Price files named by symbol, e.g. VWRP.L.json."),
    fmt: str = typer.Option(
        None, "--format", help="stooq, twelvedata, yahoo, csv or json (default: by extension)."
    ),
) -> None:
    """Import price files, each for the listing its name gives.

    The name is the listing's provider symbol and an extension (VWRP.L.json: provider_symbol
    VWRP.L), else its ticker (VWRP.csv; VWRP.L.json when no provider symbol matches)."""
    from ..services import prices, registry
    from .market import _report_quality

    with work() as (session, actor):
        rows = registry.list_listings(session)
        for path in files:
            row = _listing_for(path, rows)
            kind = fmt or {".json": "json", ".csv": "csv"}.get(path.suffix.lower())
            if kind is None:
                raise ValidationError(f"{path.name}: give --format (stooq, twelvedata, yahoo, csv or json)")
            result = prices.import_price_file(
                session, actor=actor, path=path, ticker=row["ticker"], exchange=row["exchange"], fmt=kind
            )
            typer.echo(
                f"{result.listing} from {path.name}: {result.received} prices read, {result.inserted} new, "
                f"{result.unchanged} already stored"
            )
            if result.level_basis.startswith("unverified") and result.inserted:
                info(f"note: {result.listing} has no trade in your book to check these prices' unit against")
            _report_quality(result)


def _listing_for(path: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    symbol = path.name[: -len(path.suffix)] if path.suffix else path.name
    found = [r for r in rows if (r["provider_symbol"] or "").upper() == symbol.upper()]
    found = found or [r for r in rows if r["ticker"] == symbol.split(".")[0].upper()]
    if len(found) == 1:
        return found[0]
    names = ", ".join(f"{r['ticker']} on {r['exchange']}" for r in found)
    which = f"{len(found)} listings ({names}) have"
    raise ValidationError(
        f"{path.name}: {which if found else 'no listing has'} the provider symbol or ticker {symbol!r}: "
        "import it with `tradeassist prices import FILE --ticker T --exchange X --format F`"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(setup_app, name="setup")
