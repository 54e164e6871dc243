"""WEBPUSH against a local push service on 127.0.0.1 that does what a browser vendor's does.

The service holds the subscription's private key and auth secret (made here, as a browser
makes them), checks each request's VAPID JWT with PyJWT against the public key in
``Authorization: vapid t=..., k=...`` (signature, ``aud`` = its origin, ``exp`` within 24 h,
``sub``) and decrypts the body with ``http_ece`` (the reference aes128gcm implementation,
independent of the channel's, which uses ``cryptography`` directly); only then does it
answer as scripted. The channel's encryption is also checked byte for byte against RFC 8291's
Appendix A example.

The endpoint's token, the auth secret, the VAPID private key and the JWT are canaries: none
may show in a result's error, a log line or the outbox's ``last_error``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import pathlib
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import http_ece
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.engine import Engine

from tests.support.http_server import Reply, silent_server
from tests.support.ports import free_port
from tradeassist.core.enums import Channel, NotificationStatus
from tradeassist.core.errors import ConfigError
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import Notification, User
from tradeassist.providers.channels import (
    DeliveryStatus,
    OutgoingMessage,
    WebPushChannel,
    channel_names,
    get_channel,
    webpush,
)
from tradeassist.services import notifications

TOKEN = "CANARYpushToken0123456789abcdefXYZ"
PUSH_PATH = f"/push/v1/{TOKEN}"  # not one of the known services' shapes: masked as in flight
SUBJECT = "mailto:owner@example.com"
DAY = 24 * 3600
SMALL_TIMEOUT = 0.5
MARGIN = 0.75
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_private(key: ec.EllipticCurvePrivateKey) -> str:
    return b64(key.private_numbers().private_value.to_bytes(32, "big"))


def public_text(key: ec.EllipticCurvePrivateKey) -> str:
    return b64(
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


@pytest.fixture
def vapid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def assert_no_secret(texts: list[str | None], *secrets: str) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in (text or ""), f"secret leaked into: {text}"


# --------------------------------------------------------------------------------------------
# The push service
# --------------------------------------------------------------------------------------------
class PushService:
    """A browser vendor's push service for one subscription, whose keys it makes and keeps.

    A request that fails a check is refused as a real service would (401/403 for VAPID, 400,
    413) and the reason kept in ``refusals``; one that passes is decrypted into ``pushes``
    (with its JWT claims in ``claims``) and answered with the next of ``replies`` (the last
    repeats; default ``201 Created``).
    """

    def __init__(self, vapid_public: str, replies: list[Reply] | None = None) -> None:
        self.ua_key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.vapid_public = vapid_public
        self._replies = list(replies or [Reply(201, headers={"Location": "/message/m-1"})])
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.pushes: list[Any] = []
        self.claims: list[dict[str, Any]] = []
        self.tokens: list[str] = []
        self.refusals: list[str] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = dict(self.headers)
                service.requests.append((headers, body))
                refusal = service._check(urlsplit(self.path).path, headers, body)
                reply = Reply(refusal[0], refusal[1]) if refusal else service._next_reply()
                payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def endpoint(self) -> str:
        return self.origin + PUSH_PATH

    @property
    def auth_text(self) -> str:
        return b64(self.auth)

    def subscription(self, **overrides: Any) -> str:
        """The subscription as the page's ``PushSubscription.toJSON()`` gives it."""
        keys = {"p256dh": public_text(self.ua_key), "auth": self.auth_text}
        found: dict[str, Any] = {"endpoint": self.endpoint, "expirationTime": None, "keys": keys}
        found.update(overrides)
        return json.dumps(found)

    def _next_reply(self) -> Reply:
        return self._replies.pop(0) if len(self._replies) > 1 else self._replies[0]

    def _refuse(self, status: int, reason: str) -> tuple[int, str]:
        self.refusals.append(reason)
        return status, reason

    def _check(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str] | None:
        if path != PUSH_PATH:
            return self._refuse(404, "no such subscription")
        found = re.fullmatch(
            r"vapid t=([A-Za-z0-9_.-]+), ?k=([A-Za-z0-9_-]+)", headers.get("Authorization", "")
        )
        if not found:
            return self._refuse(401, "no VAPID Authorization header")
        token, key = found.groups()
        if key != self.vapid_public:
            return self._refuse(403, "not the applicationServerKey the subscription was made with")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(key))
        try:
            claims = jwt.decode(
                token,
                public,
                algorithms=["ES256"],
                audience=self.origin,
                options={"require": ["aud", "exp", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            return self._refuse(401, f"VAPID token refused: {exc}")
        if jwt.get_unverified_header(token) != {"typ": "JWT", "alg": "ES256"}:
            return self._refuse(401, "VAPID header is not typ JWT, alg ES256")
        if claims["exp"] > time.time() + DAY:
            return self._refuse(401, "VAPID exp more than 24 hours ahead")
        if not str(claims["sub"]).startswith(("mailto:", "https://")):
            return self._refuse(401, "VAPID sub is neither mailto: nor https:")
        if headers.get("Content-Encoding") != "aes128gcm":
            return self._refuse(400, "Content-Encoding is not aes128gcm")
        if not re.fullmatch(r"\d+", headers.get("TTL", "")):
            return self._refuse(400, "no TTL header")
        if len(body) > 4096:
            return self._refuse(413, f"payload of {len(body)} bytes is over 4096")
        try:
            plaintext = http_ece.decrypt(
                body, private_key=self.ua_key, auth_secret=self.auth, version="aes128gcm"
            )
        except Exception as exc:
            return self._refuse(400, f"cannot decrypt: {exc}")
        self.tokens.append(token)
        self.claims.append(claims)
        self.pushes.append(json.loads(plaintext))
        return None

    def __enter__(self) -> PushService:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def channel(key: ec.EllipticCurvePrivateKey, **options: Any) -> WebPushChannel:
    return WebPushChannel(raw_private(key), SUBJECT, **{"timeout": 5, **options})


# --------------------------------------------------------------------------------------------
# Encryption, independently checked
# --------------------------------------------------------------------------------------------
# RFC 8291 Appendix A: published example keys, salt and result (test data, not credentials).
RFC_PLAINTEXT = b"When I grow up, I want to be a watermelon"
RFC_AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
RFC_UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
RFC_UA_PUBLIC = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
RFC_SALT = "DGv6ra1nlYgDCS1FRnbzlw"
RFC_AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
RFC_BODY = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml"
    "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT"
    "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)


def test_encryption_matches_rfc_8291_appendix_a_byte_for_byte() -> None:
    server_key = ec.derive_private_key(int.from_bytes(unb64(RFC_AS_PRIVATE), "big"), ec.SECP256R1())
    body = webpush.encrypt(
        RFC_PLAINTEXT, unb64(RFC_UA_PUBLIC), unb64(RFC_AUTH), salt=unb64(RFC_SALT), server_key=server_key
    )
    assert b64(body) == RFC_BODY
    ua_key = ec.derive_private_key(int.from_bytes(unb64(RFC_UA_PRIVATE), "big"), ec.SECP256R1())
    assert http_ece.decrypt(unb64(RFC_BODY), private_key=ua_key, auth_secret=unb64(RFC_AUTH)) == RFC_PLAINTEXT


def test_each_message_has_its_own_salt_and_key() -> None:
    ua_key = ec.generate_private_key(ec.SECP256R1())
    ua_public, auth = unb64(public_text(ua_key)), os.urandom(16)
    first, second = (webpush.encrypt(b"same", ua_public, auth) for _ in range(2))
    assert first[:16] != second[:16] and first[21:86] != second[21:86]
    for body in (first, second):
        assert int.from_bytes(body[16:20], "big") == 4096 and body[20] == 65
        assert http_ece.decrypt(body, private_key=ua_key, auth_secret=auth) == b"same"


# --------------------------------------------------------------------------------------------
# Delivery to the push service
# --------------------------------------------------------------------------------------------
def test_a_push_is_signed_encrypted_and_read_by_the_push_service(vapid_key, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    message = OutgoingMessage("Drift alert: CORE 74%", "CORE at 74% (target 70%).\nSEMIS 11% £ low")
    with PushService(public_text(vapid_key)) as service:
        started = time.time()
        result = channel(vapid_key, ttl=3600, urgency="high").send(message, service.subscription())
    assert result.status is DeliveryStatus.SENT, result.error
    assert service.refusals == []
    assert service.pushes == [
        {"title": "Drift alert: CORE 74%", "body": "CORE at 74% (target 70%).\nSEMIS 11% £ low"}
    ]
    (claims,) = service.claims
    assert claims["aud"] == service.origin and claims["sub"] == SUBJECT
    assert started + 11 * 3600 <= claims["exp"] <= time.time() + DAY
    ((headers, body),) = service.requests
    assert int.from_bytes(body[16:20], "big") == 4096  # one record, the size push services take
    assert headers["TTL"] == "3600" and headers["Urgency"] == "high"
    assert headers["Content-Encoding"] == "aes128gcm"
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Authorization"].endswith(f", k={public_text(vapid_key)}")
    assert result.provider_message_id == "/message/m-1"
    assert "HTTP Request: POST http://127.0.0.1:" in caplog.text  # httpx logged it, masked
    assert f"POST {service.origin}/*** " in caplog.text
    assert_no_secret(
        [result.error, caplog.text, repr(result)],
        TOKEN,
        service.auth_text,
        raw_private(vapid_key),
        *service.tokens,
    )


def test_keys_and_subject_come_from_the_environment(vapid_key, monkeypatch) -> None:
    pem = vapid_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    monkeypatch.setenv("TRADEASSIST_VAPID_PRIVATE_KEY", pem)
    monkeypatch.setenv("TRADEASSIST_VAPID_SUBJECT", "https://tradeassist.example.com/contact")
    with PushService(public_text(vapid_key)) as service:
        sender = get_channel("webpush", timeout=5)
        result = sender.send(OutgoingMessage("From env", "text"), service.subscription())
    assert isinstance(sender, WebPushChannel)
    assert result.sent, result.error
    assert service.claims[0]["sub"] == "https://tradeassist.example.com/contact"
    assert service.requests[0][0]["TTL"] == str(webpush.DEFAULT_TTL)
    assert service.requests[0][0]["Urgency"] == "normal"


def test_the_service_refuses_a_forged_signature_and_a_foreign_key(vapid_key) -> None:
    """The push service's checks are real: a JWT signed by another key, and a channel whose
    key is not the one the page subscribed with, are both refused."""
    other = ec.generate_private_key(ec.SECP256R1())
    with PushService(public_text(vapid_key)) as service:
        forged = webpush.vapid_token(
            webpush.VapidKey(other, SUBJECT, public_text(other)), service.origin, now=time.time()
        )
        answer = httpx.post(
            service.endpoint,
            content=b"x",
            headers={"Authorization": f"vapid t={forged}, k={public_text(vapid_key)}", "TTL": "60"},
        )
        assert answer.status_code == 401 and "Signature verification failed" in answer.text
        result = channel(other).send(OutgoingMessage("s", "t"), service.subscription())
    assert result.status is DeliveryStatus.PERMANENT
    assert "HTTP 403" in result.error and "applicationServerKey" in result.error
    assert service.pushes == []
    assert_no_secret([result.error], TOKEN, service.auth_text, raw_private(other), forged)


def test_a_long_message_is_cut_to_fit_4096_bytes(vapid_key) -> None:
    text = "Buy 3 VWRP at £101.50 📈; " * 400
    message = OutgoingMessage("T" * 300, text)
    with PushService(public_text(vapid_key)) as service:
        result = channel(vapid_key).send(message, service.subscription())
    assert result.sent, result.error
    assert service.refusals == []
    ((_headers, body),) = service.requests
    assert len(body) <= 4096
    (push,) = service.pushes
    assert push["title"] == "T" * 249 + "…"
    assert push["body"].endswith("…") and text.startswith(push["body"][:-1])
    plaintext = json.dumps(push, ensure_ascii=False, separators=(",", ":")).encode()
    assert webpush.MAX_PLAINTEXT - 8 <= len(plaintext) <= webpush.MAX_PLAINTEXT == 3993


def test_a_short_message_is_not_cut() -> None:
    payload = webpush.push_payload(OutgoingMessage("Hi", "  all well  "))
    assert json.loads(payload) == {"title": "Hi", "body": "all well"}


@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_subscription_is_permanent(vapid_key, status: int, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with PushService(public_text(vapid_key), [Reply(status, "subscription expired")]) as service:
        result = channel(vapid_key).send(OutgoingMessage("s", "t"), service.subscription())
    assert result.status is DeliveryStatus.PERMANENT
    assert f"is gone (HTTP {status})" in result.error and "subscribe again" in result.error
    assert result.error.startswith(f"WEBPUSH: the subscription at {service.origin} is gone")
    assert len(service.requests) == 1
    assert_no_secret([result.error, caplog.text], TOKEN, service.auth_text, raw_private(vapid_key))


def test_rate_limited_is_retryable_with_the_servers_wait(vapid_key, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    limited = Reply(429, "slow down", headers={"Retry-After": "120"})
    with PushService(public_text(vapid_key), [limited]) as service:
        result = channel(vapid_key).send(OutgoingMessage("s", "t"), service.subscription())
    assert result.status is DeliveryStatus.RETRYABLE
    assert result.retry_after == 120.0
    assert "HTTP 429" in result.error
    assert len(service.requests) == 1  # not hammered: the outbox waits the 120 s
    assert_no_secret([result.error, caplog.text], TOKEN, service.auth_text, *service.tokens)


def test_a_short_retry_after_is_waited_in_the_call(vapid_key) -> None:
    busy = Reply(503, "busy", headers={"Retry-After": "0"})
    with PushService(public_text(vapid_key), [busy, Reply(201)]) as service:
        result = channel(vapid_key).send(OutgoingMessage("s", "t"), service.subscription())
    assert result.sent, result.error
    assert len(service.pushes) == 2 and service.refusals == []


@pytest.mark.parametrize(
    ("reply", "status", "fragment"),
    [
        (Reply(500, "oops"), DeliveryStatus.RETRYABLE, "HTTP 500"),
        (Reply(502, "bad gateway"), DeliveryStatus.RETRYABLE, "HTTP 502"),
        (Reply(400, "bad request"), DeliveryStatus.PERMANENT, "HTTP 400"),
        (Reply(413, "too big"), DeliveryStatus.PERMANENT, "HTTP 413"),
    ],
)
def test_other_answers(vapid_key, reply: Reply, status: DeliveryStatus, fragment: str) -> None:
    with PushService(public_text(vapid_key), [reply]) as service:
        result = channel(vapid_key).send(OutgoingMessage("s", "t"), service.subscription())
    assert result.status is status
    assert fragment in result.error
    assert len(service.requests) == 1  # a POST that failed with 5xx may have been processed
    assert_no_secret([result.error], TOKEN, service.auth_text)


def test_a_push_service_that_never_answers_times_out(vapid_key, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    ua = ec.generate_private_key(ec.SECP256R1())
    auth = b64(os.urandom(16))
    with silent_server() as base:
        target = json.dumps({"endpoint": base + PUSH_PATH, "keys": {"p256dh": public_text(ua), "auth": auth}})
        started = time.monotonic()
        result = channel(vapid_key, timeout=SMALL_TIMEOUT).send(OutgoingMessage("s", "t"), target)
        elapsed = time.monotonic() - started
    assert result.status is DeliveryStatus.RETRYABLE
    assert "timed out" in result.error
    assert elapsed < SMALL_TIMEOUT + MARGIN
    assert_no_secret([result.error, caplog.text], TOKEN, auth)


def test_a_closed_port_is_retryable(vapid_key) -> None:
    ua = ec.generate_private_key(ec.SECP256R1())
    endpoint = f"http://127.0.0.1:{free_port()}{PUSH_PATH}"
    target = json.dumps(
        {"endpoint": endpoint, "keys": {"p256dh": public_text(ua), "auth": b64(os.urandom(16))}}
    )
    result = channel(vapid_key, timeout=2).send(OutgoingMessage("s", "t"), target)
    assert result.status is DeliveryStatus.RETRYABLE
    assert "could not connect" in result.error and TOKEN not in result.error


# --------------------------------------------------------------------------------------------
# Targets and settings that cannot work: permanent, with the reason, and no request
# --------------------------------------------------------------------------------------------
UA_PUBLIC = public_text(ec.generate_private_key(ec.SECP256R1()))
AUTH_CANARY = b64(b"CANARY-auth-16by")
ENDPOINT = "https://fcm.googleapis.com/fcm/send/CANARYfcmToken:APA91b0123456789"


def target_with(**changes: Any) -> str:
    found: dict[str, Any] = {"endpoint": ENDPOINT, "keys": {"p256dh": UA_PUBLIC, "auth": AUTH_CANARY}}
    for name, value in changes.items():
        if name in ("p256dh", "auth"):
            found["keys"][name] = value
        else:
            found[name] = value
    return json.dumps(found)


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("browser", "it is not JSON"),
        ("[1, 2]", "it is not a JSON object"),
        ("{}", "no endpoint"),
        (target_with(endpoint="fcm.googleapis.com/fcm/send/x"), "must be an https:// URL"),
        (target_with(endpoint="ftp://push.example.com/x"), "must be an https:// URL"),
        (target_with(endpoint="https://push.example.com:port/x"), "not a URL"),
        (target_with(endpoint="http://push.example.com/x"), "must use https"),
        (target_with(keys=None), "no keys object"),
        (target_with(p256dh=""), "no keys.p256dh"),
        (target_with(p256dh="not base64!"), "keys.p256dh is not base64url"),
        (target_with(p256dh=b64(b"\x04" + b"\x01" * 31)), "keys.p256dh is 32 bytes, not 65"),
        (target_with(p256dh=b64(b"\x02" + b"\x01" * 64)), "not an uncompressed P-256 public key"),
        (target_with(p256dh=b64(b"\x04" + b"\x01" * 64)), "not a point on P-256"),
        (target_with(auth=None), "no keys.auth"),
        (target_with(auth=b64(b"CANARY-short")), "keys.auth is 12 bytes, not 16"),
        (target_with(expirationTime="soon"), "expirationTime is neither null nor"),
    ],
)
def test_a_malformed_target_is_permanent_with_a_clear_reason(target: str, reason: str) -> None:
    result = get_channel("WEBPUSH").send(OutgoingMessage("s", "t"), target)
    assert result.status is DeliveryStatus.PERMANENT
    assert result.error.startswith("WEBPUSH: the target is not a push subscription (")
    assert reason in result.error
    assert '{"endpoint": "https://...", "keys": {"p256dh": "...", "auth": "..."}}' in result.error
    assert_no_secret([result.error], AUTH_CANARY, "CANARY")


def test_an_expired_subscription_is_permanent(vapid_key) -> None:
    past = (time.time() - 60) * 1000
    result = channel(vapid_key).send(OutgoingMessage("s", "t"), target_with(expirationTime=past))
    assert result.status is DeliveryStatus.PERMANENT
    assert "the subscription at https://fcm.googleapis.com expired" in result.error
    assert "CANARY" not in result.error


def test_the_subscription_keys_are_accepted_padded_and_in_standard_base64() -> None:
    padded = target_with(p256dh=UA_PUBLIC + "=", auth=base64.b64encode(b"\xfb" * 16).decode())
    found = webpush.parse_subscription(padded)
    assert found.auth == b"\xfb" * 16 and found.origin == "https://fcm.googleapis.com"
    assert "CANARY" not in repr(found)


def test_missing_or_wrong_settings_are_permanent_and_never_shown(monkeypatch) -> None:
    monkeypatch.delenv("TRADEASSIST_VAPID_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("TRADEASSIST_VAPID_SUBJECT", raising=False)
    target = target_with()
    unset = get_channel("WEBPUSH").send(OutgoingMessage("s", "t"), target)
    assert unset.status is DeliveryStatus.PERMANENT
    assert "TRADEASSIST_VAPID_PRIVATE_KEY is not set" in unset.error

    for wrong in ("CANARY-not-a-key", b64(b"CANARY" * 5), "-----BEGIN PRIVATE KEY-----\nCANARY\n-----END"):
        monkeypatch.setenv("TRADEASSIST_VAPID_PRIVATE_KEY", wrong)
        result = get_channel("WEBPUSH").send(OutgoingMessage("s", "t"), target)
        assert result.status is DeliveryStatus.PERMANENT
        assert "is not a P-256 private key" in result.error
        assert_no_secret([result.error], wrong, "CANARY")
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    monkeypatch.setenv("TRADEASSIST_VAPID_PRIVATE_KEY", p384.decode())
    assert "not a P-256" in get_channel("WEBPUSH").send(OutgoingMessage("s", "t"), target).error

    monkeypatch.setenv("TRADEASSIST_VAPID_PRIVATE_KEY", raw_private(ec.generate_private_key(ec.SECP256R1())))
    no_subject = get_channel("WEBPUSH").send(OutgoingMessage("s", "t"), target)
    assert "TRADEASSIST_VAPID_SUBJECT is not set" in no_subject.error
    for subject in ("owner@example.com", "http://example.com", "mailto:nobody"):
        monkeypatch.setenv("TRADEASSIST_VAPID_SUBJECT", subject)
        result = get_channel("WEBPUSH").send(OutgoingMessage("s", "t"), target)
        assert result.status is DeliveryStatus.PERMANENT
        assert "must be a mailto: address" in result.error
    with pytest.raises(ConfigError, match="urgency='urgent'"):
        WebPushChannel(urgency="urgent")
    with pytest.raises(ConfigError, match="ttl=-1"):
        WebPushChannel(ttl=-1)


def test_every_private_key_form_gives_the_same_key(vapid_key) -> None:
    expected = public_text(vapid_key)
    none = serialization.NoEncryption()
    pem_pkcs8 = vapid_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, none)
    pem_sec1 = vapid_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, none
    )
    der = vapid_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, none)
    raw = vapid_key.private_numbers().private_value.to_bytes(32, "big")
    forms = [
        raw_private(vapid_key),
        raw_private(vapid_key) + "=",
        base64.b64encode(raw).decode(),
        pem_pkcs8.decode(),
        pem_sec1.decode(),
        pem_sec1.decode().strip().replace("\n", "\\n"),  # as a .env file writes a PEM on one line
        b64(der),
    ]
    for form in forms:
        assert webpush.public_key_text(webpush.load_vapid_private_key(form)) == expected, form


def test_making_keys_prints_a_pair_that_works(monkeypatch, capsys) -> None:
    assert webpush.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    private = lines[0].removeprefix("TRADEASSIST_VAPID_PRIVATE_KEY=")
    public = lines[1].rsplit(" ", 1)[1]
    key = webpush.load_vapid_private_key(private)
    assert webpush.public_key_text(key) == public and len(unb64(public)) == 65
    monkeypatch.setenv("TRADEASSIST_VAPID_PRIVATE_KEY", private)
    assert webpush.main(["--public"]) == 0
    assert capsys.readouterr().out.strip() == public
    monkeypatch.delenv("TRADEASSIST_VAPID_PRIVATE_KEY")
    assert webpush.main(["--public"]) == 1
    assert "is not set" in capsys.readouterr().err
    assert webpush.main(["--what"]) == 2


def test_the_vapid_token_limits_its_lifetime(vapid_key) -> None:
    key = webpush.VapidKey(vapid_key, SUBJECT, public_text(vapid_key))
    token = webpush.vapid_token(key, "https://push.example.net", now=1_800_000_000)
    claims = jwt.decode(
        token,
        vapid_key.public_key(),
        algorithms=["ES256"],
        audience="https://push.example.net",
        options={"verify_exp": False},
    )
    assert claims == {"aud": "https://push.example.net", "exp": 1_800_000_000 + 12 * 3600, "sub": SUBJECT}
    with pytest.raises(ValueError, match="24 hours"):
        webpush.vapid_token(key, "https://push.example.net", now=0, lifetime=DAY + 1)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc", "https://fcm.googleapis.com"),
        (
            "https://Updates.Push.Services.Mozilla.com:443/wpush/v2/x",
            "https://updates.push.services.mozilla.com",
        ),
        ("https://push.example.com:8443/a?b=c", "https://push.example.com:8443"),
        ("http://[::1]:8080/x", "http://[::1]:8080"),
        ("http://localhost:80/x", "http://localhost"),
    ],
)
def test_the_audience_is_the_endpoints_origin(url: str, origin: str) -> None:
    assert webpush.origin_of(url) == origin


def test_endpoints_are_masked_where_they_could_show() -> None:
    assert webpush.describe_target(target_with()) == "https://fcm.googleapis.com/***"
    assert webpush.describe_target("browser") == "***"
    line = (
        "POST https://fcm.googleapis.com/fcm/send/CANARYa:APA91b-x "
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAACANARY "
        "https://web.push.apple.com/3/device/CANARYabc"
    )
    masked = webpush.mask_endpoints(line)
    assert "CANARY" not in masked and masked.count("/***") == 3


def test_webpush_is_registered_and_loads_cryptography_only_to_send() -> None:
    assert "WEBPUSH" in channel_names()
    assert isinstance(get_channel("webpush"), WebPushChannel)
    probe = "import sys, tradeassist.services.notifications; print('cryptography' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------
# Through the outbox
# --------------------------------------------------------------------------------------------
def enqueue_push(engine: Engine, user: User, target: str, subject: str) -> int:
    with unit_of_work(engine) as session:
        return notifications.enqueue(
            session,
            user_id=user.user_id,
            portfolio_id=None,
            channel=Channel.WEBPUSH,
            target=target,
            payload={"event": "TEST", "subject": subject, "body": f"{subject}, in words."},
        ).notification_id


def stored(engine: Engine, notification_id: int) -> Notification:
    with unit_of_work(engine, readonly=True) as session:
        return session.get(Notification, notification_id)


def test_the_outbox_delivers_a_webpush_notification(engine, admin, vapid_key, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("TRADEASSIST_VAPID_PRIVATE_KEY", raw_private(vapid_key))
    monkeypatch.setenv("TRADEASSIST_VAPID_SUBJECT", SUBJECT)
    with PushService(public_text(vapid_key), [Reply(201), Reply(410, "gone")]) as service:
        sent = enqueue_push(engine, admin, service.subscription(), "Rebalance due")
        report = notifications.dispatch(engine, now=T0, timeout=5)
        assert report.counts() == {"attempted": 1, "sent": 1, "retrying": 0, "failed": 0}
        gone = enqueue_push(engine, admin, service.subscription(), "Second")
        report = notifications.dispatch(engine, now=T0, timeout=5)
    assert report.counts() == {"attempted": 1, "sent": 0, "retrying": 0, "failed": 1}
    assert service.refusals == []
    assert service.pushes == [
        {"title": "Rebalance due", "body": "Rebalance due, in words."},
        {"title": "Second", "body": "Second, in words."},
    ]
    assert stored(engine, sent).status is NotificationStatus.SENT
    failed = stored(engine, gone)
    assert (failed.status, failed.attempts) == (NotificationStatus.FAILED, 1)
    assert "is gone (HTTP 410)" in failed.last_error
    assert_no_secret(
        [failed.last_error, caplog.text],
        TOKEN,
        service.auth_text,
        raw_private(vapid_key),
        *service.tokens,
    )


def test_the_cli_makes_a_key_pair_that_loads(tmp_path: pathlib.Path) -> None:
    from tests.support.cli import clean_env, run_cli

    made = run_cli(["notify", "vapid-keys"], clean_env(tmp_path))
    assert made.returncode == 0, made.stderr
    private = made.stdout.splitlines()[0].split("=", 1)[1]
    public = run_cli(
        ["notify", "vapid-keys", "--public"], clean_env(tmp_path, TRADEASSIST_VAPID_PRIVATE_KEY=private)
    )
    assert public.returncode == 0 and public.stdout.strip() in made.stdout
    missing = run_cli(["notify", "vapid-keys", "--public"], clean_env(tmp_path))
    assert missing.returncode == 1 and "TRADEASSIST_VAPID_PRIVATE_KEY" in missing.stderr
