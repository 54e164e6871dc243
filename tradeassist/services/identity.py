"""Users: argon2id password hashes, login, enable/disable, the bootstrap admin."""

from __future__ import annotations

import functools
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session, select

from ..core.errors import (
    AccessDenied,
    AlreadyExists,
    AuthenticationError,
    ConfigError,
    NotFound,
    ValidationError,
)
from ..core.timeutil import utcnow
from ..db.models import User
from . import audit

# argon2-cffi's defaults are the RFC 9106 "low memory" argon2id parameters.
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user is unknown, so both failures cost the same time (made on
    first use: hashing costs a third of a second, too much for every command's start-up)."""
    return _hasher.hash("tradeassist-no-such-user")


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise ValidationError(f"email: {email!r} is not an email address")
    return email


def find_user(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def get_user(session: Session, email: str) -> User:
    user = find_user(session, email)
    if user is None:
        raise NotFound(f"no user {email!r}")
    return user


def bootstrap_admin(session: Session) -> User | None:
    return session.exec(select(User).where(User.is_bootstrap_admin == True)).first()  # noqa: E712


def add_user(
    session: Session, *, actor: User | None, email: str, password: str, bootstrap_admin: bool = False
) -> User:
    email = normalize_email(email)
    if find_user(session, email) is not None:
        raise AlreadyExists(f"user {email!r} exists already")
    user = User(email=email, password_hash=hash_password(password), is_bootstrap_admin=bootstrap_admin)
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor or (user if bootstrap_admin else None),
        action="USER_CREATED",
        entity_type="user",
        entity_id=user.user_id,
        details={"email": email, "bootstrap_admin": bootstrap_admin},
    )
    return user


def set_enabled(session: Session, *, actor: User | None, email: str, enabled: bool) -> User:
    user = get_user(session, email)
    if actor is not None and not actor.is_bootstrap_admin and actor.user_id != user.user_id:
        raise AccessDenied(
            "only the bootstrap admin may enable or disable other users",
            actor_user_id=actor.user_id,
            entity_type="user",
            entity_id=user.user_id,
            operation="user.enable" if enabled else "user.disable",
        )
    if user.is_enabled != enabled:
        user.is_enabled = enabled
        session.add(user)
        audit.record(
            session,
            actor=actor,
            action="USER_ENABLED" if enabled else "USER_DISABLED",
            entity_type="user",
            entity_id=user.user_id,
            details={"email": user.email},
        )
    return user


def authenticate(session: Session, email: str, password: str) -> User:
    """Check a password. Unknown user, wrong password, disabled user and a malformed stored
    hash all give the same error, after the same amount of hashing work."""
    user = find_user(session, email)
    stored = user.password_hash if user is not None else _dummy_hash()
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise AuthenticationError() from None
    if user is None or not user.is_enabled:
        raise AuthenticationError()
    if _hasher.check_needs_rehash(stored):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    session.add(user)
    audit.record(session, actor=user, action="USER_LOGIN", entity_type="user", entity_id=user.user_id)
    return user


def acting_user(session: Session, email: str | None = None, *, named_by: str | None = None) -> User:
    """Who acts: the user named by ``email`` (``--as``, else ``TRADEASSIST_USER``), else the
    bootstrap admin; a disabled user may not act. The CLI and the notebooks share this rule.
    ``named_by`` says where the email came from, for the error (default ``TRADEASSIST_USER=...``)."""
    if email:
        user = find_user(session, email)
        if user is None:
            raise NotFound(f"{named_by or f'TRADEASSIST_USER={email}'}: no such user")
    else:
        user = bootstrap_admin(session)
        if user is None:
            raise ConfigError("no bootstrap admin: run `tradeassist init` first")
    if not user.is_enabled:
        raise ValidationError(f"user {user.email} is disabled")
    return user


def generate_password() -> str:
    return secrets.token_urlsafe(18)
