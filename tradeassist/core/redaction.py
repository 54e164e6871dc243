"""Secrets never land in a saved notebook, report, log or audit row: the one place that knows
what a secret looks like and masks it.

* ``is_secret_name(name)``: a variable, key, header or parameter named like a secret
  (password, secret, token, API key, credential, private key, authorization...).
* ``secret_values(db_url, environ)``: every secret this process knows: values of secret-named
  environment variables and passwords in URLs (the database's and any URL-valued variable's).
* ``redact(text, secrets)``: the text with every given secret (also URL-encoded) and every
  secret-looking URL part masked (sensitive query values, user-info passwords, bot tokens).
* ``scrub(details)``: a mapping with the values of secret-named keys masked, recursively.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

MASK = "***"
# Shorter "secrets" are not replaced wherever they occur (a key "k" would mangle every word);
# in URLs they are still masked by parameter name.
MIN_SECRET_LENGTH = 4

# Words that make a name a secret's, matched case-insensitively inside the name.
SECRET_NAME_WORDS = (
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "API_KEY",
    "APIKEY",
    "CREDENTIAL",
    "PRIVATE_KEY",
    "AUTHORIZATION",
)

# Names of query parameters and headers whose values are secrets (URLs are terser).
SENSITIVE_PARAMETER = re.compile(
    r"(?i)(key|token|secret|passw|pwd|signature|^sig$|auth|credential|session|cookie)"
)
# Telegram-style bot tokens in a URL path: /bot123456:AA.../sendMessage
BOT_TOKEN = re.compile(r"(/bot)\d+:[A-Za-z0-9_-]+")
# In free text: sensitive query parameters of any URL, and passwords in URL user info.
_TEXT_QUERY_SECRET = re.compile(
    r"(?i)([?&;][\w.%-]*(?:key|token|secret|passw|pwd|signature|auth|credential)[\w.%-]*=)[^&#\s\"'<>]*"
)
_TEXT_USERINFO = re.compile(r"(://[^/\s:@]+:)[^@/\s]+@")


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in SECRET_NAME_WORDS)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every given secret (also URL-encoded) and every secret-looking URL part masked.

    Secrets shorter than ``MIN_SECRET_LENGTH`` are not replaced as text. Secret-looking parts
    are found without being told: values of query parameters named like
    ``key``/``apikey``/``api_key``/``token``/``access_token``/``password``, passwords in URL
    user info, and Telegram bot tokens in paths.
    """
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        for form in (secret, quote(secret, safe=""), quote_plus(secret)):
            text = text.replace(form, MASK)
    text = BOT_TOKEN.sub(rf"\1{MASK}", text)
    text = _TEXT_QUERY_SECRET.sub(rf"\1{MASK}", text)
    return _TEXT_USERINFO.sub(rf"\1{MASK}@", text)


def environment_secrets(environ: Mapping[str, str] | None = None) -> set[str]:
    """Values of secret-named environment variables (passwords, tokens, keys)."""
    environ = os.environ if environ is None else environ
    return {
        value
        for name, value in environ.items()
        if value and len(value) >= MIN_SECRET_LENGTH and is_secret_name(name)
    }


def secret_values(db_url: str | None = None, environ: Mapping[str, str] | None = None) -> set[str]:
    """Every secret this process knows: secret-named variables and passwords in URLs."""
    environ = os.environ if environ is None else environ
    found = environment_secrets(environ)
    urls = [db_url, *(v for v in environ.values() if v and "://" in v and "@" in v)]
    for url in urls:
        if url:
            try:
                password = urlsplit(url).password
            except ValueError:
                password = None
            if password:
                found.update({unquote(password), password})
    return {s for s in found if len(s) >= MIN_SECRET_LENGTH}


def scrub(details: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping with the values of secret-named keys masked, recursively."""
    clean: dict[str, Any] = {}
    for key, value in details.items():
        if is_secret_name(str(key).replace("-", "_")):
            clean[key] = MASK
        elif isinstance(value, Mapping):
            clean[key] = scrub(value)
        else:
            clean[key] = value
    return clean
