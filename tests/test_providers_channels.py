"""Notification channels against real local servers: an aiosmtpd SMTP server, HTTP servers that
speak the Telegram Bot API and Slack webhooks, and a server that accepts and never answers.

Every secret used here is a canary: it must never show in a result's error or in a log line.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import logging
import time
from urllib.parse import urlsplit

import pytest

from tests.support.http_server import RecordingServer, Reply, silent_server
from tests.support.ports import free_port
from tests.support.smtp_server import SMTP_PASSWORD, SMTP_USER
from tradeassist.core.errors import ConfigError, ValidationError
from tradeassist.providers.channels import (
    DeliveryStatus,
    EmailChannel,
    OutgoingMessage,
    SlackChannel,
    TelegramChannel,
    build_email,
    channel_names,
    get_channel,
    slack_payload,
)
from tradeassist.providers.channels.email import SmtpSettings
from tradeassist.providers.channels.telegram import MAX_TEXT, format_text

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00fake-png-body\x01" * 8
PNG2 = b"\x89PNG\r\n\x1a\n" + b"second-chart" * 4
REPORT = b"<html><body><h1>Monthly report</h1><p>\xc2\xa3 1,234.56</p></body></html>"
TG_TOKEN = "123456789:CANARY-telegram-token_XYZ"
SLACK_SECRET = "CANARYslackSecret0123456789"
SLACK_PATH = f"/services/T0001AAAA/B0002BBBB/{SLACK_SECRET}"
SMALL_TIMEOUT = 0.5
MARGIN = 0.75


def full_message() -> OutgoingMessage:
    return OutgoingMessage(
        subject="Monthly allocation: buy 3 VWRP",
        text="Buy 3 VWRP:LSE for £301.50.\nCash left £52.10.",
        html='<p>Buy 3 <b>VWRP</b></p><img src="cid:drift-chart"><img src="cid:value.chart@tradeassist">',
        inline_images=(("drift-chart", PNG), ("value.chart@tradeassist", PNG2)),
        attachments=(
            ("report.html", "text/html", REPORT),
            ("lines.csv", "text/csv", b"ticker,units\nVWRP,3\n"),
        ),
    )


# --------------------------------------------------------------------------------------------
# Local servers
# --------------------------------------------------------------------------------------------
def smtp_env(monkeypatch: pytest.MonkeyPatch, port: int, *, user: bool = False, password: str = "") -> None:
    monkeypatch.setenv("TRADEASSIST_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TRADEASSIST_SMTP_PORT", str(port))
    monkeypatch.setenv("TRADEASSIST_SMTP_FROM", "TradeAssist <tradeassist@example.com>")
    monkeypatch.setenv("TRADEASSIST_SMTP_STARTTLS", "no")
    if user:
        monkeypatch.setenv("TRADEASSIST_SMTP_USER", SMTP_USER)
        monkeypatch.setenv("TRADEASSIST_SMTP_PASSWORD", password)
    else:
        monkeypatch.delenv("TRADEASSIST_SMTP_USER", raising=False)
        monkeypatch.delenv("TRADEASSIST_SMTP_PASSWORD", raising=False)


def assert_no_secret(texts: list[str | None], *secrets: str) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in (text or ""), f"secret leaked into: {text}"


def tg_ok(message_id: int = 77) -> Reply:
    return Reply(
        200,
        json.dumps(
            {
                "ok": True,
                "result": {
                    "message_id": message_id,
                    "chat": {"id": 42, "type": "private"},
                    "date": 1760000000,
                    "text": "Subject",
                },
            }
        ),
    )


# --------------------------------------------------------------------------------------------
# The message value and the registry
# --------------------------------------------------------------------------------------------
def test_registry_names_and_lookup() -> None:
    assert channel_names() == ("EMAIL", "SLACK", "TELEGRAM", "WEBPUSH")
    assert isinstance(get_channel("email"), EmailChannel)
    assert isinstance(get_channel("Telegram", token=TG_TOKEN), TelegramChannel)
    with pytest.raises(ConfigError, match=r"unknown notification channel 'SMS'.*EMAIL, SLACK"):
        get_channel("SMS")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"subject": "  "}, "subject is empty"),
        ({"inline_images": (("c1", PNG),)}, "need an HTML body"),
        ({"html": "<p/>", "inline_images": (("bad id", PNG),)}, "content id 'bad id'"),
        ({"html": "<p/>", "inline_images": (("<c1>", PNG),)}, "content id '<c1>'"),
        ({"html": "<p/>", "inline_images": (("c1", PNG), ("c1", PNG))}, "appears twice"),
        ({"attachments": (("../x.html", "text/html", b""),)}, "not a plain file name"),
        ({"attachments": (("x.html", "html", b""),)}, "not a MIME type"),
        ({"attachments": (("x.html", "text/html", "text"),)}, "filename, mime type, bytes"),
    ],
)
def test_outgoing_message_refuses_bad_parts(kwargs: dict, match: str) -> None:
    fields = {"subject": "s", "text": "t", **kwargs}
    with pytest.raises(ValidationError, match=match):
        OutgoingMessage(**fields)


def test_outgoing_message_is_frozen_and_flattens_the_subject() -> None:
    message = OutgoingMessage("Line one\r\nBcc: victim@example.com", "t", inline_images=[], attachments=[])
    assert message.subject == "Line one Bcc: victim@example.com"  # no header injection
    assert message.attachments == ()
    with pytest.raises(AttributeError):
        message.subject = "other"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# EMAIL
# --------------------------------------------------------------------------------------------
def test_build_email_structure() -> None:
    msg = build_email(full_message(), "TradeAssist <tradeassist@example.com>", "me@example.org")
    assert msg.get_content_type() == "multipart/mixed"
    alternative, report, csv_part = msg.get_payload()
    assert csv_part.get_filename() == "lines.csv"
    assert alternative.get_content_type() == "multipart/alternative"
    plain, related = alternative.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, image1, image2 = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    assert (image1["Content-ID"], image2["Content-ID"]) == ("<drift-chart>", "<value.chart@tradeassist>")
    assert image1.get_content_type() == "image/png" and image1.get_content_disposition() == "inline"
    assert image1.get_content() == PNG
    assert report.get_filename() == "report.html" and report.get_content_disposition() == "attachment"
    assert msg["Message-ID"].endswith("@example.com>")


def test_build_email_plain_only_and_bad_addresses() -> None:
    msg = build_email(OutgoingMessage("Hi", "only text"), "a@example.com", "b@example.com")
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().strip() == "only text"
    with pytest.raises(ValidationError, match="recipient 'not-an-address'"):
        build_email(OutgoingMessage("Hi", "x"), "a@example.com", "not-an-address")
    with pytest.raises(ValidationError, match="recipient"):
        build_email(OutgoingMessage("Hi", "x"), "a@example.com", "b@example.com\r\nBcc: c@example.com")


def test_email_is_received_by_a_real_smtp_server(smtp_server, monkeypatch, caplog) -> None:
    controller, recorder = smtp_server
    smtp_env(monkeypatch, controller.port)
    caplog.set_level(logging.DEBUG)
    result = get_channel("EMAIL", timeout=5).send(full_message(), "me@example.org")
    assert result.status is DeliveryStatus.SENT, result.error
    assert result.provider_message_id and result.provider_message_id.startswith("<")

    (envelope,) = recorder.envelopes
    assert envelope.mail_from == "tradeassist@example.com"
    assert envelope.rcpt_tos == ["me@example.org"]
    received = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert received["Subject"] == "Monthly allocation: buy 3 VWRP"
    assert received["From"] == "TradeAssist <tradeassist@example.com>"
    assert received["To"] == "me@example.org"
    assert received["Message-ID"] == result.provider_message_id

    parts = {part.get_content_type(): part for part in received.walk() if not part.is_multipart()}
    assert parts["text/plain"].get_content().strip().startswith("Buy 3 VWRP:LSE for £301.50.")
    html = received.get_body(preferencelist=("html",)).get_content()
    images = [p for p in received.walk() if p.get_content_maintype() == "image"]
    assert len(images) == 2
    for image in images:
        assert f"cid:{image['Content-ID'].strip('<>')}" in html
        assert image.get_content_disposition() == "inline"
    assert [i.get_content() for i in images] == [PNG, PNG2]
    attachments = {a.get_filename(): a for a in received.iter_attachments()}
    assert set(attachments) == {"report.html", "lines.csv"}
    assert attachments["report.html"].get_content_type() == "text/html"
    assert attachments["report.html"].get_payload(decode=True) == REPORT
    assert attachments["lines.csv"].get_payload(decode=True) == b"ticker,units\nVWRP,3\n"


def test_email_login_with_the_right_password(smtp_server, monkeypatch) -> None:
    controller, recorder = smtp_server
    smtp_env(monkeypatch, controller.port, user=True, password=SMTP_PASSWORD)
    result = EmailChannel(timeout=5).send(OutgoingMessage("Authenticated", "hello"), "me@example.org")
    assert result.status is DeliveryStatus.SENT, result.error
    assert len(recorder.envelopes) == 1


def test_email_wrong_password_is_permanent_and_never_shown(smtp_server, monkeypatch, caplog) -> None:
    controller, recorder = smtp_server
    wrong = SMTP_PASSWORD + "-wrong"
    smtp_env(monkeypatch, controller.port, user=True, password=wrong)
    caplog.set_level(logging.DEBUG)
    result = EmailChannel(timeout=5).send(OutgoingMessage("Denied", "hello"), "me@example.org")
    assert result.status is DeliveryStatus.PERMANENT
    assert "refused the login for user 'bot@example.com'" in result.error
    assert "535" in result.error
    encoded = [
        wrong,
        base64.b64encode(wrong.encode()).decode(),
        base64.b64encode(f"\0{SMTP_USER}\0{wrong}".encode()).decode(),
    ]
    assert_no_secret([result.error, caplog.text, repr(result)], *encoded, "CANARY")
    assert recorder.envelopes == []
    settings = SmtpSettings.from_env()
    assert "CANARY" not in repr(settings)


def test_email_recipient_refusals_4xx_retryable_5xx_permanent(smtp_server, monkeypatch) -> None:
    controller, recorder = smtp_server
    smtp_env(monkeypatch, controller.port)
    recorder.rcpt_replies = {
        "gone@example.org": "550 5.1.1 No such user",
        "busy@example.org": "451 4.3.0 Try again later",
    }
    channel = EmailChannel(timeout=5)
    gone = channel.send(OutgoingMessage("s", "t"), "gone@example.org")
    assert gone.status is DeliveryStatus.PERMANENT and "550 5.1.1 No such user" in gone.error
    busy = channel.send(OutgoingMessage("s", "t"), "busy@example.org")
    assert busy.status is DeliveryStatus.RETRYABLE and "451" in busy.error


def test_email_starttls_against_a_server_without_it_is_permanent(smtp_server, monkeypatch) -> None:
    controller, _ = smtp_server
    smtp_env(monkeypatch, controller.port)
    monkeypatch.setenv("TRADEASSIST_SMTP_STARTTLS", "true")
    result = EmailChannel(timeout=5).send(OutgoingMessage("s", "t"), "me@example.org")
    assert result.status is DeliveryStatus.PERMANENT
    assert "STARTTLS" in result.error


def test_email_settings_from_env(monkeypatch) -> None:
    for name in ("HOST", "PORT", "USER", "PASSWORD", "FROM", "STARTTLS"):
        monkeypatch.delenv(f"TRADEASSIST_SMTP_{name}", raising=False)
    missing = EmailChannel().send(OutgoingMessage("s", "t"), "me@example.org")
    assert missing.status is DeliveryStatus.PERMANENT
    assert "TRADEASSIST_SMTP_HOST is not set" in missing.error

    monkeypatch.setenv("TRADEASSIST_SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("TRADEASSIST_SMTP_USER", "me@example.com")
    monkeypatch.setenv("TRADEASSIST_SMTP_PASSWORD", SMTP_PASSWORD)
    settings = SmtpSettings.from_env()
    assert (settings.port, settings.starttls, settings.sender) == (587, True, "me@example.com")
    monkeypatch.setenv("TRADEASSIST_SMTP_STARTTLS", "0")
    assert SmtpSettings.from_env().port == 25
    monkeypatch.setenv("TRADEASSIST_SMTP_PORT", "2525")
    assert SmtpSettings.from_env().port == 2525
    monkeypatch.setenv("TRADEASSIST_SMTP_STARTTLS", "maybe")
    with pytest.raises(ConfigError, match="TRADEASSIST_SMTP_STARTTLS='maybe'"):
        SmtpSettings.from_env()
    monkeypatch.setenv("TRADEASSIST_SMTP_STARTTLS", "yes")
    monkeypatch.setenv("TRADEASSIST_SMTP_PORT", "smtp")
    with pytest.raises(ConfigError, match="not a port number"):
        SmtpSettings.from_env()
    monkeypatch.delenv("TRADEASSIST_SMTP_PORT")
    monkeypatch.delenv("TRADEASSIST_SMTP_PASSWORD")
    with pytest.raises(ConfigError, match="TRADEASSIST_SMTP_PASSWORD is not"):
        SmtpSettings.from_env()


def test_email_to_a_server_that_never_answers_times_out(monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with silent_server() as silent:
        smtp_env(monkeypatch, urlsplit(silent).port, user=True, password=SMTP_PASSWORD)
        started = time.monotonic()
        result = EmailChannel(timeout=SMALL_TIMEOUT).send(OutgoingMessage("s", "t"), "me@example.org")
        elapsed = time.monotonic() - started
    assert result.status is DeliveryStatus.RETRYABLE
    assert f"no answer within {SMALL_TIMEOUT:g} s" in result.error
    assert elapsed < SMALL_TIMEOUT + MARGIN
    assert_no_secret([result.error, caplog.text], SMTP_PASSWORD)


def test_email_to_a_closed_port_is_retryable(monkeypatch) -> None:
    smtp_env(monkeypatch, free_port())
    result = EmailChannel(timeout=2).send(OutgoingMessage("s", "t"), "me@example.org")
    assert result.status is DeliveryStatus.RETRYABLE
    assert "could not reach the server" in result.error


# --------------------------------------------------------------------------------------------
# TELEGRAM
# --------------------------------------------------------------------------------------------
def test_telegram_send_message(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    message = OutgoingMessage("Drift <alert> & more", "CORE at 74% (target 70%)\nSEMIS 11% <low>")
    with RecordingServer([tg_ok(501)]) as server:
        result = TelegramChannel(TG_TOKEN, server.base_url, timeout=5).send(message, "42")
    assert result.status is DeliveryStatus.SENT, result.error
    assert result.provider_message_id == "501"
    (request,) = server.seen
    assert request.path == f"/bot{TG_TOKEN}/sendMessage"
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == {
        "chat_id": "42",
        "text": "<b>Drift &lt;alert&gt; &amp; more</b>\n\nCORE at 74% (target 70%)\nSEMIS 11% &lt;low&gt;",
        "parse_mode": "HTML",
    }
    assert_no_secret([caplog.text], TG_TOKEN, "CANARY")


def test_telegram_token_and_base_url_from_env(monkeypatch) -> None:
    with RecordingServer([tg_ok()]) as server:
        monkeypatch.setenv("TRADEASSIST_TELEGRAM_BOT_TOKEN", TG_TOKEN)
        monkeypatch.setenv("TRADEASSIST_TELEGRAM_BASE_URL", server.base_url + "/")
        result = get_channel("TELEGRAM", timeout=5).send(OutgoingMessage("s", "t"), "-1001234567890")
    assert result.sent, result.error
    assert server.seen[0].path == f"/bot{TG_TOKEN}/sendMessage"
    assert server.seen[0].json()["chat_id"] == "-1001234567890"


def test_telegram_flood_control_is_retryable_with_the_servers_wait(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    flood = Reply(
        429,
        json.dumps(
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 7",
                "parameters": {"retry_after": 7},
            }
        ),
    )
    with RecordingServer([flood]) as server:
        result = TelegramChannel(TG_TOKEN, server.base_url, timeout=5).send(OutgoingMessage("s", "t"), "42")
    assert result.status is DeliveryStatus.RETRYABLE
    assert result.retry_after == 7.0
    assert len(server.seen) == 1  # not hammered: the outbox waits the 7 s
    assert "HTTP 429" in result.error
    assert_no_secret([result.error, caplog.text], TG_TOKEN, "CANARY")


def test_telegram_bad_request_is_permanent_with_the_description(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    bad = Reply(
        400, json.dumps({"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})
    )
    with RecordingServer([bad]) as server:
        result = TelegramChannel(TG_TOKEN, server.base_url, timeout=5).send(OutgoingMessage("s", "t"), "99")
    assert result.status is DeliveryStatus.PERMANENT
    assert "HTTP 400" in result.error and "chat not found" in result.error
    assert "/bot***/sendMessage" in result.error
    assert len(server.seen) == 1
    assert_no_secret([result.error, caplog.text], TG_TOKEN, "CANARY")


def test_telegram_server_errors_are_retryable_and_503_is_retried_in_the_call() -> None:
    with RecordingServer([Reply(500, '{"ok":false,"error_code":500}')]) as server:
        result = TelegramChannel(TG_TOKEN, server.base_url, timeout=5).send(OutgoingMessage("s", "t"), "42")
    assert result.status is DeliveryStatus.RETRYABLE
    assert len(server.seen) == 1  # a POST that failed with 500 may have been processed
    with RecordingServer([Reply(503, "down", content_type="text/plain"), tg_ok(9)]) as server:
        result = TelegramChannel(TG_TOKEN, server.base_url, timeout=5).send(OutgoingMessage("s", "t"), "42")
    assert result.sent and result.provider_message_id == "9"
    assert len(server.seen) == 2


def test_telegram_configuration_problems_are_permanent(monkeypatch) -> None:
    monkeypatch.delenv("TRADEASSIST_TELEGRAM_BOT_TOKEN", raising=False)
    result = TelegramChannel().send(OutgoingMessage("s", "t"), "42")
    assert result.status is DeliveryStatus.PERMANENT
    assert "TRADEASSIST_TELEGRAM_BOT_TOKEN is not set" in result.error
    odd = TelegramChannel("CANARY token with spaces").send(OutgoingMessage("s", "t"), "42")
    assert odd.status is DeliveryStatus.PERMANENT and "CANARY" not in odd.error
    bad_chat = TelegramChannel(TG_TOKEN).send(OutgoingMessage("s", "t"), "not a chat")
    assert bad_chat.status is DeliveryStatus.PERMANENT and "not a chat id" in bad_chat.error


def test_telegram_text_is_cut_to_the_limit_without_breaking_an_entity() -> None:
    text = format_text(OutgoingMessage("Subject", "a&b<c> " * 2000))
    assert len(text) <= MAX_TEXT
    assert text.endswith("…")
    assert text.startswith("<b>Subject</b>\n\na&amp;b&lt;c&gt; ")
    last = text.rsplit("&", 1)[-1]
    assert ";" in last or not last.startswith(("amp", "lt", "gt"))


# --------------------------------------------------------------------------------------------
# SLACK
# --------------------------------------------------------------------------------------------
def test_slack_webhook_posts_text_and_blocks(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    message = OutgoingMessage("Weekly review", "All sleeves within bands <ok> & calm")
    with RecordingServer([Reply(200, "ok", content_type="text/html")]) as server:
        result = SlackChannel(timeout=5).send(message, server.base_url + SLACK_PATH)
    assert result.status is DeliveryStatus.SENT, result.error
    (request,) = server.seen
    assert request.path == SLACK_PATH
    body = request.json()
    assert body == slack_payload(message)
    assert body["text"] == "Weekly review\n\nAll sleeves within bands &lt;ok&gt; &amp; calm"
    assert body["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "Weekly review"}}
    assert body["blocks"][1]["text"]["type"] == "mrkdwn"
    assert "HTTP Request: POST" in caplog.text  # httpx did log the request, with the URL masked
    assert_no_secret([caplog.text], SLACK_SECRET, "CANARY")


def test_slack_rate_limit_is_retryable_with_retry_after(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    limited = Reply(429, "rate_limited", headers={"Retry-After": "30"}, content_type="text/plain")
    with RecordingServer([limited]) as server:
        result = SlackChannel(timeout=5).send(OutgoingMessage("s", "t"), server.base_url + SLACK_PATH)
    assert result.status is DeliveryStatus.RETRYABLE
    assert result.retry_after == 30.0
    assert len(server.seen) == 1
    assert_no_secret([result.error, caplog.text], SLACK_SECRET, "CANARY")


def test_slack_short_retry_after_is_waited_in_the_call() -> None:
    limited = Reply(429, "rate_limited", headers={"Retry-After": "0"}, content_type="text/plain")
    with RecordingServer([limited, Reply(200, "ok")]) as server:
        result = SlackChannel(timeout=5).send(OutgoingMessage("s", "t"), server.base_url + SLACK_PATH)
    assert result.sent, result.error
    assert len(server.seen) == 2


@pytest.mark.parametrize(
    ("reply", "status", "fragment"),
    [
        (
            Reply(400, "invalid_payload", content_type="text/plain"),
            DeliveryStatus.PERMANENT,
            "invalid_payload",
        ),
        (Reply(403, "invalid_token", content_type="text/plain"), DeliveryStatus.PERMANENT, "HTTP 403"),
        (Reply(410, "channel_is_archived", content_type="text/plain"), DeliveryStatus.PERMANENT, "archived"),
        (Reply(200, "no_text", content_type="text/plain"), DeliveryStatus.PERMANENT, "'no_text', not 'ok'"),
        (Reply(500, "oops", content_type="text/plain"), DeliveryStatus.RETRYABLE, "HTTP 500"),
    ],
)
def test_slack_failures(reply: Reply, status: DeliveryStatus, fragment: str, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with RecordingServer([reply]) as server:
        result = SlackChannel(timeout=5).send(OutgoingMessage("s", "t"), server.base_url + SLACK_PATH)
    assert result.status is status
    assert fragment in result.error
    assert_no_secret([result.error, caplog.text], SLACK_SECRET, "CANARY")


def test_slack_refuses_plain_http_to_another_host() -> None:
    result = SlackChannel().send(OutgoingMessage("s", "t"), f"http://hooks.example.com{SLACK_PATH}")
    assert result.status is DeliveryStatus.PERMANENT
    assert "must use https" in result.error and SLACK_SECRET not in result.error
    assert SlackChannel().send(OutgoingMessage("s", "t"), "not a url").status is DeliveryStatus.PERMANENT


# --------------------------------------------------------------------------------------------
# Nothing waits forever
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channel", ["SLACK", "TELEGRAM"])
def test_webhooks_to_a_server_that_never_answers_time_out(channel: str, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with silent_server() as base:
        if channel == "SLACK":
            sender, target = SlackChannel(timeout=SMALL_TIMEOUT), base + SLACK_PATH
        else:
            sender, target = TelegramChannel(TG_TOKEN, base, timeout=SMALL_TIMEOUT), "42"
        started = time.monotonic()
        result = sender.send(OutgoingMessage("s", "t"), target)
        elapsed = time.monotonic() - started
    assert result.status is DeliveryStatus.RETRYABLE
    assert "timed out" in result.error
    assert elapsed < SMALL_TIMEOUT + MARGIN
    assert_no_secret([result.error, caplog.text], SLACK_SECRET, TG_TOKEN, "CANARY")
