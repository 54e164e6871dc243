"""WEBPUSH's cryptography: the VAPID key and its JWT (RFC 8292), and the message encrypted for
the browser with the ``aes128gcm`` content coding keyed as RFC 8291 says.

``cryptography`` is imported inside the functions that use it: loading this module costs
nothing a command that sends no push pays for. ``webpush`` (the channel) builds on these.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ...core.errors import ConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import (
        EllipticCurvePrivateKey,
        EllipticCurvePublicKey,
    )

JWT_LIFETIME = 12 * 3600  # RFC 8292 §2: exp at most 24 hours ahead; push services check it
MAX_JWT_LIFETIME = 24 * 3600

RECORD_SIZE = 4096  # RFC 8291 §4: a push service accepts a body of at least 4,096 bytes
KEY_LENGTH = 65  # an uncompressed P-256 point: 0x04 || x || y
_HEADER_LENGTH = 16 + 4 + 1 + KEY_LENGTH  # salt, rs, idlen, keyid (RFC 8188 §2.1)
_TAG_LENGTH = 16
MAX_BODY = RECORD_SIZE  # the encrypted body, header included
MAX_PLAINTEXT = MAX_BODY - _HEADER_LENGTH - _TAG_LENGTH - 1  # one byte for the 0x02 delimiter


# --------------------------------------------------------------------------------------------
# base64url
# --------------------------------------------------------------------------------------------
def b64url(data: bytes) -> str:
    """Unpadded base64url, as Web Push and JWTs write bytes."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Bytes from base64url (or standard base64), padded or not; ``ValueError`` if it is neither."""
    cleaned = "".join(str(text).split()).replace("+", "-").replace("/", "_").rstrip("=")
    if not re.fullmatch(r"[A-Za-z0-9_-]*", cleaned) or len(cleaned) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), altchars=b"-_", validate=True)
    except binascii.Error:
        raise ValueError("not base64url") from None


# --------------------------------------------------------------------------------------------
# The VAPID key
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VapidKey:
    """The application server's signing key and contact. ``public`` is the base64url
    ``applicationServerKey`` the page subscribes with."""

    private_key: EllipticCurvePrivateKey = field(repr=False)
    subject: str
    public: str

    @classmethod
    def from_text(cls, key_text: str, subject: str) -> VapidKey:
        private_key = load_vapid_private_key(key_text)
        subject = subject.strip()
        if not subject:
            raise ConfigError(
                "WEBPUSH: TRADEASSIST_VAPID_SUBJECT is not set (a contact for the push service: "
                "mailto:you@example.com or an https:// URL)"
            )
        if not _subject_ok(subject):
            raise ConfigError(
                f"WEBPUSH: TRADEASSIST_VAPID_SUBJECT={subject!r} must be a mailto: address "
                "(mailto:you@example.com) or an https:// URL"
            )
        return cls(private_key, subject, public_key_text(private_key))


def _subject_ok(subject: str) -> bool:
    if subject.startswith("mailto:"):
        address = subject[len("mailto:") :]
        return bool(re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", address))
    if subject.startswith("https://"):
        return bool(urlsplit(subject).hostname) and not any(c.isspace() for c in subject)
    return False


def load_vapid_private_key(text: str) -> EllipticCurvePrivateKey:
    """The P-256 key in ``text``: base64url of the raw 32-byte scalar, PEM (PKCS#8 or SEC1 ``EC
    PRIVATE KEY``; ``\\n`` written as two characters is read as a line break) or base64 DER.
    ``ConfigError`` never shows the text."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    text = (text or "").strip()
    if not text:
        raise ConfigError(
            "WEBPUSH: TRADEASSIST_VAPID_PRIVATE_KEY is not set (docs/notifications.md says how to make one)"
        )
    wrong = ConfigError(
        "WEBPUSH: TRADEASSIST_VAPID_PRIVATE_KEY is not a P-256 private key (expected base64url of "
        "the 32-byte key, or a PEM 'EC PRIVATE KEY' / 'PRIVATE KEY')"
    )
    key: object
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_private_key(text.replace("\\n", "\n").encode(), password=None)
        else:
            raw = b64url_decode(text)
            if len(raw) == 32:
                key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
            else:
                key = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise wrong from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise wrong
    return key


def public_key_bytes(key: EllipticCurvePrivateKey | EllipticCurvePublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def public_key_text(key: EllipticCurvePrivateKey) -> str:
    """The ``applicationServerKey``: the uncompressed public point, base64url."""
    return b64url(public_key_bytes(key))


def generate_vapid_keys() -> tuple[str, str]:
    """A new VAPID key pair: (private key for TRADEASSIST_VAPID_PRIVATE_KEY, applicationServerKey)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return b64url(key.private_numbers().private_value.to_bytes(32, "big")), public_key_text(key)


def vapid_token(key: VapidKey, audience: str, *, now: float, lifetime: int = JWT_LIFETIME) -> str:
    """The VAPID JWT (RFC 8292 §2): ES256 over ``{"aud", "exp", "sub"}``."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    if not 0 < lifetime <= MAX_JWT_LIFETIME:
        raise ValueError("a VAPID token lives at most 24 hours")
    header = {"typ": "JWT", "alg": "ES256"}
    claims = {"aud": audience, "exp": int(now) + lifetime, "sub": key.subject}
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    der = key.private_key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)  # a JWS signature is r || s, 32 bytes each
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


# --------------------------------------------------------------------------------------------
# The message, encrypted (RFC 8291, aes128gcm)
# --------------------------------------------------------------------------------------------
def _hkdf(secret_key: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(secret_key)


def encrypt(
    plaintext: bytes,
    p256dh: bytes,
    auth: bytes,
    *,
    salt: bytes | None = None,
    server_key: EllipticCurvePrivateKey | None = None,
    record_size: int = RECORD_SIZE,
) -> bytes:
    """``plaintext`` as one ``aes128gcm`` record for the subscription's keys (RFC 8291 §3-4).

    A new ``server_key`` (ECDH) and ``salt`` each time unless given (RFC 8291 Appendix A).
    """
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(plaintext) + 1 + _TAG_LENGTH > record_size:
        raise ValueError(f"{len(plaintext)} bytes do not fit one record of {record_size}")
    server_key = server_key or ec.generate_private_key(ec.SECP256R1())
    salt = salt if salt is not None else os.urandom(16)
    ua_public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    as_public = public_key_bytes(server_key)
    shared = server_key.exchange(ec.ECDH(), ua_public)
    ikm = _hkdf(shared, auth, b"WebPush: info\x00" + p256dh + as_public, 32)
    cek = _hkdf(ikm, salt, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(ikm, salt, b"Content-Encoding: nonce\x00", 12)
    ciphertext = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)  # 0x02: the last record
    return salt + struct.pack("!IB", record_size, len(as_public)) + as_public + ciphertext
