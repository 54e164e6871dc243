"""WEBPUSH: Web Push (RFC 8030) to a browser's push subscription, encrypted and signed.

The target is the subscription a web page's service worker got from
``registration.pushManager.subscribe({applicationServerKey})``, as its ``toJSON()`` gives it::

    {"endpoint": "https://fcm.googleapis.com/fcm/send/...",
     "expirationTime": null,
     "keys": {"p256dh": "<base64url, 65 bytes>", "auth": "<base64url, 16 bytes>"}}

The message is the JSON ``{"title": subject, "body": text}``, encrypted for the browser with
the ``aes128gcm`` content coding (RFC 8188) keyed as RFC 8291 says (ECDH with the
subscription's ``p256dh``, HKDF with its ``auth`` secret), one record of at most 4,096 bytes:
the text is cut (with an ellipsis) so that the encrypted body fits. The request carries
``TTL`` (seconds the push service keeps it for a browser that is offline; default a day) and
``Urgency`` (default ``normal``), and is signed with VAPID (RFC 8292): an ES256 JWT whose
``aud`` is the endpoint's origin, ``exp`` twelve hours ahead (the limit is 24) and ``sub``
the contact, in ``Authorization: vapid t=<jwt>, k=<public key>``.

Settings: ``TRADEASSIST_VAPID_PRIVATE_KEY`` (the P-256 private key: base64url of its 32 raw
bytes, as ``main()`` here prints a new one, or PEM, as ``openssl ecparam -name prime256v1
-genkey -noout`` writes) and ``TRADEASSIST_VAPID_SUBJECT`` (``mailto:you@example.com`` or an
``https:`` URL). The page must subscribe with the matching public key
(``applicationServerKey``), which ``main()`` prints too (``main(["--public"])`` for the
configured key).

Answers: ``201`` (any 2xx) is sent; ``404``/``410`` mean the subscription is gone (the user
unsubscribed or the browser dropped it): permanent, the page must subscribe again; ``429``
and ``5xx`` are retryable with the server's ``Retry-After``; other answers (``400``, ``401``/
``403`` for a VAPID key the subscription was not made with, ``413``) are permanent. A target
that is not such a subscription, or whose ``expirationTime`` has passed, is permanent without
a request.

The endpoint's path is a capability (with the keys, it is what a sender needs) and ``auth``
is a secret: both are masked in every error and log line (httpx logs each request URL; a
filter here masks the endpoints being sent to and the known push services' path shapes), as
are the JWT and the private key, which is never shown. Plain ``http`` endpoints are accepted
for loopback hosts only (a local test server). Each network step waits at most ``timeout``
(default 10 s) and the whole send at most ``deadline`` (default three times the timeout).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ...core.config import secret, settings
from ...core.errors import ConfigError, ValidationError
from ...core.redaction import MASK, redact
from ..http import HttpClient, HttpError, HttpPolicy, HttpResponse, HttpTimeout
from .base import DeliveryResult, OutgoingMessage, channel_policy, retry_after_from_http_error, truncate
from .webpush_crypto import (
    KEY_LENGTH,
    MAX_PLAINTEXT,
    VapidKey,
    b64url_decode,
    encrypt,
    generate_vapid_keys,
    load_vapid_private_key,
    public_key_text,
    vapid_token,
)

# cryptography is imported where it is used (``webpush_crypto``): sending an email or a chat
# message, or listing the outbox, does not pay for loading it.

log = logging.getLogger(__name__)

NAME = "WEBPUSH"
DEFAULT_TIMEOUT = 10.0
DEFAULT_TTL = 24 * 3600  # seconds a push service keeps a message for a browser that is offline
URGENCIES = ("very-low", "low", "normal", "high")  # RFC 8030 §5.3
MAX_TITLE = 250  # characters; a notification's title is one line

# Known push services' endpoint paths (FCM, Mozilla autopush, Apple, Windows): the token after.
_ENDPOINT_PATH = re.compile(r"(/(?:fcm/send|wp|wpush/v\d+|3/device|w)/)[A-Za-z0-9_:%.=-]+")

_in_flight: dict[str, int] = {}
_in_flight_lock = threading.Lock()


# --------------------------------------------------------------------------------------------
# The subscription (the target)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, repr=False)
class Subscription:
    """A browser's push subscription: where to post, and the keys to encrypt for. Its
    ``repr`` shows the endpoint's origin only."""

    endpoint: str
    p256dh: bytes
    auth: bytes
    auth_text: str = ""  # as given, to mask it wherever it shows
    expiration_ms: float | None = None

    @property
    def origin(self) -> str:
        return origin_of(self.endpoint)

    def __repr__(self) -> str:
        return f"Subscription(origin={self.origin!r}, expiration_ms={self.expiration_ms!r})"


def _not_a_subscription(why: str) -> ValidationError:
    return ValidationError(
        f"the target is not a push subscription ({why}); expected the browser's "
        'PushSubscription JSON: {"endpoint": "https://...", "keys": {"p256dh": "...", "auth": "..."}}'
    )


def parse_subscription(target: str) -> Subscription:
    """The subscription in ``target`` (its JSON); ``ValidationError`` says what is wrong with it,
    never quoting the keys or the endpoint's path."""
    try:
        found = json.loads(str(target))
    except ValueError:
        raise _not_a_subscription("it is not JSON") from None
    if not isinstance(found, dict):
        raise _not_a_subscription("it is not a JSON object")
    endpoint = found.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise _not_a_subscription("no endpoint")
    endpoint = endpoint.strip()
    problem = _endpoint_problem(endpoint)
    if problem:
        raise _not_a_subscription(problem)
    keys = found.get("keys")
    if not isinstance(keys, dict):
        raise _not_a_subscription("no keys object with p256dh and auth")
    from cryptography.hazmat.primitives.asymmetric import ec

    p256dh = _key_bytes(keys, "p256dh", KEY_LENGTH)
    if p256dh[0] != 4:
        raise _not_a_subscription("keys.p256dh is not an uncompressed P-256 public key")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError:
        raise _not_a_subscription("keys.p256dh is not a point on P-256") from None
    auth = _key_bytes(keys, "auth", 16)
    expiration = found.get("expirationTime")
    if expiration is not None and (
        not isinstance(expiration, int | float)
        or isinstance(expiration, bool)
        or not math.isfinite(expiration)
    ):
        raise _not_a_subscription("expirationTime is neither null nor a time in milliseconds")
    return Subscription(
        endpoint=endpoint,
        p256dh=p256dh,
        auth=auth,
        auth_text=str(keys["auth"]),
        expiration_ms=None if expiration is None else float(expiration),
    )


def _key_bytes(keys: dict[str, Any], name: str, length: int) -> bytes:
    value = keys.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _not_a_subscription(f"no keys.{name}")
    try:
        data = b64url_decode(value)
    except ValueError:
        raise _not_a_subscription(f"keys.{name} is not base64url") from None
    if len(data) != length:
        raise _not_a_subscription(f"keys.{name} is {len(data)} bytes, not {length}")
    return data


def _endpoint_problem(endpoint: str) -> str | None:
    """Why ``endpoint`` is not a usable push endpoint, or None."""
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "the endpoint is not a URL"
    if not host:
        return "the endpoint must be an https:// URL"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http":
        if _is_loopback(host):
            return None
        return f"the endpoint on {host} must use https (plain http only to a loopback address)"
    return "the endpoint must be an https:// URL"


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_of(url: str) -> str:
    """The URL's origin as RFC 6454 serialises it: ``scheme://host[:port]``, a default port left out."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"https": 443, "http": 80}.get(scheme)
    return f"{scheme}://{host}" if port is None or port == default else f"{scheme}://{host}:{port}"


def describe_target(target: str) -> str:
    """A push subscription safe to show (``notify list``): its endpoint's origin, the rest masked."""
    try:
        endpoint = json.loads(str(target)).get("endpoint")
        return f"{origin_of(str(endpoint))}/{MASK}" if endpoint else MASK
    except (ValueError, AttributeError):
        return MASK


def push_payload(message: OutgoingMessage, limit: int = MAX_PLAINTEXT) -> bytes:
    """``{"title", "body"}`` as UTF-8 JSON of at most ``limit`` bytes: the title cut to
    ``MAX_TITLE`` characters, the body to the longest start that fits, with an ellipsis."""
    title = truncate(message.subject, MAX_TITLE)
    body = message.text.strip()

    def render(cut: int) -> bytes:
        shown = {"title": title, "body": truncate(body, cut)}
        return json.dumps(shown, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    if len(render(len(body))) <= limit:
        return render(len(body))
    low, high = 0, len(body) - 1  # the longest cut that fits, by bisection
    while low < high:
        middle = (low + high + 1) // 2
        if len(render(middle)) <= limit:
            low = middle
        else:
            high = middle - 1
    return render(low)


# --------------------------------------------------------------------------------------------
# Endpoints masked in log lines
# --------------------------------------------------------------------------------------------
def endpoint_secrets(endpoint: str) -> list[str]:
    """The endpoint's path and query (with the keys, what a sender needs), and their long parts."""
    parts = urlsplit(endpoint)
    path = parts.path.strip("/")
    found = [path] if len(path) >= 8 else [endpoint]
    found.extend(segment for segment in path.split("/") if len(segment) >= 12)
    if parts.query:
        found.append(parts.query)
    return found


def mask_endpoints(text: str) -> str:
    """``text`` with every endpoint being sent to now, and known push services' tokens, masked."""
    with _in_flight_lock:
        endpoints = list(_in_flight)
    hidden = [s for endpoint in endpoints for s in endpoint_secrets(endpoint)]
    return _ENDPOINT_PATH.sub(rf"\1{MASK}", redact(text, hidden))


class EndpointLogFilter(logging.Filter):
    """Masks push endpoints in httpx's request log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = mask_endpoints(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def _install_log_filter() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, EndpointLogFilter) for f in logger.filters):
            logger.addFilter(EndpointLogFilter())


_install_log_filter()


@contextmanager
def _sending(endpoint: str) -> Iterator[None]:
    with _in_flight_lock:
        _in_flight[endpoint] = _in_flight.get(endpoint, 0) + 1
    try:
        yield
    finally:
        with _in_flight_lock:
            _in_flight[endpoint] -= 1
            if not _in_flight[endpoint]:
                del _in_flight[endpoint]


# --------------------------------------------------------------------------------------------
# The channel
# --------------------------------------------------------------------------------------------
class WebPushChannel:
    name = NAME

    def __init__(
        self,
        private_key: str | None = None,
        subject: str | None = None,
        *,
        ttl: int = DEFAULT_TTL,
        urgency: str = "normal",
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float | None = None,
        policy: HttpPolicy | None = None,
        client: HttpClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0:
            raise ConfigError(f"WEBPUSH: ttl={ttl!r}: expected whole seconds, 0 or more")
        if urgency not in URGENCIES:
            raise ConfigError(f"WEBPUSH: urgency={urgency!r}: expected one of {', '.join(URGENCIES)}")
        self._private_key = private_key
        self._subject = subject
        self.ttl = ttl
        self.urgency = urgency
        self._clock = clock
        self._client = client or HttpClient(policy or channel_policy(timeout, deadline))

    def _vapid(self) -> tuple[VapidKey, str]:
        """The key and contact, and the key's text (to mask, should it ever show)."""
        env = settings()
        key_text = self._private_key or secret(env.vapid_private_key) or ""
        return VapidKey.from_text(key_text, self._subject or env.vapid_subject or ""), key_text.strip()

    def send(self, message: OutgoingMessage, target: str) -> DeliveryResult:
        try:
            subscription = parse_subscription(target)
        except ValidationError as exc:
            return DeliveryResult.permanent(NAME, f"WEBPUSH: {exc}")
        try:
            vapid, key_text = self._vapid()
        except ConfigError as exc:
            return DeliveryResult.permanent(NAME, str(exc))
        now = self._clock()
        where = subscription.origin
        if subscription.expiration_ms is not None and subscription.expiration_ms / 1000 <= now:
            return DeliveryResult.permanent(
                NAME,
                f"WEBPUSH: the subscription at {where} expired "
                f"({time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(subscription.expiration_ms / 1000))}):"
                " the page must subscribe again",
            )
        token = vapid_token(vapid, where, now=now)
        body = encrypt(push_payload(message), subscription.p256dh, subscription.auth)
        headers = {
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(self.ttl),
            "Urgency": self.urgency,
            "Authorization": f"vapid t={token}, k={vapid.public}",
        }
        hidden = [*endpoint_secrets(subscription.endpoint), subscription.auth_text, token, key_text]
        with _sending(subscription.endpoint):
            try:
                response = self._client.post(
                    subscription.endpoint, content=body, headers=headers, secrets=hidden
                )
            except HttpError as exc:
                result = _failure(exc, hidden, where)
            else:
                result = _success(response, hidden)
        if result.sent:
            log.info("web push %r sent to %s", message.subject, where)
        else:
            log.warning("web push to %s not sent: %s", where, result.error)
        return result


def _clean(text: str, hidden: Sequence[str]) -> str:
    return mask_endpoints(redact(text, hidden))


def _success(response: HttpResponse, hidden: Sequence[str]) -> DeliveryResult:
    location = response.headers.get("location")
    return DeliveryResult.ok(NAME, _clean(location, hidden) if location else None)


def _failure(exc: HttpError, hidden: Sequence[str], where: str) -> DeliveryResult:
    detail = _clean(str(exc), hidden)
    error = f"WEBPUSH: {detail}"
    status = exc.status
    if status in (404, 410):
        return DeliveryResult.permanent(
            NAME,
            f"WEBPUSH: the subscription at {where} is gone (HTTP {status}): the browser unsubscribed "
            f"or dropped it; the page must subscribe again ({detail})",
        )
    if status == 429 or isinstance(exc, HttpTimeout) or status is None or status >= 500:
        return DeliveryResult.retry(NAME, error, retry_after_from_http_error(exc))
    if status in (401, 403):
        error += (
            " (the push service refused the VAPID signature: the page must subscribe with the "
            "applicationServerKey of TRADEASSIST_VAPID_PRIVATE_KEY)"
        )
    return DeliveryResult.permanent(NAME, error)


# --------------------------------------------------------------------------------------------
# Making keys: python -c "from tradeassist.providers.channels.webpush import main; main()"
# --------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Print a new VAPID key pair, or (``--public``) the configured key's applicationServerKey."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--public"]:
        try:
            key = load_vapid_private_key(secret(settings().vapid_private_key) or "")
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(public_key_text(key))
        return 0
    if args:
        print(
            "usage: main() for a new key pair, main(['--public']) for the configured key's", file=sys.stderr
        )
        return 2
    private, public = generate_vapid_keys()
    print(f"TRADEASSIST_VAPID_PRIVATE_KEY={private}")
    print(f"# applicationServerKey, for the page's pushManager.subscribe(): {public}")
    return 0
