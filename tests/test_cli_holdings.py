"""``holdings`` values what is held (issue #18 item 5): price, market value, book cost, gain and
weight, with a JSON key for each; a holding without a usable price is never valued at £0."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from tests.test_price_corrections import STAN_ISIN, VWRP_ISIN, Cli, listing, ok
from tests.test_price_corrections import cli as cli  # the in-process fixture

KEYS = {
    "ticker", "exchange", "isin", "units", "avg_cost_base", "price_gbp", "price_date", "market_value",
    "book_cost", "unrealised_gain", "weight", "price_status", "note",
}  # fmt: skip


def test_holdings_show_value_gain_and_weight_and_never_value_a_missing_price(
    cli: Cli, tmp_path: Path
) -> None:
    listing(cli, VWRP_ISIN, "VWRP", "GBP")
    listing(cli, STAN_ISIN, "STAN", "GBX")
    ok(cli("portfolio", "add", "ISA", "--broker", "AJBell", "--tax-treatment", "ISA"))
    ok(cli("ledger", "add", "--portfolio", "ISA", "--type", "CONTRIBUTION", "--amount", "1000",
           "--time", "2024-04-01"))  # fmt: skip
    for ticker, units, cost in (("VWRP", "10", "900"), ("STAN", "100", "650")):
        ok(cli("ledger", "add", "--portfolio", "ISA", "--type", "TRANSFER", "--ticker", ticker, "--exchange",
               "XLON", "--units", units, "--cost", cost, "--time", "2024-04-02"))  # fmt: skip
    prices = tmp_path / "vwrp.csv"
    prices.write_text("date,close\n2024-04-29,98.90\n2024-04-30,99.19\n")
    ok(cli("prices", "import", str(prices), "--ticker", "VWRP", "--exchange", "XLON", "--format", "csv"))

    rows = {r["ticker"]: r for r in json.loads(ok(cli("holdings", "--portfolio", "ISA", "--json",
                                                        "--as-of", "30/04/2024")))}  # fmt: skip
    assert set(rows["VWRP"]) >= KEYS and set(rows["STAN"]) >= KEYS
    vwrp, stan = rows["VWRP"], rows["STAN"]
    assert (vwrp["price_gbp"], vwrp["price_date"], vwrp["market_value"]) == ("99.19", "2024-04-30", "991.90")
    assert (vwrp["book_cost"], vwrp["unrealised_gain"]) == ("900", "91.90") or Decimal(
        vwrp["book_cost"]
    ) == 900
    assert Decimal(vwrp["unrealised_gain"]) == Decimal("91.90")
    assert Decimal(vwrp["weight"]) == (Decimal("991.90") / (Decimal("991.90") + 1000)).quantize(
        Decimal("0.0001")
    )
    assert stan["market_value"] is None and stan["unrealised_gain"] is None and stan["weight"] is None
    assert stan["price_status"] == "no price" and "STAN" in stan["note"]

    text = ok(cli("holdings", "--portfolio", "ISA", "--as-of", "2024-04-30"))
    assert "£991.90" in text and "£91.90" in text and "49.8%" in text and "no price" in text
    assert "total £1,991.90 (1 holding(s) without a price left out)" in text
    assert "£0.00" not in text.split("cash")[0]  # nothing valued at zero
