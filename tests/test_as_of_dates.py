"""``--as-of`` in the UK's own date format too (issues #17 and #18): AJ Bell's files write
30/04/2024, and a person copying a date from them should not be refused."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from tradeassist.core.errors import ValidationError
from tradeassist.core.timeutil import parse_as_of


@pytest.mark.parametrize(
    ("text", "end_of_day_utc"),
    [
        ("30/04/2024", datetime(2024, 4, 30, 22, 59, 59, 999999, tzinfo=UTC)),  # BST
        ("2024-04-30", datetime(2024, 4, 30, 22, 59, 59, 999999, tzinfo=UTC)),
        ("5/1/2024", datetime(2024, 1, 5, 23, 59, 59, 999999, tzinfo=UTC)),  # GMT; 5 January, not May
        (" 31/12/2025 ", datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_a_date_in_either_form_is_the_end_of_that_london_day(text: str, end_of_day_utc: datetime) -> None:
    assert parse_as_of(text) == end_of_day_utc


@pytest.mark.parametrize("text", ["31/02/2024", "13/13/2024", "30-04-2024", "04/30/2024", "30/04/24"])
def test_anything_else_is_refused_saying_what_is_accepted(text: str) -> None:
    with pytest.raises(ValidationError, match=r"YYYY-MM-DD or DD/MM/YYYY"):
        parse_as_of(text)


def test_the_cli_takes_the_uk_form(sqlite_url: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tradeassist",
            "--db",
            sqlite_url,
            "tax",
            "pools",
            "--as-of",
            "30/04/2024",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["as_of"] == "2024-04-30"
