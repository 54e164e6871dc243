"""A run's report by email, received by a real SMTP server (aiosmtpd on 127.0.0.1) and parsed:
text and HTML alternatives, inline charts referenced by ``cid:``, the full report attached,
and the SMTP password nowhere in what is printed or stored."""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import date
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import select

from tests.support.cli import run_cli
from tests.support.smtp_server import SMTP_PASSWORD, SMTP_USER
from tradeassist.core.enums import RunStatus
from tradeassist.core.money import format_gbp
from tradeassist.core.timeutil import end_of_london_day
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import AuditEvent, User
from tradeassist.demo import DEMO_PORTFOLIO
from tradeassist.presentation import run_charts, run_email
from tradeassist.providers.channels import DeliveryStatus, EmailChannel, SmtpSettings
from tradeassist.services import governance, reports

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RUN_DAY = date(2026, 1, 9)


@pytest.fixture
def monthly_run(engine: Engine, db_url: str, admin: User, tmp_path: Path) -> int:
    """A real MONTHLY_ALLOC run of the demo (a kernel, a notebook, an HTML report), and an
    open alert on the portfolio."""
    from tradeassist.demo import load_demo
    from tradeassist.runs import runner

    load_demo(engine, end=RUN_DAY)
    outcome = runner.run_task(
        engine,
        actor=admin,
        name="demo monthly allocation",
        db_url=db_url,
        at=end_of_london_day(RUN_DAY),
        reports=tmp_path / "reports",
    )
    assert outcome.status is RunStatus.SUCCESS, outcome.error
    assert outcome.html_path and outcome.recommendation_id
    with unit_of_work(engine) as s:
        portfolio_id = _portfolio_id(s)
        governance.raise_alert(
            s,
            portfolio_id=portfolio_id,
            code="PRICE_STALE",
            severity="WARN",
            message="XLE <ARCX> has no close for 3 business days",
            context={"ticker": "XLE", "exchange": "ARCX"},
        )
    return outcome.run_id


def _portfolio_id(session) -> int:  # type: ignore[no-untyped-def]
    from tradeassist.db.models import Portfolio

    return session.exec(select(Portfolio.portfolio_id).where(Portfolio.name == DEMO_PORTFOLIO)).one()


def settings(port: int, *, password: str = SMTP_PASSWORD) -> SmtpSettings:
    return SmtpSettings(
        host="127.0.0.1",
        port=port,
        sender="tradeassist@example.com",
        user=SMTP_USER,
        password=password,
        starttls=False,
    )


def parts(message: EmailMessage) -> dict[str, list[EmailMessage]]:
    found: dict[str, list[EmailMessage]] = {}
    for part in message.walk():
        found.setdefault(part.get_content_type(), []).append(part)
    return found


def test_the_email_has_both_bodies_inline_charts_and_the_report(
    engine: Engine, admin: User, monthly_run: int, smtp_server
) -> None:  # type: ignore[no-untyped-def]
    controller, recorder = smtp_server
    with unit_of_work(engine, readonly=True) as s:
        message, summary = run_email.run_email(s, actor=s.get(User, admin.user_id), run_id=monthly_run)
    result = reports.send_email(
        message, "owner@example.org", channel=EmailChannel(settings(controller.port), timeout=5)
    )
    assert result.sent, result.error
    [envelope] = recorder.envelopes
    assert envelope.rcpt_tos == ["owner@example.org"]
    received = message_from_bytes(envelope.content, policy=email_policy.default)
    assert received.get_content_type() == "multipart/mixed"
    found = parts(received)
    [alternative] = found["multipart/alternative"]
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "multipart/related"]
    [plain] = found["text/plain"]
    html_parts = [p for p in found["text/html"] if p.get_content_disposition() != "attachment"]
    [body] = html_parts
    html = body.get_content()
    images = found["image/png"]
    cids = re.findall(r'src="cid:([^"]+)"', html)
    assert sorted(cids) == sorted(p["Content-ID"].strip("<>") for p in images) == ["allocation", "drift"]
    assert all(p.get_content().startswith(PNG_MAGIC) for p in images)
    assert all(p.get_content_disposition() == "inline" for p in images)
    [attachment] = [p for p in received.iter_attachments()]
    assert attachment.get_filename() == f"run-{monthly_run}-MONTHLY_ALLOC.html"
    assert attachment.get_content_type() == "text/html"
    report = attachment.get_payload(decode=True)
    assert report == Path(summary.html_path).read_bytes()
    # The copy that travels needs nothing but itself, and is small enough for any mailbox.
    assert len(report) <= 1_000_000 and len(envelope.content) <= 1_500_000
    assert b"<script" not in report and b'src="http' not in report and b"<link" not in report

    words = plain.get_content()
    assert summary.headline in words and summary.headline.replace("&", "&amp;") in html
    for line in summary.lines:
        assert (
            f"{line['ticker']}:{line['exchange']}" in words and f"{line['ticker']}:{line['exchange']}" in html
        )
    assert summary.verdict is not None and f"Review: {summary.verdict['verdict']} (builtin-rules)" in words
    for line in summary.lines:  # pounds and pence, units and the fee
        assert format_gbp(line["amount_base"]) in words and format_gbp(line["amount_base"]) in html
    assert "£1.50" in words and "9 January 2026, end of day" in words
    assert not re.search(r"\d\.\d{3,}", words)  # no unrounded money
    assert "PRICE_STALE: XLE <ARCX> has no close" in words
    assert "XLE &lt;ARCX&gt; has no close" in html  # escaped, not markup
    assert received["Subject"].startswith(
        f"tradeassist: MONTHLY_ALLOC run {monthly_run} on {DEMO_PORTFOLIO}: "
    )


@pytest.mark.slow
def test_report_email_command(
    engine: Engine, db_url: str, monthly_run: int, smtp_server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    controller, recorder = smtp_server
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env |= {"TRADEASSIST_HOME": str(tmp_path / "home"), "TRADEASSIST_DB_URL": db_url}
    smtp_env = {
        "TRADEASSIST_SMTP_HOST": "127.0.0.1",
        "TRADEASSIST_SMTP_PORT": str(controller.port),
        "TRADEASSIST_SMTP_FROM": "tradeassist@example.com",
        "TRADEASSIST_SMTP_STARTTLS": "no",
        "TRADEASSIST_SMTP_USER": SMTP_USER,
        "TRADEASSIST_SMTP_PASSWORD": SMTP_PASSWORD,
    }

    def cli(*args: str, extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
        done = run_cli(args, env | extra)
        assert "Traceback" not in done.stderr, done.stderr
        assert SMTP_PASSWORD not in done.stdout + done.stderr
        return done

    sent = cli("report", "email", str(monthly_run), "--to", "me@example.org", extra=smtp_env)
    assert sent.returncode == 0, sent.stderr
    assert (
        sent.stdout.strip() == f"run {monthly_run} report sent to me@example.org (2 charts, report attached)"
    )
    assert len(recorder.envelopes) == 1

    wrong = cli(
        "report",
        "email",
        str(monthly_run),
        "--to",
        "me@example.org",
        extra=smtp_env | {"TRADEASSIST_SMTP_PASSWORD": "wrong-" + SMTP_PASSWORD},
    )
    assert wrong.returncode == 1 and "refused the login" in wrong.stderr
    assert SMTP_PASSWORD not in wrong.stderr
    unset = cli("report", "email", str(monthly_run), "--to", "me@example.org", extra={})
    assert unset.returncode == 1
    assert unset.stderr.strip() == (
        f"error: run {monthly_run} report not sent to me@example.org: PERMANENT: "
        "EMAIL: TRADEASSIST_SMTP_HOST is not set (the SMTP server to send through)"
    )
    assert len(recorder.envelopes) == 1

    with unit_of_work(engine, readonly=True) as s:
        [event] = s.exec(select(AuditEvent).where(AuditEvent.action == "REPORT_EMAILED")).all()
        assert event.entity_id == str(monthly_run) and event.details["to"] == "me@example.org"
        stored = [
            json.dumps(list(row), default=str)
            for table in ("audit_events", "notifications", "llm_verdicts", "task_runs", "alerts")
            for row in s.connection().execute(text(f"SELECT * FROM {table}"))
        ]
    assert stored and not any(SMTP_PASSWORD in row for row in stored)


# --------------------------------------------------------------------------------------------
# The pieces
# --------------------------------------------------------------------------------------------
SLEEVES = {
    "CORE": {
        "target": "0.70",
        "weight_before": "0.74",
        "weight_after": "0.71",
        "drift_before": "0.04",
        "drift_after": "0.01",
    },
    "SEMIS": {
        "target": "0.15",
        "weight_before": "0.09",
        "weight_after": "0.14",
        "drift_before": "-0.06",
        "drift_after": "-0.01",
    },
    "ENERGY": {
        "target": "0.15",
        "weight_before": "0.17",
        "weight_after": "0.15",
        "drift_before": "0.02",
        "drift_after": "0",
    },
}


def test_charts_are_pngs_and_bands_are_the_tighter_limit() -> None:
    bands = {"absolute": "0.05", "relative": "0.25"}
    assert run_charts.allocation_chart(SLEEVES, "png").startswith(PNG_MAGIC)
    assert run_charts.drift_chart(SLEEVES, bands, "png").startswith(PNG_MAGIC)
    svg = run_charts.drift_chart(SLEEVES, bands)
    assert svg.startswith(b"<?xml") and b"<svg" in svg and len(svg) < 30_000
    assert svg == run_charts.drift_chart(SLEEVES, bands)  # no date, no random ids: the same bytes
    assert run_charts.band_of("0.70", bands) == pytest.approx(0.05)
    assert run_charts.band_of("0.15", bands) == pytest.approx(0.0375)
    assert run_charts.band_of("0", bands) == pytest.approx(0.05)


def test_a_run_with_nothing_to_chart_or_attach() -> None:
    summary = reports.RunSummary(
        run_id=5,
        kind="ALERT_ONLY",
        portfolio=None,
        status="FAILED",
        as_of="2026-01-09",
        headline="ALERT_ONLY run 5 FAILED",
        error="In [3] raised ValueError: <boom>",
    )
    message = run_email.build_message(summary, None)
    assert message.inline_images == () and message.attachments == ()
    assert "No full report was saved" in message.text and "&lt;boom&gt;" in message.html
    assert message.subject == "tradeassist: ALERT_ONLY run 5: ALERT_ONLY run 5 FAILED"


def test_email_without_settings_is_a_permanent_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TRADEASSIST_SMTP_"):
            monkeypatch.delenv(name)
    summary = reports.RunSummary(
        run_id=1, kind="WEEKLY_REVIEW", portfolio="P", status="SUCCESS", as_of=None, headline="h"
    )
    result = reports.send_email(run_email.build_message(summary, b"<html></html>"), "me@example.org")
    assert result.status is DeliveryStatus.PERMANENT and "TRADEASSIST_SMTP_HOST is not set" in result.error
