"""Where things are: the database URL, the reports directory, boolean environment variables.

The library, the notebooks and the CLI all find the database the same way:
an explicit URL, else ``TRADEASSIST_DB_URL``, else the embedded SQLite default
``$TRADEASSIST_HOME/tradeassist.db`` (``TRADEASSIST_HOME`` defaults to ``~/.tradeassist``).
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url

from .errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool = False) -> bool:
    """Read a boolean environment variable: 1/0, true/false, yes/no (any case)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r}: expected 1/0, true/false or yes/no")


def home_dir() -> Path:
    return Path(os.environ.get("TRADEASSIST_HOME") or Path.home() / ".tradeassist").expanduser().resolve()


def default_db_url() -> str:
    return f"sqlite:///{home_dir() / 'tradeassist.db'}"


def resolve_db_url(explicit: str | None = None) -> str:
    url = explicit or os.environ.get("TRADEASSIST_DB_URL") or default_db_url()
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
    return Path(os.environ.get("TRADEASSIST_REPORTS_DIR") or "reports").expanduser().resolve()
