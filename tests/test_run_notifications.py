"""The email that tells an owner a run recommends trades carries the decision itself: the trade
table in pounds and pence, the review verdict with its reasons, and where the report is; it
goes to the portfolio's owner, whoever created the task. A run with a real kernel, the outbox
dispatched to a real SMTP server (aiosmtpd) and the message parsed as a mail client would."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from tests.support.smtp_server import SMTP_PASSWORD, SMTP_USER
from tradeassist.core.enums import Channel, InstrumentType, NotificationStatus, RunStatus
from tradeassist.core.timeutil import end_of_london_day
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import (
    HoldingSnapshot,
    Instrument,
    InstrumentListing,
    MarketDataSource,
    Notification,
    PricePoint,
    User,
)
from tradeassist.providers.channels import DeliveryStatus, EmailChannel, OutgoingMessage, SmtpSettings
from tradeassist.runs import runner
from tradeassist.services import identity, notifications, portfolios, strategy
from tradeassist.services import tasks as task_service
from tradeassist.services.workflows import RECOMMENDATION_READY

AT = end_of_london_day(date(2026, 1, 6))
OLA = "ola@example.com"
POLICY = {
    "sleeve_targets": {"CORE": "1"},
    "drift_bands": {"absolute": "0.05", "relative": "0.25"},
    "min_trade_base": "100",
    "fee_per_trade_base": "1.50",
    "cash_buffer_base": "50",
}
MANIFESTO = "# Ola's SIPP\n\nEverything in CORE: one world tracker.\n"


def _listing(s, source_id: int, isin: str, ticker: str) -> int:  # type: ignore[no-untyped-def]
    instrument = Instrument(isin=isin, instrument_type=InstrumentType.ETF)
    s.add(instrument)
    s.flush()
    listing = InstrumentListing(
        instrument_id=instrument.instrument_id,
        ticker=ticker,
        exchange="XLON",
        trading_currency="GBP",
        quote_scale="GBP",
    )
    s.add(listing)
    s.flush()
    return listing.listing_id


@pytest.fixture
def ola_sipp(engine: Engine, admin: User) -> User:
    """Ola owns a SIPP holding 10 VWRP (CORE, priced at £101.25) and 10 VUAG (outside the
    strategy, never priced); the task is the administrator's, not hers."""
    with unit_of_work(engine) as s:
        boss = s.get(User, admin.user_id)
        ola = identity.add_user(s, actor=boss, email=OLA, password="ola-pass-123")
        sipp = portfolios.add_portfolio(s, actor=ola, name="SIPP", broker="AJBell", tax_treatment="SIPP")
        source = MarketDataSource(name="stooq")
        s.add(source)
        s.flush()
        vwrp = _listing(s, source.source_id, "IE00BK5BQT80", "VWRP")
        vuag = _listing(s, source.source_id, "IE00BFMXXD54", "VUAG")
        for listing_id in (vwrp, vuag):
            s.add(HoldingSnapshot(portfolio_id=sipp.portfolio_id, listing_id=listing_id, units=Decimal(10)))
        s.add(
            PricePoint(
                listing_id=vwrp,
                as_of=end_of_london_day(date(2026, 1, 5)),
                source_id=source.source_id,
                raw_price=Decimal("101.25"),
                raw_currency="GBP",
                raw_quote_scale="GBP",
                normalized_price_base=Decimal("101.25"),
                usable=True,
            )
        )
        strategy.add_strategy(
            s, actor=ola, label="ola-1", policy_text=POLICY, manifesto=MANIFESTO, portfolios=["SIPP"]
        )
        strategy.approve_strategy(s, actor=ola, label="ola-1")
        strategy.add_constituent(
            s, actor=ola, portfolio="SIPP", ticker="VWRP", exchange="XLON", sleeve="CORE"
        )
        task_service.add_task(
            s,
            actor=boss,
            name="ola monthly",
            kind="MONTHLY_ALLOC",
            schedule_type="CRON",
            schedule_expr="0 8 1 * *",
            portfolio="SIPP",
            config='{"contribution": "1000"}',
        )
        return ola


def smtp_env(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    monkeypatch.setenv("TRADEASSIST_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TRADEASSIST_SMTP_PORT", str(port))
    monkeypatch.setenv("TRADEASSIST_SMTP_FROM", "tradeassist@example.com")
    monkeypatch.setenv("TRADEASSIST_SMTP_STARTTLS", "no")
    monkeypatch.setenv("TRADEASSIST_SMTP_USER", SMTP_USER)
    monkeypatch.setenv("TRADEASSIST_SMTP_PASSWORD", SMTP_PASSWORD)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_owner_gets_the_trades_the_verdict_and_the_report(
    engine: Engine, db_url: str, admin: User, ola_sipp: User, smtp_server, monkeypatch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    outcome = runner.run_task(
        engine, actor=admin, name="ola monthly", db_url=db_url, at=AT, reports=tmp_path / "reports"
    )
    assert outcome.status is RunStatus.SUCCESS, outcome.error
    assert outcome.recommendation_id is not None
    with unit_of_work(engine, readonly=True) as s:
        [note] = s.exec(select(Notification)).all()
    assert note.payload["event"] == RECOMMENDATION_READY
    assert (note.channel, note.target, note.status) == (Channel.EMAIL, OLA, NotificationStatus.PENDING)
    assert note.payload["html_path"] == outcome.html_path and Path(outcome.html_path).is_file()

    controller, recorder = smtp_server
    smtp_env(monkeypatch, controller.port)
    assert notifications.dispatch(engine).counts()["sent"] == 1
    [envelope] = recorder.envelopes
    assert envelope.rcpt_tos == [OLA]  # the owner, not the administrator who set the task up
    received = message_from_bytes(envelope.content, policy=email_policy.default)
    text = received.get_body(preferencelist=("plain",)).get_content()
    page = received.get_body(preferencelist=("html",)).get_content()

    # (£1,000.00 - £50.00 buffer - £1.50 fee) buys 9 VWRP at £101.25: £911.25
    assert re.search(r"Buy\s+VWRP:XLON\s+9\s+£911\.25\s+£1\.50", text), text
    assert '<td align="left">Buy</td><td align="left">VWRP:XLON</td>' in page and "£911.25" in page
    assert "Review: PASS (builtin-rules)" in text and "all checks hold" in text
    assert f"Report: {outcome.html_path}" in text and outcome.html_path in page
    assert f"reco approve {outcome.recommendation_id}" in text
    assert "911.2500" not in text and "911.25000" not in page  # money in pounds and pence only
    assert received["Subject"].startswith("tradeassist: SIPP: Buy 1 line(s) for £911.25")


def test_a_placeholder_address_is_refused_without_contacting_the_server(smtp_server) -> None:  # type: ignore[no-untyped-def]
    """``init`` without TRADEASSIST_ADMIN_EMAIL names the admin admin@localhost.localdomain:
    no mail reaches it, so the channel says so instead of handing it to the server."""
    controller, recorder = smtp_server
    channel = EmailChannel(
        SmtpSettings(
            host="127.0.0.1",
            port=controller.port,
            sender="tradeassist@example.com",
            user=SMTP_USER,
            password=SMTP_PASSWORD,
            starttls=False,
        ),
        timeout=5,
    )
    for target in ("admin@localhost.localdomain", "root@localhost", "me@host.invalid"):
        result = channel.send(OutgoingMessage(subject="s", text="t"), target)
        assert result.status is DeliveryStatus.PERMANENT, target
        assert f"{target} is a placeholder address" in result.error
        assert "TRADEASSIST_ADMIN_EMAIL" in result.error
    assert recorder.envelopes == []
    assert channel.send(OutgoingMessage(subject="s", text="t"), OLA).sent
