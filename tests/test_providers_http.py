"""The HTTP helper against a real local server: retries, Retry-After, timeouts, redaction."""

from __future__ import annotations

import logging
import socket
import time
from email.utils import formatdate

import httpx
import pytest

from tests.support.http_server import Reply, ScriptedServer, fast_policy, silent_server
from tradeassist.core.errors import ProviderError
from tradeassist.providers.http import (
    HttpClient,
    HttpError,
    HttpPolicy,
    HttpTimeout,
    parse_retry_after,
    redact,
    redact_url,
    secrets_in,
)


class SleepRecorder:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


# --------------------------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------------------------
def test_429_with_retry_after_seconds_then_200_waits_what_the_server_asked() -> None:
    sleep = SleepRecorder()
    routes = {"/q": [Reply(429, "slow down", {"Retry-After": "1"}), Reply(200, "ok")]}
    with ScriptedServer(routes) as server:
        response = HttpClient(fast_policy(), sleep=sleep).get(f"{server.base_url}/q")
    assert response.status == 200 and response.text == "ok"
    assert sleep.calls == [1.0]
    assert server.hits("/q") == 2


def test_429_with_retry_after_http_date_is_honoured() -> None:
    sleep = SleepRecorder()
    now = 1_800_000_000.0
    when = formatdate(now + 2, usegmt=True)
    routes = {"/q": [Reply(429, "", {"Retry-After": when}), Reply(200, "ok")]}
    with ScriptedServer(routes) as server:
        client = HttpClient(fast_policy(), sleep=sleep, wallclock=lambda: now)
        assert client.get(f"{server.base_url}/q").text == "ok"
    assert sleep.calls == [2.0]


def test_real_sleep_for_a_short_retry_after() -> None:
    routes = {"/q": [Reply(503, "busy", {"Retry-After": "0"}), Reply(200, "ok")]}
    with ScriptedServer(routes) as server:
        started = time.monotonic()
        assert HttpClient(fast_policy()).get(f"{server.base_url}/q").text == "ok"
    assert time.monotonic() - started < 2


def test_503s_then_success_backs_off_exponentially() -> None:
    sleep = SleepRecorder()
    routes = {"/q": [Reply(503), Reply(503), Reply(200, "fine")]}
    with ScriptedServer(routes) as server:
        policy = fast_policy(max_attempts=4, backoff_initial=0.01, backoff_factor=2.0, backoff_max=1.0)
        assert HttpClient(policy, sleep=sleep).get(f"{server.base_url}/q").text == "fine"
        assert server.hits("/q") == 3
    assert sleep.calls == [0.01, 0.02]


def test_always_500_fails_after_max_attempts_with_a_provider_error() -> None:
    sleep = SleepRecorder()
    with ScriptedServer({"/q": Reply(500, "<html>Internal error</html>")}) as server:
        with pytest.raises(ProviderError) as caught:
            HttpClient(fast_policy(max_attempts=3), sleep=sleep).get(f"{server.base_url}/q")
        assert server.hits("/q") == 3
    error = caught.value
    assert isinstance(error, HttpError) and error.status == 500 and error.attempts == 3
    assert "HTTP 500" in str(error) and "after 3 attempts" in str(error)
    assert "Internal error" in str(error)  # a snippet of the body says what the server said
    assert len(sleep.calls) == 2


def test_client_errors_are_not_retried() -> None:
    with ScriptedServer({"/q": Reply(404, "no such symbol")}) as server:
        with pytest.raises(HttpError) as caught:
            HttpClient(fast_policy()).get(f"{server.base_url}/q")
        assert server.hits("/q") == 1
    assert caught.value.status == 404


def test_retry_after_beyond_the_cap_fails_at_once() -> None:
    sleep = SleepRecorder()
    with ScriptedServer({"/q": Reply(429, "", {"Retry-After": "3600"})}) as server:
        with pytest.raises(HttpError, match=r"retry after 3600 s") as caught:
            HttpClient(fast_policy(max_total_wait=5), sleep=sleep).get(f"{server.base_url}/q")
        assert server.hits("/q") == 1
    assert sleep.calls == []
    assert caught.value.status == 429


def test_total_wait_budget_stops_retries_before_max_attempts() -> None:
    sleep = SleepRecorder()
    policy = fast_policy(
        max_attempts=10, backoff_initial=1.0, backoff_factor=2.0, backoff_max=100, max_total_wait=3.5
    )
    with ScriptedServer({"/q": Reply(502)}) as server, pytest.raises(HttpError):
        HttpClient(policy, sleep=sleep).get(f"{server.base_url}/q")
    assert sleep.calls == [1.0, 2.0]  # a third wait (4 s) would exceed the 3.5 s budget
    assert sum(sleep.calls) <= 3.5


def test_post_is_not_retried_on_500_but_is_on_429() -> None:
    with ScriptedServer({"/hook": Reply(500)}) as server:
        with pytest.raises(HttpError):
            HttpClient(fast_policy()).post(f"{server.base_url}/hook", json={"a": 1})
        assert server.hits("/hook") == 1
    with ScriptedServer({"/hook": [Reply(429, "", {"Retry-After": "0"}), Reply(200, "sent")]}) as server:
        assert HttpClient(fast_policy()).post(f"{server.base_url}/hook", json={"a": 1}).text == "sent"


def test_connection_refused_is_retried_then_fails() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    sleep = SleepRecorder()
    with pytest.raises(HttpError, match="could not connect") as caught:
        HttpClient(fast_policy(max_attempts=2), sleep=sleep).get(f"http://127.0.0.1:{port}/q")
    assert caught.value.attempts == 2 and len(sleep.calls) == 1


# --------------------------------------------------------------------------------------------
# Nothing waits forever
# --------------------------------------------------------------------------------------------
def test_a_server_that_never_answers_times_out_within_the_read_timeout() -> None:
    policy = fast_policy(read_timeout=0.3, max_attempts=2, backoff_initial=0.01)
    with silent_server() as base_url:
        started = time.monotonic()
        with pytest.raises(HttpTimeout) as caught:
            HttpClient(policy).get(f"{base_url}/q")
        elapsed = time.monotonic() - started
    assert caught.value.attempts == 2
    assert 0.5 <= elapsed < 2.0  # two reads of 0.3 s each, plus a tiny backoff


def test_the_deadline_bounds_the_whole_call_even_with_generous_timeouts() -> None:
    policy = fast_policy(read_timeout=10, max_attempts=5, deadline=0.4)
    with silent_server() as base_url:
        started = time.monotonic()
        with pytest.raises(HttpTimeout):
            HttpClient(policy).get(f"{base_url}/q")
        assert time.monotonic() - started < 1.5


def test_policy_refuses_unbounded_settings() -> None:
    with pytest.raises(ValueError):
        HttpPolicy(read_timeout=0)
    with pytest.raises(ValueError):
        HttpPolicy(max_attempts=0)


# --------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------
def test_error_for_a_url_with_apikey_never_contains_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = "Invalid apikey SECRETKEY123 for https://x/?apikey=SECRETKEY123"
    with ScriptedServer({"/time_series": Reply(503, body)}) as server, pytest.raises(HttpError) as caught:
        HttpClient(fast_policy(max_attempts=2)).get(
            f"{server.base_url}/time_series?symbol=VUSA&apikey=SECRETKEY123"
        )
    error = caught.value
    everything = " ".join([str(error), repr(error), error.url, error.body, repr(error.context), caplog.text])
    assert "SECRETKEY123" not in everything
    assert "apikey=***" in str(error)
    assert error.__cause__ is None and error.__context__ is None


def test_key_passed_as_params_is_redacted_too(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with ScriptedServer({"/q": Reply(500)}) as server:
        with pytest.raises(HttpError) as caught:
            HttpClient(fast_policy(max_attempts=2)).get(
                f"{server.base_url}/q", params={"symbol": "VUSA", "api_key": "SECRETKEY123"}
            )
        assert server.seen[0].query["api_key"] == ["SECRETKEY123"]  # it was sent
    assert "SECRETKEY123" not in str(caught.value) + caplog.text


def test_bot_token_in_path_and_authorization_header_are_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    body = f"bad token {token}; auth was Bearer sk-live-XYZ987654"
    routes = {f"/bot{token}/sendMessage": Reply(502, body)}
    with ScriptedServer(routes) as server, pytest.raises(HttpError) as caught:
        HttpClient(fast_policy(max_attempts=2)).post(
            f"{server.base_url}/bot{token}/sendMessage",
            json={"text": "hi"},
            headers={"Authorization": "Bearer sk-live-XYZ987654"},
        )
    shown = str(caught.value) + caught.value.body + caplog.text
    assert token not in shown and "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in shown
    assert "sk-live-XYZ987654" not in shown
    assert "/bot***/sendMessage" in str(caught.value)


def test_timeout_message_has_no_secret() -> None:
    with silent_server() as base_url, pytest.raises(HttpTimeout) as caught:
        HttpClient(fast_policy(read_timeout=0.2, max_attempts=1)).get(f"{base_url}/q?token=TOPSECRET99")
    assert "TOPSECRET99" not in str(caught.value)


def test_redact_url_masks_sensitive_names_only() -> None:
    url = "https://api.example.com/time_series?symbol=VUSA&apikey=abc123&access_token=t0k&password=pw&interval=1day"
    shown = redact_url(url)
    assert shown == (
        "https://api.example.com/time_series?symbol=VUSA&apikey=***&access_token=***&password=***&interval=1day"
    )
    assert redact_url("https://user:hunter2@host/x") == "https://user:***@host/x"
    assert (
        redact_url("https://api.telegram.org/bot12345:ABC-def_ghi/getMe")
        == "https://api.telegram.org/bot***/getMe"
    )
    assert redact_url("https://stooq.com/q/d/l/?s=vusa.uk&i=d") == "https://stooq.com/q/d/l/?s=vusa.uk&i=d"


def test_redact_masks_given_secrets_in_any_form() -> None:
    text = "key a/b+c= seen as a%2Fb%2Bc%3D and a%2Fb%2Bc%3D; url https://x/?token=zzz&x=1"
    assert redact(text, ["a/b+c="]) == "key *** seen as *** and ***; url https://x/?token=***&x=1"
    assert redact("nothing here", [None, ""]) == "nothing here"


def test_secrets_in_finds_query_header_and_path_secrets() -> None:
    found = secrets_in(
        "https://h/bot1:abc/x?apikey=k1",
        {"api_key": "k2", "symbol": "VUSA"},
        {"Authorization": "Bearer k3", "Accept": "text/csv"},
    )
    assert {"k1", "k2", "k3", "Bearer k3", "1:abc"} <= found
    assert "VUSA" not in found and "text/csv" not in found


# --------------------------------------------------------------------------------------------
# Retry-After parsing
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("-3", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 60.0),
        ("Wed, 21 Oct 2015 07:26:00 GMT", 0.0),  # in the past: go now
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = 1445412420.0  # 2015-10-21 07:27:00 UTC
    assert parse_retry_after(header, now=now) == expected


def test_success_response_carries_redacted_url_and_headers() -> None:
    with ScriptedServer({"/q": Reply(200, "x", {"X-Test": "1"})}) as server:
        response = HttpClient(fast_policy()).get(f"{server.base_url}/q", params={"apikey": "SEKRIT"})
        assert server.seen[0].headers["User-Agent"].startswith("tradeassist/")
    assert "SEKRIT" not in response.url and response.headers["x-test"] == "1"


def test_an_injected_transport_serves_many_calls_and_is_not_closed() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(503 if len(calls) == 1 else 200, text="ok")

    client = HttpClient(fast_policy(), transport=httpx.MockTransport(handler), sleep=SleepRecorder())
    assert client.get("http://feed.invalid/a").text == "ok"  # a 503, then a retry
    assert client.get("http://feed.invalid/b").text == "ok"
    assert calls == ["http://feed.invalid/a", "http://feed.invalid/a", "http://feed.invalid/b"]
