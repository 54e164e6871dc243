"""UK tax years and the figures that change with them.

A UK tax year runs from 6 April to the next 5 April and is written ``2023-24``. The table
below holds, per year, the allowances this tool checks against. Each figure cites where
HMRC publishes it; a year missing from the table is refused rather than guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ...core.errors import ValidationError

#: The Autumn Budget 2024 changed the CGT main rates (10%/20% to 18%/24%) for disposals made
#: on or after this date; SA108 for 2024-25 asks for the gains on either side of it.
#: Source: https://www.gov.uk/government/publications/changes-to-capital-gains-tax-rates-from-30-october-2024
RATE_CHANGE_2024 = date(2024, 10, 30)


@dataclass(frozen=True)
class TaxYear:
    label: str  # "2023-24"
    start: date  # 6 April
    end: date  # 5 April, the last day
    annual_exempt_amount: Decimal
    isa_allowance: Decimal
    dividend_allowance: Decimal
    pension_annual_allowance: Decimal
    # The personal savings allowance for a basic-rate taxpayer (higher rate: £500; additional: £0).
    savings_allowance: Decimal
    # Disposal proceeds above which the gains must be reported even when below the exempt amount.
    reporting_proceeds_limit: Decimal

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    @property
    def rate_change(self) -> date | None:
        """The date inside this year from which gains are taxed at new rates, if any."""
        return RATE_CHANGE_2024 if self.contains(RATE_CHANGE_2024) else None


_D = Decimal

# first year: (annual exempt amount, ISA allowance, dividend allowance, pension annual
# allowance, personal savings allowance (basic rate), reporting proceeds limit)
#
# Sources:
# * Annual exempt amount: https://www.gov.uk/guidance/capital-gains-tax-rates-and-allowances
#   (£12,000 in 2019-20; £12,300 from 2020-21 to 2022-23; £6,000 in 2023-24; £3,000 from
#   2024-25, Finance Act 2023 s.8).
# * ISA allowance, £20,000 from 2017-18: https://www.gov.uk/individual-savings-accounts
# * Dividend allowance: https://www.gov.uk/tax-on-dividends (£2,000 from 2018-19 to 2022-23;
#   £1,000 in 2023-24; £500 from 2024-25).
# * Pension annual allowance: https://www.gov.uk/tax-on-your-private-pension/annual-allowance
#   (£40,000 from 2014-15 to 2022-23; £60,000 from 2023-24, Finance (No. 2) Act 2023).
# * Personal savings allowance, £1,000 basic rate from 2016-17:
#   https://www.gov.uk/apply-tax-free-interest-on-savings
# * Reporting: proceeds over four times the annual exempt amount to 2022-23, over £50,000 from
#   2023-24: https://www.gov.uk/capital-gains-tax/report-and-pay-capital-gains-tax
_TABLE: dict[int, tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]] = {
    2017: (_D(11300), _D(20000), _D(5000), _D(40000), _D(1000), _D(45200)),  # 2017-18
    2018: (_D(11700), _D(20000), _D(2000), _D(40000), _D(1000), _D(46800)),  # 2018-19
    2019: (_D(12000), _D(20000), _D(2000), _D(40000), _D(1000), _D(48000)),  # 2019-20
    2020: (_D(12300), _D(20000), _D(2000), _D(40000), _D(1000), _D(49200)),  # 2020-21
    2021: (_D(12300), _D(20000), _D(2000), _D(40000), _D(1000), _D(49200)),  # 2021-22
    2022: (_D(12300), _D(20000), _D(2000), _D(40000), _D(1000), _D(49200)),  # 2022-23
    2023: (_D(6000), _D(20000), _D(1000), _D(60000), _D(1000), _D(50000)),  # 2023-24
    2024: (_D(3000), _D(20000), _D(500), _D(60000), _D(1000), _D(50000)),  # 2024-25
    2025: (_D(3000), _D(20000), _D(500), _D(60000), _D(1000), _D(50000)),  # 2025-26
    2026: (_D(3000), _D(20000), _D(500), _D(60000), _D(1000), _D(50000)),  # 2026-27
}

_LABEL = re.compile(r"^(\d{4})[-/](\d{2}|\d{4})$")


def _first_year_of(day: date) -> int:
    return day.year if (day.month, day.day) >= (4, 6) else day.year - 1


def label_for(first_year: int) -> str:
    return f"{first_year}-{(first_year + 1) % 100:02d}"


def tax_year(first_year: int) -> TaxYear:
    row = _TABLE.get(first_year)
    if row is None:
        known = f"{label_for(min(_TABLE))} to {label_for(max(_TABLE))}"
        raise ValidationError(
            f"tax year {label_for(first_year)}: no allowances are known for it (known: {known})"
        )
    aea, isa, dividend, pension, savings, reporting = row
    return TaxYear(
        label=label_for(first_year),
        start=date(first_year, 4, 6),
        end=date(first_year + 1, 4, 5),
        annual_exempt_amount=aea,
        isa_allowance=isa,
        dividend_allowance=dividend,
        pension_annual_allowance=pension,
        savings_allowance=savings,
        reporting_proceeds_limit=reporting,
    )


def parse_tax_year(text: str) -> TaxYear:
    """``2023-24`` (also ``2023/24`` and ``2023-2024``) to its ``TaxYear``."""
    match = _LABEL.match(text.strip())
    if match is None:
        raise ValidationError(f"tax year {text!r}: write it as 2023-24 (6 April 2023 to 5 April 2024)")
    first, second = int(match.group(1)), int(match.group(2))
    if (second % 100) != (first + 1) % 100 or (second >= 100 and second != first + 1):
        raise ValidationError(f"tax year {text!r}: the second year must follow the first, as in 2023-24")
    return tax_year(first)


def tax_year_of(day: date) -> TaxYear:
    """The tax year ``day`` falls in."""
    return tax_year(_first_year_of(day))


def tax_year_label_of(day: date) -> str:
    """``2023-24`` for any day from 6 April 2023 to 5 April 2024, for every year (no table)."""
    return label_for(_first_year_of(day))
