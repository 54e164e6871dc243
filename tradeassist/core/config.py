"""Every setting the product reads from the environment, in one place, with its default.

``settings()`` reads the environment afresh each call (tests and long-lived notebooks change
it); ``Settings`` documents each variable, and ``settings_table()`` renders the README's
configuration table from it (a test checks the README holds exactly that table). Secrets are
``SecretStr``: their ``repr`` never shows the value, so a logged or saved settings object
cannot leak one.

The library, the notebooks and the CLI all find the database the same way:
an explicit URL, else ``TRADEASSIST_DB_URL``, else the embedded SQLite default
``$TRADEASSIST_HOME/tradeassist.db`` (``TRADEASSIST_HOME`` defaults to ``~/.tradeassist``).
Boolean variables accept 1/0, true/false, yes/no (any case).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pydantic
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from .errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class Settings(BaseSettings):
    """The environment variables tradeassist reads. Each field's alias is the variable's name."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    db_url: str | None = Field(
        None, alias="TRADEASSIST_DB_URL", description="database URL (SQLite or PostgreSQL)"
    )
    home: str | None = Field(
        None,
        alias="TRADEASSIST_HOME",
        description="where the embedded database lives; default `~/.tradeassist`",
    )
    user: str | None = Field(
        None,
        alias="TRADEASSIST_USER",
        description="acting user's email for the CLI and notebooks (`--as` overrides)",
    )
    admin_email: str = Field(
        "admin@localhost.localdomain",
        alias="TRADEASSIST_ADMIN_EMAIL",
        description="the bootstrap admin `init` creates once",
    )
    admin_password: SecretStr | None = Field(
        None,
        alias="TRADEASSIST_ADMIN_PASSWORD",
        description="its password; default: generated and printed once",
    )
    reports_dir: str | None = Field(
        None, alias="TRADEASSIST_REPORTS_DIR", description="where run artefacts go; default `reports/`"
    )
    sqlite_busy_timeout_ms: int = Field(
        10_000,
        alias="TRADEASSIST_SQLITE_BUSY_TIMEOUT_MS",
        ge=1,
        description="how long an SQLite connection waits for another writer's lock (ms); default 10000",
    )
    lock_retry_seconds: float = Field(
        30.0,
        alias="TRADEASSIST_LOCK_RETRY_SECONDS",
        gt=0,
        description="how long a task run retries a transaction SQLite keeps locked (s); default 30",
    )
    task_notebooks_dir: str | None = Field(
        None,
        alias="TRADEASSIST_TASK_NOTEBOOKS_DIR",
        description="the notebooks task runs execute; default `notebooks/tasks`",
    )
    run_lease_seconds: str | None = Field(
        None,
        alias="TRADEASSIST_RUN_LEASE_SECONDS",
        description="seconds a running task's lease lasts unrenewed (renewed every fifth); default 300",
    )
    smtp_host: str | None = Field(None, alias="TRADEASSIST_SMTP_HOST", description="SMTP server for email")
    smtp_port: str | None = Field(
        None, alias="TRADEASSIST_SMTP_PORT", description="SMTP port; default 587 with STARTTLS, else 25"
    )
    smtp_user: str | None = Field(
        None, alias="TRADEASSIST_SMTP_USER", description="SMTP login (none: no login)"
    )
    smtp_password: SecretStr | None = Field(
        None, alias="TRADEASSIST_SMTP_PASSWORD", description="SMTP password"
    )
    smtp_from: str | None = Field(
        None, alias="TRADEASSIST_SMTP_FROM", description="sender address; default the SMTP user"
    )
    smtp_starttls: str | None = Field(
        None, alias="TRADEASSIST_SMTP_STARTTLS", description="use STARTTLS (boolean); default true"
    )
    telegram_bot_token: SecretStr | None = Field(
        None, alias="TRADEASSIST_TELEGRAM_BOT_TOKEN", description="Telegram channel's bot token"
    )
    telegram_base_url: str | None = Field(
        None,
        alias="TRADEASSIST_TELEGRAM_BASE_URL",
        description="Telegram API; default `https://api.telegram.org`",
    )
    vapid_private_key: SecretStr | None = Field(
        None,
        alias="TRADEASSIST_VAPID_PRIVATE_KEY",
        description="WEBPUSH's VAPID key: base64url of the raw P-256 private key, or PEM",
    )
    vapid_subject: str | None = Field(
        None,
        alias="TRADEASSIST_VAPID_SUBJECT",
        description="WEBPUSH's VAPID contact: `mailto:you@example.com` or an `https:` URL",
    )
    reviewer: str | None = Field(
        None,
        alias="TRADEASSIST_REVIEWER",
        description="`builtin-rules` (default), `openai-compatible` or `anthropic`",
    )
    llm_base_url: str | None = Field(
        None, alias="TRADEASSIST_LLM_BASE_URL", description="OpenAI-compatible server; default OpenAI's"
    )
    llm_model: str | None = Field(
        None, alias="TRADEASSIST_LLM_MODEL", description="its model; default `gpt-4o-mini`"
    )
    llm_api_key: SecretStr | None = Field(None, alias="TRADEASSIST_LLM_API_KEY", description="its API key")
    openai_api_key: SecretStr | None = Field(
        None, alias="OPENAI_API_KEY", description="OpenAI's key, when `TRADEASSIST_LLM_API_KEY` is not set"
    )
    anthropic_api_key: SecretStr | None = Field(
        None, alias="ANTHROPIC_API_KEY", description="Anthropic's API key"
    )
    anthropic_model: str | None = Field(
        None, alias="TRADEASSIST_ANTHROPIC_MODEL", description="Anthropic model; default `claude-sonnet-4-5`"
    )
    anthropic_base_url: str | None = Field(
        None,
        alias="TRADEASSIST_ANTHROPIC_BASE_URL",
        description="Anthropic API; default `https://api.anthropic.com`",
    )
    twelvedata_api_key: SecretStr | None = Field(
        None, alias="TWELVEDATA_API_KEY", description="Twelve Data price provider's key"
    )
    stooq_api_key: SecretStr | None = Field(
        None, alias="STOOQ_API_KEY", description="Stooq price provider's key"
    )


def settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings as the environment (or ``environ``) says now. An empty value is given as
    empty: callers treat it as unset (``settings().db_url or default``), booleans as false."""
    source = os.environ if environ is None else environ
    names = {field.alias for field in Settings.model_fields.values()}
    given = {name: value for name, value in source.items() if name in names}
    try:
        return Settings.model_validate(given)
    except pydantic.ValidationError as exc:  # pragma: no cover - every field accepts text
        raise ConfigError(f"configuration: {exc}") from None


def secret(value: SecretStr | None) -> str | None:
    """A secret's text, where it is needed (to log in, to sign a request): never to show."""
    return value.get_secret_value() if value is not None else None


def settings_table() -> str:
    """The README's configuration table, rendered from ``Settings``."""
    rows = ["| variable | meaning |", "|---|---|"]
    for field in Settings.model_fields.values():
        rows.append(f"| `{field.alias}` | {field.description} |")
    return "\n".join(rows)


def parse_bool(name: str, raw: str | None, default: bool = False) -> bool:
    """A boolean setting: 1/0, true/false, yes/no (any case); unset means ``default``."""
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r}: expected 1/0, true/false or yes/no")


def env_bool(name: str, default: bool = False) -> bool:
    """Read a boolean environment variable: 1/0, true/false, yes/no (any case)."""
    return parse_bool(name, os.environ.get(name), default)


def home_dir() -> Path:
    return Path(settings().home or Path.home() / ".tradeassist").expanduser().resolve()


def default_db_url() -> str:
    return f"sqlite:///{home_dir() / 'tradeassist.db'}"


def resolve_db_url(explicit: str | None = None) -> str:
    url = explicit or settings().db_url or default_db_url()
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def redact_url(url: str) -> str:
    """The URL without its password (safe to log, store or pass to a notebook)."""
    try:
        parsed = make_url(url)
    except Exception:
        return "<unparseable database URL>"
    # ``URL.set(password=None)`` means "unchanged" in SQLAlchemy 2.1: rebuild without it.
    return parsed._replace(password=None).render_as_string(hide_password=False)


def reports_dir() -> Path:
    return Path(settings().reports_dir or "reports").expanduser().resolve()
