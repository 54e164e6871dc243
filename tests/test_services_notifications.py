"""The outbox on both backends, delivered to real local servers: aiosmtpd, an HTTP server
speaking Slack's webhook answers, a socket that accepts and never answers, a closed port."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from tests.support.cli import run_cli
from tests.support.http_server import RecordingServer, Reply, silent_server
from tests.support.ports import free_port
from tests.support.smtp_server import SMTP_PASSWORD, SMTP_USER
from tests.test_providers_channels import SLACK_PATH, SLACK_SECRET
from tradeassist.core.enums import Channel, NotificationStatus
from tradeassist.core.errors import ValidationError
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import Notification, User
from tradeassist.services import identity, notifications

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PENDING, SENT = NotificationStatus.PENDING, NotificationStatus.SENT
FAILED, SUPPRESSED = NotificationStatus.FAILED, NotificationStatus.SUPPRESSED


def smtp_env(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    """Log in with the canary password (STARTTLS off: a local server)."""
    monkeypatch.setenv("TRADEASSIST_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TRADEASSIST_SMTP_PORT", str(port))
    monkeypatch.setenv("TRADEASSIST_SMTP_FROM", "TradeAssist <tradeassist@example.com>")
    monkeypatch.setenv("TRADEASSIST_SMTP_STARTTLS", "no")
    monkeypatch.setenv("TRADEASSIST_SMTP_USER", SMTP_USER)
    monkeypatch.setenv("TRADEASSIST_SMTP_PASSWORD", SMTP_PASSWORD)


def no_smtp_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TRADEASSIST_SMTP_"):
            monkeypatch.delenv(name)


def enqueue(engine: Engine, user: User, subject: str = "Hello", **kwargs) -> int:  # type: ignore[no-untyped-def]
    args = {
        "user_id": user.user_id,
        "portfolio_id": None,
        "channel": Channel.EMAIL,
        "target": "owner@example.org",
        "payload": {"event": "TEST", "subject": subject, "body": f"{subject}, in words."},
    } | kwargs
    with unit_of_work(engine) as s:
        return notifications.enqueue(s, **args).notification_id


def row(engine: Engine, notification_id: int) -> Notification:
    with unit_of_work(engine, readonly=True) as s:
        return s.get(Notification, notification_id)


def statuses(engine: Engine) -> list[NotificationStatus]:
    with unit_of_work(engine, readonly=True) as s:
        return [n.status for n in s.exec(select(Notification).order_by(Notification.notification_id)).all()]


# --------------------------------------------------------------------------------------------
# Enqueueing
# --------------------------------------------------------------------------------------------
def test_a_duplicate_within_the_window_is_stored_suppressed(engine: Engine, admin: User) -> None:
    with unit_of_work(engine) as s:
        other = identity.add_user(
            s, actor=s.get(User, admin.user_id), email="o@example.com", password="o-pass-123"
        )
    key = {"dedup_key": "RUN_FAILED:7"}
    enqueue(engine, admin, now=T0, **key)
    enqueue(engine, admin, now=T0 + timedelta(hours=23), **key)  # within 24 h: suppressed
    enqueue(engine, other, now=T0 + timedelta(hours=1), **key)  # someone else
    enqueue(
        engine, admin, now=T0 + timedelta(hours=1), channel="SLACK", target="https://hooks.slack.com/x", **key
    )
    enqueue(engine, admin, now=T0 + timedelta(hours=1))  # no key: never a duplicate
    enqueue(engine, admin, now=T0 + timedelta(hours=25), **key)  # the window has passed
    enqueue(engine, admin, now=T0 + timedelta(hours=26), window=timedelta(minutes=30), **key)
    enqueue(engine, admin, now=T0 + timedelta(hours=26), window=timedelta(hours=2), **key)
    assert statuses(engine) == [PENDING, SUPPRESSED, PENDING, PENDING, PENDING, PENDING, PENDING, SUPPRESSED]


def test_enqueue_refuses_what_cannot_be_sent(engine: Engine, admin: User) -> None:
    with pytest.raises(ValidationError, match="channel 'PIGEON'"):
        enqueue(engine, admin, channel="PIGEON")
    with pytest.raises(ValidationError, match="needs a subject"):
        enqueue(engine, admin, payload={"body": "no subject"})
    with pytest.raises(ValidationError, match="needs a target"):
        enqueue(engine, admin, target="  ")
    assert statuses(engine) == []


# --------------------------------------------------------------------------------------------
# Dispatching
# --------------------------------------------------------------------------------------------
def test_dispatch_sends_over_smtp_and_records_it(engine, admin, smtp_server, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    controller, recorder = smtp_server
    smtp_env(monkeypatch, controller.port)
    first, second = enqueue(engine, admin, "First"), enqueue(engine, admin, "Second")
    suppressed = enqueue(engine, admin, "First", dedup_key="k")
    enqueue(engine, admin, "First again", dedup_key="k")
    report = notifications.dispatch(engine, now=T0)
    assert report.counts() == {"attempted": 3, "sent": 3, "retrying": 0, "failed": 0}
    assert [d.notification_id for d in report.deliveries] == [first, second, suppressed]
    subjects = [
        envelope.content.decode().split("Subject: ")[1].split("\r\n")[0] for envelope in recorder.envelopes
    ]
    assert subjects == ["First", "Second", "First"]
    assert "First, in words." in recorder.envelopes[0].content.decode()
    for notification_id in (first, second):
        sent = row(engine, notification_id)
        assert (sent.status, sent.sent_at, sent.attempts, sent.next_attempt_at, sent.last_error) == (
            SENT,
            T0,
            1,
            None,
            None,
        )
    assert statuses(engine)[-1] is SUPPRESSED
    assert notifications.dispatch(engine, now=T0 + timedelta(hours=1)).counts()["attempted"] == 0
    assert len(recorder.envelopes) == 3
    assert SMTP_PASSWORD not in caplog.text


def test_retry_after_is_honoured_then_sent(engine: Engine, admin: User, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    limited = Reply(429, "rate_limited", headers={"Retry-After": "900"}, content_type="text/plain")
    with RecordingServer([limited, Reply(200, "ok", content_type="text/plain")]) as server:
        webhook = server.base_url + SLACK_PATH
        nid = enqueue(engine, admin, channel="SLACK", target=webhook)
        first = notifications.dispatch(engine, now=T0)
        assert first.counts() == {"attempted": 1, "sent": 0, "retrying": 1, "failed": 0}
        waiting = row(engine, nid)
        # Slack asked for 15 minutes, longer than the first backoff (1 minute): its wait counts.
        assert (waiting.status, waiting.attempts) == (PENDING, 1)
        assert waiting.next_attempt_at == T0 + timedelta(seconds=900)
        assert "429" in waiting.last_error
        early = notifications.dispatch(engine, now=T0 + timedelta(seconds=899))
        assert early.counts()["attempted"] == 0 and len(server.seen) == 1
        later = notifications.dispatch(engine, now=T0 + timedelta(seconds=900))
        assert later.counts() == {"attempted": 1, "sent": 1, "retrying": 0, "failed": 0}
    done = row(engine, nid)
    assert (done.status, done.attempts, done.sent_at) == (SENT, 2, T0 + timedelta(seconds=900))
    assert SLACK_SECRET not in caplog.text + (waiting.last_error or "")
    with unit_of_work(engine, readonly=True) as s:
        [listed] = notifications.list_notifications(s, actor=s.get(User, admin.user_id))
    assert listed["target"] == "http://127.0.0.1/***" and SLACK_SECRET not in json.dumps(listed, default=str)


def test_a_push_subscription_is_listed_by_its_origin_only(engine: Engine, admin: User) -> None:
    """``notify list`` never shows a subscription's endpoint path or its ``auth`` secret."""
    subscription = json.dumps(
        {
            "endpoint": "https://push.example.net/wpush/v2/gAAAAAB-secret-path",
            "keys": {"p256dh": "BPublicKeyOfTheBrowser", "auth": "auth-secret-16b"},
        }
    )
    enqueue(engine, admin, channel="WEBPUSH", target=subscription)
    with unit_of_work(engine, readonly=True) as s:
        [listed] = notifications.list_notifications(s, actor=s.get(User, admin.user_id))
    shown = json.dumps(listed, default=str)
    assert listed["target"] == "https://push.example.net/***"
    assert "secret-path" not in shown and "auth-secret" not in shown


def test_retries_back_off_then_fail(engine: Engine, admin: User, monkeypatch: pytest.MonkeyPatch) -> None:
    smtp_env(monkeypatch, free_port())  # nothing listens there: retryable, no Retry-After
    nid = enqueue(engine, admin)
    when = T0
    for attempt, wait in ((1, 60), (2, 120)):
        report = notifications.dispatch(engine, now=when, max_attempts=3, timeout=2)
        assert report.counts()["retrying"] == 1
        pending = row(engine, nid)
        assert (pending.status, pending.attempts) == (PENDING, attempt)
        assert pending.next_attempt_at == when + timedelta(seconds=wait)
        assert "could not reach the server" in pending.last_error
        when = pending.next_attempt_at
    report = notifications.dispatch(engine, now=when, max_attempts=3, timeout=2)
    assert report.counts() == {"attempted": 1, "sent": 0, "retrying": 0, "failed": 1}
    failed = row(engine, nid)
    assert (failed.status, failed.attempts, failed.next_attempt_at) == (FAILED, 3, None)
    assert failed.last_error.startswith("gave up after 3 attempts: SMTP 127.0.0.1:")
    assert SMTP_PASSWORD not in failed.last_error


def test_permanent_failures_are_failed_at_once(engine: Engine, admin: User, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    no_smtp_env(monkeypatch)
    email = enqueue(engine, admin)
    push = enqueue(engine, admin, channel="WEBPUSH", target="browser")
    report = notifications.dispatch(engine, now=T0)
    assert report.counts() == {"attempted": 2, "sent": 0, "retrying": 0, "failed": 2}
    unconfigured, unsupported = row(engine, email), row(engine, push)
    assert (unconfigured.status, unconfigured.attempts) == (FAILED, 1)
    assert "TRADEASSIST_SMTP_HOST is not set" in unconfigured.last_error
    assert unsupported.status is FAILED and "not a push subscription" in unsupported.last_error
    assert notifications.dispatch(engine, now=T0 + timedelta(days=1)).counts()["attempted"] == 0


def test_a_server_that_never_answers_costs_one_timeout(engine: Engine, admin: User, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    nid = enqueue(engine, admin)
    with silent_server() as silent:
        smtp_env(monkeypatch, urlsplit(silent).port)
        started = time.monotonic()
        report = notifications.dispatch(engine, now=T0, timeout=0.5)
        elapsed = time.monotonic() - started
    assert elapsed < 0.5 + 1.0, elapsed
    assert report.counts()["retrying"] == 1
    waiting = row(engine, nid)
    assert waiting.status is PENDING and "no answer within 0.5 s" in waiting.last_error


def test_two_dispatchers_at_once_send_each_notification_once(engine, admin, smtp_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    controller, recorder = smtp_server
    smtp_env(monkeypatch, controller.port)
    ids = [enqueue(engine, admin, f"Note {i}") for i in range(8)]
    reports: list[notifications.DispatchReport] = []
    threads = [
        threading.Thread(target=lambda: reports.append(notifications.dispatch(engine))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(d.notification_id for r in reports for d in r.deliveries) == ids
    assert len(recorder.envelopes) == 8
    assert statuses(engine) == [SENT] * 8


# --------------------------------------------------------------------------------------------
# Listing, and the command line
# --------------------------------------------------------------------------------------------
def test_each_user_lists_their_own(engine: Engine, admin: User) -> None:
    with unit_of_work(engine) as s:
        other = identity.add_user(
            s, actor=s.get(User, admin.user_id), email="o@example.com", password="o-pass-123"
        )
    enqueue(engine, admin, "for the admin")
    enqueue(engine, other, "for o", target="o@example.com")
    with unit_of_work(engine, readonly=True) as s:
        everyone = notifications.list_notifications(s, actor=s.get(User, admin.user_id))
        own = notifications.list_notifications(s, actor=s.get(User, other.user_id))
        pending = notifications.list_notifications(s, actor=s.get(User, admin.user_id), status="pending")
        with pytest.raises(ValidationError, match="status 'lost': expected one of PENDING"):
            notifications.list_notifications(s, actor=s.get(User, admin.user_id), status="lost")
    assert [r["subject"] for r in everyone] == ["for o", "for the admin"]
    assert [r["subject"] for r in own] == ["for o"]
    assert len(pending) == 2


@pytest.mark.slow
def test_notify_cli_dispatches_and_lists(
    db_url: str, engine: Engine, admin: User, smtp_server, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    controller, recorder = smtp_server
    enqueue(engine, admin, "By cron")
    enqueue(engine, admin, "To Slack", channel="SLACK", target=f"http://127.0.0.1:{free_port()}{SLACK_PATH}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env |= {
        "TRADEASSIST_HOME": str(tmp_path / "home"),
        "TRADEASSIST_DB_URL": db_url,
        "TRADEASSIST_SMTP_HOST": "127.0.0.1",
        "TRADEASSIST_SMTP_PORT": str(controller.port),
        "TRADEASSIST_SMTP_FROM": "tradeassist@example.com",
        "TRADEASSIST_SMTP_STARTTLS": "no",
        "TRADEASSIST_SMTP_USER": SMTP_USER,
        "TRADEASSIST_SMTP_PASSWORD": SMTP_PASSWORD,
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        done = run_cli(args, env)
        assert "Traceback" not in done.stderr, done.stderr
        assert (
            SMTP_PASSWORD not in done.stdout + done.stderr and SLACK_SECRET not in done.stdout + done.stderr
        )
        return done

    dispatched = cli("notify", "dispatch", "--json", "--timeout", "2")
    assert dispatched.returncode == 0, dispatched.stderr
    result = json.loads(dispatched.stdout)
    assert {k: result[k] for k in ("attempted", "sent", "retrying", "failed")} == {
        "attempted": 2,
        "sent": 1,
        "retrying": 1,
        "failed": 0,
    }
    assert len(recorder.envelopes) == 1
    listed = json.loads(cli("notify", "list", "--json").stdout)
    assert [(r["subject"], r["status"]) for r in listed] == [("To Slack", "PENDING"), ("By cron", "SENT")]
    assert listed[0]["target"] == "http://127.0.0.1/***"
    sent = json.loads(cli("notify", "list", "--status", "SENT", "--json").stdout)
    assert [r["subject"] for r in sent] == ["By cron"]
    text = cli("notify", "dispatch")
    assert text.returncode == 0 and text.stdout.startswith("attempted: 0, sent: 0")
    bad = cli("notify", "list", "--status", "nope")
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error: status 'nope'")
