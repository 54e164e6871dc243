"""Every outbound call is bounded end to end (issue #16).

Each client is pointed at a server on 127.0.0.1 that accepts the connection and then never
finishes answering (``tests/support/slow_servers.py``): silent, dripping its status line and
headers (or its SMTP greeting) one byte every 0.2 s, or sending the headers and dripping the
body (or every SMTP reply). The per-step timeouts are 5 s, longer than the whole deadline of
1 s, so only the deadline can stop the call: each must give up within its deadline plus a
second, with one line naming the host and the deadline.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import smtplib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.http_server import Reply, ScriptedServer, fast_policy
from tests.support.slow_servers import HTTP, KINDS, NOT_READING, SLOW_HEADERS, SMTP, DripServer
from tradeassist.core.errors import ProviderError
from tradeassist.providers.channels import (
    DeliveryResult,
    DeliveryStatus,
    EmailChannel,
    OutgoingMessage,
    SlackChannel,
    SmtpSettings,
    TelegramChannel,
)
from tradeassist.providers.channels.email import _DeadlineSMTP, _timed_out
from tradeassist.providers.fx.ecb import EcbFxProvider
from tradeassist.providers.http import HttpClient, HttpPolicy, HttpTimeout
from tradeassist.providers.prices import get_price_provider
from tradeassist.providers.reviewers import ReviewRequest, get_reviewer
from tradeassist.services import price_refresh, reports
from tradeassist.services.price_refresh import RefreshTarget

DEADLINE = 1.0
STEP = 5.0  # every per-step timeout: longer than the deadline, so it never decides
MARGIN = 1.0
TG_TOKEN = "123456789:CANARY-telegram-token_XYZ"
SLACK_PATH = "/services/T0001AAAA/B0002BBBB/CANARYslacksecret123"
CONFIGURATION = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"  # its deadline table


def policy() -> HttpPolicy:
    return fast_policy(
        connect_timeout=STEP, read_timeout=STEP, write_timeout=STEP, pool_timeout=STEP, deadline=DEADLINE
    )


def manifesto_request() -> ReviewRequest:
    rules = {"sleeve_targets": {"CORE": "1"}, "min_trade_base": "100", "fee_per_trade_base": "1.50"}
    return ReviewRequest("manifesto", rules, manifesto="# Plan\nCORE: a global tracker.\n")


def timed(call: Callable[[], object]) -> tuple[float, str]:
    """Seconds ``call`` took and what it said: a failed delivery's error or the exception."""
    started = time.monotonic()
    try:
        outcome = call()
    except ProviderError as exc:
        message = str(exc)
        assert isinstance(exc, HttpTimeout), message
    else:
        assert isinstance(outcome, DeliveryResult) and outcome.status is DeliveryStatus.RETRYABLE, outcome
        message = outcome.error or ""
    return time.monotonic() - started, message


def assert_gave_up_at_the_deadline(elapsed: float, message: str) -> None:
    assert DEADLINE * 0.9 <= elapsed < DEADLINE + MARGIN, (elapsed, message)
    assert "\n" not in message and "127.0.0.1" in message, message
    assert re.search(rf"within the {DEADLINE:g} s deadline", message), message


def against_each_kind(protocol: str, call: Callable[[DripServer], object]) -> dict[str, tuple[float, str]]:
    """``call`` against a silent, a slow-headers and a slow-body server, all three at once
    (to keep the suite short; each is timed on its own)."""
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(DripServer(kind, protocol)) for kind in KINDS]
        with ThreadPoolExecutor(len(servers)) as pool:
            futures = {server.kind: pool.submit(timed, functools.partial(call, server)) for server in servers}
            return {kind: future.result() for kind, future in futures.items()}


# --------------------------------------------------------------------------------------------
# HTTP clients: price providers, FX, both LLM reviewers, Telegram, Slack
# --------------------------------------------------------------------------------------------
def _stooq(url: str) -> object:
    return get_price_provider("stooq", base_url=url, policy=policy()).fetch("vusa.uk")  # type: ignore[attr-defined]


def _twelvedata(url: str) -> object:
    provider = get_price_provider("twelvedata", base_url=url, api_key="td-key", policy=policy())
    return provider.fetch("VUSA")  # type: ignore[attr-defined]


def _yahoo(url: str) -> object:
    return get_price_provider("yahoo", base_url=url, policy=policy()).fetch("VUSA.L")  # type: ignore[attr-defined]


def _ecb(url: str) -> object:
    return EcbFxProvider(base_url=url, client=HttpClient(policy())).fetch()


def _openai(url: str) -> object:
    reviewer = get_reviewer("openai-compatible", base_url=url, api_key="k", timeout=STEP, deadline=DEADLINE)
    return reviewer.review(manifesto_request())


def _anthropic(url: str) -> object:
    reviewer = get_reviewer("anthropic", base_url=url, api_key="k", timeout=STEP, deadline=DEADLINE)
    return reviewer.review(manifesto_request())


def _telegram(url: str) -> object:
    channel = TelegramChannel(TG_TOKEN, url, timeout=STEP, deadline=DEADLINE)
    return channel.send(OutgoingMessage("s", "t"), "42")


def _slack(url: str) -> object:
    return SlackChannel(timeout=STEP, deadline=DEADLINE).send(OutgoingMessage("s", "t"), url + SLACK_PATH)


HTTP_CLIENTS = {
    "stooq": _stooq,
    "twelvedata": _twelvedata,
    "yahoo": _yahoo,
    "ecb": _ecb,
    "openai-compatible": _openai,
    "anthropic": _anthropic,
    "telegram": _telegram,
    "slack": _slack,
}


@pytest.mark.parametrize("client", HTTP_CLIENTS)
def test_http_clients_give_up_at_their_deadline(client: str) -> None:
    results = against_each_kind(HTTP, lambda server: HTTP_CLIENTS[client](server.url))
    for elapsed, message in results.values():
        assert_gave_up_at_the_deadline(elapsed, message)
        assert TG_TOKEN not in message and "CANARYslacksecret" not in message


def test_a_large_body_to_a_server_that_stops_reading_is_bounded_too() -> None:
    """A request body goes in pieces, each within the time left: a server that reads nothing
    cannot hold the send once the socket buffers are full."""
    with DripServer(NOT_READING) as server:
        elapsed, message = timed(lambda: HttpClient(policy()).post(server.url, content=b"x" * (16 << 20)))
    assert_gave_up_at_the_deadline(elapsed, message)


def test_the_deadline_holds_through_a_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with DripServer(SLOW_HEADERS) as proxy:
        for name in ("http_proxy", "HTTP_PROXY"):
            monkeypatch.setenv(name, proxy.url)
        for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        started = time.monotonic()
        with pytest.raises(HttpTimeout, match="1 s deadline"):
            HttpClient(policy()).get("http://prices.invalid/q")  # reachable only through the proxy
        elapsed = time.monotonic() - started
        assert proxy.accepted == 1
    assert elapsed < DEADLINE + MARGIN


# --------------------------------------------------------------------------------------------
# SMTP: the EMAIL channel (notify dispatch) and report email
# --------------------------------------------------------------------------------------------
def smtp_settings(port: int) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=port, sender="tradeassist@example.com", starttls=False)


def test_email_gives_up_at_its_deadline() -> None:
    def send(server: DripServer) -> object:
        channel = EmailChannel(smtp_settings(server.port), timeout=STEP, deadline=DEADLINE)
        return channel.send(OutgoingMessage("s", "t"), "me@example.org")

    for elapsed, message in against_each_kind(SMTP, send).values():
        assert_gave_up_at_the_deadline(elapsed, message)


def test_report_email_gives_up_at_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """``report email`` sends through ``reports.send_email`` with the SMTP settings of the
    environment (one server at a time: they are read from the environment at each send)."""
    message = OutgoingMessage(
        "tradeassist: run 1", "text", html="<p>html</p>", attachments=(("run-1.html", "text/html", b"<p/>"),)
    )
    monkeypatch.setenv("TRADEASSIST_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TRADEASSIST_SMTP_FROM", "tradeassist@example.com")
    monkeypatch.setenv("TRADEASSIST_SMTP_STARTTLS", "no")
    monkeypatch.delenv("TRADEASSIST_SMTP_USER", raising=False)
    with DripServer(SLOW_HEADERS, SMTP) as server:
        monkeypatch.setenv("TRADEASSIST_SMTP_PORT", str(server.port))
        elapsed, error = timed(
            lambda: reports.send_email(message, "me@example.org", timeout=STEP, deadline=DEADLINE)
        )
    assert_gave_up_at_the_deadline(elapsed, error)


def test_a_large_message_to_a_server_that_stops_reading_is_bounded_too() -> None:
    """The message goes in pieces, each within the time left: a server that accepts DATA and
    then reads nothing cannot hold the send once the socket buffers are full. (Driven below
    the channel, so that building a message this large is not timed.)"""
    with DripServer(NOT_READING, SMTP) as server:
        smtp = _DeadlineSMTP(timeout=STEP, deadline=time.monotonic() + DEADLINE, clock=time.monotonic)
        smtp.connect("127.0.0.1", server.port)
        smtp.ehlo()
        smtp.mail("tradeassist@example.com")
        smtp.rcpt("me@example.org")
        started = time.monotonic()
        with pytest.raises((smtplib.SMTPServerDisconnected, TimeoutError)) as caught:
            smtp.data(b"x" * (16 << 20))
        elapsed = time.monotonic() - started
        smtp.close()
    assert _timed_out(caught.value)
    assert elapsed < DEADLINE + MARGIN


# --------------------------------------------------------------------------------------------
# prices refresh: several dead listings at once, results in order
# --------------------------------------------------------------------------------------------
def targets(count: int) -> list[RefreshTarget]:
    return [RefreshTarget(i, f"T{i}", "XLON", "stooq", f"t{i}.uk", None) for i in range(count)]


def test_a_refresh_of_dead_listings_waits_out_their_deadlines_together() -> None:
    with DripServer(SLOW_HEADERS) as server:
        started = time.monotonic()
        fetched = price_refresh.fetch_targets(
            targets(price_refresh.MAX_PARALLEL_DOWNLOADS),
            provider_options={"stooq": {"base_url": server.url, "policy": policy()}},
        )
        elapsed = time.monotonic() - started
        at_once = server.most_at_once
    assert elapsed < DEADLINE + MARGIN  # one deadline, not four
    assert at_once == price_refresh.MAX_PARALLEL_DOWNLOADS
    assert [f.target.ticker for f in fetched] == ["T0", "T1", "T2", "T3"]
    assert all(f.series is None and f.error and "1 s deadline" in f.error for f in fetched)


TD_BODY = {
    "meta": {"symbol": "VUSA", "interval": "1day", "currency": "GBP", "exchange_timezone": "Europe/London"},
    "values": [{"datetime": "2024-01-12", "close": "77.10"}],
    "status": "ok",
}


def test_refresh_keeps_the_targets_order_whatever_finishes_first() -> None:
    routes = {"/time_series": Reply(200, json.dumps(TD_BODY), content_type="application/json")}
    with DripServer(SLOW_HEADERS) as dead, ScriptedServer(routes) as alive:
        mixed = targets(5)
        for i in (1, 3):  # these two answer at once, the three others never
            mixed[i] = RefreshTarget(i, f"T{i}", "XLON", "twelvedata", f"T{i}", None)
        options = {
            "stooq": {"base_url": dead.url, "policy": policy()},
            "twelvedata": {"base_url": alive.base_url, "api_key": "td-key", "policy": policy()},
        }
        started = time.monotonic()
        fetched = price_refresh.fetch_targets(mixed, provider_options=options, workers=2)
        elapsed = time.monotonic() - started
        at_once = dead.most_at_once
    assert [f.target.ticker for f in fetched] == ["T0", "T1", "T2", "T3", "T4"]
    assert [f.series is not None for f in fetched] == [False, True, False, True, False]
    assert at_once <= 2
    assert elapsed < 2 * DEADLINE + MARGIN  # three dead ones, two at a time


def test_workers_must_be_positive() -> None:
    with pytest.raises(Exception, match="at least 1"):
        price_refresh.fetch_targets(targets(1), workers=0)


# --------------------------------------------------------------------------------------------
# The documented numbers are the true ones
# --------------------------------------------------------------------------------------------
def test_the_default_deadlines_are_the_documented_ones() -> None:
    from tradeassist.providers.reviewers.anthropic import AnthropicReviewer
    from tradeassist.providers.reviewers.openai_compat import OpenAICompatibleReviewer

    assert HttpPolicy().deadline == 120  # price providers and ECB FX without a policy
    for reviewer in (AnthropicReviewer(api_key="k"), OpenAICompatibleReviewer(api_key="k")):
        assert reviewer._client.policy.deadline == 120 and reviewer._client.policy.read_timeout == 120
    email = EmailChannel()
    assert (email.timeout, email.deadline) == (30, 120)
    for channel in (SlackChannel(), TelegramChannel()):
        assert channel._client.policy.deadline == 30 and channel._client.policy.read_timeout == 10
    assert price_refresh.MAX_PARALLEL_DOWNLOADS == 4
    table = CONFIGURATION.read_text(encoding="utf-8")
    for row, numbers in (
        ("price downloads", ("120 s", "4 listings at once")),
        ("reviewers", ("120 s",)),
        ("EMAIL", ("30 s", "120 s")),
        ("TELEGRAM, SLACK", ("10 s", "30 s")),
    ):
        line = next(line for line in table.splitlines() if line.startswith(f"| {row}"))
        assert all(number in line for number in numbers), line
