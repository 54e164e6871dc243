"""The core concepts every layer shares: one money format, pence, plain JSON, business days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeassist.core.enums import TRADING_KINDS, TaskKind
from tradeassist.core.errors import ValidationError
from tradeassist.core.jsonutil import plain
from tradeassist.core.money import format_gbp
from tradeassist.core.timeutil import business_days_between
from tradeassist.core.units import canonical_scale, from_major, is_pence, to_major, unit_name


def test_one_money_format() -> None:
    assert format_gbp(Decimal("-713.9")) == "-£713.90"
    assert format_gbp("1234567.555") == "£1,234,567.56"  # half-even: ...555 -> ...56
    assert format_gbp(Decimal("0.125")) == "£0.12"
    assert format_gbp(0) == "£0.00" and format_gbp(None) == "—"
    with pytest.raises(ValidationError):
        format_gbp(1.5)  # type: ignore[arg-type]


def test_pence_spellings_and_scaling() -> None:
    assert all(is_pence(code) for code in ("GBX", "GBx", "GBp", "gbx"))
    assert not any(is_pence(code) for code in ("GBP", "gbp", "USD", None))
    assert canonical_scale("GBp") == "GBX" and canonical_scale("usd") == "USD"
    assert to_major(Decimal("4567.89"), "GBX") == Decimal("45.6789")
    assert from_major(Decimal("45.6789"), "GBp") == Decimal("4567.8900")
    assert to_major(Decimal("98.1"), "GBP") == Decimal("98.1") and unit_name("GBX") == "pence"


def test_plain_json() -> None:
    moment = datetime(2026, 6, 30, 23, 0, tzinfo=timezone(timedelta(hours=1)))
    value = {1: (Decimal("1E+2"), moment, date(2026, 1, 2), TaskKind.MONTHLY_ALLOC, {"x"})}
    assert plain(value) == {"1": ["100", "2026-06-30T22:00:00+00:00", "2026-01-02", "MONTHLY_ALLOC", ["x"]]}
    assert plain(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC).isoformat()
    assert TaskKind.PRICE_REFRESH not in TRADING_KINDS and TaskKind.WEEKLY_REVIEW in TRADING_KINDS


@given(st.dates(date(2000, 1, 1), date(2040, 1, 1)), st.integers(-30, 900))
def test_business_days_agree_with_numpy(start: date, span: int) -> None:
    end = start + timedelta(days=span)
    expected = 0 if end <= start else int(np.busday_count(start + timedelta(days=1), end + timedelta(days=1)))
    assert business_days_between(start, end) == expected


def test_the_configuration_doc_lists_every_setting_from_the_one_settings_class() -> None:
    from pathlib import Path

    from tradeassist.core.config import settings, settings_table

    readme = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text(encoding="utf-8")
    start = readme.index("<!-- settings-table: generated from tradeassist.core.config.Settings -->\n")
    end = readme.index("\n<!-- /settings-table -->")
    assert readme[start:end].split("\n", 1)[1] == settings_table()
    chosen = settings({"TRADEASSIST_SMTP_PASSWORD": "hunter22", "TRADEASSIST_DB_URL": "sqlite:///x.db"})
    assert chosen.db_url == "sqlite:///x.db" and "hunter22" not in repr(chosen)
