"""An independent UK CGT calculator as an oracle for share matching: ``cgt-calc`` 1.14
(PyPI ``cgt-calc``, KapJI/capital-gains-calculator), used only in tests.

It reads only the engine's input type (``Trade``) and hands the trades to cgt-calc as raw
BUY/SELL broker transactions in GBP, built as its raw CSV parser builds them
(``cgt_calc/parsers/raw.py``: amount = -(price x quantity) - fees for a buy, price x quantity
- fees for a sell). One run over the whole history gives every disposal's gain, whatever tax
year the run reports (see ``run``).

Offline. For GBP transactions cgt-calc never needs an exchange rate, an ISIN lookup, a spin-off
source or a market price; the helpers that would fetch one are subclassed here to fail
loudly instead of touching the network or asking on stdin, so a run that would need one is an
error, not a silent fetch. cgt-calc prints its working; that is captured and dropped.

Arithmetic. cgt-calc works in ``Decimal``, at the default 28 significant digits as its CLI
does, and rounds each disposal's gain half up (away from zero) to the penny; the engine works
in exact fractions. So at an exact half-penny tie cgt-calc's finite-precision value may land
on either side: callers should look at the engine's ``exact_gain`` before calling a difference
a disagreement. Two faults of cgt-calc 1.14.0 would stop it on ordinary histories; what is done
about each is said at ``_Calculator`` and ``cgt_calc_gains``: neither changes a figure it gives.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cgt_calc.const import BED_AND_BREAKFAST_DAYS
from cgt_calc.currency_converter import CurrencyConverter
from cgt_calc.current_price_fetcher import CurrentPriceFetcher
from cgt_calc.dates import get_tax_year_start
from cgt_calc.initial_prices import InitialPrices
from cgt_calc.isin_converter import IsinConverter
from cgt_calc.main import CapitalGainsCalculator
from cgt_calc.model import ActionType, BrokerTransaction, CalculationEntry, CapitalGainsReport, Position
from cgt_calc.spin_off_handler import SpinOffHandler
from cgt_calc.transaction_log import has_key

from tradeassist.engine.tax.matching import Trade

CURRENCY = "GBP"
CLI_PRECISION = 28  # decimal's default context, which cgt-calc's CLI runs in
WIDE_PRECISION = 56
PENNY = Decimal("0.01")
BROKER = "oracle"

DisposalKey = tuple[datetime.date, str]  # (day, symbol); the symbol is the trade's ISIN


class OracleNeedsNetworkError(RuntimeError):
    """cgt-calc asked for something it could only fetch (never for GBP-only trades)."""


class _OfflineCurrencyConverter(CurrencyConverter):
    def _query_hmrc_api(self, date: datetime.date) -> None:
        raise OracleNeedsNetworkError(f"exchange rates for {date} (GBP needs none)")


class _OfflineIsinConverter(IsinConverter):
    def _fetch_live(self, isin: str) -> set[str]:
        raise OracleNeedsNetworkError(f"an ISIN lookup for {isin}")


class _OfflinePriceFetcher(CurrentPriceFetcher):
    def get_current_market_price(self, symbol: str) -> Decimal | None:
        raise OracleNeedsNetworkError(f"a current price for {symbol}")

    def get_closing_price(self, symbol: str, date: datetime.date) -> Decimal:
        raise OracleNeedsNetworkError(f"a closing price for {symbol} on {date}")


class _OfflineSpinOffHandler(SpinOffHandler):
    def get_spin_off_source(self, symbol: str, date: datetime.date, portfolio: dict[str, Position]) -> str:
        raise OracleNeedsNetworkError(f"a spin-off source for {symbol} on {date}")


class _Calculator(CapitalGainsCalculator):
    """cgt-calc's calculator with one bug of 1.14.0 kept out of its way.

    Its 30-day scan (``process_disposal``) goes on through the rest of the 30 days after a
    disposal is wholly matched, and at each later acquisition with units free it matches zero
    units: with the pool empty that divides 0 by 0 (``decimal.InvalidOperation``), otherwise
    it books a zero-unit bed-and-breakfast claim that the acquisition's own entry then fails
    its consistency check on (``AssertionError: Mismatch: 0 != 0 + 0 - cost``). So any sale
    bought back in full and then topped up within 30 days stops it. Here, while it matches a
    disposal, the acquisitions its scan would reach only after the disposal is wholly matched
    are taken out of its acquisition log (and put back after): the scan then matches exactly
    what it would have, and stops. Which units are free is read from its own logs, by its own
    rule; the gains are its own arithmetic.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gains: dict[DisposalKey, Decimal] = {}  # what each disposal's match returned

    def process_disposal(
        self, symbol: str, date_index: datetime.date
    ) -> tuple[Decimal, list[CalculationEntry], CalculationEntry | None]:
        after = self._after_fully_matched(symbol, date_index)
        hidden = {day: self.acquisition_list[day].pop(symbol) for day in after}
        try:
            result = super().process_disposal(symbol, date_index)
        finally:
            for day, acquisition in hidden.items():
                self.acquisition_list[day][symbol] = acquisition
        self.gains[(date_index, symbol)] = result[0]
        return result

    def _after_fully_matched(self, symbol: str, date_index: datetime.date) -> list[datetime.date]:
        left = self.disposal_list[date_index][symbol].quantity
        if has_key(self.acquisition_list, date_index, symbol):
            left -= min(left, self.acquisition_list[date_index][symbol].quantity)
        if not left:
            return []  # the scan does not run
        after = []
        for i in range(BED_AND_BREAKFAST_DAYS):
            day = date_index + datetime.timedelta(days=i + 1)
            if not has_key(self.acquisition_list, day, symbol):
                continue
            if not left:
                after.append(day)
                continue
            acquired = self.acquisition_list[day][symbol].quantity
            sold = self.disposal_list[day][symbol].quantity if has_key(self.disposal_list, day, symbol) else 0
            claimed = self.bnb_list[day][symbol].quantity if has_key(self.bnb_list, day, symbol) else 0
            if sold <= acquired:
                left -= min(left, acquired - sold - claimed)
        return after


def tax_year_of(day: datetime.date) -> int:
    """The first calendar year of the UK tax year containing ``day`` (cgt-calc's ``tax_year``)."""
    return day.year if day >= get_tax_year_start(day.year) else day.year - 1


def broker_transactions(trades: Iterable[Trade]) -> list[BrokerTransaction]:
    """The trades as cgt-calc raw BUY/SELL transactions, by day, a day's buys before its sells
    (cgt-calc refuses a sale of more than is held at that point of the list; tax does not
    care about the order within a day)."""
    result = []
    for t in sorted(trades, key=lambda t: (t.day, t.disposal)):
        if t.disposal:
            # Trade: amount = gross proceeds, fees = costs of disposal.
            price = t.amount / t.units
            amount = t.amount - t.fees
            action = ActionType.SELL
        else:
            # Trade: amount = cost including fees, fees = the part that was fees.
            price = (t.amount - t.fees) / t.units
            amount = -t.amount
            action = ActionType.BUY
        result.append(
            BrokerTransaction(
                date=t.day,
                action=action,
                symbol=t.isin,
                description="",
                quantity=t.units,
                price=price,
                fees=t.fees,
                amount=amount,
                currency=CURRENCY,
                broker=BROKER,
            )
        )
    return result


@contextlib.contextmanager
def _cli_like_context(precision: int) -> Iterator[None]:
    """cgt-calc's arithmetic as its CLI runs it: a fresh Decimal context (28 digits unless
    widened), floats trapped; its printed working captured and dropped."""
    context = decimal.Context(prec=precision)
    context.traps[decimal.FloatOperation] = True
    with decimal.localcontext(context), contextlib.redirect_stdout(io.StringIO()):
        yield


@dataclass(frozen=True)
class OracleGains:
    gains: dict[DisposalKey, Decimal]  # every disposal's gain, keyed by (day, ISIN)
    precision: int  # the Decimal digits cgt-calc ran at


def run(trades: Iterable[Trade], precision: int = CLI_PRECISION) -> OracleGains:
    """One cgt-calc run over the whole history at ``precision`` digits.

    cgt-calc reports one tax year, but it identifies every disposal from the start of the
    history to that year's end and computes each one's gain the same way whichever year it
    reports; its ``process_disposal`` returns that gain (rounded half up to the penny), and
    ``_Calculator`` records it. So one run, reporting the last year with a disposal, gives
    every year's. The report's own log for that year is checked against what was recorded.
    """
    trades = list(trades)
    last_year = max(tax_year_of(t.day) for t in trades if t.disposal)
    with _cli_like_context(precision):
        converter = _OfflineCurrencyConverter(exchange_rates_file=None)
        calculator = _Calculator(
            last_year,
            converter,
            _OfflineIsinConverter(isin_translation_file=None),
            _OfflinePriceFetcher(converter),
            _OfflineSpinOffHandler(spin_offs_file=None),
            InitialPrices({}),
            interest_fund_tickers=[],
            balance_check=False,  # no cash deposits are recorded; only the shares matter
            calc_unrealized_gains=False,
        )
        calculator.convert_to_hmrc_transactions(broker_transactions(trades))
        report = calculator.calculate_capital_gain()
        reported = _reported_gains(report)
    recorded = calculator.gains
    in_year = {key: gain for key, gain in recorded.items() if tax_year_of(key[0]) == last_year}
    if reported != in_year or report.disposal_count != len(in_year):
        raise AssertionError(f"cgt-calc's report for {last_year} is not what its disposals returned")
    return OracleGains(recorded, precision)


def _reported_gains(report: CapitalGainsReport) -> dict[DisposalKey, Decimal]:
    """Each disposal's gain in a report's log: its rule entries' gains summed and rounded half
    up to the penny, as cgt-calc rounds a disposal's chargeable gain."""
    gains: dict[DisposalKey, Decimal] = {}
    for day, entries_by_key in report.calculation_log.items():
        for key, entries in entries_by_key.items():
            kind, _, symbol = key.partition("$")
            if kind == "sell":
                total = sum((e.gain for e in entries), Decimal(0))
                gains[(day, symbol)] = total.quantize(PENNY, rounding=decimal.ROUND_HALF_UP)
    return gains


def cgt_calc_gains(trades: Iterable[Trade]) -> OracleGains:
    """Every disposal's gain by cgt-calc: at the CLI's 28 digits, or, where cgt-calc 1.14.0
    stops on its own check that a pool emptied by the same-day or 30-day rule has no cost
    left (to 23 decimal places, which 28 significant digits cannot promise once a pool's cost
    runs to five figures: the residue is a few 1E-23), at 56 digits, where it does not."""
    trades = list(trades)
    try:
        return run(trades)
    except AssertionError as error:
        if not str(error).startswith("current amount"):
            raise
    return run(trades, WIDE_PRECISION)
